-- One request's allowance under GCRA (a token bucket kept as one number: the theoretical arrival time).
-- KEYS[1]: the tenant-route key. ARGV[1]: microseconds between requests at the sustained rate (T).
-- ARGV[2]: burst (requests that may arrive at once after a quiet period).
-- Returns {1, 0} when allowed, {0, microseconds until the next request would be} when not.
-- Time is Redis's own clock, so every replica judges against one clock.
local t = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local now = redis.call('TIME')
local now_us = tonumber(now[1]) * 1000000 + tonumber(now[2])
local tat = tonumber(redis.call('GET', KEYS[1])) or now_us
if tat < now_us then
  tat = now_us
end
local new_tat = tat + t
local allow_at = new_tat - t * burst
if allow_at > now_us then
  return {0, math.ceil(allow_at - now_us)}
end
-- The key expires when its bucket would be full again: idle callers cost Redis nothing.
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.max(1, math.ceil((new_tat - now_us) / 1000)))
return {1, 0}
