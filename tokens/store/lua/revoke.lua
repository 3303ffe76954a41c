-- Ends a session (an admin's, a command's, or the user's DELETE of one of their sessions;
-- a logout is logout.lua, which judges the token it is given). KEYS: session, index.
-- ARGV: sid, session key prefix.
-- Uses: unindex, shrink_index.
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('SREM', KEYS[2], ARGV[1])
  return 0
end
unindex(KEYS[1], KEYS[2], ARGV[1])
shrink_index(KEYS[2], ARGV[2])
return 1
