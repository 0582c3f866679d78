-- Records that keys carry a tag. KEYS[1] = the tag index (a sorted set: member = full key,
-- score = its expiry in unix ms, +inf when it never expires). ARGV = key1, ttl_ms1, key2,
-- ttl_ms2, ... (ttl -1 = never). Members whose keys have expired are dropped first, and the
-- index itself expires with its last member, so it never outgrows the live tagged keys.
-- Returns the index size.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. now)
for i = 1, #ARGV, 2 do
  local ttl = tonumber(ARGV[i + 1])
  local score = '+inf'
  if ttl >= 0 then score = now + ttl end
  redis.call('ZADD', KEYS[1], score, ARGV[i])
end
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if last[2] == nil or last[2] == 'inf' then
  redis.call('PERSIST', KEYS[1])
else
  redis.call('PEXPIREAT', KEYS[1], math.floor(tonumber(last[2])))
end
return redis.call('ZCARD', KEYS[1])
