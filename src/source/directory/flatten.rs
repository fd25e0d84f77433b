//! Group members resolved and nested groups flattened, per strongly connected component.

use super::{normalize_dn, FastMap, MemberRef, RawGroup, SourceDirectory, SourceGroup, UserIndex};
use std::collections::BTreeSet;

/// How many member values that name nothing a group's warning quotes.
const UNRESOLVED_QUOTED: usize = 3;

/// Resolves member references, flattening nested groups, and records each user's group names.
///
/// Nested groups form a graph that may have cycles (A → B → C → A, a group inside itself). The
/// groups of one cycle — one strongly connected component — all reach each other, so they all
/// get the same members: every user of every group in the component and of every group it
/// reaches. Components are found with Tarjan's algorithm, which finishes a component only after
/// every component it reaches, so each is resolved once, from finished parts, and the result
/// does not depend on the order of the file.
///
/// A member value that names neither a user nor a group of the export is reported once per
/// group (how many, and the first few) in `dir.warnings`.
pub fn flatten(
    dir: &mut SourceDirectory,
    groups: Vec<RawGroup>,
    user_ids: &impl UserIndex,
    uids: &impl UserIndex,
) {
    let group_ids: FastMap<&str, usize> =
        groups.iter().enumerate().map(|(i, g)| (g.id.as_str(), i)).collect();
    // Each group's own users and the groups nested in it.
    let mut direct: Vec<BTreeSet<usize>> = Vec::with_capacity(groups.len());
    let mut nested: Vec<Vec<usize>> = Vec::with_capacity(groups.len());
    for g in &groups {
        let (mut users, mut inner, mut unresolved) = (BTreeSet::new(), Vec::new(), Vec::new());
        for member in &g.members {
            match member {
                // Some posixGroups list DNs in `memberUid`.
                MemberRef::Uid(uid) => match uids.find(uid, &dir.users).or_else(|| {
                    uid.contains('=').then(|| user_ids.find(&normalize_dn(uid), &dir.users)).flatten()
                }) {
                    Some(u) => {
                        users.insert(u);
                    }
                    None => unresolved.push(uid.as_str()),
                },
                MemberRef::Id(id) => {
                    if let Some(u) = user_ids.find(id, &dir.users) {
                        users.insert(u);
                    } else if let Some(&inner_group) = group_ids.get(id.as_str()) {
                        inner.push(inner_group);
                    } else {
                        unresolved.push(id.as_str());
                    }
                }
            }
        }
        if !unresolved.is_empty() {
            dir.warnings.push(unresolved_warning(g, &unresolved));
        }
        direct.push(users);
        nested.push(inner);
    }
    let resolved = resolve_components(&direct, &nested);
    drop(direct);
    for (g, members) in groups.into_iter().zip(resolved) {
        for &u in members.iter() {
            dir.users[u].groups.insert(g.name.clone());
        }
        let keys = members.iter().map(|&u| dir.users[u].key.clone()).collect();
        dir.groups.push(SourceGroup { key: g.key, origin: g.origin, name: g.name, members: keys });
    }
}

fn unresolved_warning(g: &RawGroup, unresolved: &[&str]) -> String {
    let quoted: Vec<String> = unresolved.iter().take(UNRESOLVED_QUOTED).map(|v| format!("{v:?}")).collect();
    let more = if unresolved.len() > UNRESOLVED_QUOTED { ", …" } else { "" };
    format!(
        "group {:?} ({}): {} member value(s) name no user or group read from the source ({}{more}); they are left out of the group — an entry outside the export's scope, a computer, a contact or a typo",
        g.name,
        g.origin,
        unresolved.len(),
        quoted.join(", ")
    )
}

/// The flattened users of every group: Tarjan's strongly connected components over `nested`,
/// walked with an explicit stack (however deep an export nests its groups, the thread's stack
/// cannot overflow). A component's members are shared by its groups.
fn resolve_components(
    direct: &[BTreeSet<usize>],
    nested: &[Vec<usize>],
) -> Vec<std::rc::Rc<BTreeSet<usize>>> {
    use std::rc::Rc;
    const UNSEEN: usize = usize::MAX;
    let n = direct.len();
    let (mut index, mut low) = (vec![UNSEEN; n], vec![0usize; n]);
    let mut on_stack = vec![false; n];
    let mut component: Vec<Option<Rc<BTreeSet<usize>>>> = vec![None; n];
    let mut scc_stack: Vec<usize> = Vec::new();
    let mut next_index = 0;
    for root in 0..n {
        if index[root] != UNSEEN {
            continue;
        }
        // (group, the position of its next nested group)
        let mut walk: Vec<(usize, usize)> = vec![(root, 0)];
        index[root] = next_index;
        low[root] = next_index;
        next_index += 1;
        scc_stack.push(root);
        on_stack[root] = true;
        while let Some(top) = walk.last_mut() {
            let g = top.0;
            if let Some(&h) = nested[g].get(top.1) {
                top.1 += 1;
                if index[h] == UNSEEN {
                    index[h] = next_index;
                    low[h] = next_index;
                    next_index += 1;
                    scc_stack.push(h);
                    on_stack[h] = true;
                    walk.push((h, 0));
                } else if on_stack[h] {
                    low[g] = low[g].min(index[h]);
                }
                continue;
            }
            walk.pop();
            if let Some(&(parent, _)) = walk.last() {
                low[parent] = low[parent].min(low[g]);
            }
            if low[g] != index[g] {
                continue;
            }
            // `g` roots a component: its groups are on the stack down to `g`. Every component
            // they reach outside it is finished already.
            let at = scc_stack.iter().rposition(|&x| x == g).expect("the root is on the stack");
            let groups = scc_stack.split_off(at);
            let mut users = BTreeSet::new();
            for &m in &groups {
                on_stack[m] = false;
                users.extend(direct[m].iter().copied());
            }
            for &m in &groups {
                for h in &nested[m] {
                    if let Some(done) = &component[*h] {
                        users.extend(done.iter().copied());
                    }
                }
            }
            let users = Rc::new(users);
            for &m in &groups {
                component[m] = Some(users.clone());
            }
        }
    }
    component.into_iter().map(|c| c.expect("every group is in a component")).collect()
}
