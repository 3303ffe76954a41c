"""A user's sessions: listed, ended in batches, re-stamped on a re-hash; each flow reads
the user's index (a set of session ids) SESSIONS_PER_SCRIPT at a time, so that its cost is
in proportion to that user's sessions and no one script stalls Redis."""

from dataclasses import dataclass
from datetime import datetime, timezone

from tokens.store import scripts
from tokens.store.connection import Written, connection, text, write
from tokens.store.keys import index_key, session_key, session_prefix
from tokens.store.sessions import accepts_any


# How many re-hashes a session that is not used in between may live through.
REHASHES_KEPT = 8


# How many sessions one script reads or ends at most: a user with thousands of sessions
# (successful logins are not limited) must not make one script stall Redis for everyone.
SESSIONS_PER_SCRIPT = 500


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
