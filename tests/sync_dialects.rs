//! Whole runs against scim2-server behind the fault proxy, in the ways real servers deviate and
//! no real server does on demand: 501 for some PATCH paths, a 200 that changed nothing, a
//! duplicate userName answered 500.

use crate::support;

use serde_json::{json, Value};
use support::fault_proxy::FaultProxy;
use support::rt;
use support::scim_server::{Raw, ScimServer};
use support::site::{group, person, Site};

fn week_one() -> String {
    let mut s = String::new();
    for (uid, sn, n) in [("ann", "Lee", 1), ("ben", "Ode", 2), ("cat", "Roy", 3), ("dan", "Ng", 4)] {
        s.push_str(&person(
            uid,
            "Given",
            sn,
            n,
            &[("title", "Engineer"), ("telephoneNumber", "+1 555 0100")],
        ));
    }
    s.push_str(&group("staff", 1, &["ann", "ben", "cat"]));
    s.push_str(&group("ops", 2, &["dan"]));
    s
}

/// ann: a new surname and title; ben leaves; cat is renamed (uid and mail); dan's phone
/// changes; dan joins staff, ann leaves it; ops is renamed.
fn week_two() -> String {
    let mut s =
        person("ann", "Given", "Changed", 1, &[("title", "Lead"), ("telephoneNumber", "+1 555 0100")]);
    s.push_str(&person(
        "cathy",
        "Given",
        "Roy",
        3,
        &[("title", "Engineer"), ("telephoneNumber", "+1 555 0100")],
    ));
    s.push_str(&person(
        "dan",
        "Given",
        "Ng",
        4,
        &[("title", "Engineer"), ("telephoneNumber", "+1 555 0199")],
    ));
    s.push_str(&group("staff", 1, &["cathy", "dan"]));
    s.push_str(&group("operations", 2, &["dan"]));
    s
}

async fn by(raw: &Raw, endpoint: &str, key: &str) -> std::collections::BTreeMap<String, Value> {
    let (_, doc) = raw.get(&format!("/{endpoint}?count=100")).await;
    let all = doc["Resources"].as_array().cloned().unwrap_or_default();
    all.into_iter().map(|r| (r[key].as_str().unwrap().to_owned(), r)).collect()
}

fn member_ids(group: &Value) -> Vec<String> {
    let mut ids: Vec<String> = group["members"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| m["value"].as_str().unwrap().into())
        .collect();
    ids.sort();
    ids
}

/// Week one, then week two, with `profile = "generic"` and no other setting: both runs must
/// succeed with nothing failed. Returns week two's run.
fn a_week(proxy: &FaultProxy, token: &str) -> support::site::Run {
    let site = Site::with_url(&proxy.base_url(), token, "profile = \"generic\"", "");
    site.write_source(&week_one());
    site.sync_ok();
    site.write_source(&week_two());
    let run = site.sync_ok();
    assert!(run.stdout.contains("; 0 failed"), "{run}");
    let plan = site.scimsync(&["plan", "--detailed-exitcode"]);
    assert_eq!(plan.code, Some(0), "converged:\n{plan}");
    run
}

#[test]
fn a_week_converges_with_the_generic_profile_where_patch_paths_answer_501() {
    let (base, token) = ScimServer::shared().tenant();
    let proxy = FaultProxy::start(
        &base,
        &[
            "--reject-patch",
            "^title$",
            "--reject-patch",
            "^displayName$",
            "--reject-patch",
            r"^emails\[",
            "--reject-patch",
            r"^phoneNumbers\[",
            "--reject-patch",
            "remove-members-filter",
        ],
    );
    let run = a_week(&proxy, &token);
    let warned = run.stderr.matches("target.dialect.update = ").count();
    assert_eq!(warned, 1, "one warning for the run, naming the setting:\n{run}");
    assert!(proxy.log().iter().any(|e| e["status"] == 501), "the proxy refused PATCH paths");

    let raw = Raw::new(&base, &token);
    rt().block_on(async {
        let users = by(&raw, "Users", "userName").await;
        let ann = &users["ann@example.com"];
        assert_eq!(
            (ann["name"]["familyName"].as_str(), ann["title"].as_str()),
            (Some("Changed"), Some("Lead"))
        );
        assert_eq!(users["ben@example.com"]["active"], json!(false));
        assert_eq!(users["cathy@example.com"]["emails"][0]["value"], "cathy@example.com");
        assert_eq!(users["dan@example.com"]["phoneNumbers"][0]["value"], "+1 555 0199");
        let id = |u: &str| users[&format!("{u}@example.com")]["id"].as_str().unwrap().to_owned();
        let groups = by(&raw, "Groups", "displayName").await;
        let mut staff = vec![id("cathy"), id("dan")];
        staff.sort();
        assert_eq!(member_ids(&groups["staff"]), staff, "removals went through: {groups:#?}");
        assert!(groups.contains_key("operations") && !groups.contains_key("ops"), "{groups:#?}");
    });
}

#[test]
fn a_write_answered_done_that_changed_nothing_fails_and_is_planned_again() {
    let (base, token) = ScimServer::shared().tenant();
    let proxy = FaultProxy::start(&base, &["--noop-writes-matching", "/Users/"]);
    let site = Site::with_url(&proxy.base_url(), &token, "profile = \"generic\"", "");
    site.write_source(&person("ann", "Given", "Lee", 1, &[("title", "Engineer")]));
    site.sync_ok();
    site.write_source(&person("ann", "Given", "Lee", 1, &[("title", "Lead")]));
    let run = site.scimsync(&["sync"]);
    assert_eq!(run.code, Some(1), "{run}");
    assert!(run.stdout.contains("1 failed (1 user update)"), "{run}");
    assert!(run.stderr.contains("did not take") && run.stderr.contains("title"), "{run}");
    let plan = site.scimsync(&["plan", "--detailed-exitcode"]);
    assert_eq!(plan.code, Some(2), "the snapshot did not advance: the update is planned again\n{plan}");
    assert!(plan.stdout.contains("Lead"), "{plan}");
}

/// A server that answers a duplicate userName with 500: the create is ambiguous, the lookup finds
/// an account without scimsync's externalId, and the adoption policy decides.
fn pre_existing(adoption: &str) -> (Site, Raw, String, FaultProxy) {
    let (base, token) = ScimServer::shared().tenant();
    let raw = Raw::new(&base, &token);
    let body = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "ann@example.com", "title": "Hand-made", "active": true});
    let (status, doc) = rt().block_on(raw.post("/Users", &body));
    assert_eq!(status, 201, "{doc}");
    let id = doc["id"].as_str().unwrap().to_owned();
    let proxy = FaultProxy::start(&base, &["--conflict-as-500"]);
    let extra = format!("profile = \"generic\"\nadoption = \"{adoption}\"");
    let site = Site::with_url(&proxy.base_url(), &token, &extra, "");
    site.write_source(&person("ann", "Given", "Lee", 1, &[("title", "Engineer")]));
    (site, raw, id, proxy)
}

#[test]
fn a_duplicate_answered_500_is_never_linked_without_consent() {
    let (site, raw, id, proxy) = pre_existing("never");
    let run = site.scimsync(&["sync"]);
    assert_eq!(run.code, Some(1), "{run}");
    assert!(run.stdout.contains("1 failed (1 user create)"), "{run}");
    assert!(run.stderr.contains("without the externalId"), "{run}");
    assert!(proxy.log().iter().any(|e| e["upstream_status"] == 409 && e["status"] == 500));
    let doc = rt().block_on(raw.resource(&format!("/Users/{id}")));
    assert_eq!(doc["title"], "Hand-made", "the account was not touched: {doc}");
    assert!(doc.get("externalId").is_none(), "{doc}");
    let status = site.scimsync(&["status", "--json"]);
    assert!(!status.stdout.contains(&id), "not linked in the snapshot:\n{status}");
}

#[test]
fn a_duplicate_answered_500_is_adopted_when_the_policy_allows() {
    let (site, raw, id, _proxy) = pre_existing("auto");
    let run = site.sync_ok();
    assert!(run.stdout.contains("1 user adopted") || run.stdout.contains("adopted"), "{run}");
    let doc = rt().block_on(raw.resource(&format!("/Users/{id}")));
    assert_eq!(doc["title"], "Engineer", "adopted with the adopt update: {doc}");
    assert_eq!(doc["externalId"], "00000000-0000-0000-0000-000000000001");
    let plan = site.scimsync(&["plan", "--detailed-exitcode"]);
    assert_eq!(plan.code, Some(0), "{plan}");
}

#[test]
fn a_target_that_declares_no_patch_is_updated_by_put_from_the_first_request() {
    let dir = tempfile::tempdir().unwrap();
    let spc = dir.path().join("spc.json");
    let doc = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
        "patch": {"supported": false}, "bulk": {"supported": false}, "filter": {"supported": true},
        "changePassword": {"supported": false}, "sort": {"supported": false}, "etag": {"supported": true},
    });
    std::fs::write(&spc, doc.to_string()).unwrap();
    let server = ScimServer::start_with(&["--service-provider-config".as_ref(), spc.as_os_str()]);
    let (base, token) = server.tenant();
    let proxy = FaultProxy::start(&base, &[]);
    let run = a_week(&proxy, &token);
    let methods: Vec<String> = proxy.log().iter().map(|e| e["method"].as_str().unwrap().to_owned()).collect();
    assert!(!methods.iter().any(|m| m == "PATCH"), "no PATCH is sent: {methods:?}");
    assert!(methods.iter().filter(|m| *m == "PUT").count() >= 5, "{methods:?}");
    assert!(!run.stderr.contains("refused a PATCH"), "read, not guessed: {run}");
    let raw = Raw::new(&base, &token);
    rt().block_on(async {
        let users = by(&raw, "Users", "userName").await;
        assert_eq!(users["ann@example.com"]["title"], "Lead");
        assert_eq!(users["ben@example.com"]["active"], json!(false));
        let groups = by(&raw, "Groups", "displayName").await;
        assert_eq!(member_ids(&groups["staff"]).len(), 2, "{groups:#?}");
    });
}

#[test]
fn a_strict_schema_is_read_and_followed_without_settings() {
    // scim2-server serving a User schema that requires name.formatted and has no type in emails:
    // it refuses a create without the one and with the other.
    let data = support::repo_root().join("tests/data/scim/schemas.json");
    let mut schemas: Value = serde_json::from_str(&std::fs::read_to_string(data).unwrap()).unwrap();
    let user = schemas
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|s| s["id"] == "urn:ietf:params:scim:schemas:core:2.0:User")
        .expect("the User schema");
    for attr in user["attributes"].as_array_mut().unwrap() {
        match attr["name"].as_str() {
            Some("name") => {
                let formatted = attr["subAttributes"]
                    .as_array_mut()
                    .unwrap()
                    .iter_mut()
                    .find(|s| s["name"] == "formatted");
                formatted.unwrap()["required"] = json!(true);
            }
            Some("emails") => attr["subAttributes"].as_array_mut().unwrap().retain(|s| s["name"] != "type"),
            _ => {}
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("schemas.json");
    std::fs::write(&file, schemas.to_string()).unwrap();
    let server = ScimServer::start_with(&["--schema".as_ref(), file.as_os_str()]);
    let (base, token) = server.tenant();
    let site = Site::with_url(&base, &token, "profile = \"generic\"", "");
    site.write_source(&person("ann", "Ann", "Lee", 1, &[]));
    let run = site.sync_ok();
    assert!(run.stdout.contains("1 user created"), "{run}");
    let users = rt().block_on(by(&Raw::new(&base, &token), "Users", "userName"));
    let ann = &users["ann@example.com"];
    assert_eq!(ann["name"]["formatted"], "Ann Lee", "{ann}");
    assert_eq!(ann["emails"], json!([{"value": "ann@example.com"}]), "{ann}");

    // The server is strict indeed, and a choice written in the config stays.
    let (base, token) = server.tenant();
    let chosen = "profile = \"generic\"\n[target.dialect]\nname_formatted = false";
    let site = Site::with_url(&base, &token, chosen, "");
    site.write_source(&person("ann", "Ann", "Lee", 1, &[]));
    let run = site.scimsync(&["sync"]);
    assert_eq!(run.code, Some(1), "{run}");
    assert!(run.stdout.contains("1 failed (1 user create)"), "{run}");
}
