//! An event as people and machines read it: a subject, a short text (what happened and what to
//! do), and the event's fields. Never the token, never a list of every user: counts and at most
//! a few names.

use super::state::{Event, FailureClass, TokenStage};
use serde_json::{json, Value};

/// One message, the same for every channel.
#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    /// The event's name (`held`, `quarantine_entered`, …), the webhook's `event` field.
    pub kind: &'static str,
    pub subject: String,
    pub text: String,
    /// The event's fields, beside `text` and `event` in the webhook's JSON.
    pub fields: Value,
}

/// The longest error detail a message carries.
const DETAIL_MAX: usize = 300;

/// `text` cut to at most `max` characters, marked when cut.
pub fn shorten(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_owned(),
        Some((at, _)) => format!("{}…", &text[..at]),
    }
}

fn when(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default()
}

impl Message {
    /// The message of `event`; `host` names the machine scimsync runs on.
    pub fn of(event: &Event, host: &str) -> Message {
        let (kind, subject, text, fields) = match event {
            Event::Held(h) => {
                let names = if h.names.is_empty() {
                    String::new()
                } else {
                    let more = h.count.saturating_sub(h.names.len());
                    let tail = if more > 0 { format!(" and {more} more") } else { String::new() };
                    format!(" ({}{tail})", h.names.join(", "))
                };
                (
                    "held",
                    format!("{} deprovisioning operation(s) held for approval", h.count),
                    format!(
                        "Run {} held {} deprovisioning operation(s){names}: {}. Review them with `scimsync status`, then release them with `{}` (stop the service first if it runs: the approval needs the state database to itself). A later run that holds the same operations supersedes this one: `scimsync status` names the latest.",
                        h.run_id, h.count, h.reason, h.approve
                    ),
                    json!({"run_id": h.run_id, "held": h.count, "reason": h.reason, "names": h.names, "approve_command": h.approve}),
                )
            }
            Event::QuarantineEntered { run_id, state } => (
                "quarantine_entered",
                "quarantined: writes to the target stopped".to_owned(),
                format!(
                    "Run {run_id} put scimsync in quarantine: {}. Nothing is written to the target until {} (level {}); fix the cause, then `scimsync approve RUN` resumes at once.",
                    state.reason,
                    when(state.until),
                    state.level
                ),
                json!({"run_id": run_id, "reason": state.reason, "until": state.until, "level": state.level}),
            ),
            Event::QuarantineLifted { run_id } => (
                "quarantine_lifted",
                "quarantine lifted".to_owned(),
                format!("The quarantine was lifted (run {run_id}); writes to the target resume."),
                json!({"run_id": run_id}),
            ),
            Event::Failed { run_id, class, detail } => {
                let sentence = match class {
                    FailureClass::Source => "the source could not be read, so nothing was planned or applied",
                    FailureClass::Refused => {
                        "the target refused the token (401/403): generate a new token and write it to the token file"
                    }
                    FailureClass::Other => "the run failed",
                };
                let detail = shorten(detail, DETAIL_MAX);
                (
                    "failed",
                    format!("run failed: {}", sentence.split(':').next().unwrap_or(sentence)),
                    format!("Run {run_id} failed: {sentence}. {detail}"),
                    json!({"run_id": run_id, "reason": class.key(), "detail": detail}),
                )
            }
            Event::Recovered { run_id, quarantine_lifted, after } => {
                let lifted = if *quarantine_lifted { "; the quarantine is lifted" } else { "" };
                (
                    "recovered",
                    "recovered: runs succeed again".to_owned(),
                    format!("Run {run_id} succeeded after a failed one{lifted}."),
                    json!({"run_id": run_id, "quarantine_lifted": quarantine_lifted, "after": after}),
                )
            }
            Event::Token { stage, days_left } => {
                let (subject, text) = match stage {
                    TokenStage::Expired => (
                        "the target token has expired".to_owned(),
                        "The target token has expired: generate a new one in the target's admin console, write it to the token file and update target.token_expires.".to_owned(),
                    ),
                    TokenStage::Within7Days => (
                        format!("the target token expires in {days_left} day(s)"),
                        format!("The target token expires in {days_left} day(s): generate a new one now and update target.token_expires."),
                    ),
                    TokenStage::Within30Days => (
                        format!("the target token expires in {days_left} days"),
                        format!("The target token expires in {days_left} days: plan its renewal."),
                    ),
                };
                ("token_expiry", subject, text, json!({"stage": stage.as_str(), "days_left": days_left}))
            }
            Event::Test => (
                "test",
                "test message".to_owned(),
                "This is a test message from `scimsync check --notify`: this channel works.".to_owned(),
                json!({}),
            ),
        };
        Message {
            kind,
            subject: format!("scimsync on {host}: {subject}"),
            text: format!("scimsync on {host}: {text}"),
            fields,
        }
    }

    /// The webhook's JSON: `text` (what Slack, Teams and Mattermost incoming webhooks show),
    /// `event`, and the event's fields.
    pub fn webhook_body(&self) -> Value {
        let mut body = json!({"text": self.text, "event": self.kind, "subject": self.subject});
        if let (Some(body), Some(fields)) = (body.as_object_mut(), self.fields.as_object()) {
            for (k, v) in fields {
                body.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
        body
    }
}

#[cfg(test)]
mod tests {
    use super::super::state::Hold;
    use super::*;

    #[test]
    fn a_held_message_names_the_count_a_few_names_and_the_command() {
        let hold = Hold {
            run_id: 7,
            count: 15,
            digest: "d".into(),
            reason: "15 users would be deprovisioned".into(),
            names: vec!["a@example.com".into(), "b@example.com".into(), "c@example.com".into()],
            approve: "scimsync approve 7 --config /srv/s.toml".into(),
        };
        let m = Message::of(&Event::Held(hold), "idm1");
        assert!(m.text.contains("held 15 deprovisioning"), "{}", m.text);
        assert!(m.text.contains("a@example.com, b@example.com, c@example.com and 12 more"), "{}", m.text);
        assert!(m.text.contains("`scimsync approve 7 --config /srv/s.toml`"), "{}", m.text);
        let body = m.webhook_body();
        assert_eq!(body["event"], "held");
        assert_eq!(body["held"], 15);
        assert_eq!(body["approve_command"], "scimsync approve 7 --config /srv/s.toml");
        assert!(body["text"].as_str().unwrap().starts_with("scimsync on idm1: "));
    }

    #[test]
    fn a_long_detail_is_shortened() {
        let e = Event::Failed { run_id: 3, class: FailureClass::Source, detail: "x".repeat(1000) };
        let m = Message::of(&e, "h");
        assert!(m.text.len() < 500 && m.text.ends_with('…'), "{}", m.text);
        assert_eq!(m.fields["reason"], "source");
        assert_eq!(shorten("héllo", 2), "hé…");
        assert_eq!(shorten("hé", 2), "hé");
    }
}
