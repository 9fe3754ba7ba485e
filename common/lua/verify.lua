-- verify.lua: the gateway's atomic steps of one-time verification codes (gateway/verify*.c;
-- docs/design.md, "Verification codes"). The worker's steps are in verify_send.lua.
--
-- A verification record (hash) holds no code: the worker writes only its MAC (code_mac), and
-- the gateway checks a submitted code against it in C. Times are Unix ms passed by the caller.
--
-- Throttles are GCRA: a hash field holds a theoretical arrival time (TAT); a send is allowed
-- when TAT - now <= tau, and moves TAT to max(TAT, now) + T. With tau = 0 that is "one per T";
-- with T = window / N and tau = window - T it is "at most N in any window" (N at once, then one
-- per T). Every limit of a request is checked before any is spent.
--
-- ARGV[1] is the operation:
--
-- 'create'  KEYS: 1 registration, 2 new verification, 3 the previous verification (2 again when
--           there is none), 4 destination throttle, 5 registration throttle, 6 verify stream.
--           ARGV: 2 owner, 3 contact (email|phone), 4 previous vid ('' none), 5 new vid,
--           6 now, 7 resend interval ms, 8 day T ms, 9 day tau ms, 10 keep-until ms (PEXPIREAT),
--           11.. the job entry (N, then N items: job_argv), then field/value pairs of the record.
--           Returns {'created', ms until the next send is allowed}, {'missing'} (no such
--           registration), {'not_owner'}, {'send_limit', ms}, {'resend_too_soon', ms}, or
--           {'busy'} (another create changed the current verification since the caller read it).
--           Burns the previous verification (burned_by = replaced) unless it is final.
-- 'recover' KEYS: 1 NIK dedupe key, 2 registration (a decoy key when the NIK is unknown),
--           3 new verification, 4 NIK throttle, 5 address throttle, 6 verify stream, 7 the
--           contact's previous verification (3 again when none).
--           ARGV: 2 registration id the caller found ('' none), 3 now, 4 NIK T, 5 NIK tau,
--           6 address T, 7 address tau, 8 keep-until ms, 9 contact (email|phone), 10 previous
--           vid ('' none), 11 new vid, 12.. the job entry, then the record's pairs. The record
--           is written either way (a decoy when the NIK is unknown or changed since the caller
--           read it, with no job), so both cases do the same work. A real one becomes the
--           contact's current verification (the previous one burned), as with 'create'.
--           Returns {'created', ms} or {'nik_limit', ms} or {'addr_limit', ms}.
-- 'attempt' KEYS: 1 verification. ARGV: 2 owner, 3 now, 4 max attempts.
--           Counts one confirm attempt. Returns {'missing'} (no record, or another owner's),
--           {'verified'}, {'burned', why}, {'expired'}, {'not_sent', state, send_error}, or
--           {'check', code_mac ('' when none), attempts so far, registration id}.
-- 'verified' KEYS: 1 verification, 2 registration. ARGV: 2 the MAC that matched, 3 now, 4 vid.
--           Marks the verification verified (code_mac deleted) if its MAC is still that one, and
--           the registration's contact verified when it is still the contact's current
--           verification; a `recover` one also gives the registration to the verification's
--           owner. Returns {'ok'}, or {'stale'} (replaced or burned meanwhile, or a
--           `verify` code of a registration that another session recovered since).
-- 'burn'    KEYS: 1 verification. ARGV: 2 why (attempts). Burns it unless final.

local op = ARGV[1]

local function job_at(i)
    local n = tonumber(ARGV[i])
    local fv = {}
    for k = i + 1, i + n do fv[#fv + 1] = ARGV[k] end
    return fv, i + n + 1
end

-- {wait ms (0 = allowed), the new TAT} of one GCRA limit.
local function gcra(key, field, now, t, tau)
    local tat = tonumber(redis.call('HGET', key, field) or '0') or 0
    if tat < now then tat = now end
    if tat - now > tau then return tat - now - tau, tat end
    return 0, tat + t
end

-- Spend the limits L ({key, field, new TAT, tau}, ...): write each TAT and keep the key until
-- its last TAT. Returns the ms until the next request would be allowed.
local function spend(l, now)
    local next_ms = 0
    for _, x in ipairs(l) do
        redis.call('HSET', x[1], x[2], x[3])
        local w = x[3] - now - x[4]
        if w > next_ms then next_ms = w end
        local ttl = redis.call('PTTL', x[1])
        if ttl < x[3] - now then redis.call('PEXPIREAT', x[1], x[3]) end
    end
    return next_ms
end

local function burn(key, why)
    local st = redis.call('HGET', key, 'state')
    if st and st ~= 'verified' and st ~= 'burned' then
        redis.call('HSET', key, 'state', 'burned', 'burned_by', why)
        redis.call('HDEL', key, 'code_mac')
    end
end

local function write_record(key, from, keep)
    local fields = {}
    for i = from, #ARGV do fields[#fields + 1] = ARGV[i] end
    redis.call('HSET', key, unpack(fields))
    redis.call('PEXPIREAT', key, keep)
end

if op == 'create' then
    local reg, ver, prev, tdest, treg, stream = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
    local owner, contact, prev_vid, vid = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
    local now, interval = tonumber(ARGV[6]), tonumber(ARGV[7])
    local day_t, day_tau, keep = tonumber(ARGV[8]), tonumber(ARGV[9]), tonumber(ARGV[10])
    local cur = redis.call('HMGET', reg, 'owner', contact .. '_verification')
    if not cur[1] then return {'missing'} end
    if cur[1] ~= owner then return {'not_owner'} end
    if (cur[2] or '') ~= prev_vid then return {'busy'} end
    local limits, day_wait, soon_wait = {}, 0, 0
    for _, k in ipairs({tdest, treg}) do
        local w, tat = gcra(k, 'day_ms', now, day_t, day_tau)
        if w > day_wait then day_wait = w end
        limits[#limits + 1] = {k, 'day_ms', tat, day_tau}
        w, tat = gcra(k, 'next_ms', now, interval, 0)
        if w > soon_wait then soon_wait = w end
        limits[#limits + 1] = {k, 'next_ms', tat, 0}
    end
    if day_wait > 0 then return {'send_limit', day_wait} end
    if soon_wait > 0 then return {'resend_too_soon', soon_wait} end
    if prev_vid ~= '' then burn(prev, 'replaced') end
    local job, rest = job_at(11)
    write_record(ver, rest, keep)
    redis.call('HSET', reg, contact .. '_verification', vid, contact .. '_state', 'sending')
    redis.call('HDEL', reg, contact .. '_error', contact .. '_sent_ms')
    redis.call('XADD', stream, '*', unpack(job))
    return {'created', spend(limits, now)}

elseif op == 'recover' then
    local nik, reg, ver, tnik, taddr, stream = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
    local rid, now = ARGV[2], tonumber(ARGV[3])
    local nik_t, nik_tau = tonumber(ARGV[4]), tonumber(ARGV[5])
    local addr_t, addr_tau, keep = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
    local contact, prev_vid, vid = ARGV[9], ARGV[10], ARGV[11]
    local wa, taa = gcra(taddr, 'day_ms', now, addr_t, addr_tau)
    if wa > 0 then return {'addr_limit', wa} end
    local wn, tan = gcra(tnik, 'day_ms', now, nik_t, nik_tau)
    if wn > 0 then return {'nik_limit', wn} end
    local real = rid ~= '' and redis.call('GET', nik) == rid and redis.call('EXISTS', reg) == 1
    local job, rest = job_at(12)
    write_record(ver, rest, keep)
    if real then
        -- The recovery becomes the contact's current verification, as a new code would: the
        -- worker sends only a registration's current one, and the checklist follows it.
        if prev_vid ~= '' and redis.call('HGET', reg, contact .. '_verification') == prev_vid then
            burn(KEYS[7], 'replaced')
        end
        redis.call('HSET', reg, contact .. '_verification', vid, contact .. '_state', 'sending')
        redis.call('HDEL', reg, contact .. '_error', contact .. '_sent_ms')
        redis.call('XADD', stream, '*', unpack(job))
    else
        redis.call('HSET', ver, 'registration_id', '', 'destination', '', 'masked', '')
    end
    return {'created', spend({{taddr, 'day_ms', taa, addr_tau}, {tnik, 'day_ms', tan, nik_tau}},
                             now)}

elseif op == 'attempt' then
    local r = redis.call('HMGET', KEYS[1], 'owner', 'state', 'expires_ms', 'attempts', 'code_mac',
                         'purpose', 'registration_id', 'send_error', 'burned_by')
    if not r[1] or r[1] ~= ARGV[2] then return {'missing'} end
    local state = r[2] or ''
    if state == 'verified' then return {'verified'} end
    if state == 'burned' then return {'burned', r[9] or ''} end
    if tonumber(ARGV[3]) >= (tonumber(r[3]) or 0) then return {'expired'} end
    -- A recovery that was not sent answers as one that was (a wrong code): otherwise a decoy,
    -- which is never sent, would tell that its NIK is unknown.
    if r[6] ~= 'recover' and (state == 'send_failed' or (state == 'queued' and not r[5])) then
        return {'not_sent', state, r[8] or ''}
    end
    if (tonumber(r[4]) or 0) >= tonumber(ARGV[4]) then
        burn(KEYS[1], 'attempts')
        return {'burned', 'attempts'}
    end
    local n = redis.call('HINCRBY', KEYS[1], 'attempts', 1)
    return {'check', r[5] or '', tostring(n), r[7] or ''}

elseif op == 'verified' then
    local r = redis.call('HMGET', KEYS[1], 'state', 'code_mac', 'purpose', 'channel', 'owner')
    if r[1] == 'verified' or r[1] == 'burned' or r[2] ~= ARGV[2] then return {'stale'} end
    local exists = redis.call('EXISTS', KEYS[2]) == 1
    if r[3] == 'recover' then
        if exists then redis.call('HSET', KEYS[2], 'owner', r[5]) end
    elseif redis.call('HGET', KEYS[2], 'owner') ~= r[5] then
        -- Asked by a session that has since lost the registration to a recovery.
        return {'stale'}
    end
    redis.call('HSET', KEYS[1], 'state', 'verified', 'verified_ms', ARGV[3])
    redis.call('HDEL', KEYS[1], 'code_mac')
    local contact = r[4] == 'sms' and 'phone' or 'email'
    if exists and redis.call('HGET', KEYS[2], contact .. '_verification') == ARGV[4] then
        redis.call('HSET', KEYS[2], contact .. '_state', 'verified')
    end
    return {'ok'}

elseif op == 'burn' then
    burn(KEYS[1], ARGV[2])
    return {'ok'}
end
return redis.error_reply('verify.lua: unknown op ' .. tostring(op))
