-- Settle a reservation to the actual cost.
--
-- KEYS[1] pending ZSET   KEYS[2] reservation hash   KEYS[3] committed ZSET
-- ARGV[1] reservation id   ARGV[2] actual amount   ARGV[3] record TTL, ms
--
-- In every budget whose window is still the one the reservation was made in, the reserved
-- amount is removed and the actual amount added to `used`. A reservation that was already
-- released or expired is still charged (late settle: the vendor did spend the money).
--
-- Returns {0, overrun (0/1: some budget now has used + reserved > limit), late (0/1), actual}
--       | {1, recorded actual} already settled | {3, 'missing'}
local state = redis.call('HGET', KEYS[2], 'state')
if not state then
  return {3, 'missing'}
end
if state == 'settled' then
  return {1, redis.call('HGET', KEYS[2], 'actual')}
end
local now = now_us()
local actual = tonumber(ARGV[2])
local open = state == 'pending' or state == 'committed'
local amount = tonumber(redis.call('HGET', KEYS[2], 'amount')) or 0
local overrun = 0
each_budget(KEYS[2], function(bkey, current)
  if current then
    if open then
      redis.call('HINCRBY', bkey, 'reserved', -amount)
    end
    redis.call('HINCRBY', bkey, 'used', actual)
    local h = redis.call('HMGET', bkey, 'used', 'reserved', 'limit')
    if (tonumber(h[1]) or 0) + (tonumber(h[2]) or 0) > (tonumber(h[3]) or 0) then
      overrun = 1
    end
  end
end)
local late = 0
if not open then
  late = 1
end
redis.call('HSET', KEYS[2], 'state', 'settled', 'actual', istr(actual), 'ended', istr(now))
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[3]))
return {0, overrun, late, istr(actual)}
