//! What a finished applying run tells people (`[notify]`): the state it left, as
//! [`notify::Now`]; `notify` decides what is news and sends it.

use super::{Outcome, Run, TokenExpiry};
use crate::config::{Config, DEFAULT_PATH};
use crate::notify::{self, FailureClass, Hold, Now, RunState};
use crate::source::SourceError;
use crate::store::{RunOutcome, Store};
use crate::target::TargetError;
use sha2::{Digest as _, Sha256};

/// How many held objects a message names at most.
const NAMES_SHOWN: usize = 3;

/// Tells what the run changed. Never fails the run: problems are logged and counted. A
/// `manual` run (`apply`, `approve`) refused for a reason of its own (a plan that no longer
/// fits, a run that holds nothing) is no failure to tell: whoever ran it reads why.
pub(super) async fn tell(
    run: &Run<'_>,
    store: &mut Store,
    run_id: i64,
    result: &anyhow::Result<Outcome>,
    manual: bool,
) {
    let config = run.config;
    if config.notify.is_empty() {
        return;
    }
    let quarantine = match store.quarantine() {
        Ok(q) => q,
        Err(e) => {
            tracing::warn!(error = %e, "Cannot read the quarantine state; notifying nothing this run.");
            return;
        }
    };
    let state = match run_state(result) {
        RunState::Failed { class: FailureClass::Other, .. } if manual => RunState::Neither,
        state => state,
    };
    let now = Now {
        run_id,
        run: state,
        held: held(result, config),
        quarantine,
        token_days_left: TokenExpiry::of(&config.target, (run.clock)()).map(|e| e.days_left),
    };
    notify::after_run(&config.notify, store, &now).await;
}

fn run_state(result: &anyhow::Result<Outcome>) -> RunState {
    match result {
        Ok(o) => match o.outcome {
            RunOutcome::Ok | RunOutcome::Held | RunOutcome::Partial => RunState::Completed,
            RunOutcome::Interrupted | RunOutcome::Quarantined => RunState::Neither,
            // Stopped by the target's authentication, as the quarantine counts it.
            RunOutcome::Failed => RunState::Failed {
                class: FailureClass::Refused,
                detail: o.report.stopped.clone().unwrap_or_default(),
            },
        },
        Err(e) => {
            let refused =
                e.chain().any(|c| matches!(c.downcast_ref::<TargetError>(), Some(TargetError::Auth { .. })));
            let source = e.chain().any(|c| c.downcast_ref::<SourceError>().is_some());
            let class = match (refused, source) {
                (true, _) => FailureClass::Refused,
                (false, true) => FailureClass::Source,
                (false, false) => FailureClass::Other,
            };
            RunState::Failed { class, detail: format!("{e:#}") }
        }
    }
}

/// The run's hold: `None` when it planned nothing to judge by.
fn held(result: &anyhow::Result<Outcome>, config: &Config) -> Option<Option<Hold>> {
    let o = result.as_ref().ok().filter(|o| o.outcome != RunOutcome::Quarantined)?;
    if !o.plan.is_held() {
        return Some(None);
    }
    let mut lines: Vec<String> =
        o.plan.held.iter().map(|op| format!("{}\t{}\n", op.kind(), op.key().0)).collect();
    lines.sort_unstable();
    let mut digest = Sha256::new();
    for line in &lines {
        digest.update(line.as_bytes());
    }
    Some(Some(Hold {
        run_id: o.run_id,
        count: o.plan.held.len(),
        digest: format!("{:x}", digest.finalize()),
        reason: o.plan.hold_reason.clone().unwrap_or_default(),
        names: o.plan.held.iter().take(NAMES_SHOWN).map(|op| op.label().to_owned()).collect(),
        approve: approve_command(o.run_id, config.path.as_deref()),
    }))
}

/// `scimsync approve RUN`, with `--config PATH` when the config is not at the default path.
fn approve_command(run_id: i64, config: Option<&std::path::Path>) -> String {
    match config.filter(|p| *p != std::path::Path::new(DEFAULT_PATH)) {
        None => format!("scimsync approve {run_id}"),
        Some(path) => {
            let path = path.display().to_string();
            let plain = path.chars().all(|c| c.is_ascii_alphanumeric() || "/._-+=:,@".contains(c));
            let quoted = if plain { path } else { format!("'{}'", path.replace('\'', r"'\''")) };
            format!("scimsync approve {run_id} --config {quoted}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn the_approve_command_names_the_config_unless_it_is_the_default() {
        assert_eq!(approve_command(7, None), "scimsync approve 7");
        assert_eq!(approve_command(7, Some(Path::new(DEFAULT_PATH))), "scimsync approve 7");
        assert_eq!(
            approve_command(7, Some(Path::new("/srv/s.toml"))),
            "scimsync approve 7 --config /srv/s.toml"
        );
        assert_eq!(
            approve_command(8, Some(Path::new("/srv/my conf's.toml"))),
            r"scimsync approve 8 --config '/srv/my conf'\''s.toml'"
        );
    }

    #[test]
    fn a_failed_run_is_classed_by_its_cause() {
        let source: anyhow::Result<Outcome> =
            Err(anyhow::Error::new(SourceError::Changed("people.ldif".into()))
                .context("reading the source failed; nothing was planned or applied"));
        assert!(matches!(run_state(&source), RunState::Failed { class: FailureClass::Source, .. }));
        let refused: anyhow::Result<Outcome> =
            Err(anyhow::Error::new(TargetError::Auth { status: 401, message: "renew".into() })
                .context("listing"));
        assert!(matches!(run_state(&refused), RunState::Failed { class: FailureClass::Refused, .. }));
        let other: anyhow::Result<Outcome> = Err(anyhow::anyhow!("opening the state database"));
        assert!(matches!(run_state(&other), RunState::Failed { class: FailureClass::Other, .. }));
    }
}
