-- A password change keeps the caller's session (same id) but starts a new generation, so
-- every token issued before it is refused, with the new password's fingerprint, so every
-- other session (born with the old one) is refused from now on: one atomic step, safe to
-- run twice, like rotate.lua. The other sessions' records are then removed in batches
-- (end_sessions.lua), so that no script's work grows with the user's session count.
-- With an Idempotency-Key, the change is marked (`chg`: generation it left, key hash) until
-- the session's next rotation, so that a retry whose reply was lost finds it: if the new
-- password is stored (the session accepts the fingerprint given), the recorded successor is
-- returned ('retried'); if the database still holds the password from before the change
-- (it rolled back while this script still ran, late), the change is made again on top of
-- it; anything else (the change stands, and this is another one) is 'stale'.
-- KEYS: session, index. Returns the outcome, then the successor's jti, issue time, expiry.
-- Uses: keep_indexed, accepts.
local sid, generation, new_generation = ARGV[1], ARGV[2], ARGV[3]
local fingerprint, new_jti, now, idle_s = ARGV[4], ARGV[5], tonumber(ARGV[6]), tonumber(ARGV[7])
local key_hash, previous_fingerprint = ARGV[8], ARGV[9]

local f = redis.call('HMGET', KEYS[1], 'gen', 'cur', 'abs', 'rot', 'exp', 'chg', 'fp', 'fpx')
if not f[1] then return {'gone'} end
if f[2] == new_jti then return {'rotated', f[2], f[4], f[5]} end
local mark = ''
if key_hash ~= '' then mark = generation .. ':' .. key_hash end
local again = mark ~= '' and f[1] == new_generation and f[6] == mark
if f[1] ~= generation and not again then return {'stale'} end
if again and accepts(f[7], f[8], fingerprint) then return {'retried', f[2], f[4], f[5]} end
if again and accepts(f[7], f[8], previous_fingerprint) then return {'stale'} end
local exp = math.min(math.floor(now / 1000) + idle_s, tonumber(f[3]))
local ttl = exp * 1000 - now
if ttl <= 0 then return {'gone'} end
redis.call('HSET', KEYS[1], 'gen', new_generation, 'fp', fingerprint, 'cur', new_jti,
           'prev', '', 'rot', ARGV[6], 'last', ARGV[6], 'exp', tostring(exp), 'chg', mark)
redis.call('HDEL', KEYS[1], 'fpx')
redis.call('PEXPIRE', KEYS[1], ttl)
keep_indexed(KEYS[2], sid, ttl)
return {'rotated', new_jti, ARGV[6], tostring(exp)}
