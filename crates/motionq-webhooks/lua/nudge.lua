-- Makes a submitted job's next poll due now, so the poll message pushed right after passes
-- the poll stage's gate (which drops messages that arrive before `next_poll_at`). Changes no
-- state and writes nothing on a job in any other state: a webhook only speeds things up.
-- KEYS[1] job hash
-- Returns the job's state, or 'missing' when there is no such job.
local st = redis.call('HGET', KEYS[1], 'state')
if not st then return 'missing' end
if st ~= 'submitted' then return st end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local due = tonumber(redis.call('HGET', KEYS[1], 'next_poll_at') or '0') or 0
if due > now then redis.call('HSET', KEYS[1], 'next_poll_at', now) end
return st
