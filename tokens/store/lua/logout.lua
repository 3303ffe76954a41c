-- A logout ends the session of the refresh token presented if that token is the session's
-- current one (or one whose rotation the store lost: its parent is current, see
-- rotate.lua), or the one spent just before, within the leeway (a racing tab logging out).
-- A token spent before that is reuse wherever it is presented: the session ends with a
-- reuse mark, as in rotate.lua, and the caller is told 'reused' (the API still answers 204).
-- A token of an older generation (from before a password change) ends nothing.
-- KEYS: session, index, reuse mark. ARGV: sid, jti, generation, parent jti ('' if none),
-- now ms, leeway ms, session key prefix.
-- Uses: clock, unindex, shrink_index.
local sid, jti, gen, parent = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local sent_ms, leeway_ms, prefix = tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7]

local f = redis.call('HMGET', KEYS[1], 'cur', 'prev', 'rot', 'gen')
if not f[1] then
  redis.call('SREM', KEYS[2], sid)
  return 'gone'
end
if f[4] ~= gen then return 'stale' end
local outcome = 'reused'
if jti == f[1] or (parent ~= '' and parent == f[1]) then
  outcome = 'ended'
elseif jti == f[2] and leeway_ms > 0 and ran_at(sent_ms) - tonumber(f[3]) <= leeway_ms then
  outcome = 'ended'
end
local left = redis.call('PTTL', KEYS[1])
unindex(KEYS[1], KEYS[2], sid)
shrink_index(KEYS[2], prefix)
if outcome == 'reused' and left > 0 then redis.call('SET', KEYS[3], '1', 'PX', left) end
return outcome
