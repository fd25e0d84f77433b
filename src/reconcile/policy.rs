//! What the planner may do: deprovisioning action per user type, the safety threshold, the grace
//! period, membership chunking and protected roles; and the `[policy]` section they are read
//! from (its serde type and pure checks).

use crate::section::ConfigErrors;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// What happens to a managed user that left the source.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Deprovision {
    /// `active = false`; the account stays in the target (the default).
    Deactivate,
    /// The account is deleted in the target.
    Delete,
}

/// Limits beyond which deprovisioning is held for approval.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Threshold {
    /// Hold when more than this many users would be deprovisioned.
    pub max_users: u64,
    /// Hold when more than this share (percent) of managed active users would be deprovisioned…
    pub max_percent: f64,
    /// …and that is also more than this many users.
    pub min_users: u64,
}

impl Default for Threshold {
    fn default() -> Self {
        Threshold { max_users: 500, max_percent: 10.0, min_users: 10 }
    }
}

/// A user must be missing this long before it is deprovisioned (both, when both are set).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grace {
    pub runs: u32,
    pub hours: u64,
}

impl Grace {
    pub fn is_off(&self) -> bool {
        self.runs <= 1 && self.hours == 0
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Policy {
    /// Deprovisioning action by `userType` value; users of other types get `default_deprovision`.
    pub deprovision: BTreeMap<String, Deprovision>,
    pub default_deprovision: Deprovision,
    pub delete_groups: bool,
    pub threshold: Threshold,
    /// Set when an administrator approved this run's deprovisioning: nothing is held.
    pub approved: bool,
    pub grace: Grace,
    pub membership_chunk: usize,
    /// Roles never assigned through SCIM (system administrators).
    pub protected_roles: BTreeSet<String>,
    /// The time of the run, seconds since the epoch (injected: the planner reads no clock).
    pub now: i64,
    /// Set (with the reason) when this run's read may be incomplete although it parsed — the
    /// daemon read the export right after it changed, while an export job may still be writing
    /// it in place: nothing is removed on its word. A missing user is marked missing but not
    /// deprovisioned; membership removals, group deletions and lost roles or values are
    /// deferred. A later read in no doubt does what is still wanted then.
    #[serde(default)]
    pub unconfirmed: Option<String>,
    /// Whether an update or reactivation carries the user as wanted, so that a user deleted by
    /// hand in the target is created again (`target.on_missing = "recreate"`).
    #[serde(default)]
    pub recreate_missing: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            deprovision: BTreeMap::new(),
            default_deprovision: Deprovision::Deactivate,
            delete_groups: true,
            threshold: Threshold::default(),
            approved: false,
            grace: Grace::default(),
            membership_chunk: 100,
            protected_roles: BTreeSet::new(),
            now: 0,
            unconfirmed: None,
            recreate_missing: false,
        }
    }
}

impl Policy {
    pub fn deprovision_for(&self, user_type: Option<&str>) -> Deprovision {
        user_type.and_then(|t| self.deprovision.get(t)).copied().unwrap_or(self.default_deprovision)
    }
}

/// The `[policy]` section as written: every key optional, nothing checked yet.
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

impl RawPolicy {
    /// Validates the section's planner keys, pushing every problem to `errors`; a value that
    /// is wrong is replaced by its default. The `quarantine_*` keys are read by
    /// [`crate::quarantine::Rules::from_section`].
    pub fn validate(self, errors: &mut ConfigErrors) -> Policy {
        let p = self;
        let mut policy = Policy::default();
        for (user_type, action) in p.deprovision.unwrap_or_default() {
            let d = parse_deprovision(errors, &format!("policy.deprovision.{user_type}"), &action);
            policy.deprovision.insert(user_type, d);
        }
        if let Some(d) = p.default_deprovision {
            policy.default_deprovision = parse_deprovision(errors, "policy.default_deprovision", &d);
        }
        policy.delete_groups = p.delete_groups.unwrap_or(true);
        let d = Threshold::default();
        policy.threshold = Threshold {
            max_users: p.max_deprovision.unwrap_or(d.max_users),
            max_percent: p.max_deprovision_percent.unwrap_or(d.max_percent),
            min_users: p.min_deprovision.unwrap_or(d.min_users),
        };
        if !(0.0..=100.0).contains(&policy.threshold.max_percent) {
            errors.push("policy.max_deprovision_percent", "must be between 0 and 100");
        }
        policy.grace = Grace { runs: p.grace_runs.unwrap_or(0), hours: p.grace_hours.unwrap_or(0) };
        let chunk = p.membership_chunk.unwrap_or(100);
        if !(1..=1000).contains(&chunk) {
            errors.push("policy.membership_chunk", "must be between 1 and 1000");
        }
        policy.membership_chunk = chunk;
        policy.protected_roles = p.protected_roles.unwrap_or_default().into_iter().collect();
        policy
    }
}

fn parse_deprovision(errors: &mut ConfigErrors, key: &str, v: &str) -> Deprovision {
    match v {
        "deactivate" => Deprovision::Deactivate,
        "delete" => Deprovision::Delete,
        o => {
            errors.push(key, format!("{o:?}: use \"deactivate\" or \"delete\""));
            Deprovision::Deactivate
        }
    }
}
