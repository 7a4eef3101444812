-- Marks a campaign's enqueue complete: the feeder admits jobs only from campaigns past this point.
-- KEYS[1] meta hash, KEYS[2] jobs zset, KEYS[3] events stream
-- ARGV[1] expected USD ('' if unknown), ARGV[2] worst-case USD ('' if unknown), ARGV[3] MAXLEN
-- Returns {state, jobs_total}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local total = redis.call('ZCARD', KEYS[2])
local state = redis.call('HGET', KEYS[1], 'state')
redis.call('HSET', KEYS[1], 'jobs_total', total, 'est_expected_usd', ARGV[1], 'est_worst_usd', ARGV[2], 'updated_at', now)
if state == 'enqueuing' then
  redis.call('HSET', KEYS[1], 'state', 'active')
  state = 'active'
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', tonumber(ARGV[3]), '*', 'type', 'campaign_enqueued', 'jobs_total', total, 'at', now)
end
return {state, total}
