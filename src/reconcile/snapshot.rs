//! The snapshot as the planner sees it: what scimsync last applied to every object it manages,
//! and how one confirmed operation advances it.

use super::plan::{Change, Op};
use crate::model::{Attr, Attrs, SourceKey};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManagedUser {
    pub target_id: String,
    pub attrs: Attrs,
    pub active: bool,
    pub roles: BTreeSet<String>,
    /// Set while the user is missing from the source but within its grace period.
    pub missing: Option<Missing>,
}

impl ManagedUser {
    pub fn user_name(&self) -> &str {
        self.attrs.get(&Attr::UserName).unwrap_or("")
    }

    pub fn apply_changes(&mut self, changes: &[Change]) {
        for change in changes {
            match change {
                Change::Set { attr, after: Some(v), .. } => {
                    self.attrs.insert(*attr, v);
                }
                Change::Set { attr, after: None, .. } => {
                    self.attrs.remove(attr);
                }
                Change::Roles { after, .. } => self.roles = after.iter().cloned().collect(),
            }
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Missing {
    pub since: i64,
    pub runs: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManagedGroup {
    pub target_id: String,
    pub display_name: String,
    pub members: BTreeSet<SourceKey>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub users: BTreeMap<SourceKey, ManagedUser>,
    pub groups: BTreeMap<SourceKey, ManagedGroup>,
}

impl Snapshot {
    /// Advances the snapshot by one operation the target confirmed. `target_id` is the id the
    /// target gave a created object (ignored for other operations). `store::Store::commit_op`
    /// changes the state database the same way (property-tested in `tests/snapshot_store.rs`).
    pub fn apply(&mut self, op: &Op, target_id: Option<&str>) {
        let id = || target_id.unwrap_or_default().to_owned();
        match op {
            Op::CreateUser { user } => {
                self.users.insert(
                    user.key.clone(),
                    ManagedUser {
                        target_id: id(),
                        attrs: user.attrs.clone(),
                        active: user.active,
                        roles: user.roles.clone(),
                        missing: None,
                    },
                );
            }
            Op::UpdateUser { key, changes, .. } | Op::ReactivateUser { key, changes, .. } => {
                if let Some(u) = self.users.get_mut(key) {
                    u.apply_changes(changes);
                    if matches!(op, Op::ReactivateUser { .. }) {
                        u.active = true;
                        u.missing = None;
                    }
                }
            }
            Op::DeactivateUser { key, .. } => {
                if let Some(u) = self.users.get_mut(key) {
                    u.active = false;
                    u.missing = None;
                }
            }
            Op::DeleteUser { key, .. } => {
                self.users.remove(key);
                for g in self.groups.values_mut() {
                    g.members.remove(key);
                }
            }
            Op::CreateGroup { key, display_name } => {
                self.groups.insert(
                    key.clone(),
                    ManagedGroup {
                        target_id: id(),
                        display_name: display_name.clone(),
                        members: BTreeSet::new(),
                    },
                );
            }
            Op::RenameGroup { key, to, .. } => {
                if let Some(g) = self.groups.get_mut(key) {
                    g.display_name = to.clone();
                }
            }
            Op::AddMembers { key, members, .. } => {
                if let Some(g) = self.groups.get_mut(key) {
                    g.members.extend(members.iter().cloned());
                }
            }
            Op::RemoveMembers { key, members, .. } => {
                if let Some(g) = self.groups.get_mut(key) {
                    for m in members {
                        g.members.remove(m);
                    }
                }
            }
            Op::DeleteGroup { key, .. } => {
                self.groups.remove(key);
            }
        }
    }
}
