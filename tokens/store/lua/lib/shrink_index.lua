-- Shared by the scripts that name it in their "Uses:" line: after sessions left a user's
-- index, its TTL shrinks to the longest of the sessions it still lists (no key outlives
-- what it protects), or the index goes when it lists none. `prefix` is the key of a
-- session without its id ('' to leave the TTL be): the sessions share the index's {user}
-- hash tag, so they are in its cluster slot. Called once per script, never per removal, so
-- a script's work stays linear; and only for an index of at most SHRINK_MAX sessions, so no
-- script reads thousands of TTLs while other users wait: a larger index keeps its TTL (at
-- most the idle lifetime of a session it listed) until it shrinks below that.
local SHRINK_MAX = 1000
local function shrink_index(index, prefix)
  if prefix == '' then return end
  local size = redis.call('SCARD', index)
  if size == 0 then redis.call('DEL', index) return end
  if size > SHRINK_MAX then return end
  local longest = -2
  for _, member in ipairs(redis.call('SMEMBERS', index)) do
    longest = math.max(longest, redis.call('PTTL', prefix .. member))
  end
  if longest > 0 then redis.call('PEXPIRE', index, longest)
  elseif longest == -2 then redis.call('DEL', index) end
end
