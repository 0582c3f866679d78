-- Delivers the group's retries that are due to a consumer: each claimed (its delivery count
-- grows by one) and returned as {id, deliveries, fields}.
-- KEYS[1] stream, KEYS[2] delay set; ARGV[1] group, ARGV[2] consumer, ARGV[3] max.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ids = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, tonumber(ARGV[3]))
local out = {}
for _, id in ipairs(ids) do
  redis.call('ZREM', KEYS[2], id)
  local entries = redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, id)
  local entry = entries[1]
  if entry then
    local p = redis.call('XPENDING', KEYS[1], ARGV[1], id, id, 1)
    local count = 1
    if p[1] then count = p[1][4] end
    table.insert(out, {entry[1], count, entry[2]})
  end
end
return out
