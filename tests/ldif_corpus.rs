//! Parses real LDIF exports (OpenLDAP, 389-ds, slapd-generated) and checks entry counts and values.
//!
//! `tests/data/ldif/` holds a few fixtures that always run; the full corpus in
//! `../shared/ldif-corpus/` is checked as well when it is present.

use scimsync::source::ldif::{LdifError, LdifReader, UrlPolicy};
use scimsync::source::{Record, Value};
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

fn read(path: &Path) -> Result<Vec<Record>, LdifError> {
    let file = File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    LdifReader::new(BufReader::new(file), name, UrlPolicy::default()).collect()
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/ldif").join(name)
}

fn corpus() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/ldif-corpus");
    if dir.is_dir() {
        Some(dir)
    } else {
        println!("note: {} is absent; only tests/data/ldif is checked", dir.display());
        None
    }
}

fn entry<'a>(records: &'a [Record], dn: &str) -> &'a Record {
    records.iter().find(|r| r.dn == dn).unwrap_or_else(|| panic!("no entry {dn}"))
}

/// Entry counts: the number of `^dn:` lines in each file (`grep -c '^dn:'`).
const CONTENT: &[(&str, usize)] = &[
    ("389ds/European.ldif", 614),
    ("389ds/Example.ldif", 160),
    ("389ds/openldap_2_389-example_com.slapcat.ldif", 14),
    ("389ds/ticket48212-example1k_posix.ldif", 1003),
    ("389ds/ticket49441-binary.ldif", 3),
    ("openldap/its8800-db.ldif", 305),
    ("openldap/its9282-exampledb.ldif", 1011),
    ("openldap/nis_sample.ldif", 1265),
    ("openldap/test-dn.ldif", 35),
    ("openldap/test.ldif", 19),
    ("slapd-generated/ldapsearch-LLL-1k.ldif", 1025),
    ("slapd-generated/ldapsearch-commented.ldif", 12),
    ("slapd-generated/slapcat-1k.ldif", 1025),
];

#[test]
fn corpus_content_exports_parse_completely() {
    let Some(dir) = corpus() else { return };
    for (file, count) in CONTENT {
        let records = read(&dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(records.len(), *count, "{file}");
        for record in &records {
            assert!(
                !record.attrs.is_empty() || record.dn.is_empty(),
                "{file}: {} has no attributes",
                record.origin
            );
        }
    }
    // The newer files (copied to tests/data/ldif-more/) are covered by corpus_expectations.rs.
    let more = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/ldif-more");
    let listed: Vec<PathBuf> =
        walk(&dir).into_iter().filter(|f| !more.join(f.strip_prefix(&dir).unwrap()).is_file()).collect();
    assert_eq!(listed.len(), CONTENT.len() + 1, "a corpus file is not covered here: {listed:?}");
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else if path.extension().is_some_and(|e| e == "ldif") {
            files.push(path);
        }
    }
    files
}

#[test]
fn corpus_raw_utf8_values() {
    let Some(dir) = corpus() else { return };
    let records = read(&dir.join("389ds/European.ldif")).unwrap();
    let org = entry(&records, "o=Çéliné Ändrè");
    assert_eq!(org.origin.line, 11);
    assert_eq!(org.first_text("o"), Some("Çéliné Ändrè"));
}

#[test]
fn corpus_fixtures_match_the_copies() {
    let Some(dir) = corpus() else { return };
    for (copy, original) in [
        ("test.ldif", "openldap/test.ldif"),
        ("test-modify.ldif", "openldap/test-modify.ldif"),
        ("ticket49441-binary.ldif", "389ds/ticket49441-binary.ldif"),
        ("ldapsearch-commented.ldif", "slapd-generated/ldapsearch-commented.ldif"),
    ] {
        let a = std::fs::read(fixture(copy)).unwrap();
        let b = std::fs::read(dir.join(original)).unwrap();
        assert!(a == b, "tests/data/ldif/{copy} differs from the corpus copy {original}");
    }
}

#[test]
fn openldap_test_ldif() {
    let records = read(&fixture("test.ldif")).unwrap();
    assert_eq!(records.len(), 19);
    let all_staff = &records[0];
    assert_eq!(
        (all_staff.dn.as_str(), all_staff.origin.line),
        ("cn=All Staff,ou=Groups,dc=example,dc=com", 2)
    );
    assert_eq!(all_staff.values("member").count(), 11);
    // A folded member value.
    assert!(all_staff.has_value_ci(
        "member",
        "cn=Barbara Jensen,ou=Information Technology Division,ou=People,dc=example,dc=com"
    ));
    let babs =
        entry(&records, "cn=Barbara Jensen,ou=Information Technology Division,ou=People,dc=example,dc=com");
    assert_eq!(babs.origin.line, 41);
    // `sn:: IEplbnNlbiA=`: base64 keeps the leading and trailing space.
    assert_eq!(babs.first_text("sn"), Some(" Jensen "));
    assert_eq!(babs.first_text("userPassword"), Some("bjensen"));
    assert_eq!(
        babs.first_text("postalAddress"),
        Some("ITD Prod Dev & Deployment $ 535 W. William St. Room 4212 $ Anytown, MI 48103-4943")
    );
}

#[test]
fn ticket49441_binary_values() {
    let records = read(&fixture("ticket49441-binary.ldif")).unwrap();
    assert_eq!(records.iter().map(|r| r.origin.line).collect::<Vec<_>>(), [4, 15, 819]);
    assert_eq!(records[0].first_text("creatorsName"), Some(""));
    let binary = &records[1];
    assert_eq!(binary.dn, "ou=binary,dc=example,dc=com");
    let crl = binary.attrs.iter().find(|(n, _)| n == "certificaterevocationlist;binary").unwrap();
    assert!(matches!(&crl.1, Value::Binary(der) if der.starts_with(&[0x30, 0x82])), "{crl:?}");
    let cert = records[2].values("usercertificate").next().unwrap();
    assert!(matches!(cert, Value::Binary(der) if der.starts_with(&[0x30, 0x82])));
}

#[test]
fn ldapsearch_commented_output() {
    let records = read(&fixture("ldapsearch-commented.ldif")).unwrap();
    assert_eq!(records.len(), 12);
    assert_eq!(records[0].dn, "uid=u0000000,ou=people,dc=example,dc=com");
    assert_eq!(records[0].origin.line, 11);
    assert_eq!(records[0].first_text("cn"), Some("Given0 Müller"));
    assert_eq!(records[11].dn, "cn=live,ou=groups,dc=example,dc=com");
}

#[test]
fn change_record_file_is_rejected() {
    let err = read(&fixture("test-modify.ldif")).unwrap_err();
    assert!(matches!(err, LdifError::ChangeRecord { line: 7, .. }), "{err:?}");
    assert!(
        err.to_string().starts_with("test-modify.ldif:7: \"changetype: modify\" makes this a change-record"),
        "{err}"
    );
}
