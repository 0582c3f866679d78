-- The live instances of one service; prunes the index of members whose key is gone.
-- KEYS[1] the service's index, KEYS[2..] the instance keys of the members the caller read from
-- the index (same hash slot); ARGV[i] the member of KEYS[i + 1]. Every key it touches is
-- declared. Returns {now (ms), description 1, expiry 1, description 2, expiry 2, ...}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local out = {now}
for i = 2, #KEYS do
  local member = ARGV[i - 1]
  local expiry = redis.call('ZSCORE', KEYS[1], member)
  if expiry then
    local description = redis.call('GET', KEYS[i])
    if description then
      out[#out + 1] = description
      out[#out + 1] = tonumber(expiry)
    else
      redis.call('ZREM', KEYS[1], member)
    end
  end
end
return out
