//! Group-membership requests grow with users + groups + changed memberships, never with
//! users × groups: for 1,000 generated users in 200 groups (nested ones included), the plan's
//! requests are counted and compared with an independent count from the generator's model.

use crate::cli_support;

#[path = "../benches/gen/directory.rs"]
#[allow(dead_code)]
mod directory;

use cli_support::{minimal_config, run, run_cmd};
use directory::Directory;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

const USERS: u64 = 1_000;
const GROUPS: u64 = 200;
const CHUNK: usize = 100;

/// Group name → its members' entryUUIDs, nested groups flattened, removed users left out.
fn flat_members(dir: &Directory) -> BTreeMap<String, BTreeSet<String>> {
    let mut out = BTreeMap::new();
    for (i, g) in dir.groups.iter().enumerate() {
        let (mut seen, mut stack, mut members) = (BTreeSet::new(), vec![i], BTreeSet::new());
        while let Some(g) = stack.pop() {
            if !seen.insert(g) {
                continue;
            }
            for &u in &dir.groups[g].users {
                let user = &dir.users[u as usize];
                if !user.removed {
                    members.insert(dir.attrs(user).uuid);
                }
            }
            stack.extend(dir.groups[g].groups.iter().map(|&n| n as usize));
        }
        out.insert(g.name.clone(), members);
    }
    out
}

fn chunks(n: usize) -> usize {
    n.div_ceil(CHUNK)
}

fn plan_ops(config: &std::path::Path) -> Vec<Value> {
    let out = run(config, &["plan", "--format", "json"]);
    assert_eq!(out.code, Some(0), "{out}");
    out.json()["operations"].as_array().expect("operations").clone()
}

fn count(ops: &[Value], kind: &str) -> usize {
    ops.iter().filter(|o| o["op"] == kind).count()
}

#[test]
fn membership_requests_grow_with_users_plus_groups_not_their_product() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let ldif = dir.path().join("directory.ldif");
    let base = Directory::generate(3, USERS, GROUPS);
    base.write_ldif(&mut std::fs::File::create(&ldif).expect("create")).expect("write");
    let config = minimal_config(dir.path(), "scale", &ldif, Some("generic"));

    // The first plan: every user and group created, members added in chunks of 100.
    let ops = plan_ops(&config);
    let before = flat_members(&base);
    let memberships: usize = before.values().map(BTreeSet::len).sum();
    let expected_adds: usize = before.values().map(|m| chunks(m.len())).sum();
    assert_eq!(count(&ops, "create_user"), USERS as usize);
    assert_eq!(count(&ops, "create_group"), GROUPS as usize);
    assert_eq!(count(&ops, "add_members"), expected_adds);
    assert_eq!(ops.len(), USERS as usize + GROUPS as usize + expected_adds);
    assert!(expected_adds <= memberships / CHUNK + GROUPS as usize, "{expected_adds} chunks");
    assert!(
        ops.iter().all(|o| o["members"].as_array().is_none_or(|m| m.len() <= CHUNK)),
        "a membership request names more than {CHUNK} users"
    );

    // Commit it as if the target had confirmed everything, then change 1% of the directory.
    let fill = run_cmd(
        assert_cmd::Command::cargo_bin("scimsync-bench")
            .expect("built")
            .arg("fill")
            .arg("--config")
            .arg(&config),
    );
    assert_eq!(fill.code, Some(0), "{fill}");
    assert!(plan_ops(&config).is_empty(), "a plan right after the fill has operations");
    let mut changed = base.clone();
    changed.change(1.0);
    changed.write_ldif(&mut std::fs::File::create(&ldif).expect("create")).expect("write");

    let ops = plan_ops(&config);
    let after = flat_members(&changed);
    let (mut adds, mut removes, mut changed_memberships) = (0, 0, 0);
    for (name, now) in &after {
        let was = &before[name];
        let added = now.difference(was).count();
        let removed = was.difference(now).count();
        adds += chunks(added);
        removes += chunks(removed);
        changed_memberships += added + removed;
    }
    assert!(changed_memberships > 0, "the change moved no membership");
    assert_eq!(count(&ops, "add_members"), adds, "add_members after the change");
    assert_eq!(count(&ops, "remove_members"), removes, "remove_members after the change");
    let membership_requests = adds + removes;
    assert!(membership_requests <= changed_memberships, "{membership_requests} > {changed_memberships}");
    let users_changed =
        count(&ops, "create_user") + count(&ops, "update_user") + count(&ops, "deactivate_user");
    assert!(users_changed <= (USERS as usize) * 3 / 100, "{users_changed} user operations for a 1% change");
}
