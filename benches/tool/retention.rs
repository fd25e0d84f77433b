//! `scimsync-bench retention` — for benchmarks only: how large the state database grows over a
//! simulated year of daemon runs, through the store API and without a target. Two databases
//! are written side by side in DIR:
//!
//! - `unpruned.db`, as versions before pruning kept it: no `auto_vacuum`, every journal entry
//!   kept (`done`) beside its audit row, every run and audit entry kept;
//! - `pruned.db`, as now: journal entries deleted as resolved, and `Store::prune` with
//!   `retention_days = 365` after every run, as the daemon does.
//!
//! A first sync creates USERS users (journaled ahead and committed in transactions of 64, as the
//! executor does); then RUNS runs follow, one every 15 minutes, each with a run record; once a day
//! one of them applies the day's churn (CHURN % of the users a week, half leaving — deactivated —
//! and half joining). Prints one `key=value` line per measurement.
//!
//! ```text
//! scimsync-bench retention --dir /dev/shm/ret --users 100000 [--runs 35040] [--churn 1]
//! ```

use anyhow::Context as _;
use scimsync::model::{Attr, DesiredUser, SourceKey};
use scimsync::reconcile::plan::{Op, Plan, Reason};
use scimsync::store::{Confirmed, Retention, RunKind, RunOutcome, Store};
use std::path::PathBuf;
use std::time::{Duration, Instant};

const QUARTER_HOUR: i64 = 900;
const RUNS_A_DAY: u64 = 96;
/// Operations per transaction, as the executor journals ahead (8 per slot, 8 slots).
const CHUNK: usize = 64;

struct Db {
    store: Store,
    path: PathBuf,
    /// The journal as older versions kept it (`None`: entries go as they are resolved).
    legacy: Option<rusqlite::Connection>,
}

impl Db {
    /// Commits `ops` the executor's way: each chunk journaled, then confirmed with the next.
    fn apply(&mut self, run: i64, ops: &[Op], now: i64) -> anyhow::Result<()> {
        let ids = vec![Some("00000000-target-id-0000-000000000000"); ops.len()];
        let mut journaled: Vec<i64> = Vec::new();
        let mut previous: &[Op] = &[];
        for (i, chunk) in ops.chunks(CHUNK).chain(std::iter::once(&[][..])).enumerate() {
            let confirmed: Vec<Confirmed> = previous
                .iter()
                .zip(&journaled)
                .map(|(op, id)| Confirmed { journal_id: Some(*id), op, target_id: ids[0] })
                .collect();
            let sends: Vec<(i64, &Op)> =
                chunk.iter().enumerate().map(|(j, op)| ((i * CHUNK + j) as i64, op)).collect();
            journaled = self.store.commit_and_journal(run, &confirmed, &sends, now)?;
            if let Some(conn) = &self.legacy {
                keep_journal(conn, run, previous, now)?;
            }
            previous = chunk;
        }
        Ok(())
    }

    /// The file's size once the WAL is checkpointed into it (as after the daemon stops).
    fn bytes(&self) -> anyhow::Result<u64> {
        let conn = rusqlite::Connection::open(&self.path)?;
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(std::fs::metadata(&self.path)?.len())
    }
}

/// What an older version left in the journal for these confirmed operations: `done` entries.
fn keep_journal(conn: &rusqlite::Connection, run: i64, ops: &[Op], now: i64) -> anyhow::Result<()> {
    conn.execute_batch("BEGIN")?;
    {
        let mut stmt = conn.prepare_cached(
            "INSERT INTO journal (run_id, seq, op, state, target_id, created_at, updated_at)
             VALUES (?1, ?2, ?3, 'done', ?4, ?5, ?5)",
        )?;
        for (seq, op) in ops.iter().enumerate() {
            let text = serde_json::to_string(op)?;
            stmt.execute(rusqlite::params![
                run,
                seq as i64,
                text,
                "00000000-target-id-0000-000000000000",
                now
            ])?;
        }
    }
    conn.execute_batch("COMMIT")?;
    Ok(())
}

fn user(i: u64) -> DesiredUser {
    let key = format!("{:08x}-{:04x}-4000-8000-{:012x}", i.wrapping_mul(2_654_435_761) as u32, i % 65_536, i);
    DesiredUser::builder(key.as_str(), &format!("user{i:07}@example.com"))
        .origin("people.ldif:1")
        .attr(Attr::GivenName, "Given")
        .attr(Attr::FamilyName, format!("Family{i}"))
        .attr(Attr::DisplayName, format!("Given Family{i}"))
        .attr(Attr::WorkEmail, format!("user{i:07}@example.com"))
        .attr(Attr::Title, "Engineer")
        .build()
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

pub fn main(mut args: impl Iterator<Item = String>) -> anyhow::Result<()> {
    let usage = "usage: scimsync-bench retention --dir DIR --users N [--runs 35040] [--churn 1]";
    let (mut dir, mut users, mut runs, mut churn) = (None, None, 35_040u64, 1.0f64);
    while let Some(a) = args.next() {
        let mut value = || args.next().with_context(|| format!("{a} needs a value; {usage}"));
        match a.as_str() {
            "--dir" => dir = Some(PathBuf::from(value()?)),
            "--users" => users = Some(value()?.parse::<u64>()?),
            "--runs" => runs = value()?.parse()?,
            "--churn" => churn = value()?.parse()?,
            other => anyhow::bail!("unknown argument {other:?}; {usage}"),
        }
    }
    let (dir, users) = (dir.context(usage)?, users.context(usage)?);
    std::fs::create_dir_all(&dir)?;
    let open = |name: &str, legacy: bool| -> anyhow::Result<Db> {
        let path = dir.join(name);
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
        if legacy {
            // A database made before `auto_vacuum = INCREMENTAL`: the setting is fixed once
            // the file has been written.
            let conn = rusqlite::Connection::open(&path)?;
            conn.execute_batch("PRAGMA auto_vacuum = NONE; CREATE TABLE x (a); DROP TABLE x;")?;
        }
        let store = Store::open(&path)?;
        let legacy = legacy.then(|| rusqlite::Connection::open(&path)).transpose()?;
        Ok(Db { store, path, legacy })
    };
    let mut dbs = [open("unpruned.db", true)?, open("pruned.db", false)?];
    let start = 1_700_000_000;

    // The first sync.
    let creates: Vec<Op> = (0..users).map(|i| Op::CreateUser { user: user(i) }).collect();
    for db in &mut dbs {
        let t = Instant::now();
        let run = db.store.begin_run(RunKind::Sync, start)?;
        db.apply(run, &creates, start)?;
        db.store.finish_run(run, RunOutcome::Ok, Some(&plan_of(&creates)), None, start + 60)?;
        let secs = t.elapsed().as_secs_f64();
        println!(
            "first_sync db={} users={users} mb={:.1} secs={secs:.1}",
            db.path.display(),
            mb(db.bytes()?)
        );
    }
    drop(creates);
    vacuum_cost(&dbs[0])?;

    // The year: a run every 15 minutes; the day's churn in one of them.
    let per_day = (users as f64 * churn / 100.0 / 7.0 / 2.0).round() as u64;
    let (mut next_user, mut next_leaver) = (users, 0u64);
    let mut prune_time = Duration::ZERO;
    let mut longest = Duration::ZERO;
    let mut transactions = 0u64;
    let t = Instant::now();
    for n in 1..=runs {
        let at = start + n as i64 * QUARTER_HOUR;
        let ops: Vec<Op> = if n % RUNS_A_DAY == 0 {
            let joins = (next_user..next_user + per_day).map(|i| Op::CreateUser { user: user(i) });
            let leaves = (next_leaver..next_leaver + per_day).map(|i| {
                let u = user(i);
                Op::DeactivateUser {
                    key: SourceKey(u.key.0.clone()),
                    user_name: u.user_name().to_owned(),
                    reason: Reason::Missing,
                }
            });
            let ops = joins.chain(leaves).collect();
            next_user += per_day;
            next_leaver += per_day;
            ops
        } else {
            Vec::new()
        };
        for (i, db) in dbs.iter_mut().enumerate() {
            let run = db.store.begin_run(RunKind::Sync, at)?;
            db.apply(run, &ops, at)?;
            db.store.finish_run(run, RunOutcome::Ok, Some(&plan_of(&ops)), None, at + 5)?;
            if i == 1 {
                let started = Instant::now();
                let p = db.store.prune(Retention::Days(365), at + 5)?;
                prune_time += started.elapsed();
                longest = longest.max(p.longest);
                transactions += u64::from(p.transactions);
            }
        }
    }
    let secs = t.elapsed().as_secs_f64();
    let [unpruned, pruned] = &dbs;
    let (u, p) = (unpruned.bytes()?, pruned.bytes()?);
    println!(
        "after runs={runs} days={} churn_pct_week={churn} unpruned_mb={:.1} pruned_mb={:.1} ratio={:.2} secs={secs:.0}",
        runs / RUNS_A_DAY,
        mb(u),
        mb(p),
        u as f64 / p as f64
    );
    println!(
        "prune calls={runs} total_s={:.1} per_call_ms={:.2} transactions={transactions} longest_ms={:.1}",
        prune_time.as_secs_f64(),
        prune_time.as_secs_f64() * 1e3 / runs.max(1) as f64,
        longest.as_secs_f64() * 1e3
    );
    // An existing database upgraded: its first prune, with the journal it kept.
    let [unpruned, _] = &mut dbs;
    unpruned.legacy = None;
    let t = Instant::now();
    let p = unpruned.store.prune(Retention::Days(365), start + runs as i64 * QUARTER_HOUR)?;
    let free: i64 =
        rusqlite::Connection::open(&unpruned.path)?.query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
    println!(
        "upgrade_prune journal={} runs={} audit={} transactions={} longest_ms={:.1} secs={:.1} free_mb={:.1} file_mb={:.1}",
        p.journal,
        p.runs,
        p.audit,
        p.transactions,
        p.longest.as_secs_f64() * 1e3,
        t.elapsed().as_secs_f64(),
        mb(free as u64 * 4096),
        mb(unpruned.bytes()?)
    );
    Ok(())
}

fn plan_of(ops: &[Op]) -> Plan {
    Plan { ops: ops.to_vec(), ..Plan::default() }
}

/// What switching an existing database to `auto_vacuum = INCREMENTAL` costs: `VACUUM` on a copy.
fn vacuum_cost(db: &Db) -> anyhow::Result<()> {
    let copy = db.path.with_extension("vacuum.db");
    let conn = rusqlite::Connection::open(&db.path)?;
    conn.execute_batch(&format!("VACUUM INTO '{}'", copy.display()))?;
    drop(conn);
    let conn = rusqlite::Connection::open(&copy)?;
    let t = Instant::now();
    conn.execute_batch("PRAGMA auto_vacuum = INCREMENTAL; VACUUM;")?;
    let secs = t.elapsed().as_secs_f64();
    drop(conn);
    let bytes = std::fs::metadata(&copy)?.len();
    println!("vacuum_to_incremental db_mb={:.1} secs={secs:.1}", mb(bytes));
    std::fs::remove_file(&copy)?;
    Ok(())
}
