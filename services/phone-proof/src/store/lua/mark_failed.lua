-- Mark a pending challenge failed (its delivery failed for good).
-- KEYS: challenge
if redis.call('HGET', KEYS[1], 'status') == 'pending' then
  redis.call('HSET', KEYS[1], 'status', 'failed')
end
return 1
