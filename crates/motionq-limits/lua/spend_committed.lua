-- Committed reservations committed at least ARGV[1] us ago (oldest first, at most ARGV[2]):
-- what reconciliation has to settle or release after workers crashed.
--
-- KEYS[1] committed ZSET (id -> first commit time, us)
-- Returns the ids.
local cutoff = now_us() - tonumber(ARGV[1])
return redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', istr(cutoff), 'LIMIT', 0, tonumber(ARGV[2]))
