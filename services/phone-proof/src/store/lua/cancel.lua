-- Cancel a pending challenge.
-- KEYS: challenge
-- ARGV: tenant, now
-- Reply: {tag, challenge fields}; tag is notfound | closed | ok
local c, done = load_pending(ARGV[1], tonumber(ARGV[2]))
if not c then return done end
redis.call('HSET', KEYS[1], 'status', 'canceled')
return {'ok', redis.call('HGETALL', KEYS[1])}
