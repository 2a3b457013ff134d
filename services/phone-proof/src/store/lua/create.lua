-- Create a challenge unless its idempotency key is known, its number is blocked or over its window.
-- KEYS: challenge, number starts (zset), number blocked flag, idempotency key
-- ARGV: now, window_ms, max_in_window, challenge_ttl_ms, idem_ttl_ms, has_idem, id, fingerprint, field/value...
-- Reply: {tag, list}
local now = tonumber(ARGV[1])
if ARGV[6] == '1' then
  local v = redis.call('GET', KEYS[4])
  if v then
    local sep = string.find(v, '|', 1, true)
    return {'existing', {string.sub(v, 1, sep - 1), string.sub(v, sep + 1)}}
  end
end
if redis.call('EXISTS', KEYS[3]) == 1 then
  return {'blocked', {}}
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - tonumber(ARGV[2]))
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[3]) then
  local oldest = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
  return {'limited', {oldest[2]}}
end
redis.call('ZADD', KEYS[2], now, ARGV[7])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
redis.call('HSET', KEYS[1], unpack(ARGV, 9))
redis.call('PEXPIRE', KEYS[1], ARGV[4])
if ARGV[6] == '1' then
  redis.call('SET', KEYS[4], ARGV[7] .. '|' .. ARGV[8], 'PX', ARGV[5])
end
return {'new', {}}
