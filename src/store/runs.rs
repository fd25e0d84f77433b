//! Runs, held operations and the journal.

use super::{Result, Store, StoreError};
use crate::reconcile::plan::{Op, Plan};
use rusqlite::{params, OptionalExtension};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunKind {
    Plan,
    Sync,
    Apply,
    Approve,
}

impl RunKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RunKind::Plan => "plan",
            RunKind::Sync => "sync",
            RunKind::Apply => "apply",
            RunKind::Approve => "approve",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunOutcome {
    /// Finished; everything planned was applied (or, for `plan`, printed).
    Ok,
    /// Finished, with deprovisioning held by the safety threshold.
    Held,
    /// Finished, but some operations failed.
    Partial,
    /// Aborted (source error, auth failure, …); the reason is in `error`.
    Failed,
    /// Nothing written: the target is quarantined until the back-off ends.
    Quarantined,
    /// Stopped by a shutdown request (SIGTERM) before every operation was sent; what was sent
    /// is committed, the next run sends the rest.
    Interrupted,
}

impl RunOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            RunOutcome::Ok => "ok",
            RunOutcome::Held => "held",
            RunOutcome::Partial => "partial",
            RunOutcome::Failed => "failed",
            RunOutcome::Quarantined => "quarantined",
            RunOutcome::Interrupted => "interrupted",
        }
    }
}

#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct RunRecord {
    pub id: i64,
    pub kind: String,
    pub started_at: i64,
    pub finished_at: Option<i64>,
    pub outcome: String,
    pub summary: Option<serde_json::Value>,
    pub error: Option<String>,
}

/// One audit log entry.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct AuditEntry {
    pub run_id: i64,
    pub at: i64,
    pub activity: String,
    pub key: String,
    pub name: String,
    pub target_id: Option<String>,
    /// The operation as in a plan file's JSON (`{"op": "create_user", …}`).
    pub details: serde_json::Value,
}

#[derive(Clone, Debug, PartialEq)]
pub struct HeldOp {
    pub id: i64,
    pub run_id: i64,
    pub op: Op,
    pub reason: String,
}

/// The audit entries about one name, newest first: a search of the `audit_name` index.
pub(super) const AUDIT_BY_NAME: &str =
    "SELECT run_id, at, activity, object_key, name, target_id, details FROM audit
     WHERE name = ?1 COLLATE NOCASE ORDER BY id DESC LIMIT ?2";

impl Store {
    pub fn begin_run(&mut self, kind: RunKind, now: i64) -> Result<i64> {
        self.conn
            .execute("INSERT INTO runs (kind, started_at) VALUES (?1, ?2)", params![kind.as_str(), now])?;
        Ok(self.conn.last_insert_rowid())
    }

    pub fn finish_run(
        &mut self,
        run_id: i64,
        outcome: RunOutcome,
        plan: Option<&Plan>,
        error: Option<&str>,
        now: i64,
    ) -> Result<()> {
        let summary = plan.map(|p| serde_json::to_value(p.summary()).expect("summary serialises"));
        self.finish_run_with(run_id, outcome, summary.as_ref(), error, now)
    }

    /// [`Store::finish_run`] with the summary the caller made: an applying run's adds what its
    /// operations came to (`applied`) to the plan's counts.
    pub fn finish_run_with(
        &mut self,
        run_id: i64,
        outcome: RunOutcome,
        summary: Option<&serde_json::Value>,
        error: Option<&str>,
        now: i64,
    ) -> Result<()> {
        let summary = summary.map(serde_json::Value::to_string);
        self.conn.execute(
            "UPDATE runs SET finished_at = ?2, outcome = ?3, summary = ?4, error = ?5 WHERE id = ?1",
            params![run_id, now, outcome.as_str(), summary, error],
        )?;
        Ok(())
    }

    /// Records the operations an applying run held, for `status` and `approve`; what earlier
    /// runs held is superseded (each run re-plans from the source).
    pub fn record_held(&mut self, run_id: i64, plan: &Plan) -> Result<()> {
        let tx = self.conn.transaction()?;
        tx.execute(
            "UPDATE held SET superseded_by = ?1 WHERE released_at IS NULL AND superseded_by IS NULL",
            [run_id],
        )?;
        {
            let reason = plan.hold_reason.clone().unwrap_or_default();
            let mut stmt =
                tx.prepare("INSERT INTO held (run_id, seq, op, reason) VALUES (?1, ?2, ?3, ?4)")?;
            for (i, op) in plan.held.iter().enumerate() {
                stmt.execute(params![
                    run_id,
                    i as i64,
                    serde_json::to_string(op).expect("op serialises"),
                    reason
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Held operations not yet released, oldest first.
    pub fn held_ops(&self, run_id: Option<i64>) -> Result<Vec<HeldOp>> {
        let mut stmt = self.conn.prepare(
            "SELECT id, run_id, op, reason FROM held WHERE released_at IS NULL AND superseded_by IS NULL
             AND (?1 IS NULL OR run_id = ?1) ORDER BY run_id, seq",
        )?;
        let rows =
            stmt.query_map([run_id], |r| Ok((r.get(0)?, r.get(1)?, r.get::<_, String>(2)?, r.get(3)?)))?;
        let mut out = Vec::new();
        for row in rows {
            let (id, run_id, op, reason): (i64, i64, String, String) = row?;
            let op = serde_json::from_str(&op).map_err(|e| StoreError::Corrupt {
                what: format!("held operation {id}"),
                message: e.to_string(),
            })?;
            out.push(HeldOp { id, run_id, op, reason });
        }
        Ok(out)
    }

    /// Marks a run's held operations released (after `approve` applied them).
    pub fn release_held(&mut self, run_id: i64, now: i64) -> Result<()> {
        self.conn.execute(
            "UPDATE held SET released_at = ?2 WHERE run_id = ?1 AND released_at IS NULL",
            params![run_id, now],
        )?;
        Ok(())
    }

    pub fn recent_runs(&self, limit: u32) -> Result<Vec<RunRecord>> {
        let mut stmt = self.conn.prepare(
            "SELECT id, kind, started_at, finished_at, outcome, summary, error FROM runs ORDER BY id DESC LIMIT ?1",
        )?;
        let rows = stmt.query_map([limit], |r| {
            let summary: Option<String> = r.get(5)?;
            Ok(RunRecord {
                id: r.get(0)?,
                kind: r.get(1)?,
                started_at: r.get(2)?,
                finished_at: r.get(3)?,
                outcome: r.get(4)?,
                summary: summary.and_then(|s| serde_json::from_str(&s).ok()),
                error: r.get(6)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn run(&self, id: i64) -> Result<Option<RunRecord>> {
        Ok(self.recent_runs(u32::MAX)?.into_iter().find(|r| r.id == id))
    }

    /// Journals an operation before it is sent; returns the entry id.
    pub fn journal_begin(&mut self, run_id: i64, seq: i64, op: &Op, now: i64) -> Result<i64> {
        Ok(self.journal_begin_many(run_id, &[(seq, op)], now)?[0])
    }

    /// [`Store::journal_begin`] for operations about to be sent together, in one transaction;
    /// their journal ids in order.
    pub fn journal_begin_many(&mut self, run_id: i64, ops: &[(i64, &Op)], now: i64) -> Result<Vec<i64>> {
        self.commit_and_journal(run_id, &[], ops, now)
    }

    /// Resolves a journal entry as `failed` (or `abandoned`): the entry is deleted and counted
    /// under that state in the totals `status` and `/metrics` show. Why it failed is the run's
    /// to report (logged, and counted in its record); the journal keeps only what is unresolved.
    pub fn journal_fail(&mut self, id: i64, state: &str) -> Result<()> {
        self.journal_fail_many(&[id], state)
    }

    /// [`Store::journal_fail`] for many entries, in one transaction.
    pub fn journal_fail_many(&mut self, ids: &[i64], state: &str) -> Result<()> {
        let tx = self.conn.transaction()?;
        {
            let mut kind =
                tx.prepare("SELECT coalesce(json_extract(op, '$.op'), '?') FROM journal WHERE id = ?1")?;
            let mut delete = tx.prepare("DELETE FROM journal WHERE id = ?1")?;
            let mut kinds = Vec::with_capacity(ids.len());
            for id in ids {
                if let Some(k) = kind.query_row([id], |r| r.get::<_, String>(0)).optional()? {
                    kinds.push(k);
                }
                delete.execute([id])?;
            }
            super::prune::count_resolved(&tx, kinds.iter().map(String::as_str), state)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Journal entries that were sent (or about to be) when a previous process stopped.
    pub fn journal_pending(&self) -> Result<Vec<(i64, Op)>> {
        let mut stmt = self.conn.prepare("SELECT id, op FROM journal WHERE state = 'pending' ORDER BY id")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?;
        let mut out = Vec::new();
        for row in rows {
            let (id, op) = row?;
            let op = serde_json::from_str(&op).map_err(|e| StoreError::Corrupt {
                what: format!("journal entry {id}"),
                message: e.to_string(),
            })?;
            out.push((id, op));
        }
        Ok(out)
    }

    /// The audit log, newest first; `name` filters by userName or displayName (any case).
    pub fn audit(&self, name: Option<&str>, limit: u32) -> Result<Vec<AuditEntry>> {
        // Two statements, not `?1 IS NULL OR name = ?1`: SQLite cannot use the name index for
        // that condition and would scan the whole log (millions of rows after a large first sync).
        let mut stmt = self.conn.prepare(match name {
            Some(_) => AUDIT_BY_NAME,
            None => {
                "SELECT run_id, at, activity, object_key, name, target_id, details FROM audit
                 WHERE ?1 IS NULL ORDER BY id DESC LIMIT ?2"
            }
        })?;
        let mut rows = stmt.query(params![name, limit])?;
        let mut entries = Vec::new();
        while let Some(r) = rows.next()? {
            let key: String = r.get(3)?;
            entries.push(AuditEntry {
                run_id: r.get(0)?,
                at: r.get(1)?,
                activity: r.get(2)?,
                details: super::snapshot::audit_details(&key, r.get_ref(6)?)?,
                key,
                name: r.get(4)?,
                target_id: r.get(5)?,
            });
        }
        Ok(entries)
    }

    /// Journal entries by state, for `status`.
    pub fn journal_counts(&self) -> Result<Vec<(String, i64)>> {
        let mut stmt =
            self.conn.prepare("SELECT state, count(*) FROM journal GROUP BY state ORDER BY state")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Managed users missing from the source but within their grace period:
    /// `(userName, missing since, runs missing)`.
    pub fn pending_deprovision(&self) -> Result<Vec<(String, i64, u32)>> {
        let mut stmt = self.conn.prepare(
            "SELECT key, attrs, missing_since, missing_runs FROM users WHERE missing_since IS NOT NULL",
        )?;
        let mut rows = stmt.query([])?;
        let mut pending = Vec::new();
        while let Some(r) = rows.next()? {
            let key = crate::model::SourceKey(r.get(0)?);
            let attrs = super::snapshot::stored_attrs(&key, r.get_ref(1)?)?;
            let name = attrs.get(&crate::model::Attr::UserName).unwrap_or_default().to_owned();
            pending.push((name, r.get(2)?, r.get(3)?));
        }
        pending.sort();
        Ok(pending)
    }

    pub fn quarantine(&self) -> Result<Option<crate::quarantine::State>> {
        Ok(self
            .conn
            .query_row("SELECT since, until, level, reason FROM quarantine WHERE id = 1", [], |r| {
                Ok(crate::quarantine::State {
                    since: r.get(0)?,
                    until: r.get(1)?,
                    level: r.get(2)?,
                    reason: r.get(3)?,
                })
            })
            .optional()?)
    }

    pub fn set_quarantine(&mut self, state: Option<&crate::quarantine::State>) -> Result<()> {
        match state {
            None => self.conn.execute("DELETE FROM quarantine", [])?,
            Some(q) => self.conn.execute(
                "INSERT INTO quarantine (id, since, until, level, reason) VALUES (1, ?1, ?2, ?3, ?4)
                 ON CONFLICT (id) DO UPDATE SET since = ?1, until = ?2, level = ?3, reason = ?4",
                params![q.since, q.until, q.level, q.reason],
            )?,
        };
        Ok(())
    }

    /// Consecutive runs stopped by 401/403, after recording whether this one was.
    pub fn bump_auth_streak(&mut self, stopped_by_auth: bool) -> Result<u32> {
        let sql = if stopped_by_auth {
            "UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'auth_streak'"
        } else {
            "UPDATE meta SET value = '0' WHERE key = 'auth_streak'"
        };
        self.conn.execute(sql, [])?;
        let v: String =
            self.conn.query_row("SELECT value FROM meta WHERE key = 'auth_streak'", [], |r| r.get(0))?;
        Ok(v.parse().unwrap_or(0))
    }

    pub fn last_run_id(&self) -> Result<Option<i64>> {
        Ok(self.conn.query_row("SELECT max(id) FROM runs", [], |r| r.get(0)).optional()?.flatten())
    }
}

/// Journals operations as pending in the transaction; their journal ids in order.
pub(super) fn journal_in(
    tx: &rusqlite::Transaction,
    run_id: i64,
    ops: &[(i64, &Op)],
    now: i64,
) -> Result<Vec<i64>> {
    let mut ids = Vec::with_capacity(ops.len());
    let mut stmt = tx.prepare_cached(
        "INSERT INTO journal (run_id, seq, op, state, created_at, updated_at) VALUES (?1, ?2, ?3, 'pending', ?4, ?4)",
    )?;
    for (seq, op) in ops {
        stmt.execute(params![run_id, seq, serde_json::to_string(op).expect("op serialises"), now])?;
        ids.push(tx.last_insert_rowid());
    }
    Ok(ids)
}
