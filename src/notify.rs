//! Notifications: telling people what needs them — a run held by the threshold, a quarantine
//! entered or lifted, a failed or refused run, the token's expiry drawing near, the first good
//! run after a bad one — through a webhook and mail (`[notify]`, `section.rs`).
//!
//! Expected flow: a run ends and is recorded; the run layer describes the state it left
//! ([`Now`]); [`after_run`] compares it with what was last told (the `meta` key `notify.told`),
//! keeps the new state, then sends each event through every channel (`channel.rs`).
//!
//! Guarantees: a state is told once, when it changes (`state.rs`, pure); failing to notify never
//! fails a run: it is logged and counted (`notify.sent.CHANNEL`, `notify.failed.CHANNEL` in
//! `meta`, on `/metrics`), and a channel gets at most `notify.timeout_secs` per message and is
//! skipped for the rest of a run once it failed.
//!
//! Caveats: what was to be told is recorded before sending, so a message lost to a dead channel
//! is not sent again (the failure counter says it was lost).

mod channel;
mod message;
mod section;
mod state;

pub use channel::{send_all, Channel};
pub use message::{shorten, Message};
pub use section::{Email, NotifyConfig, RawNotify, SmtpTls, Webhook};
pub use state::{transitions, Event, FailureClass, Hold, Now, RunState, TokenStage, Told};

use crate::store::Store;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric as _};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::MetricType;

/// The `meta` key of what was last told.
const TOLD_KEY: &str = "notify.told";

/// The name of this machine, for the messages.
pub fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "this host".to_owned())
}

/// Tells what changed since the last run. Never fails and never takes longer than
/// `notify.timeout_secs` per channel and message: every problem is logged and counted.
pub async fn after_run(config: &NotifyConfig, store: &mut Store, now: &Now) {
    if config.is_empty() {
        // Nobody to tell: nothing is marked told, so a channel added later hears the state.
        return;
    }
    let told = match store.meta(TOLD_KEY) {
        Ok(text) => text.and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default(),
        Err(e) => {
            tracing::warn!(error = %e, "Cannot read what was last notified; notifying nothing this run.");
            return;
        }
    };
    let (events, next) = transitions(&told, now);
    if next != told {
        let text = serde_json::to_string(&next).expect("the told state serialises");
        if let Err(e) = store.set_meta(TOLD_KEY, &text) {
            // Sending now would send it again next run, and every run after.
            tracing::warn!(error = %e, "Cannot record what is notified; notifying nothing this run.");
            return;
        }
    }
    let host = host();
    let mut dead: Vec<Channel> = Vec::new();
    for event in &events {
        let message = Message::of(event, &host);
        let mut results = if dead.is_empty() {
            send_all(config, &message).await
        } else {
            let live = NotifyConfig {
                webhook: config.webhook.clone().filter(|_| !dead.contains(&Channel::Webhook)),
                email: config.email.clone().filter(|_| !dead.contains(&Channel::Email)),
                timeout: config.timeout,
            };
            let mut results = send_all(&live, &message).await;
            results
                .extend(dead.iter().map(|c| (*c, Err("skipped: it failed earlier in this run".to_owned()))));
            results
        };
        results.sort_by_key(|(c, _)| c.as_str());
        for (channel, result) in results {
            let outcome = match &result {
                Ok(()) => {
                    tracing::info!(channel = channel.as_str(), event = message.kind, "Notified.");
                    "sent"
                }
                Err(e) => {
                    tracing::warn!(channel = channel.as_str(), event = message.kind, error = %e, "Cannot notify.");
                    if !dead.contains(&channel) {
                        dead.push(channel);
                    }
                    "failed"
                }
            };
            count(store, channel, outcome);
        }
    }
}

/// Sends a test message through every configured channel (`scimsync check --notify`); what
/// each came to, counted like any other.
pub async fn test(config: &NotifyConfig, store: Option<&mut Store>) -> Vec<(Channel, Result<(), String>)> {
    let results = send_all(config, &Message::of(&Event::Test, &host())).await;
    if let Some(store) = store {
        for (channel, result) in &results {
            count(store, *channel, if result.is_ok() { "sent" } else { "failed" });
        }
    }
    results
}

fn count(store: &mut Store, channel: Channel, outcome: &str) {
    if let Err(e) = store.add_to_meta(&format!("notify.{outcome}.{}", channel.as_str()), 1) {
        tracing::warn!(error = %e, "Cannot count a notification.");
    }
}

/// The notifications sent and failed so far, by channel, for `/metrics`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Every channel, configured or not.
    pub by_channel: Vec<ChannelCount>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelCount {
    pub channel: &'static str,
    pub sent: u64,
    pub failed: u64,
}

impl Counts {
    pub fn read(store: &Store) -> crate::store::Result<Counts> {
        let kept = store.meta_prefixed("notify.")?;
        let get =
            |key: String| kept.iter().find(|(k, _)| *k == key).and_then(|(_, v)| v.parse().ok()).unwrap_or(0);
        let by_channel = Channel::ALL
            .iter()
            .map(|c| ChannelCount {
                channel: c.as_str(),
                sent: get(format!("notify.sent.{}", c.as_str())),
                failed: get(format!("notify.failed.{}", c.as_str())),
            })
            .collect();
        Ok(Counts { by_channel })
    }

    /// `scimsync_notifications_sent_total` and `scimsync_notifications_failed_total`, by channel.
    pub fn encode(&self, encoder: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let failed_help =
            "Notifications that could not be sent, by channel (the log says why: \"Cannot notify.\").";
        for (name, help, failed) in [
            ("scimsync_notifications_sent", "Notifications sent, by channel.", false),
            ("scimsync_notifications_failed", failed_help, true),
        ] {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            for c in &self.by_channel {
                let value = if failed { c.failed } else { c.sent };
                ConstCounter::new(value).encode(family.encode_family(&[("channel", c.channel)])?)?;
            }
        }
        Ok(())
    }
}
