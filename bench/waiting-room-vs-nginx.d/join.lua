-- wrk script for bench/waiting-room-vs-nginx: joins.
--   wrk ... -s join.lua http://HOST:PORT/ -- ROOM [LIMIT [APPLICANT_PREFIX]]
-- Sends POST /v1/rooms/ROOM/join. Without APPLICANT_PREFIX the request has no body and is the
-- same every time (wrk's static request: no Lua per request). With it, every request carries
-- {"applicant": "<prefix>-<n>"} with n counting from 1, so each one binds a new applicant.
-- LIMIT > 0: the thread stops after that many answers (wrk -t1 only; wrk itself still waits for
-- -d unless it gets SIGINT, which the benchmark sends once Redis shows the places).

function init(args)
    local room = args[1]
    if not room then
        error("usage: wrk ... -s join.lua URL -- ROOM [LIMIT [APPLICANT_PREFIX]]")
    end
    local limit = tonumber(args[2] or "0") or 0
    local prefix = args[3]
    local path = "/v1/rooms/" .. room .. "/join"
    wrk.method = "POST"
    wrk.path = path
    if prefix and prefix ~= "" then
        local k = 0
        local hdr = {["Content-Type"] = "application/json"}
        request = function()
            k = k + 1
            return wrk.format("POST", path, hdr,
                              '{"applicant":"' .. prefix .. "-" .. k .. '"}')
        end
    end
    if limit > 0 then
        local seen = 0
        response = function(status, headers, body)
            seen = seen + 1
            if seen >= limit then
                wrk.thread:stop()
            end
        end
    end
end
