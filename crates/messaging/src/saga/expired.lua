-- Ids of the sagas whose lease ended before now (the server's clock, the one leases are set by).
-- KEYS[1] lease index; ARGV[1] max.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
