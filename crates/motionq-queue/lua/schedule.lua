-- Adds one job envelope to the delayed ZSET, due ARGV[1] ms from now (Redis server time).
-- KEYS[1] delayed ZSET
-- ARGV[1] delay in ms, ARGV[2] envelope (JSON)
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[1]), ARGV[2])
return now + tonumber(ARGV[1])
