-- upload.lua: the upload queue's verdict on a photo (worker/upload.c), recorded atomically.
--
-- 'record' KEYS: 1 upload record, 2 registration record. ARGV: 2 upload id, 3 kind
--          (ktp|selfie), 4.. field/value pairs of the verdict (state, reason, hint_id,
--          hint_en, sha256, width, height, bytes_stored, quality, processed_at).
--          Writes the verdict into the upload record only while that record is still
--          'processing' and is still the registration's current document of that kind: a
--          redelivered job (already final) or a superseded upload (the applicant sent another
--          one since) changes nothing. Returns {'recorded'}, {'final'} (already decided),
--          {'superseded'}, or {'missing'} when there is no such upload record.

local op = ARGV[1]
if op == 'record' then
    local state = redis.call('HGET', KEYS[1], 'state')
    if not state then return {'missing'} end
    if state ~= 'processing' then return {'final'} end
    if redis.call('HGET', KEYS[2], ARGV[3] .. '_upload') ~= ARGV[2] then return {'superseded'} end
    local fields = {}
    for i = 4, #ARGV do fields[#fields + 1] = ARGV[i] end
    redis.call('HSET', KEYS[1], unpack(fields))
    return {'recorded'}
end
return redis.error_reply('upload.lua: unknown op ' .. tostring(op))
