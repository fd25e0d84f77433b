//! What each of the newer third-party exports (`tests/data/ldif-more/`, origins in its
//! `ORIGINS.md`; the same files as `../shared/ldif-corpus/`) must plan into against an empty
//! snapshot under the generic profile, with the reason an administrator would give. Counts
//! were checked by hand against the files (`grep`) where the reason says so.

use crate::cli_support::{minimal_config, repo_root, run, run_cmd, scimsync, Output};
use std::collections::BTreeMap;
use std::path::PathBuf;

enum Want {
    /// users to create, groups to create, records skipped, whether removals are deferred (the
    /// file ends inside its last entry).
    Plan { users: u64, groups: u64, skipped: u64, deferred: bool },
    /// Refused: the message names this `file:line` and says this.
    Refused { line: u64, says: &'static str },
}

use Want::*;

/// (file, what it must give, why)
const FILES: &[(&str, Want, &str)] = &[
    ("opendj/Example.ldif", Plan { users: 152, groups: 5, skipped: 1, deferred: false },
     "152 people with a mail; one inetOrgPerson has none and is skipped; 5 groupOfUniqueNames"),
    ("opendj/issue496.ldif", Plan { users: 0, groups: 0, skipped: 8, deferred: false },
     "661 organizations are not people; the 8 persons have no mail, so each is skipped with its reason"),
    ("opendj/ldifsearch.ldif", Plan { users: 21, groups: 0, skipped: 0, deferred: false },
     "21 people, all with a mail"),
    ("389ds/Ace.ldif", Plan { users: 150, groups: 1, skipped: 0, deferred: false },
     "the 389-ds Ace Industry sample: 150 people, one group"),
    ("389ds/Example-roles.ldif", Plan { users: 150, groups: 0, skipped: 0, deferred: false },
     "roles (nsRoleDefinition) are not groups: 150 people and no group"),
    ("389ds/entryuuid-userRoot.ldif", Plan { users: 0, groups: 7, skipped: 1, deferred: false },
     "a db2ldif export with 7 groups; its one person has no mail"),
    ("389ds/freeipa-ipaca.ldif", Plan { users: 0, groups: 23, skipped: 11, deferred: false },
     "the CA's service accounts have no mail (skipped); 23 groups of the CA"),
    ("389ds/urp-db1.ldif", Plan { users: 0, groups: 0, skipped: 0, deferred: false },
     "replication state of two containers: attribute options (;vucsn-…) read, nothing to provision"),
    ("bitwarden/directory-500.ldif", Plan { users: 500, groups: 0, skipped: 0, deferred: false },
     "an ldapadd file (changetype: add is a whole entry): 500 people"),
    ("bitwarden/directory-circular-groups.ldif", Plan { users: 8, groups: 10, skipped: 0, deferred: false },
     "8 people in 10 groups with two cycles; checked member by member below"),
    ("bitwarden/directory-20.ldif", Plan { users: 20, groups: 4, skipped: 1, deferred: true },
     "no final line break: read, but its last entry (the posixGroup Security Team) may be cut off, its key too: it is left out (skipped, kept as it is if managed) and nothing is removed on the word of this read; 20 people, 4 more groups"),
    ("docker-test-openldap/10_people_professor.ldif", Plan { users: 1, groups: 0, skipped: 0, deferred: false },
     "one person (two mail values: the first is the userName) with a 36 KB photo"),
    ("apacheds/server-jndi-example.ldif", Plan { users: 6, groups: 2, skipped: 0, deferred: false },
     "6 people, 2 groups whose members point outside the export (2 warnings); referral entries are not people"),
    ("apacheds/muppets.ldif", Plan { users: 6, groups: 0, skipped: 0, deferred: false },
     "6 people"),
    ("samba/provision_users.ldif", Refused { line: 48, says: "invalid base64" },
     "a template, not an export: `clearTextPassword:: ${ADMINPASS_B64}` is no base64 value"),
    ("samba/samba3.ldif", Plan { users: 0, groups: 13, skipped: 2, deferred: false },
     "Samba 3 accounts have no mail (skipped); 13 posixGroups"),
    ("samba/ldb-test.ldif", Plan { users: 10, groups: 4, skipped: 2, deferred: false },
     "unpadded base64 decodes as padded would; 10 people, 2 without mail, 4 groups naming one person outside the file"),
    ("freeipa/ds_migration-instance1.ldif", Plan { users: 0, groups: 5, skipped: 5, deferred: false },
     "posixAccounts without mail are skipped; 5 groups"),
    ("ldap3-rs/example.ldif", Plan { users: 0, groups: 0, skipped: 2, deferred: false },
     "601 localities are not people; 2 accounts without mail"),
    ("freeipa/bootstrap-template.ldif", Plan { users: 0, groups: 5, skipped: 1, deferred: false },
     "a template: its one account has no mail, its 5 groups are read"),
    ("keycloak/default-users.ldif", Plan { users: 2, groups: 3, skipped: 0, deferred: false },
     "2 people, 3 groupOfNames"),
    ("openldap/test-dirsync-nocp.ldif", Plan { users: 10, groups: 3, skipped: 1, deferred: false },
     "comments before and inside entries are passed over"),
    ("openldap/test-compmatch.ldif", Plan { users: 9, groups: 3, skipped: 1, deferred: false },
     "userCertificate;binary values read as binary"),
    ("jenkins-ldap/dnWithSpaces.ldif", Plan { users: 7, groups: 2, skipped: 1, deferred: true },
     "spaces in DNs and a multi-valued RDN resolve; no final line break, so its last entry (the group staff) is left out and nothing is removed"),
    ("jenkins-ldap/sevenSeas.ldif", Plan { users: 11, groups: 3, skipped: 0, deferred: false },
     "the ApacheDS Seven Seas sample: 11 people, 3 groupOfUniqueNames"),
    ("ad-ldapsearch/puppy-htb-levi.james.ldif", Plan { users: 1, groups: 0, skipped: 0, deferred: false },
     "ldapsearch against AD: one user, three search references passed over and counted"),
];

/// The file in the shared corpus when it is there, else the copy in the repository.
fn path(file: &str) -> PathBuf {
    let shared = repo_root().join("../shared/ldif-corpus").join(file);
    if shared.is_file() {
        shared
    } else {
        repo_root().join("tests/data/ldif-more").join(file)
    }
}

fn plan(tmp: &std::path::Path, file: &str) -> Output {
    let name = file.replace(['/', '.'], "_");
    let config = minimal_config(tmp, &name, &path(file), Some("generic"));
    run(&config, &["plan", "--format", "json"])
}

#[test]
fn every_newer_export_plans_as_an_administrator_expects() {
    let tmp = tempfile::tempdir().unwrap();
    let mut problems = Vec::new();
    for (file, want, why) in FILES {
        let out = plan(tmp.path(), file);
        match want {
            Plan { users, groups, skipped, deferred } => {
                if out.code != Some(0) {
                    problems.push(format!("{file} ({why}): plan failed\n{out}"));
                    continue;
                }
                let doc = out.json();
                let s = &doc["summary"];
                let got = (
                    s["create_user"].as_u64().unwrap(),
                    s["create_group"].as_u64().unwrap(),
                    s["skipped"].as_u64().unwrap(),
                    !doc["defer_reason"].is_null(),
                );
                if got != (*users, *groups, *skipped, *deferred) {
                    problems.push(format!(
                        "{file} ({why}): (users, groups, skipped, deferred) {got:?} != {:?}",
                        (users, groups, skipped, deferred)
                    ));
                }
                for k in ["update_user", "deactivate_user", "delete_user", "delete_group", "held"] {
                    if s[k] != 0 {
                        problems.push(format!("{file}: {k} = {} against an empty snapshot", s[k]));
                    }
                }
            }
            Refused { line, says } => {
                let at = format!("{}:{line}:", path(file).display());
                if out.code != Some(1) || !out.stderr.contains(&at) || !out.stderr.contains(says) {
                    problems
                        .push(format!("{file} ({why}): should be refused at {at} saying {says:?}\n{out}"));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{} problem(s):\n{}", problems.len(), problems.join("\n"));
    let dir = repo_root().join("tests/data/ldif-more");
    let mut copies = 0;
    for group in std::fs::read_dir(&dir).unwrap().flatten().filter(|e| e.path().is_dir()) {
        copies += std::fs::read_dir(group.path()).unwrap().count();
    }
    assert_eq!(copies, FILES.len(), "every file of tests/data/ldif-more has its expectation here");
}

/// Two cycles (Platform → Engineering → DevOps → Platform, TestNestA ↔ TestNestB): every group
/// of a cycle gets the same, complete members.
#[test]
fn the_circular_groups_file_gives_each_cycle_its_whole_membership() {
    let tmp = tempfile::tempdir().unwrap();
    let doc = plan(tmp.path(), "bitwarden/directory-circular-groups.ldif").json();
    let mut members: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for op in doc["operations"].as_array().unwrap().iter().filter(|op| op["op"] == "add_members") {
        let names =
            op["members"].as_array().unwrap().iter().map(|m| m["userName"].as_str().unwrap().to_owned());
        members.entry(op["displayName"].as_str().unwrap().to_owned()).or_default().extend(names);
    }
    let engineering =
        ["ChenA@bitwarden.com", "KimD@bitwarden.com", "MartinezB@bitwarden.com", "WilliamsC@bitwarden.com"];
    for g in ["Platform", "Engineering", "DevOps"] {
        let mut got = members[g].clone();
        got.sort();
        assert_eq!(got, engineering, "{g}: {members:?}");
    }
    assert_eq!(members["TestNestA"].len(), 2, "{members:?}");
    assert_eq!(
        members["TestNestA"].iter().collect::<std::collections::BTreeSet<_>>(),
        members["TestNestB"].iter().collect()
    );
    assert_eq!(members["AllStaff"].len(), 8, "{members:?}");
}

/// `ldapsearch` against Active Directory: the read's summary line counts the references.
#[test]
fn the_ad_ldapsearch_output_counts_its_search_references() {
    let tmp = tempfile::tempdir().unwrap();
    let file = "ad-ldapsearch/puppy-htb-levi.james.ldif";
    let config = minimal_config(tmp.path(), "puppy", &path(file), Some("generic"));
    let out = run_cmd(scimsync().env("RUST_LOG", "info").arg("--config").arg(&config).arg("plan"));
    assert_eq!(out.code, Some(0), "{out}");
    assert!(out.stderr.contains("3 search references not followed"), "{out}");
}

/// The UTF-16 export `ldifde -u` writes (a converted copy) gets its own message, not "cut off".
#[test]
fn a_utf16_export_is_named_as_such() {
    let tmp = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(path("apacheds/muppets.ldif")).unwrap();
    let mut bytes = vec![0xFF, 0xFE];
    bytes.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
    let file = tmp.path().join("utf16.ldif");
    std::fs::write(&file, bytes).unwrap();
    let out = run(&minimal_config(tmp.path(), "utf16", &file, Some("generic")), &["plan"]);
    assert_eq!(out.code, Some(1), "{out}");
    assert!(out.stderr.contains("UTF-16") && out.stderr.contains("utf16.ldif:1:"), "{out}");
    assert!(!out.stderr.contains("cut off"), "{out}");
}
