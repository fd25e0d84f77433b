//! scimsync's directory interpretation (users, groups, nested and memberUid membership) gives the
//! same result from every slapd export of one directory, and from the hand-written input itself.

use crate::support;

use scimsync::source::directory::{interpret, DirectoryRules, SourceDirectory};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use support::{read_ldif, slapd_export, test_data};

fn directory(path: &Path) -> SourceDirectory {
    interpret(read_ldif(path), &DirectoryRules::default())
}

/// (user key, the user's sorted group names).
fn user_groups(dir: &SourceDirectory) -> BTreeSet<(String, Vec<String>)> {
    dir.users.iter().map(|u| (u.key.0.clone(), u.groups.iter().cloned().collect())).collect()
}

/// (group name, sorted member keys).
fn group_members(dir: &SourceDirectory) -> BTreeSet<(String, Vec<String>)> {
    dir.groups.iter().map(|g| (g.name.clone(), g.members.iter().map(|k| k.0.clone()).collect())).collect()
}

/// The same, naming users by their first mail (keys differ between the input, which has no
/// entryUUID, and the exports).
fn by_mail(
    dir: &SourceDirectory,
) -> (BTreeMap<String, BTreeSet<String>>, BTreeMap<String, BTreeSet<String>>) {
    let mail: BTreeMap<&str, String> = dir
        .users
        .iter()
        .map(|u| {
            (u.key.0.as_str(), u.record.first_text("mail").expect("every test user has a mail").to_owned())
        })
        .collect();
    let users = dir.users.iter().map(|u| (mail[u.key.0.as_str()].clone(), u.groups.clone())).collect();
    let groups = dir
        .groups
        .iter()
        .map(|g| (g.name.clone(), g.members.iter().map(|k| mail[k.0.as_str()].clone()).collect()))
        .collect();
    (users, groups)
}

fn set(xs: &[&str]) -> BTreeSet<String> {
    xs.iter().map(|s| s.to_string()).collect()
}

/// Membership as tests/data/slapd/directory.ldif defines it, nested groups flattened.
fn expected_groups() -> BTreeMap<String, BTreeSet<String>> {
    let helpdesk = ["jose.nunez@example.com", "bjones@example.com", "cdavis@example.com"];
    let mut support = set(&helpdesk);
    support.extend(set(&["dmiller@example.com", "ewilson@example.com"]));
    BTreeMap::from([
        (
            "technicians".to_string(),
            set(&[
                "jmueller@example.com",
                "zoe.angstrom@example.com",
                "lilei@example.com",
                "asmith@example.com",
                "handerson@example.com",
                "sean.obrien@example.com",
            ]),
        ),
        ("helpdesk".to_string(), set(&helpdesk)),
        (
            "staff".to_string(),
            set(&[
                "jmueller@example.com",
                "jose.nunez@example.com",
                "asmith@example.com",
                "bjones@example.com",
                "cdavis@example.com",
                "dmiller@example.com",
                "ewilson@example.com",
                "gtaylor@example.com",
                "jane.doe@example.com",
            ]),
        ),
        ("support".to_string(), support),
        ("developers".to_string(), set(&["jmueller@example.com", "lilei@example.com", "fmoore@example.com"])),
    ])
}

/// Checks one directory against the hand-made expectation; every difference, not the first.
fn check_membership(name: &str, dir: &SourceDirectory) {
    assert_eq!(dir.users.len(), 14, "{name}: users");
    assert_eq!(dir.groups.len(), 5, "{name}: groups");
    assert!(dir.skipped.is_empty(), "{name}: skipped {:?}", dir.skipped);
    assert_eq!(dir.ignored, 3, "{name}: the suffix and two OUs are neither users nor groups");
    let (users, groups) = by_mail(dir);
    let want = expected_groups();
    let mut problems = Vec::new();
    for (g, members) in &want {
        let got = groups.get(g).cloned().unwrap_or_default();
        let lacking: Vec<_> = members.difference(&got).collect();
        let extra: Vec<_> = got.difference(members).collect();
        if !lacking.is_empty() || !extra.is_empty() {
            problems.push(format!("group {g}: lacks {lacking:?}, has extra {extra:?}"));
        }
    }
    // Each user's groups are the inverse of the groups' members.
    for (mail, got) in &users {
        let want_groups: BTreeSet<String> =
            want.iter().filter(|(_, m)| m.contains(mail)).map(|(g, _)| g.clone()).collect();
        if got != &want_groups {
            problems.push(format!("user {mail}: groups {got:?}, expected {want_groups:?}"));
        }
    }
    assert!(problems.is_empty(), "{name}:\n{}", problems.join("\n"));
}

#[test]
fn slapcat_and_ldapsearch_exports_give_the_same_users_and_memberships() {
    let export = slapd_export(&test_data("slapd/directory.ldif"));
    let [(first_name, first_path), rest @ ..] = export.all();
    let first = directory(&first_path);
    // entryUUID is the key in every export (slapcat prints it; ldapsearch was asked for it).
    for u in &first.users {
        let uuid = u.record.first_text("entryUUID").expect("entryUUID");
        assert_eq!(u.key.0, uuid.to_ascii_lowercase(), "{first_name}: key of {}", u.record.dn);
    }
    for (name, path) in rest {
        let other = directory(&path);
        assert_eq!(
            user_groups(&first),
            user_groups(&other),
            "users and their groups: {first_name} vs {name}"
        );
        assert_eq!(
            group_members(&first),
            group_members(&other),
            "groups and members: {first_name} vs {name}"
        );
    }
}

#[test]
fn nested_and_memberuid_groups_resolve_in_every_export() {
    let export = slapd_export(&test_data("slapd/directory.ldif"));
    for (name, path) in export.all() {
        let dir = directory(&path);
        let (_, groups) = by_mail(&dir);
        // support = helpdesk (nested) + two direct members.
        let helpdesk = &groups["helpdesk"];
        assert_eq!(helpdesk.len(), 3, "{name}: helpdesk {helpdesk:?}");
        assert!(groups["support"].is_superset(helpdesk), "{name}: support {:?}", groups["support"]);
        // uid=CDavis,ou=People: a member DN in another case than the entry's.
        assert!(helpdesk.contains("cdavis@example.com"), "{name}: helpdesk {helpdesk:?}");
        // posixGroup memberUid → users by uid.
        assert_eq!(
            groups["developers"],
            set(&["jmueller@example.com", "lilei@example.com", "fmoore@example.com"]),
            "{name}"
        );
    }
}

/// slapd writes the entry's DN as `cn=Doe\2C Jane,…` while the staff group keeps its member
/// value as `cn=Doe\, Jane,…`: both are the same DN.
#[test]
fn an_escaped_comma_written_two_ways_still_resolves() {
    let export = slapd_export(&test_data("slapd/directory.ldif"));
    for (name, path) in export.all() {
        let dir = directory(&path);
        let jane = dir
            .users
            .iter()
            .find(|u| u.record.first_text("mail") == Some("jane.doe@example.com"))
            .unwrap_or_else(|| panic!("{name}: no user jane.doe@example.com"));
        assert_eq!(
            jane.record.dn, r"cn=Doe\2C Jane,ou=people,dc=example,dc=com",
            "{name}: as slapd writes it"
        );
        assert_eq!(jane.groups, set(&["staff"]), "{name}: Jane's groups");
        let staff = dir.groups.iter().find(|g| g.name == "staff").expect("staff");
        assert!(staff.members.contains(&jane.key), "{name}: staff lacks Jane");
        assert_eq!(staff.members.len(), 9, "{name}: staff");
    }
}

#[test]
fn every_export_and_the_input_itself_agree_with_the_hand_made_membership() {
    check_membership("input", &directory(&test_data("slapd/directory.ldif")));
    let export = slapd_export(&test_data("slapd/directory.ldif"));
    for (name, path) in export.all() {
        check_membership(name, &directory(&path));
    }
}
