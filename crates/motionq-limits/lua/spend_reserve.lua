-- Reserve `amount` in ALL given budgets, or in none.
--
-- KEYS[1] pending-reservations ZSET (id -> lease expiry, us)
-- KEYS[2] reservation hash
-- KEYS[3..] budget hashes, in the order of the triples below
-- ARGV[1] reservation id   ARGV[2] amount   ARGV[3] lease, ms   ARGV[4] record TTL, ms
-- ARGV[5] reservation key prefix   ARGV[6] reap batch   ARGV[7] window grace, ms
-- ARGV[8..] one triple per budget: name, limit, window length s (0 = total)
--
-- Returns
--   {0, 'pending', lease_until_us, now_us, amount}         reserved now
--   {1, 'pending', lease_until_us, now_us, amount}         already open (idempotent retry)
--   {2, budget index (1-based), used, reserved, limit, reset_at_us (0 = never), now_us}
--   {3, 'settled', 0, now_us, amount}                      already settled: never again
--   {4, 'committed', 0, now_us, amount, task id or ''}     already committed: reconcile
local id = ARGV[1]
local amount = tonumber(ARGV[2])
local lease_us = tonumber(ARGV[3]) * 1000
local record_ttl_ms = tonumber(ARGV[4])
local res_prefix = ARGV[5]
local batch = tonumber(ARGV[6])
local grace_ms = tonumber(ARGV[7])
local now = now_us()

reap(KEYS[1], res_prefix, now, batch, record_ttl_ms)

local state = redis.call('HGET', KEYS[2], 'state')
if state == 'settled' then
  return {3, 'settled', '0', istr(now), redis.call('HGET', KEYS[2], 'amount')}
end

-- The budgets (and their current windows) this reservation would be counted in.
local n = #KEYS - 2
local wins, lens, limits, names = {}, {}, {}, {}
local budgets = {}
for i = 1, n do
  names[i] = ARGV[8 + (i - 1) * 3]
  limits[i] = tonumber(ARGV[8 + (i - 1) * 3 + 1])
  lens[i] = tonumber(ARGV[8 + (i - 1) * 3 + 2])
  wins[i] = window_of(lens[i], now)
  budgets[#budgets + 1] = KEYS[2 + i]
  budgets[#budgets + 1] = istr(wins[i])
end
local budgets_str = table.concat(budgets, '\n')

-- Amount an open pending reservation being replaced holds in each budget key (current window).
local replaced = {}
local replaced_amount = 0
if state == 'committed' then
  -- A create call may have been sent under this id: never move or resize it. The caller must
  -- reconcile (settle or release) instead of sending again.
  local c = redis.call('HMGET', KEYS[2], 'amount', 'task')
  return {4, state, '0', istr(now), c[1], c[2] or ''}
end
if state == 'pending' then
  local old = redis.call('HMGET', KEYS[2], 'budgets', 'amount')
  if old[1] == budgets_str and tonumber(old[2]) == amount then
    -- A retry by the same job: renew the lease instead of reserving twice.
    local lease_until = now + lease_us
    redis.call('HSET', KEYS[2], 'lease_until', istr(lease_until))
    redis.call('ZADD', KEYS[1], istr(lease_until), id)
    return {1, state, istr(lease_until), istr(now), old[2]}
  end
  -- The job now asks for other budgets (re-routed to another key), another window or another
  -- amount. Nothing was sent yet, so the reservation moves: checked as if the old one were
  -- gone, and replaced only if the new one fits (otherwise the old one stays as it was).
  replaced_amount = tonumber(old[2]) or 0
  local parts = split_lines(old[1])
  for i = 1, #parts, 2 do
    replaced[parts[i]] = parts[i + 1]
  end
end
-- No reservation, a released / expired one, or a pending one being moved: reserve afresh.

local useds, reserveds = {}, {}
for i = 1, n do
  local bkey = KEYS[2 + i]
  local win, used, reserved = budget_read(bkey, lens[i], now)
  if replaced[bkey] == istr(win) then
    reserved = reserved - replaced_amount
  end
  useds[i], reserveds[i] = used, reserved
  if used + reserved + amount > limits[i] then
    local reset_at = 0
    if lens[i] > 0 then
      reset_at = (win + 1) * lens[i] * 1000000
    end
    return {2, i, istr(used), istr(reserved), istr(limits[i]), istr(reset_at), istr(now)}
  end
end

if state == 'pending' then
  refund(KEYS[2])
end
for i = 1, n do
  local bkey = KEYS[2 + i]
  redis.call('HSET', bkey, 'name', names[i], 'win', istr(wins[i]), 'used', istr(useds[i]),
    'reserved', istr(reserveds[i] + amount), 'limit', istr(limits[i]), 'len', istr(lens[i]))
  if lens[i] > 0 then
    -- A window's numbers matter until it ends; a little grace keeps them visible to a
    -- settle racing the rollover.
    redis.call('PEXPIREAT', bkey, (wins[i] + 1) * lens[i] * 1000 + grace_ms)
  else
    -- Total budgets (and campaign budgets) must never be forgotten.
    redis.call('PERSIST', bkey)
  end
end

local lease_until = now + lease_us
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[2], 'state', 'pending', 'amount', istr(amount),
  'budgets', budgets_str, 'created', istr(now), 'lease_until', istr(lease_until))
redis.call('ZADD', KEYS[1], istr(lease_until), id)
return {0, 'pending', istr(lease_until), istr(now), istr(amount)}
