-- verify_send.lua: the verify queue's effects on a verification record and its registration
-- (worker/verify.c), atomic. KEYS: 1 the verification record, 2 the registration record, 3 the
-- channel's drain-rate key (claim only). The contact C is `email` for the email channel and
-- `phone` for sms; the registration's C_verification names the current verification.
--
-- 'claim'  ARGV: 2 vid, 3 now ms, 4 the new code's MAC (hex), 5 the channel's rate per second
--          (0: unlimited). Sends nothing when the record is gone, not `queued`, expired
--          (expires_ms <= now) or (purpose verify) no longer the registration's current one:
--          {'drop', why}.
--          Else takes one slot of the channel's rate (GCRA shared by every worker, a burst of
--          1 + rate/20): none free gives {'wait', ms} and changes nothing. Else stores code_mac
--          (a retry overwrites the MAC of a code that was never delivered), counts send_tries
--          and returns {'send', destination, lang, expires_ms}.
-- 'sent'   ARGV: 2 vid, 3 now ms, 4 the provider's message id ('' when none). state = sent,
--          sent_ms, provider_id; the registration's C_state = code_sent, C_sent_ms, C_error
--          removed while the vid is current. {'sent'}, or {'already'} / {'missing'}.
-- 'failed' ARGV: 2 vid, 3 now ms, 4 the reason in plain words, 5 a short code (smtp_550,
--          http_400, ...). state = send_failed, send_error, send_error_code, code_mac removed;
--          C_state = send_failed and C_error while the vid is current. {'failed'}, {'already'}
--          or {'missing'}.

local op, vid, now = ARGV[1], ARGV[2], tonumber(ARGV[3])
if redis.call('EXISTS', KEYS[1]) == 0 then
    if op == 'claim' then return {'drop', 'gone'} end
    return {'missing'}
end
local h = redis.call('HMGET', KEYS[1], 'state', 'expires_ms', 'channel', 'destination', 'lang',
                    'purpose')
local state, expires, channel = h[1], tonumber(h[2] or '0') or 0, h[3]
local contact = (channel == 'sms') and 'phone' or 'email'
local current = redis.call('HGET', KEYS[2], contact .. '_verification') == vid

if op == 'claim' then
    if state ~= 'queued' then return {'drop', 'state ' .. tostring(state)} end
    if expires <= now then return {'drop', 'expired'} end
    -- a recovery code goes to the contact on file whatever the registration's own verification
    -- is; replacing one burns it (the state check above)
    if not current and h[6] ~= 'recover' then return {'drop', 'replaced'} end
    local rate = tonumber(ARGV[5])
    if rate > 0 then
        local t = 1000 / rate
        local tau = t * math.floor(rate / 20)
        local tat = math.max(tonumber(redis.call('GET', KEYS[3]) or '0'), now)
        if tat - tau > now then return {'wait', tostring(math.ceil(tat - tau - now))} end
        tat = tat + t
        redis.call('SET', KEYS[3], tostring(tat), 'PX', math.ceil(tat - now) + 1000)
    end
    redis.call('HSET', KEYS[1], 'code_mac', ARGV[4])
    redis.call('HINCRBY', KEYS[1], 'send_tries', 1)
    return {'send', h[4] or '', h[5] or 'id', tostring(expires)}
elseif op == 'sent' then
    if state ~= 'queued' then return {'already'} end
    redis.call('HSET', KEYS[1], 'state', 'sent', 'sent_ms', ARGV[3], 'provider_id', ARGV[4])
    if current then
        redis.call('HSET', KEYS[2], contact .. '_state', 'code_sent', contact .. '_sent_ms',
                   ARGV[3])
        redis.call('HDEL', KEYS[2], contact .. '_error')
    end
    return {'sent'}
elseif op == 'failed' then
    if state ~= 'queued' then return {'already'} end
    redis.call('HSET', KEYS[1], 'state', 'send_failed', 'send_error', ARGV[4],
               'send_error_code', ARGV[5])
    redis.call('HDEL', KEYS[1], 'code_mac')
    if current then
        redis.call('HSET', KEYS[2], contact .. '_state', 'send_failed', contact .. '_error',
                   ARGV[4])
    end
    return {'failed'}
end
return redis.error_reply('verify_send.lua: unknown op ' .. tostring(op))
