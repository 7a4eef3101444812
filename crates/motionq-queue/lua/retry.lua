-- Moves a failed entry to the delayed ZSET (retry with backoff) in one step, but only while
-- this consumer still owns it: if another worker reclaimed it, that worker decides.
-- KEYS[1] stream, KEYS[2] delayed ZSET
-- ARGV[1] group, ARGV[2] consumer, ARGV[3] entry id, ARGV[4] delay ms, ARGV[5] envelope,
-- ARGV[6] '1' to delete the entry
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1, ARGV[2])
if #p == 0 then
  return 0
end
redis.call('XACK', KEYS[1], ARGV[1], ARGV[3])
if ARGV[6] == '1' then
  redis.call('XDEL', KEYS[1], ARGV[3])
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[4]), ARGV[5])
return 1
