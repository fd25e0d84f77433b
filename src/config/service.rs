//! The sections no single component owns: where the snapshot lives (`[state]`), when the daemon
//! runs (`[schedule]`) and where it serves its metrics (`[metrics]`).

use crate::section::{resolve, ConfigErrors};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, Default, Deserialize)]
pub struct RawState {
    pub path: Option<PathBuf>,
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
}

/// `[schedule]` validated; its fields are `Config`'s.
pub(super) struct Schedule {
    pub cron: String,
    pub watch: bool,
    pub settle_seconds: u64,
}

impl RawState {
    /// The snapshot's path; `base` resolves a relative one (the config file's directory).
    pub(super) fn validate(self, base: &Path) -> PathBuf {
        resolve(base, self.path.unwrap_or_else(|| "/var/lib/scimsync/state.db".into()))
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
    /// The metrics endpoint's address, loopback only.
    pub(super) fn validate(self, errors: &mut ConfigErrors) -> Option<SocketAddr> {
        let l = self.listen?;
        match l.parse::<SocketAddr>() {
            Ok(a) if a.ip().is_loopback() => Some(a),
            Ok(_) => {
                errors.push("metrics.listen", "must be a loopback address (127.0.0.1:PORT or [::1]:PORT): the endpoint has no authentication");
                None
            }
            Err(_) => {
                errors.push("metrics.listen", format!("{l:?} is not an address: write 127.0.0.1:9464"));
                None
            }
        }
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
