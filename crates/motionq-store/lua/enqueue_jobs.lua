-- Writes one chunk of jobs, all or nothing.
-- KEYS[1] jobs zset (id -> manifest index), KEYS[2] queued zset, KEYS[3] counts hash,
-- KEYS[4] events stream, KEYS[5..] one job hash per job, in ARGV order.
-- ARGV[1] mode: 'strict' (a different job under an existing id is a conflict) or 'replace'
--         (replace it when it has not been submitted yet), ARGV[2] events MAXLEN,
-- then 7 values per job: id, index, content hash, spec JSON, vendors JSON, estimated USD
-- (or ''), labels JSON.
-- Returns {'ok', new, existing, replaced} or {'conflict', id, reason, ...}.
local per = 7
local n = (#ARGV - 2) / per
local replaceable = { queued = true, failed = true, cancelled = true, expired = true }
local conflicts = {}
local action = {}
for i = 1, n do
  local b = 2 + (i - 1) * per
  local key = KEYS[4 + i]
  local old = redis.call('HMGET', key, 'hash', 'state')
  if not old[1] then
    action[i] = 'new'
  elseif old[1] == ARGV[b + 3] then
    action[i] = 'same'
  elseif ARGV[1] == 'replace' and replaceable[old[2]] then
    action[i] = 'replace'
  else
    conflicts[#conflicts + 1] = ARGV[b + 1]
    if ARGV[1] == 'replace' then
      conflicts[#conflicts + 1] = 'in state ' .. tostring(old[2])
    else
      conflicts[#conflicts + 1] = 'different content'
    end
  end
end
if #conflicts > 0 then
  table.insert(conflicts, 1, 'conflict')
  return conflicts
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local new, same, replaced = 0, 0, 0
local maxlen = tonumber(ARGV[2])
for i = 1, n do
  local b = 2 + (i - 1) * per
  local key = KEYS[4 + i]
  local id, idx = ARGV[b + 1], ARGV[b + 2]
  if action[i] == 'same' then
    same = same + 1
  else
    if action[i] == 'replace' then
      local prev = redis.call('HGET', key, 'state')
      redis.call('HINCRBY', KEYS[3], prev, -1)
      redis.call('DEL', key)
      replaced = replaced + 1
    else
      new = new + 1
    end
    redis.call('HSET', key, 'id', id, 'idx', idx, 'hash', ARGV[b + 3], 'spec', ARGV[b + 4],
      'vendors', ARGV[b + 5], 'est_usd', ARGV[b + 6], 'labels', ARGV[b + 7],
      'state', 'queued', 'state_at', now, 'created_at', now, 'attempts', 0)
    redis.call('ZADD', KEYS[1], idx, id)
    redis.call('ZADD', KEYS[2], idx, id)
    redis.call('HINCRBY', KEYS[3], 'queued', 1)
    local kind = 'job_created'
    if action[i] == 'replace' then kind = 'job_replaced' end
    redis.call('XADD', KEYS[4], 'MAXLEN', '~', maxlen, '*', 'type', kind, 'job', id, 'to', 'queued', 'at', now)
  end
end
return {'ok', new, same, replaced}
