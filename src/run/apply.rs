//! An applying run (`sync`, `apply PLANFILE`, `approve RUN`, each daemon run): recover the
//! journal, plan, check what the mode requires, execute, and say how it went.

use super::{connect, notice, prepare, record, saved, Prepared, Run, SavedPlan, TokenExpiry};
use crate::executor::{self, ExecOptions, Ids, Report, Tally};
use crate::quarantine;
use crate::reconcile::plan::{Op, Plan};
use crate::store::{RunKind, RunOutcome, Store};
use crate::target::{ClientOptions, TargetClient};
use anyhow::bail;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tracing::Instrument as _;

/// What the caller wants from this run beyond a plain sync.
#[derive(Clone, Debug, Default)]
pub enum Mode {
    #[default]
    Sync,
    /// Apply a saved plan if the source and snapshot still match its fingerprint.
    Apply(Box<SavedPlan>),
    /// Release the operations held by this run.
    Approve(i64),
}

impl Mode {
    fn run_kind(&self) -> RunKind {
        match self {
            Mode::Sync => RunKind::Sync,
            Mode::Apply(_) => RunKind::Apply,
            Mode::Approve(_) => RunKind::Approve,
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct Options {
    pub mode: Mode,
    pub stop: Arc<AtomicBool>,
    pub client: ClientOptions,
    /// Set (with the reason) when this run's read may be incomplete: it removes nothing
    /// ([`crate::reconcile::Policy::unconfirmed`]).
    pub unconfirmed: Option<String>,
}

/// The result of one applying run.
#[derive(Debug)]
pub struct Outcome {
    pub run_id: i64,
    pub outcome: RunOutcome,
    pub plan: Plan,
    pub report: Report,
    pub recovered: u64,
    /// Source records read (before mapping).
    pub records_read: u64,
}

impl Outcome {
    /// What the run's operations came to, as its summary line and its record say it.
    pub fn tally(&self) -> Tally {
        self.report.tally(self.recovered)
    }
}

/// Whether a quarantine lets this run write.
enum Gate {
    Open,
    /// An approval lifted the quarantine.
    Lifted,
    /// Quarantined: the run writes nothing.
    Closed(quarantine::State),
}

impl Run<'_> {
    /// One applying run. An error that aborts it is recorded in its run record and returned.
    /// Everything it logs is in a `run` span carrying the run id.
    pub async fn apply(&self, opts: Options) -> anyhow::Result<Outcome> {
        let mut store = self.open_store()?;
        let kind = opts.mode.run_kind();
        let run_id = store.begin_run(kind, (self.clock)())?;
        let span = tracing::info_span!("run", run = run_id, kind = kind.as_str());
        let result = self.applying(&mut store, run_id, &opts).instrument(span.clone()).await;
        let result =
            span.in_scope(|| record::finish(&mut store, &self.config.quarantine, run_id, result, self.clock));
        // Told after the record, so a notification can neither fail nor change it.
        let manual = matches!(opts.mode, Mode::Apply(_) | Mode::Approve(_));
        notice::tell(self, &mut store, run_id, &result, manual).instrument(span).await;
        result
    }

    async fn applying(&self, store: &mut Store, run_id: i64, opts: &Options) -> anyhow::Result<Outcome> {
        if let Some(expiry) = TokenExpiry::of(&self.config.target, (self.clock)()) {
            expiry.warn();
        }
        let lifted = match self.gate(store, &opts.mode)? {
            Gate::Open => false,
            Gate::Lifted => true,
            Gate::Closed(q) => {
                let report = Report { stopped: Some(q.message()), ..Report::default() };
                return Ok(Outcome {
                    run_id,
                    outcome: RunOutcome::Quarantined,
                    plan: Plan::default(),
                    report,
                    recovered: 0,
                    records_read: 0,
                });
            }
        };
        let client = connect(self.config, opts.client.clone())?;
        let recovery = executor::recover(store, &client, run_id, self.clock).await?;
        if recovery.resolved + recovery.abandoned > 0 {
            tracing::info!(
                resolved = recovery.resolved,
                abandoned = recovery.abandoned,
                "Recovered the journal."
            );
        }
        let prepared = self.plan_for(store, opts, lifted).await?;
        let plan = &prepared.plan;
        store.record_held(run_id, plan)?;
        if plan.is_held() {
            tracing::warn!(
                held = plan.held.len(),
                reason = plan.hold_reason.as_deref().unwrap_or(""),
                "Deprovisioning held."
            );
        }
        if !prepared.plan.ops.is_empty() {
            // Only a run that writes asks the target how: an unchanged source sends nothing.
            client.discover().await;
        }
        let report = self.execute(store, &client, run_id, &prepared, &opts.stop).await?;
        // A stop request leaves operations unsent: the run is interrupted, not finished.
        let interrupted = opts.stop.load(Ordering::SeqCst) && report.not_started > 0;
        if let Mode::Approve(run) = opts.mode {
            if report.stopped.is_none() && report.failed.is_empty() && !interrupted {
                store.release_held(run, (self.clock)())?;
            }
        }
        let outcome = if report.stopped.is_some() {
            RunOutcome::Failed
        } else if interrupted {
            RunOutcome::Interrupted
        } else if !report.failed.is_empty() {
            RunOutcome::Partial
        } else if plan.is_held() {
            RunOutcome::Held
        } else {
            RunOutcome::Ok
        };
        let records_read = prepared.desired.records_read;
        Ok(Outcome {
            run_id,
            outcome,
            plan: prepared.plan,
            report,
            recovered: recovery.resolved,
            records_read,
        })
    }

    /// An approval lifts a quarantine; otherwise an active one closes the run.
    fn gate(&self, store: &mut Store, mode: &Mode) -> anyhow::Result<Gate> {
        let Some(q) = store.quarantine()? else { return Ok(Gate::Open) };
        if matches!(mode, Mode::Approve(_)) {
            tracing::info!(reason = %q.reason, "Quarantine lifted by approval.");
            store.set_quarantine(None)?;
            Ok(Gate::Lifted)
        } else if q.active((self.clock)()) {
            tracing::warn!(until = q.until, reason = %q.reason, "Quarantined: this run writes nothing.");
            Ok(Gate::Closed(q))
        } else {
            Ok(Gate::Open)
        }
    }

    /// The plan this run applies: a fresh one, the saved one if it still fits, or a fresh one
    /// that an approval covers.
    async fn plan_for(&self, store: &Store, opts: &Options, lifted: bool) -> anyhow::Result<Prepared> {
        let mut policy = self.policy();
        policy.approved = matches!(opts.mode, Mode::Approve(_));
        policy.unconfirmed = opts.unconfirmed.clone();
        let mut prepared = prepare(self.config, store, &policy).await?;
        match &opts.mode {
            Mode::Sync => {}
            Mode::Apply(saved) => {
                let current = saved::fingerprint(&prepared, store)?;
                if current != saved.fingerprint {
                    bail!(
                        "the source or the snapshot changed since this plan was made (plan: {:?}, now: {:?}): make a new plan with `scimsync plan --format json --out FILE`",
                        saved.fingerprint,
                        current
                    );
                }
                prepared.plan = saved.plan.clone();
            }
            // Approving a quarantine alone (nothing held) only lifts it.
            Mode::Approve(run) if lifted && store.held_ops(Some(*run))?.is_empty() => {}
            Mode::Approve(run) => check_approval(store, *run, &prepared.plan)?,
        }
        Ok(prepared)
    }

    /// Sends the plan's operations and, unless the run was stopped, records which managed users
    /// the source still has.
    async fn execute(
        &self,
        store: &mut Store,
        client: &TargetClient,
        run_id: i64,
        prepared: &Prepared,
        stop: &Arc<AtomicBool>,
    ) -> anyhow::Result<Report> {
        let plan = &prepared.plan;
        let target = &self.config.target;
        let exec = ExecOptions {
            concurrency: target.concurrency as usize,
            adopt: target.adopt,
            stop: stop.clone(),
            clock: self.clock,
        };
        // The target ids of every managed object, needed only when there is something to send.
        let mut ids =
            if plan.ops.is_empty() { Ids::default() } else { Ids::from_snapshot(&prepared.snapshot) };
        let report = executor::execute(store, client, run_id, &plan.ops, &mut ids, &exec).await?;
        if report.stopped.is_none() {
            store.record_presence(plan)?;
        }
        Ok(report)
    }
}

/// An approval releases exactly what was held: if the source now wants to deprovision users
/// that run did not hold, the administrator must look again.
fn check_approval(store: &Store, run: i64, plan: &Plan) -> anyhow::Result<()> {
    let held = store.held_ops(Some(run))?;
    if held.is_empty() {
        bail!("run {run} has no held operations waiting for approval: see `scimsync status`");
    }
    let latest = store.held_ops(None)?.iter().map(|h| h.run_id).max().unwrap_or(run);
    if latest != run {
        bail!("run {run} is not the latest held run ({latest} is): approve {latest} after reviewing it");
    }
    let approved: BTreeSet<&str> = held.iter().map(|h| h.op.key().0.as_str()).collect();
    let deprovisioning =
        |op: &&Op| matches!(op, Op::DeactivateUser { .. } | Op::DeleteUser { .. } | Op::DeleteGroup { .. });
    let extra: Vec<&str> = plan
        .ops
        .iter()
        .filter(deprovisioning)
        .map(|op| op.key().0.as_str())
        .filter(|k| !approved.contains(k))
        .collect();
    if !extra.is_empty() {
        bail!(
            "the source changed since run {run}: {} more object(s) would now be deprovisioned (first: {}); run `scimsync plan` and review before approving",
            extra.len(),
            extra[0]
        );
    }
    Ok(())
}
