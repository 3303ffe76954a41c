-- Shared by the scripts that name it in their "Uses:" line: end a session and take it out
-- of its user's index, whose TTL then shrinks to the longest of the sessions it still
-- lists (no key outlives what it protects). `prefix` is the key of a session without its
-- id ('' to leave the TTL be): the sessions share the index's {user} hash tag, so they are
-- in its cluster slot.
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
