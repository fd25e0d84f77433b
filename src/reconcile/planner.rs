//! `plan(desired, snapshot, policy)`: the diff that turns the snapshot into the desired state.
//!
//! Architecture invariant: only managed objects (those in the snapshot) are ever deactivated,
//! deleted or have members removed; the planner never needs a listing of the target.

use super::plan::{Change, Op, Pending, Plan, Reason};
use super::policy::{Deprovision, Policy};
use super::snapshot::{ManagedUser, Snapshot};
use crate::model::{Attr, DesiredState, DesiredUser, Skip, SourceKey};
use std::collections::BTreeSet;

/// Computes the plan. Pure: same inputs, same plan.
pub fn plan(desired: &DesiredState, snapshot: &Snapshot, policy: &Policy) -> Plan {
    let mut out =
        Plan { skipped: desired.skipped.clone(), warnings: desired.warnings.clone(), ..Plan::default() };
    let unconfirmed = in_doubt(desired, policy, &mut out);
    // The entry that may be cut off — its key too, when the cut is in its key's value — is left
    // out: never created from, and a managed user or group is kept as it is.
    let cut_key = desired.cut_off.as_ref().and_then(|c| c.key.as_ref());
    let mut protected = desired.protected_keys();
    protected.extend(cut_key);
    let mut users = plan_users(desired, snapshot, policy, cut_key, &mut out);
    plan_missing(&mut users, &protected, unconfirmed.is_some(), policy, &mut out);
    let UserOps { creates, mut reactivations, mut updates, deprovisions, .. } = users;

    let (group_ops, mut removals, mut group_deletes) =
        plan_groups(desired, snapshot, policy, &creates, &protected);
    if let Some(reason) = unconfirmed {
        for list in [&mut updates, &mut reactivations] {
            for op in std::mem::take(list) {
                let (now, later) = split_losses(op);
                list.extend(now);
                out.deferred.extend(later);
            }
        }
        out.deferred.append(&mut removals);
        out.deferred.append(&mut group_deletes);
        sort_ops(&mut out.deferred);
        out.defer_reason = Some(reason);
    }

    // The creates (most of a first plan) become the list itself, grown once for the rest.
    out.ops = creates;
    let rest = [&reactivations, &updates, &group_ops, &removals, &group_deletes, &deprovisions];
    out.ops.reserve_exact(rest.iter().map(|list| list.len()).sum());
    out.ops.extend(reactivations);
    out.ops.extend(updates);
    out.ops.extend(group_ops);

    match hold_reason(desired, snapshot, policy, deprovisions.len()) {
        Some(reason) => {
            let held_users: BTreeSet<SourceKey> = deprovisions.iter().map(|op| op.key().clone()).collect();
            for op in removals {
                let (now, later) = split_members(op, &held_users);
                out.ops.extend(now);
                out.held.extend(later);
            }
            out.held.extend(group_deletes);
            out.held.extend(deprovisions);
            out.hold_reason = Some(reason);
        }
        None => {
            out.ops.extend(removals);
            out.ops.extend(group_deletes);
            out.ops.extend(deprovisions);
        }
    }
    sort_ops(&mut out.ops);
    out.skipped.sort_by(|a, b| a.origin.cmp(&b.origin).then(a.reason.cmp(&b.reason)));
    out.warnings.sort();
    out.warnings.dedup();
    out
}

/// Why this read may be incomplete, if it may (see `Policy::unconfirmed`): then it removes
/// nothing — a missing user must be missing in a later read too, and every other removal waits
/// for a read in no doubt. The entry a cut-off file may have cut is reported as skipped.
fn in_doubt(desired: &DesiredState, policy: &Policy, out: &mut Plan) -> Option<String> {
    if let Some(c) = desired.cut_off.as_ref().filter(|c| c.key.is_some()) {
        out.skipped.push(Skip {
            origin: c.origin.clone(),
            key: c.key.clone(),
            reason: "the last entry of a source that ends without a line break may be cut off (its key too): left out of this run, and kept as it is in the target, until the export ends with a line break".into(),
        });
    }
    policy.unconfirmed.clone().or_else(|| {
        desired.cut_off.as_ref().map(|c| {
            format!(
                "the source ends without a line break inside its last entry ({}), which may be cut off: nothing is removed on the word of this read (end the export with a line break)",
                c.origin
            )
        })
    })
}

/// The user operations of a plan, by kind, before they are ordered and held.
struct UserOps<'s> {
    creates: Vec<Op>,
    reactivations: Vec<Op>,
    updates: Vec<Op>,
    deprovisions: Vec<Op>,
    /// Managed users the source no longer has.
    missing: Vec<(&'s SourceKey, &'s ManagedUser)>,
}

/// Pairs desired and managed users: creates, updates, reactivations, deactivations of users
/// inactive in the source, and the managed users that are missing.
fn plan_users<'s>(
    desired: &DesiredState,
    snapshot: &'s Snapshot,
    policy: &Policy,
    cut_key: Option<&SourceKey>,
    out: &mut Plan,
) -> UserOps<'s> {
    let mut ops = UserOps {
        creates: Vec::new(),
        reactivations: Vec::new(),
        updates: Vec::new(),
        deprovisions: Vec::new(),
        missing: Vec::new(),
    };
    // Desired and managed users are both ordered by key: one merge pass pairs them up, with no
    // lookup per user.
    let mut managed = snapshot.users.iter().peekable();
    for (key, want) in &desired.users {
        while let Some(entry) = managed.next_if(|(k, _)| *k < key) {
            ops.missing.push(entry);
        }
        let have = managed.next_if(|(k, _)| *k == key).map(|(_, have)| have);
        if have.is_some_and(|h| h.missing.is_some()) {
            out.present.insert(key.clone());
        }
        if cut_key == Some(key) {
            continue;
        }
        let roles = allowed_roles(want, policy, &mut out.warnings);
        let Some(have) = have else {
            match want.active {
                true => ops.creates.push(Op::CreateUser { user: DesiredUser { roles, ..want.clone() } }),
                false => out.skipped.push(Skip {
                    origin: want.origin.to_string(),
                    key: Some(key.clone()),
                    reason: format!(
                        "{} is inactive in the source and was never provisioned",
                        want.user_name()
                    ),
                }),
            }
            continue;
        };
        let changes = diff_user(have, want, &roles);
        let user_name = want.user_name().to_owned();
        let recreate = || {
            policy.recreate_missing.then(|| Box::new(DesiredUser { roles: roles.clone(), ..want.clone() }))
        };
        match (have.active, want.active) {
            (true, true) if !changes.is_empty() => {
                let recreate = recreate();
                ops.updates.push(Op::UpdateUser { key: key.clone(), user_name, changes, recreate })
            }
            (false, true) => {
                let recreate = recreate();
                ops.reactivations.push(Op::ReactivateUser { key: key.clone(), user_name, changes, recreate })
            }
            (true, false) => {
                ops.deprovisions.push(deprovision_op(key, have, Reason::InactiveInSource, policy))
            }
            _ => {}
        }
    }
    ops.missing.extend(managed);
    ops
}

/// Deprovisions the missing users that are not protected, past their grace period, and not in a
/// read in doubt; the others are marked missing (`Plan::pending`).
fn plan_missing(
    ops: &mut UserOps<'_>,
    protected: &BTreeSet<&SourceKey>,
    in_doubt: bool,
    policy: &Policy,
    out: &mut Plan,
) {
    for (key, have) in std::mem::take(&mut ops.missing) {
        if protected.contains(key) {
            continue;
        }
        let action = policy.deprovision_for(have.attrs.get(&Attr::UserType));
        if !have.active && action == Deprovision::Deactivate {
            continue;
        }
        // A read in doubt deprovisions nobody: the user is marked missing and waits for a read
        // in no doubt.
        let pending = match in_doubt {
            true => Some(missing_mark(key, have, policy.now)),
            false => within_grace(key, have, policy),
        };
        match pending {
            Some(pending) => out.pending.push(pending),
            None => ops.deprovisions.push(deprovision_op(key, have, Reason::Missing, policy)),
        }
    }
}

/// Roles the user may receive: protected (administrator) roles are refused with a warning.
fn allowed_roles(want: &DesiredUser, policy: &Policy, warnings: &mut Vec<String>) -> BTreeSet<String> {
    let mut roles = want.roles.clone();
    roles.retain(|r| {
        let refused = policy.protected_roles.contains(r);
        if refused {
            warnings.push(format!(
                "{}: role {r:?} is protected (system administrator) and is never assigned through SCIM",
                want.user_name()
            ));
        }
        !refused
    });
    roles
}

fn diff_user(have: &ManagedUser, want: &DesiredUser, roles: &BTreeSet<String>) -> Vec<Change> {
    let mut changes = Vec::new();
    if have.attrs == want.attrs && &have.roles == roles {
        return changes;
    }
    // Both users' attributes, merged in `Attr` order: every attribute either has.
    let (mut before, mut after) = (have.attrs.iter().peekable(), want.attrs.iter().peekable());
    loop {
        let (attr, b, a) = match (before.peek(), after.peek()) {
            (None, None) => break,
            (Some(&(x, _)), Some(&(y, _))) if x == y => {
                (x, before.next().map(|e| e.1), after.next().map(|e| e.1))
            }
            (Some(&(x, _)), Some(&(y, _))) if x < y => (x, before.next().map(|e| e.1), None),
            (Some(&(x, _)), None) => (x, before.next().map(|e| e.1), None),
            (_, Some(&(y, _))) => (y, None, after.next().map(|e| e.1)),
        };
        if b != a {
            changes.push(Change::Set { attr, before: b.map(str::to_owned), after: a.map(str::to_owned) });
        }
    }
    if &have.roles != roles {
        changes.push(Change::Roles {
            before: have.roles.iter().cloned().collect(),
            after: roles.iter().cloned().collect(),
        });
    }
    changes
}

fn deprovision_op(key: &SourceKey, have: &ManagedUser, reason: Reason, policy: &Policy) -> Op {
    let user_name = have.user_name().to_owned();
    let key = key.clone();
    // A user disabled in the source is only ever deactivated; deletion is for users that left.
    let action = match reason {
        Reason::InactiveInSource => Deprovision::Deactivate,
        Reason::Missing => policy.deprovision_for(have.attrs.get(&Attr::UserType)),
    };
    match action {
        Deprovision::Deactivate => Op::DeactivateUser { key, user_name, reason },
        Deprovision::Delete => Op::DeleteUser { key, user_name, reason },
    }
}

/// Whether a change takes something away: clears a value, drops a role, or changes the user
/// type (a technician made an end user loses what comes with the type).
fn is_loss(change: &Change) -> bool {
    match change {
        Change::Set { after: None, .. } | Change::Set { attr: Attr::UserType, .. } => true,
        Change::Set { .. } => false,
        Change::Roles { before, after } => before.iter().any(|r| !after.contains(r)),
    }
}

/// Splits a user update or reactivation into what can go now and an update of its losses,
/// which waits for a read in no doubt.
fn split_losses(op: Op) -> (Option<Op>, Option<Op>) {
    let (key, user_name, changes, recreate, reactivate) = match op {
        Op::UpdateUser { key, user_name, changes, recreate } => (key, user_name, changes, recreate, false),
        Op::ReactivateUser { key, user_name, changes, recreate } => (key, user_name, changes, recreate, true),
        other => return (Some(other), None),
    };
    let (later, now): (Vec<Change>, Vec<Change>) = changes.into_iter().partition(is_loss);
    let deferred = (!later.is_empty()).then(|| Op::UpdateUser {
        key: key.clone(),
        user_name: user_name.clone(),
        changes: later,
        recreate: None,
    });
    let now = match reactivate {
        true => Some(Op::ReactivateUser { key, user_name, changes: now, recreate }),
        false => (!now.is_empty()).then_some(Op::UpdateUser { key, user_name, changes: now, recreate }),
    };
    (now, deferred)
}

/// `Some(pending)` while a missing user has not been missing long enough to be deprovisioned.
fn within_grace(key: &SourceKey, have: &ManagedUser, policy: &Policy) -> Option<Pending> {
    let (grace, now) = (&policy.grace, policy.now);
    if grace.is_off() {
        return None;
    }
    let mark = missing_mark(key, have, now);
    let hours_ok = now.saturating_sub(mark.missing_since) >= (grace.hours as i64).saturating_mul(3600);
    let runs_ok = mark.missing_runs >= grace.runs;
    (!(hours_ok && runs_ok)).then_some(mark)
}

/// A missing user's mark after this run: missing since its first missing run, one run more.
fn missing_mark(key: &SourceKey, have: &ManagedUser, now: i64) -> Pending {
    let (since, runs) = match have.missing {
        Some(m) => (m.since, m.runs.saturating_add(1)),
        None => (now, 1),
    };
    Pending {
        key: key.clone(),
        user_name: have.user_name().to_owned(),
        missing_since: since,
        missing_runs: runs,
    }
}

type GroupOps = (Vec<Op>, Vec<Op>, Vec<Op>);

/// Group creates, renames and additions; membership removals; group deletions.
fn plan_groups(
    desired: &DesiredState,
    snapshot: &Snapshot,
    policy: &Policy,
    creates: &[Op],
    protected: &BTreeSet<&SourceKey>,
) -> GroupOps {
    let chunk = policy.membership_chunk.max(1);
    let created_users: BTreeSet<&SourceKey> = creates.iter().map(Op::key).collect();
    // A member can be pushed only if the user exists in the target after this plan.
    let provisioned = |k: &SourceKey| {
        created_users.contains(k)
            || snapshot.users.get(k).is_some_and(|u| desired.users.contains_key(k) || u.active)
    };
    let (mut main, mut removals, mut deletes) = (Vec::new(), Vec::new(), Vec::new());
    let mut group_creates = Vec::new();
    let mut renames = Vec::new();
    let mut adds = Vec::new();
    for (key, want) in &desired.groups {
        if protected.contains(key) {
            continue;
        }
        let name = &want.display_name;
        let (to_add, to_remove): (Vec<SourceKey>, Vec<SourceKey>) = match snapshot.groups.get(key) {
            None => {
                group_creates.push(Op::CreateGroup { key: key.clone(), display_name: name.clone() });
                let members = want.members.iter().filter(|m| provisioned(m)).cloned().collect();
                (members, Vec::new())
            }
            Some(have) => {
                if &have.display_name != name {
                    renames.push(Op::RenameGroup {
                        key: key.clone(),
                        from: have.display_name.clone(),
                        to: name.clone(),
                    });
                }
                // Both member sets are ordered: one merge pass finds what to add and remove, and
                // only members to add are checked for being provisioned.
                let (mut add, mut remove) = (Vec::new(), Vec::new());
                let mut had = have.members.iter().peekable();
                for m in &want.members {
                    while let Some(old) = had.next_if(|old| *old < m) {
                        if !protected.contains(old) {
                            remove.push(old.clone());
                        }
                    }
                    if had.next_if(|old| *old == m).is_none() && provisioned(m) {
                        add.push(m.clone());
                    }
                }
                remove.extend(had.filter(|old| !protected.contains(old)).cloned());
                (add, remove)
            }
        };
        for part in to_add.chunks(chunk) {
            adds.push(Op::AddMembers {
                key: key.clone(),
                display_name: name.clone(),
                members: part.to_vec(),
            });
        }
        for part in to_remove.chunks(chunk) {
            removals.push(Op::RemoveMembers {
                key: key.clone(),
                display_name: name.clone(),
                members: part.to_vec(),
            });
        }
    }
    if policy.delete_groups {
        for (key, have) in &snapshot.groups {
            if !desired.groups.contains_key(key) && !protected.contains(key) {
                deletes.push(Op::DeleteGroup { key: key.clone(), display_name: have.display_name.clone() });
            }
        }
    }
    main.extend(group_creates);
    main.extend(renames);
    main.extend(adds);
    (main, removals, deletes)
}

/// Why this run's deprovisioning must wait for approval, if it must.
fn hold_reason(desired: &DesiredState, snapshot: &Snapshot, policy: &Policy, count: usize) -> Option<String> {
    if policy.approved {
        return None;
    }
    let managed_active = snapshot.users.values().filter(|u| u.active).count();
    let t = &policy.threshold;
    if desired.users.is_empty() && !snapshot.users.is_empty() {
        return Some(format!(
            "the source yielded no users but {} are managed: deprovisioning is held; check the export, then `scimsync approve RUN` if this is intended",
            snapshot.users.len()
        ));
    }
    let count = count as u64;
    let share = if managed_active == 0 { 0.0 } else { count as f64 * 100.0 / managed_active as f64 };
    if count > t.max_users || (share > t.max_percent && count > t.min_users) {
        return Some(format!(
            "{count} users would be deprovisioned ({share:.1}% of {managed_active} managed active users), beyond the safety threshold (more than {} users, or more than {}% when that is more than {} users): held; check the source, then `scimsync approve RUN`",
            t.max_users, t.max_percent, t.min_users
        ));
    }
    None
}

/// Splits a removal into the part that can go now and the part naming held users.
fn split_members(op: Op, held_users: &BTreeSet<SourceKey>) -> (Option<Op>, Option<Op>) {
    let Op::RemoveMembers { key, display_name, members } = op else {
        return (Some(op), None);
    };
    let (later, now): (Vec<_>, Vec<_>) = members.into_iter().partition(|m| held_users.contains(m));
    let make = |members: Vec<SourceKey>| {
        (!members.is_empty()).then(|| Op::RemoveMembers {
            key: key.clone(),
            display_name: display_name.clone(),
            members,
        })
    };
    (make(now), make(later))
}

/// Orders operations by phase ([`Op::phase`]): user creates, reactivations, updates; group
/// creates and renames; membership removals then additions; group deletes; user deprovisioning
/// last. Within a phase by name for readers, then by key for determinism; the sort is stable, so
/// the chunks of one group keep their order.
///
/// The positions are sorted, not the operations, and the operations then moved into place: a
/// stable sort of the operations themselves takes scratch space of half of them, at the run's
/// peak of memory.
fn sort_ops(ops: &mut [Op]) {
    let mut order: Vec<usize> = (0..ops.len()).collect();
    order.sort_unstable_by(|&i, &j| {
        let (a, b) = (&ops[i], &ops[j]);
        a.phase()
            .cmp(&b.phase())
            .then_with(|| a.label().cmp(b.label()))
            .then_with(|| a.key().cmp(b.key()))
            .then(i.cmp(&j))
    });
    // Position k receives the operation at `order[k]`, one cycle of the permutation at a time.
    for start in 0..order.len() {
        let mut at = start;
        while order[at] != start {
            let from = order[at];
            ops.swap(at, from);
            order[at] = at;
            at = from;
        }
        order[at] = at;
    }
}
