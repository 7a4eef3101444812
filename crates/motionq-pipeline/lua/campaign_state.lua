-- Changes a campaign's state if it is in one of the allowed states.
-- KEYS[1] campaign meta hash; ARGV[1] allowed states, comma-separated; ARGV[2] new state
-- Returns {'ok', previous} or {'wrong_state', current} or {'missing', ''}.
local cur = redis.call('HGET', KEYS[1], 'state')
if not cur then return {'missing', ''} end
for s in string.gmatch(ARGV[1], '([^,]+)') do
  if s == cur then
    local t = redis.call('TIME')
    redis.call('HSET', KEYS[1], 'state', ARGV[2], 'updated_at',
      tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
    return {'ok', cur}
  end
end
return {'wrong_state', cur}
