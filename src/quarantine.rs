//! Quarantine: after too many failed operations in a run, or repeated authentication failures,
//! scimsync stops writing and backs off between runs (30 minutes, doubling, to a daily cap), as
//! Entra ID does — but says why. It resumes by itself after the back-off or on `approve`.
//! Pure decisions here; the store keeps the state.

use crate::reconcile::policy::RawPolicy;
use crate::section::ConfigErrors;
use serde::{Deserialize, Serialize};

/// When to quarantine, and for how long.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Rules {
    /// Quarantine when more than this share (percent) of a run's operations failed…
    pub failure_percent: f64,
    /// …and the run had at least this many operations.
    pub min_operations: u64,
    /// Quarantine after this many consecutive runs stopped by 401/403.
    pub auth_failures: u32,
    pub backoff_minutes: u64,
    pub max_backoff_minutes: u64,
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            failure_percent: 20.0,
            min_operations: 10,
            auth_failures: 2,
            backoff_minutes: 30,
            max_backoff_minutes: 24 * 60,
        }
    }
}

impl Rules {
    /// The rules the `[policy]` section's `quarantine_*` keys set, over the defaults, pushing
    /// every problem to `errors`.
    pub fn from_section(p: &RawPolicy, errors: &mut ConfigErrors) -> Rules {
        let d = Rules::default();
        let rules = Rules {
            failure_percent: p.quarantine_failure_percent.unwrap_or(d.failure_percent),
            min_operations: p.quarantine_min_operations.unwrap_or(d.min_operations),
            auth_failures: p.quarantine_auth_failures.unwrap_or(d.auth_failures),
            backoff_minutes: p.quarantine_backoff_minutes.unwrap_or(d.backoff_minutes),
            max_backoff_minutes: p.quarantine_max_backoff_minutes.unwrap_or(d.max_backoff_minutes),
        };
        if !(0.0..=100.0).contains(&rules.failure_percent) {
            errors.push("policy.quarantine_failure_percent", "must be between 0 and 100");
        }
        if rules.auth_failures == 0 {
            errors.push("policy.quarantine_auth_failures", "must be at least 1");
        }
        if rules.backoff_minutes == 0 || rules.max_backoff_minutes < rules.backoff_minutes {
            errors.push(
                "policy.quarantine_backoff_minutes",
                "must be at least 1 and at most quarantine_max_backoff_minutes",
            );
        }
        rules
    }
}

/// An active (or expired, awaiting a good run) quarantine.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub since: i64,
    /// No writes before this time.
    pub until: i64,
    /// How many times in a row it was entered: the back-off doubles with each.
    pub level: u32,
    pub reason: String,
}

impl State {
    pub fn active(&self, now: i64) -> bool {
        now < self.until
    }

    /// What `sync` and `status` say about it.
    pub fn message(&self) -> String {
        let until = chrono::DateTime::from_timestamp(self.until, 0)
            .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string());
        format!(
            "quarantined until {} (level {}): {}; fix the cause, then `scimsync approve RUN` to resume now",
            until.unwrap_or_default(),
            self.level,
            self.reason
        )
    }
}

/// What a finished run tells the quarantine.
#[derive(Clone, Copy, Debug, Default)]
pub struct RunResult {
    pub attempted: u64,
    pub failed: u64,
    pub auth_stopped: bool,
}

/// The quarantine after a run: entered or extended when the run was bad, cleared when it was
/// good. `auth_streak` counts consecutive auth-stopped runs, this one included.
pub fn after_run(
    rules: &Rules,
    prev: Option<&State>,
    run: RunResult,
    auth_streak: u32,
    now: i64,
) -> Option<State> {
    let share = if run.attempted == 0 { 0.0 } else { run.failed as f64 * 100.0 / run.attempted as f64 };
    let reason = if run.auth_stopped && auth_streak >= rules.auth_failures {
        format!("{auth_streak} runs in a row were refused by the target (401/403): renew the token")
    } else if run.attempted >= rules.min_operations && share > rules.failure_percent {
        format!(
            "{} of {} operations failed ({share:.0}%, more than {}%)",
            run.failed, run.attempted, rules.failure_percent
        )
    } else if run.auth_stopped {
        // One refusal: not yet a quarantine, but not a good run either.
        return prev.cloned();
    } else {
        return None;
    };
    let level = prev.map_or(1, |p| p.level.saturating_add(1));
    let minutes =
        rules.backoff_minutes.saturating_mul(1u64 << (level - 1).min(20)).min(rules.max_backoff_minutes);
    Some(State { since: prev.map_or(now, |p| p.since), until: now + (minutes as i64) * 60, level, reason })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bad() -> RunResult {
        RunResult { attempted: 100, failed: 50, auth_stopped: false }
    }

    #[test]
    fn backoff_doubles_to_a_daily_cap_and_a_good_run_clears() {
        let rules = Rules::default();
        let mut state = None;
        let mut minutes = Vec::new();
        for _ in 0..8 {
            state = after_run(&rules, state.as_ref(), bad(), 0, 0);
            minutes.push(state.as_ref().unwrap().until / 60);
        }
        assert_eq!(minutes, [30, 60, 120, 240, 480, 960, 1440, 1440]);
        let good = RunResult { attempted: 100, failed: 1, auth_stopped: false };
        assert_eq!(after_run(&rules, state.as_ref(), good, 0, 0), None);
    }

    #[test]
    fn small_runs_and_single_auth_failures_do_not_quarantine() {
        let rules = Rules::default();
        let small = RunResult { attempted: 5, failed: 5, auth_stopped: false };
        assert_eq!(after_run(&rules, None, small, 0, 0), None);
        let refused = RunResult { attempted: 1, failed: 1, auth_stopped: true };
        assert_eq!(after_run(&rules, None, refused, 1, 0), None);
        let state = after_run(&rules, None, refused, 2, 100).expect("second refusal quarantines");
        assert!(state.reason.contains("renew the token") && state.until == 100 + 30 * 60);
    }
}
