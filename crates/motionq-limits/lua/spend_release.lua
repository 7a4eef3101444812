-- Release a reservation: the vendor failed the task (and refunds it), or it was never sent.
--
-- KEYS[1] pending ZSET   KEYS[2] reservation hash   KEYS[3] committed ZSET
-- ARGV[1] reservation id   ARGV[2] record TTL, ms
--
-- Returns {0, 'released'} | {1, state} already released or expired | {2, 'settled'}
--       | {3, 'missing'}
local state = redis.call('HGET', KEYS[2], 'state')
if not state then
  return {3, 'missing'}
end
if state == 'settled' then
  return {2, state}
end
if state ~= 'pending' and state ~= 'committed' then
  return {1, state}
end
refund(KEYS[2])
redis.call('HSET', KEYS[2], 'state', 'released', 'ended', istr(now_us()))
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[2]))
return {0, 'released'}
