// A second, independent SCIM 2.0 service provider for scimsync's tests: scimmy's resource and
// message handling behind scimmy-routers on express 4, with in-memory Users and Groups.
//
//   node server.js --token TOKEN [--port 0] [--caseless-usernames]
//
// Prints `LISTENING <port>` on stdout once it accepts connections. The token may also come from
// $SCIMMY_TOKEN; requests without `Authorization: Bearer <token>` get 401.
//
// What the glue below decides (scimmy leaves storage to the application):
// - userName must be unique: a create or update that would duplicate one answers 409
//   `uniqueness`. The comparison is case-sensitive, like scimmy's own `eq` filter, unless
//   --caseless-usernames is given (then "Alice" and "alice" collide, while a lookup with
//   `userName eq "alice"` still does not find "Alice").
// - Filters are matched with scimmy's built-in SCIMMY.Types.Filter#match, unchanged: `eq` is
//   case-sensitive and filters on extension attributes (urn:...:User:attr) match nothing.
// - Deleting a user removes it from every group's members.
// - meta.version is W/"<n>" from a global counter; no ETag headers, no If-Match.
import crypto from "node:crypto";
import {parseArgs} from "node:util";
import express from "express";
import SCIMMY from "scimmy";
import SCIMMYRouters from "scimmy-routers";

const {values: args} = parseArgs({
    options: {
        port: {type: "string", default: "0"},
        token: {type: "string", default: process.env.SCIMMY_TOKEN ?? ""},
        "caseless-usernames": {type: "boolean", default: false},
    },
});
if (!args.token) {
    console.error("server.js: a bearer token is required: --token TOKEN or $SCIMMY_TOKEN");
    process.exit(2);
}

const NINJAONE = "urn:ietf:params:scim:schemas:extension:ninjaone:2.0:User";
const ninjaone = new SCIMMY.Types.SchemaDefinition("NinjaOneUser", NINJAONE, "NinjaOne user attributes", [
    new SCIMMY.Types.Attribute("string", "userType", {description: "technician or endUser"}),
    new SCIMMY.Types.Attribute("string", "organizationId", {description: "an organization id, or All"}),
]);

let version = 0;
const stores = {User: new Map(), Group: new Map()};
const notFound = (id) => new SCIMMY.Types.Error(404, null, `Resource ${id} not found`);
const plain = (instance) => JSON.parse(JSON.stringify(instance));
const sameName = args["caseless-usernames"]
    ? (a, b) => a.toLowerCase() === b.toLowerCase()
    : (a, b) => a === b;

// Stores a create (no resource.id) or a replacement (PUT, or the result of a PATCH).
function save(kind, resource, instance, check = () => {}) {
    const store = stores[kind];
    const old = resource.id ? store.get(resource.id) : undefined;
    if (resource.id && !old) throw notFound(resource.id);
    const data = plain(instance);
    check(data, resource.id);
    const now = new Date().toISOString();
    const id = resource.id ?? crypto.randomUUID();
    const meta = {created: old?.meta.created ?? now, lastModified: now, version: `W/"${++version}"`};
    const stored = {...data, id, meta};
    store.set(id, stored);
    return stored;
}

function list(kind, resource) {
    if (resource.id) {
        const found = stores[kind].get(resource.id);
        if (!found) throw notFound(resource.id);
        return found;
    }
    const all = [...stores[kind].values()];
    return resource.filter ? resource.filter.match(all) : all;
}

function remove(kind, resource) {
    if (!stores[kind].delete(resource.id)) throw notFound(resource.id);
    if (kind === "User") {
        for (const group of stores.Group.values()) {
            if (group.members) group.members = group.members.filter((m) => m.value !== resource.id);
        }
    }
}

function uniqueUserName(data, id) {
    for (const user of stores.User.values()) {
        if (user.id !== id && sameName(user.userName, data.userName)) {
            throw new SCIMMY.Types.Error(409, "uniqueness", `userName ${data.userName} is already taken`);
        }
    }
}

SCIMMY.Resources.declare(SCIMMY.Resources.User.extend(ninjaone, false), {
    ingress: (resource, instance) => save("User", resource, instance, uniqueUserName),
    egress: (resource) => list("User", resource),
    degress: (resource) => remove("User", resource),
});
SCIMMY.Resources.declare(SCIMMY.Resources.Group, {
    ingress: (resource, instance) => save("Group", resource, instance),
    egress: (resource) => list("Group", resource),
    degress: (resource) => remove("Group", resource),
});

const app = express();
app.disable("x-powered-by");
// express would add an ETag of its own (a body hash, unrelated to meta.version) and answer 304 to
// If-None-Match: a SCIM client should see neither.
app.set("etag", false);
app.use("/scim/v2", new SCIMMYRouters({
    type: "bearer",
    handler: (req) => {
        const given = Buffer.from(req.header("Authorization") ?? "");
        const want = Buffer.from(`Bearer ${args.token}`);
        const ok = given.length === want.length && crypto.timingSafeEqual(given, want);
        if (!ok) throw new Error("Missing or invalid bearer token");
        return "scimsync-tests";
    },
    // Absolute meta.location URLs, built from the Host the client used (a proxy in front keeps
    // it).
    baseUri: (req) => `http://${req.get("host")}`,
}));

const server = app.listen(Number(args.port), "127.0.0.1", () => {
    process.stdout.write(`LISTENING ${server.address().port}\n`);
});
server.keepAliveTimeout = 60_000;
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => process.exit(0));
