-- Creates a session. KEYS: session, index. ARGV: session id, ttl ms, then field/value pairs.
-- Uses: keep_indexed.
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
redis.call('PEXPIRE', KEYS[1], ARGV[2])
keep_indexed(KEYS[2], ARGV[1], tonumber(ARGV[2]))
return 1
