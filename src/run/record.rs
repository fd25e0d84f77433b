//! How a run is recorded once it ended: its row (outcome, the plan's counts and what the target
//! confirmed, error), the streak of runs stopped by the target's authentication, and the
//! quarantine that follows from them.

use super::Outcome;
use crate::clock::Clock;
use crate::quarantine;
use crate::store::{RunOutcome, Store};
use crate::target::TargetError;

/// Records the end of an applying run and hands its result back.
pub(super) fn finish(
    store: &mut Store,
    rules: &quarantine::Rules,
    run_id: i64,
    result: anyhow::Result<Outcome>,
    clock: Clock,
) -> anyhow::Result<Outcome> {
    if !matches!(&result, Ok(o) if o.outcome == RunOutcome::Quarantined) {
        update_quarantine(store, rules, &result, clock)?;
    }
    match result {
        Ok(outcome) => {
            let error = outcome.report.stopped.clone().or_else(|| {
                if outcome.outcome == RunOutcome::Interrupted {
                    Some(format!(
                        "stopped by a shutdown request with {} operation(s) not sent; the next run sends them",
                        outcome.report.not_started
                    ))
                } else {
                    (!outcome.report.failed.is_empty())
                        .then(|| format!("{} operation(s) failed", outcome.report.failed.len()))
                }
            });
            let summary = summary(&outcome);
            store.finish_run_with(run_id, outcome.outcome, Some(&summary), error.as_deref(), clock())?;
            Ok(outcome)
        }
        Err(e) => {
            store.finish_run(run_id, RunOutcome::Failed, None, Some(&format!("{e:#}")), clock())?;
            Err(e)
        }
    }
}

/// The run record's summary: the plan's counts (as `plan --format json` has them) and, under
/// `applied`, what the operations came to: what the target confirmed and what failed, by kind.
fn summary(outcome: &Outcome) -> serde_json::Value {
    let mut summary = serde_json::to_value(outcome.plan.summary()).expect("summary serialises");
    summary["applied"] = serde_json::to_value(outcome.tally()).expect("tally serialises");
    summary
}

/// Counts the run in the authentication streak and enters, keeps or lifts the quarantine.
fn update_quarantine(
    store: &mut Store,
    rules: &quarantine::Rules,
    result: &anyhow::Result<Outcome>,
    clock: Clock,
) -> anyhow::Result<()> {
    let auth_stopped = match result {
        Ok(o) => o.report.stopped.is_some(),
        Err(e) => e.chain().any(|c| c.downcast_ref::<TargetError>().is_some_and(|t| t.stops_run())),
    };
    let streak = store.bump_auth_streak(auth_stopped)?;
    let run = match result {
        Ok(o) => quarantine::RunResult {
            attempted: o.report.applied + o.report.failed.len() as u64,
            failed: o.report.failed.len() as u64,
            auth_stopped,
        },
        Err(_) => quarantine::RunResult { attempted: 0, failed: 0, auth_stopped },
    };
    let prev = store.quarantine()?;
    let next = quarantine::after_run(rules, prev.as_ref(), run, streak, clock());
    if next != prev {
        match &next {
            Some(q) => {
                tracing::error!(until = q.until, level = q.level, reason = %q.reason, "Quarantined: no writes until the back-off ends or `scimsync approve`.")
            }
            None => tracing::info!("Quarantine lifted after a good run."),
        }
        store.set_quarantine(next.as_ref())?;
    }
    Ok(())
}
