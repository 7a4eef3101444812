-- Take (or re-take) a concurrency slot of one key: a leased semaphore.
--
-- KEYS[1] slots ZSET: member = holder id (job id), score = lease expiry (server time, us)
-- KEYS[2] park hash
-- ARGV[1] holder id
-- ARGV[2] max concurrent (integer >= 0)
-- ARGV[3] lease TTL, ms
--
-- Returns {code, expiry_us_or_wait_us, in_flight, reason, until_us, now_us}
--   code 0 = held (new or renewed), 1 = full (wait = time until the earliest lease expires),
--   2 = parked
--
-- Expired leases (a worker that died without releasing) are removed here first, so their
-- slots come back at the latest lease TTL after the worker's last renewal. The same holder
-- asking again renews its lease instead of taking a second slot (idempotent re-acquire).
local holder = ARGV[1]
local max = tonumber(ARGV[2])
local ttl_us = tonumber(ARGV[3]) * 1000
local now = now_us()

redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', istr(now))
local expiry = now + ttl_us

local function extend_key_ttl()
  -- The ZSET lives as long as its longest lease (+1 s); an idle key disappears.
  local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
  if last[2] then
    redis.call('PEXPIRE', KEYS[1], math.ceil((tonumber(last[2]) - now) / 1000) + 1000)
  end
end

if redis.call('ZSCORE', KEYS[1], holder) then
  redis.call('ZADD', KEYS[1], 'XX', istr(expiry), holder)
  extend_key_ttl()
  return {0, istr(expiry), redis.call('ZCARD', KEYS[1]), '', '0', istr(now)}
end

local reason, until_us = park_state(KEYS[2], now)
if reason ~= '' then
  return {2, '0', redis.call('ZCARD', KEYS[1]), reason, istr(until_us), istr(now)}
end

local count = redis.call('ZCARD', KEYS[1])
if count >= max then
  local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  local wait = 0
  if first[2] then
    wait = tonumber(first[2]) - now
  end
  return {1, istr(wait), count, '', '0', istr(now)}
end
redis.call('ZADD', KEYS[1], istr(expiry), holder)
extend_key_ttl()
return {0, istr(expiry), count + 1, '', '0', istr(now)}
