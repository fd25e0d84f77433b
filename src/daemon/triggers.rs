//! Where run requests come from: the cron schedule (tokio-cron-scheduler, local time) and changes
//! to a file source (notify on the parent directory, so an export replaced by rename is seen,
//! debounced until the directory has been quiet for a second).

use super::{Event, Trigger};
use crate::{config::Config, source::SourceKind};
use ::notify::event::{AccessKind, AccessMode, EventKind, ModifyKind};
use ::notify::{RecursiveMode, Watcher as _};
use anyhow::{anyhow, Context as _};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::mpsc::{self, UnboundedSender};
use tokio_cron_scheduler::{Job, JobScheduler};
use uuid::Uuid;

/// A change is acted on once no further event arrived for this long.
pub const DEBOUNCE: Duration = Duration::from_secs(1);

pub(super) struct Triggers {
    events: UnboundedSender<Event>,
    scheduler: JobScheduler,
    job: Uuid,
    cron: String,
    watch: Option<FileWatch>,
    marker: Option<super::marker::MarkerPoll>,
}

struct FileWatch {
    path: PathBuf,
    _watcher: ::notify::RecommendedWatcher,
}

impl Triggers {
    pub async fn start(config: &Config, events: UnboundedSender<Event>) -> anyhow::Result<Triggers> {
        let scheduler = JobScheduler::new().await.map_err(|e| anyhow!("starting the scheduler: {e}"))?;
        let job = scheduler
            .add(cron_job(&config.cron, events.clone())?)
            .await
            .map_err(|e| anyhow!("scheduling {:?}: {e}", config.cron))?;
        scheduler.start().await.map_err(|e| anyhow!("starting the scheduler: {e}"))?;
        let watch = file_watch(config, &events)?;
        let marker = super::marker::start(&config.source, &events);
        Ok(Triggers { events, scheduler, job, cron: config.cron.clone(), watch, marker })
    }

    /// Puts a reloaded config's schedule and watch in force. Everything new is set up before
    /// anything old is removed, so a failure leaves the triggers as they were.
    pub async fn update(&mut self, config: &Config) -> anyhow::Result<()> {
        let want_watch = watched_path(config);
        let new_watch = if want_watch.as_deref() != self.watch.as_ref().map(|w| w.path.as_path()) {
            Some(file_watch(config, &self.events)?)
        } else {
            None
        };
        if config.cron != self.cron {
            let job = self
                .scheduler
                .add(cron_job(&config.cron, self.events.clone())?)
                .await
                .map_err(|e| anyhow!("scheduling {:?}: {e}", config.cron))?;
            let old = std::mem::replace(&mut self.job, job);
            if let Err(e) = self.scheduler.remove(&old).await {
                tracing::warn!(error = %e, "Cannot remove the previous schedule.");
            }
            self.cron = config.cron.clone();
        }
        if let Some(watch) = new_watch {
            self.watch = watch;
        }
        let polled = self.marker.as_ref().map_or_else(String::new, |m| m.source.clone());
        if super::marker::describe(&config.source) != polled {
            self.marker = super::marker::start(&config.source, &self.events);
        }
        Ok(())
    }

    pub async fn stop(mut self) {
        self.marker = None;
        if let Err(e) = self.scheduler.shutdown().await {
            tracing::debug!(error = %e, "Scheduler shutdown.");
        }
    }
}

fn cron_job(cron: &str, events: UnboundedSender<Event>) -> anyhow::Result<Job> {
    Job::new_async_tz(cron, chrono::Local, move |_, _| {
        let events = events.clone();
        Box::pin(async move {
            let _ = events.send(Event::Trigger(Trigger::Schedule));
        })
    })
    .map_err(|e| anyhow!("schedule.cron {cron:?} cannot be scheduled: {e}"))
}

/// The file to watch: file sources with `schedule.watch = true`.
fn watched_path(config: &Config) -> Option<PathBuf> {
    match config.source.kind {
        SourceKind::Ldif | SourceKind::Csv | SourceKind::Json if config.watch => config.source.path.clone(),
        SourceKind::Ldif | SourceKind::Csv | SourceKind::Json | SourceKind::Scim | SourceKind::Ldap => None,
    }
}

fn file_watch(config: &Config, events: &UnboundedSender<Event>) -> anyhow::Result<Option<FileWatch>> {
    let Some(path) = watched_path(config) else { return Ok(None) };
    let watcher = watch(&path, events.clone())?;
    tracing::debug!(path = %path.display(), "Watching the source file.");
    Ok(Some(FileWatch { path, _watcher: watcher }))
}

/// Events that mean the file's content may have changed: written, closed after writing,
/// created, renamed to or from, removed. Not opens and reads (scimsync's own), nor metadata.
fn relevant(kind: &EventKind) -> bool {
    match kind {
        EventKind::Create(_) | EventKind::Remove(_) => true,
        EventKind::Modify(ModifyKind::Metadata(_)) => false,
        EventKind::Modify(_) => true,
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) | EventKind::Any | EventKind::Other => false,
    }
}

/// Watches `path`'s directory (a file replaced by rename is a new inode: a watch on the file
/// itself would go blind) and reports changes to that name after a quiet second.
fn watch(path: &Path, events: UnboundedSender<Event>) -> anyhow::Result<::notify::RecommendedWatcher> {
    let name: OsString =
        path.file_name().with_context(|| format!("source.path {} names no file", path.display()))?.to_owned();
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    let (raw_tx, raw_rx) = mpsc::unbounded_channel();
    let mut watcher =
        ::notify::recommended_watcher(move |res: ::notify::Result<::notify::Event>| match res {
            Ok(event) => {
                if relevant(&event.kind)
                    && event.paths.iter().any(|p| p.file_name() == Some(name.as_os_str()))
                {
                    let _ = raw_tx.send(());
                }
            }
            Err(e) => tracing::warn!(error = %e, "File watch error; the schedule still runs."),
        })
        .context("starting the file watcher")?;
    watcher.watch(&dir, RecursiveMode::NonRecursive).with_context(|| {
        format!(
            "cannot watch {} for changes to the source (set schedule.watch = false to rely on the schedule)",
            dir.display()
        )
    })?;
    tokio::spawn(debounce(raw_rx, events));
    Ok(watcher)
}

/// One trigger per burst of events, sent once the burst has been quiet for [`DEBOUNCE`]. Ends
/// when the watcher is dropped.
async fn debounce(mut raw: mpsc::UnboundedReceiver<()>, events: UnboundedSender<Event>) {
    while raw.recv().await.is_some() {
        loop {
            match tokio::time::timeout(DEBOUNCE, raw.recv()).await {
                Ok(Some(())) => continue,
                Ok(None) => return,
                Err(_quiet) => break,
            }
        }
        tracing::debug!("The source file changed.");
        if events.send(Event::Trigger(Trigger::SourceChanged)).is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ::notify::event::{CreateKind, RenameMode};

    #[test]
    fn reads_and_metadata_are_not_changes_but_writes_and_renames_are() {
        assert!(!relevant(&EventKind::Access(AccessKind::Open(AccessMode::Any))));
        assert!(!relevant(&EventKind::Access(AccessKind::Close(AccessMode::Read))));
        assert!(!relevant(&EventKind::Modify(ModifyKind::Metadata(::notify::event::MetadataKind::Any))));
        assert!(relevant(&EventKind::Access(AccessKind::Close(AccessMode::Write))));
        assert!(relevant(&EventKind::Modify(ModifyKind::Name(RenameMode::To))));
        assert!(relevant(&EventKind::Create(CreateKind::File)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_of_events_is_one_trigger_after_a_quiet_second() {
        let (raw_tx, raw_rx) = mpsc::unbounded_channel();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(debounce(raw_rx, tx));
        for _ in 0..5 {
            raw_tx.send(()).unwrap();
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        assert!(rx.try_recv().is_err(), "nothing while events keep coming");
        tokio::time::sleep(DEBOUNCE).await;
        assert!(matches!(rx.recv().await, Some(Event::Trigger(Trigger::SourceChanged))));
        assert!(rx.try_recv().is_err(), "one trigger for the burst");
        drop(raw_tx);
        task.await.unwrap();
    }
}
