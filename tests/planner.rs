//! Data-driven planner tests: one `check(fixture, policy, expected_plan_text)` helper with inline
//! snapshots. Fixture lines:
//!   `user KEY USERNAME [attr=value …] [inactive] [roles=A,B]` and `group KEY NAME: MEMBER…`
//! under `desired:` or `snapshot:` (snapshot users take `id=T`; `inactive` there means deactivated).
//! An attribute is a short name (`given`, `title`, …) or any SCIM path, `~` standing for a space
//! (`addresses[type~eq~"work"].locality=Zürich`); in a value `_` stands for a space.

use expect_test::{expect, Expect};
use scimsync::model::{Attr, DesiredGroup, DesiredState, DesiredUser, Skip, SourceKey};
use scimsync::reconcile::policy::{Deprovision, Grace, Policy};
use scimsync::reconcile::snapshot::Missing;
use scimsync::reconcile::{self, render, ManagedGroup, ManagedUser, Snapshot};
use std::collections::{BTreeMap, BTreeSet};

fn attr(name: &str) -> Attr {
    match name {
        "given" => Attr::GivenName,
        "family" => Attr::FamilyName,
        "type" => Attr::UserType,
        "org" => Attr::OrganizationId,
        "title" => Attr::Title,
        "email" => Attr::WorkEmail,
        path => Attr::parse(&path.replace('~', " ")).unwrap_or_else(|e| panic!("fixture attribute: {e}")),
    }
}

struct Parsed {
    desired_users: Vec<DesiredUser>,
    desired_groups: Vec<DesiredGroup>,
    skipped: Vec<Skip>,
    snapshot: Snapshot,
}

fn parse(fixture: &str) -> Parsed {
    let mut p = Parsed {
        desired_users: vec![],
        desired_groups: vec![],
        skipped: vec![],
        snapshot: Snapshot::default(),
    };
    let mut in_snapshot = false;
    for (n, line) in fixture.lines().map(str::trim).enumerate().filter(|(_, l)| !l.is_empty()) {
        match line {
            "desired:" => in_snapshot = false,
            "snapshot:" => in_snapshot = true,
            _ if line.starts_with("group ") => {
                let (head, members) = line.split_once(':').expect("group line needs ':'");
                let mut words = head.split_whitespace().skip(1);
                let key = SourceKey(words.next().unwrap().into());
                let rest: Vec<&str> = words.collect();
                let (id, name): (Vec<&str>, Vec<&str>) = rest.iter().partition(|w| w.starts_with("id="));
                let members: BTreeSet<SourceKey> = members.split_whitespace().map(SourceKey::from).collect();
                let name = name.join(" ");
                if in_snapshot {
                    let target_id = id.first().map_or("G", |i| &i[3..]).to_owned();
                    p.snapshot.groups.insert(key, ManagedGroup { target_id, display_name: name, members });
                } else {
                    p.desired_groups.push(DesiredGroup {
                        key,
                        origin: format!("fixture:{n}"),
                        display_name: name,
                        members,
                    });
                }
            }
            _ if line.starts_with("skip ") => {
                let key = line[5..].trim();
                p.skipped.push(Skip {
                    origin: format!("fixture:{n}"),
                    key: Some(key.into()),
                    reason: "left out".into(),
                });
            }
            _ => {
                let mut words = line.split_whitespace();
                assert_eq!(words.next(), Some("user"), "bad fixture line {line:?}");
                let key = SourceKey(words.next().unwrap().into());
                let mut attrs = BTreeMap::from([(Attr::UserName, words.next().unwrap().to_owned())]);
                let (mut active, mut roles, mut id, mut missing) =
                    (true, BTreeSet::new(), "T".to_owned(), None);
                for w in words {
                    match w.split_once('=') {
                        None if w == "inactive" => active = false,
                        Some(("roles", r)) => roles = r.split(',').map(str::to_owned).collect(),
                        Some(("id", i)) => id = i.to_owned(),
                        Some(("missing", m)) => {
                            let (since, runs) = m.split_once('/').unwrap();
                            missing =
                                Some(Missing { since: since.parse().unwrap(), runs: runs.parse().unwrap() });
                        }
                        Some((k, v)) => {
                            attrs.insert(attr(k), v.replace('_', " "));
                        }
                        None => panic!("bad fixture word {w:?}"),
                    }
                }
                if in_snapshot {
                    p.snapshot.users.insert(
                        key,
                        ManagedUser {
                            target_id: id,
                            attrs: attrs.into_iter().collect(),
                            active,
                            roles,
                            missing,
                        },
                    );
                } else {
                    p.desired_users.push(DesiredUser {
                        key,
                        origin: format!("fixture:{n}").into(),
                        attrs: attrs.into_iter().collect(),
                        active,
                        roles,
                    });
                }
            }
        }
    }
    p
}

fn desired_of(p: &Parsed) -> DesiredState {
    reconcile::desired::build(p.desired_users.clone(), p.desired_groups.clone(), p.skipped.clone(), vec![], 0)
}

fn names(p: &Parsed) -> render::Names<'_> {
    let mut names: render::Names = p.snapshot.users.iter().map(|(k, u)| (k, u.user_name())).collect();
    names.extend(p.desired_users.iter().map(|u| (&u.key, u.user_name())));
    names
}

fn check_with(fixture: &str, policy: Policy, expected: Expect) {
    let p = parse(fixture);
    let desired = desired_of(&p);
    let plan = reconcile::plan(&desired, &p.snapshot, &policy);
    let text = render::text(&plan, &names(&p));
    let mut fast = String::new();
    scimsync::report::write_text(&mut fast, &plan, &names(&p)).unwrap();
    assert_eq!(fast, text, "the report written on several threads");
    expected.assert_eq(&text);
}

fn check(fixture: &str, expected: Expect) {
    check_with(fixture, Policy::default(), expected)
}

#[test]
fn creates_users_then_groups_then_memberships() {
    check(
        "desired:
           user u2 bob@x given=Bob type=endUser
           user u1 alice@x given=Alice type=technician roles=Help_Desk
           group g1 Staff: u1 u2",
        expect![[r#"
            scimsync will perform the following actions:

              + user alice@x
                  userName                       "alice@x"
                  name.givenName                 "Alice"
                  userType                       "technician"
                  roles                          ["Help_Desk"]
              + user bob@x
                  userName                       "bob@x"
                  name.givenName                 "Bob"
                  userType                       "endUser"
              + group "Staff"
              ~ group "Staff": + 2 member(s)
                  + alice@x
                  + bob@x

            Plan: 2 users to create, 0 to update, 0 to reactivate, 0 to deactivate, 0 to delete; 1 groups to create, 0 to update, 0 to delete; 0 held, 0 skipped, 0 warnings.
        "#]],
    );
}

#[test]
fn unchanged_state_gives_an_empty_plan() {
    check(
        "desired:
           user u1 alice@x given=Alice
           group g1 Staff: u1
         snapshot:
           user u1 alice@x given=Alice
           group g1 Staff: u1",
        expect![[r#"
            No changes. The target matches the source.

            Plan: 0 users to create, 0 to update, 0 to reactivate, 0 to deactivate, 0 to delete; 0 groups to create, 0 to update, 0 to delete; 0 held, 0 skipped, 0 warnings.
        "#]],
    );
}

#[test]
fn updates_are_minimal_and_removals_explicit() {
    check(
        "desired:
           user u1 alice@x given=Alicia family=Smith
         snapshot:
           user u1 alice@x given=Alice family=Smith title=Boss",
        expect![[r#"
            scimsync will perform the following actions:

              ~ user alice@x
                  name.givenName                 "Alice" → "Alicia"
                  title                          "Boss" → (none)

            Plan: 0 users to create, 1 to update, 0 to reactivate, 0 to deactivate, 0 to delete; 0 groups to create, 0 to update, 0 to delete; 0 held, 0 skipped, 0 warnings.
        "#]],
    );
}

/// Custom attributes (any path the mapping names) are planned as the built-ins are: set on
/// create, changed, added and removed by updates, after the built-ins and in the order of their
/// names.
#[test]
fn custom_attributes_are_created_updated_and_removed_like_built_in_ones() {
    let department = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department";
    let fixture = format!(
        "desired:
           user u1 alice@x title=Boss {department}=R&D name.formatted=Alice_Smith
           user u2 bob@x nickName=Bobby addresses[type~eq~\"work\"].locality=Zürich
           user u3 carol@x {department}=Sales
         snapshot:
           user u1 alice@x title=Boss {department}=Research name.formatted=Alice_Smith
           user u2 bob@x nickName=Bob name.formatted=Bob_Jones"
    );
    check(
        &fixture,
        expect![[r#"
            scimsync will perform the following actions:

              + user carol@x
                  userName                       "carol@x"
                  urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department "Sales"
              ~ user alice@x
                  urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department "Research" → "R&D"
              ~ user bob@x
                  addresses[type eq "work"].locality (none) → "Zürich"
                  name.formatted                 "Bob Jones" → (none)
                  nickName                       "Bob" → "Bobby"

            Plan: 1 users to create, 2 to update, 0 to reactivate, 0 to deactivate, 0 to delete; 0 groups to create, 0 to update, 0 to delete; 0 held, 0 skipped, 0 warnings.
        "#]],
    );
    // The plan as saved and read back in another process names the same attributes; applied to
    // the snapshot, it leaves nothing to do.
    let p = parse(&fixture);
    let plan = reconcile::plan(&desired_of(&p), &p.snapshot, &Policy::default());
    let saved = serde_json::to_string(&plan).unwrap();
    assert!(saved.contains(r#""attr":"addresses[type eq \"work\"].locality""#), "{saved}");
    assert_eq!(serde_json::from_str::<reconcile::Plan>(&saved).unwrap(), plan);
    let mut snapshot = p.snapshot.clone();
    for (i, op) in plan.ops.iter().enumerate() {
        snapshot.apply(op, Some(&format!("new-{i}")));
    }
    assert!(reconcile::plan(&desired_of(&p), &snapshot, &Policy::default()).ops.is_empty());
}

#[test]
fn rename_with_same_key_is_an_update_not_delete_and_create() {
    check(
        "desired:
           user uuid-1 alice.new@x given=Alice
         snapshot:
           user uuid-1 alice@x given=Alice",
        expect![[r#"
            scimsync will perform the following actions:

              ~ user alice.new@x
                  userName                       "alice@x" → "alice.new@x"

            Plan: 0 users to create, 1 to update, 0 to reactivate, 0 to deactivate, 0 to delete; 0 groups to create, 0 to update, 0 to delete; 0 held, 0 skipped, 0 warnings.
        "#]],
    );
}

#[test]
fn missing_and_inactive_users_are_deactivated_last_and_reactivated_when_back() {
    check(
        "desired:
           user u1 alice@x
           user u2 bob@x inactive
           user u3 carol@x given=Carol
           group g Staff: u1
         snapshot:
           user u1 alice@x
           user u2 bob@x
           user u3 carol@x inactive
           user u4 dave@x
           group g Staff: u1 u4",
        expect![[r#"
            scimsync will perform the following actions:

              ~ user carol@x (reactivate)
                  active                         false → true
                  name.givenName                 (none) → "Carol"
              ~ group "Staff": - 1 member(s)
                  - dave@x
              - user bob@x (deactivate: inactive in the source)
              - user dave@x (deactivate: missing from the source)

            Plan: 0 users to create, 0 to update, 1 to reactivate, 2 to deactivate, 0 to delete; 0 groups to create, 1 to update, 0 to delete; 0 held, 0 skipped, 0 warnings.
        "#]],
    );
}

#[test]
fn delete_policy_is_per_user_type_and_only_for_users_that_left() {
    let mut policy = Policy::default();
    policy.deprovision.insert("technician".into(), Deprovision::Delete);
    check_with(
        "desired:
           user u3 tina@x type=technician inactive
         snapshot:
           user u1 tom@x type=technician
           user u2 eve@x type=endUser
           user u3 tina@x type=technician
           user u4 old@x type=technician inactive",
        policy,
        expect![[r#"
            scimsync will perform the following actions:

              - user eve@x (deactivate: missing from the source)
              - user old@x (delete: missing from the source)
              - user tina@x (deactivate: inactive in the source)
              - user tom@x (delete: missing from the source)

            Plan: 0 users to create, 0 to update, 0 to reactivate, 2 to deactivate, 2 to delete; 0 groups to create, 0 to update, 0 to delete; 0 held, 0 skipped, 0 warnings.
        "#]],
    );
}

#[test]
fn duplicates_are_left_out_reported_and_never_deprovisioned() {
    check(
        "desired:
           user u1 Alice@x
           user u2 alice@X
           user u3 bob@x
           user u3 robert@x
           user u4 carol@x
         snapshot:
           user u1 alice@x",
        expect![[r#"
            scimsync will perform the following actions:

              + user carol@x
                  userName                       "carol@x"

            Skipped:
              ! fixture:1: duplicate userName "Alice@x" (case-insensitive): left out until only one record has it
              ! fixture:2: duplicate userName "alice@X" (case-insensitive): left out until only one record has it
              ! fixture:3: duplicate source key u3: left out until only one record has it
              ! fixture:4: duplicate source key u3: left out until only one record has it

            Plan: 1 users to create, 0 to update, 0 to reactivate, 0 to deactivate, 0 to delete; 0 groups to create, 0 to update, 0 to delete; 0 held, 4 skipped, 0 warnings.
        "#]],
    );
}

#[test]
fn skipped_managed_users_keep_account_and_memberships() {
    check(
        "desired:
           user u2 bob@x
           skip u1
           group g Staff: u2
         snapshot:
           user u1 alice@x
           user u2 bob@x
           group g Staff: u1 u2",
        expect![[r#"
            No changes. The target matches the source.

            Skipped:
              ! fixture:2: left out

            Plan: 0 users to create, 0 to update, 0 to reactivate, 0 to deactivate, 0 to delete; 0 groups to create, 0 to update, 0 to delete; 0 held, 1 skipped, 0 warnings.
        "#]],
    );
}

#[test]
fn groups_rename_membership_chunks_and_delete() {
    let policy = Policy { membership_chunk: 2, ..Policy::default() };
    check_with(
        "desired:
           user a a@x
           user b b@x
           user c c@x
           user d d@x
           group g1 Helpdesk Team: a b c d
         snapshot:
           user a a@x
           user b b@x
           user c c@x
           user d d@x
           group g1 Helpdesk: a
           group g2 Old: a",
        policy,
        expect![[r#"
            scimsync will perform the following actions:

              ~ group "Helpdesk" → "Helpdesk Team"
              ~ group "Helpdesk Team": + 2 member(s)
                  + b@x
                  + c@x
              ~ group "Helpdesk Team": + 1 member(s)
                  + d@x
              - group "Old" (delete: missing from the source)

            Plan: 0 users to create, 0 to update, 0 to reactivate, 0 to deactivate, 0 to delete; 0 groups to create, 1 to update, 1 to delete; 0 held, 0 skipped, 0 warnings.
        "#]],
    );
}

#[test]
fn nested_membership_arrives_flattened_and_unprovisioned_members_are_not_pushed() {
    // The group lists u3, who is inactive and never provisioned: it cannot be a member.
    check(
        "desired:
           user u1 a@x
           user u3 c@x inactive
           group g Outer: u1 u3",
        expect![[r#"
            scimsync will perform the following actions:

              + user a@x
                  userName                       "a@x"
              + group "Outer"
              ~ group "Outer": + 1 member(s)
                  + a@x

            Skipped:
              ! fixture:2: c@x is inactive in the source and was never provisioned

            Plan: 1 users to create, 0 to update, 0 to reactivate, 0 to deactivate, 0 to delete; 1 groups to create, 0 to update, 0 to delete; 0 held, 1 skipped, 0 warnings.
        "#]],
    );
}

fn many(prefix: &str, range: std::ops::Range<usize>, extra: &str) -> String {
    range.map(|i| format!("user {prefix}{i:03} {prefix}{i:03}@x {extra}\n")).collect()
}

#[test]
fn threshold_holds_mass_deprovisioning_but_not_creates() {
    // 100 managed, 20 leave (20% > 10% and 20 > 10): held; the new user still goes ahead.
    let fixture = format!(
        "desired:\n{}user new new@x\ngroup g G: u000\nsnapshot:\n{}group g G: u000 u099\n",
        many("u", 0..80, ""),
        many("u", 0..100, "")
    );
    let p = parse(&fixture);
    let plan = reconcile::plan(&desired_of(&p), &p.snapshot, &Policy::default());
    let s = plan.summary();
    assert_eq!((s.create_user, s.deactivate_user, s.held), (1, 0, 21));
    assert!(plan.hold_reason.as_deref().unwrap().contains("20 users would be deprovisioned (20.0% of 100"));
    // The membership removal naming a held user is held with it.
    assert!(plan.held.iter().any(|op| op.kind() == "remove_members"));
    assert!(plan.ops.iter().all(|op| op.kind() != "remove_members"));
    // Approved: everything goes.
    let approved = Policy { approved: true, ..Policy::default() };
    let plan = reconcile::plan(&desired_of(&p), &p.snapshot, &approved);
    assert_eq!((plan.summary().deactivate_user, plan.summary().held), (20, 0));
}

#[test]
fn threshold_does_not_hold_one_person_in_a_small_directory() {
    let fixture = format!("desired:\n{}snapshot:\n{}", many("u", 0..4, ""), many("u", 0..5, ""));
    let p = parse(&fixture);
    let plan = reconcile::plan(&desired_of(&p), &p.snapshot, &Policy::default());
    assert_eq!((plan.summary().deactivate_user, plan.summary().held), (1, 0));
}

#[test]
fn threshold_absolute_limit_and_empty_source() {
    let policy = Policy {
        threshold: scimsync::reconcile::policy::Threshold { max_users: 3, max_percent: 100.0, min_users: 0 },
        ..Policy::default()
    };
    let fixture = format!("desired:\n{}snapshot:\n{}", many("u", 0..6, ""), many("u", 0..10, ""));
    let p = parse(&fixture);
    let plan = reconcile::plan(&desired_of(&p), &p.snapshot, &policy);
    assert_eq!(plan.summary().held, 4, "4 > max_users 3");
    check(
        "desired:
         snapshot:
           user u1 a@x",
        expect![[r#"
            No changes. The target matches the source.

            Held by the safety threshold: the source yielded no users but 1 are managed: deprovisioning is held; check the export, then `scimsync approve RUN` if this is intended
              - user a@x (deactivate: missing from the source)

            Plan: 0 users to create, 0 to update, 0 to reactivate, 0 to deactivate, 0 to delete; 0 groups to create, 0 to update, 0 to delete; 1 held, 0 skipped, 0 warnings.
        "#]],
    );
}

#[test]
fn grace_period_waits_for_runs_and_hours() {
    let policy = Policy { grace: Grace { runs: 3, hours: 24 }, now: 100_000, ..Policy::default() };
    check_with(
        "desired:
         user keep keep@x
         snapshot:
           user keep keep@x
           user new new@x
           user two two@x missing=90000/2
           user old old@x missing=10000/5",
        policy,
        expect![[r#"
            scimsync will perform the following actions:

              - user old@x (deactivate: missing from the source)

            Within the grace period (deprovisioned once missing long enough):
              . user new@x (missing for 1 run(s))
              . user two@x (missing for 3 run(s))

            Plan: 0 users to create, 0 to update, 0 to reactivate, 1 to deactivate, 0 to delete; 0 groups to create, 0 to update, 0 to delete; 0 held, 0 skipped, 0 warnings.
        "#]],
    );
}

#[test]
fn protected_roles_are_refused_with_a_warning() {
    let policy =
        Policy { protected_roles: BTreeSet::from(["System Administrator".to_string()]), ..Policy::default() };
    check_with(
        "desired:
           user u1 root@x type=technician roles=System_Administrator,Help_Desk
         snapshot:
           user u1 root@x type=technician roles=Help_Desk",
        Policy { protected_roles: BTreeSet::from(["System_Administrator".to_string()]), ..policy },
        expect![[r#"
            No changes. The target matches the source.

            Warnings:
              ! root@x: role "System_Administrator" is protected (system administrator) and is never assigned through SCIM

            Plan: 0 users to create, 0 to update, 0 to reactivate, 0 to deactivate, 0 to delete; 0 groups to create, 0 to update, 0 to delete; 0 held, 0 skipped, 1 warnings.
        "#]],
    );
}

#[test]
fn role_changes_are_updates() {
    check(
        "desired:
           user u1 t@x type=technician roles=Help_Desk,NOC
         snapshot:
           user u1 t@x type=technician roles=Help_Desk",
        expect![[r#"
            scimsync will perform the following actions:

              ~ user t@x
                  roles                          ["Help_Desk"] → ["Help_Desk", "NOC"]

            Plan: 0 users to create, 1 to update, 0 to reactivate, 0 to deactivate, 0 to delete; 0 groups to create, 0 to update, 0 to delete; 0 held, 0 skipped, 0 warnings.
        "#]],
    );
}

#[test]
fn json_summary_has_the_contract_keys() {
    let p = parse("desired:\n user u1 a@x\n group g G: u1\nsnapshot:\n user u2 b@x\n");
    let plan = reconcile::plan(&desired_of(&p), &p.snapshot, &Policy::default());
    let json = render::json(&plan, &names(&p));
    let keys: Vec<&String> = json["summary"].as_object().unwrap().keys().collect();
    let mut want = vec![
        "create_user",
        "update_user",
        "deactivate_user",
        "reactivate_user",
        "delete_user",
        "create_group",
        "update_group",
        "delete_group",
        "held",
        "skipped",
        "warnings",
    ];
    want.sort();
    assert_eq!(keys, want);
    let ops = json["operations"].as_array().unwrap();
    assert_eq!(ops[0]["op"], "create_user");
    assert_eq!(ops[0]["userName"], "a@x");
    assert_eq!(ops.last().unwrap()["op"], "deactivate_user");
    assert!(ops.iter().any(|o| o["op"] == "add_members" && o["displayName"] == "G"));
}

#[test]
fn the_streamed_json_document_is_the_one_built_as_a_value() {
    // Creates, updates, group changes, held deprovisioning with its reason: every part of it.
    let fixture = format!(
        "desired:\n{}user new new@x type=technician roles=NOC\nuser u000 changed@x\ngroup g G: u000 new\n\
         snapshot:\n{}group g G: u000 u099\n",
        many("u", 1..80, ""),
        many("u", 0..100, "")
    );
    let p = parse(&fixture);
    let plan = reconcile::plan(&desired_of(&p), &p.snapshot, &Policy::default());
    assert!(!plan.held.is_empty() && plan.hold_reason.is_some());
    let names = names(&p);
    // Fields declared out of alphabetical order, as in the real one.
    let fingerprint = scimsync::run::Fingerprint { source: "abc".into(), snapshot_version: 7 };
    let mut built = render::json(&plan, &names);
    built["fingerprint"] = serde_json::to_value(&fingerprint).unwrap();
    built["plan"] = serde_json::to_value(&plan).unwrap();
    let mut compact = Vec::new();
    scimsync::report::write_json(&mut compact, &plan, &names, &fingerprint).unwrap();
    let streamed =
        serde_json::to_string(&render::JsonDocument { plan: &plan, names: &names, fingerprint }).unwrap();
    assert_eq!(serde_json::from_str::<serde_json::Value>(&streamed).unwrap(), built);
    assert_eq!(serde_json::from_slice::<serde_json::Value>(&compact).unwrap(), built);
    assert!(compact.ends_with(b"}\n") && !compact[..compact.len() - 1].contains(&b'\n'), "one line");
}

#[test]
fn a_read_in_doubt_creates_and_adds_but_removes_nothing() {
    // The daemon read the export while it may still have been written (`Policy::unconfirmed`):
    // bob is missing and the group "Old" too, alice lost a title and a role. All of that may be
    // the part of the file not written yet: bob is only marked missing, the rest is deferred.
    let policy = Policy { unconfirmed: Some("the export changed 1 s ago".into()), ..Policy::default() };
    check_with(
        "desired:
           user u1 alice@x given=Alicia roles=A
           user u3 carol@x
           group g Staff: u1 u3
         snapshot:
           user u1 alice@x given=Alice title=Boss roles=A,B
           user u2 bob@x
           group g Staff: u1 u2
           group h Old: u1",
        policy,
        expect![[r#"
            scimsync will perform the following actions:

              + user carol@x
                  userName                       "carol@x"
              ~ user alice@x
                  name.givenName                 "Alice" → "Alicia"
              ~ group "Staff": + 1 member(s)
                  + carol@x

            Removals deferred to a later read: the export changed 1 s ago
              ~ user alice@x
                  title                          "Boss" → (none)
                  roles                          ["A", "B"] → ["A"]
              ~ group "Staff": - 1 member(s)
                  - bob@x
              - group "Old" (delete: missing from the source)

            Missing from this read (deprovisioned only once a read in no doubt confirms):
              . user bob@x (missing for 1 run(s))

            Plan: 1 users to create, 1 to update, 0 to reactivate, 0 to deactivate, 0 to delete; 0 groups to create, 1 to update, 0 to delete; 0 held, 0 skipped, 0 warnings. (3 removals deferred)
        "#]],
    );
}

#[test]
fn an_entry_that_may_be_cut_off_keeps_a_managed_user_and_removes_nothing() {
    // The export ends without a line break inside alice's entry: her values may be cut short,
    // so she is left as she is; and whatever came after her in the file may be missing, so bob
    // is not deactivated and nobody leaves a group.
    let p = parse(
        "desired:
           user u1 alice@x
           group g Staff: u1
         snapshot:
           user u1 alice@x given=Alice title=Boss
           user u2 bob@x
           group g Staff: u1 u2",
    );
    let mut desired = desired_of(&p);
    desired.cut_off =
        Some(scimsync::model::CutOff { origin: "people.ldif:40".into(), key: Some("u1".into()) });
    let plan = reconcile::plan(&desired, &p.snapshot, &Policy::default());
    expect![[r#"
        No changes. The target matches the source.

        Removals deferred to a later read: the source ends without a line break inside its last entry (people.ldif:40), which may be cut off: nothing is removed on the word of this read (end the export with a line break)
          ~ group "Staff": - 1 member(s)
              - bob@x

        Missing from this read (deprovisioned only once a read in no doubt confirms):
          . user bob@x (missing for 1 run(s))

        Skipped:
          ! people.ldif:40: the last entry of a source that ends without a line break may be cut off (its key too): left out of this run, and kept as it is in the target, until the export ends with a line break

        Plan: 0 users to create, 0 to update, 0 to reactivate, 0 to deactivate, 0 to delete; 0 groups to create, 0 to update, 0 to delete; 0 held, 1 skipped, 0 warnings. (1 removals deferred)
    "#]]
    .assert_eq(&render::text(&plan, &names(&p)));
    assert!(plan.ops.is_empty() && plan.held.is_empty(), "{plan:?}");
    assert_eq!(plan.pending.len(), 1, "bob is marked missing");
    assert_eq!(plan.deferred.len(), 1, "bob's membership removal waits");
}

/// The reports written on several threads, over more operations than one batch holds: the same
/// text, and the same JSON document, as written on one.
#[test]
fn reports_written_in_batches_on_several_threads_are_the_ones_written_on_one() {
    let fixture = format!("desired:\n{}group g G: u00001 u09000\n", many("u", 0..9001, ""));
    let p = parse(&fixture);
    let plan = reconcile::plan(&desired_of(&p), &p.snapshot, &Policy::default());
    assert!(plan.ops.len() > 9000);
    let names = names(&p);
    let mut fast = String::new();
    scimsync::report::write_text(&mut fast, &plan, &names).unwrap();
    assert_eq!(fast, render::text(&plan, &names));
    let fingerprint = scimsync::run::Fingerprint { source: "abc".into(), snapshot_version: 1 };
    let mut compact = Vec::new();
    scimsync::report::write_json(&mut compact, &plan, &names, &fingerprint).unwrap();
    let streamed =
        serde_json::to_value(render::JsonDocument { plan: &plan, names: &names, fingerprint }).unwrap();
    assert_eq!(serde_json::from_slice::<serde_json::Value>(&compact).unwrap(), streamed);
}
