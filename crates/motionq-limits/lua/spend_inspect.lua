-- Read-only view of budgets in their current window.
--
-- KEYS[1..n] budget hashes
-- ARGV: one pair per budget: limit, window length s (0 = total)
--
-- Returns {now_us, used_1, reserved_1, reset_at_1, used_2, ...} (reset_at 0 = never).
local now = now_us()
local out = {istr(now)}
for i = 1, #KEYS do
  local len_s = tonumber(ARGV[(i - 1) * 2 + 2])
  local win, used, reserved = budget_read(KEYS[i], len_s, now)
  local reset_at = 0
  if len_s > 0 then
    reset_at = (win + 1) * len_s * 1000000
  end
  out[#out + 1] = istr(used)
  out[#out + 1] = istr(reserved)
  out[#out + 1] = istr(reset_at)
end
return out
