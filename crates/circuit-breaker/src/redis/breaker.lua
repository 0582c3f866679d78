-- nilecare-circuit-breaker shared state.
-- KEYS[1] record (hash: st closed|open|half, until µs, opens, pa/pd/pf/ps probes admitted/done/
--         failed/slow, hs half-open since µs), KEYS[2] window (hash: c<sec>, f<sec>, s<sec>).
-- ARGV: op, window_s, min_calls, fail_thr, slow_thr, initial_us, multiplier, max_us,
--       max_half_us (0 = none), permits, then per op:
--   flush: calls, failures, slow          -> {state, remaining_us}
--   acquire:                              -> {granted, state, remaining_us}
--   done: failure, slow, ignored          -> {state, remaining_us}
-- state: 0 closed, 1 open, 2 half-open. Time from Redis TIME.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local rec, win = KEYS[1], KEYS[2]
local op = ARGV[1]
local window_s, min_calls = tonumber(ARGV[2]), tonumber(ARGV[3])
local fail_thr, slow_thr = tonumber(ARGV[4]), tonumber(ARGV[5])
local initial, mult, max_wait = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local max_half, permits = tonumber(ARGV[9]), tonumber(ARGV[10])

local r = redis.call('HMGET', rec, 'st', 'until', 'opens', 'pa', 'pd', 'pf', 'ps', 'hs')
local st = r[1] or 'closed'
local until_ = tonumber(r[2]) or 0
local opens = tonumber(r[3]) or 0
local pa, pd, pf, ps, hs = tonumber(r[4]) or 0, tonumber(r[5]) or 0, tonumber(r[6]) or 0, tonumber(r[7]) or 0, tonumber(r[8]) or 0

local function save()
  redis.call('HSET', rec, 'st', st, 'until', string.format('%d', until_), 'opens', opens,
    'pa', pa, 'pd', pd, 'pf', pf, 'ps', ps, 'hs', string.format('%d', hs))
  redis.call('PEXPIRE', rec, 86400000)
end

local function open()
  opens = opens + 1
  local wait = math.min(initial * mult ^ (opens - 1), max_wait)
  st, until_ = 'open', now + wait
  redis.call('DEL', win)
end

local function tick()
  if st == 'open' and now >= until_ then
    st, pa, pd, pf, ps, hs = 'half', 0, 0, 0, 0, now
  elseif st == 'half' and max_half > 0 and now - hs >= max_half then
    open()
  end
end

local function code()
  if st == 'open' then return 1 elseif st == 'half' then return 2 else return 0 end
end

tick()
if op == 'flush' then
  local calls, failures, slow = tonumber(ARGV[11]), tonumber(ARGV[12]), tonumber(ARGV[13])
  local sec = math.floor(now / 1000000)
  if calls > 0 and st == 'closed' then
    redis.call('HINCRBY', win, 'c' .. sec, calls)
    redis.call('HINCRBY', win, 'f' .. sec, failures)
    redis.call('HINCRBY', win, 's' .. sec, slow)
    redis.call('PEXPIRE', win, (window_s + 2) * 1000)
  end
  if st == 'closed' then
    local tc, tf, ts = 0, 0, 0
    local all = redis.call('HGETALL', win)
    for i = 1, #all, 2 do
      local kind, s = string.sub(all[i], 1, 1), tonumber(string.sub(all[i], 2))
      if s and s > sec - window_s then
        local v = tonumber(all[i + 1])
        if kind == 'c' then tc = tc + v elseif kind == 'f' then tf = tf + v else ts = ts + v end
      elseif s then
        redis.call('HDEL', win, all[i])
      end
    end
    if tc >= min_calls and (tf * 100 >= fail_thr * tc or ts * 100 >= slow_thr * tc) then open() end
  end
  save()
  return { code(), math.max(0, until_ - now) }
elseif op == 'acquire' then
  local granted = 0
  if st == 'half' and pa < permits then pa, granted = pa + 1, 1 end
  save()
  return { granted, code(), math.max(0, until_ - now) }
else
  local failure, slow, ignored = tonumber(ARGV[11]), tonumber(ARGV[12]), tonumber(ARGV[13])
  if st == 'half' then
    if ignored == 1 then
      pa = math.max(0, pa - 1)
    else
      pd, pf, ps = pd + 1, pf + failure, ps + slow
      if pd >= permits then
        if pf * 100 >= fail_thr * pd or ps * 100 >= slow_thr * pd then
          open()
        else
          st, opens = 'closed', 0
          redis.call('DEL', win)
        end
      end
    end
  end
  save()
  return { code(), math.max(0, until_ - now) }
end
