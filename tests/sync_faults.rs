//! Whole runs through the fault-injecting proxy (tests/support/fault_proxy.py) in front of the
//! real scim2-server: storms of 429, 5xx, resets, stalls and cut bodies converge with no
//! duplicate; a 401 mid-run stops it with the snapshot advanced only for confirmed operations;
//! an unchanged source sends no write at all.

use crate::support;

use std::collections::BTreeMap;
use support::fault_proxy::FaultProxy;
use support::rt;
use support::scim_server::ScimServer;
use support::site::{group, person, Site};

fn directory(n: u32) -> String {
    let mut s: String =
        (0..n).map(|i| person(&format!("u{i:04}"), "Given", &format!("Sn{i}"), i, &[])).collect();
    let odd: Vec<String> = (0..n).filter(|i| i % 2 == 1).map(|i| format!("u{i:04}")).collect();
    let refs: Vec<&str> = odd.iter().map(String::as_str).collect();
    s.push_str(&group("odd", 1, &refs));
    s.push_str(&group("few", 2, &refs[..5]));
    s
}

/// The tenant's users and groups, read directly (not through the proxy).
async fn state(site_base: &str, token: &str) -> (BTreeMap<String, u32>, BTreeMap<String, usize>) {
    let raw = support::scim_server::Raw::new(site_base, token);
    let mut names = BTreeMap::new();
    let mut start = 1;
    loop {
        let (_, doc) = raw.get(&format!("/Users?startIndex={start}&count=1000")).await;
        let page = doc["Resources"].as_array().cloned().unwrap_or_default();
        if page.is_empty() {
            break;
        }
        start += page.len();
        for u in page {
            *names.entry(u["userName"].as_str().unwrap().to_lowercase()).or_default() += 1;
        }
    }
    let (_, doc) = raw.get("/Groups?count=100").await;
    let groups = doc["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| (g["displayName"].as_str().unwrap().to_owned(), g["members"].as_array().map_or(0, Vec::len)))
        .collect();
    (names, groups)
}

fn writes(log: &[serde_json::Value]) -> usize {
    log.iter().filter(|e| e["method"] != "GET").count()
}

#[test]
fn a_fault_storm_converges_with_no_duplicates_and_retry_after_honoured() {
    let server = ScimServer::shared();
    let (base, token) = server.tenant();
    let proxy = FaultProxy::start(
        &base,
        &[
            "--seed",
            "11",
            "--rate429",
            "0.06",
            "--retry-after",
            "1",
            "--rate5xx",
            "0.06",
            "--reset",
            "0.06",
            "--stall",
            "0.02",
            "--stall-seconds",
            "2",
            "--truncate",
            "0.05",
        ],
    );
    let site = Site::with_url(&proxy.base_url(), &token, "", "");
    // scripts/fault-storm.sh sets FAULT_STORM_USERS=5000.
    let users: u32 = std::env::var("FAULT_STORM_USERS").ok().and_then(|v| v.parse().ok()).unwrap_or(300);
    site.write_source(&directory(users));
    let started = std::time::Instant::now();
    let mut runs = 0;
    loop {
        runs += 1;
        let run = site.scimsync(&["sync"]);
        if run.code == Some(0) {
            break;
        }
        assert_eq!(run.code, Some(1), "{run}");
        assert!(runs < 6, "no convergence after {runs} runs:\n{run}");
    }
    let elapsed = started.elapsed();
    let (names, groups) = rt().block_on(state(&base, &token));
    assert_eq!(names.len() as u32, users);
    assert!(
        names.values().all(|n| *n == 1),
        "duplicates: {:?}",
        names.iter().filter(|(_, n)| **n > 1).collect::<Vec<_>>()
    );
    assert_eq!(groups.get("odd"), Some(&(users as usize / 2)));
    assert_eq!(groups.get("few"), Some(&5));
    assert_eq!(groups.len(), 2, "{groups:?}");
    let plan = site.scimsync(&["plan", "--detailed-exitcode"]);
    assert_eq!(plan.code, Some(0), "{plan}");

    let log = proxy.log();
    let faults = |f: &str| log.iter().filter(|e| e["fault"] == f).count();
    for f in ["429", "5xx", "reset_before", "reset_after", "truncate", "stall"] {
        assert!(faults(f) > 0, "the storm injected no {f}: {} requests", log.len());
    }
    // Every request that followed a 429 for the same request waited at least the Retry-After.
    let mut honoured = 0;
    for e in &log {
        if let (Some(since), Some(wanted)) =
            (e["since_429_same"].as_f64(), e["prev_retry_after_same_s"].as_f64())
        {
            assert!(since + 0.05 >= wanted, "a retry came {since:.2}s after a 429 asking {wanted:.2}s: {e}");
            honoured += 1;
        }
    }
    assert!(honoured > 0, "no retry after a 429 was seen");
    let faulted = log.iter().filter(|e| e["fault"] != "none").count();
    println!(
        "fault storm: {users} users converged in {runs} run(s), {:.1} s; {} requests, {faulted} faulted ({:.0}%): {} × 429, {} × 5xx, {} resets before, {} after, {} stalls, {} cut bodies; {honoured} retries after a 429 all waited the Retry-After",
        elapsed.as_secs_f64(),
        log.len(),
        faulted as f64 * 100.0 / log.len() as f64,
        faults("429"),
        faults("5xx"),
        faults("reset_before"),
        faults("reset_after"),
        faults("stall"),
        faults("truncate")
    );
}

#[test]
fn a_401_mid_run_stops_it_and_the_snapshot_holds_only_confirmed_operations() {
    let server = ScimServer::shared();
    let (base, token) = server.tenant();
    let proxy = FaultProxy::start(&base, &["--fail-auth-after", "40"]);
    let site = Site::with_url(&proxy.base_url(), &token, "", "");
    site.write_source(&directory(120));
    let run = site.scimsync(&["sync"]);
    assert_eq!(run.code, Some(1), "{run}");
    assert!(run.stderr.contains("token") && run.stderr.contains("target.token_file"), "{run}");
    let log = proxy.log();
    // The proxy logs answers as it sends them. After its first 401 come at most: the 401 itself,
    // the three other requests in flight (concurrency 4), and one more for each of those three
    // answered while the 401 was still on its way to scimsync. A run that did not stop would
    // send the rest of its 120 users.
    let after_first_401 = log.iter().skip_while(|e| e["fault"] != "auth").count();
    assert!(after_first_401 <= 1 + 2 * 3, "requests kept coming after the 401: {after_first_401}");

    let (names, _) = rt().block_on(state(&base, &token));
    let store = scimsync::store::Store::open(&site.dir.path().join("state.db")).unwrap();
    let snapshot = store.load_snapshot().unwrap();
    assert_eq!(
        snapshot.users.len(),
        names.len(),
        "the snapshot holds exactly the users the target confirmed"
    );
    for u in snapshot.users.values() {
        assert!(
            names.contains_key(&u.user_name().to_lowercase()),
            "{} is in the snapshot only",
            u.user_name()
        );
    }
    assert_eq!(store.integrity_check().unwrap(), "ok");
}

#[test]
fn an_unchanged_source_sends_no_write_request() {
    let server = ScimServer::shared();
    let (base, token) = server.tenant();
    let proxy = FaultProxy::start(&base, &[]);
    let site = Site::with_url(&proxy.base_url(), &token, "", "");
    site.write_source(&directory(40));
    site.sync_ok();
    let first = proxy.log().len();
    assert!(writes(&proxy.log()) >= 40 + 2);
    site.sync_ok();
    let second: Vec<_> = proxy.log().into_iter().skip(first).collect();
    assert_eq!(writes(&second), 0, "the second sync wrote: {second:?}");
}

#[test]
fn the_run_summary_says_what_the_target_confirmed_and_what_failed_by_kind() {
    let server = ScimServer::shared();
    let (base, token) = server.tenant();
    // Every PATCH is answered 5xx (not forwarded): the creates go through, the member additions
    // that follow the group creates never do.
    let proxy = FaultProxy::start(&base, &["--rate5xx", "1", "--only-methods", "PATCH"]);
    let site = Site::with_url(&proxy.base_url(), &token, "", "");
    let mut ldif: String = ["ann", "ben", "cid"]
        .iter()
        .enumerate()
        .map(|(i, u)| person(u, "Given", "Sn", i as u32, &[]))
        .collect();
    ldif.push_str(&group("staff", 1, &["ann", "ben"]));
    ldif.push_str(&group("ops", 2, &["cid"]));
    site.write_source(&ldif);
    let run = site.scimsync(&["sync"]);
    assert_eq!(run.code, Some(1), "failed operations fail the command: {run}");
    let line = run.stdout.lines().find(|l| l.starts_with("run ")).unwrap_or_else(|| panic!("{run}"));
    assert!(
        line.ends_with(
            ": target confirmed 5 of 7 operations (3 users created, 2 groups created); \
             2 failed (2 member additions); 0 held"
        ),
        "{run}"
    );
    // `status` shows the run's record with the same counts.
    let status = site.scimsync(&["status"]);
    assert!(
        status.stdout.contains(
            "      target confirmed 5 of 7 operations (3 users created, 2 groups created); \
             2 failed (2 member additions); 0 held\n"
        ),
        "{status}"
    );
    let status = site.scimsync(&["status", "--format", "json"]);
    let record = &serde_json::from_str::<serde_json::Value>(&status.stdout).unwrap()["runs"][0]["summary"];
    assert_eq!(record["applied"]["confirmed"], serde_json::json!({"create_user": 3, "create_group": 2}));
    assert_eq!(record["applied"]["failed"], serde_json::json!({"add_members": 2}));
    let log = proxy.log();
    let patches: Vec<_> = log.iter().filter(|e| e["method"] == "PATCH").collect();
    assert!(!patches.is_empty() && patches.iter().all(|e| e["fault"] == "5xx"), "{patches:?}");
    let (names, groups) = rt().block_on(state(&base, &token));
    assert_eq!((names.len(), groups.values().sum::<usize>()), (3, 0), "what the target holds: {groups:?}");
}
