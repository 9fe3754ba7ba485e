-- room.lua: every atomic step of a waiting room, run by any gateway (no leader).
--
-- One script with an operation name, so all steps share the same helpers and one SHA. Time is
-- Redis' clock (TIME), never a gateway's. Places are numbered from 0 in one global order:
-- pre-queue places are [0, P) (P frozen at opening), later arrivals P + n where n comes from
-- INCRBY on the tail key. head = places admitted so far; position = place - head.
--
-- KEYS: 1 ctl (hash), 2 tail, 3 pre, 4 active (zset sid -> expiry ms), 5 batches (zset of
--       admission batches by first place), 6 batchinfo (first place -> "end:admitted_ms:done"),
--       7 left (zset of waiting places whose holders left), 8 per-operation key (redemption
--       record rd:<place>, or the applicant bucket), 9 ended (zset sid -> expiry ms of the
--       sessions that left before their expiry: the session gate refuses them)
-- ARGV: 1 op, 2 admit_rate_per_min, 3 max_active, 4 redeem_window_ms, 5 paused (0/1),
--       6 opens_at_ms (0: open now), 7 prequeue_from_ms (0: none), 8 a fresh random seed (hex),
--       9 session_ttl_ms, 10 admit_burst (>= 1), 11.. the operation's own arguments
--
-- The capacity rule: admitted places that may still be redeemed (pending) plus live sessions
-- (active) never exceed max_active. Ghosts (admitted, never redeemed) stop counting when their
-- batch's redeem window ends, and are credited back so abandonment does not throttle the flow.
--
-- The rate rule: every admission of a new person (fast path or controller) takes one token
-- from one bucket in ctl ('tokens', 'tlast'), which refills at admit_rate_per_min up to
-- admit_burst. So over any window W, admissions <= admit_burst + rate x W, however many
-- gateways run and whichever path admits (ghost credit and passed-over leavers aside: they
-- replace people who never came).

local K_CTL, K_TAIL, K_PRE, K_ACTIVE, K_BATCHES, K_INFO, K_LEFT, K_OP, K_ENDED =
    KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9]
local op = ARGV[1]
local rate = tonumber(ARGV[2])
local max_active = tonumber(ARGV[3])
local window = tonumber(ARGV[4])
local paused = ARGV[5] == '1'
local opens_at = tonumber(ARGV[6])
local prequeue_from = tonumber(ARGV[7])
local ttl = tonumber(ARGV[9])
local burst = tonumber(ARGV[10])

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

local function num(v) return tonumber(v) or 0 end

-- Open the room when its time has come; returns opened (bool), P (frozen pre-queue size).
local function open_if_due()
    local st = redis.call('HMGET', K_CTL, 'opened', 'P')
    if st[1] == '1' then return true, num(st[2]) end
    if opens_at > 0 and now < opens_at then
        -- Commit to the seed as soon as the pre-queue runs; it is revealed at opening.
        if prequeue_from > 0 and now >= prequeue_from then
            redis.call('HSETNX', K_CTL, 'seed', ARGV[8])
        end
        return false, 0
    end
    local P = num(redis.call('GET', K_PRE))
    if P > 0 then redis.call('HSETNX', K_CTL, 'seed', ARGV[8]) end
    redis.call('HSET', K_CTL, 'opened', '1', 'P', P, 'opened_at', now)
    -- A scheduled opening starts with an empty budget: those waiting for it are admitted at the
    -- rate from the opening on. A room open from the start starts full (budget()).
    if opens_at > 0 then redis.call('HSET', K_CTL, 'tokens', '0', 'tlast', now) end
    return true, P
end

local function active_count()
    redis.call('ZREMRANGEBYSCORE', K_ACTIVE, '-inf', now)
    return redis.call('ZCARD', K_ACTIVE)
end

-- The admission batch holding PLACE, if its redeem window is still open:
-- returns first, end, admitted_ms, done (or nil).
local function batch_of(place)
    local b = redis.call('ZREVRANGEBYSCORE', K_BATCHES, place, '-inf', 'LIMIT', 0, 1)
    if #b == 0 then return nil end
    local info = redis.call('HGET', K_INFO, b[1])
    if not info then return nil end
    local e, at, done = string.match(info, '^(%d+):(%d+):(%d+)$')
    e, at, done = tonumber(e), tonumber(at), tonumber(done)
    if place >= e or at + window <= now then return nil end
    return tonumber(b[1]), e, at, done
end

-- Mark one place of the batch starting at FIRST as done (redeemed or left): it no longer
-- counts as pending.
local function batch_done(first, e, at, done)
    redis.call('HSET', K_INFO, first, e .. ':' .. at .. ':' .. (done + 1))
    redis.call('HINCRBY', K_CTL, 'pending', -1)
end

-- The admission budget now: the tokens left at 'tlast' plus what the rate has added since
-- (nothing while paused), at most burst. A room that never admitted starts full.
local function budget()
    local f = redis.call('HMGET', K_CTL, 'tokens', 'tlast')
    local tokens = tonumber(f[1]) or burst
    local el = now - (tonumber(f[2]) or now)
    if el > 0 and not paused then tokens = tokens + rate * el / 60000 end
    if tokens > burst then tokens = burst end
    return tokens
end

local function budget_set(tokens)
    redis.call('HSET', K_CTL, 'tokens', tostring(tokens), 'tlast', now)
end

-- A session that left before its expiry EXP (ms) is refused by the gate until then; entries
-- past their expiry are dropped, so the set holds only the sessions that could still be used.
local function end_session(sid, exp)
    redis.call('ZREM', K_ACTIVE, sid)
    redis.call('ZREMRANGEBYSCORE', K_ENDED, '-inf', now)
    if exp and exp > now then redis.call('ZADD', K_ENDED, exp, sid) end
end

local function ended(sid) return redis.call('ZSCORE', K_ENDED, sid) ~= false end

local function new_session(sid)
    local exp = now + ttl
    redis.call('ZADD', K_ACTIVE, exp, sid)
    return exp
end

if op == 'tick' then
    local opened, P = open_if_due()
    local seed = redis.call('HGET', K_CTL, 'seed') or ''
    if not opened then
        return {0, 0, 0, 0, 0, 0, now, 0, num(redis.call('GET', K_PRE)), 0, 0, 0, seed}
    end
    local f = redis.call('HMGET', K_CTL, 'head', 'last', 'pending', 'credit', 'ema',
                         'redeemed', 'expired', 'admitted')
    local head, last, pending = num(f[1]), tonumber(f[2]) or now, num(f[3])
    local credit, ema = num(f[4]), num(f[5])
    local redeemed, expired, admitted = num(f[6]), num(f[7]), num(f[8])
    local tail = P + num(redis.call('GET', K_TAIL))
    local nactive = active_count()

    -- Batches past their redeem window: what was not redeemed is a ghost. At most 64 a run.
    local b = redis.call('ZRANGE', K_BATCHES, 0, 63)
    for _, first in ipairs(b) do
        local info = redis.call('HGET', K_INFO, first)
        local e, at, done = string.match(info or '0:0:0', '^(%d+):(%d+):(%d+)$')
        e, at, done = tonumber(e), tonumber(at), tonumber(done)
        if info and at + window > now then break end
        local ghosts = e - tonumber(first) - done
        if ghosts < 0 then ghosts = 0 end
        pending = pending - ghosts
        expired = expired + ghosts
        credit = credit + ghosts
        redis.call('ZREM', K_BATCHES, first)
        redis.call('HDEL', K_INFO, first)
        if e > tonumber(first) then redis.call('ZREMRANGEBYSCORE', K_LEFT, first, e - 1) end
    end
    if pending < 0 then pending = 0 end

    local elapsed = now - last
    if elapsed < 0 then elapsed = 0 end
    -- The budget caps what a tick may admit (at most burst after the controllers were away);
    -- the fast path drew from the same tokens.
    local tokens = budget()
    local whole = math.floor(tokens)
    local want = whole + credit
    if paused then want = 0 end
    local waiting = tail - head
    local free = max_active - nactive - pending
    if free < 0 then free = 0 end
    local n = math.min(want, waiting, free)
    if n < 0 then n = 0 end
    if not paused then
        tokens = tokens - math.min(n, whole) -- tokens first, then ghost credit
        if n < want then
            -- The rate is a ceiling, not a debt: what capacity or an empty queue prevented is
            -- not banked; ghost credit is kept only while people wait.
            if waiting <= n then credit = 0 else credit = math.min(credit, want - n) end
        else
            credit = 0
        end
    end

    local gone = 0
    if n > 0 then
        -- Places whose holders left are passed over: extend the batch so that N real people
        -- are admitted (a few rounds; what is still missing becomes credit for the next tick).
        local e = head + n
        for _ = 1, 8 do
            gone = redis.call('ZCOUNT', K_LEFT, head, e - 1)
            local want_end = head + n + gone
            if want_end > tail then want_end = tail end
            if want_end <= e then break end
            e = want_end
        end
        local real = e - head - gone
        if real < n then credit = credit + (n - real) end
        -- The leavers stay in K_LEFT until the batch's window ends, so that their tickets are
        -- refused (410) rather than redeemed.
        redis.call('ZADD', K_BATCHES, head, head)
        redis.call('HSET', K_INFO, head, e .. ':' .. now .. ':' .. gone)
        pending = pending + real
        admitted = admitted + (e - head)
        n = e - head
        head = e
    end

    -- Admission rate, smoothed over ~10 s, for ETAs.
    if elapsed > 0 then
        local alpha = 1 - math.exp(-elapsed / 10000)
        ema = ema + alpha * ((n - gone) * 1000 / elapsed - ema)
    end
    budget_set(tokens)
    redis.call('HSET', K_CTL, 'head', head, 'last', now,
               'pending', pending, 'credit', credit, 'ema', tostring(ema),
               'expired', expired, 'admitted', admitted)
    return {1, head, tail, nactive, pending, math.floor(ema * 1000), now, P,
            num(redis.call('GET', K_PRE)), redeemed, expired, admitted, seed}

elseif op == 'join' then
    -- ARGV[11] n joins; ARGV[12] '1' to try the fast path; ARGV[13..] n session ids.
    -- Returns {'pre', first number, seed} | {'closed'} | {'open', k admitted at once, first place,
    -- P, expiry ms of those sessions}. The fast path admits at most what capacity and the
    -- admission budget allow; the others get the next places and wait for the controller.
    local n = tonumber(ARGV[11])
    local opened, P = open_if_due()
    if not opened then
        if prequeue_from > 0 and now >= prequeue_from then
            return {'pre', redis.call('INCRBY', K_PRE, n) - n, redis.call('HGET', K_CTL, 'seed')}
        end
        return {'closed'}
    end
    local k = 0
    local first
    local exp = now + ttl
    if ARGV[12] == '1' and not paused then
        local head = num(redis.call('HGET', K_CTL, 'head'))
        local tail = P + num(redis.call('GET', K_TAIL))
        if tail == head then
            local free = max_active - active_count() - num(redis.call('HGET', K_CTL, 'pending'))
            local tokens = free > 0 and budget() or 0
            k = math.min(n, free, math.floor(tokens))
            if k > 0 then
                budget_set(tokens - k)
                first = tail
                redis.call('INCRBY', K_TAIL, k)
                redis.call('HSET', K_CTL, 'head', head + k)
                redis.call('HINCRBY', K_CTL, 'admitted', k)
                redis.call('HINCRBY', K_CTL, 'redeemed', k)
                for i = 1, k do
                    redis.call('ZADD', K_ACTIVE, exp, ARGV[12 + i])
                end
            else
                k = 0
            end
        end
    end
    if k < n then
        local last = redis.call('INCRBY', K_TAIL, n - k)
        if not first then first = P + last - (n - k) end
    end
    return {'open', k, first, P, exp}

elseif op == 'redeem' then
    -- ARGV[11] place, ARGV[12] a new session id. Returns {'same', record} | {'new', record} |
    -- {'waiting'} | {'expired'}; record is "sid:expiry_ms" (or "left", also once the session
    -- it gave has left).
    local place = tonumber(ARGV[11])
    local rec = redis.call('GET', K_OP)
    if rec then
        local sid = string.match(rec, '^(%x+):')
        if sid and ended(sid) then return {'same', 'left'} end
        return {'same', rec}
    end
    local head = num(redis.call('HGET', K_CTL, 'head'))
    if place >= head then return {'waiting'} end
    if redis.call('ZSCORE', K_LEFT, place) then return {'same', 'left'} end
    local first, e, at, done = batch_of(place)
    if not first then return {'expired'} end
    batch_done(first, e, at, done)
    redis.call('HINCRBY', K_CTL, 'redeemed', 1)
    local exp = new_session(ARGV[12])
    rec = ARGV[12] .. ':' .. exp
    redis.call('SET', K_OP, rec, 'PX', ttl + window)
    return {'new', rec}

elseif op == 'leave' then
    -- ARGV[11] 'session' | 'place'; ARGV[12] the session id or the place; ARGV[13] the
    -- session's expiry (ms, from its token). Returns {'ok'}. A session ended here is refused
    -- by every gateway's gate from the next request on (K_ENDED).
    if ARGV[11] == 'session' then
        end_session(ARGV[12], tonumber(ARGV[13]))
        return {'ok'}
    end
    local place = tonumber(ARGV[12])
    local head = num(redis.call('HGET', K_CTL, 'head'))
    if place >= head then
        redis.call('ZADD', K_LEFT, place, place)
        return {'ok'}
    end
    if redis.call('ZSCORE', K_LEFT, place) then return {'ok'} end -- left while waiting
    local rec = redis.call('GET', K_OP)
    if rec then
        if rec == 'left' then return {'ok'} end
        local sid, exp = string.match(rec, '^(%x+):(%d+)$')
        if sid then end_session(sid, tonumber(exp)) end
    else
        local first, e, at, done = batch_of(place)
        if first then batch_done(first, e, at, done) end
    end
    redis.call('SET', K_OP, 'left', 'PX', ttl + window)
    return {'ok'}

elseif op == 'bind' then
    -- One applicant, one place per room. ARGV[11] the bucket field (part of the identifier's
    -- HMAC); ARGV[12] a session id for the fast path. Returns {'bound', value} or what 'join'
    -- returns; the value stored is the place, 'p' .. number for a pre-queue ticket, or
    -- 's' .. sid .. ':' .. expiry for an applicant admitted at once (expiry 0 in the answer
    -- once that session has left).
    local v = redis.call('HGET', K_OP, ARGV[11])
    if v then
        local sid = string.match(v, '^s(%x+):')
        if sid and ended(sid) then return {'bound', 's' .. sid .. ':0'} end
        return {'bound', v}
    end
    local opened, P = open_if_due()
    if not opened then
        if prequeue_from > 0 and now >= prequeue_from then
            local i = redis.call('INCR', K_PRE) - 1
            redis.call('HSET', K_OP, ARGV[11], 'p' .. i)
            return {'pre', i, redis.call('HGET', K_CTL, 'seed')}
        end
        return {'closed'}
    end
    local head = num(redis.call('HGET', K_CTL, 'head'))
    local tail = P + num(redis.call('GET', K_TAIL))
    local exp = now + ttl
    if tail == head and not paused then
        local free = max_active - active_count() - num(redis.call('HGET', K_CTL, 'pending'))
        local tokens = free > 0 and budget() or 0
        if tokens >= 1 then
            budget_set(tokens - 1)
            redis.call('INCR', K_TAIL)
            redis.call('HSET', K_CTL, 'head', head + 1)
            redis.call('HINCRBY', K_CTL, 'admitted', 1)
            redis.call('HINCRBY', K_CTL, 'redeemed', 1)
            redis.call('ZADD', K_ACTIVE, exp, ARGV[12])
            -- Admitted at once: a join from another device gets this same session back.
            redis.call('HSET', K_OP, ARGV[11], 's' .. ARGV[12] .. ':' .. exp)
            return {'open', 1, tail, P, exp}
        end
    end
    local place = P + redis.call('INCR', K_TAIL) - 1
    redis.call('HSET', K_OP, ARGV[11], place)
    return {'open', 0, place, P, exp}
end
return redis.error_reply('room.lua: unknown op ' .. tostring(op))
