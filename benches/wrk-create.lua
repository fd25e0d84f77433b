-- wrk script for benches/run.sh: POST /Users with a new userName each time, a body of the same
-- shape as scimsync's creates under the ninjaone profile (name, emails, title, externalId, the
-- ninjaone extension), to measure the target server's own create rate. TOKEN from the environment.
local token = os.getenv("TOKEN") or ""
local threads = 0

function setup(thread)
    threads = threads + 1
    thread:set("id", threads)
end

local counter = 0
function request()
    counter = counter + 1
    local user = string.format("wrk-%d-%d-%d@bench.example", id, counter, os.time())
    local body = string.format([[{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User","urn:ietf:params:scim:schemas:extension:ninjaone:2.0:User"],"userName":"%s","name":{"givenName":"Wrk","familyName":"Bench"},"displayName":"Wrk Bench","title":"Engineer","emails":[{"value":"%s","type":"work","primary":true}],"externalId":"%s","active":true,"urn:ietf:params:scim:schemas:extension:ninjaone:2.0:User":{"userType":"endUser","organizationId":"101"}}]], user, user, user)
    return wrk.format("POST", nil, {
        ["Content-Type"] = "application/scim+json",
        ["Authorization"] = "Bearer " .. token,
    }, body)
end
