-- Decides whether a poll message is the live one of its job's poll chain: the job is
-- `submitted` and its `next_poll_at` (server ms) has come, within a tolerance. A duplicate
-- message (redelivery, sweep re-push) arriving early is dropped, so duplicates never multiply
-- the query rate. The job's record comes back in the same round trip when the poll proceeds
-- or the job is not `submitted` (the caller may hand a completed job to the collector).
-- KEYS[1] job hash; ARGV[1] tolerance ms
-- Returns {1, HGETALL} (poll now), {0, {}} (drop), {-1, HGETALL} (not submitted; an empty
-- hash when the job does not exist).
if redis.call('HGET', KEYS[1], 'state') ~= 'submitted' then
  return {-1, redis.call('HGETALL', KEYS[1])}
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local due = tonumber(redis.call('HGET', KEYS[1], 'next_poll_at') or '0') or 0
if now + tonumber(ARGV[1]) >= due then
  return {1, redis.call('HGETALL', KEYS[1])}
end
return {0, {}}
