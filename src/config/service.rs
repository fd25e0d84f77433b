//! The sections no single component owns: where the snapshot lives (`[state]`), when the daemon
//! runs (`[schedule]`) and where it serves its metrics (`[metrics]`).

use crate::section::{resolve, ConfigErrors};
use crate::store::Retention;
use crate::web_config::WebConfig;
use serde::Deserialize;
use std::ffi::OsStr;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Clone, Debug, Default, Deserialize)]
pub struct RawState {
    pub path: Option<PathBuf>,
    /// How long run records and the audit log are kept; 0 keeps them forever.
    pub retention_days: Option<u32>,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct RawSchedule {
    pub cron: Option<String>,
    pub watch: Option<bool>,
    pub settle_seconds: Option<u64>,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct RawMetrics {
    pub listen: Option<String>,
    pub web_config_file: Option<PathBuf>,
}

/// `[metrics]` validated; its fields are `Config`'s.
pub(super) struct Metrics {
    pub listen: Option<SocketAddr>,
    pub web: Option<Arc<WebConfig>>,
}

/// `[schedule]` validated; its fields are `Config`'s.
pub(super) struct Schedule {
    pub cron: String,
    pub watch: bool,
    pub settle_seconds: u64,
}

impl RawState {
    /// The snapshot's path (`base` resolves a relative one: the config file's directory) and how
    /// long runs and the audit log are kept: a year unless set, forever when set to 0. Unset,
    /// the path is `state.db` in `state_directory` (systemd's `$STATE_DIRECTORY`: the unit's own
    /// `StateDirectory=`, so each `scimsync@NAME` instance has its own), else
    /// `/var/lib/scimsync/state.db`.
    pub(super) fn validate(self, base: &Path, state_directory: Option<&OsStr>) -> (PathBuf, Retention) {
        let default = || match state_directory.and_then(|dirs| std::env::split_paths(dirs).next()) {
            Some(dir) if dir.is_absolute() => dir.join("state.db"),
            _ => "/var/lib/scimsync/state.db".into(),
        };
        let retention = match self.retention_days.unwrap_or(365) {
            0 => Retention::Forever,
            days => Retention::Days(days),
        };
        (resolve(base, self.path.unwrap_or_else(default)), retention)
    }
}

impl RawSchedule {
    pub(super) fn validate(self, errors: &mut ConfigErrors) -> Schedule {
        let cron = self.cron.unwrap_or_else(|| "0 */15 * * * *".into());
        let settle_seconds = self.settle_seconds.unwrap_or(60);
        if settle_seconds > 86_400 {
            errors.push("schedule.settle_seconds", "must be at most 86400 (a day)");
        }
        let fields = cron.split_whitespace().count();
        if !(6..=7).contains(&fields) {
            errors.push(
                "schedule.cron",
                format!("{cron:?} has {fields} fields: write 6 (with seconds), e.g. \"0 */15 * * * *\""),
            );
        } else if let Err(e) = parse_cron(&cron) {
            errors.push("schedule.cron", e);
        }
        Schedule { cron, watch: self.watch.unwrap_or(true), settle_seconds }
    }
}

impl RawMetrics {
    /// The metrics endpoint: any address, but one other hosts can reach only with a web config
    /// that both enables TLS and authenticates. The web config is read here (start and reload).
    pub(super) fn validate(self, base: &Path, errors: &mut ConfigErrors) -> Metrics {
        let web_set = self.web_config_file.is_some();
        let web = self.web_config_file.map(|f| resolve(base, f)).and_then(|f| match WebConfig::load(&f) {
            Ok(web) => Some(Arc::new(web)),
            Err(problems) => {
                for p in problems {
                    errors.push("metrics.web_config_file", p);
                }
                None
            }
        });
        let Some(l) = self.listen else {
            if web.is_some() {
                errors.push(
                    "metrics.web_config_file",
                    "has no effect without metrics.listen: set both or remove it",
                );
            }
            return Metrics { listen: None, web: None };
        };
        let Ok(addr) = l.parse::<SocketAddr>() else {
            errors.push("metrics.listen", format!("{l:?} is not an address: write 127.0.0.1:9464"));
            return Metrics { listen: None, web };
        };
        if !addr.ip().is_loopback() {
            match &web {
                Some(w) if w.tls().is_some() && w.authenticates() => {}
                Some(w) => errors.push(
                    "metrics.web_config_file",
                    format!(
                        "{} must enable TLS (tls_server_config with cert_file and key_file) and authentication (basic_auth_users, or client_auth_type: RequireAndVerifyClientCert with client_ca_file) for metrics.listen = {addr}, which other hosts can reach",
                        w.path.display()
                    ),
                ),
                // A web config that did not load is reported under its own key.
                None if web_set => {}
                None => errors.push(
                    "metrics.listen",
                    format!(
                        "{addr} is not a loopback address, so other hosts could read the endpoint: set metrics.web_config_file to a web config (the Prometheus exporter format, see contrib/web-config.yml) with tls_server_config (cert_file, key_file) and basic_auth_users, or listen on 127.0.0.1:{}",
                        addr.port()
                    ),
                ),
            }
        }
        Metrics { listen: Some(addr), web }
    }
}

/// Parses `schedule.cron` exactly as the daemon's scheduler (tokio-cron-scheduler) does: six
/// fields with seconds, day-of-month and day-of-week both honoured.
pub fn parse_cron(expr: &str) -> Result<croner::Cron, String> {
    croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Required)
        .dom_and_dow(true)
        .build()
        .parse(expr)
        .map_err(|e| format!("{expr:?} is not a cron expression ({e}): write 6 fields with seconds, e.g. \"0 */15 * * * *\""))
}
