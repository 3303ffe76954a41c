-- The single-use decision is made here, atomically: whichever request runs this first
-- with the current jti wins the rotation; later ones see their jti as `prev`. Safe to run
-- twice (redis-py retries a command once on a timeout): a request that finds its own new
-- jti already current has won, and gets its rotation back, not a reuse verdict.
-- The password fingerprint must be the session's (`fp`), or the one of a re-hash of the same
-- password (`fpx`, see rehash.lua); any other password ends the session.
-- Outages must not become logouts:
-- - Times are when the script ran (`ran_at`): a rotation that waited in a stalled Redis
--   is dated when it really happened, so a keyless retry right after recovery falls inside
--   the leeway (racing tabs, and any client retrying a 503 without a key).
-- - A lost reply: the client retries with the same Idempotency-Key, recorded (hashed, bound
--   to the spent jti) with the rotation (`ik`); `prev` presented with that key gets the
--   recorded successor within the retry window. Replays inside the leeway (racing tabs)
--   record their keys too (`rk`, at most REPLAY_KEYS_MAX), but each such key is honoured
--   only once after the leeway: enough for a tab whose reply was lost to retry once, and
--   no way for a thief who replayed within the leeway to keep drawing fresh tokens for the
--   whole retry window (its second try is a reuse). Without a key only the leeway applies.
--   Every replay records its time and IP.
-- - A lost rotation (a failover, an AOF that lost its last second): the presented token names
--   the store's current jti as its parent, so the store issued it and lost the write. It is
--   adopted as current and rotated from. Only this service signs a parent claim.
-- A reuse leaves a mark (KEYS[3]) for as long as the session would have lived, so that
-- whoever presents the session's tokens afterwards hears 'reused', not just 'gone'.
-- KEYS: session, index, reuse mark.
-- Uses: clock, keep_indexed, accepts, unindex, shrink_index.
local sid, jti, gen, fingerprint = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local sent_ms, leeway_ms, new_jti, idle_s = tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7],
                                           tonumber(ARGV[8])
local ip, parent, key_hash, retry_window_ms = ARGV[9], ARGV[10], ARGV[11], tonumber(ARGV[12])
local prefix, older_fingerprints = ARGV[13], ARGV[14]
local REPLAY_KEYS_MAX = 4

local f = redis.call('HMGET', KEYS[1], 'cur', 'prev', 'rot', 'gen', 'fp', 'abs', 'exp', 'fpx',
                     'ik', 'rk')
local cur, prev, rot, abs, exp = f[1], f[2], f[3], f[6], f[7]
if not cur then
  -- Ended by a reuse: every later presentation hears so (the session's other holder, and
  -- a reuse whose first verdict was lost to a timeout and resent by redis-py).
  if redis.call('EXISTS', KEYS[3]) == 1 then return {'reused_before'} end
  return {'gone'}
end
if f[4] ~= gen then return {'stale'} end
if not accepts_any(f[5], f[8], fingerprint, older_fingerprints) then
  unindex(KEYS[1], KEYS[2], sid)
  shrink_index(KEYS[2], prefix)
  return {'gone'}
end
if f[5] ~= fingerprint then
  -- A re-hash of the password is saved now, or the key has been rotated: the current
  -- fingerprint becomes the session's own (re-stamped).
  redis.call('HSET', KEYS[1], 'fp', fingerprint)
  redis.call('HDEL', KEYS[1], 'fpx')
end
if cur == new_jti then return {'rotated', cur, rot, exp} end
local now = ran_at(sent_ms)
if jti == cur or (parent ~= '' and parent == cur) then
  local new_exp = math.min(math.floor(now / 1000) + idle_s, tonumber(abs))
  local ttl = new_exp * 1000 - now
  if ttl <= 0 then
    unindex(KEYS[1], KEYS[2], sid)
    shrink_index(KEYS[2], prefix)
    return {'gone'}
  end
  local own = ''
  if key_hash ~= '' then own = jti .. ':' .. key_hash end
  redis.call('HSET', KEYS[1], 'cur', new_jti, 'prev', jti, 'rot', ms_text(now),
             'exp', tostring(new_exp), 'last', ms_text(now), 'ip', ip, 'ik', own, 'rk', '',
             'chg', '')
  redis.call('PEXPIRE', KEYS[1], ttl)
  keep_indexed(KEYS[2], sid, ttl)
  return {'rotated', new_jti, ms_text(now), tostring(new_exp)}
end
if jti == prev then
  local age = now - tonumber(rot)
  local entry = jti .. ':' .. key_hash
  -- The rotation's own key: the first entry (earlier versions appended replays' keys to it).
  local own = key_hash ~= '' and string.match(f[9] or '', '^%S*') == entry
  local replays = f[10] or ''
  local recorded = key_hash ~= '' and
                   string.find(' ' .. replays .. ' ', ' ' .. entry .. ' ', 1, true) ~= nil
  local answer = false
  if leeway_ms > 0 and age <= leeway_ms then
    answer = true
    if key_hash ~= '' and not own and not recorded
        and select(2, string.gsub(replays, '%S+', '')) < REPLAY_KEYS_MAX then
      replays = (replays == '' and entry) or (replays .. ' ' .. entry)
    end
  elseif own and age <= retry_window_ms then
    answer = true
  elseif recorded and age <= retry_window_ms then
    answer = true  -- once: the entry goes
    local kept = {}
    for x in string.gmatch(replays, '%S+') do
      if x ~= entry then kept[#kept + 1] = x end
    end
    replays = table.concat(kept, ' ')
  end
  if answer then
    redis.call('HSET', KEYS[1], 'last', ms_text(now), 'ip', ip, 'rk', replays)
    return {'replayed', cur, rot, exp}
  end
end
local left = redis.call('PTTL', KEYS[1])
unindex(KEYS[1], KEYS[2], sid)
shrink_index(KEYS[2], prefix)
if left > 0 then redis.call('SET', KEYS[3], '1', 'PX', left) end
return {'reused'}
