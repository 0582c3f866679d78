-- Removes one instance and tells watchers.
-- KEYS[1] instance key, KEYS[2] the service's index; ARGV[1] id, ARGV[2] change channel,
-- ARGV[3] service name. Returns 1 when the instance was registered.
local existed = redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
if existed == 1 then
  redis.call('PUBLISH', ARGV[2], ARGV[3])
end
return existed
