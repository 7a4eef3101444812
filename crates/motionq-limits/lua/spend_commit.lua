-- Mark a reservation committed: the create call may have reached the vendor, so its money is
-- kept (no lease) until settle or release, whatever happens to the worker.
--
-- KEYS[1] pending ZSET   KEYS[2] reservation hash   KEYS[3] committed ZSET (id -> first
-- commit time, us: what reconciliation scans for tasks that were never settled)
-- ARGV[1] reservation id   ARGV[2] vendor task id ('' = not known yet)
--
-- Returns {0, 'committed'} | {1, state} (released or expired: the money is no longer held,
-- do not call the vendor) | {2, 'settled'} | {3, 'missing'}
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
redis.call('HSET', KEYS[2], 'state', 'committed', 'lease_until', '0')
if ARGV[2] ~= '' then
  redis.call('HSET', KEYS[2], 'task', ARGV[2])
end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[3], 'NX', istr(now_us()), ARGV[1])
return {0, 'committed'}
