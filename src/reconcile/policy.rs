//! What the planner may do: deprovisioning action per user type, the safety threshold, the grace
//! period, membership chunking and protected roles.

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
