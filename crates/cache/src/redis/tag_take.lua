-- Removes a tag index and returns the keys that carried the tag and have not expired.
-- KEYS[1] = the tag index.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local keys = redis.call('ZRANGEBYSCORE', KEYS[1], now, '+inf')
redis.call('DEL', KEYS[1])
return keys
