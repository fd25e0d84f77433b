//! One run, whatever starts it (`plan`, `sync`, `apply`, `approve`, the daemon):
//! **prepare** (read the source, map it, load the snapshot, plan: `prepare.rs`) →
//! **apply** (recover the journal, execute the plan: `apply.rs`) →
//! **record** (the run's row, the quarantine after it: `record.rs`) →
//! **tell** (what changed, to the people `[notify]` names: `notice.rs`).
//!
//! A run is async on its caller's runtime and reads time from its caller's clock. It fails
//! closed at every step: a source it cannot trust gives no plan; an error ends the run recorded
//! as failed.

mod apply;
mod notice;
mod prepare;
mod record;
mod saved;
mod target;

pub use apply::{Mode, Options, Outcome};
pub use prepare::{prepare, read_desired, Prepared};
pub use saved::{fingerprint, Fingerprint, SavedPlan};
pub use target::{connect, TokenExpiry};

use crate::clock::Clock;
use crate::config::Config;
use crate::reconcile::Policy;
use crate::store::{RunKind, RunOutcome, Store};
use anyhow::Context as _;

/// A run of one config with one clock.
#[derive(Clone, Copy)]
pub struct Run<'a> {
    config: &'a Config,
    clock: Clock,
}

impl<'a> Run<'a> {
    pub fn new(config: &'a Config, clock: Clock) -> Run<'a> {
        Run { config, clock }
    }

    /// The planner's policy for a run starting now: the config's, with the time and whether an
    /// update carries its user, to create it again if the target lost it (`target.on_missing`).
    fn policy(&self) -> Policy {
        let mut policy = self.config.policy.clone();
        policy.now = (self.clock)();
        policy.recreate_missing = self.config.target.recreate_missing;
        policy
    }

    fn open_store(&self) -> anyhow::Result<Store> {
        Store::open(&self.config.state_path).context("opening the state database")
    }

    /// A dry run (`plan`): read, map and plan, recorded as a run that changed nothing. The
    /// caller reports the plan, then [`DryRun::finish`]es it; a failure to prepare is recorded
    /// here.
    pub async fn plan(&self) -> anyhow::Result<DryRun> {
        let mut store = self.open_store()?;
        let started = (self.clock)();
        let run_id = store.begin_run(RunKind::Plan, started)?;
        match prepare(self.config, &store, &self.policy()).await {
            Ok(prepared) => Ok(DryRun { store, run_id, prepared, clock: self.clock }),
            Err(e) => {
                store.finish_run(
                    run_id,
                    RunOutcome::Failed,
                    None,
                    Some(&format!("{e:#}")),
                    (self.clock)(),
                )?;
                Err(e)
            }
        }
    }
}

/// A planned dry run, waiting for its report to be written.
pub struct DryRun {
    store: Store,
    run_id: i64,
    pub prepared: Prepared,
    clock: Clock,
}

impl DryRun {
    /// The fingerprint a saved plan carries (`apply` checks it).
    pub fn fingerprint(&self) -> anyhow::Result<Fingerprint> {
        fingerprint(&self.prepared, &self.store)
    }

    /// Records the run (held when the plan holds deprovisioning, ok otherwise) and hands back
    /// what it prepared, for the caller to drop when it suits it.
    pub fn finish(mut self) -> anyhow::Result<Prepared> {
        let plan = &self.prepared.plan;
        let outcome = if plan.is_held() { RunOutcome::Held } else { RunOutcome::Ok };
        self.store.finish_run(self.run_id, outcome, Some(plan), None, (self.clock)())?;
        Ok(self.prepared)
    }
}
