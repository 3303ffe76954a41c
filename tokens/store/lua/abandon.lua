-- A login answered 503 after its session's write was sent (a timeout: the write may still
-- run, late, in a stalled Redis): the session is removed if it was written, and marked
-- abandoned so that create.lua, if it runs after this, writes nothing. The mark lives a
-- minute: a write that waited in the stall runs within moments of Redis answering again.
-- KEYS: session, index, abandoned mark. ARGV: sid, session key prefix, mark ttl ms.
-- Uses: unindex, shrink_index.
redis.call('SET', KEYS[3], '1', 'PX', ARGV[3])
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
unindex(KEYS[1], KEYS[2], ARGV[1])
shrink_index(KEYS[2], ARGV[2])
return 1
