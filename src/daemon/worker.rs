//! The one worker: takes run requests one at a time, runs `sync` on a blocking thread, records
//! what happened for `/healthz` and `/metrics`, tells systemd, and beats the watchdog.

use super::{notify, Event, LastRun, Shared, Trigger};
use crate::clock::now;
use crate::executor::{Counts, Voice};
use crate::run::{self, Outcome, Run};
use crate::source::SourceError;
use crate::store::RunOutcome;
use crate::{config::Config, source::SourceKind};
use sd_notify::NotifyState;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::{self, UnboundedSender};
use tokio::task::JoinHandle;
use tokio::time::{Interval, MissedTickBehavior};

/// `WATCHDOG=1` at half the watchdog period, from this loop, so a stuck worker stops the pings.
struct Heartbeat(Option<Interval>);

impl Heartbeat {
    fn new(watchdog: Option<Duration>) -> Heartbeat {
        Heartbeat(watchdog.map(|w| {
            let mut i = tokio::time::interval((w / 2).max(Duration::from_millis(100)));
            i.set_missed_tick_behavior(MissedTickBehavior::Delay);
            i
        }))
    }

    async fn beat(&mut self) {
        match &mut self.0 {
            Some(interval) => {
                interval.tick().await;
                notify(&[NotifyState::Watchdog]);
            }
            None => std::future::pending().await,
        }
    }
}

/// Runs until the request channel closes (shutdown) or a stop is requested.
pub(super) async fn run(
    mut requests: mpsc::Receiver<Trigger>,
    shared: Arc<Shared>,
    watchdog: Option<Duration>,
    events: UnboundedSender<Event>,
) {
    let mut heartbeat = Heartbeat::new(watchdog);
    let mut settle_timer: Option<JoinHandle<()>> = None;
    loop {
        let trigger = tokio::select! {
            request = requests.recv() => match request {
                Some(trigger) => trigger,
                None => break,
            },
            () = heartbeat.beat() => continue,
        };
        if shared.stop.load(Ordering::SeqCst) {
            break;
        }
        let config = shared.config();
        let started = now();
        let timer = std::time::Instant::now();
        shared.live().running_since = Some(started);
        tracing::info!(trigger = trigger.as_str(), "Run starting.");
        let handle = tokio::runtime::Handle::current();
        let unconfirmed = source_settling(&config, std::time::SystemTime::now());
        if let Some(reason) = &unconfirmed {
            tracing::info!(reason = reason.as_str(), "This run removes nothing.");
        }
        let settle = config.settle_seconds;
        let (state_path, retention) = (config.state_path.clone(), config.retention);
        let opts = run::Options {
            mode: run::Mode::Sync,
            stop: shared.stop.clone(),
            client: Default::default(),
            unconfirmed: unconfirmed.clone(),
        };
        let mut job =
            tokio::task::spawn_blocking(move || handle.block_on(Run::new(&config, now).apply(opts)));
        let joined = loop {
            tokio::select! {
                joined = &mut job => break joined,
                () = heartbeat.beat() => {}
            }
        };
        let result = joined.unwrap_or_else(|e| Err(anyhow::anyhow!("the run panicked: {e}")));
        // A read in doubt, or one the export's writer overtook, is confirmed by a run once the
        // file has been quiet (further changes re-arm the timer through their own runs).
        if settle > 0 && (unconfirmed.is_some() || changed_while_read(&result)) {
            if let Some(old) = settle_timer.take() {
                old.abort();
            }
            let events = events.clone();
            settle_timer = Some(tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(settle)).await;
                let _ = events.send(Event::Trigger(Trigger::Settled));
            }));
        }
        let finished = now();
        let last = record(&result, trigger, finished, started);
        notify(&[NotifyState::Status(&status_line(&result, finished))]);
        {
            let mut live = shared.live();
            live.running_since = None;
            live.last_run_seconds = Some(timer.elapsed().as_secs_f64());
            if let Ok(outcome) = &result {
                live.records_read = Some(outcome.records_read);
            }
            live.last = Some(last);
        }
        // Between runs, never during one: what the retention lets go, in small transactions.
        let mut pruning = tokio::task::spawn_blocking(move || {
            crate::store::prune_between_runs(&state_path, retention, now())
        });
        loop {
            tokio::select! {
                _ = &mut pruning => break,
                () = heartbeat.beat() => {}
            }
        }
    }
}

/// Why this daemon run's read may be incomplete, if it may: the file source changed less than
/// `schedule.settle_seconds` ago, so an export job may still be writing it in place (paused
/// between two pages of a slow search, say, so that the read itself sees no change).
fn source_settling(config: &Config, now: std::time::SystemTime) -> Option<String> {
    let settle = config.settle_seconds;
    if settle == 0 || matches!(config.source.kind, SourceKind::Scim | SourceKind::Ldap) {
        return None;
    }
    let path = config.source.path.as_ref()?;
    let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok()?;
    // A modification time ahead of the clock is as recent as can be.
    let age = now.duration_since(modified).map_or(0, |d| d.as_secs());
    (age < settle).then(|| {
        format!(
            "{} changed {age} s ago, less than schedule.settle_seconds = {settle}: an export job may still be writing it, so nothing is removed on the word of this read; a run once it has been quiet for {settle} s confirms",
            path.display()
        )
    })
}

/// Whether a run failed because its file source changed while it was read.
fn changed_while_read(result: &anyhow::Result<Outcome>) -> bool {
    result.as_ref().err().is_some_and(|e| {
        e.chain().any(|c| matches!(c.downcast_ref::<SourceError>(), Some(SourceError::Changed(_))))
    })
}

/// Logs the end of a run and turns it into what `/healthz` reports.
fn record(result: &anyhow::Result<Outcome>, trigger: Trigger, finished: i64, started: i64) -> LastRun {
    let secs = finished - started;
    match result {
        Ok(o) => {
            let error = o.report.stopped.clone().or_else(|| match o.outcome {
                RunOutcome::Interrupted => Some(format!(
                    "stopped by a shutdown request; {} operation(s) not sent",
                    o.report.not_started
                )),
                RunOutcome::Partial => Some(format!("{} operation(s) failed", o.report.failed.len())),
                _ => None,
            });
            tracing::info!(
                run = o.run_id,
                trigger = trigger.as_str(),
                outcome = o.outcome.as_str(),
                secs,
                records = o.records_read,
                applied = o.report.applied,
                failed = o.report.failed.len(),
                held = o.plan.held.len(),
                summary = %o.tally().line(),
                "Run finished."
            );
            LastRun { run_id: Some(o.run_id), outcome: o.outcome, error, finished_at: finished }
        }
        Err(e) => {
            tracing::error!(trigger = trigger.as_str(), secs, error = format!("{e:#}"), "Run failed.");
            // `/healthz` may be read from another host: only the outermost context (what
            // failed), never the causes, which may quote a record; the log has them.
            LastRun {
                run_id: None,
                outcome: RunOutcome::Failed,
                error: Some(format!("{e} (the log has the details)")),
                finished_at: finished,
            }
        }
    }
}

/// `last run 12:00: 3 users created, 1 user deactivated`, what the target confirmed — systemd
/// shows it in `systemctl status`.
pub(super) fn status_line(result: &anyhow::Result<Outcome>, finished: i64) -> String {
    let at = chrono::DateTime::from_timestamp(finished, 0)
        .map(|t| t.with_timezone(&chrono::Local).format("%H:%M").to_string())
        .unwrap_or_default();
    match result {
        Err(e) => {
            let e = format!("{e:#}");
            format!("last run {at} failed: {}", e.lines().next().unwrap_or(""))
        }
        Ok(o) => {
            let mut parts = changes(&o.report.confirmed);
            if !o.report.failed.is_empty() {
                parts.push(format!("{} failed", o.report.failed.len()));
            }
            match o.outcome {
                RunOutcome::Held => {
                    parts.push(format!("{} held (scimsync approve {})", o.plan.held.len(), o.run_id))
                }
                RunOutcome::Interrupted => parts.push("interrupted".into()),
                RunOutcome::Quarantined => parts.push("quarantined: nothing written".into()),
                RunOutcome::Failed => {
                    let why = o.report.stopped.as_deref().unwrap_or("stopped");
                    parts.push(format!("stopped: {}", why.lines().next().unwrap_or("")));
                }
                RunOutcome::Ok | RunOutcome::Partial => {}
            }
            if parts.is_empty() {
                parts.push("no changes".into());
            }
            format!("last run {at}: {}", parts.join(", "))
        }
    }
}

/// What the target confirmed, by kind; group changes together, to keep the line short.
fn changes(confirmed: &Counts) -> Vec<String> {
    let users = Counts {
        create_group: 0,
        adopt_group: 0,
        rename_group: 0,
        add_members: 0,
        remove_members: 0,
        delete_group: 0,
        ..confirmed.clone()
    };
    let mut parts = users.phrases(Voice::Confirmed);
    match confirmed.total() - users.total() {
        0 => {}
        1 => parts.push("1 group change".into()),
        n => parts.push(format!("{n} group changes")),
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::executor::Report;
    use crate::reconcile::plan::Plan;

    #[test]
    fn status_line_names_the_changes_or_the_failure() {
        let t = chrono::Local::now().timestamp();
        let hhmm = chrono::Local::now().format("%H:%M").to_string();
        let ok = Outcome {
            run_id: 3,
            outcome: RunOutcome::Ok,
            plan: Plan::default(),
            report: Report::default(),
            recovered: 0,
            records_read: 10,
        };
        assert_eq!(status_line(&Ok(ok), t), format!("last run {hhmm}: no changes"));
        let failed: anyhow::Result<Outcome> = Err(anyhow::anyhow!("reading the source failed\nmore"));
        assert_eq!(status_line(&failed, t), format!("last run {hhmm} failed: reading the source failed"));
        let confirmed = Counts {
            create_user: 3,
            deactivate_user: 1,
            add_members: 2,
            create_group: 1,
            ..Counts::default()
        };
        assert_eq!(changes(&confirmed), ["3 users created", "1 user deactivated", "3 group changes"]);
        // The plan's counts are not what happened: a run whose one create failed created nothing.
        let mut plan = Plan::default();
        plan.ops.push(crate::reconcile::Op::CreateGroup {
            key: crate::model::SourceKey("g".into()),
            display_name: "g".into(),
        });
        let report = Report {
            failed_kinds: Counts { create_group: 1, ..Counts::default() },
            failed: vec![crate::executor::Failure {
                op: "create_group",
                key: "g".into(),
                name: "g".into(),
                message: "the target rejected the request (501): Not Implemented".into(),
            }],
            ..Report::default()
        };
        let failed =
            Outcome { run_id: 4, outcome: RunOutcome::Partial, plan, report, recovered: 0, records_read: 1 };
        assert_eq!(status_line(&Ok(failed), t), format!("last run {hhmm}: 1 failed"));
    }
}
