//! What to tell, decided purely: the state last told (kept in the state database) and the state
//! a run left give the events to send and the state to keep. A condition that lasts is told
//! once: a hold planned again every 15 minutes, or a run failing for the same reason, says
//! nothing more until it changes.

use serde::{Deserialize, Serialize};

/// What the administrators were last told, stored between runs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Told {
    /// The digest of the held operations last told about.
    #[serde(default)]
    pub held: Option<String>,
    /// When the quarantine last told about began.
    #[serde(default)]
    pub quarantine: Option<i64>,
    /// The kind of failure last told about ([`FailureClass::key`]).
    #[serde(default)]
    pub failure: Option<String>,
    #[serde(default)]
    pub token: Option<TokenStage>,
}

/// How near the token's expiry is, as far as telling goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenStage {
    Within30Days,
    Within7Days,
    Expired,
}

impl TokenStage {
    /// The stage for the whole days left; `None` beyond 30 days.
    pub fn of(days_left: i64) -> Option<TokenStage> {
        match days_left {
            d if d < 0 => Some(TokenStage::Expired),
            0..=7 => Some(TokenStage::Within7Days),
            8..=30 => Some(TokenStage::Within30Days),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TokenStage::Within30Days => "within_30_days",
            TokenStage::Within7Days => "within_7_days",
            TokenStage::Expired => "expired",
        }
    }
}

/// Why a run failed, as far as telling goes: the same class again is not news.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureClass {
    /// The source could not be read (or could not be trusted).
    Source,
    /// The target refused the token (401/403).
    Refused,
    /// Anything else: the target unusable, the state database, the config.
    Other,
}

impl FailureClass {
    pub fn key(self) -> &'static str {
        match self {
            FailureClass::Source => "source",
            FailureClass::Refused => "refused",
            FailureClass::Other => "other",
        }
    }
}

/// A held plan: what the run held and how to release it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hold {
    pub run_id: i64,
    pub count: usize,
    /// Identifies the held operations (not the run): the same ones held again are not news.
    pub digest: String,
    pub reason: String,
    /// At most a few of the held objects' names.
    pub names: Vec<String>,
    /// The exact command that releases it.
    pub approve: String,
}

/// How a run ended, as far as telling goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunState {
    /// It read the source and the target answered (some operations may have failed).
    Completed,
    /// It failed or was refused: `detail` is the error, shortened.
    Failed { class: FailureClass, detail: String },
    /// It neither completed nor failed (interrupted, or kept from writing by the quarantine).
    Neither,
}

/// The state a run left.
#[derive(Clone, Debug)]
pub struct Now {
    pub run_id: i64,
    pub run: RunState,
    /// What the run planned to hold: `None` when it planned nothing (so the hold is unknown),
    /// `Some(None)` when it held nothing.
    pub held: Option<Option<Hold>>,
    pub quarantine: Option<crate::quarantine::State>,
    pub token_days_left: Option<i64>,
}

/// Something to tell.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    Held(Hold),
    QuarantineEntered {
        run_id: i64,
        state: crate::quarantine::State,
    },
    /// Lifted by something other than a good run (an approval whose run then failed).
    QuarantineLifted {
        run_id: i64,
    },
    Failed {
        run_id: i64,
        class: FailureClass,
        detail: String,
    },
    /// The first good run after a failure or a quarantine.
    Recovered {
        run_id: i64,
        quarantine_lifted: bool,
        after: Option<String>,
    },
    Token {
        stage: TokenStage,
        days_left: i64,
    },
    /// `scimsync check --notify`.
    Test,
}

/// The events `now` gives after `told`, and what is told after them.
pub fn transitions(told: &Told, now: &Now) -> (Vec<Event>, Told) {
    let mut events = Vec::new();
    let mut next = told.clone();
    let completed = now.run == RunState::Completed;
    match &now.run {
        RunState::Failed { class, detail } => {
            if told.failure.as_deref() != Some(class.key()) {
                events.push(Event::Failed { run_id: now.run_id, class: *class, detail: detail.clone() });
            }
            next.failure = Some(class.key().to_owned());
        }
        RunState::Completed => next.failure = None,
        RunState::Neither => {}
    }
    match (&told.quarantine, &now.quarantine) {
        (prev, Some(q)) if *prev != Some(q.since) => {
            events.push(Event::QuarantineEntered { run_id: now.run_id, state: q.clone() })
        }
        (Some(_), None) if !completed => events.push(Event::QuarantineLifted { run_id: now.run_id }),
        _ => {}
    }
    next.quarantine = now.quarantine.as_ref().map(|q| q.since);
    if completed && now.quarantine.is_none() && (told.failure.is_some() || told.quarantine.is_some()) {
        events.push(Event::Recovered {
            run_id: now.run_id,
            quarantine_lifted: told.quarantine.is_some(),
            after: told.failure.clone(),
        });
    }
    if let Some(held) = &now.held {
        if let Some(hold) = held {
            if told.held.as_ref() != Some(&hold.digest) {
                events.push(Event::Held(hold.clone()));
            }
        }
        next.held = held.as_ref().map(|h| h.digest.clone());
    }
    let stage = now.token_days_left.and_then(TokenStage::of);
    if stage != told.token {
        if let (Some(stage), Some(days_left)) = (stage, now.token_days_left) {
            events.push(Event::Token { stage, days_left });
        }
        next.token = stage;
    }
    (events, next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quarantine;

    fn now(run: RunState) -> Now {
        Now { run_id: 1, run, held: Some(None), quarantine: None, token_days_left: None }
    }

    fn hold(digest: &str, run_id: i64) -> Hold {
        Hold {
            run_id,
            count: 12,
            digest: digest.into(),
            reason: "12 > 10".into(),
            names: vec!["a".into()],
            approve: format!("scimsync approve {run_id}"),
        }
    }

    fn failed(class: FailureClass) -> RunState {
        RunState::Failed { class, detail: "why".into() }
    }

    fn kinds(events: &[Event]) -> Vec<&'static str> {
        events
            .iter()
            .map(|e| match e {
                Event::Held(_) => "held",
                Event::QuarantineEntered { .. } => "quarantine_entered",
                Event::QuarantineLifted { .. } => "quarantine_lifted",
                Event::Failed { .. } => "failed",
                Event::Recovered { .. } => "recovered",
                Event::Token { .. } => "token",
                Event::Test => "test",
            })
            .collect()
    }

    /// Runs `states` in order from nothing told; the events of each.
    fn replay(states: &[Now]) -> Vec<Vec<&'static str>> {
        let mut told = Told::default();
        states
            .iter()
            .map(|n| {
                let (events, next) = transitions(&told, n);
                told = next;
                kinds(&events)
            })
            .collect()
    }

    #[test]
    fn a_hold_is_told_once_until_it_changes_or_is_released() {
        let held = |digest, run| Now { held: Some(Some(hold(digest, run))), ..now(RunState::Completed) };
        let failed_run = Now { held: None, ..now(failed(FailureClass::Source)) };
        let got = replay(&[
            held("a", 1),
            held("a", 2),
            failed_run,
            held("a", 3),
            held("b", 4),
            now(RunState::Completed),
            held("b", 6),
        ]);
        let none: Vec<&str> = vec![];
        assert_eq!(
            got,
            [vec!["held"], none.clone(), vec!["failed"], vec!["recovered"], vec!["held"], none, vec!["held"]]
        );
    }

    #[test]
    fn a_failure_is_told_once_per_reason_and_recovery_once() {
        let got = replay(&[
            now(failed(FailureClass::Source)),
            now(failed(FailureClass::Source)),
            now(failed(FailureClass::Refused)),
            now(RunState::Neither),
            now(RunState::Completed),
            now(RunState::Completed),
        ]);
        let none: Vec<&str> = vec![];
        assert_eq!(
            got,
            [vec!["failed"], none.clone(), vec!["failed"], none.clone(), vec!["recovered"], none]
        );
    }

    #[test]
    fn a_quarantine_is_told_entered_once_and_lifted_by_the_good_run_that_recovers() {
        let q = |since| quarantine::State { since, until: since + 1800, level: 1, reason: "r".into() };
        let in_q = |run: RunState, since| Now { quarantine: Some(q(since)), ..now(run) };
        let got = replay(&[
            in_q(failed(FailureClass::Refused), 10),
            in_q(RunState::Neither, 10),
            // Extended: the same quarantine, a higher level.
            Now { quarantine: Some(quarantine::State { level: 2, ..q(10) }), ..now(RunState::Neither) },
            now(RunState::Completed),
            in_q(RunState::Completed, 50),
            now(failed(FailureClass::Other)),
        ]);
        let none: Vec<&str> = vec![];
        assert_eq!(
            got,
            [
                vec!["failed", "quarantine_entered"],
                none.clone(),
                none,
                vec!["recovered"],
                vec!["quarantine_entered"],
                vec!["failed", "quarantine_lifted"]
            ]
        );
        let (events, _) = transitions(
            &Told { quarantine: Some(10), failure: Some("refused".into()), ..Told::default() },
            &now(RunState::Completed),
        );
        assert_eq!(
            events,
            [Event::Recovered { run_id: 1, quarantine_lifted: true, after: Some("refused".into()) }]
        );
    }

    #[test]
    fn the_token_is_told_at_30_and_7_days_and_when_expired() {
        let days = |d| Now { token_days_left: Some(d), ..now(RunState::Completed) };
        let got =
            replay(&[days(45), days(30), days(20), days(8), days(7), days(0), days(-1), days(-9), days(365)]);
        let none: Vec<&str> = vec![];
        assert_eq!(
            got,
            [
                none.clone(),
                vec!["token"],
                none.clone(),
                none.clone(),
                vec!["token"],
                none.clone(),
                vec!["token"],
                none.clone(),
                none
            ]
        );
        // A renewed token that expires soon again is told again.
        let told = Told { token: Some(TokenStage::Expired), ..Told::default() };
        let (events, next) = transitions(&told, &days(20));
        assert_eq!(events, [Event::Token { stage: TokenStage::Within30Days, days_left: 20 }]);
        assert_eq!(next.token, Some(TokenStage::Within30Days));
    }

    #[test]
    fn what_is_told_survives_a_round_trip_and_reads_older_forms() {
        let told = Told {
            held: Some("d".into()),
            quarantine: Some(5),
            failure: Some("source".into()),
            token: Some(TokenStage::Within7Days),
        };
        let text = serde_json::to_string(&told).unwrap();
        assert_eq!(serde_json::from_str::<Told>(&text).unwrap(), told);
        assert_eq!(serde_json::from_str::<Told>("{}").unwrap(), Told::default());
    }
}
