-- Helpers prepended to every motionq-limits script (see src/scripts.rs).
--
-- Time is always the Redis server's own clock, read with TIME, in integer microseconds since
-- the Unix epoch. That value (~1.8e15) is well inside the 2^53 range in which Lua doubles hold
-- integers exactly, so plain arithmetic on it is exact.
if redis.replicate_commands then
  -- Redis 5/6 need effects replication to write after TIME; on Redis 7 it is always on and
  -- this call is a no-op.
  redis.replicate_commands()
end

local function now_us()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end

-- Integer to a decimal string without exponent notation (tostring would print 1.8e+15).
local function istr(n)
  return string.format('%.0f', n)
end

-- The park state of a key: returns reason ('' when usable), until_us (0 = until unparked),
-- since_us. A timed park whose time has passed counts as usable (its hash also carries a
-- PEXPIREAT at that time, so it disappears by itself).
local function park_state(park_key, now)
  local p = redis.call('HMGET', park_key, 'reason', 'until', 'since')
  if not p[1] then
    return '', 0, 0
  end
  local until_us = tonumber(p[2]) or 0
  if until_us ~= 0 and until_us <= now then
    return '', 0, 0
  end
  return p[1], until_us, tonumber(p[3]) or 0
end
