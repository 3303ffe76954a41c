-- Ends every session a user's index listed when it was read: the ids given, so that a
-- session created meanwhile stays listed. Returns how many were live.
-- KEYS: index, then one session per id. ARGV: the session ids.
local ended = 0
for i = 2, #KEYS do
  ended = ended + redis.call('DEL', KEYS[i])
end
redis.call('SREM', KEYS[1], unpack(ARGV))
return ended
