-- Login limits: a request goes ahead only if every budget has room, and is then held against
-- the budgets marked `held` before the password is checked (uncounted if it was right), so
-- parallel guesses at one account cannot all pass a check made before any was counted. The
-- others (the address's) are counted only once a check has failed, so that correct logins
-- in flight behind one address never push it over. A refused request spends no budget
-- (else a victim's refusals would exhaust the budget of everyone behind their address).
-- Safe to run twice: the attempt id is the member, so a retried run adds nothing.
-- KEYS: one sorted set per budget. ARGV: now ms, attempt id, then limit, window ms and held
-- (1 or 0) of each. Returns '' when it may go ahead, else the ms until every budget has room
-- followed by the (1-based) numbers of the full budgets, space-separated.
local now, wait, full = tonumber(ARGV[1]), 0, ''
for i = 1, #KEYS do
  local limit, window = tonumber(ARGV[3 * i]), tonumber(ARGV[3 * i + 1])
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now - window)
  if redis.call('ZSCORE', KEYS[i], ARGV[2]) then return '' end
  if redis.call('ZCARD', KEYS[i]) >= limit then
    local oldest = redis.call('ZRANGE', KEYS[i], -limit, -limit, 'WITHSCORES')
    wait = math.max(wait, tonumber(oldest[2]) + window - now)
    full = full .. ' ' .. i
  end
end
if wait > 0 then return tostring(wait) .. full end
for i = 1, #KEYS do
  if ARGV[3 * i + 2] == '1' then
    redis.call('ZADD', KEYS[i], now, ARGV[2])
    redis.call('PEXPIRE', KEYS[i], ARGV[3 * i + 1])
  end
end
return ''
