-- Ends every session a user's index listed when it was read: the ids given, so that a
-- session created meanwhile stays listed. Returns the ids of those that were live.
-- KEYS: index, then one session per id. ARGV: the session ids.
local ended = {}
for i = 2, #KEYS do
  if redis.call('DEL', KEYS[i]) == 1 then ended[#ended + 1] = ARGV[i - 1] end
end
redis.call('SREM', KEYS[1], unpack(ARGV))
return ended
