"""Sessions: one login, one family of refresh tokens, as a Redis hash; each user has a set
of their session ids (the index), so that listing or ending one user's sessions costs in
proportion to that user's sessions. The atomic rules are the Lua scripts in `lua/`."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Literal

from tokens.store import scripts
from tokens.store.budgets import Budget
from tokens.store.connection import Written, connection, text, write
from tokens.store.keys import (
    abandoned_key,
    index_key,
    reuse_key,
    session_and_index,
    session_key,
    session_prefix,
    throttle_key,
)

# How many re-hashes a session that is not used in between may live through.
REHASHES_KEPT = 8
# How many sessions one script reads or ends at most: a user with thousands of sessions
# (successful logins are not limited) must not make one script stall Redis for everyone.
SESSIONS_PER_SCRIPT = 500
# How long an abandoned login's mark stops its late write (see lua/abandon.lua).
ABANDONED_MARK_MS = 60_000


@dataclass(frozen=True)
class Session:
    """A live session as stored."""

    id: str
    user_id: str
    created_at: datetime
    last_used_at: datetime
    expires_at: datetime
    absolute_expires_at: datetime
    user_agent: str
    ip_address: str


@dataclass(frozen=True)
class Rotation:
    """The result of presenting a refresh token: the successor token's id and times."""

    outcome: Literal["rotated", "replayed", "retried", "reused", "reused_before", "gone",
                     "stale"]
    jti: str = ""
    issued_at_ms: int = 0
    expires_at: int = 0


def create_session(
    *,
    user_id: str,
    session_id: str,
    jti: str,
    generation: int,
    fingerprint: str,
    now_ms: int,
    expires_at: int,
    absolute_expires_at: int,
    user_agent: str,
    ip_address: str,
    release: Sequence[Budget] = (),
    attempt: str = "",
) -> Written[None]:
    """Store a new session whose current refresh token is `jti`, alive until `expires_at`,
    and uncount login `attempt` from the `release` budgets (the login's, in the same trip)."""
    fields = {
        "uid": user_id, "gen": generation, "fp": fingerprint, "cur": jti, "prev": "",
        "rot": now_ms, "exp": expires_at, "abs": absolute_expires_at,
        "created": now_ms, "last": now_ms, "ua": user_agent, "ip": ip_address,
    }
    args = [session_id, expires_at * 1000 - now_ms, attempt]
    for name, value in fields.items():
        args += [name, value]
    with connection("create") as (conn, key):
        keys = [*session_and_index(key, user_id, session_id),
                abandoned_key(key, user_id, session_id)]
        keys += [throttle_key(key, budget.scope, budget.ident) for budget in release]
        return write(scripts.CREATE, conn, keys=keys, args=args, result=lambda reply: None)


def abandon_session(*, user_id: str, session_id: str) -> bool:
    """Remove a session whose login answered 503 after its write was sent, and stop that
    write if it is still to run (see lua/abandon.lua); True if it had been written."""
    with connection("abandon") as (conn, key):
        keys = [*session_and_index(key, user_id, session_id),
                abandoned_key(key, user_id, session_id)]
        args = [session_id, session_prefix(key, user_id), ABANDONED_MARK_MS]
        return bool(scripts.ABANDON(keys=keys, args=args, client=conn))


def rotate(
    *,
    user_id: str,
    session_id: str,
    jti: str,
    generation: int,
    fingerprint: str,
    new_jti: str,
    now_ms: int,
    idle_seconds: int,
    leeway_ms: int,
    ip_address: str,
    parent: str = "",
    idempotency_key: str = "",
    retry_window_ms: int = 0,
    older_fingerprints: tuple[str, ...] = (),
) -> Written[Rotation]:
    """Spend refresh token `jti` (child of `parent`) for `new_jti`, in one atomic step (see
    lua/rotate.lua); `idempotency_key` is the hash of the request's key, recorded with it."""
    args = [session_id, jti, generation, fingerprint, now_ms, leeway_ms, new_jti,
            idle_seconds, ip_address, parent, idempotency_key, retry_window_ms]
    with connection("rotate") as (conn, key):
        args += [session_prefix(key, user_id), " ".join(older_fingerprints)]
        keys = [*session_and_index(key, user_id, session_id),
                reuse_key(key, user_id, session_id)]
        return write(scripts.ROTATE, conn, keys=keys, args=args, result=_rotation)


def is_active(*, user_id: str, session_id: str, generation: int, fingerprint: str,
              older_fingerprints: tuple[str, ...] = ()) -> bool:
    """Whether the session exists, at this generation, for this password."""
    with connection("check") as (conn, key):
        gen, fp, fpx = conn.hmget(session_key(key, user_id, session_id), "gen", "fp", "fpx")
    return (gen is not None and int(gen) == generation
            and accepts_any(fp, fpx, (fingerprint, *older_fingerprints)))


def revoke(*, user_id: str, session_id: str) -> Written[bool]:
    """End one session; True if it was live."""
    with connection("revoke") as (conn, key):
        args = [session_id, "", session_prefix(key, user_id)]
        keys = session_and_index(key, user_id, session_id)
        return write(scripts.REVOKE, conn, keys=keys, args=args, result=bool)


def logout(*, user_id: str, session_id: str, jti: str, generation: int, parent: str,
           now_ms: int, leeway_ms: int) -> Written[str]:
    """End the session of refresh token `jti` (see lua/logout.lua): 'ended', or 'reused' if
    the token was spent before the leeway (the session ends all the same, as a reuse)."""
    args = [session_id, jti, generation, parent, now_ms, leeway_ms]
    with connection("logout") as (conn, key):
        args.append(session_prefix(key, user_id))
        keys = [*session_and_index(key, user_id, session_id),
                reuse_key(key, user_id, session_id)]
        return write(scripts.LOGOUT, conn, keys=keys, args=args, result=text)


def restart(
    *,
    user_id: str,
    session_id: str,
    generation: int,
    fingerprint: str,
    new_jti: str,
    now_ms: int,
    idle_seconds: int,
    idempotency_key: str = "",
    previous_fingerprint: str = "",
) -> Written[Rotation]:
    """Move a session from `generation` to the next, with `new_jti` as its only current
    refresh token and the new password's fingerprint, so that every other session (born
    with another) is refused from now on (see lua/restart.lua for a retry with
    `idempotency_key`, a hash, and `previous_fingerprint`); end_sessions then removes them."""
    with connection("restart") as (conn, key):
        keys = session_and_index(key, user_id, session_id)
        args = [session_id, generation, generation + 1, fingerprint, new_jti, now_ms,
                idle_seconds, idempotency_key, previous_fingerprint]
        return write(scripts.RESTART, conn, keys=keys, args=args, result=_rotation)


def is_change_retry(*, user_id: str, session_id: str, generation: int, idempotency_key: str
                    ) -> bool:
    """Whether the session left `generation` by a password change made with this key (a
    hash), and has not rotated since: a request repeating that change."""
    with connection("change_retry") as (conn, key):
        gen, mark = conn.hmget(session_key(key, user_id, session_id), "gen", "chg")
    return (gen is not None and int(gen) == generation + 1
            and text(mark) == f"{generation}:{idempotency_key}")


def add_fingerprint(*, user_id: str, old: str, new: str,
                    older_fingerprints: tuple[str, ...] = ()) -> Written[int]:
    """Let the sessions born with password fingerprint `old` (or with `older_fingerprints`,
    the same hash under fallback keys) accept `new` too (a re-hash of the same password);
    how many sessions."""
    args = [old, new, REHASHES_KEPT, " ".join(older_fingerprints)]
    count, acknowledged = 0, True
    with connection("rehash") as (conn, key):
        for session_ids in _index_batches(conn, key, user_id):
            keys = [session_key(key, user_id, sid) for sid in session_ids]
            written = write(scripts.REHASH, conn, keys=keys, args=args, result=int)
            count, acknowledged = count + written.result, acknowledged and written.acknowledged
    return Written(count, acknowledged)


def revoke_all(*, user_id: str) -> Written[list[str]]:
    """End every session of a user; returns the ids of those that were live."""
    return end_sessions(user_id=user_id)


def end_sessions(*, user_id: str, keep: tuple[str, ...] = ()) -> Written[list[str]]:
    """End the user's sessions, a batch per script (lua/end_sessions.lua): every one, or
    only those that accept none of the fingerprints `keep` (the password in force); the
    ids of those that were live."""
    ended: list[str] = []
    acknowledged = True
    with connection("end_sessions") as (conn, key):
        index, prefix = index_key(key, user_id), session_prefix(key, user_id)
        for session_ids in _index_batches(conn, key, user_id):
            keys = [index, *(session_key(key, user_id, sid) for sid in session_ids)]
            args = [prefix, " ".join(keep), *session_ids]
            written = write(scripts.END_SESSIONS, conn, keys=keys, args=args, result=_texts)
            ended += written.result
            acknowledged = acknowledged and written.acknowledged
    return Written(ended, acknowledged)


def _index_batches(conn, key, user_id: str):
    """The ids a user's index lists, SESSIONS_PER_SCRIPT at a time (SSCAN: no one command
    reads the whole of a large index)."""
    batch: list[str] = []
    for sid in conn.sscan_iter(index_key(key, user_id), count=SESSIONS_PER_SCRIPT):
        batch.append(text(sid))
        if len(batch) == SESSIONS_PER_SCRIPT:
            yield batch
            batch = []
    if batch:
        yield batch


def _texts(reply: list) -> list[str]:
    return [text(item) for item in reply]


def list_sessions(*, user_id: str, fingerprint: str,
                  older_fingerprints: tuple[str, ...] = ()) -> list[Session]:
    """The user's live sessions, newest first; drops index entries whose session is gone."""
    with connection("list") as (conn, key):
        index = index_key(key, user_id)
        session_ids = [text(sid) for sid in conn.smembers(index)]
        if not session_ids:
            return []
        pipe = conn.pipeline(transaction=False)
        for sid in session_ids:
            pipe.hgetall(session_key(key, user_id, sid))
        records = dict(zip(session_ids, pipe.execute()))
        stale = [sid for sid, record in records.items() if not record]
        if stale:
            conn.srem(index, *stale)
    sessions = [
        _session(sid, user_id, record)
        for sid, record in records.items()
        # A session from before the last password change is dead (refused on use).
        if record and accepts_any(record[b"fp"], record.get(b"fpx"),
                                  (fingerprint, *older_fingerprints))
    ]
    return sorted(sessions, key=lambda s: s.created_at, reverse=True)


def accepts_any(fp: bytes | None, fpx: bytes | None, fingerprints: tuple[str, ...]) -> bool:
    """Whether a session accepts any of `fingerprints` (see lua/lib/accepts.lua)."""
    known = {text(fp), *text(fpx).split()} - {""}
    return any(fingerprint in known for fingerprint in fingerprints)


def _rotation(reply: list) -> Rotation:
    outcome, *rest = (text(item) for item in reply)
    if not rest:
        return Rotation(outcome)
    successor, issued_at_ms, expires_at = rest
    return Rotation(outcome, successor, int(issued_at_ms), int(expires_at))


def _session(session_id: str, user_id: str, record: dict[bytes, bytes]) -> Session:
    return Session(
        id=session_id,
        user_id=user_id,
        created_at=_datetime(int(record[b"created"]) / 1000),
        last_used_at=_datetime(int(record[b"last"]) / 1000),
        expires_at=_datetime(int(record[b"exp"])),
        absolute_expires_at=_datetime(int(record[b"abs"])),
        user_agent=text(record[b"ua"]),
        ip_address=text(record[b"ip"]),
    )


def _datetime(epoch_seconds: float) -> datetime:
    return datetime.fromtimestamp(epoch_seconds, tz=timezone.utc)
