-- wrk script for bench/upload-vs-nginx: 1 MiB single-shot uploads.
--   wrk ... -s upload.lua http://HOST:PORT/ -- SESSION PATHS_FILE
-- Sends PUT with a 1 MiB body (the JPEG signature FF D8 FF E0, then filler) and
-- "Content-Type: image/jpeg"; with SESSION (not "") also "Authorization: Bearer SESSION". Each
-- request goes to the next path of PATHS_FILE (one per line, in turn): a document of its own, so
-- that no upload supersedes another. Both servers get the same requests built the same way, so
-- the script costs wrk the same against nginx and the gateway.

local paths, n, i = {}, 0, 0

function init(args)
    local size = 1048576
    wrk.method = "PUT"
    wrk.body = "\255\216\255\224" .. string.rep("u", size - 4)
    wrk.headers["Content-Type"] = "image/jpeg"
    if args[1] and args[1] ~= "" then
        wrk.headers["Authorization"] = "Bearer " .. args[1]
    end
    for line in io.lines(args[2]) do
        n = n + 1
        paths[n] = line
    end
    if n == 0 then error("upload.lua: no paths in " .. args[2]) end
end

function request()
    i = i % n + 1
    return wrk.format(nil, paths[i])
end
