-- Moves an entry to the dead-letter stream (capped at ARGV[4] entries) in one step, only while
-- this consumer still owns it.
-- KEYS[1] stream, KEYS[2] dead-letter stream
-- ARGV[1] group, ARGV[2] consumer, ARGV[3] entry id, ARGV[4] dead-letter max length,
-- ARGV[5] '1' to delete the entry, ARGV[6] job id, ARGV[7] payload, ARGV[8] attempts,
-- ARGV[9] error, ARGV[10] failed at (ms)
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1, ARGV[2])
if #p == 0 then
  return 0
end
redis.call('XACK', KEYS[1], ARGV[1], ARGV[3])
if ARGV[5] == '1' then
  redis.call('XDEL', KEYS[1], ARGV[3])
end
redis.call('XADD', KEYS[2], 'MAXLEN', '=', ARGV[4], '*',
  'id', ARGV[6], 'payload', ARGV[7], 'attempt', ARGV[8], 'error', ARGV[9],
  'failed_ms', ARGV[10], 'source', ARGV[3])
return 1
