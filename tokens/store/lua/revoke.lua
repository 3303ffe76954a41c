-- Ends a session, only at `generation` when given: a logout only ends the generation its
-- token belongs to. KEYS: session, index. ARGV: sid, generation ('' for any), session key
-- prefix.
-- Uses: unindex, shrink_index.
if ARGV[2] ~= '' and redis.call('HGET', KEYS[1], 'gen') ~= ARGV[2] then return 0 end
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('SREM', KEYS[2], ARGV[1])
  return 0
end
unindex(KEYS[1], KEYS[2], ARGV[1])
shrink_index(KEYS[2], ARGV[3])
return 1
