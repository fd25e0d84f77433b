//! `scimsync backup` against a real SCIM server (scim2-server): a backup taken while the daemon
//! syncs is a state the database passed through, and a restored older backup followed by a sync
//! duplicates no user and deactivates none of those added since (they are adopted by userName).

use crate::daemon::{self, users, wait_until, Daemon, YEARLY};
use crate::support::scim_server::ScimServer;
use crate::support::site::{person, Site};
use scimsync::store::Store;
use std::collections::BTreeMap;
use std::path::Path;

/// Audit rows so far, read beside the running daemon.
fn audited(db: &Path) -> i64 {
    let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY;
    let Ok(conn) = rusqlite::Connection::open_with_flags(db, flags) else { return 0 };
    conn.query_row("SELECT count(*) FROM audit", [], |r| r.get(0)).unwrap_or(0)
}

fn created_users(store: &Store) -> u64 {
    let ops = store.stats().unwrap().operations;
    ops.iter().filter(|c| c.kind == "create_user" && c.outcome == "done").map(|c| c.count).sum()
}

#[test]
fn a_backup_taken_while_the_daemon_syncs_is_a_state_it_passed_through() {
    let site = daemon::site(YEARLY, "concurrency = 2", "");
    let n = 1500;
    let people: String = (0..n).map(|i| person(&format!("p{i:05}"), "Given", "Sn", i, &[])).collect();
    site.write_source(&people);
    let db = site.dir.path().join("state.db");
    let d = Daemon::start(&site, &[]);
    wait_until("the daemon's first commits", 60, || (audited(&db) >= 20).then_some(()));
    let copy = site.dir.path().join("backup.db");
    let run = site.scimsync(&["backup", copy.to_str().unwrap()]);
    assert_eq!(run.code, Some(0), "{run}");
    assert!(run.stdout.contains("backed up"), "{run}");
    d.wait_for("Run finished.", 1, 180);

    let copy = Store::open(&copy).unwrap();
    assert_eq!(copy.integrity_check().unwrap(), "ok");
    let taken = copy.load_snapshot().unwrap();
    assert!(taken.users.len() < n as usize, "the backup was taken while the run was under way");
    // One commit's state: each user has the journal count and the audit row of its create.
    assert_eq!(created_users(&copy), taken.users.len() as u64);
    assert_eq!(copy.audit(None, u32::MAX).unwrap().len(), taken.users.len());
    // A state the original passed through, which `status` shows as done then or later.
    let original = Store::open(&db).unwrap();
    let now = original.load_snapshot().unwrap();
    assert!(copy.snapshot_version().unwrap() <= original.snapshot_version().unwrap());
    for (key, user) in &taken.users {
        assert_eq!(now.users.get(key).map(|u| &u.target_id), Some(&user.target_id), "{key}");
    }
    let status = site.scimsync(&["status", "--format", "json"]);
    let status: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    let done = status["totals"]["operations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["kind"] == "create_user" && c["outcome"] == "done")
        .map(|c| c["count"].as_u64().unwrap());
    assert_eq!(done, Some(u64::from(n)));
    assert!(created_users(&copy) <= u64::from(n));
}

#[test]
fn a_restored_older_backup_then_a_sync_duplicates_no_one() {
    let site = Site::new(ScimServer::shared(), "", "");
    site.write_source(&daemon::directory(&[("ada", 1), ("bob", 2), ("cy", 3)]));
    site.sync_ok();
    let copy = site.dir.path().join("backup.db");
    let run = site.scimsync(&["backup", copy.to_str().unwrap()]);
    assert_eq!(run.code, Some(0), "{run}");
    let again = site.scimsync(&["backup", copy.to_str().unwrap()]);
    assert_eq!(again.code, Some(1), "an existing file is refused:\n{again}");
    assert!(again.stderr.contains("--force"), "{again}");

    // After the backup, two join and cy leaves (deactivated at once: no grace period).
    site.write_source(&daemon::directory(&[("ada", 1), ("bob", 2), ("dee", 4), ("eve", 5)]));
    site.sync_ok();
    // The database is lost and the backup restored.
    let db = site.dir.path().join("state.db");
    for f in ["state.db-wal", "state.db-shm"] {
        let _ = std::fs::remove_file(site.dir.path().join(f));
    }
    std::fs::copy(&copy, &db).unwrap();
    let run = site.sync_ok();
    assert!(run.stdout.contains("2 existing users adopted"), "{run}");

    let found = rt_users(&site);
    assert!(found.values().all(|n| *n == 1), "duplicates: {found:?}");
    assert_eq!(found.len(), 5, "{found:?}");
    let by_name = users(&site);
    for name in ["ada", "bob", "dee", "eve"] {
        assert_eq!(by_name[&format!("{name}@example.com")]["active"], true, "{name}");
    }
    assert_eq!(by_name["cy@example.com"]["active"], false);
    // The adopted users are managed again: the next plan has nothing to do.
    let plan = site.scimsync(&["plan", "--detailed-exitcode"]);
    assert_eq!(plan.code, Some(0), "{plan}");
}

/// How many users the target has under each userName, any case.
fn rt_users(site: &Site) -> BTreeMap<String, u32> {
    let mut by_name = BTreeMap::new();
    for u in crate::support::rt().block_on(site.raw().all_users()) {
        *by_name.entry(u["userName"].as_str().unwrap().to_lowercase()).or_default() += 1;
    }
    by_name
}

/// A state database with ten sync runs and their audit entries from 2001, long past retention.
fn with_old_runs(site: &Site) {
    let mut store = Store::open(&site.dir.path().join("state.db")).unwrap();
    for day in 0..10 {
        let at = 1_000_000_000 + day * 86_400;
        let run = store.begin_run(scimsync::store::RunKind::Sync, at).unwrap();
        store.finish_run(run, scimsync::store::RunOutcome::Ok, None, None, at + 1).unwrap();
    }
}

fn run_count(site: &Site) -> usize {
    Store::open(&site.dir.path().join("state.db")).unwrap().recent_runs(u32::MAX).unwrap().len()
}

#[test]
fn sync_and_the_daemon_prune_runs_past_retention() {
    let site = Site::new(ScimServer::shared(), "", "");
    site.write_source(&daemon::directory(&[("ada", 1)]));
    with_old_runs(&site);
    site.sync_ok();
    assert_eq!(run_count(&site), 1, "only the sync just made is left");

    let site = daemon::site(YEARLY, "", "");
    site.write_source(&daemon::directory(&[("ada", 1)]));
    with_old_runs(&site);
    let d = Daemon::start(&site, &[]);
    let pruned = d.wait_for("Pruned the state database.", 1, 60);
    assert_eq!(pruned["runs"], 10, "{pruned}");
    assert_eq!(run_count(&site), 1);
}
