-- Registers or renews one instance.
-- KEYS[1] instance key, KEYS[2] the service's index (sorted set: id -> expiry, ms)
-- ARGV[1] id, ARGV[2] description (JSON), ARGV[3] ttl (ms), ARGV[4] change channel,
-- ARGV[5] service name
-- Returns {changed (0/1), expiry (ms, server time)}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[3])
local old = redis.call('GET', KEYS[1])
redis.call('SET', KEYS[1], ARGV[2], 'PX', ttl)
redis.call('ZADD', KEYS[2], now + ttl, ARGV[1])
-- The index lives as long as its longest-lived member.
if redis.call('PTTL', KEYS[2]) < ttl then
  redis.call('PEXPIRE', KEYS[2], ttl)
end
if old ~= ARGV[2] then
  redis.call('PUBLISH', ARGV[4], ARGV[5])
  return {1, now + ttl}
end
return {0, now + ttl}
