-- Takes over entries idle longer than ARGV[3] ms (their worker died or lost Redis), with the
-- delivery count of each so a job that keeps killing workers can be dead-lettered.
-- KEYS[1] stream
-- ARGV[1] group, ARGV[2] consumer, ARGV[3] min idle ms, ARGV[4] cursor, ARGV[5] count
-- Returns {next_cursor, {{id, fields-or-nil, deliveries}, ...}}
local res = redis.call('XAUTOCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4],
  'COUNT', tonumber(ARGV[5]))
local out = {}
for i, e in ipairs(res[2]) do
  local n = 0
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], e[1], e[1], 1)
  if p[1] then
    n = p[1][4]
  end
  out[i] = {e[1], e[2], n}
end
return {res[1], out}
