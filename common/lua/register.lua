-- register.lua: the register queue's local effect (worker/register.c), atomic.
--
-- 'accept' KEYS: 1 registration record. ARGV: 2 the job's idempotency id, 3 now ms.
--          Marks the registration accepted: state = accepted, accepted_at, accepted_by (the
--          idempotency id). Doing it again changes nothing. Returns {'accepted'}, {'already'},
--          or {'missing'} when there is no such registration.

local op = ARGV[1]
if op == 'accept' then
    if redis.call('EXISTS', KEYS[1]) == 0 then return {'missing'} end
    if redis.call('HGET', KEYS[1], 'state') == 'accepted' then return {'already'} end
    redis.call('HSET', KEYS[1], 'state', 'accepted', 'accepted_at', ARGV[3], 'accepted_by', ARGV[2])
    return {'accepted'}
end
return redis.error_reply('register.lua: unknown op ' .. tostring(op))
