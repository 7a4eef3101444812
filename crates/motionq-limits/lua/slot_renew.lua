-- Extend a held concurrency lease (the poller calls this while the vendor task runs).
--
-- KEYS[1] slots ZSET
-- ARGV[1] holder id
-- ARGV[2] lease TTL, ms
--
-- Returns {1, expiry_us, leases held} when renewed, {0, 0, 0} when the holder holds no slot (its lease expired
-- and was reclaimed by an acquire, or it was released). A lease that expired but whose slot
-- has not yet been reclaimed is still counted in the ZSET, so nobody else holds its slot and
-- renewing it is safe.
local now = now_us()
local expiry = now + tonumber(ARGV[2]) * 1000
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  return {0, '0', 0}
end
redis.call('ZADD', KEYS[1], 'XX', istr(expiry), ARGV[1])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIRE', KEYS[1], math.ceil((tonumber(last[2]) - now) / 1000) + 1000)
return {1, istr(expiry), redis.call('ZCARD', KEYS[1])}
