//! Source completeness under attack: for each damaged export, `sync` ends with a clear error, a
//! held run, or a run that removes nothing; it deactivates nobody and leaves the snapshot
//! unchanged (but for the marks of users missing from a read in doubt). The table of these
//! cases is in docs/reliability.md.

use crate::support;

use support::scim_server::ScimServer;
use support::site::{group, person, Site};

fn good(n: u32) -> String {
    let mut s: String =
        (0..n).map(|i| person(&format!("u{i:03}"), "Given", &format!("Sn{i}"), i, &[])).collect();
    let all: Vec<String> = (0..n).map(|i| format!("u{i:03}")).collect();
    let refs: Vec<&str> = all.iter().map(String::as_str).collect();
    s.push_str(&group("everyone", 1, &refs));
    s
}

/// Makes the damaged export from the good one.
type Damage = Box<dyn Fn(&str) -> Vec<u8>>;

struct Case {
    name: &'static str,
    source: Damage,
    /// Exit codes accepted: 1 (error), 3 (held), 0 (accepted unchanged).
    codes: &'static [i32],
    /// Words the message (or, for an accepted read, the output) must contain.
    says: &'static [&'static str],
    /// The read is accepted but in doubt: users missing from it are marked missing, nothing
    /// else in the snapshot changes.
    marks_missing: bool,
}

fn cases() -> Vec<Case> {
    vec![
        // Read, since a hand-written file often lacks its last line break; but its last entry may
        // be cut off, so the run removes nothing: the users after the cut are only marked
        // missing, the membership removals deferred.
        Case {
            name: "cut mid-record",
            source: Box::new(|g| g.as_bytes()[..g.len() * 3 / 5].to_vec()),
            codes: &[0],
            says: &["removals deferred"],
            marks_missing: true,
        },
        Case {
            name: "empty file",
            source: Box::new(|_| Vec::new()),
            codes: &[1],
            says: &["empty"],
            marks_missing: false,
        },
        Case {
            name: "half the users gone",
            source: Box::new(|_| {
                let mut s: String = (0..30)
                    .map(|i| person(&format!("u{i:03}"), "Given", &format!("Sn{i}"), i, &[]))
                    .collect();
                let kept: Vec<String> = (0..30).map(|i| format!("u{i:03}")).collect();
                s.push_str(&group("everyone", 1, &kept.iter().map(String::as_str).collect::<Vec<_>>()));
                s.into_bytes()
            }),
            codes: &[3],
            says: &["held", "scimsync approve"],
            marks_missing: false,
        },
        Case {
            name: "invalid UTF-8",
            source: Box::new(|g| {
                g.replacen("sn: Sn7\n", "sn: Sn\u{7}\n", 1)
                    .replace('\u{7}', "\u{fffd}")
                    .into_bytes()
                    .into_iter()
                    .map(|b| if b == 0xbd { 0xff } else { b })
                    .collect()
            }),
            codes: &[1],
            says: &["UTF-8", "people.ldif:"],
            marks_missing: false,
        },
        Case {
            name: "byte-order mark",
            source: Box::new(|g| [&[0xef, 0xbb, 0xbf][..], g.as_bytes()].concat()),
            codes: &[0],
            says: &[],
            marks_missing: false,
        },
        Case {
            name: "NUL bytes",
            source: Box::new(|g| g.replacen("sn: Sn3\n", "sn: S\0n3\n", 1).into_bytes()),
            codes: &[1],
            says: &["people.ldif:"],
            marks_missing: false,
        },
        Case {
            name: "10 MB attribute value",
            source: Box::new(|g| {
                g.replacen("sn: Sn5\n", &format!("sn: Sn5\ndescription: {}\n", "x".repeat(10 << 20)), 1)
                    .into_bytes()
            }),
            codes: &[0],
            says: &[],
            marks_missing: false,
        },
        Case {
            name: "a group of 300,060 members",
            source: Box::new(|g| {
                // The existing group, with 300,000 more members the directory does not hold.
                let mut s = g.trim_end().to_owned();
                s.push('\n');
                for i in 0..300_000 {
                    s.push_str(&format!("member: uid=x{i},ou=people,dc=example,dc=com\n"));
                }
                s.into_bytes()
            }),
            codes: &[0],
            says: &[],
            marks_missing: false,
        },
        Case {
            name: "duplicate DNs",
            source: Box::new(|g| format!("{g}{}", person("u004", "Other", "Twin", 4, &[])).into_bytes()),
            codes: &[0],
            says: &[],
            marks_missing: false,
        },
        Case {
            name: "duplicate userNames in different case",
            source: Box::new(|g| format!("{g}{}", person("U004", "Other", "Twin", 999, &[])).into_bytes()),
            codes: &[0],
            says: &[],
            marks_missing: false,
        },
        Case {
            name: "a change-record file",
            source: Box::new(|_| {
                b"dn: uid=u001,ou=people,dc=example,dc=com\nchangetype: modify\nreplace: sn\nsn: X\n-\n"
                    .to_vec()
            }),
            codes: &[1],
            says: &["change", "people.ldif:2"],
            marks_missing: false,
        },
        Case {
            name: "binary garbage",
            source: Box::new(|_| (0..4096u32).map(|i| (i * 7919 % 251) as u8).chain([b'\n']).collect()),
            codes: &[1],
            says: &["people.ldif:"],
            marks_missing: false,
        },
    ]
}

#[test]
fn damaged_exports_deactivate_nobody_and_leave_the_snapshot_unchanged() {
    let server = ScimServer::shared();
    let site = Site::new(server, "", "");
    let good = good(60);
    site.write_source(&good);
    site.sync_ok();
    let db = site.dir.path().join("state.db");
    let snapshot = || {
        serde_json::to_string(&scimsync::store::Store::open(&db).unwrap().load_snapshot().unwrap()).unwrap()
    };
    let before = snapshot();
    let rt = support::rt();
    for case in cases() {
        let bytes = (case.source)(&good);
        let tmp = site.dir.path().join("people.ldif.tmp");
        std::fs::write(&tmp, &bytes).unwrap();
        std::fs::rename(&tmp, &site.source).unwrap();
        let run = site.scimsync(&["sync"]);
        assert!(run.code.is_some_and(|c| case.codes.contains(&c)), "{}: unexpected exit\n{run}", case.name);
        for word in case.says {
            let said = run.stderr.contains(word) || run.stdout.contains(word);
            assert!(said, "{}: the message lacks {word:?}\n{run}", case.name);
        }
        let (_, doc) = rt.block_on(site.raw().get("/Users?filter=active eq false"));
        assert_eq!(doc["totalResults"], 0, "{}: somebody was deactivated", case.name);
        if case.marks_missing {
            // A second run on the same file removes nothing either: the file still ends
            // inside an entry, so the read is still in doubt.
            let again = site.scimsync(&["sync"]);
            assert_eq!(again.code, Some(0), "{}: second run\n{again}", case.name);
            let (_, doc) = rt.block_on(site.raw().get("/Users?filter=active eq false"));
            assert_eq!(doc["totalResults"], 0, "{}: deactivated on the second run", case.name);
            let (_, staff) = rt.block_on(site.raw().get("/Groups?filter=displayName eq \"everyone\""));
            let members = staff["Resources"][0]["members"].as_array().map_or(0, Vec::len);
            assert_eq!(members, 60, "{}: somebody left the group\n{staff}", case.name);
            // The complete export again clears the marks: the snapshot is as before.
            site.write_source(&good);
            site.sync_ok();
        }
        assert!(snapshot() == before, "{}: the snapshot changed\n{run}", case.name);
        println!("{}: exit {:?}: {}", case.name, run.code, run.stderr.lines().last().unwrap_or(""));
    }
}
