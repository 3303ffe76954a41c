-- Shared by the scripts that name it in their "Uses:" line: when this script runs, in ms:
-- the app's clock when it sent the request, or Redis's own (TIME) if that is later. A
-- request that waited in a stalled Redis, or behind a failover, runs later than it was
-- sent, and what it records must say so: a client retrying the moment Redis answers again
-- is then inside the leeway of the rotation that really ran just before. The app's clock
-- still counts when it is ahead (a frozen clock in tests, a server a little fast).
local function ran_at(sent_ms)
  local t = redis.call('TIME')
  return math.max(sent_ms, tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
end
local function ms_text(ms)
  return string.format('%.0f', ms)
end
