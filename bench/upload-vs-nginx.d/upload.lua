-- wrk script for bench/upload-vs-nginx: 1 MiB single-shot uploads.
--   wrk ... -s upload.lua http://HOST:PORT/PATH -- [SESSION]
-- Sends PUT PATH with a 1 MiB body (the JPEG signature FF D8 FF E0, then filler) and
-- "Content-Type: image/jpeg"; with SESSION also "Authorization: Bearer SESSION". The request is
-- static (wrk builds it once), so the script costs wrk the same against nginx and the gateway.

function init(args)
    local size = 1048576
    wrk.method = "PUT"
    wrk.body = "\255\216\255\224" .. string.rep("u", size - 4)
    wrk.headers["Content-Type"] = "image/jpeg"
    if args[1] and args[1] ~= "" then
        wrk.headers["Authorization"] = "Bearer " .. args[1]
    end
end
