-- Count a send and move the expiry, never past the hard cap.
-- KEYS: challenge
-- ARGV: tenant, now, max_sends, code_ttl_ms, resend_interval_ms
-- Reply: {tag, list}; tag is notfound | closed | exhausted | early ({next_send}) | ok (challenge fields)
local c, done = load_pending(ARGV[1], tonumber(ARGV[2]))
if not c then return done end
if tonumber(c['sends']) >= tonumber(ARGV[3]) then return {'exhausted', {}} end
if tonumber(ARGV[2]) < tonumber(c['next_send']) then return {'early', {c['next_send']}} end
local expires = math.min(tonumber(ARGV[2]) + tonumber(ARGV[4]), tonumber(c['max_expires']))
redis.call('HSET', KEYS[1], 'expires', string.format('%d', expires),
  'next_send', string.format('%d', tonumber(ARGV[2]) + tonumber(ARGV[5])))
redis.call('HINCRBY', KEYS[1], 'sends', 1)
return {'ok', redis.call('HGETALL', KEYS[1])}
