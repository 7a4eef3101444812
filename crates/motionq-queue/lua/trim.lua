-- Retention for kept finished entries: trims the stream below
-- min(ARGV[2], oldest pending entry, group's last delivered id), so an entry that is still
-- pending or not yet read is never trimmed, whatever its age.
-- KEYS[1] stream
-- ARGV[1] group, ARGV[2] cutoff id ("<ms>-0": entries older than the retention window)
local function parse(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  return tonumber(ms), tonumber(seq)
end
local function less(a, b)
  local am, as = parse(a)
  local bm, bs = parse(b)
  if am ~= bm then
    return am < bm
  end
  return as < bs
end
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
local minid = ARGV[2]
local groups = redis.call('XINFO', 'GROUPS', KEYS[1])
for _, g in ipairs(groups) do
  local name, last
  for i = 1, #g, 2 do
    if g[i] == 'name' then name = g[i + 1] end
    if g[i] == 'last-delivered-id' then last = g[i + 1] end
  end
  if name == ARGV[1] and last then
    -- Entries up to and including the last delivered one have been read: trim below its
    -- successor (the oldest entry that may still be unread).
    local ms, seq = parse(last)
    local next_id = string.format('%d-%d', ms, seq + 1)
    if less(next_id, minid) then
      minid = next_id
    end
  end
end
local summary = redis.call('XPENDING', KEYS[1], ARGV[1])
if summary[2] and less(summary[2], minid) then
  minid = summary[2]
end
return redis.call('XTRIM', KEYS[1], 'MINID', '=', minid)
