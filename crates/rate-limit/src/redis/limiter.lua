-- nilecare-rate-limit: evaluate groups of checks in order; a group is consumed only if every
-- check in it passes (check_many is one group; a batch of independent checks is one group each,
-- with the same outcome as running them one after the other). Every entry sees the units taken
-- by the entries before it, in its own group and in earlier groups.
-- KEYS per entry: the state; then the penalty box only for a policy with a block time
-- (block_us > 0).
-- State: three doubles packed little-endian (struct '<ddd', 24 bytes: window index, count,
-- previous count / tokens, last refill µs / TAT µs) set with PX, or a sorted set of unit
-- timestamps for the sliding log. A string of any other shape reads as a fresh key.
-- ARGV: the number of distinct policies P, then 6 per policy: algorithm, limit, window_us,
-- burst, block_us, shadow; then the number of groups; each group: its entry count, then 3 per
-- entry: policy index (1-based), cost, mode.
--   algorithm: 1 fixed window, 2 sliding window, 3 sliding log, 4 token bucket, 5 gcra
--   mode: 1 check, 2 peek, 3 consume (penalty: consume even when denied)
-- Returns 5 integers per entry: allowed, remaining, reset_after_us, retry_after_us (-1 = none),
-- shadow_limited. Time comes from the server (TIME), in microseconds.
local call, floor, ceil, max, min = redis.call, math.floor, math.ceil, math.max, math.min
local format, pack, unpack, unpack_args = string.format, struct.pack, struct.unpack, unpack
local t = call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
-- `now` as the argument text, made once (a number argument is printed with %.17g per call).
local now_text = t[1] .. format('%06d', tonumber(t[2]))
local GCRA_TOLERANCE = 0.5

-- Milliseconds for PX as an integer string (Redis prints a Lua number argument with %.17g).
local function ms(us) return format('%d', max(1, ceil(us / 1000))) end

-- Writes are kept here and made once per key at the end of the call: `states` maps a state key
-- to {a, b, c, ttl_us}, `logs` a sliding-log key to {units added, window_us}.
-- `staged_*` hold the current group's writes until every entry of the group has passed.
local states, logs = {}, {}
local staged_states, staged_logs = nil, nil
-- Sliding-log sizes read by this call, with their window: a key seen again (same window)
-- needs no second ZREMRANGEBYSCORE and ZCARD.
local log_sizes = {}

local function load(k)
  local s = (staged_states and staged_states[k]) or states[k]
  if s then return s[1], s[2], s[3] end
  local v = call('GET', k)
  if type(v) ~= 'string' or #v ~= 24 then return nil end
  local a, b, c = unpack('<ddd', v)
  -- x - x is 0 only for a finite x: a NaN or infinity (not written here) reads as a fresh key.
  if a - a ~= 0 or b - b ~= 0 or c - c ~= 0 then return nil end
  return a, b, c
end

-- Units added to a sliding log by this call and not yet written.
local function pending(k)
  local n = 0
  if staged_logs and staged_logs[k] then n = staged_logs[k][1] end
  if logs[k] then n = n + logs[k][1] end
  return n
end

local function keep(into_states, into_logs, k, write)
  if write[4] then
    into_states[k] = write
  elseif write[1] > 0 then
    local prev = into_logs[k]
    if prev then prev[1] = prev[1] + write[1] else into_logs[k] = write end
  end
end

-- Returns allowed, remaining, reset, retry, and the write that consumes the request:
-- {a, b, c, ttl_us} for a state, {units, window_us} for the sliding log.
local function evaluate(k, algo, limit, w, burst, cost, force)
  if algo == 1 or algo == 2 then
    local idx = floor(now / w)
    local i0, c0, p0 = load(k)
    c0, p0 = c0 or 0, p0 or 0
    if algo == 1 then
      local count = 0
      if i0 == idx then count = c0 end
      local allowed = count + cost <= limit
      local used = count
      if allowed or force then used = count + cost end
      local reset = (idx + 1) * w - now
      local retry = -1
      if not allowed and cost <= limit then retry = reset end
      return allowed, max(0, limit - used), reset, retry, { idx, used, 0, reset }
    end
    local curr, prev = 0, 0
    if i0 == idx then curr, prev = c0, p0 elseif i0 == idx - 1 then curr, prev = 0, c0 end
    local elapsed = now - idx * w
    local estimate = prev * ((w - elapsed) / w) + curr
    local allowed = estimate + cost <= limit
    local charged = 0
    if allowed or force then charged = cost end
    local remaining = max(0, floor(limit - estimate - charged))
    local count = curr + charged
    local reset = 0
    if count > 0 then reset = (w - elapsed) + w elseif prev > 0 then reset = w - elapsed end
    local retry = -1
    if not allowed and cost <= limit then
      if curr + cost <= limit then
        local at = max(0, ceil(w - (limit - curr - cost) * w / prev))
        retry = max(1, at - elapsed)
      else
        local at = max(0, ceil(w - (limit - cost) * w / max(curr, 1)))
        retry = (w - elapsed) + at
      end
    end
    return allowed, remaining, reset, retry, { idx, count, prev, (idx + 2) * w - now }
  elseif algo == 3 then
    -- The stored units, expired ones removed: once per key and call (`now` is fixed, and this
    -- call's own units are written at the end, counted by `pending` until then).
    local seen, stored = log_sizes[k], nil
    if seen and seen[1] == w then
      stored = seen[2]
    else
      call('ZREMRANGEBYSCORE', k, '-inf', format('%d', now - w))
      stored = call('ZCARD', k)
      log_sizes[k] = { w, stored }
    end
    local unwritten = pending(k) -- the newest units, all at `now`
    local used = stored + unwritten
    local allowed = used + cost <= limit
    local retry = -1
    if not allowed and cost <= limit then
      local kth = used + cost - limit
      if kth > stored then
        retry = w
      else
        local e = call('ZRANGE', k, kth - 1, kth - 1, 'WITHSCORES')
        if e[2] then retry = max(1, tonumber(e[2]) + w - now) end
      end
    end
    local add = 0
    if allowed or force then add = min(cost, limit * 2) end
    local newest = nil
    if add > 0 or unwritten > 0 then
      newest = now
    else
      local last = call('ZRANGE', k, -1, -1, 'WITHSCORES')
      if last[2] then newest = tonumber(last[2]) end
    end
    local reset = 0
    if newest then reset = newest + w - now end
    return allowed, max(0, limit - used - add), reset, retry, { add, w }
  elseif algo == 4 then
    local rate = limit / w
    local t0, l0 = load(k)
    local tokens = burst
    if t0 then tokens = min(burst, t0 + max(0, now - l0) * rate) end
    local allowed = tokens >= cost
    local after = tokens
    if allowed or force then after = tokens - cost end
    local reset = max(0, ceil((burst - after) / rate))
    local retry = -1
    if not allowed and cost <= burst then retry = max(1, ceil((cost - tokens) / rate)) end
    return allowed, max(0, floor(after)), reset, retry, { after, now, 0, reset }
  else
    local interval = w / limit
    local tolerance = burst * interval
    local tat = load(k)
    if tat then tat = max(tat, now) else tat = now end
    local new_tat = tat + cost * interval
    local allowed = new_tat - now <= tolerance + GCRA_TOLERANCE
    local stored = tat
    if allowed or force then stored = new_tat end
    local remaining = max(0, floor((tolerance - (stored - now) + GCRA_TOLERANCE) / interval))
    local retry = -1
    if not allowed and cost <= burst then retry = max(1, ceil(new_tat - tolerance - now)) end
    local reset = max(0, ceil(stored - now))
    return allowed, remaining, reset, retry, { stored, 0, 0, reset }
  end
end

local out = {}
local policies = {}
local npolicies = tonumber(ARGV[1])
for i = 1, npolicies do
  local a = 1 + (i - 1) * 6
  policies[i] = {
    tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3]),
    tonumber(ARGV[a + 4]), tonumber(ARGV[a + 5]), tonumber(ARGV[a + 6]),
  }
end
local arg = 2 + npolicies * 6 -- next ARGV index
local groups = tonumber(ARGV[arg])
arg = arg + 1
local entry = 0 -- entries evaluated so far (results are per entry)
local key = 1 -- next KEYS index
for _ = 1, groups do
  local n = tonumber(ARGV[arg])
  arg = arg + 1
  local first = entry
  local blocks = nil
  local all_ok = true
  -- A lone entry's write is final once it passes; a larger group stages its writes.
  if n > 1 then staged_states, staged_logs = {}, {} end
  for _ = 1, n do
    local p = policies[tonumber(ARGV[arg])]
    local cost, mode = tonumber(ARGV[arg + 1]), tonumber(ARGV[arg + 2])
    arg = arg + 3
    local algo, limit, w, burst, block, shadow = p[1], p[2], p[3], p[4], p[5], p[6]
    local k, kb = KEYS[key], nil
    key = key + 1
    if block > 0 then
      kb = KEYS[key]
      key = key + 1
    end
    local allowed, remaining, reset, retry, write
    -- Only policies with a penalty box can have a block key: skip the call otherwise.
    local blocked = 0
    if block > 0 then blocked = call('PTTL', kb) end
    if blocked > 0 then
      allowed, remaining, reset, retry = false, 0, blocked * 1000, blocked * 1000
    else
      allowed, remaining, reset, retry, write = evaluate(k, algo, limit, w, burst, cost, mode == 3)
    end
    -- A peek reports what is left now, not after the hypothetical unit it evaluated.
    if mode == 2 and allowed then remaining = min(remaining + cost, max(limit, burst)) end
    local shadow_limited = 0
    if not allowed and shadow == 1 then
      allowed, shadow_limited, retry = true, 1, -1
    end
    if not allowed then
      all_ok = false
      if block > 0 and mode == 1 then
        blocks = blocks or {}
        blocks[#blocks + 1] = { kb, block }
      end
    end
    if write then
      if mode == 3 then
        keep(states, logs, k, write)
      elseif mode == 1 and allowed and shadow_limited == 0 then
        if n > 1 then keep(staged_states, staged_logs, k, write) else keep(states, logs, k, write) end
      end
    end
    local o = entry * 5
    out[o + 1] = allowed and 1 or 0
    out[o + 2] = remaining
    out[o + 3] = reset
    out[o + 4] = retry
    out[o + 5] = shadow_limited
    entry = entry + 1
  end
  if all_ok then
    if staged_states then
      for k, s in pairs(staged_states) do states[k] = s end
      for k, l in pairs(staged_logs) do keep(states, logs, k, l) end
    end
  else
    for e = first, entry - 1 do out[e * 5 + 1] = 0 end
    if blocks then
      for _, b in ipairs(blocks) do call('SET', b[1], '1', 'PX', ms(b[2])) end
    end
  end
  staged_states, staged_logs = nil, nil
end
for k, s in pairs(states) do
  call('SET', k, pack('<ddd', s[1], s[2], s[3]), 'PX', ms(s[4]))
end
-- A unit's member is `<now>:<n>`, n counting on from the units the log held at `now`: unique
-- for calls in one microsecond (each sees the previous call's units). Only a clock that went
-- back can name a member that exists; `ZADD NX` then adds fewer, and each missing unit gets a
-- member with a further suffix until it is added, so no unit is lost.
local CHUNK = 512 -- members per ZADD (Lua's unpack has a stack limit)
for k, l in pairs(logs) do
  local add, w = l[1], l[2]
  local base = log_sizes[k][2]
  local missing = 0
  local j = 1
  while j <= add do
    local last = min(add, j + CHUNK - 1)
    local args = { k, 'NX' }
    for u = j, last do
      args[#args + 1] = now_text
      args[#args + 1] = now_text .. ':' .. (base + u)
    end
    missing = missing + (last - j + 1) - call('ZADD', unpack_args(args))
    j = last + 1
  end
  local retry = 0
  while missing > 0 do
    retry = retry + 1
    missing = missing - call('ZADD', k, 'NX', now_text, now_text .. ':' .. (base + add) .. '+' .. retry)
  end
  call('PEXPIRE', k, ms(w))
end
return out
