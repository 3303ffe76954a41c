-- Shared by the scripts that name it in their "Uses:" line: whether a session accepts
-- password fingerprint `x`, its own (`fp`) or one of a re-hash of the same password
-- (`fpx`, space-separated; see rehash.lua). `accepts_any` also takes fingerprints under
-- fallback keys (space-separated; see tokens.keys): a session stamped under a key being
-- rotated out is still recognised.
local function accepts(fp, fpx, x)
  return fp == x or string.find(' ' .. (fpx or '') .. ' ', ' ' .. x .. ' ', 1, true) ~= nil
end
local function accepts_any(fp, fpx, current, older)
  if accepts(fp, fpx, current) then return true end
  for x in string.gmatch(older or '', '%S+') do
    if accepts(fp, fpx, x) then return true end
  end
  return false
end
