//! The plan: an ordered list of operations, a value that can be printed, stored and applied.

use crate::model::{Attr, DesiredUser, Skip, SourceKey};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// One attribute change of an update.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Change {
    /// Set (`after` present) or remove (`after` absent) a single-valued attribute.
    Set { attr: Attr, before: Option<String>, after: Option<String> },
    /// Replace the user's roles.
    Roles { before: Vec<String>, after: Vec<String> },
}

/// Why a user is deprovisioned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// No longer in the source.
    Missing,
    /// Still in the source but marked inactive there (AD `userAccountControl`, SCIM `active`).
    InactiveInSource,
}

/// One operation on the target, carrying everything applying it needs but the target ids:
/// objects are named by source key, and the executor resolves their ids from the snapshot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    CreateUser {
        user: DesiredUser,
    },
    UpdateUser {
        key: SourceKey,
        user_name: String,
        changes: Vec<Change>,
        /// The user as wanted, created again if the target lost it ([`Policy::recreate_missing`]).
        ///
        /// [`Policy::recreate_missing`]: crate::reconcile::Policy::recreate_missing
        #[serde(default, skip_serializing_if = "Option::is_none")]
        recreate: Option<Box<DesiredUser>>,
    },
    ReactivateUser {
        key: SourceKey,
        user_name: String,
        changes: Vec<Change>,
        /// As for [`Op::UpdateUser`].
        #[serde(default, skip_serializing_if = "Option::is_none")]
        recreate: Option<Box<DesiredUser>>,
    },
    DeactivateUser {
        key: SourceKey,
        user_name: String,
        reason: Reason,
    },
    DeleteUser {
        key: SourceKey,
        user_name: String,
        reason: Reason,
    },
    CreateGroup {
        key: SourceKey,
        display_name: String,
    },
    RenameGroup {
        key: SourceKey,
        from: String,
        to: String,
    },
    AddMembers {
        key: SourceKey,
        display_name: String,
        members: Vec<SourceKey>,
    },
    RemoveMembers {
        key: SourceKey,
        display_name: String,
        members: Vec<SourceKey>,
    },
    DeleteGroup {
        key: SourceKey,
        display_name: String,
    },
}

impl Op {
    pub fn key(&self) -> &SourceKey {
        match self {
            Op::CreateUser { user } => &user.key,
            Op::UpdateUser { key, .. }
            | Op::ReactivateUser { key, .. }
            | Op::DeactivateUser { key, .. }
            | Op::DeleteUser { key, .. }
            | Op::CreateGroup { key, .. }
            | Op::RenameGroup { key, .. }
            | Op::AddMembers { key, .. }
            | Op::RemoveMembers { key, .. }
            | Op::DeleteGroup { key, .. } => key,
        }
    }

    /// The operation's name in reports and JSON (`create_user`, …).
    pub fn kind(&self) -> &'static str {
        match self {
            Op::CreateUser { .. } => "create_user",
            Op::UpdateUser { .. } => "update_user",
            Op::ReactivateUser { .. } => "reactivate_user",
            Op::DeactivateUser { .. } => "deactivate_user",
            Op::DeleteUser { .. } => "delete_user",
            Op::CreateGroup { .. } => "create_group",
            Op::RenameGroup { .. } => "rename_group",
            Op::AddMembers { .. } => "add_members",
            Op::RemoveMembers { .. } => "remove_members",
            Op::DeleteGroup { .. } => "delete_group",
        }
    }

    /// The execution phase: operations run phase by phase, in this order; within a phase they
    /// are independent of each other except for operations on the same object.
    pub fn phase(&self) -> u8 {
        match self {
            Op::CreateUser { .. } => 0,
            Op::ReactivateUser { .. } => 1,
            Op::UpdateUser { .. } => 2,
            Op::CreateGroup { .. } => 3,
            Op::RenameGroup { .. } => 4,
            Op::RemoveMembers { .. } => 5,
            Op::AddMembers { .. } => 6,
            Op::DeleteGroup { .. } => 7,
            Op::DeactivateUser { .. } | Op::DeleteUser { .. } => 8,
        }
    }

    pub fn is_user_op(&self) -> bool {
        matches!(
            self,
            Op::CreateUser { .. }
                | Op::UpdateUser { .. }
                | Op::ReactivateUser { .. }
                | Op::DeactivateUser { .. }
                | Op::DeleteUser { .. }
        )
    }

    /// The userName or displayName the operation is about.
    pub fn label(&self) -> &str {
        match self {
            Op::CreateUser { user } => user.user_name(),
            Op::UpdateUser { user_name, .. }
            | Op::ReactivateUser { user_name, .. }
            | Op::DeactivateUser { user_name, .. }
            | Op::DeleteUser { user_name, .. } => user_name,
            Op::CreateGroup { display_name, .. }
            | Op::AddMembers { display_name, .. }
            | Op::RemoveMembers { display_name, .. }
            | Op::DeleteGroup { display_name, .. } => display_name,
            Op::RenameGroup { to, .. } => to,
        }
    }

    /// Every source key the operation names: the object itself and, for memberships, the users.
    pub fn keys(&self) -> Vec<&SourceKey> {
        let mut keys = vec![self.key()];
        if let Op::AddMembers { members, .. } | Op::RemoveMembers { members, .. } = self {
            keys.extend(members.iter());
        }
        keys
    }
}

/// A managed user that left the source but is still within its grace period.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    pub key: SourceKey,
    pub user_name: String,
    /// When it was first seen missing (seconds since the epoch).
    pub missing_since: i64,
    /// Runs it has been missing, this one included.
    pub missing_runs: u32,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// Operations to apply, in order.
    pub ops: Vec<Op>,
    /// Deprovisioning held by the safety threshold; released by `scimsync approve RUN`.
    pub held: Vec<Op>,
    pub hold_reason: Option<String>,
    /// Removals left for a later run because this run's read may be incomplete
    /// ([`super::Policy::unconfirmed`], or an export that ends inside its last entry): never
    /// applied from this plan; the next run plans them again if the source still wants them.
    #[serde(default)]
    pub deferred: Vec<Op>,
    #[serde(default)]
    pub defer_reason: Option<String>,
    pub pending: Vec<Pending>,
    pub skipped: Vec<Skip>,
    pub warnings: Vec<String>,
    /// Managed users seen in this run that carry a missing mark, which is cleared when the run
    /// is recorded (the others have none to clear).
    #[serde(skip)]
    pub present: BTreeSet<SourceKey>,
}

/// Counts by kind, with the exact keys of `plan --format json`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub create_user: u64,
    pub update_user: u64,
    pub deactivate_user: u64,
    pub reactivate_user: u64,
    pub delete_user: u64,
    pub create_group: u64,
    pub update_group: u64,
    pub delete_group: u64,
    pub held: u64,
    /// Removals deferred by a read in doubt; in the JSON only when there are some.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub deferred: u64,
    pub skipped: u64,
    pub warnings: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty() && self.held.is_empty()
    }

    pub fn is_held(&self) -> bool {
        !self.held.is_empty()
    }

    pub fn summary(&self) -> Summary {
        let mut s = Summary::default();
        let mut updated_groups = BTreeSet::new();
        for op in &self.ops {
            match op {
                Op::CreateUser { .. } => s.create_user += 1,
                Op::UpdateUser { .. } => s.update_user += 1,
                Op::ReactivateUser { .. } => s.reactivate_user += 1,
                Op::DeactivateUser { .. } => s.deactivate_user += 1,
                Op::DeleteUser { .. } => s.delete_user += 1,
                Op::CreateGroup { .. } => s.create_group += 1,
                Op::DeleteGroup { .. } => s.delete_group += 1,
                Op::RenameGroup { key, .. } | Op::AddMembers { key, .. } | Op::RemoveMembers { key, .. } => {
                    updated_groups.insert(key);
                }
            }
        }
        // A group created in this run gets its members as part of its creation.
        let created: BTreeSet<_> = self
            .ops
            .iter()
            .filter_map(|op| match op {
                Op::CreateGroup { key, .. } => Some(key),
                _ => None,
            })
            .collect();
        s.update_group = updated_groups.difference(&created).count() as u64;
        s.held = self.held.len() as u64;
        s.deferred = self.deferred.len() as u64;
        s.skipped = self.skipped.len() as u64;
        s.warnings = self.warnings.len() as u64;
        s
    }
}
