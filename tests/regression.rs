//! Regression tests for what fuzzing found (see fuzz/README.md). Each input that crashed a fuzz
//! target is kept in `tests/data/fuzz-regressions/` and must now give records or a clear error.

use scimsync::source::directory::{interpret, DirectoryRules};
use scimsync::source::ldif::{LdifReader, UrlPolicy};
use scimsync::source::Record;

fn read_ldif(text: &[u8]) -> Vec<Record> {
    LdifReader::new(text, "regression.ldif", UrlPolicy::default()).collect::<Result<_, _>>().unwrap()
}

/// Runs `f` on a thread with a small stack, so that recursion as deep as the input is caught.
fn on_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new().stack_size(256 * 1024).spawn(f).unwrap().join().unwrap()
}

/// `directory` target: groups nested in a chain as deep as the export (group i has group i+1 as
/// its only member, the last one a user) were resolved recursively, one stack frame per level,
/// and a deep enough chain overflowed the stack (an abort, not an error). A 3 MB export with a
/// 50,000-deep chain crashed the fuzz build; the walk is now iterative.
#[test]
fn deeply_nested_groups_do_not_overflow_the_stack() {
    const DEPTH: usize = 20_000;
    let mut ldif = String::from("dn: uid=u,o=x\nobjectClass: inetOrgPerson\nmail: u@example.com\n");
    for i in 0..DEPTH {
        let member = if i + 1 < DEPTH { format!("cn=g{},o=x", i + 1) } else { "uid=u,o=x".into() };
        ldif.push_str(&format!("\ndn: cn=g{i},o=x\nobjectClass: groupOfNames\ncn: g{i}\nmember: {member}\n"));
    }
    let dir = on_small_stack(move || interpret(read_ldif(ldif.as_bytes()), &DirectoryRules::default()));
    assert_eq!(dir.groups.len(), DEPTH);
    assert!(dir.groups.iter().all(|g| g.members.len() == 1), "every group of the chain holds the user");
    assert_eq!(dir.users[0].groups.len(), DEPTH);
}

/// Nested groups with cycles: each group holds every user reachable from it. `inner` and
/// `outer` name each other, so both hold `a` (inner's) and `b` (through outer's `self`). The
/// walk once cut a cycle where it met it, and `inner`, finished while `outer` was still being
/// walked, kept only `a`; `tests/ldif_directory.rs` property-tests cycles over shuffled files.
#[test]
fn nested_group_cycles_give_every_group_of_a_cycle_the_same_members() {
    let ldif = b"dn: uid=a,o=x\nobjectClass: inetOrgPerson\nmail: a@example.com\n\n\
dn: uid=b,o=x\nobjectClass: inetOrgPerson\nmail: b@example.com\nuid: b\n\n\
dn: cn=outer,o=x\nobjectClass: groupOfNames\ncn: outer\nmember: cn=inner,o=x\nmember: cn=self,o=x\n\n\
dn: cn=inner,o=x\nobjectClass: groupOfNames\ncn: inner\nmember: uid=a,o=x\nmember: cn=outer,o=x\n\n\
dn: cn=self,o=x\nobjectClass: posixGroup\ncn: self\nmember: cn=self,o=x\nmemberUid: b\n";
    let dir = interpret(read_ldif(ldif), &DirectoryRules::default());
    let members: Vec<_> = dir.groups.iter().map(|g| (g.name.as_str(), g.members.len())).collect();
    assert_eq!(members, [("outer", 2), ("inner", 2), ("self", 1)]);
}
