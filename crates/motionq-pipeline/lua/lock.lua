-- A lease lock: take it when free, or renew it when this holder already has it.
-- KEYS[1] lock key; ARGV[1] holder token; ARGV[2] TTL ms;
-- ARGV[3] mode ('take', 'take_read' or 'release')
-- take: 1 when held by ARGV[1] now, 0 when another holder has it.
-- take_read (KEYS[2] the job's hash, KEYS[3] its campaign's meta hash; all three keys share
--   the campaign's hash tag): take, and when taken also read what every stage reads first, in
--   the same round trip: {1, job hash as HGETALL, {campaign state, spec_rev}};
--   {0, {}, {nil, nil}} when another holder has the lock.
-- take_intent (KEYS[2] the job's hash): take, and when taken also return the job's state and
--   `intent_by` in the same round trip: {1, {state, intent_by}}; {0, {false, false}} when
--   another holder has the lock.
-- release: 1 when it was ours and is deleted, 0 otherwise (never deletes another's lock).
local cur = redis.call('GET', KEYS[1])
if ARGV[3] == 'release' then
  if cur == ARGV[1] then redis.call('DEL', KEYS[1]); return 1 end
  return 0
end
if cur and cur ~= ARGV[1] then
  if ARGV[3] == 'take_read' then return {0, {}, {false, false}} end
  if ARGV[3] == 'take_intent' then return {0, {false, false}} end
  return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', tonumber(ARGV[2]))
if ARGV[3] == 'take_read' then
  return {1, redis.call('HGETALL', KEYS[2]), redis.call('HMGET', KEYS[3], 'state', 'spec_rev')}
end
if ARGV[3] == 'take_intent' then
  return {1, redis.call('HMGET', KEYS[2], 'state', 'intent_by')}
end
return 1
