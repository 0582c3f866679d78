-- Hands the group's messages idle for at least ARGV[3] ms (their consumer died or hangs) to
-- ARGV[2], skipping those parked for a retry; XCLAIM's own idle check makes two reclaimers
-- racing for one message take it once. Returns {id, deliveries, fields} per message.
-- KEYS[1] stream; ARGV[1] group, ARGV[2] consumer, ARGV[3] min idle (ms), ARGV[4] max.
local max = tonumber(ARGV[4])
local pending = redis.call('XPENDING', KEYS[1], ARGV[1], 'IDLE', ARGV[3], '-', '+', max * 4 + 16)
local out = {}
for _, p in ipairs(pending) do
  if #out >= max then
    break
  end
  if p[2] ~= '__retry' then
    local entries = redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], p[1])
    local entry = entries[1]
    if entry then
      table.insert(out, {entry[1], p[4] + 1, entry[2]})
    end
  end
end
return out
