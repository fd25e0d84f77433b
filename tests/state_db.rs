//! The state database stays in bounds and can be restored: resolved journal entries go as they
//! are resolved, runs and audit entries older than the retention go (never a held run, the latest
//! of a kind, or one with pending entries) without changing the totals `status` shows, the file
//! gives its pages back, and `Store`-level backups are checked copies.

use scimsync::model::{DesiredUser, SourceKey};
use scimsync::reconcile::plan::{Op, Plan, Reason};
use scimsync::store::{backup, Confirmed, Retention, RunKind, RunOutcome, Store};

const DAY: i64 = 86_400;

fn create(i: usize) -> Op {
    let key = format!("u{i:06}");
    Op::CreateUser {
        user: DesiredUser::builder(key.as_str(), &format!("{key}@example.com")).origin("t:1").build(),
    }
}

fn deactivate(i: usize) -> Op {
    let key = format!("u{i:06}");
    Op::DeactivateUser {
        key: SourceKey(key.clone()),
        user_name: format!("{key}@example.com"),
        reason: Reason::Missing,
    }
}

/// A finished sync run at `at` that created (and journaled) users `range`.
fn sync_run(store: &mut Store, at: i64, range: std::ops::Range<usize>) -> i64 {
    let run = store.begin_run(RunKind::Sync, at).unwrap();
    let ops: Vec<Op> = range.map(create).collect();
    let sends: Vec<(i64, &Op)> = ops.iter().enumerate().map(|(i, op)| (i as i64, op)).collect();
    let ids = store.commit_and_journal(run, &[], &sends, at).unwrap();
    let confirmed: Vec<Confirmed> = ops
        .iter()
        .zip(&ids)
        .map(|(op, id)| Confirmed { journal_id: Some(*id), op, target_id: Some("t") })
        .collect();
    store.commit_and_journal(run, &confirmed, &[], at).unwrap();
    store.finish_run(run, RunOutcome::Ok, None, None, at + 60).unwrap();
    run
}

fn journal_rows(store: &Store) -> Vec<(String, i64)> {
    store.journal_counts().unwrap()
}

/// (kind, outcome or state, count) rows.
type Counts = Vec<(String, String, u64)>;

/// The runs and operations `status` and `/metrics` count.
fn totals(store: &Store) -> (Counts, Counts) {
    let s = store.stats().unwrap();
    let flat = |c: Vec<scimsync::store::Count>| c.into_iter().map(|c| (c.kind, c.outcome, c.count)).collect();
    (flat(s.runs), flat(s.operations))
}

#[test]
fn a_journal_entry_goes_when_resolved_and_a_pending_one_stays() {
    let mut store = Store::in_memory().unwrap();
    let run = store.begin_run(RunKind::Sync, 0).unwrap();
    let ops = [create(1), create(2), create(3), create(4)];
    let sends: Vec<(i64, &Op)> = ops.iter().enumerate().map(|(i, op)| (i as i64, op)).collect();
    let ids = store.commit_and_journal(run, &[], &sends, 0).unwrap();
    assert_eq!(journal_rows(&store), [("pending".to_owned(), 4)]);
    let done = Confirmed { journal_id: Some(ids[0]), op: &ops[0], target_id: Some("t1") };
    store.commit_and_journal(run, &[done], &[], 1).unwrap();
    store.journal_fail(ids[1], "failed").unwrap();
    store.journal_fail_many(&[ids[2]], "abandoned").unwrap();
    // Only the unresolved entry is left, and recovery sees it.
    assert_eq!(journal_rows(&store), [("pending".to_owned(), 1)]);
    assert_eq!(store.journal_pending().unwrap(), vec![(ids[3], ops[3].clone())]);
    // The counts `status` and `/metrics` show are those of every entry ever journaled.
    let ops_total = totals(&store).1;
    let want = [
        ("create_user", "abandoned", 1),
        ("create_user", "done", 1),
        ("create_user", "failed", 1),
        ("create_user", "pending", 1),
    ];
    let want: Vec<_> = want.iter().map(|(k, s, n)| (k.to_string(), s.to_string(), *n)).collect();
    assert_eq!(ops_total, want);
    // Pruning keeps the pending entry and its run, however old.
    let pruned = store.prune(Retention::Days(1), 100 * DAY).unwrap();
    assert_eq!(pruned.runs, 0);
    assert_eq!(store.journal_pending().unwrap().len(), 1);
    assert_eq!(totals(&store).1, want);
}

#[test]
fn entries_a_database_kept_resolved_are_pruned_into_the_totals() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let mut store = Store::open(&path).unwrap();
    let run = store.begin_run(RunKind::Sync, 0).unwrap();
    drop(store);
    // What an older version left: resolved entries kept beside their audit rows.
    let mut conn = rusqlite::Connection::open(&path).unwrap();
    let tx = conn.transaction().unwrap();
    for i in 0..12_000 {
        let state = ["done", "failed", "pending"][i % 3];
        let op = serde_json::to_string(&if i % 2 == 0 { create(i) } else { deactivate(i) }).unwrap();
        tx.execute(
            "INSERT INTO journal (run_id, seq, op, state, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, 0, 0)",
            rusqlite::params![run, i as i64, op, state],
        )
        .unwrap();
    }
    tx.commit().unwrap();
    drop(conn);
    let mut store = Store::open(&path).unwrap();
    let before = totals(&store);
    let pruned = store.prune(Retention::Forever, 0).unwrap();
    assert_eq!(pruned.journal, 8_000);
    assert!(pruned.transactions >= 2, "at most {} rows a transaction", scimsync::store::PRUNE_BATCH);
    assert_eq!(journal_rows(&store), [("pending".to_owned(), 4_000)]);
    assert_eq!(totals(&store), before, "pruning changes no total");
}

#[test]
fn runs_and_audit_entries_older_than_the_retention_go_and_the_others_stay() {
    let mut store = Store::in_memory().unwrap();
    // A run a day for 400 days, each creating one user; a plan run beside each. The held
    // operations of day 5 were superseded by those of day 10, which wait for `approve`.
    let mut held_run = 0;
    for day in 0..400 {
        let at = day * DAY;
        let run = sync_run(&mut store, at, day as usize..day as usize + 1);
        if day == 5 || day == 10 {
            let mut plan = Plan::default();
            plan.held.push(deactivate(day as usize));
            plan.hold_reason = Some("over the threshold".into());
            store.record_held(run, &plan).unwrap();
            held_run = run;
        }
        if day < 399 {
            let plan = store.begin_run(RunKind::Plan, at + 10).unwrap();
            store.finish_run(plan, RunOutcome::Ok, None, None, at + 11).unwrap();
        }
    }
    let before = totals(&store);
    let now = 400 * DAY;
    let pruned = store.prune(Retention::Days(365), now).unwrap();
    // Runs that ended before day 35 go: 35 syncs but the held one, 35 plans.
    assert_eq!(pruned.runs, 69, "{pruned:?}");
    assert_eq!(pruned.audit, 35);
    let runs = store.recent_runs(u32::MAX).unwrap();
    assert!(runs.iter().all(|r| r.finished_at.unwrap() >= now - 365 * DAY || r.id == held_run), "{runs:?}");
    assert!(runs.iter().any(|r| r.id == held_run), "the run with held operations stays");
    assert_eq!(store.held_ops(Some(held_run)).unwrap().len(), 1, "and its operations can be approved");
    let audit = store.audit(None, u32::MAX).unwrap();
    assert_eq!(audit.len(), 365);
    assert!(audit.iter().all(|e| e.at >= now - 365 * DAY));
    assert_eq!(totals(&store), before, "status and /metrics count pruned runs still");
    // Pruning again finds nothing; keeping forever prunes nothing.
    assert!(store.prune(Retention::Days(365), now).unwrap().is_empty());
    assert!(store.prune(Retention::Forever, now + 1000 * DAY).unwrap().is_empty());
    // The latest run of each kind stays whatever its age.
    store.prune(Retention::Days(1), now + 1000 * DAY).unwrap();
    let kinds: Vec<String> = store.recent_runs(u32::MAX).unwrap().into_iter().map(|r| r.kind).collect();
    assert_eq!(kinds.iter().filter(|k| *k == "plan").count(), 1, "{kinds:?}");
    assert_eq!(kinds.iter().filter(|k| *k == "sync").count(), 2, "the latest and the held one: {kinds:?}");
    assert!(store.audit(None, 10).unwrap().is_empty());
}

#[test]
fn the_file_gives_its_pages_back_after_pruning() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let mut store = Store::open(&path).unwrap();
    for day in 0..40 {
        sync_run(&mut store, day * DAY, day as usize * 500..(day as usize + 1) * 500);
    }
    drop(store);
    let full = std::fs::metadata(&path).unwrap().len();
    let mut store = Store::open(&path).unwrap();
    let pruned = store.prune(Retention::Days(5), 40 * DAY).unwrap();
    assert_eq!(pruned.audit, 35 * 500);
    assert!(pruned.pages > 0, "{pruned:?}");
    assert_eq!(store.integrity_check().unwrap(), "ok");
    drop(store);
    let after = std::fs::metadata(&path).unwrap().len();
    assert!(after * 2 < full, "the file went from {full} to {after} bytes");
}

#[test]
fn a_backup_is_a_checked_private_copy_and_never_overwrites_unasked() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let mut store = Store::open(&path).unwrap();
    sync_run(&mut store, 0, 0..300);
    let copy = dir.path().join("copy.db");
    // Taken while the store is open (and holds the WAL).
    let b = backup::backup(&path, &copy, false).unwrap();
    assert_eq!(b.snapshot_version, store.snapshot_version().unwrap());
    let mode = std::fs::metadata(&copy).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "mode {mode:o}");
    let restored = Store::open(&copy).unwrap();
    assert_eq!(restored.load_snapshot().unwrap(), store.load_snapshot().unwrap());
    drop(restored);
    assert!(!dir.path().join("copy.db.tmp").exists());

    sync_run(&mut store, DAY, 300..310);
    let err = backup::backup(&path, &copy, false).unwrap_err();
    assert!(err.to_string().contains("pass --force"), "{err}");
    assert_eq!(Store::open(&copy).unwrap().load_snapshot().unwrap().users.len(), 300, "left as it was");
    backup::backup(&path, &copy, true).unwrap();
    assert_eq!(Store::open(&copy).unwrap().load_snapshot().unwrap().users.len(), 310);
    let itself = backup::backup(&path, &dir.path().join("./state.db"), true).unwrap_err();
    assert!(itself.to_string().contains("the state database itself"), "{itself}");
    let missing = backup::backup(&dir.path().join("none.db"), &dir.path().join("x.db"), false).unwrap_err();
    assert!(missing.to_string().contains("no state database"), "{missing}");
}

#[test]
fn retention_is_a_year_unless_set_and_zero_keeps_everything() {
    use crate::support::site::Site;
    let cases = [
        ("", Retention::Days(365)),
        ("retention_days = 30", Retention::Days(30)),
        ("retention_days = 0", Retention::Forever),
    ];
    for (state, want) in cases {
        let site = Site::with_url("http://127.0.0.1:9", "token", "", state);
        let config = scimsync::config::load(&site.config).unwrap_or_else(|e| panic!("{state}: {e}"));
        assert_eq!(config.retention, want, "{state}");
    }
    let site = Site::with_url("http://127.0.0.1:9", "token", "", "retention_days = -1");
    let err = scimsync::config::load(&site.config).unwrap_err().to_string();
    assert!(err.contains("state.retention_days"), "{err}");
}

#[test]
fn a_backup_in_many_steps_beside_a_writer_is_one_commit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let mut store = Store::open(&path).unwrap();
    // About 4,000 pages: the copy takes several steps of 1,024.
    sync_run(&mut store, 0, 0..30_000);
    let stop = std::sync::atomic::AtomicBool::new(false);
    let copy = dir.path().join("copy.db");
    let commits = std::thread::scope(|s| {
        let writer = s.spawn(|| {
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                sync_run(&mut store, DAY, 30_000 + n * 50..30_000 + (n + 1) * 50);
                n += 1;
            }
            n
        });
        std::thread::sleep(std::time::Duration::from_millis(30));
        backup::backup(&path, &copy, false).unwrap();
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        writer.join().unwrap()
    });
    assert!(commits > 0);
    let copy = Store::open(&copy).unwrap();
    let users = copy.load_snapshot().unwrap().users.len();
    // Each commit wrote its users, their audit rows and their counts together.
    assert_eq!(copy.audit(None, u32::MAX).unwrap().len(), users);
    // A copy taken between a batch's journaling and its commit also holds that batch as
    // pending: only the done operations match the users.
    let ops = totals(&copy).1;
    let done = ops.iter().filter(|(_, state, _)| state == "done").map(|(_, _, n)| *n).sum::<u64>();
    assert_eq!(done, users as u64, "{ops:?}");
    let pending = ops.iter().filter(|(_, state, _)| state == "pending").map(|(_, _, n)| *n).sum::<u64>();
    assert!(pending == 0 || pending == 50, "{ops:?}");
    assert_eq!(users % 50, 0);
}
