-- wrk script for benches/run.sh: POST /Users with a new userName each time, to measure the
-- target server's own create rate (TOKEN from the environment).
local token = os.getenv("TOKEN") or ""
local threads = 0

function setup(thread)
    threads = threads + 1
    thread:set("id", threads)
end

local counter = 0
function request()
    counter = counter + 1
    local body = string.format(
        '{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"wrk-%d-%d-%d@bench.example","active":true}',
        id, counter, os.time())
    return wrk.format("POST", nil, {
        ["Content-Type"] = "application/scim+json",
        ["Authorization"] = "Bearer " .. token,
    }, body)
end
