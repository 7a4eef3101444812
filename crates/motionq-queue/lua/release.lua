-- Gives back a job this consumer fetched but never started (graceful shutdown): a fresh copy
-- goes to the end of the stream for any worker, the held entry is acknowledged. Owned only.
-- KEYS[1] stream
-- ARGV[1] group, ARGV[2] consumer, ARGV[3] entry id, ARGV[4] '1' to delete,
-- ARGV[5] job id, ARGV[6] payload, ARGV[7] attempt, ARGV[8] first_failed_ms,
-- ARGV[9] last_error, ARGV[10] enqueued_ms
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1, ARGV[2])
if #p == 0 then
  return 0
end
redis.call('XADD', KEYS[1], '*', 'id', ARGV[5], 'payload', ARGV[6], 'attempt', ARGV[7],
  'first_failed_ms', ARGV[8], 'last_error', ARGV[9], 'enqueued_ms', ARGV[10])
redis.call('XACK', KEYS[1], ARGV[1], ARGV[3])
if ARGV[4] == '1' then
  redis.call('XDEL', KEYS[1], ARGV[3])
end
return 1
