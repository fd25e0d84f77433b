//! The `[target]` section: as written (`RawTarget`), and validated (`TargetConfig`).

use super::dialect::{Dialect, RawDialect};
use crate::model::Profile;
use crate::section::{check_url, resolve, ConfigErrors};
use serde::Deserialize;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, Default, Deserialize)]
pub struct RawTarget {
    pub url: Option<String>,
    pub profile: Option<String>,
    pub token_file: Option<PathBuf>,
    pub token_env: Option<String>,
    /// When the bearer token was issued (`YYYY-MM-DD`); it expires six months later.
    pub token_issued: Option<String>,
    /// When the bearer token expires (`YYYY-MM-DD`); overrides `token_issued`.
    pub token_expires: Option<String>,
    pub ca_file: Option<PathBuf>,
    pub concurrency: Option<u32>,
    pub rate_limit: Option<f64>,
    pub timeout_secs: Option<u64>,
    pub adoption: Option<String>,
    pub on_missing: Option<String>,
    pub user_types: Option<Vec<String>>,
    /// `[target.dialect]`: overrides of the profile's preset.
    #[serde(default)]
    pub dialect: RawDialect,
}

#[derive(Clone, Debug)]
pub struct TargetConfig {
    pub url: Option<String>,
    pub profile: Profile,
    pub token_file: Option<PathBuf>,
    pub token_env: Option<String>,
    /// Token expiry, seconds since the epoch.
    pub token_expires: Option<i64>,
    pub ca_file: Option<PathBuf>,
    pub concurrency: u32,
    pub rate_limit: Option<f64>,
    pub timeout_secs: u64,
    pub adopt: bool,
    pub recreate_missing: bool,
    /// How the target speaks SCIM: the profile's preset and `[target.dialect]` over it.
    pub dialect: Dialect,
}

fn parse_date(s: &str) -> Option<chrono::NaiveDate> {
    chrono::NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").ok()
}

impl RawTarget {
    /// The user types the target accepts (ninjaone), which the mapping's role rules are
    /// checked against.
    pub fn user_types(&self) -> Vec<String> {
        self.user_types.clone().unwrap_or_else(|| vec!["technician".into(), "endUser".into()])
    }

    /// Validates the section, pushing every problem to `errors`; a value that is wrong is
    /// replaced by its default, so that the sections that depend on this one are checked too.
    /// `base` resolves relative paths (the config file's directory).
    pub fn validate(self, base: &Path, errors: &mut ConfigErrors) -> TargetConfig {
        let t = self;
        let profile = t.profile(errors);
        let dialect = t.dialect.validate(profile, errors);
        if let Some(u) = &t.url {
            check_url(errors, "target.url", u);
        }
        let token_expires = t.token_expires(errors);
        let concurrency = t.concurrency.unwrap_or(4);
        if !(1..=64).contains(&concurrency) {
            errors.push("target.concurrency", "must be between 1 and 64");
        }
        if let Some(r) = t.rate_limit {
            if !(r > 0.0 && r.is_finite()) {
                errors.push("target.rate_limit", "must be a positive number of requests per second");
            }
        }
        let adopt = match t.adoption.as_deref() {
            None | Some("auto") => true,
            Some("never") => false,
            Some(o) => {
                errors.push("target.adoption", format!("{o:?}: use \"auto\" or \"never\""));
                true
            }
        };
        let recreate_missing = match t.on_missing.as_deref() {
            None | Some("report") => false,
            Some("recreate") => true,
            Some(o) => {
                errors.push("target.on_missing", format!("{o:?}: use \"report\" or \"recreate\""));
                false
            }
        };
        TargetConfig {
            url: t.url,
            profile,
            token_file: t.token_file.map(|p| resolve(base, p)),
            token_env: t.token_env,
            token_expires,
            ca_file: t.ca_file.map(|p| resolve(base, p)),
            concurrency,
            rate_limit: t.rate_limit,
            timeout_secs: t.timeout_secs.unwrap_or(30),
            adopt,
            recreate_missing,
            dialect,
        }
    }

    fn profile(&self, errors: &mut ConfigErrors) -> Profile {
        match self.profile.as_deref().map(str::to_ascii_lowercase).as_deref() {
            Some("ninjaone") | None => Profile::NinjaOne,
            Some("generic") => Profile::Generic,
            Some("entra-compat") => Profile::EntraCompat,
            Some(other) => {
                errors.push(
                    "target.profile",
                    format!("unknown profile {other:?}: use ninjaone, generic or entra-compat"),
                );
                Profile::NinjaOne
            }
        }
    }

    /// The token's expiry, seconds since the epoch: `token_expires`, or six months after
    /// `token_issued`.
    fn token_expires(&self, errors: &mut ConfigErrors) -> Option<i64> {
        let midnight = |d: chrono::NaiveDate| d.and_hms_opt(0, 0, 0).expect("midnight").and_utc().timestamp();
        if let Some(d) = &self.token_expires {
            match parse_date(d) {
                Some(d) => return Some(midnight(d)),
                None => errors.push("target.token_expires", format!("{d:?} is not a date: write YYYY-MM-DD")),
            }
        } else if let Some(d) = &self.token_issued {
            match parse_date(d).and_then(|d| d.checked_add_months(chrono::Months::new(6))) {
                Some(d) => return Some(midnight(d)),
                None => errors.push("target.token_issued", format!("{d:?} is not a date: write YYYY-MM-DD")),
            }
        }
        None
    }
}
