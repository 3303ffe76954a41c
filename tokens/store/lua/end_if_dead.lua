-- Purge: end a session found dead (its user gone, or born with an older password), only if
-- it still is: its fingerprint is still the stale one read (a password change may have
-- moved it on) and it does not accept the user's current fingerprint (a re-hash may have
-- added it), under the current key or a fallback. KEYS: session, index. ARGV: sid, stale
-- fingerprint, current ('' if no user), session key prefix, under fallback keys.
-- Uses: accepts, unindex, shrink_index.
local f = redis.call('HMGET', KEYS[1], 'fp', 'fpx')
if f[1] ~= ARGV[2] then return 0 end
if ARGV[3] ~= '' and accepts_any(f[1], f[2], ARGV[3], ARGV[5]) then return 0 end
unindex(KEYS[1], KEYS[2], ARGV[1])
shrink_index(KEYS[2], ARGV[4])
return 1
