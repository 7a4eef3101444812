-- A held admission's call was answered (see gcra.lua, ARGV[7]): from now on its 1 s runs.
--
-- KEYS[1] window log ZSET of the key and operation
-- ARGV[1] ticket (the first member the admission wrote)
-- ARGV[2] cost (members written by the admission: ticket, ticket - interval, ...)
-- ARGV[3] interval, us, of the admission
--
-- Returns the number of members moved. A member already answered, or gone (its hold
-- passed, or the window key expired), is left as it is: the score only ever moves down.
local now = now_us()
local first = tonumber(ARGV[1])
local cost = tonumber(ARGV[2])
local interval = tonumber(ARGV[3])
local moved = 0
for j = 0, cost - 1 do
  local m = istr(first - j * interval)
  local s = tonumber(redis.call('ZSCORE', KEYS[1], m))
  if s and s > now then
    redis.call('ZADD', KEYS[1], 'XX', istr(now), m)
    moved = moved + 1
  end
end
return moved
