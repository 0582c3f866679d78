-- Appends one revocation to the shared log and trims entries older than the retention,
-- in server time (TIME), in one round trip.
-- KEYS[1] the log stream; ARGV: kind ("jti" | "sub"), value, Unix seconds, retention ms.
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local oldest = now_ms - tonumber(ARGV[4])
if oldest < 0 then oldest = 0 end
return redis.call('XADD', KEYS[1], 'MINID', '~', oldest, '*',
                  'k', ARGV[1], 'v', ARGV[2], 't', ARGV[3])
