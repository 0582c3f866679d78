-- nilecare-rate-limit: evaluate groups of checks in order; a group is consumed only if every
-- check in it passes (check_many is one group; a batch of independent checks is one group each,
-- with the same outcome as running them one after the other).
-- KEYS per entry: the state; then the sequence only for the sliding log, and the penalty box
-- only for a policy with a block time (block_us > 0).
-- State: a string "a:b:c" (window index:count:previous, tokens:last, tat) set with PX, or a
-- sorted set of unit timestamps for the sliding log.
-- ARGV: the number of distinct policies P, then 6 per policy: algorithm, limit, window_us,
-- burst, block_us, shadow; then the number of groups; each group: its entry count, then 3 per
-- entry: policy index (1-based), cost, mode.
--   algorithm: 1 fixed window, 2 sliding window, 3 sliding log, 4 token bucket, 5 gcra
--   mode: 1 check, 2 peek, 3 consume (penalty: consume even when denied)
-- Returns 5 integers per entry: allowed, remaining, reset_after_us, retry_after_us (-1 = none),
-- shadow_limited. Time comes from the server (TIME), in microseconds.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local GCRA_TOLERANCE = 0.5

local function ms(us) return math.max(1, math.ceil(us / 1000)) end

-- Integers (window indexes, counts, µs timestamps) print as integers; only fractional values
-- (tokens, a GCRA TAT) need the 17 significant digits that round-trip a double.
local function num(x)
  if x == math.floor(x) and x < 9007199254740992 and x > -9007199254740992 then
    return string.format('%d', x)
  end
  return string.format('%.17g', x)
end

-- State of the hash-free algorithms: one string "a:b:c" written with SET PX (one call).
local function load(k)
  local v = redis.call('GET', k)
  if not v then return nil end
  local a, b, c = string.match(v, '^([^:]*):([^:]*):([^:]*)$')
  return tonumber(a), tonumber(b), tonumber(c)
end

local function store(k, a, b, c, ttl_us)
  redis.call('SET', k, num(a) .. ':' .. num(b) .. ':' .. num(c), 'PX', ms(ttl_us))
end

local function evaluate(k, aux, algo, limit, w, burst, cost, force)
  -- returns allowed, remaining, reset, retry, commit (function or nil)
  if algo == 1 or algo == 2 then
    local idx = math.floor(now / w)
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
      return allowed, math.max(0, limit - used), reset, retry, function()
        store(k, idx, used, 0, reset)
      end
    end
    local curr, prev = 0, 0
    if i0 == idx then curr, prev = c0, p0 elseif i0 == idx - 1 then curr, prev = 0, c0 end
    local elapsed = now - idx * w
    local estimate = prev * ((w - elapsed) / w) + curr
    local allowed = estimate + cost <= limit
    local charged = 0
    if allowed or force then charged = cost end
    local remaining = math.max(0, math.floor(limit - estimate - charged))
    local count = curr + charged
    local reset = 0
    if count > 0 then reset = (w - elapsed) + w elseif prev > 0 then reset = w - elapsed end
    local retry = -1
    if not allowed and cost <= limit then
      if curr + cost <= limit then
        local at = math.max(0, math.ceil(w - (limit - curr - cost) * w / prev))
        retry = math.max(1, at - elapsed)
      else
        local at = math.max(0, math.ceil(w - (limit - cost) * w / math.max(curr, 1)))
        retry = (w - elapsed) + at
      end
    end
    return allowed, remaining, reset, retry, function()
      store(k, idx, count, prev, (idx + 2) * w - now)
    end
  elseif algo == 3 then
    redis.call('ZREMRANGEBYSCORE', k, '-inf', now - w)
    local used = redis.call('ZCARD', k)
    local allowed = used + cost <= limit
    local retry = -1
    if not allowed and cost <= limit then
      local kth = used + cost - limit
      local e = redis.call('ZRANGE', k, kth - 1, kth - 1, 'WITHSCORES')
      if e[2] then retry = math.max(1, tonumber(e[2]) + w - now) end
    end
    local add = 0
    if allowed or force then add = math.min(cost, limit * 2) end
    local newest = nil
    if add > 0 then
      newest = now
    else
      local last = redis.call('ZRANGE', k, -1, -1, 'WITHSCORES')
      if last[2] then newest = tonumber(last[2]) end
    end
    local reset = 0
    if newest then reset = newest + w - now end
    return allowed, math.max(0, limit - used - add), reset, retry, function()
      if add > 0 then
        local seq = redis.call('INCRBY', aux, add)
        for j = seq - add + 1, seq do redis.call('ZADD', k, now, j) end
        redis.call('PEXPIRE', k, ms(w))
        redis.call('PEXPIRE', aux, ms(w))
      end
    end
  elseif algo == 4 then
    local rate = limit / w
    local t0, l0 = load(k)
    local tokens = burst
    if t0 then tokens = math.min(burst, t0 + math.max(0, now - l0) * rate) end
    local allowed = tokens >= cost
    local after = tokens
    if allowed or force then after = tokens - cost end
    local reset = math.max(0, math.ceil((burst - after) / rate))
    local retry = -1
    if not allowed and cost <= burst then retry = math.max(1, math.ceil((cost - tokens) / rate)) end
    return allowed, math.max(0, math.floor(after)), reset, retry, function()
      store(k, after, now, 0, reset)
    end
  else
    local interval = w / limit
    local tolerance = burst * interval
    local tat = load(k)
    if tat then tat = math.max(tat, now) else tat = now end
    local new_tat = tat + cost * interval
    local allowed = new_tat - now <= tolerance + GCRA_TOLERANCE
    local stored = tat
    if allowed or force then stored = new_tat end
    local remaining = math.max(0, math.floor((tolerance - (stored - now) + GCRA_TOLERANCE) / interval))
    local retry = -1
    if not allowed and cost <= burst then retry = math.max(1, math.ceil(new_tat - tolerance - now)) end
    local reset = math.max(0, math.ceil(stored - now))
    return allowed, remaining, reset, retry, function()
      store(k, stored, 0, 0, reset)
    end
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
  local commits = {}
  local blocks = {}
  local all_ok = true
  for _ = 1, n do
    local p = policies[tonumber(ARGV[arg])]
    local cost, mode = tonumber(ARGV[arg + 1]), tonumber(ARGV[arg + 2])
    arg = arg + 3
    local algo, limit, w, burst, block, shadow = p[1], p[2], p[3], p[4], p[5], p[6]
    local k, aux, kb = KEYS[key], nil, nil
    key = key + 1
    if algo == 3 then
      aux = KEYS[key]
      key = key + 1
    end
    if block > 0 then
      kb = KEYS[key]
      key = key + 1
    end
    local allowed, remaining, reset, retry, commit
    -- Only policies with a penalty box can have a block key: skip the call otherwise.
    local blocked = 0
    if block > 0 then blocked = redis.call('PTTL', kb) end
    if blocked > 0 then
      allowed, remaining, reset, retry, commit = false, 0, blocked * 1000, blocked * 1000, nil
    else
      allowed, remaining, reset, retry, commit = evaluate(k, aux, algo, limit, w, burst, cost, mode == 3)
    end
    -- A peek reports what is left now, not after the hypothetical unit it evaluated.
    if mode == 2 and allowed then remaining = math.min(remaining + cost, math.max(limit, burst)) end
    local shadow_limited = 0
    if not allowed and shadow == 1 then
      allowed, shadow_limited, retry = true, 1, -1
    end
    if not allowed then
      all_ok = false
      if block > 0 and mode == 1 then blocks[#blocks + 1] = { kb, block } end
    end
    if mode == 3 and commit then
      commit()
    elseif mode == 1 and commit and shadow_limited == 0 then
      commits[#commits + 1] = commit
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
    for _, c in ipairs(commits) do c() end
  else
    for e = first, entry - 1 do out[e * 5 + 1] = 0 end
    for _, b in ipairs(blocks) do redis.call('SET', b[1], 1, 'PX', ms(b[2])) end
  end
end
return out
