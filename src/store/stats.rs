//! Totals for `status` and the daemon's `/metrics`: both read them here, so they always agree.

use super::{Result, Store};

/// How many runs (or journaled operations) of one kind ended one way.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Count {
    /// Run kind (`sync`, `plan`, …) or operation (`create_user`, …).
    pub kind: String,
    /// Run outcome (`ok`, `held`, …) or journal state (`done`, `failed`, `abandoned`, `pending`).
    pub outcome: String,
    pub count: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Stats {
    /// Finished runs by kind and outcome (runs still going are not counted).
    pub runs: Vec<Count>,
    /// Journaled operations by operation and state.
    pub operations: Vec<Count>,
    /// When the last applying run (`sync`, `apply`, `approve`) ended `ok` or `held`.
    pub last_success: Option<i64>,
    /// Held operations waiting for `approve` (what `status` lists).
    pub held: u64,
}

impl Store {
    pub fn stats(&self) -> Result<Stats> {
        let counts = |sql: &str| -> Result<Vec<Count>> {
            let mut stmt = self.conn.prepare(sql)?;
            let rows = stmt.query_map([], |r| {
                Ok(Count { kind: r.get(0)?, outcome: r.get(1)?, count: r.get::<_, i64>(2)? as u64 })
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        };
        // Pruned runs and resolved journal entries are counted in the totals tables.
        let runs = counts(
            "SELECT kind, outcome, sum(n) FROM (
                 SELECT kind, outcome, count(*) AS n FROM runs WHERE outcome != 'running' GROUP BY 1, 2
                 UNION ALL SELECT kind, outcome, count FROM run_totals)
             GROUP BY 1, 2 ORDER BY 1, 2",
        )?;
        let operations = counts(
            "SELECT kind, state, sum(n) FROM (
                 SELECT coalesce(json_extract(op, '$.op'), '?') AS kind, state, count(*) AS n
                 FROM journal GROUP BY 1, 2
                 UNION ALL SELECT kind, state, count FROM op_totals)
             GROUP BY 1, 2 ORDER BY 1, 2",
        )?;
        let last_success = self.conn.query_row(
            "SELECT max(finished_at) FROM runs
             WHERE kind IN ('sync', 'apply', 'approve') AND outcome IN ('ok', 'held')",
            [],
            |r| r.get(0),
        )?;
        let held: i64 = self.conn.query_row(
            "SELECT count(*) FROM held WHERE released_at IS NULL AND superseded_by IS NULL",
            [],
            |r| r.get(0),
        )?;
        Ok(Stats { runs, operations, last_success, held: held as u64 })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{RunKind, RunOutcome};

    #[test]
    fn runs_are_counted_by_kind_and_outcome_once_finished() {
        let mut store = Store::in_memory().unwrap();
        let a = store.begin_run(RunKind::Sync, 10).unwrap();
        store.finish_run(a, RunOutcome::Ok, None, None, 11).unwrap();
        let b = store.begin_run(RunKind::Sync, 20).unwrap();
        store.finish_run(b, RunOutcome::Failed, None, Some("no"), 21).unwrap();
        let c = store.begin_run(RunKind::Plan, 30).unwrap();
        store.finish_run(c, RunOutcome::Ok, None, None, 31).unwrap();
        store.begin_run(RunKind::Sync, 40).unwrap();
        let s = store.stats().unwrap();
        let runs: Vec<(&str, &str, u64)> =
            s.runs.iter().map(|c| (c.kind.as_str(), c.outcome.as_str(), c.count)).collect();
        assert_eq!(runs, [("plan", "ok", 1), ("sync", "failed", 1), ("sync", "ok", 1)]);
        assert_eq!(s.last_success, Some(11), "plan runs are not applying runs");
        assert_eq!(s.held, 0);
    }
}
