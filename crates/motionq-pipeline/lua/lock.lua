-- A lease lock: take it when free, or renew it when this holder already has it.
-- KEYS[1] lock key; ARGV[1] holder token; ARGV[2] TTL ms; ARGV[3] mode ('take' or 'release')
-- take: 1 when held by ARGV[1] now, 0 when another holder has it.
-- release: 1 when it was ours and is deleted, 0 otherwise (never deletes another's lock).
local cur = redis.call('GET', KEYS[1])
if ARGV[3] == 'release' then
  if cur == ARGV[1] then redis.call('DEL', KEYS[1]); return 1 end
  return 0
end
if cur and cur ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', tonumber(ARGV[2]))
return 1
