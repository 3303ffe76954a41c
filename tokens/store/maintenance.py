"""Maintenance: what TTLs cannot clean up, found by SCAN over the store's own keys."""

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from redis import Redis

from tokens import clock
from tokens.store import scripts
from tokens.store.connection import connection, text
from tokens.store.keys import (
    KEY_SHAPE,
    MARK_SHAPE,
    THROTTLE_SHAPE,
    KeyFunc,
    index_key,
    pattern,
    session_key,
    session_prefix,
)
from tokens.store.sessions import accepts_any


@dataclass
class PurgeReport:
    """What a purge found (and, unless a dry run, removed or repaired)."""

    keys_scanned: int = 0
    dead_sessions: int = 0
    stale_index_entries: int = 0
    expiries_restored: int = 0
    unrecognised_keys: int = 0


def purge(
    *,
    fingerprints: Callable[[set[str]], dict[str, tuple[str, ...]]],
    batch_size: int,
    dry_run: bool,
    progress: Callable[[PurgeReport], None] = lambda report: None,
) -> PurgeReport:
    """Remove what TTLs cannot: sessions of deleted users or older passwords, stale index
    entries, and records that lost their expiry. `fingerprints` maps user ids to the
    password fingerprints (current key first) of the users that still exist and are active."""
    report = PurgeReport()
    with connection("purge") as (conn, key):
        for batch in _scan_batches(conn, key, batch_size):
            report.keys_scanned += len(batch)
            sessions, indexes = _parse_keys(batch, report)
            _purge_sessions(conn, key, sessions, fingerprints, dry_run, report)
            _purge_indexes(conn, key, indexes, dry_run, report)
            progress(report)
    return report


def session_fingerprints(*, batch_size: int) -> Iterator[tuple[str, str, list[str]]]:
    """Every stored session's user id, fingerprint and re-hash fingerprints (for reports)."""
    with connection("scan") as (conn, key):
        for batch in _scan_batches(conn, key, batch_size):
            sessions = [(m["uid"], raw) for raw in batch
                        if (m := KEY_SHAPE.search(raw)) and m["sid"]]
            pipe = conn.pipeline(transaction=False)
            for _, raw in sessions:
                pipe.hmget(raw, "fp", "fpx")
            for (uid, _), (fp, fpx) in zip(sessions, pipe.execute()):
                if fp is not None:
                    yield uid, text(fp), text(fpx).split()


def purge_all(*, batch_size: int) -> int:
    """Emergency: delete every key of the token store; returns how many sessions ended."""
    ended = 0
    with connection("purge_all") as (conn, key):
        for batch in _scan_batches(conn, key, batch_size):
            ended += sum(1 for raw in batch if (m := KEY_SHAPE.search(raw)) and m["sid"])
            conn.unlink(*batch)
    return ended


def _scan_batches(conn: Redis, key: KeyFunc, batch_size: int) -> Iterator[list[str]]:
    # SCAN, never KEYS: it walks the keyspace in steps without blocking Redis.
    batch: list[str] = []
    for raw in conn.scan_iter(match=pattern(key), count=batch_size):
        batch.append(text(raw))
        if len(batch) >= batch_size:
            yield batch
            batch = []
    if batch:
        yield batch


def _parse_keys(batch: list[str], report: PurgeReport):
    sessions, indexes = [], []
    for raw in batch:
        match = KEY_SHAPE.search(raw)
        if match is None:
            # Throttle keys always carry a TTL (set in the same transaction as the write).
            report.unrecognised_keys += not (THROTTLE_SHAPE.search(raw)
                                             or MARK_SHAPE.search(raw))
        elif match["sid"]:
            sessions.append((raw, match["uid"], match["sid"]))
        else:
            indexes.append((raw, match["uid"]))
    return sessions, indexes


def _purge_sessions(conn, key, sessions, fingerprints, dry_run, report) -> None:
    if not sessions:
        return
    pipe = conn.pipeline(transaction=False)
    for raw, _, _ in sessions:
        pipe.hmget(raw, "fp", "exp", "fpx")
        pipe.pttl(raw)
    replies = pipe.execute()
    current = fingerprints({uid for _, uid, _ in sessions})
    now_ms = clock.now_ms()
    pipe = conn.pipeline(transaction=False)
    for (raw, uid, sid), (fp, exp, fpx), ttl in zip(sessions, replies[::2], replies[1::2]):
        if fp is None:
            continue  # expired between SCAN and now
        known = current.get(uid, ())
        if not accepts_any(fp, fpx, known):
            report.dead_sessions += 1
            args = [sid, text(fp), known[0] if known else "", session_prefix(key, uid),
                    " ".join(known[1:])]
            scripts.END_IF_DEAD(keys=[raw, index_key(key, uid)], args=args, client=pipe)
        elif ttl == -1:
            report.expiries_restored += 1
            remaining = int(exp or 0) * 1000 - now_ms
            if remaining > 0:
                pipe.pexpire(raw, remaining)
            else:
                pipe.delete(raw)
    if not dry_run:
        pipe.execute()


def _purge_indexes(conn, key, indexes, dry_run, report) -> None:
    if not indexes:
        return
    pipe = conn.pipeline(transaction=False)
    for raw, _ in indexes:
        pipe.smembers(raw)
    members = [[text(sid) for sid in reply] for reply in pipe.execute()]
    pipe = conn.pipeline(transaction=False)
    for (_, uid), sids in zip(indexes, members):
        for sid in sids:
            pipe.exists(session_key(key, uid, sid))
    exists = iter(pipe.execute())
    pipe = conn.pipeline(transaction=False)
    for (raw, _), sids in zip(indexes, members):
        stale = [sid for sid in sids if not next(exists)]
        if stale:
            report.stale_index_entries += len(stale)
            pipe.srem(raw, *stale)
    if not dry_run:
        pipe.execute()
