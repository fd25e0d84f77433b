//! Builds the desired state from mapped users and groups, leaving out duplicate keys and
//! duplicate userNames (case-insensitively) with a report line for each record.

use crate::model::{fold_user_name, DesiredGroup, DesiredState, DesiredUser, Skip, SourceKey};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Collects users and groups into a [`DesiredState`]. Every record that shares a key or a
/// case-folded userName with another is left out (all of them: which one is right cannot be
/// known), reported in `skipped` with its key so that the planner never deprovisions it.
/// Group members that name a left-out user are dropped from the group.
pub fn build(
    users: Vec<DesiredUser>,
    groups: Vec<DesiredGroup>,
    mut skipped: Vec<Skip>,
    warnings: Vec<String>,
    records_read: u64,
) -> DesiredState {
    // Duplicate keys show up next to each other once the users are sorted by key (they are
    // sorted for the map anyway).
    let mut users = users;
    users.sort_by(|a, b| a.key.cmp(&b.key));
    let dup_keys: BTreeSet<SourceKey> =
        users.windows(2).filter(|w| w[0].key == w[1].key).map(|w| w[0].key.clone()).collect();
    let mut name_count: HashMap<String, usize> = HashMap::with_capacity(users.len());
    for u in &users {
        *name_count.entry(fold_user_name(u.user_name())).or_default() += 1;
    }
    let dup_names: BTreeSet<String> =
        name_count.into_iter().filter(|(_, n)| *n > 1).map(|(k, _)| k).collect();

    let mut out = DesiredState { records_read, warnings, ..DesiredState::default() };
    let mut kept = Vec::with_capacity(users.len());
    for u in users {
        if dup_keys.contains(&u.key) {
            skipped.push(Skip {
                origin: u.origin.to_string(),
                key: Some(u.key.clone()),
                reason: format!("duplicate source key {}: left out until only one record has it", u.key),
            });
        } else if !dup_names.is_empty() && dup_names.contains(&fold_user_name(u.user_name())) {
            skipped.push(Skip {
                origin: u.origin.to_string(),
                key: Some(u.key.clone()),
                reason: format!(
                    "duplicate userName {:?} (case-insensitive): left out until only one record has it",
                    u.user_name()
                ),
            });
        } else {
            kept.push((u.key.clone(), u));
        }
    }
    // Built in one go from the sorted vector (keys are unique here).
    out.users = kept.into_iter().collect();

    let mut group_count: BTreeMap<SourceKey, usize> = BTreeMap::new();
    for g in &groups {
        *group_count.entry(g.key.clone()).or_default() += 1;
    }
    for mut g in groups {
        if group_count[&g.key] > 1 {
            skipped.push(Skip {
                origin: g.origin.clone(),
                key: Some(g.key.clone()),
                reason: format!("duplicate group key {}: left out until only one record has it", g.key),
            });
            continue;
        }
        g.members.retain(|m| out.users.contains_key(m));
        out.groups.insert(g.key.clone(), g);
    }
    skipped.sort_by(|a, b| a.origin.cmp(&b.origin).then(a.reason.cmp(&b.reason)));
    out.skipped = skipped;
    out
}
