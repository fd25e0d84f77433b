//! A SCIM 2.0 endpoint as the source, end to end: one scim2-server tenant is the source (users
//! with the enterprise and ninjaone extensions, nested groups), another the target; the real
//! `scimsync` binary mirrors one into the other, by index paging and by RFC 9865 cursors.

use crate::support;

use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use support::rt;
use support::scim_server::{Raw, ScimServer};
use support::site::Site;

const CORE: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const NINJA: &str = "urn:ietf:params:scim:schemas:extension:ninjaone:2.0:User";

const MAPPING: &str = r#"
[mapping.user]
title = { from = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department" }

[[mapping.roles]]
group = "helpdesk"
role = "Help Desk"
user_type = "technician"
"#;

fn user_name(i: usize) -> String {
    format!("person{i:03}@example.com")
}

fn department(i: usize) -> String {
    format!("Dept{}", i % 5)
}

/// `n` users in the source tenant, the first 20 technicians; returns their ids by number.
async fn populate_users(src: &Raw, n: usize) -> Vec<String> {
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let body = json!({
            "schemas": [CORE, ENTERPRISE, NINJA],
            "userName": user_name(i),
            "name": {"givenName": format!("Given{i}"), "familyName": format!("Family{i}")},
            "displayName": format!("Given{i} Family{i}"),
            "emails": [{"value": user_name(i), "type": "work", "primary": true}],
            "active": true,
            ENTERPRISE: {"department": department(i), "employeeNumber": format!("{i}")},
            NINJA: {
                "userType": if i < 20 { "technician" } else { "endUser" },
                "organizationId": if i % 3 == 0 { "All".to_owned() } else { format!("10{}", i % 3) },
            },
        });
        let (status, doc) = src.post("/Users", &body).await;
        assert_eq!(status, 201, "{doc}");
        ids.push(doc["id"].as_str().unwrap().to_owned());
    }
    ids
}

/// A group; `members` are `(id, "User" | "Group")`.
async fn populate_group(src: &Raw, name: &str, members: &[(&str, &str)]) -> String {
    let members: Vec<Value> = members.iter().map(|(id, t)| json!({"value": id, "type": t})).collect();
    let body = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "displayName": name,
        "members": members,
    });
    let (status, doc) = src.post("/Groups", &body).await;
    assert_eq!(status, 201, "{doc}");
    doc["id"].as_str().unwrap().to_owned()
}

async fn all(raw: &Raw, endpoint: &str, key: &str) -> BTreeMap<String, Value> {
    let (status, doc) = raw.get(&format!("/{endpoint}?count=1000")).await;
    assert_eq!(status, 200, "{doc}");
    assert!(doc["totalResults"].as_u64().unwrap() <= 1000, "more than one page");
    let items = doc["Resources"].as_array().cloned().unwrap_or_default();
    items.into_iter().map(|r| (r[key].as_str().unwrap().to_owned(), r)).collect()
}

/// The userNames of a target group's members.
fn member_names(group: &Value, users: &BTreeMap<String, Value>) -> BTreeSet<String> {
    let by_id: BTreeMap<&str, &str> =
        users.values().map(|u| (u["id"].as_str().unwrap(), u["userName"].as_str().unwrap())).collect();
    group["members"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| by_id[m["value"].as_str().unwrap()].to_owned())
        .collect()
}

fn names(range: std::ops::Range<usize>) -> BTreeSet<String> {
    range.map(user_name).collect()
}

/// A site whose target is a new tenant of `server` and whose source is `src_base`.
fn site(server: &ScimServer, src_base: &str, src_token: &str, extra_source: &str) -> Site {
    let site = Site::new(server, "", MAPPING);
    let token = site.write_secret("source.token", src_token);
    site.set_source(&format!("kind = \"scim\"\nurl = \"{src_base}\"\ntoken_file = {token}\n{extra_source}"));
    site
}

/// The log without terminal colours.
fn plain(log: &str) -> String {
    let mut out = String::with_capacity(log.len());
    let mut chars = log.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            chars.by_ref().find(|c| c.is_ascii_alphabetic());
        } else {
            out.push(c);
        }
    }
    out
}

fn summary(run: &support::site::Run) -> Value {
    serde_json::from_str::<Value>(&run.stdout).unwrap_or_else(|e| panic!("{e}: {run}"))["summary"].clone()
}

#[test]
fn a_scim_source_is_mirrored_into_the_target_and_deactivation_follows() {
    let server = ScimServer::shared();
    let (src_base, src_token) = server.tenant();
    let src = Raw::new(&src_base, &src_token);
    let ids = rt().block_on(async {
        let ids = populate_users(&src, 250).await;
        let helpdesk: Vec<(&str, &str)> = ids[0..10].iter().map(|id| (id.as_str(), "User")).collect();
        let helpdesk_id = populate_group(&src, "helpdesk", &helpdesk).await;
        let mut support: Vec<(&str, &str)> = ids[10..20].iter().map(|id| (id.as_str(), "User")).collect();
        support.push((&helpdesk_id, "Group"));
        populate_group(&src, "support", &support).await;
        let staff: Vec<(&str, &str)> = ids[100..150].iter().map(|id| (id.as_str(), "User")).collect();
        populate_group(&src, "staff", &staff).await;
        ids
    });
    let site = site(server, &src_base, &src_token, "page_size = 100");

    let check = site.scimsync(&["check"]);
    assert_eq!(check.code, Some(0), "{check}");
    assert!(check.stdout.contains("source: 253 records read, 250 users and 3 groups mapped"), "{check}");
    let plan = site.scimsync(&["plan", "--format", "json"]);
    let s = summary(&plan);
    assert_eq!((s["create_user"].as_u64(), s["create_group"].as_u64()), (Some(250), Some(3)), "{plan}");
    let run = site.sync_ok();
    assert!(plain(&run.stderr).contains("users=250 groups=3 paging=Index page_size=100"), "{run}");

    rt().block_on(async {
        let target = site.raw();
        let users = all(&target, "Users", "userName").await;
        assert_eq!(users.keys().cloned().collect::<BTreeSet<_>>(), names(0..250));
        for (i, id) in ids.iter().enumerate() {
            let u = &users[&user_name(i)];
            assert_eq!(u["name"]["givenName"], format!("Given{i}"), "{u}");
            assert_eq!(u["name"]["familyName"], format!("Family{i}"));
            assert_eq!(u["displayName"], format!("Given{i} Family{i}"));
            assert_eq!(u["emails"][0]["value"], user_name(i));
            assert_eq!(u["title"], department(i), "title mapped from the enterprise department");
            assert_eq!(u["externalId"], id.as_str(), "the source key is the source's id");
            assert_eq!(u[NINJA]["userType"], if i < 20 { "technician" } else { "endUser" });
            let org = if i % 3 == 0 { "All".to_owned() } else { format!("10{}", i % 3) };
            assert_eq!(u[NINJA]["organizationId"], org);
            assert_eq!(u["active"], true);
        }
        assert_eq!(users[&user_name(3)]["roles"][0]["value"], "Help Desk");
        let groups = all(&target, "Groups", "displayName").await;
        assert_eq!(groups.keys().map(String::as_str).collect::<Vec<_>>(), ["helpdesk", "staff", "support"]);
        assert_eq!(member_names(&groups["helpdesk"], &users), names(0..10));
        assert_eq!(member_names(&groups["support"], &users), names(0..20), "nested helpdesk is flattened");
        assert_eq!(member_names(&groups["staff"], &users), names(100..150));

        // Deactivated in the source.
        let patch = json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "active", "value": false}],
        });
        let (status, doc) = src.patch(&format!("/Users/{}", ids[42]), &patch).await;
        assert!(status == 200 || status == 204, "{status} {doc}");
    });
    site.sync_ok();
    rt().block_on(async {
        let users = all(&site.raw(), "Users", "userName").await;
        assert_eq!(users[&user_name(42)]["active"], false);
        assert_eq!(users.values().filter(|u| u["active"] == false).count(), 1);
    });
    let again = site.sync_ok();
    assert!(again.stdout.contains(": target confirmed 0 of 0 operations; 0 failed"), "{again}");
}

#[test]
fn cursor_paging_and_a_scoping_filter() {
    let spc = support::test_data("scim/service-provider-config-cursor.json");
    let server = ScimServer::start_with(&["--service-provider-config".as_ref(), spc.as_os_str()]);
    let (src_base, src_token) = server.tenant();
    let src = Raw::new(&src_base, &src_token);
    rt().block_on(async {
        let ids = populate_users(&src, 120).await;
        let every_third: Vec<(&str, &str)> = ids.iter().step_by(3).map(|id| (id.as_str(), "User")).collect();
        populate_group(&src, "every third", &every_third).await;
    });
    let filter = format!("filter = '{ENTERPRISE}:department eq \"Dept1\"'\npage_size = 10");
    let site = site(&server, &src_base, &src_token, &filter);
    let run = site.sync_ok();
    // 24 users in scope: two full pages of 10 by cursor, then a last one of 4.
    assert!(plain(&run.stderr).contains("users=24 groups=1 paging=Cursor page_size=10"), "{run}");

    let in_scope: BTreeSet<String> = (0..120).filter(|i| i % 5 == 1).map(user_name).collect();
    rt().block_on(async {
        let users = all(&site.raw(), "Users", "userName").await;
        assert_eq!(users.keys().cloned().collect::<BTreeSet<_>>(), in_scope);
        // Members outside the scope are not users, so not members either.
        let groups = all(&site.raw(), "Groups", "displayName").await;
        let want: BTreeSet<String> = (0..120).filter(|i| i % 3 == 0 && i % 5 == 1).map(user_name).collect();
        assert_eq!(member_names(&groups["every third"], &users), want);
    });
}

#[test]
fn a_refused_source_token_stops_the_run_and_says_where_to_renew_it() {
    let server = ScimServer::shared();
    let (src_base, src_token) = server.tenant();
    let src = Raw::new(&src_base, &src_token);
    rt().block_on(populate_users(&src, 3));
    let site = site(server, &src_base, "not-the-source-token", "");
    let run = site.scimsync(&["sync"]);
    assert_eq!(run.code, Some(1), "{run}");
    assert!(run.stderr.contains("refused the bearer token (401"), "{run}");
    assert!(run.stderr.contains("renew the source token and write it to source.token_file"), "{run}");
    assert!(run.stderr.contains("source.token"), "{run}");
    assert!(!run.stderr.contains("not-the-source-token") && !run.stdout.contains("not-the-source-token"));
    let status = site.scimsync(&["status", "--format", "json"]);
    let runs = serde_json::from_str::<Value>(&status.stdout).unwrap()["runs"].clone();
    assert_eq!(runs[0]["outcome"], "failed", "{status}");
    assert_eq!(rt().block_on(site.raw().count("Users", "userName pr")), 0);
}
