-- spool.lua: the spool-bytes budget every gateway process shares, and the steps of an upload
-- that touch it (gateway/spool.c, gateway/tus_store.c, worker/upload.c).
--
-- The budget ([upload] spool_max_bytes) counts every byte that is, or may soon be, in the spool
-- directory: bodies being received and files waiting for a worker. Hash BYTES (keys_spool_bytes)
-- maps each upload id to the bytes counted for it and keeps their sum in field `total`; zset
-- LEASES (keys_spool_leases) gives each reservation that has no job yet the Unix ms at which it
-- lapses. An upload's bytes are counted at most once (one field per upload id) and released
-- once (HDEL decides who subtracts), whoever asks and however often:
--   reserve / tus_create / renew   add the upload's bytes with a lease (refused over the limit);
--   commit                         turns the lease into the file's real size, without a lease:
--                                  from then on only the worker (after deleting the file) or the
--                                  orphan reaper releases it;
--   release / tus_drop / reap      give an upload's bytes back.
-- A gateway killed mid-upload leaks nothing for long: every reservation call first prunes the
-- lapsed leases. All keys carry the hash tag {intake}; Redis' TIME is the one clock, so the
-- gateways' clocks need not agree.
--
-- ARGV[1] is the operation:
--
-- 'reserve'    KEYS: 1 BYTES, 2 LEASES, 3 registration record. ARGV: 2 upload id, 3 the
--              session's owner, 4 '1' when the registration id carries that owner's mark (for a
--              record without an `owner` field), 5 bytes ('': check the owner only), 6 the limit,
--              7 lease ms. Returns {'not_owner'}, {'checked'} (bytes ''), {'full'} or
--              {'reserved', fence}: the fence (Redis time in microseconds) orders uploads of one
--              document by when they began (commit).
-- 'release'    KEYS: 1 BYTES, 2 LEASES. ARGV: 2 upload id. Returns {'ok'}.
-- 'renew'      KEYS: 1 BYTES, 2 LEASES, 3 upload record. ARGV: 2 upload id, 3 bytes, 4 limit,
--              5 lease ms. A resumable upload's PATCH: while its record is 'receiving', counts
--              its bytes again with a new lease ({'ok'}, or {'full'}); else releases them and
--              returns {'gone', state} (replaced, terminated, or already queued).
-- 'commit'     KEYS: 1 BYTES, 2 LEASES, 3 upload record, 4 registration record, 5 upload
--              stream, 6 the session's zset of unfinished resumable uploads. ARGV: 2 upload id,
--              3 kind (ktp|selfie), 4 the session's owner, 5 the file's bytes, 6 fence ('': the
--              record's own), 7.. the job entry, then field/value pairs of the upload record.
--              Returns {'not_owner'} (the registration's record names another owner: nothing
--              queued, bytes released), {'queued'} (it was queued before: nothing written),
--              {'superseded'} (a newer upload of this document is already queued, or this
--              resumable upload was replaced: this one is recorded 'superseded', no job, bytes
--              released), or {'ok', path}: record
--              'processing', the registration's pointer and fence, the stream entry, and PATH
--              the file of the older upload this one replaced ('' if none), which the caller
--              deletes (its bytes are released here; its job, if delivered, finds it superseded).
-- 'tus_create' KEYS: 1 BYTES, 2 LEASES, 3 registration record, 4 upload record, 5 the session's
--              zset. ARGV: 2 upload id, 3 owner, 4 mark ('1'/'0' as for reserve), 5 bytes,
--              6 limit, 7 lease ms, 8 expiry (Unix s), 9 most unfinished uploads per session,
--              10 registration id, 11 kind, 12.. field/value pairs of the record (state
--              receiving, ...). An unfinished upload of
--              the same registration and kind is replaced (recorded 'superseded', its bytes
--              released). Returns {'not_owner'}, {'unknown_registration'}, {'too_many'},
--              {'full'}, or {'created', replaced id, ...}.
-- 'tus_drop'   KEYS: 1 BYTES, 2 LEASES, 3 upload record. ARGV: 2 upload id. Deletes the record
--              and releases the bytes (termination, expiry, refusal). Returns {'ok'}.
-- 'reap'       KEYS: 1 BYTES, 2 LEASES, 3 upload record. ARGV: 2 upload id. For a spool file
--              older than [upload] orphan_grace_s: {'orphan'} (bytes released; the caller deletes
--              the file) when no record names it or the record is final (accepted, rejected,
--              superseded), else {'live'}.

local op = ARGV[1]
local BYTES, LEASES = KEYS[1], KEYS[2]

local function clock()
    local t = redis.call('TIME')
    return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000),
        t[1] .. string.format('%06d', tonumber(t[2]))
end

local function release(id)
    local b = redis.call('HGET', BYTES, id)
    if b then
        redis.call('HDEL', BYTES, id)
        redis.call('HINCRBY', BYTES, 'total', -tonumber(b))
    end
    redis.call('ZREM', LEASES, id)
end

local function prune(now)
    local lapsed = redis.call('ZRANGEBYSCORE', LEASES, '-inf', now, 'LIMIT', 0, 256)
    for _, id in ipairs(lapsed) do release(id) end
end

-- Room for BYTES more when FREED bytes are given back first.
local function room(bytes, limit, freed)
    local total = tonumber(redis.call('HGET', BYTES, 'total') or '0')
    return total - freed + bytes <= limit
end

-- Count BYTES for ID (replacing what was counted for it), with a lease until UNTIL (ms) or none.
local function count(id, bytes, untilms)
    local old = tonumber(redis.call('HGET', BYTES, id) or '0')
    redis.call('HSET', BYTES, id, bytes)
    redis.call('HINCRBY', BYTES, 'total', bytes - old)
    if untilms then
        redis.call('ZADD', LEASES, untilms, id)
    else
        redis.call('ZREM', LEASES, id)
    end
end

local function owner_ok(reg, owner, mark)
    local o = redis.call('HGET', reg, 'owner')
    if o and o ~= '' then return o == owner end
    return mark == '1'
end

local function job_at(i)
    local n = tonumber(ARGV[i])
    local fv = {}
    for k = i + 1, i + n do fv[#fv + 1] = ARGV[k] end
    return fv, i + n + 1
end

local final = {accepted = true, rejected = true, superseded = true}

if op == 'reserve' then
    if not owner_ok(KEYS[3], ARGV[3], ARGV[4]) then return {'not_owner'} end
    if ARGV[5] == '' then return {'checked'} end
    local bytes = tonumber(ARGV[5])
    local now, fence = clock()
    prune(now)
    local held = tonumber(redis.call('HGET', BYTES, ARGV[2]) or '0')
    if not room(bytes, tonumber(ARGV[6]), held) then return {'full'} end
    count(ARGV[2], bytes, now + tonumber(ARGV[7]))
    return {'reserved', fence}

elseif op == 'release' then
    release(ARGV[2])
    return {'ok'}

elseif op == 'renew' then
    local state = redis.call('HGET', KEYS[3], 'state')
    if state ~= 'receiving' then
        release(ARGV[2])
        return {'gone', state or ''}
    end
    local now = clock()
    prune(now)
    local bytes = tonumber(ARGV[3])
    local held = tonumber(redis.call('HGET', BYTES, ARGV[2]) or '0')
    if not room(bytes, tonumber(ARGV[4]), held) then return {'full'} end
    count(ARGV[2], bytes, now + tonumber(ARGV[5]))
    return {'ok'}

elseif op == 'commit' then
    local upl, reg, stream, sess = KEYS[3], KEYS[4], KEYS[5], KEYS[6]
    local id, kind, owner = ARGV[2], ARGV[3], ARGV[4]
    local o = redis.call('HGET', reg, 'owner')
    if o and o ~= '' and o ~= owner then
        release(id)
        return {'not_owner'}
    end
    local state = redis.call('HGET', upl, 'state')
    if state == 'superseded' then
        release(id)
        return {'superseded'}
    end
    if state == 'processing' or (state and final[state]) then return {'queued'} end
    redis.call('ZREM', sess, id)
    local fence = ARGV[6]
    if fence == '' then fence = redis.call('HGET', upl, 'fence') or '0' end
    local job, rest = job_at(7)
    local fields = {'fence', fence}
    for i = rest, #ARGV do fields[#fields + 1] = ARGV[i] end
    local cur = redis.call('HGET', reg, kind .. '_upload')
    local curfence = tonumber(redis.call('HGET', reg, kind .. '_fence') or '0')
    if cur and cur ~= id and curfence > tonumber(fence) then
        -- A newer upload of this document is queued already (this one's script was delayed).
        fields[#fields + 1] = 'state'
        fields[#fields + 1] = 'superseded'
        redis.call('HSET', upl, unpack(fields))
        release(id)
        return {'superseded'}
    end
    local oldpath = ''
    if cur and cur ~= id then
        local prefix = string.sub(upl, 1, #upl - #id)
        local old = prefix .. cur
        if redis.call('HGET', old, 'state') == 'processing' then
            redis.call('HSET', old, 'state', 'superseded')
            oldpath = redis.call('HGET', old, 'path') or ''
            release(cur)
        end
    end
    fields[#fields + 1] = 'state'
    fields[#fields + 1] = 'processing'
    redis.call('HSET', upl, unpack(fields))
    redis.call('HSET', reg, kind .. '_upload', id, kind .. '_fence', fence)
    redis.call('XADD', stream, '*', unpack(job))
    count(id, tonumber(ARGV[5]), nil)
    return {'ok', oldpath}

elseif op == 'tus_create' then
    local reg, upl, sess = KEYS[3], KEYS[4], KEYS[5]
    local id, bytes, limit = ARGV[2], tonumber(ARGV[5]), tonumber(ARGV[6])
    local prefix = string.sub(upl, 1, #upl - #id)
    if not owner_ok(reg, ARGV[3], ARGV[4]) then return {'not_owner'} end
    if redis.call('EXISTS', reg) == 0 then return {'unknown_registration'} end
    local now, fence = clock()
    prune(now)
    -- The session's unfinished uploads: expired or finished ones leave the set; one of the same
    -- registration and kind is replaced by this one.
    local live, replaced, freed = 0, {}, 0
    local members = redis.call('ZRANGE', sess, 0, -1, 'WITHSCORES')
    for i = 1, #members, 2 do
        local m, exp = members[i], tonumber(members[i + 1])
        local rec = prefix .. m
        local st = redis.call('HMGET', rec, 'state', 'registration_id', 'kind')
        if exp <= now / 1000 or st[1] ~= 'receiving' then
            redis.call('ZREM', sess, m)
        elseif st[2] == ARGV[10] and st[3] == ARGV[11] then
            replaced[#replaced + 1] = m
            freed = freed + tonumber(redis.call('HGET', BYTES, m) or '0')
        else
            live = live + 1
        end
    end
    if live >= tonumber(ARGV[9]) then return {'too_many'} end
    if not room(bytes, limit, freed) then return {'full'} end
    for _, m in ipairs(replaced) do
        redis.call('HSET', prefix .. m, 'state', 'superseded')
        redis.call('ZREM', sess, m)
        release(m)
    end
    local fields = {'fence', fence}
    for i = 12, #ARGV do fields[#fields + 1] = ARGV[i] end
    redis.call('HSET', upl, unpack(fields))
    redis.call('ZADD', sess, tonumber(ARGV[8]), id)
    redis.call('EXPIRE', sess, tonumber(ARGV[8]) - math.floor(now / 1000) + 60)
    count(id, bytes, now + tonumber(ARGV[7]))
    local out = {'created'}
    for _, m in ipairs(replaced) do out[#out + 1] = m end
    return out

elseif op == 'tus_drop' then
    redis.call('DEL', KEYS[3])
    release(ARGV[2])
    return {'ok'}

elseif op == 'reap' then
    local state = redis.call('HGET', KEYS[3], 'state')
    if state and not final[state] then return {'live'} end
    release(ARGV[2])
    return {'orphan'}
end
return redis.error_reply('spool.lua: unknown op ' .. tostring(op))
