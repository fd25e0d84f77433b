//! How an LDIF export is read as a directory, on what real exports do that synthetic ones
//! rarely do: nested groups in cycles (property-tested against an independent closure, over
//! shuffled files), search references, a last entry without a line break, AD computers and
//! contacts, `memberUid` in another case, member values that name nothing, an empty `mail:`.

use proptest::prelude::*;
use scimsync::mapping::{Mapping, RawMapping};
use scimsync::model::Profile;
use scimsync::source::directory::{interpret, DirectoryRules, SourceDirectory};
use scimsync::source::ldif::{LdifReader, UrlPolicy};
use scimsync::source::SourceKind;
use std::collections::{BTreeMap, BTreeSet};

/// The default LDIF mapping under the generic profile.
fn default_mapping() -> Mapping {
    Mapping::compile(&RawMapping::default(), Profile::Generic, SourceKind::Ldif, &[])
        .expect("the default mapping compiles")
        .0
}

fn read(text: &str) -> SourceDirectory {
    read_with(text, &DirectoryRules::default())
}

fn read_with(text: &str, rules: &DirectoryRules) -> SourceDirectory {
    let records: Vec<_> = LdifReader::new(text.as_bytes(), "t.ldif", UrlPolicy::default())
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("{e}\n{text}"));
    interpret(records, rules)
}

fn user(uid: &str) -> String {
    format!("dn: uid={uid},ou=people,dc=x\nobjectClass: inetOrgPerson\nuid: {uid}\nmail: {uid}@x.example\n\n")
}

fn group(name: &str, members: &[String]) -> String {
    let mut s = format!("dn: cn={name},ou=groups,dc=x\nobjectClass: groupOfNames\ncn: {name}\n");
    for m in members {
        s.push_str(&format!("member: {m}\n"));
    }
    s.push('\n');
    s
}

fn members_by_group(dir: &SourceDirectory) -> BTreeMap<String, BTreeSet<String>> {
    dir.groups.iter().map(|g| (g.name.clone(), g.members.iter().map(|k| k.0.clone()).collect())).collect()
}

/// A directory of `n` groups g0…g(n-1) where each names the next (the last names g0: one
/// cycle), plus extra nesting edges, self-membership, and users put directly in groups.
#[derive(Clone, Debug)]
struct Nesting {
    groups: usize,
    extra: Vec<(usize, usize)>,
    direct: Vec<(usize, usize)>,
    users: usize,
}

fn nesting() -> impl Strategy<Value = Nesting> {
    (2..=50usize, 1..20usize).prop_flat_map(|(groups, users)| {
        (
            prop::collection::vec((0..groups, 0..groups), 0..groups),
            prop::collection::vec((0..users, 0..groups), 0..users * 2),
        )
            .prop_map(move |(extra, direct)| Nesting { groups, extra, direct, users })
    })
}

impl Nesting {
    fn edges(&self) -> BTreeSet<(usize, usize)> {
        let ring = (0..self.groups).map(|g| (g, (g + 1) % self.groups));
        ring.chain(self.extra.iter().copied()).collect()
    }

    /// The entries of the file, one string each (to be shuffled).
    fn entries(&self) -> Vec<String> {
        let edges = self.edges();
        let mut out: Vec<String> = (0..self.users).map(|u| user(&format!("u{u}"))).collect();
        for g in 0..self.groups {
            let mut members: Vec<String> = edges
                .iter()
                .filter(|(a, _)| *a == g)
                .map(|(_, b)| format!("cn=g{b},ou=groups,dc=x"))
                .collect();
            members.extend(
                self.direct
                    .iter()
                    .filter(|(_, dg)| *dg == g)
                    .map(|(u, _)| format!("uid=u{u},ou=people,dc=x")),
            );
            out.push(group(&format!("g{g}"), &members));
        }
        out
    }

    /// Each group's users by a plain closure: every group reachable from it, itself included.
    fn expected(&self) -> BTreeMap<String, BTreeSet<String>> {
        let edges = self.edges();
        (0..self.groups)
            .map(|g| {
                let (mut seen, mut todo) = (BTreeSet::from([g]), vec![g]);
                while let Some(x) = todo.pop() {
                    for &(_, y) in edges.iter().filter(|(a, _)| *a == x) {
                        if seen.insert(y) {
                            todo.push(y);
                        }
                    }
                }
                let users = self
                    .direct
                    .iter()
                    .filter(|(_, dg)| seen.contains(dg))
                    .map(|(u, _)| format!("uid=u{u},ou=people,dc=x"))
                    .collect();
                (format!("g{g}"), users)
            })
            .collect()
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Every group gets the users of every group it reaches, whatever the order of the file; so
    /// all groups of one cycle get the same members.
    #[test]
    fn nested_groups_in_cycles_get_complete_members_in_any_file_order(
        nesting in nesting(),
        order in Just(()).prop_perturb(|_, mut rng| rng.random::<u64>()),
    ) {
        let mut entries = nesting.entries();
        // A shuffle driven by the case's seed: Fisher–Yates with a simple generator.
        let mut state = order | 1;
        for i in (1..entries.len()).rev() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            entries.swap(i, (state % (i as u64 + 1)) as usize);
        }
        let dir = read(&entries.concat());
        let got = members_by_group(&dir);
        prop_assert_eq!(&got, &nesting.expected());
        // The ring makes every group reach every other: all have the same members.
        let first = got.values().next().unwrap();
        prop_assert!(got.values().all(|m| m == first));
    }
}

#[test]
fn a_two_group_cycle_and_a_group_inside_itself_are_complete_in_both_orders() {
    let a = group("a", &["cn=b,ou=groups,dc=x".into(), "uid=u1,ou=people,dc=x".into()]);
    let b = group("b", &["cn=a,ou=groups,dc=x".into(), "uid=u2,ou=people,dc=x".into()]);
    let selfish = group("s", &["cn=s,ou=groups,dc=x".into(), "uid=u3,ou=people,dc=x".into()]);
    let users = [user("u1"), user("u2"), user("u3")].concat();
    for text in [format!("{users}{a}{b}{selfish}"), format!("{selfish}{b}{a}{users}")] {
        let got = members_by_group(&read(&text));
        let both: BTreeSet<String> =
            ["uid=u1,ou=people,dc=x", "uid=u2,ou=people,dc=x"].map(String::from).into();
        assert_eq!(got["a"], both);
        assert_eq!(got["b"], both);
        assert_eq!(got["s"], BTreeSet::from(["uid=u3,ou=people,dc=x".to_owned()]));
    }
}

/// `ldapsearch` at an AD domain's root: three search references before the result trailer.
#[test]
fn search_references_are_passed_over_and_counted() {
    let text = format!(
        "# extended LDIF\n#\n# LDAPv3\n\n{}# search reference\nref: ldap://ForestDnsZones.corp.example/DC=ForestDnsZones,DC=corp,DC=example\n\n# search reference\nref: ldap://DomainDnsZones.corp.example/DC=DomainDnsZones,DC=corp,DC=example\n\n# search reference\nref: ldap://corp.example/CN=Configuration,DC=corp,DC=example\n\n# search result\nsearch: 2\nresult: 0 Success\n\n# numResponses: 5\n# numEntries: 1\n",
        user("levi")
    );
    let mut reader = LdifReader::new(text.as_bytes(), "t.ldif", UrlPolicy::default());
    let mut n = 0;
    while reader.next_entry().unwrap().is_some() {
        n += 1;
    }
    assert_eq!((n, reader.references()), (1, 3));
    // Something other than ref: lines inside a reference is still an error with its line.
    let bad = "ref: ldap://a/\ncn: x\n";
    let err = LdifReader::new(bad.as_bytes(), "t.ldif", UrlPolicy::default()).next().unwrap().unwrap_err();
    assert!(err.to_string().starts_with("t.ldif:2: \"cn:\" inside a search reference"), "{err}");
}

#[test]
fn a_file_without_a_final_line_break_is_read_and_its_last_entry_marked() {
    let text =
        format!("{}dn: uid=z,ou=people,dc=x\nobjectClass: inetOrgPerson\nmail: z@x.example", user("a"));
    let mut reader = LdifReader::new(text.as_bytes(), "t.ldif", UrlPolicy::default());
    while reader.next_entry().unwrap().is_some() {}
    assert!(reader.ends_without_line_break());
    let ended_text = format!("{text}\n");
    let mut ended = LdifReader::new(ended_text.as_bytes(), "t.ldif", UrlPolicy::default());
    while ended.next_entry().unwrap().is_some() {}
    assert!(!ended.ends_without_line_break());
    // A trailing comment without a line break cuts no entry.
    let comment = format!("{}# numEntries: 1", user("a"));
    let mut reader = LdifReader::new(comment.as_bytes(), "t.ldif", UrlPolicy::default());
    while reader.next_entry().unwrap().is_some() {}
    assert!(!reader.ends_without_line_break());
}

#[test]
fn computers_are_ignored_contacts_left_out_unless_asked_and_counted() {
    let text = "dn: CN=WS01,OU=Computers,DC=corp\nobjectClass: top\nobjectClass: person\nobjectClass: organizationalPerson\nobjectClass: user\nobjectClass: computer\nuserPrincipalName: ws01$@corp.example\n\n\
                dn: CN=Vendor,OU=Contacts,DC=corp\nobjectClass: top\nobjectClass: person\nobjectClass: organizationalPerson\nobjectClass: contact\nmail: vendor@supplier.example\n\n\
                dn: CN=Ann,OU=People,DC=corp\nobjectClass: top\nobjectClass: person\nobjectClass: organizationalPerson\nobjectClass: user\nuserPrincipalName: ann@corp.example\n\n";
    let dir = read(text);
    assert_eq!((dir.users.len(), dir.computers, dir.contacts, dir.skipped.len()), (1, 1, 1, 0));
    assert!(dir.summary().contains("1 AD computer objects ignored"), "{}", dir.summary());
    assert!(dir.summary().contains("1 AD contacts left out"), "{}", dir.summary());
    let rules = DirectoryRules { include_contacts: true, ..DirectoryRules::default() };
    let dir = read_with(text, &rules);
    assert_eq!((dir.users.len(), dir.computers, dir.contacts), (2, 1, 0));
}

#[test]
fn member_uid_matches_uid_ignoring_case_and_dn_values() {
    let text = format!(
        "{}{}dn: cn=posix,ou=groups,dc=x\nobjectClass: posixGroup\ncn: posix\nmemberUid: ALICE\nmemberUid: uid=Bob,ou=people,dc=x\nmemberUid: nobody\n\n",
        user("alice"),
        user("bob")
    );
    let dir = read(&text);
    let got = members_by_group(&dir);
    assert_eq!(got["posix"].len(), 2, "{got:?}");
    assert_eq!(dir.warnings.len(), 1, "{:?}", dir.warnings);
    assert!(dir.warnings[0].contains("1 member value(s) name no user or group"), "{:?}", dir.warnings);
    assert!(dir.warnings[0].contains("\"nobody\""), "{:?}", dir.warnings);
}

#[test]
fn unresolved_members_are_reported_once_per_group_with_the_first_few() {
    let members: Vec<String> = (0..7).map(|i| format!("uid=gone{i},ou=people,dc=x")).collect();
    let text = format!("{}{}", user("a"), group("g", &members));
    let dir = read(&text);
    assert_eq!(dir.warnings.len(), 1);
    let w = &dir.warnings[0];
    assert!(w.starts_with("group \"g\" (t.ldif:"), "{w}");
    assert!(
        w.contains("7 member value(s)") && w.contains("gone0") && w.contains("gone2") && !w.contains("gone3"),
        "{w}"
    );
    // The warning reaches the plan's warnings through the mapping.
    let desired = default_mapping().map_directory(dir);
    assert!(desired.warnings.iter().any(|x| x.contains("7 member value(s)")), "{:?}", desired.warnings);
}

#[test]
fn an_empty_mail_falls_back_to_the_user_principal_name() {
    let text =
        "dn: CN=Ann,OU=People,DC=corp\nobjectClass: user\nmail:\nuserPrincipalName: ann@corp.example\n\n\
                dn: CN=Bo,OU=People,DC=corp\nobjectClass: user\nmail: \n\n";
    let dir = read(text);
    let desired = default_mapping().map_directory(dir);
    let names: Vec<&str> = desired.users.values().map(|u| u.user_name()).collect();
    assert_eq!(names, ["ann@corp.example"]);
    assert_eq!(desired.skipped.len(), 1);
    let reason = &desired.skipped[0].reason;
    assert!(reason.contains("(mail: empty, userPrincipalName: absent)"), "{reason}");
}
