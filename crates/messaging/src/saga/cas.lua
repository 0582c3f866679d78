-- Writes a saga record if its version is still ARGV[1] ("0": only if absent) and the caller
-- owns its lease or the lease ran out (the server's clock); sets version + 1, the owner, and
-- the lease's end (none for a final record) in the record's hash and the lease index.
-- KEYS[1] record hash, KEYS[2] lease index (sorted set of ids by lease end);
-- ARGV[1] expected version, ARGV[2] owner, ARGV[3] lease (ms, 0 = final), ARGV[4] record
-- JSON, ARGV[5] id. Returns {version, lease end} or false.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local current = redis.call('HMGET', KEYS[1], 'version', 'owner', 'lease_until')
local version = tonumber(current[1] or '0') or 0
if version ~= tonumber(ARGV[1]) then
  return false
end
if version > 0 and current[2] ~= ARGV[2] and tonumber(current[3] or '0') > now then
  return false
end
local lease = tonumber(ARGV[3])
local until_ms = 0
if lease > 0 then
  until_ms = now + lease
  redis.call('ZADD', KEYS[2], until_ms, ARGV[5])
else
  redis.call('ZREM', KEYS[2], ARGV[5])
end
redis.call('HSET', KEYS[1], 'version', version + 1, 'owner', ARGV[2], 'lease_until', until_ms, 'record', ARGV[4])
return {version + 1, until_ms}
