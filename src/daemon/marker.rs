//! The LDAP source's change marker, polled every `source.change_poll_secs`: a run is asked for
//! only when the marker moved, so a directory change is provisioned within seconds without
//! reading the whole directory every minute. A marker that cannot be read leaves the schedule
//! in charge, with one warning.

use super::{Event, Trigger};
use crate::source::{ldap, SourceConfig};
use std::time::Duration;
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::JoinHandle;

/// The polling task; stopped when dropped.
pub(super) struct MarkerPoll {
    task: JoinHandle<()>,
    /// What it polls, to tell whether a reloaded config changes it.
    pub source: String,
}

impl Drop for MarkerPoll {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts polling when the source is LDAP with `change_poll_secs` set.
pub(super) fn start(source: &SourceConfig, events: &UnboundedSender<Event>) -> Option<MarkerPoll> {
    let every = source.ldap.as_ref()?.change_poll?;
    let key = describe(source);
    let task = tokio::spawn(poll(source.clone(), every, events.clone()));
    Some(MarkerPoll { task, source: key })
}

/// What identifies a poll: the server, base and interval.
pub(super) fn describe(source: &SourceConfig) -> String {
    source.ldap.as_ref().map_or_else(String::new, |s| format!("{} {} {:?}", s.url, s.base_dn, s.change_poll))
}

async fn poll(source: SourceConfig, every: Duration, events: UnboundedSender<Event>) {
    let Some(settings) = source.ldap.as_ref() else { return };
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last: Option<String> = None;
    let mut failing = false;
    loop {
        tick.tick().await;
        let marker = match ldap::password(&source, settings) {
            Ok(pw) => ldap::change_marker(settings, pw.as_ref()).await,
            Err(e) => Err(e.to_string()),
        };
        match marker {
            Ok(Some(m)) => {
                if failing {
                    tracing::info!("The directory's change marker can be read again.");
                    failing = false;
                }
                if last.as_ref().is_some_and(|l| *l != m) {
                    tracing::info!(marker = %m, "The directory changed: a run is requested.");
                    if events.send(Event::Trigger(Trigger::SourceChanged)).is_err() {
                        return;
                    }
                }
                last = Some(m);
            }
            Ok(None) => {
                tracing::warn!(
                    "The directory keeps no change marker scimsync can read (OpenLDAP: contextCSN needs \
                     the syncprov overlay; 389-ds: the USN plug-in): runs follow the schedule alone."
                );
                return;
            }
            Err(e) if !failing => {
                tracing::warn!("Cannot read the directory's change marker; runs follow the schedule until it can be read: {e}");
                failing = true;
            }
            Err(_) => {}
        }
    }
}
