-- wrk script for bench/waiting-room-vs-nginx: status polls.
--   wrk ... -s poll.lua http://HOST:PORT/ -- ROOM TICKET_FILE
-- Sends GET /v1/rooms/ROOM/status with "Authorization: Bearer <ticket>", cycling through the
-- tickets of TICKET_FILE (one a line). Every request is built once in init(); request() only
-- picks the next one, so the script costs wrk the same against nginx and against the gateway.

local reqs, n, i = {}, 0, 0

function init(args)
    local room, file = args[1], args[2]
    if not room or not file then
        error("usage: wrk ... -s poll.lua URL -- ROOM TICKET_FILE")
    end
    local path = "/v1/rooms/" .. room .. "/status"
    for line in io.lines(file) do
        if #line > 0 then
            n = n + 1
            reqs[n] = wrk.format("GET", path, {["Authorization"] = "Bearer " .. line})
        end
    end
    if n == 0 then
        error("no tickets in " .. file)
    end
end

function request()
    i = i % n + 1
    return reqs[i]
end
