-- Moves a pending message to the group's dead-letter stream (its fields, plus `original`,
-- `error` and `attempts`) and acks it, atomically: never both lost and acked, never twice.
-- KEYS[1] stream, KEYS[2] delay set, KEYS[3] dead-letter stream;
-- ARGV[1] group, ARGV[2] entry id, ARGV[3] error, ARGV[4] attempts, ARGV[5] max dead letters.
local entry = redis.call('XRANGE', KEYS[1], ARGV[2], ARGV[2])
local acked = redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZREM', KEYS[2], ARGV[2])
if acked == 0 then
  return 0
end
local fields = {'original', ARGV[2], 'error', ARGV[3], 'attempts', ARGV[4]}
if entry[1] then
  for _, f in ipairs(entry[1][2]) do
    table.insert(fields, f)
  end
end
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[5], '*', unpack(fields))
return 1
