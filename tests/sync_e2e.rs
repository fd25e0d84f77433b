//! `scimsync sync` end to end, as a real process against a real SCIM server (scim2-server, one
//! tenant per test): initial provision, changes, deprovisioning, adoption, safety holds.

use crate::support;

use serde_json::Value;
use support::rt;
use support::scim_server::ScimServer;
use support::site::{group, person, Site};

const NINJA: &str = "urn:ietf:params:scim:schemas:extension:ninjaone:2.0:User";

const MAPPING: &str = r#"
[mapping.user]
organizationId = { expr = 'has(user.o) ? user.o : "All"' }

[[mapping.group_assignments]]
group = "technicians"
set = { userType = "technician" }

[[mapping.roles]]
group = "technicians"
role = "Technician"
user_type = "technician"
"#;

fn directory(people: &[(&str, u32)], groups: &[(&str, u32, &[&str])]) -> String {
    let mut s = String::new();
    for (uid, n) in people {
        s.push_str(&person(uid, "Given", &format!("Sn{n}"), *n, &[]));
    }
    for (cn, n, members) in groups {
        s.push_str(&group(cn, *n, members));
    }
    s
}

/// Every user in the tenant, by userName.
async fn users(site: &Site) -> std::collections::BTreeMap<String, Value> {
    let (status, doc) = site.raw().get("/Users?count=1000").await;
    assert_eq!(status, 200, "{doc}");
    doc["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| (u["userName"].as_str().unwrap().to_owned(), u.clone()))
        .collect()
}

async fn groups(site: &Site) -> std::collections::BTreeMap<String, Value> {
    let (status, doc) = site.raw().get("/Groups?count=1000").await;
    assert_eq!(status, 200, "{doc}");
    doc["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| (g["displayName"].as_str().unwrap().to_owned(), g.clone()))
        .collect()
}

fn member_ids(g: &Value) -> Vec<String> {
    let mut v: Vec<String> = g["members"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| m["value"].as_str().unwrap().to_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn initial_provision_from_a_slapd_export_then_nothing_to_do() {
    let server = ScimServer::shared();
    let export = support::slapd_export(&support::test_data("slapd/directory.ldif"));
    let site = Site::new(server, "", MAPPING);
    site.write_source(&std::fs::read_to_string(export.slapcat()).unwrap());
    let plan = site.scimsync(&["plan", "--format", "json"]);
    let summary = serde_json::from_str::<Value>(&plan.stdout).expect("plan json")["summary"].clone();
    let run = site.sync_ok();
    assert!(run.stdout.contains("0 failed"), "{run}");

    rt().block_on(async {
        let users = users(&site).await;
        assert_eq!(users.len() as u64, summary["create_user"].as_u64().unwrap(), "{users:#?}");
        let tech = &users["jmueller@example.com"];
        assert_eq!(tech[NINJA]["userType"], "technician");
        assert_eq!(tech[NINJA]["organizationId"], "All");
        assert_eq!(tech["name"]["givenName"], "Jürgen");
        assert_eq!(tech["roles"][0]["value"], "Technician");
        let end = &users["bjones@example.com"];
        assert_eq!(end[NINJA]["userType"], "endUser");
        assert!(end["roles"].as_array().is_none_or(|r| r.is_empty()), "{end}");
        // Groups arrive with their flattened members, by target id.
        let groups = groups(&site).await;
        assert_eq!(groups.len() as u64, summary["create_group"].as_u64().unwrap());
        let support = &groups["support"];
        let want: Vec<String> = {
            let mut v: Vec<String> = ["jose.nunez", "bjones", "cdavis", "dmiller", "ewilson"]
                .iter()
                .map(|u| users[&format!("{u}@example.com")]["id"].as_str().unwrap().to_owned())
                .collect();
            v.sort();
            v
        };
        assert_eq!(member_ids(support), want, "nested helpdesk members are flattened into support");
    });

    // A second run over the unchanged source has nothing to do.
    let again = site.sync_ok();
    assert!(again.stdout.contains(": target confirmed 0 of 0 operations; 0 failed"), "{again}");
    let plan = site.scimsync(&["plan", "--detailed-exitcode"]);
    assert_eq!(plan.code, Some(0), "{plan}");
}

#[test]
fn edits_removals_renames_memberships_and_group_renames() {
    let server = ScimServer::shared();
    let site = Site::new(server, "", MAPPING);
    site.write_source(&directory(
        &[("ann", 1), ("ben", 2), ("cat", 3), ("dan", 4)],
        &[("technicians", 1, &["ann"]), ("staff", 2, &["ann", "ben", "cat"])],
    ));
    site.sync_ok();
    let before = rt().block_on(users(&site));

    // ann's surname changes; ben leaves; cat's entry is renamed (same entryUUID, new uid and mail);
    // dan joins staff, ann leaves it; staff is renamed to "all staff".
    let mut text = person("ann", "Given", "Changed", 1, &[]);
    text.push_str(&person("cathy", "Given", "Sn3", 3, &[]));
    text.push_str(&person("dan", "Given", "Sn4", 4, &[]));
    text.push_str(&group("technicians", 1, &["ann"]));
    text.push_str(&group("all staff", 2, &["cathy", "dan"]));
    site.write_source(&text);
    let plan = site.scimsync(&["plan", "--format", "json"]);
    let s = serde_json::from_str::<Value>(&plan.stdout).unwrap()["summary"].clone();
    assert_eq!(
        (s["update_user"].as_u64(), s["deactivate_user"].as_u64(), s["create_user"].as_u64()),
        (Some(2), Some(1), Some(0)),
        "{plan}"
    );
    site.sync_ok();

    rt().block_on(async {
        let after = users(&site).await;
        assert_eq!(after["ann@example.com"]["name"]["familyName"], "Changed");
        assert_eq!(after["ann@example.com"]["name"]["givenName"], "Given", "untouched attributes stay");
        // Deactivated, not deleted.
        assert_eq!(after["ben@example.com"]["active"], false);
        // Renamed in place: same target id, new userName.
        assert!(!after.contains_key("cat@example.com"));
        assert_eq!(after["cathy@example.com"]["id"], before["cat@example.com"]["id"]);
        let groups = groups(&site).await;
        assert!(!groups.contains_key("staff"));
        let staff = &groups["all staff"];
        let mut want = vec![
            after["cathy@example.com"]["id"].as_str().unwrap().to_owned(),
            after["dan@example.com"]["id"].as_str().unwrap().to_owned(),
        ];
        want.sort();
        assert_eq!(member_ids(staff), want);
    });
    let again = site.sync_ok();
    assert!(again.stdout.contains(": target confirmed 0 of 0 operations; 0 failed"), "{again}");

    // The audit log names the activities the target uses.
    let history = site.scimsync(&["history", "--user", "ben@example.com"]);
    assert!(history.stdout.contains("End User Disabled"), "{history}");
    // As JSON, each entry carries the operation: a create with the values it sent.
    let history = site.scimsync(&["history", "--user", "ben@example.com", "--format", "json"]);
    let doc: serde_json::Value = serde_json::from_str(&history.stdout).expect("history JSON");
    let entries = doc["entries"].as_array().expect("entries");
    let ops: Vec<&str> = entries.iter().filter_map(|e| e["details"]["op"].as_str()).collect();
    assert_eq!(ops.len(), entries.len(), "{history}");
    assert!(ops.contains(&"deactivate_user"), "{history}");
    let created = entries.iter().find(|e| e["details"]["op"] == "create_user").expect("the create");
    assert_eq!(created["details"]["user"]["attrs"]["userName"], "ben@example.com", "{history}");
}

#[test]
fn users_are_deleted_where_policy_says_so() {
    let server = ScimServer::shared();
    let extra = format!("{MAPPING}\n[policy]\ndeprovision = {{ technician = \"delete\" }}\n");
    let site = Site::new(server, "", &extra);
    site.write_source(&directory(&[("tom", 1), ("eve", 2), ("joe", 3)], &[("technicians", 1, &["tom"])]));
    site.sync_ok();
    site.write_source(&directory(&[("joe", 3)], &[("technicians", 1, &[])]));
    site.sync_ok();
    rt().block_on(async {
        let after = users(&site).await;
        assert!(!after.contains_key("tom@example.com"), "the technician is deleted");
        assert_eq!(after["eve@example.com"]["active"], false, "the end user is disabled");
    });
    let history = site.scimsync(&["history"]);
    assert!(
        history.stdout.contains("Technician Deleted") && history.stdout.contains("End User Disabled"),
        "{history}"
    );
}

#[test]
fn an_existing_target_user_in_another_case_is_adopted_not_duplicated() {
    let server = ScimServer::shared();
    let site = Site::new(server, "", "");
    rt().block_on(async {
        let (status, doc) = site
            .raw()
            .post(
                "/Users",
                &serde_json::json!({
                    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                    "userName": "ANN@Example.com",
                    "name": {"givenName": "Old"},
                }),
            )
            .await;
        assert_eq!(status, 201, "{doc}");
    });
    site.write_source(&directory(&[("ann", 1)], &[]));
    let run = site.sync_ok();
    assert!(run.stdout.contains("(1 existing user adopted)"), "{run}");
    rt().block_on(async {
        let all = users(&site).await;
        assert_eq!(all.len(), 1, "{all:#?}");
        let ann = all.values().next().unwrap();
        assert_eq!(ann["name"]["givenName"], "Given", "brought to the desired state");
        assert_eq!(ann[NINJA]["userType"], "endUser");
    });
    assert!(site.sync_ok().stdout.contains(": target confirmed 0 of 0 operations; 0 failed"));
}

#[test]
fn mass_removal_is_held_and_approve_releases_it() {
    let server = ScimServer::shared();
    let site = Site::new(server, "", "");
    let people: Vec<(String, u32)> = (0..30).map(|i| (format!("p{i:02}"), i)).collect();
    let refs: Vec<(&str, u32)> = people.iter().map(|(u, n)| (u.as_str(), *n)).collect();
    site.write_source(&directory(&refs, &[]));
    site.sync_ok();
    // 15 of 30 leave (50% > 10%, 15 > 10), one joins: held, but the new user is created.
    let mut kept: Vec<(&str, u32)> = refs[..15].to_vec();
    kept.push(("newbie", 99));
    site.write_source(&directory(&kept, &[]));
    let run = site.scimsync(&["sync"]);
    assert_eq!(run.code, Some(3), "{run}");
    assert!(run.stderr.contains("scimsync approve"), "{run}");
    rt().block_on(async {
        let all = users(&site).await;
        assert!(all.contains_key("newbie@example.com"));
        assert_eq!(all.values().filter(|u| u["active"] == false).count(), 0, "nothing deprovisioned");
    });
    let status = site.scimsync(&["status", "--format", "json"]);
    let held = serde_json::from_str::<Value>(&status.stdout).unwrap()["held"].as_array().unwrap().len();
    assert_eq!(held, 15, "{status}");
    let run_id = run.stdout.split_whitespace().nth(1).unwrap().trim_end_matches(':').to_owned();
    let approve = site.scimsync(&["approve", &run_id]);
    assert_eq!(approve.code, Some(0), "{approve}");
    rt().block_on(async {
        let all = users(&site).await;
        assert_eq!(all.values().filter(|u| u["active"] == false).count(), 15);
    });
    let status = site.scimsync(&["status", "--format", "json"]);
    assert_eq!(serde_json::from_str::<Value>(&status.stdout).unwrap()["held"].as_array().unwrap().len(), 0);
}

#[test]
fn check_tests_the_credentials_like_test_api_credentials() {
    let server = ScimServer::shared();
    let site = Site::new(server, "", "");
    site.write_source(&directory(&[("ann", 1)], &[]));
    let run = site.scimsync(&["check"]);
    assert_eq!(run.code, Some(0), "{run}");
    assert!(
        run.stdout.contains("ServiceProviderConfig read") && run.stdout.contains("credentials accepted"),
        "{run}"
    );
    std::fs::write(site.dir.path().join("target.token"), "wrong\n").unwrap();
    let run = site.scimsync(&["check"]);
    assert_eq!(run.code, Some(1), "{run}");
    assert!(run.stderr.contains("token"), "{run}");
}

#[test]
fn a_wrong_token_stops_the_run_with_what_to_do_and_no_secret() {
    let server = ScimServer::shared();
    let site = Site::new(server, "", "");
    std::fs::write(site.dir.path().join("target.token"), "not-the-token\n").unwrap();
    site.write_source(&directory(&[("ann", 1), ("ben", 2)], &[]));
    let run = site.scimsync(&["sync"]);
    assert_eq!(run.code, Some(1), "{run}");
    assert!(run.stderr.contains("token") && run.stderr.contains("target.token_file"), "{run}");
    assert!(!run.stderr.contains("not-the-token"), "{run}");
    let status = site.scimsync(&["status", "--format", "json"]);
    let runs = serde_json::from_str::<Value>(&status.stdout).unwrap()["runs"].clone();
    assert_eq!(runs[0]["outcome"], "failed", "{status}");
}

#[test]
fn a_saved_plan_is_applied_only_while_source_and_snapshot_are_unchanged() {
    let server = ScimServer::shared();
    let site = Site::new(server, "", "");
    site.write_source(&directory(&[("ann", 1), ("ben", 2)], &[("staff", 1, &["ann", "ben"])]));
    let planfile = site.dir.path().join("plan.json");
    let plan = site.scimsync(&["plan", "--format", "json", "--out", planfile.to_str().unwrap()]);
    assert_eq!(plan.code, Some(0), "{plan}");
    let applied = site.scimsync(&["apply", planfile.to_str().unwrap()]);
    assert_eq!(applied.code, Some(0), "{applied}");
    assert!(
        applied.stdout.contains(
            ": target confirmed 4 of 4 operations (2 users created, 1 group created, 1 member addition)"
        ),
        "{applied}"
    );
    assert_eq!(rt().block_on(users(&site)).len(), 2);
    // The same file again: the snapshot moved on, so it is refused.
    let again = site.scimsync(&["apply", planfile.to_str().unwrap()]);
    assert_eq!(again.code, Some(1), "{again}");
    assert!(again.stderr.contains("changed since this plan was made"), "{again}");
    // A new plan, then a source change: refused too.
    let plan = site.scimsync(&["plan", "--format", "json", "--out", planfile.to_str().unwrap()]);
    assert_eq!(plan.code, Some(0), "{plan}");
    site.write_source(&directory(&[("ann", 1), ("ben", 2), ("cat", 3)], &[("staff", 1, &["ann", "ben"])]));
    let refused = site.scimsync(&["apply", planfile.to_str().unwrap()]);
    assert_eq!(refused.code, Some(1), "{refused}");
    assert_eq!(rt().block_on(users(&site)).len(), 2, "nothing applied from a stale plan");
}

#[test]
fn a_managed_user_deleted_by_hand_is_reported_or_recreated_by_policy() {
    let server = ScimServer::shared();
    for (policy, recreated) in [("", false), ("on_missing = \"recreate\"", true)] {
        let site = Site::new(server, policy, "");
        site.write_source(&directory(&[("ann", 1)], &[]));
        site.sync_ok();
        rt().block_on(async {
            let id = users(&site).await["ann@example.com"]["id"].as_str().unwrap().to_owned();
            let http = reqwest::Client::new();
            let url = format!("{}/Users/{id}", site.base);
            let status = http.delete(url).bearer_auth(&site.token).send().await.unwrap().status();
            assert_eq!(status.as_u16(), 204);
        });
        site.write_source(&person("ann", "Anna", "Sn1", 1, &[]));
        let run = site.scimsync(&["sync"]);
        if recreated {
            assert_eq!(run.code, Some(0), "{run}");
            let all = rt().block_on(users(&site));
            assert_eq!(all["ann@example.com"]["name"]["givenName"], "Anna");
            assert!(site.sync_ok().stdout.contains(": target confirmed 0 of 0 operations; 0 failed"));
        } else {
            assert_eq!(run.code, Some(1), "{run}");
            assert!(run.stderr.contains("not found"), "{run}");
            assert!(rt().block_on(users(&site)).is_empty(), "reported, not recreated");
        }
    }
}

#[test]
fn repeated_auth_failures_quarantine_writes_until_approved() {
    let server = ScimServer::shared();
    let site = Site::new(server, "", "");
    site.write_source(&directory(&[("ann", 1)], &[]));
    let token_file = site.dir.path().join("target.token");
    std::fs::write(&token_file, "wrong\n").unwrap();
    for _ in 0..2 {
        assert_eq!(site.scimsync(&["sync"]).code, Some(1));
    }
    let status = site.scimsync(&["status"]);
    assert!(status.stdout.contains("QUARANTINED") && status.stdout.contains("renew the token"), "{status}");
    // The token is fixed, but the back-off is not over: nothing is written.
    std::fs::write(&token_file, format!("{}\n", site.token)).unwrap();
    let run = site.scimsync(&["sync"]);
    assert_eq!(run.code, Some(1), "{run}");
    assert!(run.stderr.contains("quarantined until"), "{run}");
    assert!(rt().block_on(users(&site)).is_empty());
    let json = site.scimsync(&["status", "--format", "json"]);
    let doc: Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(doc["runs"][0]["outcome"], "quarantined");
    let run_id = doc["runs"][0]["id"].to_string();
    // An administrator approves: the quarantine is lifted and the run goes ahead.
    let approve = site.scimsync(&["approve", &run_id]);
    assert_eq!(approve.code, Some(0), "{approve}");
    assert_eq!(rt().block_on(users(&site)).len(), 1);
    assert!(!site.scimsync(&["status"]).stdout.contains("QUARANTINED"));
}

#[test]
fn the_token_comes_from_systemd_credentials_or_the_environment() {
    let server = ScimServer::shared();
    let site = Site::new(server, "", "");
    site.write_source(&directory(&[("ann", 1)], &[]));
    let token_file = site.dir.path().join("target.token");
    std::fs::remove_file(&token_file).unwrap();
    // systemd's LoadCredential=target.token:… puts it in $CREDENTIALS_DIRECTORY.
    let creds = site.dir.path().join("creds");
    std::fs::create_dir(&creds).unwrap();
    std::fs::write(creds.join("target.token"), &site.token).unwrap();
    let out = site.command(&["check"]).env("CREDENTIALS_DIRECTORY", &creds).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // The environment, as a last resort.
    let out = site.command(&["check"]).env("SCIMSYNC_TOKEN", &site.token).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Neither: a message that says where a token may come from.
    let run = site.scimsync(&["check"]);
    assert_eq!(run.code, Some(1));
    assert!(run.stderr.contains("LoadCredential") && run.stderr.contains("SCIMSYNC_TOKEN"), "{run}");
}

#[test]
fn a_grace_period_delays_deactivation_and_a_returning_user_keeps_account_and_roles() {
    let server = ScimServer::shared();
    let site = Site::new(server, "", &format!("{MAPPING}\n[policy]\ngrace_runs = 2\n"));
    site.write_source(&directory(&[("ann", 1), ("ben", 2), ("cat", 3)], &[("technicians", 1, &["ben"])]));
    site.sync_ok();
    let before = rt().block_on(users(&site));

    // ann and ben leave: the first run only marks them.
    site.write_source(&directory(&[("cat", 3)], &[("technicians", 1, &[])]));
    let plan = site.scimsync(&["plan"]);
    assert!(
        plan.stdout.contains("Within the grace period") && plan.stdout.contains("ann@example.com"),
        "{plan}"
    );
    site.sync_ok();
    let status = site.scimsync(&["status"]);
    assert!(
        status.stdout.contains("within the grace period") && status.stdout.contains("ben@example.com"),
        "{status}"
    );
    assert!(rt().block_on(users(&site)).values().all(|u| u["active"] == true));

    // ben comes back before the grace period ends: same account, same roles, nothing pending.
    site.write_source(&directory(&[("ben", 2), ("cat", 3)], &[("technicians", 1, &["ben"])]));
    site.sync_ok();
    let after = rt().block_on(users(&site));
    assert_eq!(after["ben@example.com"]["id"], before["ben@example.com"]["id"]);
    assert_eq!(after["ben@example.com"]["roles"][0]["value"], "Technician");
    assert_eq!(after["ann@example.com"]["active"], false, "ann was missing for two runs");
    assert!(!site.scimsync(&["status"]).stdout.contains("within the grace period"));
}
