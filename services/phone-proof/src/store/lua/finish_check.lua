-- Record a check's comparison: approve (only from pending) or count a failure for the challenge and the number.
-- KEYS: challenge, number fails counter, number blocked flag
-- ARGV: matched ('1'/'0'), now, max_checks, block_after, fails_ttl_ms
-- Reply: {tag, challenge fields}; tag is approved | closed | rejected:0 | rejected:1 (1 = this failure blocked)
local h = redis.call('HGETALL', KEYS[1])
if #h == 0 then return {'notfound', {}} end
local status = redis.call('HGET', KEYS[1], 'status')
if ARGV[1] == '1' then
  if status ~= 'pending' then return {'closed', h} end
  redis.call('HSET', KEYS[1], 'status', 'approved', 'verified', ARGV[2])
  redis.call('DEL', KEYS[2])
  return {'approved', redis.call('HGETALL', KEYS[1])}
end
local checks = tonumber(redis.call('HGET', KEYS[1], 'checks'))
local failed = redis.call('HINCRBY', KEYS[1], 'failed', 1)
-- Challenge::checks_exhausted: every check used and every counted one failed.
if status == 'pending' and checks >= tonumber(ARGV[3]) and failed >= checks then
  redis.call('HSET', KEYS[1], 'status', 'max_attempts_reached')
end
local fails = redis.call('INCR', KEYS[2])
redis.call('PEXPIRE', KEYS[2], ARGV[5])
local blocked_now = '0'
if fails >= tonumber(ARGV[4]) and redis.call('SET', KEYS[3], '1', 'NX') then
  blocked_now = '1'
end
return {'rejected:' .. blocked_now, redis.call('HGETALL', KEYS[1])}
