-- A password change keeps the caller's session (same id) but starts a new generation, so
-- every token issued before it is refused, and ends the user's other sessions: one atomic
-- step, so a failure leaves either all of it or none. Safe to run twice, like rotate.lua.
-- With an Idempotency-Key, the change is marked (`chg`: generation it left, key hash) until
-- the session's next rotation, so that a retry whose reply was lost finds it: if the new
-- password is stored (the session accepts the fingerprint given), the recorded successor is
-- returned ('retried'); if the database still holds the password from before the change
-- (it rolled back while this script still ran, late), the change is made again on top of
-- it; anything else (the change stands, and this is another one) is 'stale'.
-- KEYS: session, index, the other sessions. ARGV: sid, expected generation, new
-- generation, fingerprint, new jti, now ms, idle lifetime s, key hash ('' if none), the
-- fingerprint of the password the database held before this request, session key prefix,
-- the other sessions' ids. Returns the outcome, the successor's jti, issue time and expiry,
-- then the ids of the other sessions it ended (those that were live).
-- Uses: keep_indexed, accepts, unindex.
local f = redis.call('HMGET', KEYS[1], 'gen', 'cur', 'abs', 'rot', 'exp', 'chg', 'fp', 'fpx')
if not f[1] then return {'gone'} end
if f[2] == ARGV[5] then return {'rotated', f[2], f[4], f[5]} end
local mark = ''
if ARGV[8] ~= '' then mark = ARGV[2] .. ':' .. ARGV[8] end
local again = mark ~= '' and f[1] == ARGV[3] and f[6] == mark
if f[1] ~= ARGV[2] and not again then return {'stale'} end
if again and accepts(f[7], f[8], ARGV[4]) then return {'retried', f[2], f[4], f[5]} end
if again and accepts(f[7], f[8], ARGV[9]) then return {'stale'} end
local now = tonumber(ARGV[6])
local exp = math.min(math.floor(now / 1000) + tonumber(ARGV[7]), tonumber(f[3]))
local ttl = exp * 1000 - now
if ttl <= 0 then return {'gone'} end
redis.call('HSET', KEYS[1], 'gen', ARGV[3], 'fp', ARGV[4], 'cur', ARGV[5], 'prev', '',
           'rot', ARGV[6], 'last', ARGV[6], 'exp', tostring(exp), 'chg', mark)
redis.call('HDEL', KEYS[1], 'fpx')
redis.call('PEXPIRE', KEYS[1], ttl)
keep_indexed(KEYS[2], ARGV[1], ttl)
local reply = {'rotated', ARGV[5], ARGV[6], tostring(exp)}
for i = 3, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 1 then table.insert(reply, ARGV[i + 8]) end
  unindex(KEYS[i], KEYS[2], ARGV[i + 8], ARGV[10])
end
return reply
