-- The live instances of one service; prunes the index of members whose key is gone.
-- KEYS[1] the service's index, ARGV[1] the prefix of its instance keys (same hash slot).
-- Returns {now (ms), description 1, expiry 1, description 2, expiry 2, ...}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local members = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
local out = {now}
for i = 1, #members, 2 do
  local description = redis.call('GET', ARGV[1] .. members[i])
  if description then
    out[#out + 1] = description
    out[#out + 1] = tonumber(members[i + 1])
  else
    redis.call('ZREM', KEYS[1], members[i])
  end
end
return out
