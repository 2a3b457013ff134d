-- Prepended to the scripts that act on one caller's pending challenge (KEYS[1]).
-- Returns the challenge's fields as a table, or nil and the reply to give: not found (also for another
-- tenant's challenge), or closed (an expired pending challenge is recorded as expired first).
local function load_pending(tenant, now)
  local h = redis.call('HGETALL', KEYS[1])
  if #h == 0 then return nil, {'notfound', {}} end
  local c = {}
  for i = 1, #h, 2 do c[h[i]] = h[i + 1] end
  if c['tenant'] ~= tenant then return nil, {'notfound', {}} end
  if c['status'] == 'pending' and now >= tonumber(c['expires']) then
    redis.call('HSET', KEYS[1], 'status', 'expired')
    return nil, {'closed', redis.call('HGETALL', KEYS[1])}
  end
  if c['status'] ~= 'pending' then return nil, {'closed', h} end
  return c, nil
end
