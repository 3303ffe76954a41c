-- Creates a session, and releases the login attempt that was held against the login
-- limits while its (correct) password was checked: one round trip for both. Not if the
-- session was abandoned (KEYS[3], see abandon.lua): a login that answered 503 while this
-- script waited in a stalled Redis must not leave a session behind that nobody holds.
-- KEYS: session, index, abandoned mark, then the budgets holding the attempt. ARGV:
-- session id, ttl ms, attempt id ('' if none), then field/value pairs.
-- Uses: keep_indexed.
-- The HSET comes first: Redis refuses a full memory (noeviction) at a script's first write
-- only, and a 503 must then leave nothing written.
local abandoned = redis.call('EXISTS', KEYS[3]) == 1
if not abandoned then
  redis.call('HSET', KEYS[1], unpack(ARGV, 4))
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  keep_indexed(KEYS[2], ARGV[1], tonumber(ARGV[2]))
end
for i = 4, #KEYS do
  redis.call('ZREM', KEYS[i], ARGV[3])
end
if abandoned then return 0 end
return 1
