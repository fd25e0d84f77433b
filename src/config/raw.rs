//! The config file as written: every key optional where a default exists, nothing checked yet.

use crate::mapping::RawMapping;
use crate::reconcile::policy::RawPolicy;
use crate::source::RawSource;
use crate::target::RawTarget;
use serde::Deserialize;
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
