-- Shared by the scripts that name it in their "Uses:" line: end a session and take it out
-- of its user's index; then `shrink_index` once, after every removal a script makes.
local function unindex(session, index, sid)
  redis.call('DEL', session)
  redis.call('SREM', index, sid)
end
