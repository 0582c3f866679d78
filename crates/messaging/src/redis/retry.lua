-- Parks a pending entry until its retry is due: owned by the pseudo-consumer `__retry` (so
-- reclaiming, which skips that owner, cannot take it early), its delivery count unchanged
-- (JUSTID), its due time (the server's clock) in the group's delay set.
-- KEYS[1] stream, KEYS[2] delay set; ARGV[1] group, ARGV[2] entry id, ARGV[3] delay (ms).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local parked = redis.call('XCLAIM', KEYS[1], ARGV[1], '__retry', 0, ARGV[2], 'JUSTID')
if #parked == 0 then
  return 0
end
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[3]), ARGV[2])
return 1
