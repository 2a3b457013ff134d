-- Count one check if the challenge is pending, unexpired, under its limit and its number unblocked.
-- KEYS: challenge
-- ARGV: tenant, now, max_checks, number key prefix (the blocked flag is <prefix><nk>:blocked)
-- Reply: {tag, challenge fields}
local c, done = load_pending(ARGV[1], tonumber(ARGV[2]))
if not c then return done end
-- The number's key is only known from the challenge, so it is built here (single Redis node or one hash slot).
if redis.call('EXISTS', ARGV[4] .. c['nk'] .. ':blocked') == 1 then return {'blocked', {}} end
if tonumber(c['checks']) >= tonumber(ARGV[3]) then
  redis.call('HSET', KEYS[1], 'status', 'max_attempts_reached')
  return {'closed', redis.call('HGETALL', KEYS[1])}
end
redis.call('HINCRBY', KEYS[1], 'checks', 1)
return {'counted', redis.call('HGETALL', KEYS[1])}
