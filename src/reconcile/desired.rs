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
    // sorted for the map anyway); duplicate userNames are counted in a hash map (a fixed hasher:
    // only the counts are used, never the map's order).
    let mut users = users;
    users.sort_by(|a, b| a.key.cmp(&b.key));
    let dup_keys: BTreeSet<SourceKey> =
        users.windows(2).filter(|w| w[0].key == w[1].key).map(|w| w[0].key.clone()).collect();
    // Counted by the hash of the folded name, without building a folded string per user; only
    // names whose hash is shared are folded, to tell true duplicates from hash collisions.
    let mut hash_count: HashMap<u64, u32, foldhash::fast::FixedState> =
        HashMap::with_capacity_and_hasher(users.len(), Default::default());
    for u in &users {
        let n = hash_count.entry(folded_hash(u.user_name())).or_default();
        *n = n.saturating_add(1);
    }
    hash_count.retain(|_, n| *n > 1);
    let shared = |u: &DesiredUser| hash_count.contains_key(&folded_hash(u.user_name()));
    let mut name_count: HashMap<String, usize> = HashMap::new();
    for u in users.iter().filter(|u| !hash_count.is_empty() && shared(u)) {
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
        } else if !dup_names.is_empty() && shared(&u) && dup_names.contains(&fold_user_name(u.user_name())) {
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

/// The hash of [`fold_user_name`]`(name)`, without building it for ASCII names (nearly all):
/// lowercased in pieces on the stack and hashed piece by piece, as the folded string of any
/// other name is, so that names that fold alike hash alike.
fn folded_hash(name: &str) -> u64 {
    use std::hash::{BuildHasher as _, Hasher as _};
    let mut h = foldhash::fast::FixedState::default().build_hasher();
    let mut piece = [0u8; 64];
    let mut hash_bytes = |bytes: &[u8], lower: bool| {
        for chunk in bytes.chunks(piece.len()) {
            let piece = &mut piece[..chunk.len()];
            piece.copy_from_slice(chunk);
            if lower {
                piece.make_ascii_lowercase();
            }
            h.write(piece);
        }
    };
    if name.is_ascii() {
        hash_bytes(name.as_bytes(), true);
    } else {
        hash_bytes(fold_user_name(name).as_bytes(), false);
    }
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::folded_hash;

    #[test]
    fn names_that_fold_alike_hash_alike() {
        let long = "a".repeat(70) + "@example.com";
        let upper = long.to_uppercase();
        let same = [
            ("Ada@Example.com", "ada@example.com"),
            ("\u{212A}elvin@x.example", "kelvin@x.example"),
            ("ÅSA@x.example", "åsa@x.example"),
            (upper.as_str(), long.as_str()),
        ];
        for (a, b) in same {
            assert_eq!(folded_hash(a), folded_hash(b), "{a} and {b}");
        }
        assert_ne!(folded_hash("ada@example.com"), folded_hash("ada@example.co"));
        assert_ne!(folded_hash(&long), folded_hash(&(long.clone() + "m")));
    }
}
