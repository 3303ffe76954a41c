-- A re-hash of the same password (Django raising its work factor, say) changes the stored
-- hash but is no password change: the sessions that accept the old hash's fingerprint (the
-- one in the database now) accept the new one's too. Written before the new hash is saved,
-- so no request ever sees a hash that its session does not know. Additive: two re-hashes
-- racing from one hash both add theirs (the database keeps one of them), and a rolling
-- deploy whose workers re-hash back and forth keeps each step. KEYS: the user's sessions.
-- ARGV: old fingerprint, new fingerprint, how many extra fingerprints a session keeps, the
-- old hash's fingerprints under fallback keys (space-separated).
local n = 0
local older = ' ' .. ARGV[4] .. ' '
for i = 1, #KEYS do
  local f = redis.call('HMGET', KEYS[i], 'fp', 'fpx')
  local extra = {}
  for x in string.gmatch(f[2] or '', '%S+') do extra[#extra + 1] = x end
  if f[1] and f[1] ~= ARGV[1] and string.find(older, ' ' .. f[1] .. ' ', 1, true) then
    -- Stamped under a fallback key: as good as the old hash's current fingerprint.
    f[1] = ARGV[1]
    redis.call('HSET', KEYS[i], 'fp', ARGV[1])
  end
  if f[1] == ARGV[1] then
    extra[#extra + 1] = ARGV[2]
    while #extra > tonumber(ARGV[3]) do table.remove(extra, 1) end
    redis.call('HSET', KEYS[i], 'fpx', table.concat(extra, ' '))
    n = n + 1
  elseif f[1] then
    for _, x in ipairs(extra) do
      if x == ARGV[1] then
        -- The database holds that re-hash now: it becomes the session's own fingerprint.
        redis.call('HSET', KEYS[i], 'fp', ARGV[1], 'fpx', ARGV[2])
        n = n + 1
        break
      end
    end
  end
end
return n
