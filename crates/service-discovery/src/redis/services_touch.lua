-- Records that a service has a live instance until ARGV[2] (ms).
-- KEYS[1] the services set (service -> latest expiry); ARGV[1] service, ARGV[2] expiry,
-- ARGV[3] ttl (ms).
redis.call('ZADD', KEYS[1], 'GT', ARGV[2], ARGV[1])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[3]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
end
return 1
