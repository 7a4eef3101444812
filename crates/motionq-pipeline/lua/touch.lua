-- Sets fields on a job only while it is in an expected state (never resurrects a deleted job,
-- never writes onto a job another stage has moved on). No event: used for bookkeeping fields
-- (seen_at, next poll time) that would flood the audit log.
-- KEYS[1] job hash
-- ARGV[1] expected state, ARGV[2] delay ms: when >= 0, 'next_poll_at' = server now + delay
-- ARGV[3..] field, value pairs
-- Returns {1, now_ms} when written, {0, now_ms} otherwise.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if redis.call('HGET', KEYS[1], 'state') ~= ARGV[1] then return {0, now} end
local delay = tonumber(ARGV[2])
if delay >= 0 then redis.call('HSET', KEYS[1], 'next_poll_at', now + delay) end
for i = 3, #ARGV, 2 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
end
return {1, now}
