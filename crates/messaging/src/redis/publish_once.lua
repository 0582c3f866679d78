-- Appends a message unless its id was published to the topic within the window: the id's
-- marker holds the first entry id and expires with the window.
-- KEYS[1] stream, KEYS[2] the id's marker; ARGV[1] window (ms), ARGV[2] trim strategy
-- (MAXLEN or MINID), ARGV[3] its threshold, ARGV[4..] the entry's fields and values.
local first = redis.call('GET', KEYS[2])
if first then
  return {1, first}
end
local entry = redis.call('XADD', KEYS[1], ARGV[2], '~', ARGV[3], '*', unpack(ARGV, 4))
redis.call('SET', KEYS[2], entry, 'PX', ARGV[1])
return {0, entry}
