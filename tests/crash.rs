//! Crash trials: `scimsync sync` is killed with SIGKILL at random moments while it provisions
//! 2,000 users; after a restart and one more `sync` the target equals the desired state, no
//! userName exists twice, and the state database passes `PRAGMA integrity_check`.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use support::scim_server::ScimServer;
use support::site::{group, person, Site};

const USERS: u32 = 2_000;

fn directory(users: u32) -> String {
    let mut s = String::new();
    for i in 0..users {
        s.push_str(&person(&format!("u{i:05}"), "Given", &format!("Sn{i}"), i, &[]));
    }
    let members: Vec<String> = (0..users).step_by(7).map(|i| format!("u{i:05}")).collect();
    let refs: Vec<&str> = members.iter().map(String::as_str).collect();
    s.push_str(&group("sevens", 1, &refs));
    s.push_str(&group("firsts", 2, &refs[..refs.len().min(50)]));
    s
}

/// Every user in the tenant (paged: the server caps `count` at 1000).
async fn all_users(site: &Site) -> Vec<serde_json::Value> {
    let raw = site.raw();
    let mut out = Vec::new();
    let mut start = 1;
    loop {
        let (status, doc) = raw.get(&format!("/Users?startIndex={start}&count=1000")).await;
        assert_eq!(status, 200, "{doc}");
        let page = doc["Resources"].as_array().cloned().unwrap_or_default();
        if page.is_empty() {
            break;
        }
        start += page.len();
        out.extend(page);
    }
    out
}

/// A small deterministic generator (xorshift), so a failing trial can be replayed by seed.
fn next(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

fn trials(first_seed: u64, count: u32) {
    let server = ScimServer::shared();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let source = directory(USERS);
    let mut seed = first_seed;
    for trial in 0..count {
        let site = Site::new(server, "concurrency = 8", "");
        site.write_source(&source);
        // Kill one to three times, at random moments of the run, then let it finish.
        let kills = 1 + next(&mut seed) % 3;
        for _ in 0..kills {
            let delay = Duration::from_millis(50 + next(&mut seed) % 2_500);
            let mut child = site
                .command(&["sync"])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap();
            let started = Instant::now();
            while started.elapsed() < delay {
                if child.try_wait().unwrap().is_some() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            let _ = child.kill(); // SIGKILL
            let _ = child.wait();
        }
        let run = site.scimsync(&["sync"]);
        assert_eq!(
            run.code,
            Some(0),
            "trial {trial} (seed {first_seed}): the run after the crash failed:\n{run}"
        );

        let users = rt.block_on(all_users(&site));
        let mut by_name: BTreeMap<String, u32> = BTreeMap::new();
        for u in &users {
            *by_name.entry(u["userName"].as_str().unwrap().to_lowercase()).or_default() += 1;
        }
        let dups: Vec<_> = by_name.iter().filter(|(_, n)| **n > 1).collect();
        assert!(dups.is_empty(), "trial {trial} (seed {first_seed}): duplicate userNames {dups:?}");
        assert_eq!(users.len() as u32, USERS, "trial {trial} (seed {first_seed}): the target lacks users");
        let groups = rt.block_on(site.raw().get("/Groups?count=100")).1;
        let groups = groups["Resources"].as_array().unwrap();
        assert_eq!(groups.len(), 2, "trial {trial}: groups {groups:#?}");
        for g in groups {
            let n = g["members"].as_array().map_or(0, Vec::len);
            let want = if g["displayName"] == "sevens" { USERS.div_ceil(7) as usize } else { 50 };
            assert_eq!(n, want, "trial {trial}: members of {}", g["displayName"]);
        }
        // Nothing left to do, and the database is sound.
        let plan = site.scimsync(&["plan", "--detailed-exitcode"]);
        assert_eq!(plan.code, Some(0), "trial {trial}: changes remain after recovery:\n{plan}");
        let store = scimsync::store::Store::open(&site.dir.path().join("state.db")).unwrap();
        assert_eq!(store.integrity_check().unwrap(), "ok");
    }
}

#[test]
fn kill_9_during_provisioning_loses_and_duplicates_nothing_a() {
    trials(0x5eed_0001, 10);
}

#[test]
fn kill_9_during_provisioning_loses_and_duplicates_nothing_b() {
    trials(0x5eed_0002, 10);
}
