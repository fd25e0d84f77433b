//! Configuration: figment layers (TOML file, then `SCIMSYNC_…` environment) → `RawConfig` →
//! validated `Config`. Each component owns its section — its serde type, its validated type and
//! their validation — and `config` asks each in turn, so that every problem is reported at once,
//! each with its key.

mod service;

pub use service::{parse_cron, RawMetrics, RawSchedule, RawState};

use crate::mapping::{Mapping, RawMapping};
use crate::notify::{NotifyConfig, RawNotify};
use crate::quarantine;
use crate::reconcile::policy::RawPolicy;
use crate::reconcile::Policy;
use crate::section::ConfigErrors;
use crate::source::{RawSource, SourceConfig};
use crate::target::{RawTarget, TargetConfig};
use figment::providers::{Env, Format, Toml};
use figment::Figment;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The config file as written: every key optional where a default exists, nothing checked yet.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct RawConfig {
    #[serde(default)]
    pub source: RawSource,
    #[serde(default)]
    pub target: RawTarget,
    #[serde(default)]
    pub state: RawState,
    #[serde(default)]
    pub schedule: RawSchedule,
    #[serde(default)]
    pub metrics: RawMetrics,
    #[serde(default)]
    pub mapping: RawMapping,
    #[serde(default)]
    pub policy: RawPolicy,
    #[serde(default)]
    pub notify: RawNotify,
}

#[derive(Clone, Debug)]
pub struct Config {
    pub source: SourceConfig,
    pub target: TargetConfig,
    pub state_path: PathBuf,
    /// How long run records and the audit log are kept (`state.retention_days`).
    pub retention: crate::store::Retention,
    pub cron: String,
    pub watch: bool,
    /// A daemon run that reads a file source changed less than this long ago removes nothing
    /// (see `Policy::unconfirmed`), and a run this long after the change confirms; 0: off.
    pub settle_seconds: u64,
    pub metrics_listen: Option<SocketAddr>,
    /// `metrics.web_config_file`, read and checked: TLS and authentication for the endpoint.
    pub metrics_web: Option<std::sync::Arc<crate::web_config::WebConfig>>,
    pub mapping: Mapping,
    /// The planner policy; `now` is set per run.
    pub policy: Policy,
    pub quarantine: quarantine::Rules,
    pub notify: NotifyConfig,
    /// The file this config was loaded from (absolute when it could be made so); `None` when it
    /// was built otherwise. Messages name it in the commands they suggest.
    pub path: Option<PathBuf>,
    /// Problems that do not stop scimsync but that an administrator should see.
    pub warnings: Vec<String>,
}

/// The default config location.
pub const DEFAULT_PATH: &str = "/etc/scimsync/scimsync.toml";

/// Reads the layers into a raw config. Unknown keys and type errors are reported together,
/// each with its key and where it came from.
pub fn load_raw(path: &Path) -> Result<RawRead, ConfigErrors> {
    if !path.exists() {
        return Err(ConfigErrors::one(
            "",
            format!(
                "config file {} not found: pass --config PATH or create it from config/scimsync.example.toml",
                path.display()
            ),
        ));
    }
    let figment = Figment::new().merge(Toml::file(path)).merge(env_layer());
    from_figment(&figment, &path.display().to_string())
}

/// `SCIMSYNC_SECTION__KEY` variables; `SCIMSYNC_TOKEN` is the target token, not a config key.
fn env_layer() -> Env {
    Env::prefixed("SCIMSYNC_").filter(|k| !k.as_str().eq_ignore_ascii_case("token")).split("__")
}

/// A raw config as read, with the problems found while reading it.
pub struct RawRead {
    pub raw: RawConfig,
    pub errors: ConfigErrors,
    /// Sections that could not be read (a type error): validation problems in them are noise.
    pub broken: Vec<&'static str>,
}

const SECTIONS: [&str; 8] =
    ["source", "target", "state", "schedule", "metrics", "mapping", "policy", "notify"];

fn origin_of(figment: &Figment, key: &str) -> String {
    match figment.find_metadata(key) {
        Some(m) => match &m.source {
            Some(figment::Source::File(p)) => format!(" (in {})", p.display()),
            _ if m.name.contains("environment") => {
                format!(" (from the environment variable SCIMSYNC_{})", key.to_uppercase().replace('.', "__"))
            }
            _ => format!(" (from {})", m.name),
        },
        None => String::new(),
    }
}

/// Reads one section key by key, so that every unknown key and every type error is reported.
fn section<T: serde::de::DeserializeOwned + Default>(
    figment: &Figment,
    root: &figment::value::Dict,
    name: &'static str,
    read: &mut RawRead,
) -> T {
    use figment::value::{Dict, Value};
    let Some(value) = root.get(name) else { return T::default() };
    let Value::Dict(tag, dict) = value else {
        read.errors.push(name, format!("must be a table ([{name}]){}", origin_of(figment, name)));
        read.broken.push(name);
        return T::default();
    };
    let mut ok = true;
    for (k, v) in dict {
        let single = Value::Dict(*tag, Dict::from([(k.clone(), v.clone())]));
        let mut unknown = Vec::new();
        let mut track = |p: serde_ignored::Path<'_>| unknown.push(format!("{name}.{p}"));
        let result: Result<T, _> =
            serde_path_to_error::deserialize(serde_ignored::Deserializer::new(&single, &mut track));
        for key in unknown {
            let msg = format!(
                "unknown key{}: remove it or check its spelling against config/scimsync.example.toml",
                origin_of(figment, &key)
            );
            read.errors.push(&key, msg);
        }
        if let Err(e) = result {
            let key = format!("{name}.{}", e.path());
            let msg = format!("{}{}", e.into_inner().to_string().to_lowercase(), origin_of(figment, &key));
            read.errors.push(&key, msg);
            ok = false;
        }
    }
    if !ok {
        read.broken.push(name);
        return T::default();
    }
    T::deserialize(value).unwrap_or_default()
}

/// Deserialises a figment section by section, so that an unknown key or a type error in one
/// place does not hide the problems elsewhere.
pub fn from_figment(figment: &Figment, origin: &str) -> Result<RawRead, ConfigErrors> {
    let root: figment::value::Dict = figment
        .extract()
        .map_err(|e| ConfigErrors::one("", format!("{origin}: {}", e.to_string().to_lowercase())))?;
    let mut read = RawRead { raw: RawConfig::default(), errors: ConfigErrors::default(), broken: Vec::new() };
    for key in root.keys().filter(|k| !SECTIONS.contains(&k.as_str())) {
        let msg =
            format!("unknown section{}: the sections are {}", origin_of(figment, key), SECTIONS.join(", "));
        read.errors.push(key, msg);
    }
    read.raw = RawConfig {
        source: section(figment, &root, "source", &mut read),
        target: section(figment, &root, "target", &mut read),
        state: section(figment, &root, "state", &mut read),
        schedule: section(figment, &root, "schedule", &mut read),
        metrics: section(figment, &root, "metrics", &mut read),
        mapping: section(figment, &root, "mapping", &mut read),
        policy: section(figment, &root, "policy", &mut read),
        notify: section(figment, &root, "notify", &mut read),
    };
    Ok(read)
}

/// Validates a raw config, section by section, each by its owner; every section is checked
/// even when an earlier one has problems. `base` resolves relative paths (the config file's
/// directory).
pub fn validate(raw: RawConfig, base: &Path) -> Result<Config, ConfigErrors> {
    let mut errors = ConfigErrors::default();
    let source = raw.source.validate(base, &mut errors);
    let user_types = raw.target.user_types();
    let target = raw.target.validate(base, &mut errors);
    let (state_path, retention) = raw.state.validate(base, std::env::var_os("STATE_DIRECTORY").as_deref());
    let schedule = raw.schedule.validate(&mut errors);
    let metrics = raw.metrics.validate(base, &mut errors);
    let quarantine = quarantine::Rules::from_section(&raw.policy, &mut errors);
    let policy = raw.policy.validate(&mut errors);
    let notify = raw.notify.validate(base, &mut errors);
    let mapping = Mapping::compile(&raw.mapping, target.profile, source.kind, &user_types);
    match mapping {
        Ok((mapping, warnings)) if errors.is_empty() => Ok(Config {
            source,
            target,
            state_path,
            retention,
            cron: schedule.cron,
            watch: schedule.watch,
            settle_seconds: schedule.settle_seconds,
            metrics_listen: metrics.listen,
            metrics_web: metrics.web,
            mapping,
            policy,
            quarantine,
            notify,
            path: None,
            warnings,
        }),
        Ok(_) => Err(errors),
        Err(more) => {
            errors.0.extend(more.0);
            Err(errors)
        }
    }
}

/// Loads and validates, reporting every problem at once.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    let read = load_raw(path)?;
    let base = path.parent().unwrap_or(Path::new("."));
    let mut errors = read.errors;
    match validate(read.raw, base) {
        Ok(config) if errors.is_empty() => Ok(Config {
            path: Some(std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned())),
            ..config
        }),
        Ok(_) => Err(errors),
        Err(more) => {
            let in_broken = |key: &str| read.broken.iter().any(|b| key.split('.').next() == Some(*b));
            errors.0.extend(more.0.into_iter().filter(|e| !in_broken(&e.key)));
            Err(errors)
        }
    }
}

#[cfg(test)]
mod tests;
