//! Planner invariants as properties: plan-after-apply is empty; no operation names an object
//! outside managed ∪ desired; only managed users are deprovisioned; input order does not matter.

use proptest::prelude::*;
use scimsync::model::{Attr, DesiredGroup, DesiredUser, SourceKey};
use scimsync::reconcile::plan::Op;
use scimsync::reconcile::policy::{Deprovision, Policy};
use scimsync::reconcile::{self, ManagedGroup, ManagedUser, Snapshot};
use std::collections::{BTreeMap, BTreeSet};

fn key(i: u8) -> SourceKey {
    SourceKey(format!("k{i}"))
}

fn attrs_strategy() -> impl Strategy<Value = BTreeMap<Attr, String>> {
    (0u8..3, proptest::option::of(0u8..3), proptest::option::of(prop_oneof!["technician", "endUser"]))
        .prop_map(|(name, title, user_type)| {
            let mut m = BTreeMap::from([(Attr::GivenName, format!("g{name}"))]);
            if let Some(t) = title {
                m.insert(Attr::Title, format!("t{t}"));
            }
            if let Some(t) = user_type {
                m.insert(Attr::UserType, t.to_string());
            }
            m
        })
}

fn roles_strategy() -> impl Strategy<Value = BTreeSet<String>> {
    proptest::collection::btree_set(prop_oneof!["Admin", "Help", "NOC"].prop_map(String::from), 0..3)
}

prop_compose! {
    fn desired_user()(k in 0u8..12, name in 0u8..14, attrs in attrs_strategy(), active in proptest::bool::weighted(0.8), roles in roles_strategy()) -> DesiredUser {
        DesiredUser::builder(key(k), &format!("User{name}@x"))
            .origin(format!("src:{k}:{name}"))
            .attrs(attrs)
            .active(active)
            .roles(roles)
            .build()
    }
}

prop_compose! {
    fn managed_user()(attrs in attrs_strategy(), active in proptest::bool::weighted(0.8), roles in roles_strategy(), name in 0u8..14) -> ManagedUser {
        let mut attrs = attrs;
        attrs.insert(Attr::UserName, format!("user{name}@x"));
        ManagedUser { target_id: "id".into(), attrs: attrs.into_iter().collect(), active, roles, missing: None }
    }
}

fn members() -> impl Strategy<Value = BTreeSet<SourceKey>> {
    proptest::collection::btree_set((0u8..12).prop_map(key), 0..8)
}

prop_compose! {
    fn inputs()(
        users in proptest::collection::vec(desired_user(), 0..14),
        groups in proptest::collection::btree_map(0u8..4, (0u8..3, members()), 0..4),
        managed in proptest::collection::btree_map(0u8..12, managed_user(), 0..12),
        managed_groups in proptest::collection::btree_map(0u8..4, (0u8..3, members()), 0..4),
        chunk in 1usize..4,
        delete_technicians in any::<bool>(),
    ) -> (Vec<DesiredUser>, Vec<DesiredGroup>, Snapshot, Policy) {
        let groups = groups.into_iter().map(|(g, (name, members))| DesiredGroup {
            key: SourceKey(format!("g{g}")), origin: format!("src:g{g}"), display_name: format!("G{name}"), members,
        }).collect();
        let managed: BTreeMap<SourceKey, ManagedUser> = managed.into_iter().map(|(k, u)| (key(k), u)).collect();
        // A snapshot's memberships only ever name managed users.
        let managed_groups = managed_groups.into_iter().map(|(g, (name, mut members))| {
            members.retain(|m| managed.contains_key(m));
            (SourceKey(format!("g{g}")), ManagedGroup { target_id: format!("G{g}"), display_name: format!("G{name}"), members })
        }).collect();
        let snapshot = Snapshot { users: managed, groups: managed_groups };
        let mut policy = Policy { approved: true, membership_chunk: chunk, ..Policy::default() };
        if delete_technicians {
            policy.deprovision.insert("technician".into(), Deprovision::Delete);
        }
        (users, groups, snapshot, policy)
    }
}

fn build(users: Vec<DesiredUser>, groups: Vec<DesiredGroup>) -> scimsync::model::DesiredState {
    reconcile::desired::build(users, groups, vec![], vec![], 0)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn planning_after_applying_gives_an_empty_plan((users, groups, snapshot, policy) in inputs()) {
        let desired = build(users, groups);
        let plan = reconcile::plan(&desired, &snapshot, &policy);
        let mut after = snapshot.clone();
        for (i, op) in plan.ops.iter().enumerate() {
            after.apply(op, Some(&format!("new{i}")));
        }
        let again = reconcile::plan(&desired, &after, &policy);
        prop_assert!(again.ops.is_empty(), "second plan not empty: {:#?}", again.ops);
        prop_assert!(again.held.is_empty());
    }

    #[test]
    fn operations_name_only_managed_or_desired_objects((users, groups, snapshot, policy) in inputs()) {
        let desired = build(users, groups);
        let plan = reconcile::plan(&desired, &snapshot, &policy);
        let known: BTreeSet<&SourceKey> = snapshot.users.keys().chain(snapshot.groups.keys())
            .chain(desired.users.keys()).chain(desired.groups.keys()).collect();
        for op in plan.ops.iter().chain(&plan.held) {
            for k in op.keys() {
                prop_assert!(known.contains(k), "{} names unknown {}", op.kind(), k);
            }
            match op {
                Op::DeactivateUser { key, .. } | Op::DeleteUser { key, .. } => prop_assert!(snapshot.users.contains_key(key)),
                Op::DeleteGroup { key, .. } => prop_assert!(snapshot.groups.contains_key(key)),
                Op::RemoveMembers { key, members, .. } => {
                    let have = &snapshot.groups[key].members;
                    prop_assert!(members.iter().all(|m| have.contains(m)));
                }
                _ => {}
            }
        }
    }

    #[test]
    fn plan_is_identical_for_shuffled_input((users, groups, snapshot, policy) in inputs(), seed in any::<u64>()) {
        let plan = reconcile::plan(&build(users.clone(), groups.clone()), &snapshot, &policy);
        let mut shuffled_users = users;
        let mut shuffled_groups = groups;
        // A deterministic Fisher–Yates from the seed.
        let mut s = seed | 1;
        let mut next = |n: usize| { s ^= s << 13; s ^= s >> 7; s ^= s << 17; (s % n as u64) as usize };
        for i in (1..shuffled_users.len()).rev() { let j = next(i + 1); shuffled_users.swap(i, j); }
        for i in (1..shuffled_groups.len()).rev() { let j = next(i + 1); shuffled_groups.swap(i, j); }
        let again = reconcile::plan(&build(shuffled_users, shuffled_groups), &snapshot, &policy);
        prop_assert_eq!(serde_json::to_string(&plan).unwrap(), serde_json::to_string(&again).unwrap());
    }
}
