-- Park or unpark a key.
--
-- KEYS[1] park hash
-- ARGV[1] 'park' | 'unpark' | 'get' (read only)
-- ARGV[2] reason (park only)
-- ARGV[3] until, us since the epoch in server time; '0' = until an operator unparks
--
-- Precedence: a park until an operator acts is never replaced by a timed park (an empty
-- wallet outranks a spent quota); between timed parks the later time wins. A timed park's hash
-- expires at its time, so the key becomes usable again without anyone acting.
--
-- Returns {parked (0/1), reason, until_us, now_us, changed (0/1), since_us}: the state after
-- the call.
local now = now_us()
if ARGV[1] == 'get' then
  local r, u, since = park_state(KEYS[1], now)
  if r ~= '' then
    return {1, r, istr(u), istr(now), 0, istr(since)}
  end
  return {0, '', '0', istr(now), 0, '0'}
end
if ARGV[1] == 'unpark' then
  local had = redis.call('DEL', KEYS[1])
  return {0, '', '0', istr(now), had, '0'}
end
local reason = ARGV[2]
local until_us = tonumber(ARGV[3])
if until_us ~= 0 and until_us <= now then
  -- Already over: nothing to park.
  local r, u, since = park_state(KEYS[1], now)
  if r ~= '' then
    return {1, r, istr(u), istr(now), 0, istr(since)}
  end
  return {0, '', '0', istr(now), 0, '0'}
end
local cur_reason, cur_until, cur_since = park_state(KEYS[1], now)
if cur_reason ~= '' then
  if cur_until == 0 and until_us ~= 0 then
    return {1, cur_reason, '0', istr(now), 0, istr(cur_since)}
  end
  if cur_until ~= 0 and until_us ~= 0 and cur_until >= until_us then
    return {1, cur_reason, istr(cur_until), istr(now), 0, istr(cur_since)}
  end
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'reason', reason, 'until', istr(until_us), 'since', istr(now))
if until_us == 0 then
  redis.call('PERSIST', KEYS[1])
else
  redis.call('PEXPIREAT', KEYS[1], math.ceil(until_us / 1000))
end
return {1, reason, istr(until_us), istr(now), 1, istr(now)}
