-- Keeps this consumer's claims fresh while their jobs run, so XAUTOCLAIM elsewhere does not
-- take a long job away from a live worker. Only ids still owned by this consumer are touched
-- (XCLAIM with min-idle 0 would otherwise steal an entry back). JUSTID: the delivery count is
-- not increased.
-- KEYS[1] stream
-- ARGV[1] group, ARGV[2] consumer, ARGV[3..] entry ids (small batches)
-- Returns the ids this consumer no longer owns.
local lost = {}
for i = 3, #ARGV do
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1, ARGV[2])
  if #p == 0 then
    lost[#lost + 1] = ARGV[i]
  else
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'JUSTID')
  end
end
return lost
