-- Acknowledges finished entries: XACK, and XDEL unless finished entries are kept for a
-- retention window (then trim.lua removes them later).
-- KEYS[1] stream
-- ARGV[1] group, ARGV[2] '1' to delete, ARGV[3..] entry ids (the caller sends small batches)
local acked = 0
for i = 3, #ARGV do
  acked = acked + redis.call('XACK', KEYS[1], ARGV[1], ARGV[i])
  if ARGV[2] == '1' then
    redis.call('XDEL', KEYS[1], ARGV[i])
  end
end
return acked
