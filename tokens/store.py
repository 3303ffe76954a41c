"""The session store: the only module that touches the token cache.

A session (one login, one family of refresh tokens) is a Redis hash; each user has a set
of their session ids so that listing or ending one user's sessions costs in proportion to
that user's sessions. Keys are built by the configured cache's own key function and
reached through that cache's own connection (`caches[CACHE_ALIAS]`), resolved per call.

Redis never holds a usable token: only token ids (`jti`), the password fingerprint
(an HMAC of the password hash, useless to log in with) and metadata.

Every write sets a TTL equal to what it protects: a session key lives until its newest
refresh token expires, the user's index until that user's longest-lived session does.
"""

import hashlib
import logging
import re
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Literal, NoReturn

from django.core.cache import InvalidCacheBackendError, caches
from django_redis.cache import RedisCache
from redis import Redis
from redis.commands.core import Script
from redis.exceptions import RedisError, ResponseError

from tokens import clock
from tokens.conf import token_settings
from tokens.exceptions import StoreMisconfigured, StoreUnavailable

logger = logging.getLogger(__name__)

KEY_PREFIX = "tokens"

KeyFunc = Callable[[str], str]

# KEYS: session, index. ARGV: session id, ttl ms, then field/value pairs.
_CREATE = Script(None, b"""
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('SADD', KEYS[2], ARGV[1])
if redis.call('PTTL', KEYS[2]) < tonumber(ARGV[2]) then
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
end
return 1
""")

# The single-use decision is made here, atomically: whichever request runs this first
# with the current jti wins the rotation; later ones see their jti as `prev`.
# KEYS: session, index. ARGV: sid, jti, gen, fingerprint, now ms, leeway ms, new jti,
# idle lifetime s, ip.
_ROTATE = Script(None, b"""
local f = redis.call('HMGET', KEYS[1], 'cur', 'prev', 'rot', 'gen', 'fp', 'abs', 'exp')
if not f[1] then return {'gone'} end
if f[4] ~= ARGV[3] then return {'stale'} end
if f[5] ~= ARGV[4] then
  redis.call('DEL', KEYS[1])
  redis.call('SREM', KEYS[2], ARGV[1])
  return {'gone'}
end
local now = tonumber(ARGV[5])
if ARGV[2] == f[1] then
  local exp = math.min(math.floor(now / 1000) + tonumber(ARGV[8]), tonumber(f[6]))
  local ttl = exp * 1000 - now
  if ttl <= 0 then
    redis.call('DEL', KEYS[1])
    redis.call('SREM', KEYS[2], ARGV[1])
    return {'gone'}
  end
  redis.call('HSET', KEYS[1], 'cur', ARGV[7], 'prev', ARGV[2], 'rot', ARGV[5],
             'exp', tostring(exp), 'last', ARGV[5], 'ip', ARGV[9])
  redis.call('PEXPIRE', KEYS[1], ttl)
  redis.call('SADD', KEYS[2], ARGV[1])
  if redis.call('PTTL', KEYS[2]) < ttl then redis.call('PEXPIRE', KEYS[2], ttl) end
  return {'rotated', ARGV[7], ARGV[5], tostring(exp)}
end
local leeway = tonumber(ARGV[6])
if leeway > 0 and ARGV[2] == f[2] and now - tonumber(f[3]) <= leeway then
  return {'replayed', f[1], f[3], f[7]}
end
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], ARGV[1])
return {'reused'}
""")

# A password change keeps the session (same id) but starts a new generation: every
# token issued before it is refused, and the new refresh token is the only current one.
# KEYS: session. ARGV: generation, fingerprint, new jti, now ms, idle lifetime s.
_RESTART = Script(None, b"""
local abs = redis.call('HGET', KEYS[1], 'abs')
if not abs then return 0 end
local now = tonumber(ARGV[4])
local exp = math.min(math.floor(now / 1000) + tonumber(ARGV[5]), tonumber(abs))
redis.call('HSET', KEYS[1], 'gen', ARGV[1], 'fp', ARGV[2], 'cur', ARGV[3], 'prev', '',
           'rot', ARGV[4], 'last', ARGV[4], 'exp', tostring(exp))
redis.call('PEXPIRE', KEYS[1], exp * 1000 - now)
return exp
""")

# KEYS: session, index. ARGV: sid, generation ('' for any).
_REVOKE = Script(None, b"""
if ARGV[2] ~= '' and redis.call('HGET', KEYS[1], 'gen') ~= ARGV[2] then return 0 end
redis.call('SREM', KEYS[2], ARGV[1])
return redis.call('DEL', KEYS[1])
""")


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

    outcome: Literal["rotated", "replayed", "reused", "gone", "stale"]
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
) -> None:
    """Store a new session whose current refresh token is `jti`, alive until `expires_at`."""
    fields = {
        "uid": user_id, "gen": generation, "fp": fingerprint, "cur": jti, "prev": "",
        "rot": now_ms, "exp": expires_at, "abs": absolute_expires_at,
        "created": now_ms, "last": now_ms, "ua": user_agent, "ip": ip_address,
    }
    args = [session_id, expires_at * 1000 - now_ms]
    for name, value in fields.items():
        args += [name, value]
    with _connection() as (conn, key):
        _CREATE(keys=_keys(key, user_id, session_id), args=args, client=conn)


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
) -> Rotation:
    """Spend refresh token `jti` for `new_jti`, in one atomic step (see _ROTATE)."""
    args = [session_id, jti, generation, fingerprint, now_ms, leeway_ms, new_jti,
            idle_seconds, ip_address]
    with _connection() as (conn, key):
        reply = _ROTATE(keys=_keys(key, user_id, session_id), args=args, client=conn)
    outcome, *rest = (_text(item) for item in reply)
    if not rest:
        return Rotation(outcome)
    successor, issued_at_ms, expires_at = rest
    return Rotation(outcome, successor, int(issued_at_ms), int(expires_at))


def is_active(*, user_id: str, session_id: str, generation: int, fingerprint: str) -> bool:
    """Whether the session exists, at this generation, for this password."""
    with _connection() as (conn, key):
        gen, fp = conn.hmget(_session_key(key, user_id, session_id), "gen", "fp")
    return gen is not None and int(gen) == generation and _text(fp) == fingerprint


def revoke(*, user_id: str, session_id: str, generation: int | None = None) -> bool:
    """End one session (only at `generation`, when given); True if it was live."""
    args = [session_id, "" if generation is None else generation]
    with _connection() as (conn, key):
        return bool(_REVOKE(keys=_keys(key, user_id, session_id), args=args, client=conn))


def restart(
    *,
    user_id: str,
    session_id: str,
    generation: int,
    fingerprint: str,
    new_jti: str,
    now_ms: int,
    idle_seconds: int,
) -> Rotation:
    """Move a session to a new generation with `new_jti` as its only current refresh token."""
    args = [generation, fingerprint, new_jti, now_ms, idle_seconds]
    with _connection() as (conn, key):
        expires_at = _RESTART(keys=[_session_key(key, user_id, session_id)], args=args,
                              client=conn)
    if not expires_at:
        return Rotation("gone")
    return Rotation("rotated", new_jti, now_ms, int(expires_at))


def revoke_all(*, user_id: str, keep: str | None = None) -> int:
    """End every session of a user (but `keep`, when given); returns how many were live."""
    with _connection() as (conn, key):
        index = _index_key(key, user_id)
        session_ids = [sid for sid in map(_text, conn.smembers(index)) if sid != keep]
        if not session_ids:
            return 0
        pipe = conn.pipeline(transaction=True)
        for sid in session_ids:
            pipe.delete(_session_key(key, user_id, sid))
        # Only the ids read above: a session created meanwhile stays listed.
        pipe.srem(index, *session_ids)
        return sum(pipe.execute()[:-1])


def list_sessions(*, user_id: str, fingerprint: str) -> list[Session]:
    """The user's live sessions, newest first; drops index entries whose session is gone."""
    with _connection() as (conn, key):
        index = _index_key(key, user_id)
        session_ids = [_text(sid) for sid in conn.smembers(index)]
        if not session_ids:
            return []
        pipe = conn.pipeline(transaction=False)
        for sid in session_ids:
            pipe.hgetall(_session_key(key, user_id, sid))
        records = dict(zip(session_ids, pipe.execute()))
        stale = [sid for sid, record in records.items() if not record]
        if stale:
            conn.srem(index, *stale)
    sessions = [
        _session(sid, user_id, record)
        for sid, record in records.items()
        # A session from before the last password change is dead (refused on use).
        if record and _text(record[b"fp"]) == fingerprint
    ]
    return sorted(sessions, key=lambda s: s.created_at, reverse=True)


def record_login_failure(*, scope: str, ident: str, now_ms: int, window_seconds: int) -> None:
    """Remember one failed login for `ident` (a username or an IP) for the window."""
    window_ms = window_seconds * 1000
    with _connection() as (conn, key):
        throttle_key = _throttle_key(key, scope, ident)
        pipe = conn.pipeline(transaction=True)
        pipe.zadd(throttle_key, {f"{now_ms}:{secrets.token_hex(4)}": now_ms})
        pipe.zremrangebyscore(throttle_key, 0, now_ms - window_ms)
        pipe.pexpire(throttle_key, window_ms)
        pipe.execute()


def login_failure_wait(
    *, scope: str, ident: str, limit: int, now_ms: int, window_seconds: int
) -> float | None:
    """Seconds until `ident` may try again, or None when under `limit` failures."""
    window_ms = window_seconds * 1000
    with _connection() as (conn, key):
        throttle_key = _throttle_key(key, scope, ident)
        pipe = conn.pipeline(transaction=False)
        pipe.zcount(throttle_key, now_ms - window_ms, "+inf")
        pipe.zrange(throttle_key, -limit, -limit, withscores=True)
        count, oldest_counted = pipe.execute()
    if count < limit or not oldest_counted:
        return None
    return max((oldest_counted[0][1] + window_ms - now_ms) / 1000, 0.001)


def redis_config() -> dict[str, str] | None:
    """The token Redis's eviction and persistence settings; None if CONFIG is refused."""
    with _connection() as (conn, key):
        try:
            config = conn.config_get("maxmemory-policy", "appendonly", "save")
        except ResponseError:
            return None  # managed Redis often disables or renames CONFIG
    return {_text(name): _text(value) for name, value in config.items()}


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
    fingerprints: Callable[[set[str]], dict[str, str]],
    batch_size: int,
    dry_run: bool,
    progress: Callable[[PurgeReport], None] = lambda report: None,
) -> PurgeReport:
    """Remove what TTLs cannot: sessions of deleted users or older passwords, stale index
    entries, and records that lost their expiry. `fingerprints` maps user ids to the
    current password fingerprint of the users that still exist."""
    report = PurgeReport()
    with _connection() as (conn, key):
        for batch in _scan_batches(conn, key, batch_size):
            report.keys_scanned += len(batch)
            sessions, indexes = _parse_keys(batch, report)
            _purge_sessions(conn, key, sessions, fingerprints, dry_run, report)
            _purge_indexes(conn, key, indexes, dry_run, report)
            progress(report)
    return report


def purge_all(*, batch_size: int) -> int:
    """Emergency: delete every key of the token store; returns how many sessions ended."""
    ended = 0
    with _connection() as (conn, key):
        for batch in _scan_batches(conn, key, batch_size):
            ended += sum(1 for raw in batch if (m := _KEY_SHAPE.search(raw)) and m["sid"])
            conn.unlink(*batch)
    return ended


# Parses our own keys whatever the cache's prefix and version: the key function keeps the
# raw key at the end (Django's default: "<prefix>:<version>:<key>").
_KEY_SHAPE = re.compile(
    rf"{KEY_PREFIX}:\{{(?P<uid>[^}}]+)\}}:(?:s:(?P<sid>[A-Za-z0-9_-]+)|sessions)$"
)
_THROTTLE_SHAPE = re.compile(rf"{KEY_PREFIX}:throttle:[a-z]+:[0-9a-f]{{32}}$")


def _scan_batches(conn: Redis, key: KeyFunc, batch_size: int) -> Iterator[list[str]]:
    # SCAN, never KEYS: it walks the keyspace in steps without blocking Redis.
    batch: list[str] = []
    for raw in conn.scan_iter(match=key(f"{KEY_PREFIX}:*"), count=batch_size):
        batch.append(_text(raw))
        if len(batch) >= batch_size:
            yield batch
            batch = []
    if batch:
        yield batch


def _parse_keys(batch: list[str], report: PurgeReport):
    sessions, indexes = [], []
    for raw in batch:
        match = _KEY_SHAPE.search(raw)
        if match is None:
            # Throttle keys always carry a TTL (set in the same transaction as the write).
            report.unrecognised_keys += not _THROTTLE_SHAPE.search(raw)
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
        pipe.hmget(raw, "fp", "exp")
        pipe.pttl(raw)
    replies = pipe.execute()
    current = fingerprints({uid for _, uid, _ in sessions})
    now_ms = int(clock.now() * 1000)
    pipe = conn.pipeline(transaction=False)
    for (raw, uid, sid), (fp, exp), ttl in zip(sessions, replies[::2], replies[1::2]):
        if fp is None:
            continue  # expired between SCAN and now
        if current.get(uid) != _text(fp):
            report.dead_sessions += 1
            pipe.delete(raw)
            pipe.srem(_index_key(key, uid), sid)
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
    members = [[_text(sid) for sid in reply] for reply in pipe.execute()]
    pipe = conn.pipeline(transaction=False)
    for (_, uid), sids in zip(indexes, members):
        for sid in sids:
            pipe.exists(_session_key(key, uid, sid))
    exists = iter(pipe.execute())
    pipe = conn.pipeline(transaction=False)
    for (raw, _), sids in zip(indexes, members):
        stale = [sid for sid in sids if not next(exists)]
        if stale:
            report.stale_index_entries += len(stale)
            pipe.srem(raw, *stale)
    if not dry_run:
        pipe.execute()


def _session(session_id: str, user_id: str, record: dict[bytes, bytes]) -> Session:
    return Session(
        id=session_id,
        user_id=user_id,
        created_at=_datetime(int(record[b"created"]) / 1000),
        last_used_at=_datetime(int(record[b"last"]) / 1000),
        expires_at=_datetime(int(record[b"exp"])),
        absolute_expires_at=_datetime(int(record[b"abs"])),
        user_agent=_text(record[b"ua"]),
        ip_address=_text(record[b"ip"]),
    )


def _keys(key: KeyFunc, user_id: str, session_id: str) -> list[str]:
    return [_session_key(key, user_id, session_id), _index_key(key, user_id)]


def _session_key(key: KeyFunc, user_id: str, session_id: str) -> str:
    # The {user} hash tag keeps a user's keys in one Redis Cluster slot, for the scripts.
    return key(f"{KEY_PREFIX}:{{{user_id}}}:s:{session_id}")


def _index_key(key: KeyFunc, user_id: str) -> str:
    return key(f"{KEY_PREFIX}:{{{user_id}}}:sessions")


def _throttle_key(key: KeyFunc, scope: str, ident: str) -> str:
    # Hashed: fixed length and charset whatever the username, and no usernames in Redis.
    digest = hashlib.sha256(ident.encode()).hexdigest()[:32]
    return key(f"{KEY_PREFIX}:throttle:{scope}:{digest}")


def _datetime(epoch_seconds: float) -> datetime:
    return datetime.fromtimestamp(epoch_seconds, tz=timezone.utc)


def _text(value: bytes | str | None) -> str:
    return value.decode() if isinstance(value, bytes) else (value or "")


def _cache() -> RedisCache:
    """The configured token cache, refused at runtime if it could lose tokens silently."""
    alias = token_settings.CACHE_ALIAS
    try:
        cache = caches[alias]
    except InvalidCacheBackendError:
        _refuse(f"Token cache alias {alias!r} is not in CACHES.")
    if not isinstance(cache, RedisCache):
        _refuse(
            f"Token cache {alias!r} is {type(cache).__name__}, not django-redis: refusing to "
            "store sessions where other processes cannot see them."
        )
    if cache._ignore_exceptions:
        _refuse(
            f"Token cache {alias!r} has IGNORE_EXCEPTIONS on: refusing to store sessions "
            "where a Redis failure would be silently ignored."
        )
    return cache


def _refuse(message: str) -> NoReturn:
    logger.error("Token store misconfigured: %s", message)
    raise StoreMisconfigured(message)


@contextmanager
def _connection() -> Iterator[tuple[Redis, KeyFunc]]:
    """The token cache's own Redis client and key function; Redis failures become 503s."""
    cache = _cache()
    try:
        yield cache.client.get_client(write=True), cache.make_key
    except RedisError as exc:
        logger.error("Token store unavailable: %s: %s", type(exc).__name__, exc)
        raise StoreUnavailable() from exc
