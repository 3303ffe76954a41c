-- Creates a session, and releases the login attempt that was held against the login
-- limits while its (correct) password was checked: one round trip for both.
-- KEYS: session, index, then the budgets holding the attempt. ARGV: session id, ttl ms,
-- attempt id ('' if none), then field/value pairs.
-- Uses: keep_indexed.
redis.call('HSET', KEYS[1], unpack(ARGV, 4))
redis.call('PEXPIRE', KEYS[1], ARGV[2])
keep_indexed(KEYS[2], ARGV[1], tonumber(ARGV[2]))
for i = 3, #KEYS do
  redis.call('ZREM', KEYS[i], ARGV[3])
end
return 1
