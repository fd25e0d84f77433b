//! One applying run (`sync`, `apply PLANFILE`, `approve RUN`): recover the journal, read and
//! plan, apply through the executor, record the run. Fails closed at every step.

use crate::config::Config;
use crate::executor::{self, ExecOptions, Ids, Report};
use crate::pipeline::{self, now, Prepared};
use crate::quarantine;
use crate::reconcile::plan::{Op, Plan};
use crate::secrets;
use crate::store::{RunKind, RunOutcome, Store};
use crate::target::{ClientOptions, TargetClient};
use anyhow::{bail, Context as _};
use std::collections::BTreeSet;
use std::sync::atomic::AtomicBool;
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

/// A plan as `plan --format json --out FILE` saves it.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct SavedPlan {
    pub fingerprint: Fingerprint,
    pub plan: Plan,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Fingerprint {
    /// SHA-256 of the desired state the plan was made from.
    pub source: String,
    /// The snapshot version the plan was made against.
    pub snapshot_version: i64,
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

#[derive(Clone, Debug, Default)]
pub struct Options {
    pub mode: Mode,
    pub stop: Arc<AtomicBool>,
    pub client: ClientOptions,
    /// Set (with the reason) when this run's read may be incomplete: it removes nothing
    /// ([`crate::reconcile::Policy::unconfirmed`]).
    pub unconfirmed: Option<String>,
}

/// Warns 30 and 7 days before the target token expires (and after it did).
pub fn warn_token_expiry(config: &Config, now: i64) -> Option<i64> {
    let expires = config.target.token_expires?;
    let days = (expires - now).div_euclid(86_400);
    if days < 0 {
        tracing::error!(days_left = days, "The target token has expired: generate a new one in the target's admin console and write it to the token file.");
    } else if days <= 7 {
        tracing::warn!(days_left = days, "The target token expires within 7 days: generate a new one now.");
    } else if days <= 30 {
        tracing::warn!(days_left = days, "The target token expires within 30 days: plan its renewal.");
    }
    Some(days)
}

/// Builds the target client from the config and the token.
pub fn client(config: &Config, mut opts: ClientOptions) -> anyhow::Result<TargetClient> {
    if config.target.url.is_none() {
        bail!("target.url is not set: add the SCIM endpoint of the target to the config");
    }
    let token = secrets::load_token(&config.target)?;
    opts.token_source.get_or_insert(token.source);
    Ok(TargetClient::with_options(&config.target, token.secret, opts)?)
}

/// One applying run on a runtime of its own (the commands). Errors that abort the run are
/// recorded in its run record and returned. The runtime is single-threaded: the executor and its
/// requests then share one thread, and an answer is followed by the next request without a wake-up
/// across threads; against scim2-server this kept the server busy 93–98% of the run instead of
/// 87–90% (the executor's SQLite commits are rare enough to block it briefly).
pub fn run(config: &Config, opts: Options) -> anyhow::Result<Outcome> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(run_async(config, opts))
}

/// One applying run on the caller's runtime (the daemon runs it from a blocking thread with
/// `Handle::block_on`: the source read and SQLite commits block). Everything it logs is in a
/// `run` span carrying the run id.
pub async fn run_async(config: &Config, opts: Options) -> anyhow::Result<Outcome> {
    let mut store = Store::open(&config.state_path).context("opening the state database")?;
    let kind = match opts.mode {
        Mode::Sync => RunKind::Sync,
        Mode::Apply(_) => RunKind::Apply,
        Mode::Approve(_) => RunKind::Approve,
    };
    let run_id = store.begin_run(kind, now())?;
    let span = tracing::info_span!("run", run = run_id, kind = kind.as_str());
    let result = run_inner(config, &mut store, run_id, &opts).instrument(span.clone()).await;
    let _span = span.entered();
    let auth_stopped = match &result {
        Ok(o) => o.report.stopped.is_some(),
        Err(e) => {
            e.chain().any(|c| c.downcast_ref::<crate::target::TargetError>().is_some_and(|t| t.stops_run()))
        }
    };
    if !matches!(&result, Ok(o) if o.outcome == RunOutcome::Quarantined) {
        let streak = store.bump_auth_streak(auth_stopped)?;
        let run = match &result {
            Ok(o) => quarantine::RunResult {
                attempted: o.report.applied + o.report.failed.len() as u64,
                failed: o.report.failed.len() as u64,
                auth_stopped,
            },
            Err(_) => quarantine::RunResult { attempted: 0, failed: 0, auth_stopped },
        };
        let prev = store.quarantine()?;
        let next = quarantine::after_run(&config.quarantine, prev.as_ref(), run, streak, now());
        if next != prev {
            match &next {
                Some(q) => {
                    tracing::error!(until = q.until, level = q.level, reason = %q.reason, "Quarantined: no writes until the back-off ends or `scimsync approve`.")
                }
                None => tracing::info!("Quarantine lifted after a good run."),
            }
            store.set_quarantine(next.as_ref())?;
        }
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
            store.finish_run(run_id, outcome.outcome, Some(&outcome.plan), error.as_deref(), now())?;
            Ok(outcome)
        }
        Err(e) => {
            store.finish_run(run_id, RunOutcome::Failed, None, Some(&format!("{e:#}")), now())?;
            Err(e)
        }
    }
}

async fn run_inner(
    config: &Config,
    store: &mut Store,
    run_id: i64,
    opts: &Options,
) -> anyhow::Result<Outcome> {
    warn_token_expiry(config, now());
    let mut lifted = false;
    if let Some(q) = store.quarantine()? {
        if matches!(opts.mode, Mode::Approve(_)) {
            lifted = true;
            tracing::info!(reason = %q.reason, "Quarantine lifted by approval.");
            store.set_quarantine(None)?;
        } else if q.active(now()) {
            tracing::warn!(until = q.until, reason = %q.reason, "Quarantined: this run writes nothing.");
            let report = Report { stopped: Some(quarantine_message(&q)), ..Report::default() };
            return Ok(Outcome {
                run_id,
                outcome: RunOutcome::Quarantined,
                plan: Plan::default(),
                report,
                recovered: 0,
                records_read: 0,
            });
        }
    }
    let client = client(config, opts.client.clone())?;
    let recovery =
        executor::recover(store, &client, run_id, now).await?.context("resolving unfinished operations")?;
    if recovery.resolved + recovery.abandoned > 0 {
        tracing::info!(
            resolved = recovery.resolved,
            abandoned = recovery.abandoned,
            "Recovered the journal."
        );
    }
    let started = now();
    let mut prepared = match (&opts.mode, &opts.unconfirmed) {
        (Mode::Approve(_), _) | (_, Some(_)) => {
            let mut config = config.clone();
            config.policy.approved = matches!(opts.mode, Mode::Approve(_));
            config.policy.unconfirmed = opts.unconfirmed.clone();
            pipeline::prepare(&config, store, started).await?
        }
        _ => pipeline::prepare(config, store, started).await?,
    };
    match &opts.mode {
        Mode::Sync => {}
        Mode::Apply(saved) => {
            let current = fingerprint(&prepared, store)?;
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
    let plan = &prepared.plan;
    store.record_held(run_id, plan)?;
    if plan.is_held() {
        tracing::warn!(
            held = plan.held.len(),
            reason = plan.hold_reason.as_deref().unwrap_or(""),
            "Deprovisioning held."
        );
    }
    let exec = ExecOptions {
        concurrency: config.target.concurrency as usize,
        adopt: config.target.adopt,
        recreate_missing: config.target.recreate_missing,
        stop: opts.stop.clone(),
        clock: now,
    };
    // The target ids of every managed object, needed only when there is something to send.
    let mut ids = if plan.ops.is_empty() { Ids::default() } else { Ids::from_snapshot(&prepared.snapshot) };
    let report =
        executor::execute(store, &client, run_id, &plan.ops, Some(&prepared.desired), &mut ids, &exec)
            .await?;
    if report.stopped.is_none() {
        store.record_presence(plan)?;
    }
    // A stop request leaves operations unsent: the run is interrupted, not finished.
    let interrupted = opts.stop.load(std::sync::atomic::Ordering::SeqCst) && report.not_started > 0;
    if let Mode::Approve(run) = opts.mode {
        if report.stopped.is_none() && report.failed.is_empty() && !interrupted {
            store.release_held(run, now())?;
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
    Ok(Outcome { run_id, outcome, plan: prepared.plan, report, recovered: recovery.resolved, records_read })
}

/// What `sync` and `status` say about a quarantine.
pub fn quarantine_message(q: &quarantine::State) -> String {
    let until =
        chrono::DateTime::from_timestamp(q.until, 0).map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string());
    format!(
        "quarantined until {} (level {}): {}; fix the cause, then `scimsync approve RUN` to resume now",
        until.unwrap_or_default(),
        q.level,
        q.reason
    )
}

/// The fingerprint of what a plan was made from.
pub fn fingerprint(prepared: &Prepared, store: &Store) -> anyhow::Result<Fingerprint> {
    use sha2::{Digest, Sha256};
    /// Hashes what is written to it: the desired state's JSON is hashed as it is produced, never
    /// held whole (at a million users it would be 700 MB).
    struct Hashing(Sha256);
    impl std::io::Write for Hashing {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.update(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    /// Users hashed per chunk; chunk digests are hashed in order. The chunks are of a fixed size,
    /// so the fingerprint does not depend on the number of threads that hash them.
    const CHUNK: usize = 1 << 16;
    let d = &prepared.desired;
    let users: Vec<_> = d.users.iter().collect();
    let mut all = Hashing(Sha256::new());
    let hash_chunk = |chunk: &[_]| {
        let mut hashing = Hashing(Sha256::new());
        serde_json::to_writer(&mut hashing, chunk).map(|()| hashing.0.finalize())
    };
    crate::parts::render_in_order(&users, CHUNK, crate::parts::threads(4), hash_chunk, |digest| {
        digest.map(|digest| all.0.update(digest))
    })
    .context("serialising the desired state")?;
    serde_json::to_writer(&mut all, &(&d.groups, &d.skipped, &d.warnings, d.records_read, &d.cut_off))
        .context("serialising the desired state")?;
    let source = all.0.finalize().iter().map(|b| format!("{b:02x}")).collect();
    Ok(Fingerprint { source, snapshot_version: store.snapshot_version()? })
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
