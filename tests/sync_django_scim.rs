//! `scimsync sync` against a third, independent SCIM implementation that supports only part of
//! RFC 7644: django-scim2 (`support::django_scim`). The first sync creates users and groups and
//! adds the members; a second sync over the same source sends nothing that writes. A fault
//! proxy with no faults sits in front only to record which requests were made.

use crate::support;

use serde_json::Value;
use std::collections::BTreeMap;
use support::django_scim::DjangoScim;
use support::fault_proxy::FaultProxy;
use support::site::{group, person, Site};

fn source() -> String {
    let mut s = String::new();
    for (uid, given, sn, n) in [
        ("ann", "Ann", "Lee", 1),
        ("ben", "Ben", "Ode", 2),
        ("cat", "Cat", "Roy", 3),
        ("dan", "Dan", "Ng", 4),
    ] {
        s.push_str(&person(uid, given, sn, n, &[("title", "Engineer")]));
    }
    s.push_str(&group("staff", 1, &["ann", "ben", "cat"]));
    s.push_str(&group("ops", 2, &["dan"]));
    s.push_str(&group("empty", 3, &[]));
    s
}

/// Every resource of `endpoint` (`/Users`, `/Groups`), by `key`.
async fn listed(server: &DjangoScim, endpoint: &str, key: &str) -> BTreeMap<String, Value> {
    let (status, doc) = server.raw().get(&format!("{endpoint}?count=1000")).await;
    assert_eq!(status, 200, "{doc}");
    doc["Resources"]
        .as_array()
        .expect("a list response")
        .iter()
        .map(|r| (r[key].as_str().unwrap().to_owned(), r.clone()))
        .collect()
}

fn member_ids(group: &Value) -> Vec<String> {
    let mut ids: Vec<String> = group["members"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| m["value"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

/// The requests the proxy forwarded since entry `from`, as `METHOD path`, writes only.
fn writes(proxy: &FaultProxy, from: usize) -> Vec<String> {
    proxy.log()[from..]
        .iter()
        .filter(|e| e["method"] != "GET")
        .map(|e| format!("{} {}", e["method"].as_str().unwrap(), e["path"].as_str().unwrap()))
        .collect()
}

#[test]
fn first_sync_then_a_no_op_resync_against_django_scim2() {
    let server = DjangoScim::start();
    let proxy = FaultProxy::start(&server.origin(), &[]);
    let site = Site::with_url(&proxy.url("/scim/v2"), &server.token, "profile = \"generic\"", "");
    site.write_source(&source());

    let run = site.sync_ok();
    assert!(run.stdout.contains(" 0 failed"), "{run}");
    let first = writes(&proxy, 0);
    let creates = |path: &str| first.iter().filter(|w| *w == &format!("POST /scim/v2/{path}")).count();
    assert_eq!((creates("Users"), creates("Groups")), (4, 3), "{first:#?}");

    support::rt().block_on(async {
        let users = listed(&server, "/Users", "userName").await;
        assert_eq!(users.len(), 4, "{users:#?}");
        let ann = &users["ann@example.com"];
        assert_eq!(
            (ann["name"]["givenName"].as_str(), ann["name"]["familyName"].as_str()),
            (Some("Ann"), Some("Lee"))
        );
        assert_eq!(ann["emails"][0]["value"], "ann@example.com");
        assert_eq!(ann["active"], true);
        let id = |uid: &str| users[&format!("{uid}@example.com")]["id"].as_str().unwrap().to_owned();

        let groups = listed(&server, "/Groups", "displayName").await;
        assert_eq!(groups.keys().collect::<Vec<_>>(), ["empty", "ops", "staff"]);
        let mut staff = vec![id("ann"), id("ben"), id("cat")];
        staff.sort();
        assert_eq!(member_ids(&groups["staff"]), staff);
        assert_eq!(member_ids(&groups["ops"]), [id("dan")]);
        assert!(member_ids(&groups["empty"]).is_empty());
    });

    // The same source again: nothing to do, and nothing but reads reach the server.
    let seen = proxy.log().len();
    let again = site.sync_ok();
    assert!(again.stdout.contains("target confirmed 0 of 0 operations"), "{again}");
    assert_eq!(writes(&proxy, seen), Vec::<String>::new(), "{again}");
}

/// With `profile = "generic"` and no other setting, a week of changes converges although the
/// server answers 501 to most PATCH paths and removes members only as a value list: the
/// refused PATCHes go again as PUT, member removal falls back to the value list, and the run
/// says so once. (Titles stay as they are: django-scim2 does not store `title`.)
#[test]
fn a_week_of_changes_converges_on_django_scim2_with_the_generic_profile() {
    let server = DjangoScim::start();
    let proxy = FaultProxy::start(&server.origin(), &[]);
    let site = Site::with_url(&proxy.url("/scim/v2"), &server.token, "profile = \"generic\"", "");
    site.write_source(&source());
    site.sync_ok();

    // ann: a new surname; ben leaves; cat is renamed (uid and mail); dan joins staff, ann and
    // ben leave it; ops is renamed.
    let mut t = person("ann", "Ann", "Changed", 1, &[("title", "Engineer")]);
    t.push_str(&person("cathy", "Cat", "Roy", 3, &[("title", "Engineer")]));
    t.push_str(&person("dan", "Dan", "Ng", 4, &[("title", "Engineer")]));
    t.push_str(&group("staff", 1, &["cathy", "dan"]));
    t.push_str(&group("operations", 2, &["dan"]));
    t.push_str(&group("empty", 3, &[]));
    site.write_source(&t);
    let seen = proxy.log().len();
    let run = site.sync_ok();
    assert!(run.stdout.contains("; 0 failed"), "{run}");
    assert!(run.stderr.contains("target.dialect.update = \"put\""), "one warning names the setting: {run}");
    assert!(run.stderr.contains("target.dialect.members = \"value-list\""), "{run}");
    let log = proxy.log();
    let refused = log[seen..].iter().filter(|e| e["status"] == 501).count();
    assert!(refused >= 2, "the server refused PATCH forms: {:#?}", &log[seen..]);
    support::rt().block_on(async {
        let users = listed(&server, "/Users", "userName").await;
        assert_eq!(users["ann@example.com"]["name"]["familyName"], "Changed");
        assert_eq!(users["ben@example.com"]["active"], false);
        assert_eq!(users["cathy@example.com"]["emails"][0]["value"], "cathy@example.com");
        assert!(!users.contains_key("cat@example.com"), "{users:#?}");
        let id = |u: &str| users[&format!("{u}@example.com")]["id"].as_str().unwrap().to_owned();
        let groups = listed(&server, "/Groups", "displayName").await;
        let mut staff = vec![id("cathy"), id("dan")];
        staff.sort();
        assert_eq!(member_ids(&groups["staff"]), staff);
        assert!(groups.contains_key("operations") && !groups.contains_key("ops"), "{groups:#?}");
        assert_eq!(member_ids(&groups["operations"]), [id("dan")]);
    });
    let seen = proxy.log().len();
    let again = site.sync_ok();
    assert!(again.stdout.contains("target confirmed 0 of 0 operations"), "{again}");
    assert_eq!(writes(&proxy, seen), Vec::<String>::new(), "{again}");
}
