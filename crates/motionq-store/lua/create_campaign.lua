-- Creates a campaign record, or reports the existing one.
-- KEYS[1] campaign meta hash
-- ARGV[1] spec JSON, ARGV[2] manifest sha256, ARGV[3] priority, ARGV[4] 'replace' or 'strict'
-- Returns {status, existing_spec, state}: status is 'created', 'same', 'differs' or 'updated'.
-- Every write of `spec` sets a new `spec_rev` (`<ms>-<n>`), so readers may cache the parsed
-- spec by revision; the time part keeps it new even if the hash was deleted and re-created.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local existing = redis.call('HGET', KEYS[1], 'spec')
local function bump()
  local old = redis.call('HGET', KEYS[1], 'spec_rev') or ''
  local n = tonumber(string.match(old, '(%d+)$') or '0') + 1
  redis.call('HSET', KEYS[1], 'spec_rev', now .. '-' .. n)
end
if not existing then
  redis.call('HSET', KEYS[1], 'spec', ARGV[1], 'manifest_sha256', ARGV[2], 'priority', ARGV[3],
    'state', 'enqueuing', 'created_at', now, 'updated_at', now)
  bump()
  return {'created', '', 'enqueuing'}
end
local state = redis.call('HGET', KEYS[1], 'state')
if existing == ARGV[1] then
  return {'same', existing, state}
end
if ARGV[4] == 'replace' then
  redis.call('HSET', KEYS[1], 'spec', ARGV[1], 'priority', ARGV[3], 'updated_at', now)
  bump()
  return {'updated', existing, state}
end
return {'differs', existing, state}
