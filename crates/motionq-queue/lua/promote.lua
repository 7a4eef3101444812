-- Moves due delayed jobs into the stream, at most ARGV[1] per call.
-- KEYS[1] delayed ZSET, KEYS[2] stream, KEYS[3] dead-letter stream
-- ARGV[1] chunk size, ARGV[2] dead-letter max length
-- Returns {moved, remaining_due} so the caller can loop until nothing is due. Bounded work per
-- call (never one unpack() of every due member: a 100,000-job backlog must not wedge the queue).
-- Due time is Redis server time, so every worker agrees on it.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
for _, member in ipairs(due) do
  local ok, job = pcall(cjson.decode, member)
  if ok and type(job) == 'table' and type(job.id) == 'string' and type(job.payload) == 'string' then
    redis.call('XADD', KEYS[2], '*',
      'id', job.id,
      'payload', job.payload,
      'attempt', tostring(job.attempt or '0'),
      'first_failed_ms', tostring(job.first_failed_ms or ''),
      'last_error', tostring(job.last_error or ''),
      'enqueued_ms', tostring(job.enqueued_ms or ''))
  else
    -- A member we cannot read is kept, with the reason, instead of blocking promotion forever.
    redis.call('XADD', KEYS[3], 'MAXLEN', '=', ARGV[2], '*',
      'id', '', 'payload', member, 'attempt', '0',
      'error', 'delayed entry is not a motionq job envelope', 'failed_ms', tostring(now),
      'source', 'delayed')
  end
  redis.call('ZREM', KEYS[1], member)
end
local remaining = redis.call('ZCOUNT', KEYS[1], '-inf', now)
return {#due, remaining}
