-- Admits up to N queued jobs of one campaign: queued -> admitted (or cancelled), atomically with
-- the campaign's counters, its queued index, its event stream and the in-flight index.
-- All keys share the campaign's hash tag {c:ID}; job hashes are derived from ARGV[3] (same tag,
-- so the same slot on Redis Cluster).
-- KEYS[1] queued zset, KEYS[2] counts hash, KEYS[3] events stream, KEYS[4] inflight zset
-- ARGV[1] max jobs, ARGV[2] events MAXLEN, ARGV[3] job key prefix ('P:{c:ID}:job:'),
-- ARGV[4] target state ('admitted' or 'cancelled'), ARGV[5] event detail
-- Returns the ids moved, in manifest order.
local n = tonumber(ARGV[1])
local to = ARGV[4]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ids = redis.call('ZRANGE', KEYS[1], 0, n - 1)
local moved = {}
for _, id in ipairs(ids) do
  local jk = ARGV[3] .. id
  local cur = redis.call('HGET', jk, 'state')
  redis.call('ZREM', KEYS[1], id)
  if cur == 'queued' then
    redis.call('HSET', jk, 'state', to, 'state_at', now)
    if to == 'admitted' then
      redis.call('HSET', jk, 'admitted_at', now)
      redis.call('ZADD', KEYS[4], now, id)
    end
    redis.call('HINCRBY', KEYS[2], 'queued', -1)
    redis.call('HINCRBY', KEYS[2], to, 1)
    redis.call('XADD', KEYS[3], 'MAXLEN', '~', tonumber(ARGV[2]), '*', 'type', 'transition',
      'job', id, 'from', 'queued', 'to', to, 'detail', ARGV[5], 'at', now)
    moved[#moved + 1] = id
  end
end
return moved
