-- Takes or renews the exclusive lease of a group on a topic (ordered consumption).
-- KEYS[1] the lease; ARGV[1] owner, ARGV[2] lease (ms). 1 when ARGV[1] holds it now.
local holder = redis.call('GET', KEYS[1])
if holder == false or holder == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
