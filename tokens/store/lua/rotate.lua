-- The single-use decision is made here, atomically: whichever request runs this first
-- with the current jti wins the rotation; later ones see their jti as `prev`. Safe to run
-- twice (redis-py retries a command once on a timeout): a request that finds its own new
-- jti already current has won, and gets its rotation back, not a reuse verdict.
-- The password fingerprint must be the session's (`fp`), or the one of a re-hash of the same
-- password (`fpx`, see rehash.lua); any other password ends the session.
-- Outages must not become logouts:
-- - A lost reply: the client retries with the same Idempotency-Key, recorded (hashed, bound
--   to the spent jti, `ik`) with the rotation, and with each replay inside the leeway (racing
--   tabs, up to 4); `prev` presented with such a key gets the recorded successor within the
--   retry window. Without a key only the leeway applies, so a thief replaying a spent token
--   (with a key of their own) still ends the session. Every replay records its time and IP.
-- - A lost rotation (a failover, an AOF that lost its last second): the presented token names
--   the store's current jti as its parent, so the store issued it and lost the write. It is
--   adopted as current and rotated from. Only this service signs a parent claim.
-- A reuse leaves a mark (KEYS[3]) for as long as the session would have lived, so that
-- whoever presents the session's tokens afterwards hears 'reused', not just 'gone'.
-- KEYS: session, index, reuse mark. ARGV: sid, jti, gen, fingerprint, now ms, leeway ms, new jti,
-- idle lifetime s, ip, parent jti ('' if none), idempotency key hash ('' if none), retry
-- window ms, session key prefix, fingerprints under fallback keys (space-separated).
-- Uses: keep_indexed, accepts, unindex.
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
