-- Count one check if the challenge is pending, unexpired, under its limit and its number unblocked.
-- KEYS: challenge
-- ARGV: tenant, now, max_checks, number key prefix (the blocked flag is <prefix><nk>:blocked)
-- Reply: {tag, challenge fields}; tag is notfound | blocked | closed | no_checks_left | counted
local c, done = load_pending(ARGV[1], tonumber(ARGV[2]))
if not c then return done end
-- The number's key is only known from the challenge, so it is built here (single Redis node or one hash slot).
if redis.call('EXISTS', ARGV[4] .. c['nk'] .. ':blocked') == 1 then return {'blocked', {}} end
local checks = tonumber(c['checks'])
if checks >= tonumber(ARGV[3]) then
  -- Challenge::checks_exhausted: close only once every counted check has failed; while one is still comparing
  -- its code (it may be the right one), answer without counting and leave the challenge pending.
  if tonumber(c['failed'] or '0') < checks then
    return {'no_checks_left', redis.call('HGETALL', KEYS[1])}
  end
  redis.call('HSET', KEYS[1], 'status', 'max_attempts_reached')
  return {'closed', redis.call('HGETALL', KEYS[1])}
end
redis.call('HINCRBY', KEYS[1], 'checks', 1)
return {'counted', redis.call('HGETALL', KEYS[1])}
