-- Give a concurrency slot back (the vendor task is terminal).
--
-- KEYS[1] slots ZSET
-- ARGV[1] holder id
--
-- Returns 1 when a slot was freed, 0 when the holder held none (already released or reclaimed).
return redis.call('ZREM', KEYS[1], ARGV[1])
