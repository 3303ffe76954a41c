"""Maintenance for operators: purge what TTLs cannot, report which keys still matter."""

from tokens import metrics, store, users
from tokens.services import security_events
from tokens.services.security_events import Kind
from tokens.signing_keys import keyset
from tokens.types import EndReason, KeyUsage


def purge(*, batch_size: int, dry_run: bool, progress=lambda report: None) -> store.PurgeReport:
    """Clean the store of what TTLs cannot remove (see store.purge)."""
    return store.purge(
        fingerprints=users.current_fingerprints, batch_size=batch_size, dry_run=dry_run,
        progress=progress,
    )


def key_usage(*, batch_size: int = 1000) -> KeyUsage:
    """Which keys sign and verify, and whether a fallback still matters to any session."""
    keys = keyset()
    counts = [0] * len(keys.fingerprint_secrets)
    unknown = 0
    sessions = list(store.session_fingerprints(batch_size=batch_size))
    known = users.current_fingerprints({uid for uid, _, _ in sessions})
    for uid, fp, fpx in sessions:
        matches = [i for i, x in enumerate(known.get(uid, ())) if x == fp or x in fpx]
        if matches:
            counts[matches[0]] += 1
        else:
            unknown += 1
    fallbacks = tuple(kid for kid in keys.verifying_keys if kid != keys.current_kid)
    return KeyUsage(keys.algorithm, keys.current_kid, fallbacks, tuple(counts), unknown)


def purge_all(*, batch_size: int, by: str) -> int:
    """Emergency: end every session of every user (counted and recorded as one event;
    session_ended is not sent for each)."""
    count = store.purge_all(batch_size=batch_size)
    metrics.sessions_ended(EndReason.COMMAND, count)
    security_events.record(kind=Kind.REVOKED_BY_COMMAND, sessions_ended=count, by=by)
    return count
