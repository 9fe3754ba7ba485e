-- wrk script for bench/waiting-room-vs-nginx: joins.
--   wrk ... -s join.lua http://HOST:PORT/ -- ROOM [LIMIT [TOKENS_FILE]]
-- Sends POST /v1/rooms/ROOM/join. Without TOKENS_FILE the request has no body and is the
-- same every time (wrk's static request: no Lua per request). With it, every request carries
-- {"applicant": "<token>"} with the next line of TOKENS_FILE (applicant tokens for distinct
-- subs, minted by the benchmark), so each one binds a new applicant; past the last line the
-- tokens repeat.
-- LIMIT > 0: the thread stops after that many answers (wrk -t1 only; wrk itself still waits for
-- -d unless it gets SIGINT, which the benchmark sends once Redis shows the places).

function init(args)
    local room = args[1]
    if not room then
        error("usage: wrk ... -s join.lua URL -- ROOM [LIMIT [TOKENS_FILE]]")
    end
    local limit = tonumber(args[2] or "0") or 0
    local tokens = args[3]
    local path = "/v1/rooms/" .. room .. "/join"
    wrk.method = "POST"
    wrk.path = path
    if tokens and tokens ~= "" then
        local f = assert(io.open(tokens, "r"))
        local hdr = {["Content-Type"] = "application/json"}
        request = function()
            local tok = f:read("*l")
            if not tok then
                f:seek("set", 0)
                tok = f:read("*l")
            end
            return wrk.format("POST", path, hdr, '{"applicant":"' .. tok .. '"}')
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
