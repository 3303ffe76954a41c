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

import logging
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Literal, NoReturn

from django.core.cache import InvalidCacheBackendError, caches
from django.utils.crypto import salted_hmac
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

# Shared by the scripts below: whether a session accepts password fingerprint `x`, its own
# (`fp`) or one of a re-hash of the same password (`fpx`, space-separated; see _REHASH).
# `accepts_any` also takes fingerprints under fallback keys (space-separated; see
# tokens.keys): a session stamped under a key being rotated out is still recognised.
_ACCEPTS = b"""
local function accepts(fp, fpx, x)
  return fp == x or string.find(' ' .. (fpx or '') .. ' ', ' ' .. x .. ' ', 1, true) ~= nil
end
local function accepts_any(fp, fpx, current, older)
  if accepts(fp, fpx, current) then return true end
  for x in string.gmatch(older or '', '%S+') do
    if accepts(fp, fpx, x) then return true end
  end
  return false
end
"""

# Shared by the scripts below: keep a session id in its user's index, and the index alive
# at least as long as that session.
_KEEP_INDEXED = b"""
local function keep_indexed(index, sid, ttl)
  redis.call('SADD', index, sid)
  if redis.call('PTTL', index) < ttl then redis.call('PEXPIRE', index, ttl) end
end
"""

# Shared by the scripts below: end a session and take it out of its user's index, whose TTL
# then shrinks to the longest of the sessions it still lists (no key outlives what it
# protects). `prefix` is the key of a session without its id ('' to leave the TTL be): the
# sessions share the index's {user} hash tag, so they are in its cluster slot.
_UNINDEX = b"""
local function unindex(session, index, sid, prefix)
  redis.call('DEL', session)
  redis.call('SREM', index, sid)
  if prefix == '' then return end
  local longest = -2
  for _, member in ipairs(redis.call('SMEMBERS', index)) do
    longest = math.max(longest, redis.call('PTTL', prefix .. member))
  end
  if longest > 0 then redis.call('PEXPIRE', index, longest)
  elseif longest == -2 then redis.call('DEL', index) end
end
"""

# KEYS: session, index. ARGV: session id, ttl ms, then field/value pairs.
_CREATE = Script(None, _KEEP_INDEXED + b"""
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
redis.call('PEXPIRE', KEYS[1], ARGV[2])
keep_indexed(KEYS[2], ARGV[1], tonumber(ARGV[2]))
return 1
""")

# The single-use decision is made here, atomically: whichever request runs this first
# with the current jti wins the rotation; later ones see their jti as `prev`. Safe to run
# twice (redis-py retries a command once on a timeout): a request that finds its own new
# jti already current has won, and gets its rotation back, not a reuse verdict.
# The password fingerprint must be the session's (`fp`), or the one of a re-hash of the same
# password (`fpx`, see _REHASH); any other password ends the session.
# Outages must not become logouts:
# - A lost reply: the client retries with the same Idempotency-Key, recorded (hashed, bound
#   to the spent jti, `ik`) with the rotation, and with each replay inside the leeway (racing
#   tabs, up to 4); `prev` presented with such a key gets the recorded successor within the
#   retry window. Without a key only the leeway applies, so a thief replaying a spent token
#   (with a key of their own) still ends the session. Every replay records its time and IP.
# - A lost rotation (a failover, an AOF that lost its last second): the presented token names
#   the store's current jti as its parent, so the store issued it and lost the write. It is
#   adopted as current and rotated from. Only this service signs a parent claim.
# A reuse leaves a mark (KEYS[3]) for as long as the session would have lived, so that
# whoever presents the session's tokens afterwards hears 'reused', not just 'gone'.
# KEYS: session, index, reuse mark. ARGV: sid, jti, gen, fingerprint, now ms, leeway ms, new jti,
# idle lifetime s, ip, parent jti ('' if none), idempotency key hash ('' if none), retry
# window ms, session key prefix, fingerprints under fallback keys (space-separated).
_ROTATE = Script(None, _KEEP_INDEXED + _ACCEPTS + _UNINDEX + b"""
local f = redis.call('HMGET', KEYS[1], 'cur', 'prev', 'rot', 'gen', 'fp', 'abs', 'exp', 'fpx',
                     'ik')
if not f[1] then
  -- Ended by a reuse: every later presentation hears so (the session's other holder, and
  -- a reuse whose first verdict was lost to a timeout and resent by redis-py).
  if redis.call('EXISTS', KEYS[3]) == 1 then return {'reused_before'} end
  return {'gone'}
end
if f[4] ~= ARGV[3] then return {'stale'} end
if not accepts_any(f[5], f[8], ARGV[4], ARGV[14]) then
  unindex(KEYS[1], KEYS[2], ARGV[1], ARGV[13])
  return {'gone'}
end
if f[5] ~= ARGV[4] then
  -- A re-hash of the password is saved now, or the key has been rotated: the current
  -- fingerprint becomes the session's own (re-stamped).
  redis.call('HSET', KEYS[1], 'fp', ARGV[4])
  redis.call('HDEL', KEYS[1], 'fpx')
end
if f[1] == ARGV[7] then return {'rotated', f[1], f[3], f[7]} end
local now = tonumber(ARGV[5])
if ARGV[2] == f[1] or (ARGV[10] ~= '' and ARGV[10] == f[1]) then
  local exp = math.min(math.floor(now / 1000) + tonumber(ARGV[8]), tonumber(f[6]))
  local ttl = exp * 1000 - now
  if ttl <= 0 then
    unindex(KEYS[1], KEYS[2], ARGV[1], ARGV[13])
    return {'gone'}
  end
  local ik = ''
  if ARGV[11] ~= '' then ik = ARGV[2] .. ':' .. ARGV[11] end
  redis.call('HSET', KEYS[1], 'cur', ARGV[7], 'prev', ARGV[2], 'rot', ARGV[5],
             'exp', tostring(exp), 'last', ARGV[5], 'ip', ARGV[9], 'ik', ik, 'chg', '')
  redis.call('PEXPIRE', KEYS[1], ttl)
  keep_indexed(KEYS[2], ARGV[1], ttl)
  return {'rotated', ARGV[7], ARGV[5], tostring(exp)}
end
if ARGV[2] == f[2] then
  local age, ik = now - tonumber(f[3]), f[9] or ''
  local entry = ARGV[2] .. ':' .. ARGV[11]
  local known = ARGV[11] ~= '' and string.find(' ' .. ik .. ' ', ' ' .. entry .. ' ', 1, true)
  local leeway = tonumber(ARGV[6])
  if (known and age <= tonumber(ARGV[12])) or (leeway > 0 and age <= leeway) then
    if ARGV[11] ~= '' and not known and select(2, string.gsub(ik, '%S+', '')) < 4 then
      ik = ik .. ' ' .. entry
    end
    redis.call('HSET', KEYS[1], 'last', ARGV[5], 'ip', ARGV[9], 'ik', ik)
    return {'replayed', f[1], f[3], f[7]}
  end
end
local left = redis.call('PTTL', KEYS[1])
unindex(KEYS[1], KEYS[2], ARGV[1], ARGV[13])
if left > 0 then redis.call('SET', KEYS[3], '1', 'PX', left) end
return {'reused'}
""")

# A password change keeps the caller's session (same id) but starts a new generation, so
# every token issued before it is refused, and ends the user's other sessions: one atomic
# step, so a failure leaves either all of it or none. Safe to run twice, like _ROTATE.
# With an Idempotency-Key, the change is marked (`chg`: generation it left, key hash) until
# the session's next rotation, so that a retry whose reply was lost finds it: if the new
# password is stored (the session accepts the fingerprint given), the recorded successor is
# returned ('retried'); if the database still holds the password from before the change
# (it rolled back while this script still ran, late), the change is made again on top of
# it; anything else (the change stands, and this is another one) is 'stale'.
# KEYS: session, index, the other sessions. ARGV: sid, expected generation, new
# generation, fingerprint, new jti, now ms, idle lifetime s, key hash ('' if none), the
# fingerprint of the password the database held before this request, session key prefix,
# the other sessions' ids.
_RESTART = Script(None, _KEEP_INDEXED + _ACCEPTS + _UNINDEX + b"""
local f = redis.call('HMGET', KEYS[1], 'gen', 'cur', 'abs', 'rot', 'exp', 'chg', 'fp', 'fpx')
if not f[1] then return {'gone'} end
if f[2] == ARGV[5] then return {'rotated', f[2], f[4], f[5]} end
local mark = ''
if ARGV[8] ~= '' then mark = ARGV[2] .. ':' .. ARGV[8] end
local again = mark ~= '' and f[1] == ARGV[3] and f[6] == mark
if f[1] ~= ARGV[2] and not again then return {'stale'} end
if again and accepts(f[7], f[8], ARGV[4]) then return {'retried', f[2], f[4], f[5]} end
if again and accepts(f[7], f[8], ARGV[9]) then return {'stale'} end
local now = tonumber(ARGV[6])
local exp = math.min(math.floor(now / 1000) + tonumber(ARGV[7]), tonumber(f[3]))
local ttl = exp * 1000 - now
if ttl <= 0 then return {'gone'} end
redis.call('HSET', KEYS[1], 'gen', ARGV[3], 'fp', ARGV[4], 'cur', ARGV[5], 'prev', '',
           'rot', ARGV[6], 'last', ARGV[6], 'exp', tostring(exp), 'chg', mark)
redis.call('HDEL', KEYS[1], 'fpx')
redis.call('PEXPIRE', KEYS[1], ttl)
keep_indexed(KEYS[2], ARGV[1], ttl)
for i = 3, #KEYS do
  unindex(KEYS[i], KEYS[2], ARGV[i + 8], ARGV[10])
end
return {'rotated', ARGV[5], ARGV[6], tostring(exp)}
""")

# A re-hash of the same password (Django raising its work factor, say) changes the stored
# hash but is no password change: the sessions that accept the old hash's fingerprint (the
# one in the database now) accept the new one's too. Written before the new hash is saved,
# so no request ever sees a hash that its session does not know. Additive: two re-hashes
# racing from one hash both add theirs (the database keeps one of them), and a rolling
# deploy whose workers re-hash back and forth keeps each step. KEYS: the user's sessions.
# ARGV: old fingerprint, new fingerprint, how many extra fingerprints a session keeps, the
# old hash's fingerprints under fallback keys (space-separated).
_REHASH = Script(None, b"""
local n = 0
local older = ' ' .. ARGV[4] .. ' '
for i = 1, #KEYS do
  local f = redis.call('HMGET', KEYS[i], 'fp', 'fpx')
  local extra = {}
  for x in string.gmatch(f[2] or '', '%S+') do extra[#extra + 1] = x end
  if f[1] and f[1] ~= ARGV[1] and string.find(older, ' ' .. f[1] .. ' ', 1, true) then
    -- Stamped under a fallback key: as good as the old hash's current fingerprint.
    f[1] = ARGV[1]
    redis.call('HSET', KEYS[i], 'fp', ARGV[1])
  end
  if f[1] == ARGV[1] then
    extra[#extra + 1] = ARGV[2]
    while #extra > tonumber(ARGV[3]) do table.remove(extra, 1) end
    redis.call('HSET', KEYS[i], 'fpx', table.concat(extra, ' '))
    n = n + 1
  elseif f[1] then
    for _, x in ipairs(extra) do
      if x == ARGV[1] then
        -- The database holds that re-hash now: it becomes the session's own fingerprint.
        redis.call('HSET', KEYS[i], 'fp', ARGV[1], 'fpx', ARGV[2])
        n = n + 1
        break
      end
    end
  end
end
return n
""")

# Purge: end a session found dead (its user gone, or born with an older password), only if
# it still is: its fingerprint is still the stale one read (a password change may have
# moved it on) and it does not accept the user's current fingerprint (a re-hash may have
# added it), under the current key or a fallback. KEYS: session, index. ARGV: sid, stale
# fingerprint, current ('' if no user), session key prefix, under fallback keys.
_END_IF_DEAD = Script(None, _ACCEPTS + _UNINDEX + b"""
local f = redis.call('HMGET', KEYS[1], 'fp', 'fpx')
if f[1] ~= ARGV[2] then return 0 end
if ARGV[3] ~= '' and accepts_any(f[1], f[2], ARGV[3], ARGV[5]) then return 0 end
unindex(KEYS[1], KEYS[2], ARGV[1], ARGV[4])
return 1
""")

# How many re-hashes a session that is not used in between may live through.
REHASHES_KEPT = 8

# Login limits: a request goes ahead only if every budget has room, and is then held against
# the budgets marked `held` before the password is checked (uncounted if it was right), so
# parallel guesses at one account cannot all pass a check made before any was counted. The
# others (the address's) are counted only once a check has failed, so that correct logins
# in flight behind one address never push it over. A refused request spends no budget
# (else a victim's refusals would exhaust the budget of everyone behind their address).
# Safe to run twice: the attempt id is the member, so a retried run adds nothing.
# KEYS: one sorted set per budget. ARGV: now ms, attempt id, then limit, window ms and held
# (1 or 0) of each. Returns '' when it may go ahead, else the ms until every budget has room.
_RESERVE = Script(None, b"""
local now, wait = tonumber(ARGV[1]), 0
for i = 1, #KEYS do
  local limit, window = tonumber(ARGV[3 * i]), tonumber(ARGV[3 * i + 1])
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now - window)
  if redis.call('ZSCORE', KEYS[i], ARGV[2]) then return '' end
  if redis.call('ZCARD', KEYS[i]) >= limit then
    local oldest = redis.call('ZRANGE', KEYS[i], -limit, -limit, 'WITHSCORES')
    wait = math.max(wait, tonumber(oldest[2]) + window - now)
  end
end
if wait > 0 then return tostring(wait) end
for i = 1, #KEYS do
  if ARGV[3 * i + 2] == '1' then
    redis.call('ZADD', KEYS[i], now, ARGV[2])
    redis.call('PEXPIRE', KEYS[i], ARGV[3 * i + 1])
  end
end
return ''
""")

# Ends a session, only at `generation` when given: a logout only ends the generation its
# token belongs to. KEYS: session, index. ARGV: sid, generation ('' for any), session key
# prefix.
_REVOKE = Script(None, _UNINDEX + b"""
if ARGV[2] ~= '' and redis.call('HGET', KEYS[1], 'gen') ~= ARGV[2] then return 0 end
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('SREM', KEYS[2], ARGV[1])
  return 0
end
unindex(KEYS[1], KEYS[2], ARGV[1], ARGV[3])
return 1
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
    parent: str = "",
    idempotency_key: str = "",
    retry_window_ms: int = 0,
    older_fingerprints: tuple[str, ...] = (),
) -> Rotation:
    """Spend refresh token `jti` (child of `parent`) for `new_jti`, in one atomic step (see
    _ROTATE); `idempotency_key` is the hash of the request's key, recorded with it."""
    args = [session_id, jti, generation, fingerprint, now_ms, leeway_ms, new_jti,
            idle_seconds, ip_address, parent, idempotency_key, retry_window_ms]
    with _connection() as (conn, key):
        args += [_session_prefix(key, user_id), " ".join(older_fingerprints)]
        keys = [*_keys(key, user_id, session_id), _reuse_key(key, user_id, session_id)]
        return _rotation(_ROTATE(keys=keys, args=args, client=conn))


def is_active(*, user_id: str, session_id: str, generation: int, fingerprint: str,
              older_fingerprints: tuple[str, ...] = ()) -> bool:
    """Whether the session exists, at this generation, for this password."""
    with _connection() as (conn, key):
        gen, fp, fpx = conn.hmget(_session_key(key, user_id, session_id), "gen", "fp", "fpx")
    return (gen is not None and int(gen) == generation
            and _accepts_any(fp, fpx, (fingerprint, *older_fingerprints)))


def revoke(*, user_id: str, session_id: str, generation: int | None = None) -> bool:
    """End one session (only at `generation`, when given); True if it was live."""
    args = [session_id, "" if generation is None else generation]
    with _connection() as (conn, key):
        args.append(_session_prefix(key, user_id))
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
    idempotency_key: str = "",
    previous_fingerprint: str = "",
) -> Rotation:
    """Move a session from `generation` to the next, with `new_jti` as its only current
    refresh token and the new password's fingerprint, and end the user's other sessions
    (see _RESTART for a retry with `idempotency_key`, a hash, and `previous_fingerprint`)."""
    with _connection() as (conn, key):
        others = [sid for sid in map(_text, conn.smembers(_index_key(key, user_id)))
                  if sid != session_id]
        keys = _keys(key, user_id, session_id) + [_session_key(key, user_id, sid)
                                                  for sid in others]
        args = [session_id, generation, generation + 1, fingerprint, new_jti, now_ms,
                idle_seconds, idempotency_key, previous_fingerprint,
                _session_prefix(key, user_id), *others]
        return _rotation(_RESTART(keys=keys, args=args, client=conn))


def is_change_retry(*, user_id: str, session_id: str, generation: int, idempotency_key: str
                    ) -> bool:
    """Whether the session left `generation` by a password change made with this key (a
    hash), and has not rotated since: a request repeating that change."""
    with _connection() as (conn, key):
        gen, mark = conn.hmget(_session_key(key, user_id, session_id), "gen", "chg")
    return (gen is not None and int(gen) == generation + 1
            and _text(mark) == f"{generation}:{idempotency_key}")


def add_fingerprint(*, user_id: str, old: str, new: str,
                    older_fingerprints: tuple[str, ...] = ()) -> int:
    """Let the sessions born with password fingerprint `old` (or with `older_fingerprints`,
    the same hash under fallback keys) accept `new` too (a re-hash of the same password);
    returns how many sessions."""
    with _connection() as (conn, key):
        session_ids = map(_text, conn.smembers(_index_key(key, user_id)))
        keys = [_session_key(key, user_id, sid) for sid in session_ids]
        args = [old, new, REHASHES_KEPT, " ".join(older_fingerprints)]
        return int(_REHASH(keys=keys, args=args, client=conn)) if keys else 0


def revoke_all(*, user_id: str) -> int:
    """End every session of a user; returns how many were live."""
    with _connection() as (conn, key):
        index = _index_key(key, user_id)
        session_ids = [_text(sid) for sid in conn.smembers(index)]
        if not session_ids:
            return 0
        pipe = conn.pipeline(transaction=True)
        for sid in session_ids:
            pipe.delete(_session_key(key, user_id, sid))
        # Only the ids read above: a session created meanwhile stays listed.
        pipe.srem(index, *session_ids)
        return sum(pipe.execute()[:-1])


def list_sessions(*, user_id: str, fingerprint: str,
                  older_fingerprints: tuple[str, ...] = ()) -> list[Session]:
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
        if record and _accepts_any(record[b"fp"], record.get(b"fpx"),
                                   (fingerprint, *older_fingerprints))
    ]
    return sorted(sessions, key=lambda s: s.created_at, reverse=True)


@dataclass(frozen=True)
class Budget:
    """A login limit as the store counts it: `limit` attempts of `ident` per window; a
    `held` budget counts an attempt before its password is checked (see _RESERVE)."""

    scope: str
    ident: str
    limit: int
    window_seconds: int
    held: bool = True


def reserve_login_attempt(*, budgets: list[Budget], attempt: str, now_ms: int) -> float | None:
    """If every budget has room, hold `attempt` against the held ones, atomically, and
    return None; else count nothing and return the seconds until all have room."""
    args: list = [now_ms, attempt]
    for budget in budgets:
        args += [budget.limit, budget.window_seconds * 1000, int(budget.held)]
    with _connection() as (conn, key):
        keys = [_throttle_key(key, b.scope, b.ident) for b in budgets]
        wait_ms = _text(_RESERVE(keys=keys, args=args, client=conn))
    return max(int(wait_ms) / 1000, 0.001) if wait_ms else None


def record_login_failure(*, budgets: list[Budget], attempt: str, now_ms: int) -> None:
    """Count a failed password check against budgets that were not held for it."""
    with _connection() as (conn, key):
        pipe = conn.pipeline(transaction=True)
        for budget in budgets:
            throttle_key = _throttle_key(key, budget.scope, budget.ident)
            pipe.zadd(throttle_key, {attempt: now_ms})
            pipe.pexpire(throttle_key, budget.window_seconds * 1000)
        pipe.execute()


def release_login_attempt(*, budgets: list[Budget], attempt: str) -> None:
    """Uncount an attempt that turned out to be a correct password (or never ran)."""
    with _connection() as (conn, key):
        pipe = conn.pipeline(transaction=False)
        for budget in budgets:
            pipe.zrem(_throttle_key(key, budget.scope, budget.ident), attempt)
        pipe.execute()


def redis_version() -> str:
    """The token Redis's version as `INFO server` reports it; "" if INFO is refused."""
    with _connection() as (conn, key):
        try:
            info = conn.info("server")
        except ResponseError:
            return ""
    # str(): redis-py turns a value that reads as a number ("7.2") into one.
    return str(info.get("redis_version", ""))


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
    fingerprints: Callable[[set[str]], dict[str, tuple[str, ...]]],
    batch_size: int,
    dry_run: bool,
    progress: Callable[[PurgeReport], None] = lambda report: None,
) -> PurgeReport:
    """Remove what TTLs cannot: sessions of deleted users or older passwords, stale index
    entries, and records that lost their expiry. `fingerprints` maps user ids to the
    password fingerprints (current key first) of the users that still exist and are active."""
    report = PurgeReport()
    with _connection() as (conn, key):
        for batch in _scan_batches(conn, key, batch_size):
            report.keys_scanned += len(batch)
            sessions, indexes = _parse_keys(batch, report)
            _purge_sessions(conn, key, sessions, fingerprints, dry_run, report)
            _purge_indexes(conn, key, indexes, dry_run, report)
            progress(report)
    return report


def session_fingerprints(*, batch_size: int) -> Iterator[tuple[str, str, list[str]]]:
    """Every stored session's user id, fingerprint and re-hash fingerprints (for reports)."""
    with _connection() as (conn, key):
        for batch in _scan_batches(conn, key, batch_size):
            sessions = [(m["uid"], raw) for raw in batch
                        if (m := _KEY_SHAPE.search(raw)) and m["sid"]]
            pipe = conn.pipeline(transaction=False)
            for _, raw in sessions:
                pipe.hmget(raw, "fp", "fpx")
            for (uid, _), (fp, fpx) in zip(sessions, pipe.execute()):
                if fp is not None:
                    yield uid, _text(fp), _text(fpx).split()


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
_REUSE_SHAPE = re.compile(rf"{KEY_PREFIX}:\{{[^}}]+\}}:x:[A-Za-z0-9_-]+$")  # TTL set with it
_THROTTLE_SHAPE = re.compile(rf"{KEY_PREFIX}:throttle:[a-z_]+:[0-9a-f]{{32}}$")


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
            report.unrecognised_keys += not (_THROTTLE_SHAPE.search(raw)
                                             or _REUSE_SHAPE.search(raw))
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
        if not _accepts_any(fp, fpx, known):
            report.dead_sessions += 1
            args = [sid, _text(fp), known[0] if known else "", _session_prefix(key, uid),
                    " ".join(known[1:])]
            _END_IF_DEAD(keys=[raw, _index_key(key, uid)], args=args, client=pipe)
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


def _accepts_any(fp: bytes | None, fpx: bytes | None, fingerprints: tuple[str, ...]) -> bool:
    """Whether a session accepts any of `fingerprints` (see _ACCEPTS)."""
    known = {_text(fp), *_text(fpx).split()} - {""}
    return any(fingerprint in known for fingerprint in fingerprints)


def _rotation(reply: list) -> Rotation:
    outcome, *rest = (_text(item) for item in reply)
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
        user_agent=_text(record[b"ua"]),
        ip_address=_text(record[b"ip"]),
    )


def _keys(key: KeyFunc, user_id: str, session_id: str) -> list[str]:
    return [_session_key(key, user_id, session_id), _index_key(key, user_id)]


def _session_key(key: KeyFunc, user_id: str, session_id: str) -> str:
    # The {user} hash tag keeps a user's keys in one Redis Cluster slot, for the scripts.
    return key(f"{KEY_PREFIX}:{{{user_id}}}:s:{session_id}")


def _session_prefix(key: KeyFunc, user_id: str) -> str:
    """A session's key without its id, for the scripts to build session keys from index
    members; '' if the cache's key function does not simply prepend (then TTLs stay)."""
    prefix = _session_key(key, user_id, "")
    return prefix if _session_key(key, user_id, "x") == prefix + "x" else ""


def _reuse_key(key: KeyFunc, user_id: str, session_id: str) -> str:
    return key(f"{KEY_PREFIX}:{{{user_id}}}:x:{session_id}")


def _index_key(key: KeyFunc, user_id: str) -> str:
    return key(f"{KEY_PREFIX}:{{{user_id}}}:sessions")


def _throttle_key(key: KeyFunc, scope: str, ident: str) -> str:
    # A keyed hash: fixed length and charset whatever the username, and neither usernames nor
    # addresses can be read back from Redis by trying likely ones.
    digest = salted_hmac("tokens.throttle", ident).hexdigest()[:32]
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
