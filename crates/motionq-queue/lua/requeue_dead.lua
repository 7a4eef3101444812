-- Moves dead letters back into the stream as fresh jobs (attempt 0), by dead-letter entry id.
-- Missing ids are skipped, so a repeated call does not duplicate jobs.
-- KEYS[1] dead-letter stream, KEYS[2] stream
-- ARGV[1] enqueued_ms, ARGV[2..] dead-letter entry ids (small batches)
local moved = 0
for i = 2, #ARGV do
  local e = redis.call('XRANGE', KEYS[1], ARGV[i], ARGV[i])
  if e[1] then
    local f = e[1][2]
    local id, payload = '', ''
    for j = 1, #f, 2 do
      if f[j] == 'id' then id = f[j + 1] end
      if f[j] == 'payload' then payload = f[j + 1] end
    end
    redis.call('XADD', KEYS[2], '*', 'id', id, 'payload', payload, 'attempt', '0',
      'first_failed_ms', '', 'last_error', '', 'enqueued_ms', ARGV[1])
    redis.call('XDEL', KEYS[1], ARGV[i])
    moved = moved + 1
  end
end
return moved
