-- intake.lua: the atomic steps of taking work in (registrations, finished uploads).
--
-- A 202 is sent only after the step that wrote the record and its stream entry has returned, so
-- with AOF the work is durable when the applicant hears "accepted". All keys carry the hash tag
-- {intake}.
--
-- ARGV[1] is the operation:
--
-- 'claim'    KEYS: 1 idempotency key. ARGV: 2 body hash, 3 ttl s, 4 fencing token (the id of the
--            registration this request will create), 5 now (Unix ms, the gateway's), 6 lease ms.
--            Claims an Idempotency-Key for a request with this body: 'pending:HASH:TOKEN:MS'.
--            Returns {'claimed'} ({'claimed', 'over'} when it took over a pending claim older
--            than the lease: its request timed out, and its late 'register' is fenced off),
--            {'inflight'} (same body, first request not finished and within its lease),
--            {'reused'} (another body), or {'replay', status, body} (the first answer).
-- 'register' KEYS: 1 idempotency key ('' when none), 2 NIK dedupe key, 3 registration record,
--            4 register stream. ARGV: 2 body hash, 3 ttl s, 4 registration id, 5 the answer's
--            body, 6 the duplicate answer's body, 7.. the job entry, then field/value pairs of
--            the record (one of them `owner`).
--            With an idempotency key, writes nothing and returns {'fenced'} unless the key is
--            still this request's pending claim (token = registration id). Else returns
--            {'created'}; {'mine', existing id} when the NIK is already registered to a record
--            whose `owner` is this request's owner (the answer is the existing registration's,
--            ARGV 5 with the id swapped); or {'duplicate', existing id} for another owner.
--            Records the answer under the idempotency key in each case. The existing record's
--            key is KEYS[3] with its id swapped (keys_registration ends with the id).
-- 'release'  KEYS: 1 idempotency key. ARGV: 2 fencing token. Drops this request's pending claim
--            when its request ended without an answer to keep, so the applicant can retry.
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

-- S with every occurrence of A (plain text) replaced by B.
local function swap(s, a, b)
    local out, i = {}, 1
    while true do
        local j = string.find(s, a, i, true)
        if not j then break end
        out[#out + 1] = string.sub(s, i, j - 1) .. b
        i = j + #a
    end
    out[#out + 1] = string.sub(s, i)
    return table.concat(out)
end

-- The fencing token of a pending claim V ('pending:HASH:TOKEN:MS'), or nil.
local function token_of(v)
    return v and string.match(v, '^pending:%x+:(%x+):%d+$')
end

if op == 'claim' then
    local v = redis.call('GET', KEYS[1])
    local over = nil
    if v then
        local state, hash, rest = string.match(v, '^(%a+):(%x+):?(.*)$')
        if hash ~= ARGV[2] then return {'reused'} end
        if state == 'pending' then
            -- A claim without a token or a time (written before fencing) waits out its EX.
            local since = tonumber(string.match(rest, '^%x+:(%d+)$') or '')
            if not since or tonumber(ARGV[5]) - since < tonumber(ARGV[6]) then
                return {'inflight'}
            end
            over = 'over'
        else
            local status, body = string.match(rest, '^(%d+):(.*)$')
            return {'replay', status, body}
        end
    end
    redis.call('SET', KEYS[1], 'pending:' .. ARGV[2] .. ':' .. ARGV[4] .. ':' .. ARGV[5], 'EX', 60)
    return {'claimed', over}

elseif op == 'release' then
    if token_of(redis.call('GET', KEYS[1])) == ARGV[2] then redis.call('DEL', KEYS[1]) end
    return {'ok'}

elseif op == 'register' then
    local idem, nik, rec, stream = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
    local hash, ttl, id = ARGV[2], tonumber(ARGV[3]), ARGV[4]
    if idem ~= '' and token_of(redis.call('GET', idem)) ~= id then return {'fenced'} end
    local job, rest = job_at(7)
    local fields, owner = {}, nil
    for i = rest, #ARGV do fields[#fields + 1] = ARGV[i] end
    for i = 1, #fields - 1, 2 do
        if fields[i] == 'owner' then owner = fields[i + 1] end
    end
    local existing = redis.call('GET', nik)
    if existing then
        local mine = nil
        if owner and owner ~= '' and string.sub(rec, -#id) == id then
            mine = redis.call('HGET', string.sub(rec, 1, #rec - #id) .. existing, 'owner')
        end
        if mine and mine == owner then
            done(idem, hash, ttl, 202, swap(ARGV[5], id, existing))
            return {'mine', existing}
        end
        done(idem, hash, ttl, 409, ARGV[6])
        return {'duplicate', existing}
    end
    redis.call('SET', nik, id)
    redis.call('HSET', rec, unpack(fields))
    redis.call('XADD', stream, '*', unpack(job))
    done(idem, hash, ttl, 202, ARGV[5])
    return {'created'}
end
return redis.error_reply('intake.lua: unknown op ' .. tostring(op))
