-- Moves one job from an expected state to a new one, atomically with its counters, the queued
-- index and the campaign's event stream.
-- KEYS[1] job hash, KEYS[2] counts hash, KEYS[3] queued zset, KEYS[4] events stream
-- ARGV[1] allowed from-states, comma-separated, or '*'
-- ARGV[2] new state
-- ARGV[3] events MAXLEN
-- ARGV[4] event detail (free text, may be '')
-- ARGV[5..] field, value pairs to set on the job ('' value deletes the field)
-- Returns {'ok', previous state} or {'wrong_state', current state} or {'missing', ''}.
local cur = redis.call('HGET', KEYS[1], 'state')
if not cur then return {'missing', ''} end
local allowed = ARGV[1]
if allowed ~= '*' then
  local ok = false
  for s in string.gmatch(allowed, '([^,]+)') do
    if s == cur then ok = true end
  end
  if not ok then return {'wrong_state', cur} end
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local to = ARGV[2]
for i = 5, #ARGV, 2 do
  if ARGV[i + 1] == '' then
    redis.call('HDEL', KEYS[1], ARGV[i])
  else
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  end
end
local id = redis.call('HGET', KEYS[1], 'id')
if to ~= cur then
  redis.call('HSET', KEYS[1], 'state', to, 'state_at', now)
  redis.call('HINCRBY', KEYS[2], cur, -1)
  redis.call('HINCRBY', KEYS[2], to, 1)
  if cur == 'queued' then redis.call('ZREM', KEYS[3], id) end
  if to == 'queued' then
    redis.call('ZADD', KEYS[3], tonumber(redis.call('HGET', KEYS[1], 'idx')), id)
  end
end
redis.call('XADD', KEYS[4], 'MAXLEN', '~', tonumber(ARGV[3]), '*', 'type', 'transition',
  'job', id, 'from', cur, 'to', to, 'detail', ARGV[4], 'at', now)
return {'ok', cur}
