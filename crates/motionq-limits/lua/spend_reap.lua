-- Return the money of expired pending reservations (also done by every reserve).
--
-- KEYS[1] pending ZSET
-- ARGV[1] reservation key prefix   ARGV[2] batch   ARGV[3] record TTL, ms
--
-- Returns the number of index entries processed.
return reap(KEYS[1], ARGV[1], now_us(), tonumber(ARGV[2]), tonumber(ARGV[3]))
