-- Read-only view of one key's rate, concurrency and park state (for `motionq keys`, routing).
--
-- KEYS[1] park hash, KEYS[2] AIMD hash, KEYS[3] slots ZSET,
-- KEYS[4] TAT create, KEYS[5] TAT query, KEYS[6] window log create, KEYS[7] window log query
-- ARGV[1] create per-second cap (0 = none), ARGV[2] query per-second cap
--
-- Returns {now_us, park reason, park until_us, park since_us,
--          create rate ('' = configured), create block_us, query rate, query block_us,
--          live leases, TAT create ('' = none), TAT query,
--          create cap wait_us, query cap wait_us}
local now = now_us()

-- Time until one more call fits under the per-second cap (0 = now).
local function cap_wait(log_key, cap)
  if cap <= 0 then
    return 0
  end
  local from = '(' .. istr(now - 1000000)
  local excess = redis.call('ZCOUNT', log_key, from, '+inf') + 1 - cap
  if excess <= 0 then
    return 0
  end
  local e = redis.call('ZRANGEBYSCORE', log_key, from, '+inf', 'WITHSCORES', 'LIMIT', excess - 1, 1)
  return tonumber(e[2]) + 1000000 - now
end

local reason, until_us, since = park_state(KEYS[1], now)
local a = redis.call('HMGET', KEYS[2], 'rate:create', 'block:create', 'rate:query', 'block:query')
local live = redis.call('ZCOUNT', KEYS[3], '(' .. istr(now), '+inf')
local tc = redis.call('GET', KEYS[4])
local tq = redis.call('GET', KEYS[5])
return {istr(now), reason, istr(until_us), istr(since),
  a[1] or '', a[2] or '0', a[3] or '', a[4] or '0', live, tc or '', tq or '',
  istr(cap_wait(KEYS[6], tonumber(ARGV[1]))), istr(cap_wait(KEYS[7], tonumber(ARGV[2])))}
