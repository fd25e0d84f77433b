//! What a run's operations came to, by kind: what the target confirmed and what failed, counted
//! where the executor commits or fails them. The run summary line, the run record, `status` and
//! the daemon all say these counts, never the plan's: a plan of 47 creates of which 35 failed
//! created 12 users.

use crate::reconcile::plan::Op;
use serde::{Deserialize, Serialize};

/// Operations by kind. An adopted create (a 409 answered by linking the existing object) counts
/// as an adoption, not a create; an update that re-created a user deleted by hand counts as the
/// create it became.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Counts {
    #[serde(skip_serializing_if = "is_zero")]
    pub create_user: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub adopt_user: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub update_user: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub reactivate_user: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub deactivate_user: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub delete_user: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub create_group: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub adopt_group: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub rename_group: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub add_members: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub remove_members: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub delete_group: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Which words a count takes: what the target did, or what was tried and failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Voice {
    /// `3 users created`
    Confirmed,
    /// `3 user creates`
    Failed,
}

impl Counts {
    /// Counts `op`; `adopted` when a create linked an existing object instead.
    pub fn add(&mut self, op: &Op, adopted: bool) {
        let n = match op {
            Op::CreateUser { .. } if adopted => &mut self.adopt_user,
            Op::CreateUser { .. } => &mut self.create_user,
            Op::UpdateUser { .. } => &mut self.update_user,
            Op::ReactivateUser { .. } => &mut self.reactivate_user,
            Op::DeactivateUser { .. } => &mut self.deactivate_user,
            Op::DeleteUser { .. } => &mut self.delete_user,
            Op::CreateGroup { .. } if adopted => &mut self.adopt_group,
            Op::CreateGroup { .. } => &mut self.create_group,
            Op::RenameGroup { .. } => &mut self.rename_group,
            Op::AddMembers { .. } => &mut self.add_members,
            Op::RemoveMembers { .. } => &mut self.remove_members,
            Op::DeleteGroup { .. } => &mut self.delete_group,
        };
        *n += 1;
    }

    pub fn total(&self) -> u64 {
        self.rows().iter().map(|(n, ..)| n).sum()
    }

    /// Each count with its words: `(count, confirmed singular, plural, failed singular, plural)`.
    fn rows(&self) -> [(u64, &'static str, &'static str, &'static str, &'static str); 12] {
        [
            (self.create_user, "user created", "users created", "user create", "user creates"),
            (
                self.adopt_user,
                "existing user adopted",
                "existing users adopted",
                "user adoption",
                "user adoptions",
            ),
            (self.update_user, "user updated", "users updated", "user update", "user updates"),
            (
                self.reactivate_user,
                "user reactivated",
                "users reactivated",
                "user reactivation",
                "user reactivations",
            ),
            (
                self.deactivate_user,
                "user deactivated",
                "users deactivated",
                "user deactivation",
                "user deactivations",
            ),
            (self.delete_user, "user deleted", "users deleted", "user deletion", "user deletions"),
            (self.create_group, "group created", "groups created", "group create", "group creates"),
            (
                self.adopt_group,
                "existing group adopted",
                "existing groups adopted",
                "group adoption",
                "group adoptions",
            ),
            (self.rename_group, "group renamed", "groups renamed", "group rename", "group renames"),
            (self.add_members, "member addition", "member additions", "member addition", "member additions"),
            (self.remove_members, "member removal", "member removals", "member removal", "member removals"),
            (self.delete_group, "group deleted", "groups deleted", "group deletion", "group deletions"),
        ]
    }

    /// The kinds that are not zero, in plan order of kinds: `["3 users created", "1 group
    /// created"]`. A membership count is of operations (a large membership change is sent in
    /// several).
    pub fn phrases(&self, voice: Voice) -> Vec<String> {
        self.rows()
            .into_iter()
            .filter(|(n, ..)| *n > 0)
            .map(|(n, one, many, failed_one, failed_many)| {
                let words = match (voice, n) {
                    (Voice::Confirmed, 1) => one,
                    (Voice::Confirmed, _) => many,
                    (Voice::Failed, 1) => failed_one,
                    (Voice::Failed, _) => failed_many,
                };
                format!("{n} {words}")
            })
            .collect()
    }
}

/// What an applying run's operations came to, as its summary line says it and its run record
/// keeps it (`runs.summary`, key `applied`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Tally {
    /// Confirmed by the target, and committed to the snapshot.
    pub confirmed: Counts,
    /// Refused by the target, or not sendable (an id its create did not give).
    pub failed: Counts,
    /// Not sent: the run stopped (a 401/403, a shutdown request) before them.
    pub not_sent: u64,
    /// Creates an earlier process left unfinished, found in the target by this run's recovery
    /// and recorded.
    pub recovered: u64,
}

impl Tally {
    /// `target confirmed 12 of 47 operations (3 users created, 9 users updated); 35 failed
    /// (32 user creates, 3 member removals)`, then the operations not sent and those recovered,
    /// when there are any.
    pub fn line(&self) -> String {
        let (confirmed, failed) = (self.confirmed.total(), self.failed.total());
        let of = confirmed + failed + self.not_sent;
        let mut line =
            format!("target confirmed {confirmed} of {of} operation{}", if of == 1 { "" } else { "s" });
        let listed = |counts: &Counts, voice| match counts.phrases(voice) {
            p if p.is_empty() => String::new(),
            p => format!(" ({})", p.join(", ")),
        };
        line.push_str(&listed(&self.confirmed, Voice::Confirmed));
        line.push_str(&format!("; {failed} failed{}", listed(&self.failed, Voice::Failed)));
        if self.not_sent > 0 {
            line.push_str(&format!("; {} not sent", self.not_sent));
        }
        if self.recovered > 0 {
            line.push_str(&format!(
                "; {} create{} left unfinished by an earlier run found in the target and recorded",
                self.recovered,
                if self.recovered == 1 { "" } else { "s" }
            ));
        }
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_names_each_kind_confirmed_and_failed_and_leaves_out_zeros() {
        let tally = Tally {
            confirmed: Counts {
                create_user: 3,
                adopt_user: 2,
                update_user: 5,
                deactivate_user: 1,
                create_group: 1,
                ..Counts::default()
            },
            failed: Counts { create_user: 32, remove_members: 3, ..Counts::default() },
            not_sent: 0,
            recovered: 0,
        };
        assert_eq!(
            tally.line(),
            "target confirmed 12 of 47 operations (3 users created, 2 existing users adopted, \
             5 users updated, 1 user deactivated, 1 group created); 35 failed (32 user creates, \
             3 member removals)"
        );
        assert_eq!(Tally::default().line(), "target confirmed 0 of 0 operations; 0 failed");
        let stopped = Tally {
            confirmed: Counts { delete_group: 1, ..Counts::default() },
            not_sent: 4,
            recovered: 1,
            ..Tally::default()
        };
        assert_eq!(
            stopped.line(),
            "target confirmed 1 of 5 operations (1 group deleted); 0 failed; 4 not sent; \
             1 create left unfinished by an earlier run found in the target and recorded"
        );
    }

    #[test]
    fn counts_read_back_from_a_record_without_the_zero_kinds() {
        let counts = Counts { add_members: 2, ..Counts::default() };
        let json = serde_json::to_value(&counts).unwrap();
        assert_eq!(json, serde_json::json!({"add_members": 2}));
        assert_eq!(serde_json::from_value::<Counts>(json).unwrap(), counts);
    }
}
