//! Keeping the state database in bounds. A journal entry is deleted in the transaction that
//! resolves it (its audit row or the run's record says the rest); runs and audit entries older
//! than `state.retention_days` are deleted between runs, in small transactions; the pages they
//! held go back to the file system. What they counted for `status` and `/metrics` is kept in
//! `op_totals` and `run_totals`, so those counters never go down.
//!
//! Guarantees: a `pending` journal entry is never deleted, nor the run it belongs to; a run with
//! held operations not yet approved (nor superseded) is kept, and so is the latest run of each
//! kind; no transaction deletes more than [`BATCH`] rows.
//!
//! Caveats: runs and the audit log are pruned from the oldest forward, up to the first run or
//! entry within the retention period: one written while the clock stood further back than an
//! earlier one waits for that one.

use super::{Result, RunKind, Store};
use rusqlite::{params, OptionalExtension, Transaction};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// The most rows one pruning transaction deletes: a few milliseconds of work, so that whatever
/// else opens the database (`plan`, `status`, `backup`) waits no longer than that.
pub const BATCH: i64 = 5_000;

/// Pages given back to the file system per step (4 KiB each: 8 MiB).
const VACUUM_STEP: i64 = 2_048;

/// How long run records and the audit log are kept (`state.retention_days`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retention {
    Forever,
    Days(u32),
}

/// What one [`Store::prune`] removed, and what it cost.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Resolved journal entries (left by versions that kept them).
    pub journal: u64,
    pub runs: u64,
    pub audit: u64,
    /// Pages given back to the file system.
    pub pages: u64,
    /// Transactions that deleted rows.
    pub transactions: u32,
    /// The longest pruning transaction (or vacuum step).
    pub longest: Duration,
}

impl Pruned {
    pub fn is_empty(&self) -> bool {
        self.journal + self.runs + self.audit + self.pages == 0
    }
}

/// Counts resolved journal entries of these operation kinds under `state`, in the transaction
/// that deletes them.
pub(super) fn count_resolved<'a>(
    tx: &Transaction,
    kinds: impl Iterator<Item = &'a str>,
    state: &str,
) -> Result<()> {
    let mut by_kind: BTreeMap<&str, i64> = BTreeMap::new();
    for kind in kinds {
        *by_kind.entry(kind).or_default() += 1;
    }
    add_totals(tx, "op_totals", by_kind.into_iter().map(|(kind, n)| (kind, state, n)))
}

/// Adds counts to `op_totals` or `run_totals`, whose rows are (kind, state or outcome, count).
fn add_totals<'a>(
    tx: &Transaction,
    table: &str,
    counts: impl Iterator<Item = (&'a str, &'a str, i64)>,
) -> Result<()> {
    let mut stmt = tx.prepare_cached(&format!(
        "INSERT INTO {table} VALUES (?1, ?2, ?3)
         ON CONFLICT DO UPDATE SET count = count + excluded.count"
    ))?;
    for (kind, state, n) in counts {
        stmt.execute(params![kind, state, n])?;
    }
    Ok(())
}

impl Store {
    /// Deletes what is no longer kept — resolved journal entries, then runs and audit entries
    /// that ended before `now` minus the retention — one batch per transaction, and gives the
    /// freed pages back (in an `auto_vacuum = INCREMENTAL` database, which new ones are).
    pub fn prune(&mut self, retention: Retention, now: i64) -> Result<Pruned> {
        let mut out = Pruned::default();
        while let n @ 1.. = self.timed(&mut out, prune_journal)? {
            out.journal += n;
        }
        if let Retention::Days(days) = retention {
            let cutoff = now - i64::from(days) * 86_400;
            let mut kept = Vec::new();
            for kind in [RunKind::Plan, RunKind::Sync, RunKind::Apply, RunKind::Approve] {
                let latest = "SELECT max(id) FROM runs WHERE kind = ?1";
                kept.extend(self.conn.query_row(latest, [kind.as_str()], |r| r.get::<_, Option<i64>>(0))?);
            }
            // Both are pruned from the oldest forward, up to the first within the retention.
            let end = self
                .first_since("SELECT id FROM runs WHERE coalesce(finished_at, started_at) >= ?1", cutoff)?;
            while let n @ 1.. = self.timed(&mut out, |tx| prune_runs(tx, end, &kept))? {
                out.runs += n;
            }
            let end = self.first_since("SELECT id FROM audit WHERE at >= ?1", cutoff)?;
            while let n @ 1.. = self.timed(&mut out, |tx| prune_audit(tx, end))? {
                out.audit += n;
            }
        }
        self.give_pages_back(&mut out)?;
        Ok(out)
    }

    /// The first id `select` finds at or after `cutoff`, in id order (scanning from the oldest,
    /// which pruning leaves young); past the last id when there is none.
    fn first_since(&self, select: &str, cutoff: i64) -> Result<i64> {
        let first = self.conn.query_row(&format!("{select} ORDER BY id LIMIT 1"), [cutoff], |r| r.get(0));
        Ok(first.optional()?.unwrap_or(i64::MAX))
    }

    /// Gives the free pages back to the file system, [`VACUUM_STEP`] per transaction, in a
    /// database made with `auto_vacuum = INCREMENTAL` (an older one reuses them for new rows).
    fn give_pages_back(&mut self, out: &mut Pruned) -> Result<()> {
        let free =
            |conn: &rusqlite::Connection| conn.query_row("PRAGMA freelist_count", [], |r| r.get::<_, i64>(0));
        if self.conn.query_row("PRAGMA auto_vacuum", [], |r| r.get::<_, i64>(0))? != 2 {
            return Ok(());
        }
        let mut left = free(&self.conn)?;
        while left > 0 {
            let started = Instant::now();
            self.conn.execute_batch(&format!("PRAGMA incremental_vacuum({VACUUM_STEP})"))?;
            out.longest = out.longest.max(started.elapsed());
            let now_free = free(&self.conn)?;
            if now_free >= left {
                break;
            }
            out.pages += (left - now_free) as u64;
            left = now_free;
        }
        Ok(())
    }

    /// Runs one pruning transaction, timed; the rows it deleted.
    fn timed(&mut self, out: &mut Pruned, f: impl FnOnce(&Transaction) -> Result<u64>) -> Result<u64> {
        let started = Instant::now();
        let tx = self.conn.transaction()?;
        let n = f(&tx)?;
        tx.commit()?;
        out.transactions += u32::from(n > 0);
        out.longest = out.longest.max(started.elapsed());
        Ok(n)
    }
}

/// Up to [`BATCH`] resolved journal entries, counted in `op_totals`.
fn prune_journal(tx: &Transaction) -> Result<u64> {
    let mut stmt = tx.prepare_cached(
        "DELETE FROM journal WHERE id IN (SELECT id FROM journal WHERE state != 'pending' LIMIT ?1)
         RETURNING coalesce(json_extract(op, '$.op'), '?'), state",
    )?;
    let rows: Vec<(String, String)> =
        stmt.query_map([BATCH], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<rusqlite::Result<_>>()?;
    let mut counts: BTreeMap<(&str, &str), i64> = BTreeMap::new();
    for (kind, state) in &rows {
        *counts.entry((kind, state)).or_default() += 1;
    }
    add_totals(tx, "op_totals", counts.into_iter().map(|((k, s), n)| (k, s, n)))?;
    Ok(rows.len() as u64)
}

/// Up to [`BATCH`] runs before the run `end` (the first within the retention), with their held
/// operations (released or superseded), counted in `run_totals` when they had finished. Kept: the
/// runs in `kept` (the latest of each kind), a run with held operations still waiting for
/// `approve`, a run with journal entries.
fn prune_runs(tx: &Transaction, end: i64, kept: &[i64]) -> Result<u64> {
    let kept = kept.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
    let mut stmt = tx.prepare(&format!(
        "SELECT id, kind, outcome FROM runs r
         WHERE id < ?1 AND id NOT IN ({kept})
           AND NOT EXISTS (SELECT 1 FROM held h WHERE h.run_id = r.id
                           AND h.released_at IS NULL AND h.superseded_by IS NULL)
           AND NOT EXISTS (SELECT 1 FROM journal j WHERE j.run_id = r.id)
         ORDER BY id LIMIT ?2",
    ))?;
    let runs: Vec<(i64, String, String)> = stmt
        .query_map(params![end, BATCH], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut counts: BTreeMap<(&str, &str), i64> = BTreeMap::new();
    let mut held = tx.prepare_cached("DELETE FROM held WHERE run_id = ?1")?;
    let mut run = tx.prepare_cached("DELETE FROM runs WHERE id = ?1")?;
    for (id, kind, outcome) in &runs {
        held.execute([id])?;
        run.execute([id])?;
        if outcome != "running" {
            *counts.entry((kind, outcome)).or_default() += 1;
        }
    }
    add_totals(tx, "run_totals", counts.into_iter().map(|((k, o), n)| (k, o, n)))?;
    Ok(runs.len() as u64)
}

/// Up to [`BATCH`] audit entries before the entry `end`, oldest first.
fn prune_audit(tx: &Transaction, end: i64) -> Result<u64> {
    let n = tx
        .prepare_cached(
            "DELETE FROM audit WHERE id IN (SELECT id FROM audit WHERE id < ?1 ORDER BY id LIMIT ?2)",
        )?
        .execute(params![end, BATCH])?;
    Ok(n as u64)
}

/// Prunes the state database at `path` between runs (the daemon after each run, `sync` at its
/// end) and logs what went. A failure is logged, never fatal: the next run prunes again.
pub fn prune_between_runs(path: &std::path::Path, retention: Retention, now: i64) {
    match Store::open(path).and_then(|mut store| store.prune(retention, now)) {
        Ok(p) if p.is_empty() => {}
        Ok(p) => tracing::info!(
            journal = p.journal,
            runs = p.runs,
            audit = p.audit,
            pages = p.pages,
            transactions = p.transactions,
            longest_ms = p.longest.as_millis() as u64,
            "Pruned the state database."
        ),
        Err(e) => tracing::warn!(error = %e, "Pruning the state database failed; the next run tries again."),
    }
}
