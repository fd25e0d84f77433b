//! `scimsync run`: triggers (cron schedule, source file changes, start-up) → one worker that runs
//! one sync at a time; SIGHUP reloads the config; SIGTERM/SIGINT finish the operations in flight,
//! commit and exit 0; systemd notifications; the optional `/healthz` + `/metrics` endpoint.
//!
//! Expected flow: take the instance lock, migrate the state database, bind the metrics
//! endpoint, start the triggers and the worker, send `READY=1`, then loop over [`Event`]s.
//!
//! Guarantees: runs never overlap (one worker) and triggers coalesce — they carry no payload and
//! go through a channel of capacity one with `try_send`, so a burst of file events while a run
//! is going leaves exactly one run waiting; a run reads the whole source, so the scheduled run
//! covers any file event that was lost. A config is swapped in only after it validated; a run
//! uses the config it started with.
//!
//! Caveats: `metrics.listen` and `state.path` changes need a restart (a reload that changes
//! `state.path` is refused, since the lock is held on the old one); the web config
//! (`metrics.web_config_file`) is read again on reload and applies to the next connection.

mod health;
mod http;
mod marker;
mod metrics;
mod triggers;
mod worker;

use crate::clock::now;
use crate::config::{self, Config};
use crate::store::{InstanceLock, Store};
use anyhow::Context as _;
use sd_notify::NotifyState;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::sync::mpsc;

pub use health::{Health, LastRun, Live};

/// Why a run was asked for. Triggers carry no other payload: every run reads the whole source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    Startup,
    Schedule,
    SourceChanged,
    /// A run `schedule.settle_seconds` after a run whose read may have been incomplete (a file
    /// source that had just changed, or that changed while it was read): it confirms or not.
    Settled,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Startup => "startup",
            Trigger::Schedule => "schedule",
            Trigger::SourceChanged => "source_changed",
            Trigger::Settled => "settled",
        }
    }
}

/// What the main loop reacts to.
#[derive(Debug)]
enum Event {
    /// A run is due (schedule, file change, start-up).
    Trigger(Trigger),
    /// SIGHUP: re-read and validate the config.
    Reload,
    /// SIGTERM or SIGINT: finish the operations in flight, commit, exit.
    Shutdown(&'static str),
}

/// State shared by the main loop, the worker and the HTTP endpoint.
pub(crate) struct Shared {
    config: RwLock<Arc<Config>>,
    live: Mutex<Live>,
    /// Set on shutdown: the executor stops dispatching, the worker starts no new run.
    stop: Arc<AtomicBool>,
}

impl Shared {
    fn config(&self) -> Arc<Config> {
        self.config.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn live(&self) -> std::sync::MutexGuard<'_, Live> {
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Sends a notification to systemd; a no-op without `NOTIFY_SOCKET`.
fn notify(states: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!(error = %e, "Cannot notify systemd.");
    }
}

/// Runs the daemon until SIGTERM or SIGINT. `config` has been validated.
pub fn run(config_path: &Path, config: Config) -> anyhow::Result<ExitCode> {
    let lock = InstanceLock::acquire(&config.state_path)?;
    Store::open(&config.state_path).context("opening the state database")?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("scimsync")
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let code = rt.block_on(serve(config_path.to_owned(), config));
    rt.shutdown_timeout(std::time::Duration::from_secs(2));
    drop(lock);
    code
}

struct Signals {
    hup: Signal,
    term: Signal,
    int: Signal,
}

impl Signals {
    fn install() -> anyhow::Result<Signals> {
        let install = |kind, name| signal(kind).with_context(|| format!("installing the {name} handler"));
        Ok(Signals {
            hup: install(SignalKind::hangup(), "SIGHUP")?,
            term: install(SignalKind::terminate(), "SIGTERM")?,
            int: install(SignalKind::interrupt(), "SIGINT")?,
        })
    }

    /// The next signal as an event.
    async fn recv(&mut self) -> Event {
        tokio::select! {
            _ = self.hup.recv() => Event::Reload,
            _ = self.term.recv() => Event::Shutdown("SIGTERM"),
            _ = self.int.recv() => Event::Shutdown("SIGINT"),
        }
    }

    async fn shutdown(&mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        }
    }
}

async fn serve(config_path: PathBuf, config: Config) -> anyhow::Result<ExitCode> {
    let mut signals = Signals::install()?;
    let started = now();
    let shared = Arc::new(Shared {
        config: RwLock::new(Arc::new(config.clone())),
        live: Mutex::new(Live { started_at: started, ..Live::default() }),
        stop: Arc::new(AtomicBool::new(false)),
    });
    let http = match config.metrics_listen {
        Some(addr) => {
            let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| {
                format!("cannot listen on metrics.listen = {addr}: is another process using the port?")
            })?;
            let tls = config.metrics_web.as_ref().is_some_and(|w| w.tls().is_some());
            tracing::info!(%addr, tls, "Serving /healthz and /metrics.");
            Some(tokio::spawn(http::serve(listener, shared.clone())))
        }
        None => None,
    };
    let (events_tx, mut events) = mpsc::unbounded_channel();
    let mut triggers = triggers::Triggers::start(&config, events_tx.clone()).await?;
    let (work_tx, work_rx) = mpsc::channel(1);
    let watchdog = sd_notify::watchdog_enabled();
    let worker = tokio::spawn(worker::run(work_rx, shared.clone(), watchdog, events_tx.clone()));
    notify(&[NotifyState::Ready, NotifyState::Status("started; first run under way")]);
    tracing::info!(
        config = %config_path.display(),
        state = %config.state_path.display(),
        cron = %config.cron,
        watch = config.watch,
        watchdog_secs = watchdog.map(|d| d.as_secs_f64()),
        "Started."
    );
    let _ = events_tx.send(Event::Trigger(Trigger::Startup));

    let signal = loop {
        let event = tokio::select! {
            Some(event) = events.recv() => event,
            event = signals.recv() => event,
        };
        match event {
            Event::Trigger(trigger) => match work_tx.try_send(trigger) {
                Ok(()) => tracing::debug!(trigger = trigger.as_str(), "Run requested."),
                Err(mpsc::error::TrySendError::Full(_)) => {
                    tracing::debug!(
                        trigger = trigger.as_str(),
                        "A run is already waiting; trigger coalesced."
                    )
                }
                Err(mpsc::error::TrySendError::Closed(_)) => break "worker ended",
            },
            Event::Reload => reload(&config_path, &shared, &mut triggers).await,
            Event::Shutdown(name) => break name,
        }
    };

    shared.stop.store(true, Ordering::SeqCst);
    let running = shared.live().running_since.is_some();
    notify(&[NotifyState::Stopping]);
    tracing::info!(signal, running, "Stopping: finishing the operations in flight.");
    drop(work_tx);
    triggers.stop().await;
    let code = tokio::select! {
        joined = worker => {
            joined.context("the worker task failed")?;
            tracing::info!("Stopped.");
            ExitCode::SUCCESS
        }
        name = signals.shutdown() => {
            tracing::warn!(signal = name, "Second signal: exiting without waiting; the next run resolves the operations in flight from the journal.");
            ExitCode::from(1)
        }
    };
    if let Some(http) = http {
        http.abort();
    }
    Ok(code)
}

/// SIGHUP: swap in the new config only if it validates and can be put in force.
async fn reload(path: &Path, shared: &Shared, triggers: &mut triggers::Triggers) {
    let monotonic = sd_notify::NotifyState::monotonic_usec_now().ok();
    notify(&[NotifyState::Reloading].into_iter().chain(monotonic).collect::<Vec<_>>());
    let old = shared.config();
    let result = match tokio::task::spawn_blocking({
        let path = path.to_owned();
        move || config::load(&path)
    })
    .await
    {
        Ok(Ok(new)) => check_reload(&old, new),
        Ok(Err(errors)) => Err(errors.to_string()),
        Err(e) => Err(format!("reading the config failed: {e}")),
    };
    let result = match result {
        Ok(new) => triggers.update(&new).await.map(|()| new).map_err(|e| format!("{e:#}")),
        Err(e) => Err(e),
    };
    match result {
        Ok(new) => {
            for w in &new.warnings {
                tracing::warn!("{w}");
            }
            if new.metrics_listen != old.metrics_listen {
                tracing::warn!("metrics.listen changed: the new address takes effect after a restart.");
            }
            tracing::info!(config = %path.display(), cron = %new.cron, watch = new.watch, "Reloaded the config.");
            *shared.config.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(new);
        }
        Err(reason) => {
            tracing::error!(config = %path.display(), error = %reason, "Kept the previous config: the new one is not usable.");
        }
    }
    notify(&[NotifyState::Ready]);
}

/// What a running daemon cannot change by reloading.
fn check_reload(old: &Config, new: Config) -> Result<Config, String> {
    if new.state_path != old.state_path {
        return Err(format!(
            "state.path changed from {} to {}: restart scimsync to use another state database",
            old.state_path.display(),
            new.state_path.display()
        ));
    }
    Ok(new)
}
