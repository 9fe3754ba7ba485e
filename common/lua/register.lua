-- register.lua: the register queue's effect on the registration record (worker/register.c),
-- atomic.
--
-- 'accept' KEYS: 1 registration record. ARGV: 2 the job's idempotency id, 3 now ms, 4 the
--          downstream's reference ('' when none or without a downstream).
--          Marks the registration accepted: state = accepted, accepted_at, accepted_by (the
--          idempotency id), downstream_ref when given. Doing it again changes nothing. Returns
--          {'accepted'}, {'already'} (accepted or rejected before), or {'missing'} when there is
--          no such registration.
-- 'reject' KEYS: 1 registration record. ARGV: 2 idempotency id, 3 now ms, 4 HTTP status, 5 the
--          downstream's reason (already bounded and cleaned by the caller).
--          Marks the registration rejected: state = rejected, rejected_at, rejected_by,
--          reject_status, reject_reason. Returns {'rejected'}, {'already'} or {'missing'}.

local op = ARGV[1]
local function settled()
    local st = redis.call('HGET', KEYS[1], 'state')
    return st == 'accepted' or st == 'rejected'
end
if op == 'accept' then
    if redis.call('EXISTS', KEYS[1]) == 0 then return {'missing'} end
    if settled() then return {'already'} end
    redis.call('HSET', KEYS[1], 'state', 'accepted', 'accepted_at', ARGV[3], 'accepted_by', ARGV[2])
    if ARGV[4] and ARGV[4] ~= '' then redis.call('HSET', KEYS[1], 'downstream_ref', ARGV[4]) end
    return {'accepted'}
elseif op == 'reject' then
    if redis.call('EXISTS', KEYS[1]) == 0 then return {'missing'} end
    if settled() then return {'already'} end
    redis.call('HSET', KEYS[1], 'state', 'rejected', 'rejected_at', ARGV[3], 'rejected_by', ARGV[2],
               'reject_status', ARGV[4], 'reject_reason', ARGV[5])
    return {'rejected'}
end
return redis.error_reply('register.lua: unknown op ' .. tostring(op))
