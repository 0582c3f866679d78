-- Appends a message unless its id was published to the topic within the window: the id's
-- marker holds the first entry id and expires with the window.
-- KEYS[1] stream, KEYS[2] the id's marker; ARGV[1] window (ms), ARGV[2] MAXLEN, ARGV[3..] the
-- entry's fields and values.
local first = redis.call('GET', KEYS[2])
if first then
  return {1, first}
end
local entry = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', unpack(ARGV, 3))
redis.call('SET', KEYS[2], entry, 'PX', ARGV[1])
return {0, entry}
