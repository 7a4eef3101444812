-- Adaptive rate (AIMD) for one key and operation; the GCRA script reads the result.
--
-- KEYS[1] AIMD hash
-- ARGV[1] 'decrease' (the vendor answered rate_limited) | 'increase' (a call succeeded)
-- ARGV[2] op name
-- ARGV[3] configured rate (float, per second)
-- ARGV[4] multiplicative decrease factor (0 < f < 1)
-- ARGV[5] floor as a fraction of the configured rate
-- ARGV[6] additive increase per success as a fraction of the configured rate
-- ARGV[7] decrease cooldown, us: 429s that arrive within this time of the last decrease are
--         the same congestion event seen by several workers and lower the rate only once
-- ARGV[8] retry hint, us (-1 = none): no request of this op is admitted before now + hint
-- ARGV[9] idle TTL of the hash, ms
--
-- Returns {effective rate as string, block_until_us, decreased (0/1), now_us}
local mode = ARGV[1]
local op = ARGV[2]
local conf = tonumber(ARGV[3])
local factor = tonumber(ARGV[4])
local floor_frac = tonumber(ARGV[5])
local inc_frac = tonumber(ARGV[6])
local cooldown = tonumber(ARGV[7])
local hint = tonumber(ARGV[8])
local ttl_ms = tonumber(ARGV[9])
local now = now_us()

local rate_f = 'rate:' .. op
local dec_f = 'decreased:' .. op
local block_f = 'block:' .. op
local a = redis.call('HMGET', KEYS[1], rate_f, dec_f, block_f)
local rate = tonumber(a[1]) or conf
if rate > conf then
  rate = conf
end
local last_dec = tonumber(a[2]) or 0
local block = tonumber(a[3]) or 0
local decreased = 0

if mode == 'decrease' then
  if now - last_dec >= cooldown then
    rate = math.max(conf * floor_frac, rate * factor)
    redis.call('HSET', KEYS[1], rate_f, string.format('%.6f', rate), dec_f, istr(now))
    decreased = 1
  end
  if hint >= 0 and now + hint > block then
    block = now + hint
    redis.call('HSET', KEYS[1], block_f, istr(block))
  end
  -- Keep the hash at least as long as its block lasts.
  redis.call('PEXPIRE', KEYS[1], math.max(ttl_ms, math.ceil((block - now) / 1000) + 1000))
elseif mode == 'increase' then
  if a[1] then
    rate = math.min(conf, rate + conf * inc_frac)
    if rate >= conf then
      -- Fully recovered: the absence of the field means "configured rate".
      redis.call('HDEL', KEYS[1], rate_f)
    else
      redis.call('HSET', KEYS[1], rate_f, string.format('%.6f', rate))
    end
    redis.call('PEXPIRE', KEYS[1], math.max(ttl_ms, math.ceil((block - now) / 1000) + 1000))
  end
else
  return redis.error_reply('aimd.lua: unknown mode ' .. tostring(mode))
end
return {string.format('%.6f', rate), istr(block), decreased, istr(now)}
