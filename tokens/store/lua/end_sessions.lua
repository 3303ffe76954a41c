-- Ends a batch of a user's sessions (their ids read from the index with SSCAN, a batch at
-- a time, so that no one script's work grows with the user's session count): all of them,
-- or, given the fingerprints of the password in force, only those that accept none of
-- them (sessions from before a password change or reset; a login with the new password
-- meanwhile stays). Then the index shrinks, once. Returns the ids of the sessions it ended
-- that were live.
-- KEYS: index, then one session per id. ARGV: session key prefix, the fingerprints to keep
-- (space-separated; '' ends every listed session), then the session ids.
-- Uses: accepts, unindex, shrink_index.
local prefix, keep = ARGV[1], ARGV[2]
local function kept(fp, fpx)
  for x in string.gmatch(keep, '%S+') do
    if accepts(fp, fpx, x) then return true end
  end
  return false
end
local ended = {}
for i = 2, #KEYS do
  local sid = ARGV[i + 1]
  local f = redis.call('HMGET', KEYS[i], 'fp', 'fpx')
  if not f[1] then
    redis.call('SREM', KEYS[1], sid)
  elseif not kept(f[1], f[2]) then
    unindex(KEYS[i], KEYS[1], sid)
    ended[#ended + 1] = sid
  end
end
shrink_index(KEYS[1], prefix)
return ended
