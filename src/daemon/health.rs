//! What the daemon knows about its own runs, and the `/healthz` verdict drawn from it. Pure: the
//! time comes in as an argument.

use crate::store::RunOutcome;
use chrono::{DateTime, Local, TimeZone as _};

/// Slack on top of two schedule intervals before the schedule counts as stalled.
pub const STALL_GRACE_SECS: i64 = 60;

/// The last run the worker finished.
#[derive(Clone, Debug, PartialEq)]
pub struct LastRun {
    /// None when the run failed before it got a run record (the database could not be opened).
    pub run_id: Option<i64>,
    pub outcome: RunOutcome,
    /// Why it failed, or what it left undone.
    pub error: Option<String>,
    pub finished_at: i64,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Live {
    pub started_at: i64,
    pub last: Option<LastRun>,
    /// When the run under way started.
    pub running_since: Option<i64>,
    /// Source records the last completed source read returned.
    pub records_read: Option<u64>,
    /// How long the last run this daemon finished took, whatever its outcome.
    pub last_run_seconds: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Health {
    Healthy(String),
    Unhealthy(String),
}

fn local(t: i64) -> DateTime<Local> {
    Local.timestamp_opt(t, 0).single().unwrap_or_else(Local::now)
}

fn hhmmss(t: i64) -> String {
    local(t).format("%Y-%m-%d %H:%M:%S").to_string()
}

impl Live {
    /// Healthy when the last run succeeded (`ok`, or `held` waiting for approval) and the schedule
    /// is not stalled: stalled means no run finished since the second scheduled time after the
    /// last one that did (two intervals, for irregular schedules too) plus a grace period.
    pub fn health(&self, cron: &croner::Cron, now: i64) -> Health {
        let since = self.last.as_ref().map_or(self.started_at, |l| l.finished_at);
        let second = cron
            .find_next_occurrence(&local(since), false)
            .and_then(|first| cron.find_next_occurrence(&first, false));
        if let Ok(second) = second {
            let deadline = second.timestamp() + STALL_GRACE_SECS;
            if now > deadline {
                let what = match &self.last {
                    Some(_) => format!("no run finished since {}", hhmmss(since)),
                    None => format!("no run finished since the start at {}", hhmmss(since)),
                };
                let running = match self.running_since {
                    Some(t) => format!("; a run has been going since {}", hhmmss(t)),
                    None => String::new(),
                };
                return Health::Unhealthy(format!(
                    "stalled: {what}, though the schedule wanted one by {}{running}",
                    hhmmss(second.timestamp())
                ));
            }
        }
        match &self.last {
            None => Health::Unhealthy("no run has finished yet".into()),
            Some(l) => {
                let id = l.run_id.map_or_else(|| "the last run".to_owned(), |id| format!("run #{id}"));
                let when = hhmmss(l.finished_at);
                match l.outcome {
                    RunOutcome::Ok | RunOutcome::Held => {
                        Health::Healthy(format!("ok: {id} finished {} at {when}", l.outcome.as_str()))
                    }
                    RunOutcome::Partial
                    | RunOutcome::Failed
                    | RunOutcome::Interrupted
                    | RunOutcome::Quarantined => Health::Unhealthy(format!(
                        "{id} finished {} at {when}: {}",
                        l.outcome.as_str(),
                        l.error.as_deref().unwrap_or("no reason recorded")
                    )),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cron(expr: &str) -> croner::Cron {
        crate::config::parse_cron(expr).unwrap()
    }

    fn finished(outcome: RunOutcome, at: i64) -> Live {
        Live {
            started_at: at - 100,
            last: Some(LastRun { run_id: Some(7), outcome, error: Some("boom".into()), finished_at: at }),
            ..Live::default()
        }
    }

    // 2024-01-01 00:00:00 UTC; every-minute schedules behave the same in any time zone.
    const T: i64 = 1_704_067_200;

    #[test]
    fn a_good_recent_run_is_healthy_and_a_failed_one_is_not() {
        let every_minute = cron("0 * * * * *");
        assert!(matches!(finished(RunOutcome::Ok, T).health(&every_minute, T + 5), Health::Healthy(_)));
        assert!(matches!(finished(RunOutcome::Held, T).health(&every_minute, T + 5), Health::Healthy(_)));
        let Health::Unhealthy(why) = finished(RunOutcome::Failed, T).health(&every_minute, T + 5) else {
            panic!("a failed run is unhealthy")
        };
        assert!(why.contains("run #7 finished failed") && why.ends_with(": boom"), "{why}");
        let never = Live { started_at: T, ..Live::default() };
        assert_eq!(never.health(&every_minute, T + 1), Health::Unhealthy("no run has finished yet".into()));
    }

    #[test]
    fn stalled_after_two_intervals_and_the_grace() {
        let every_minute = cron("0 * * * * *");
        let live = finished(RunOutcome::Ok, T + 10);
        // Next runs due at T+60 and T+120; stalled after T+120+grace.
        assert!(matches!(live.health(&every_minute, T + 120 + STALL_GRACE_SECS), Health::Healthy(_)));
        let Health::Unhealthy(why) = live.health(&every_minute, T + 121 + STALL_GRACE_SECS) else {
            panic!("stalled")
        };
        assert!(why.starts_with("stalled: no run finished since"), "{why}");
        // Without any finished run the clock starts at the daemon's start.
        let fresh = Live { started_at: T, running_since: Some(T), ..Live::default() };
        let Health::Unhealthy(why) = fresh.health(&every_minute, T + 500) else { panic!("stalled") };
        assert!(why.contains("since the start") && why.contains("a run has been going since"), "{why}");
    }
}
