-- Helpers prepended to the spend scripts (after common.lua).
--
-- Every spend key shares the hash tag {<prefix>:spend}, so one script can check and change any
-- number of budgets and reservations atomically, also on Redis Cluster.
--
-- Budget hash fields: win (window number), used (settled), reserved (held by open
-- reservations made in this window), limit, len (window length in s, 0 = total).
-- Reservation hash fields: state (pending | committed | settled | released | expired), amount,
-- actual, budgets ("<budget key>\n<window>\n..." for each budget it was reserved in), created,
-- lease_until, task, ended.
-- All amounts are integers in micro-units.

-- Window number of a budget: calendar windows counted from the Unix epoch, so with lengths of
-- 3600 and 86400 s they are the UTC hours and days. A total budget has one window, 0.
local function window_of(len_s, now)
  if len_s <= 0 then
    return 0
  end
  return math.floor(now / (len_s * 1000000))
end

-- used and reserved of a budget in the current window (zeros when the stored state belongs to
-- an older window: the window has rolled over).
local function budget_read(bkey, len_s, now)
  local win = window_of(len_s, now)
  local h = redis.call('HMGET', bkey, 'win', 'used', 'reserved')
  if h[1] and tonumber(h[1]) == win then
    return win, tonumber(h[2]) or 0, tonumber(h[3]) or 0
  end
  return win, 0, 0
end

local function split_lines(s)
  local out = {}
  if not s or s == '' then
    return out
  end
  for part in string.gmatch(s, '[^\n]+') do
    out[#out + 1] = part
  end
  return out
end

-- Calls f(budget_key, still_current) for each budget a reservation was made in; still_current
-- is true when the budget is still in the window the reservation was counted in (otherwise
-- that window is over and its numbers no longer matter).
local function each_budget(rkey, f)
  local parts = split_lines(redis.call('HGET', rkey, 'budgets'))
  for i = 1, #parts, 2 do
    local bkey = parts[i]
    local cur = redis.call('HGET', bkey, 'win')
    f(bkey, cur ~= false and cur ~= nil and cur == parts[i + 1])
  end
end

-- Gives an open reservation's amount back to its budgets.
local function refund(rkey)
  local amount = tonumber(redis.call('HGET', rkey, 'amount')) or 0
  each_budget(rkey, function(bkey, current)
    if current then
      redis.call('HINCRBY', bkey, 'reserved', -amount)
    end
  end)
end

-- Returns the money of pending reservations whose lease has passed (the worker died or stalled
-- before the create call could have been sent). Committed reservations are not in the index.
local function reap(pending_key, res_prefix, now, batch, record_ttl_ms)
  local ids = redis.call('ZRANGEBYSCORE', pending_key, '-inf', istr(now), 'LIMIT', 0, batch)
  for _, id in ipairs(ids) do
    local rkey = res_prefix .. id
    if redis.call('HGET', rkey, 'state') == 'pending' then
      refund(rkey)
      redis.call('HSET', rkey, 'state', 'expired', 'ended', istr(now))
      redis.call('PEXPIRE', rkey, record_ttl_ms)
    end
    redis.call('ZREM', pending_key, id)
  end
  return #ids
end
