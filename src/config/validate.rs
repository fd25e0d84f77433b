//! Pure validation: `RawConfig` → `Config`, collecting every problem with its key.

use super::raw::*;
use crate::mapping::Mapping;
use crate::reconcile::Policy;
use crate::section::{resolve, ConfigErrors};
use crate::source::SourceConfig;
use crate::target::TargetConfig;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug)]
pub struct Config {
    pub source: SourceConfig,
    pub target: TargetConfig,
    pub state_path: PathBuf,
    pub cron: String,
    pub watch: bool,
    /// A daemon run that reads a file source changed less than this long ago removes nothing
    /// (see `Policy::unconfirmed`), and a run this long after the change confirms; 0: off.
    pub settle_seconds: u64,
    pub metrics_listen: Option<SocketAddr>,
    pub mapping: Mapping,
    /// The planner policy; `now` is set per run.
    pub policy: Policy,
    pub quarantine: crate::quarantine::Rules,
    /// Problems that do not stop scimsync but that an administrator should see.
    pub warnings: Vec<String>,
}

/// Validates a raw config. `base` resolves relative paths (the config file's directory).
pub fn validate(raw: RawConfig, base: &Path) -> Result<Config, ConfigErrors> {
    let mut errors = ConfigErrors::default();
    let mut warnings = Vec::new();

    let source = raw.source.validate(base, &mut errors);
    let kind = source.kind;

    let user_types = raw.target.user_types();
    let target = raw.target.validate(base, &mut errors);
    let profile = target.profile;

    let state_path = resolve(base, raw.state.path.unwrap_or_else(|| "/var/lib/scimsync/state.db".into()));
    let cron = raw.schedule.cron.unwrap_or_else(|| "0 */15 * * * *".into());
    let settle_seconds = raw.schedule.settle_seconds.unwrap_or(60);
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
    let metrics_listen = match raw.metrics.listen {
        None => None,
        Some(l) => match l.parse::<SocketAddr>() {
            Ok(a) if a.ip().is_loopback() => Some(a),
            Ok(_) => {
                errors.push("metrics.listen", "must be a loopback address (127.0.0.1:PORT or [::1]:PORT): the endpoint has no authentication");
                None
            }
            Err(_) => {
                errors.push("metrics.listen", format!("{l:?} is not an address: write 127.0.0.1:9464"));
                None
            }
        },
    };

    let quarantine = crate::quarantine::Rules::from_section(&raw.policy, &mut errors);
    let policy = raw.policy.validate(&mut errors);
    let mapping = match Mapping::compile(&raw.mapping, profile, kind, &user_types) {
        Ok((m, w)) => {
            warnings.extend(w);
            Some(m)
        }
        Err(es) => {
            errors.0.extend(es.0);
            None
        }
    };
    match mapping {
        Some(mapping) if errors.is_empty() => Ok(Config {
            source,
            target,
            state_path,
            cron,
            watch: raw.schedule.watch.unwrap_or(true),
            settle_seconds,
            metrics_listen,
            mapping,
            policy,
            quarantine,
            warnings,
        }),
        _ => Err(errors),
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
