-- Shared by the scripts that name it in their "Uses:" line: keep a session id in its
-- user's index, and the index alive at least as long as that session.
local function keep_indexed(index, sid, ttl)
  redis.call('SADD', index, sid)
  if redis.call('PTTL', index) < ttl then redis.call('PEXPIRE', index, ttl) end
end
