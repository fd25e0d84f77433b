//! The config file as written: every key optional where a default exists, nothing checked yet.

use crate::mapping::RawMapping;
use crate::source::RawSource;
use crate::target::RawTarget;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

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
}

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

#[derive(Clone, Debug, Default, Deserialize)]
pub struct RawPolicy {
    /// `userType` → `deactivate` | `delete` for users that left the source.
    pub deprovision: Option<BTreeMap<String, String>>,
    pub default_deprovision: Option<String>,
    pub delete_groups: Option<bool>,
    pub max_deprovision: Option<u64>,
    pub max_deprovision_percent: Option<f64>,
    pub min_deprovision: Option<u64>,
    pub grace_runs: Option<u32>,
    pub grace_hours: Option<u64>,
    pub membership_chunk: Option<usize>,
    pub protected_roles: Option<Vec<String>>,
    /// Quarantine after more than this share of a run's operations failed…
    pub quarantine_failure_percent: Option<f64>,
    /// …in a run of at least this many operations;
    pub quarantine_min_operations: Option<u64>,
    /// or after this many consecutive runs refused with 401/403.
    pub quarantine_auth_failures: Option<u32>,
    pub quarantine_backoff_minutes: Option<u64>,
    pub quarantine_max_backoff_minutes: Option<u64>,
}
