-- The services that had a live instance at their last heartbeat. KEYS[1] the services set.
-- Returns {now (ms), service 1, service 2, ...}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local out = redis.call('ZRANGE', KEYS[1], 0, -1)
table.insert(out, 1, now)
return out
