-- intake.lua: the atomic steps of taking work in (registrations, finished uploads).
--
-- A 202 is sent only after the step that wrote the record and its stream entry has returned, so
-- with AOF the work is durable when the applicant hears "accepted". All keys carry the hash tag
-- {intake}.
--
-- ARGV[1] is the operation:
--
-- 'claim'    KEYS: 1 idempotency key. ARGV: 2 body hash, 3 ttl s.
--            Claims an Idempotency-Key for a request with this body. Returns {'claimed'},
--            {'inflight'} (same body, first request not finished), {'reused'} (another body),
--            or {'replay', status, body} (the first request's answer).
-- 'register' KEYS: 1 idempotency key ('' when none), 2 NIK dedupe key, 3 registration record,
--            4 register stream. ARGV: 2 body hash, 3 ttl s, 4 registration id, 5 the answer's
--            body, 6 the duplicate answer's body, 7.. the job entry, then field/value pairs of
--            the record.
--            Returns {'created'} or {'duplicate', existing id}; records the answer under the
--            idempotency key either way.
-- 'release'  KEYS: 1 idempotency key. Drops a claim whose request ended without an answer to
--            keep (e.g. refused by validation), so the applicant can fix it and retry.
-- (A finished upload is queued by common/lua/spool.lua 'commit', with the spool budget.)
--
-- A job entry in ARGV is N, then N items (field, value, ...) that go to XADD as they are: the
-- entry's fields are named in C, by the job contract (common/job.c, job_argv), never here.

local op = ARGV[1]

-- The job entry at ARGV[i]: its field/value list, and the index of what follows it.
local function job_at(i)
    local n = tonumber(ARGV[i])
    local fv = {}
    for k = i + 1, i + n do fv[#fv + 1] = ARGV[k] end
    return fv, i + n + 1
end

local function done(key, hash, ttl, status, body)
    if key ~= '' then
        redis.call('SET', key, 'done:' .. hash .. ':' .. status .. ':' .. body, 'EX', ttl)
    end
end

if op == 'claim' then
    local v = redis.call('GET', KEYS[1])
    if not v then
        redis.call('SET', KEYS[1], 'pending:' .. ARGV[2], 'EX', 60)
        return {'claimed'}
    end
    local state, hash, rest = string.match(v, '^(%a+):(%x+):?(.*)$')
    if hash ~= ARGV[2] then return {'reused'} end
    if state == 'pending' then return {'inflight'} end
    local status, body = string.match(rest, '^(%d+):(.*)$')
    return {'replay', status, body}

elseif op == 'release' then
    local v = redis.call('GET', KEYS[1])
    if v and string.sub(v, 1, 8) == 'pending:' then redis.call('DEL', KEYS[1]) end
    return {'ok'}

elseif op == 'register' then
    local idem, nik, rec, stream = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
    local hash, ttl, id = ARGV[2], tonumber(ARGV[3]), ARGV[4]
    local existing = redis.call('GET', nik)
    if existing then
        done(idem, hash, ttl, 409, ARGV[6])
        return {'duplicate', existing}
    end
    redis.call('SET', nik, id)
    local job, rest = job_at(7)
    local fields = {}
    for i = rest, #ARGV do fields[#fields + 1] = ARGV[i] end
    redis.call('HSET', rec, unpack(fields))
    redis.call('XADD', stream, '*', unpack(job))
    done(idem, hash, ttl, 202, ARGV[5])
    return {'created'}
end
return redis.error_reply('intake.lua: unknown op ' .. tostring(op))
