-- queue.lua: the worker's queue steps (worker/queue.c), each one atomic.
--
-- KEYS are always: 1 the queue's stream, 2 its delayed-retry set (zset: entry id -> due ms),
-- then per operation. ARGV[1] is the operation, ARGV[2] the consumer group.
--
-- A retry is never a copy: the failed entry stays pending in the stream (so a crash loses
-- nothing) and its id goes into the delayed set with its due time. Entries in the delayed set
-- are skipped by reaping; when due, 'fetch' removes the id from the set and XCLAIMs the entry to
-- the calling consumer in the same script, which counts one more delivery.
--
-- 'fetch'  KEYS: 3 rate key. ARGV: 3 consumer, 4 now ms, 5 most entries to take, 6 rate
--          (jobs/s, 0: unlimited), 7 own-pending cursor ('' once read through), 8 idle ms past
--          which another consumer's entries are reclaimed (0: no reaping now).
--          Takes, in this order and up to the GCRA allowance: due retries; this consumer's own
--          pending entries after the cursor (XREADGROUP id); other consumers' entries idle past
--          ARGV[8] that are not waiting for a retry (XPENDING IDLE + XCLAIM with that min-idle,
--          counting a delivery; XAUTOCLAIM would also take the retries); new entries
--          (XREADGROUP '>'). Only entries taken spend rate.
--          When reaping, also removes (XGROUP DELCONSUMER) other consumers with nothing pending
--          that have been silent for three times ARGV[8]: those of dead worker processes.
--          Returns {wait_ms, {{id, deliveries, {field, value, ...}}, ...}, cursor, removed}:
--          wait_ms > 0 when the rate allowed nothing (try again after it); cursor '' when own
--          pending entries are all read; removed the names of consumers removed (absent when
--          the rate allowed nothing).
-- 'ack'    ARGV: 3 id. XACK + XDEL (and forget a retry). Returns the XACK count.
-- 'retry'  ARGV: 3 id, 4 due ms. Puts a still-pending entry in the delayed set. 1, or 0 when it
--          is no longer pending (someone else finished it).
-- 'dead'   KEYS: 3 dead-letter stream. ARGV: 3 id, 4.. the dead letter's field/value pairs.
--          XADD to the dead-letter stream, XACK, XDEL: only while the entry is still pending,
--          so a dead letter is written once. 1, or 0.
-- 'stats'  ARGV: 3 now ms. {lag, pending, oldest pending age ms, delayed}; -1 when unknown.

local op, stream, delayed, group = ARGV[1], KEYS[1], KEYS[2], ARGV[2]

local function deliveries(id)
    local p = redis.call('XPENDING', stream, group, id, id, 1)
    if #p == 0 then return nil end
    return p[1][4]
end

-- Append the entries ES (as XREADGROUP/XCLAIM give them) to OUT with their delivery counts.
-- An entry deleted meanwhile comes back without fields: it is acknowledged and skipped.
local function take(out, es, skip_delayed)
    local last = nil
    for _, e in ipairs(es) do
        last = e[1]
        if not e[2] then
            redis.call('XACK', stream, group, e[1])
        elseif not (skip_delayed and redis.call('ZSCORE', delayed, e[1])) then
            local n = deliveries(e[1])
            if n then out[#out + 1] = {e[1], n, e[2]} end
        end
    end
    return last
end

if op == 'fetch' then
    local consumer, now, want = ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
    local rate, cursor, idle = tonumber(ARGV[6]), ARGV[7], tonumber(ARGV[8])
    local tat, t = now, 0
    if rate > 0 then
        -- GCRA: one job per T ms, with a burst of 1 + rate/20 (50 ms worth) so that a poll
        -- may start a few at once.
        t = 1000 / rate
        local tau = t * math.floor(rate / 20)
        tat = math.max(tonumber(redis.call('GET', KEYS[3]) or '0'), now)
        local allowed = math.floor((now + tau - tat) / t) + 1
        if allowed < want then want = allowed end
        if want <= 0 then return {math.max(1, math.ceil(tat - tau - now)), {}, cursor} end
    end
    local out = {}
    local due = redis.call('ZRANGEBYSCORE', delayed, '-inf', now, 'LIMIT', 0, want)
    for _, id in ipairs(due) do
        redis.call('ZREM', delayed, id)
        take(out, redis.call('XCLAIM', stream, group, consumer, 0, id), false)
    end
    if cursor ~= '' and #out < want then
        local n = want - #out
        local r = redis.call('XREADGROUP', 'GROUP', group, consumer, 'COUNT', n, 'STREAMS',
                             stream, cursor)
        local es = (r and r[1] and r[1][2]) or {}
        local last = take(out, es, true)
        if #es < n then cursor = '' else cursor = last end
    end
    if idle > 0 and #out < want then
        local p = redis.call('XPENDING', stream, group, 'IDLE', idle, '-', '+', 100)
        for _, e in ipairs(p) do
            if #out >= want then break end
            -- not ours (a slow job of this consumer is still in hand), not waiting to retry
            if e[2] ~= consumer and not redis.call('ZSCORE', delayed, e[1]) then
                take(out, redis.call('XCLAIM', stream, group, consumer, idle, e[1]), false)
            end
        end
    end
    local removed = {}
    if idle > 0 then
        -- Consumers of dead processes: nothing pending (their entries were reclaimed above or
        -- in an earlier round) and silent for three visibility timeouts. Removing a consumer
        -- with nothing pending loses nothing (its only state is its pending list); a live one
        -- that was merely quiet is created again by its next read.
        for _, c in ipairs(redis.call('XINFO', 'CONSUMERS', stream, group)) do
            local h = {}
            for i = 1, #c, 2 do h[c[i]] = c[i + 1] end
            if h['pending'] == 0 and h['idle'] > 3 * idle and h['name'] ~= consumer then
                redis.call('XGROUP', 'DELCONSUMER', stream, group, h['name'])
                removed[#removed + 1] = h['name']
            end
        end
    end
    if #out < want then
        local r = redis.call('XREADGROUP', 'GROUP', group, consumer, 'COUNT', want - #out,
                             'STREAMS', stream, '>')
        if r and r[1] then take(out, r[1][2], false) end
    end
    if rate > 0 and #out > 0 then
        tat = tat + t * #out
        redis.call('SET', KEYS[3], tostring(tat), 'PX', math.ceil(tat - now) + 1000)
    end
    return {0, out, cursor, removed}

elseif op == 'ack' then
    local n = redis.call('XACK', stream, group, ARGV[3])
    redis.call('XDEL', stream, ARGV[3])
    redis.call('ZREM', delayed, ARGV[3])
    return n

elseif op == 'retry' then
    if not deliveries(ARGV[3]) then return 0 end
    redis.call('ZADD', delayed, ARGV[4], ARGV[3])
    return 1

elseif op == 'dead' then
    local id = ARGV[3]
    if not deliveries(id) then return 0 end
    local fv = {}
    for i = 4, #ARGV do fv[#fv + 1] = ARGV[i] end
    redis.call('XADD', KEYS[3], '*', unpack(fv))
    redis.call('XACK', stream, group, id)
    redis.call('XDEL', stream, id)
    redis.call('ZREM', delayed, id)
    return 1

elseif op == 'stats' then
    local lag, pending, oldest = -1, -1, -1
    local ok, groups = pcall(redis.call, 'XINFO', 'GROUPS', stream)
    if ok then
        for _, g in ipairs(groups) do
            local h = {}
            for i = 1, #g, 2 do h[g[i]] = g[i + 1] end
            if h['name'] == group then
                pending = h['pending']
                if type(h['lag']) == 'number' then lag = h['lag'] end
            end
        end
        if pending > 0 then
            local s = redis.call('XPENDING', stream, group)
            local ms = tonumber(string.match(s[2], '^(%d+)'))
            if ms then oldest = math.max(0, tonumber(ARGV[3]) - ms) end
        elseif pending == 0 then
            oldest = 0
        end
    end
    return {lag, pending, oldest, redis.call('ZCARD', delayed)}
end
return redis.error_reply('queue.lua: unknown op ' .. tostring(op))
