-- GCRA admission for one key and one operation (create or query).
--
-- KEYS[1] TAT string (theoretical arrival time, integer us)
-- KEYS[2] park hash
-- KEYS[3] AIMD hash (effective rates, retry-hint blocks)
-- KEYS[4] window log ZSET (admissions of the last second, by server time), used with a cap
-- ARGV[1] op name ('create' | 'query')
-- ARGV[2] configured rate, requests per second (float)
-- ARGV[3] burst (integer >= 1): requests admitted back to back after an idle period
-- ARGV[4] cost (integer >= 1, <= burst)
-- ARGV[5] '1' to only look (no state change), '0' to admit
-- ARGV[6] hard cap of admissions in any sliding 1 s window (0 = none)
-- ARGV[7] hold, us (0 = none; only with a cap): the admission stays in the window until the
--         caller reports the call answered (window_done.lua) or this long has passed
--
-- Returns {code, wait_us, reason, until_us, now_us, interval_us, ticket, lowered}
--   code 0 = allowed, 1 = wait wait_us, 2 = parked (creates only: reason, until_us; 0 = until
--   unparked)
--   lowered 1 when the effective rate is below the configured one (absent when parked)
--
-- With interval T = ceil(1e6 / rate) and tolerance burst*T, a request of cost c is admitted at
-- `now` iff max(TAT, now) + c*T - now <= burst*T; then TAT := max(TAT, now) + c*T. Hence in
-- any interval of length L at most burst + L/T requests are admitted (T rounded up, so the
-- rate is never exceeded), and the answer is the same for every worker because the state and
-- the clock are Redis's.
--
-- With a cap N, a call is also admitted only if fewer than N - c + 1 admissions lie in the
-- last second (a sliding log): no 1 s window ever holds more than N, while the GCRA burst
-- absorbs late wake-ups that would otherwise cost capacity (GCRA with burst 1 loses every
-- microsecond a caller arrives after its time).
--
-- With a hold, an entry's score is the moment from which its 1 s starts running: now + hold
-- at admission (the call may reach the vendor at any time until it is answered), lowered to
-- the answer's time by window_done.lua. The vendor receives the call somewhere between its
-- admission and its answer, so no second of the VENDOR's arrival clock can hold more than
-- the cap, however the network and the scheduler delay or bunch calls: the newest call of
-- any such second was admitted while every other call of it was in flight or answered less
-- than 1 s before, hence counted. The price is each call's latency of capacity per call.
local op = ARGV[1]
local conf_rate = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
local cost = tonumber(ARGV[4])
local peek = ARGV[5] == '1'
local cap = tonumber(ARGV[6]) or 0
local hold = tonumber(ARGV[7]) or 0
local now = now_us()

-- A park stops spending, not the tracking of what was spent: queries of tasks already
-- running at the vendor (paid for) go on whatever the park, so their outputs are not lost.
if op == 'create' then
  local reason, until_us = park_state(KEYS[2], now)
  if reason ~= '' then
    return {2, 0, reason, istr(until_us), istr(now), 0, ''}
  end
end

local a = redis.call('HMGET', KEYS[3], 'rate:' .. op, 'block:' .. op)
local block = tonumber(a[2]) or 0
local rate = tonumber(a[1]) or conf_rate
if rate > conf_rate then
  -- The configuration was lowered since the rate was adapted: never exceed the configuration.
  rate = conf_rate
end
local interval = math.ceil(1000000 / rate)
-- 1 while an AIMD decrease is being recovered: only then must successes be reported.
local lowered = 0
if rate < conf_rate then
  lowered = 1
end
if block > now then
  return {1, istr(block - now), '', '0', istr(now), interval, '', lowered}
end

local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then
  tat = now
end
local new_tat = tat + cost * interval
local wait = new_tat - burst * interval - now
if cap > 0 then
  if not peek then
    redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', istr(now - 1000000))
  end
  local in_window = redis.call('ZCOUNT', KEYS[4], '(' .. istr(now - 1000000), '+inf')
  local excess = in_window + cost - cap
  if excess > 0 then
    -- The excess-th oldest admission must leave the window first.
    local e = redis.call('ZRANGEBYSCORE', KEYS[4], '(' .. istr(now - 1000000), '+inf',
      'WITHSCORES', 'LIMIT', excess - 1, 1)
    local score = tonumber(e[2])
    local w = score + 1000000 - now
    if score > now then
      -- Still in flight: its answer can come any moment; look again soon.
      w = math.min(w, math.max(interval, 10000))
    end
    if w > wait then
      wait = w
    end
  end
end
if wait > 0 then
  return {1, istr(wait), '', '0', istr(now), interval, '', lowered}
end
local ticket = ''
if not peek then
  -- Once TAT is in the past the key is equivalent to an absent one, so the TTL is exactly
  -- the time until then: idle keys disappear.
  local ttl_ms = math.ceil((new_tat - now) / 1000) + 1
  redis.call('SET', KEYS[1], istr(new_tat), 'PX', ttl_ms)
  if cap > 0 then
    -- Members are the TATs the admission moved through: strictly increasing, so unique.
    -- With a hold, the ticket is the first member; window_done.lua takes all `cost` of them.
    for j = 0, cost - 1 do
      redis.call('ZADD', KEYS[4], istr(now + hold), istr(new_tat - j * interval))
    end
    if hold > 0 then
      ticket = istr(new_tat)
    end
    local keep = math.ceil(hold / 1000) + 1001
    if redis.call('PTTL', KEYS[4]) < keep then
      redis.call('PEXPIRE', KEYS[4], keep)
    end
  end
end
return {0, 0, '', '0', istr(now), interval, ticket, lowered}
