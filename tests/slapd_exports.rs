//! Real slapd exports (slapcat, `ldapsearch -LLL`, commented ldapsearch) of one directory must
//! read back as the same entries, with every value intact, through scimsync's LDIF reader.

use crate::support;

use scimsync::source::{Record, Value};
use std::collections::{BTreeMap, BTreeSet};
use support::{read_ldif, slapd_export, test_data};

/// Operational attributes only slapcat prints (ldapsearch was asked for `'*' entryUUID`).
const SLAPCAT_ONLY: &[&str] = &[
    "structuralobjectclass",
    "entrycsn",
    "creatorsname",
    "createtimestamp",
    "modifiersname",
    "modifytimestamp",
];

/// Entries in `tests/data/slapd/directory.ldif`: base, two OUs, 14 people, 5 groups.
const ENTRIES: usize = 22;

const BASE: &str = "dc=example,dc=com";
const ZOE_DN: &str = "cn=Zoë Ångström,ou=people,dc=example,dc=com";

const BJONES_DESCRIPTION: &str = "Bob coordinates the regional field service teams and is the \
    first point of contact for escalations that involve more than one site; he also maintains \
    the on-call rota, reviews the monthly incident reports, trains new technicians on the \
    ticketing workflow and keeps the spare-parts inventory for the northern depots up to date. \
    Ask him before changing any shared schedule.";

const HANDERSON_DESCRIPTION: &str = "Zuständig für die Außenstellen in München, Köln und \
    Düsseldorf; spricht Französisch, Spanisch und ein wenig Dänisch.";

/// The jpegPhoto of uid=asmith, as the comment in directory.ldif describes it.
fn asmith_photo() -> Vec<u8> {
    let mut photo = vec![0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10];
    photo.extend_from_slice(b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00");
    photo.extend((0..300u32).map(|i| ((i * 37 + 11) % 256) as u8));
    photo.extend_from_slice(&[0xFF, 0xD9]);
    photo
}

/// Entry by DN; each entry's attributes as a sorted multiset, slapcat-only attributes dropped.
type Entries = BTreeMap<String, Vec<(String, Value)>>;

fn entries(name: &str, records: &[Record]) -> Entries {
    let mut out = Entries::new();
    for r in records {
        let mut attrs: Vec<(String, Value)> =
            r.attrs.iter().filter(|(a, _)| !SLAPCAT_ONLY.contains(&a.as_str())).cloned().collect();
        attrs.sort();
        let dup = out.insert(r.dn.clone(), attrs);
        assert!(dup.is_none(), "{name}: DN {} appears twice ({})", r.dn, r.origin);
    }
    out
}

fn entry<'a>(records: &'a [Record], dn: &str) -> &'a Record {
    records.iter().find(|r| r.dn == dn).unwrap_or_else(|| panic!("no entry {dn}"))
}

fn texts<'a>(r: &'a Record, attr: &str) -> Vec<&'a str> {
    r.values(attr)
        .map(|v| match v {
            Value::Text(s) => s.as_str(),
            Value::Binary(b) => panic!("{} {attr}: binary value {b:02x?}, expected text", r.dn),
        })
        .collect()
}

fn text<'a>(r: &'a Record, attr: &str) -> &'a str {
    match texts(r, attr)[..] {
        [one] => one,
        ref other => panic!("{} {attr}: expected one value, got {other:?}", r.dn),
    }
}

#[test]
fn the_three_exports_hold_the_same_entries() {
    let export = slapd_export(&test_data("slapd/directory.ldif"));
    let [(first_name, first_path), rest @ ..] = export.all();
    let first_records = read_ldif(&first_path);
    let first = entries(first_name, &first_records);
    assert_eq!(first.len(), ENTRIES, "{first_name}: DNs {:#?}", first.keys());

    // slapcat has the operational attributes the ldapsearch exports were not asked for.
    let cat_attrs: BTreeSet<&str> =
        first_records.iter().flat_map(|r| r.attrs.iter().map(|(a, _)| a.as_str())).collect();
    for a in SLAPCAT_ONLY {
        assert!(cat_attrs.contains(a), "slapcat export lacks {a}");
    }

    for (name, path) in rest {
        let records = read_ldif(&path);
        for r in &records {
            assert_eq!(&*r.origin.path, path.display().to_string(), "{name}: origin of {}", r.dn);
        }
        let other = entries(name, &records);
        assert_eq!(
            first.keys().collect::<Vec<_>>(),
            other.keys().collect::<Vec<_>>(),
            "DNs differ between {first_name} and {name}"
        );
        for (dn, attrs) in &first {
            assert_eq!(attrs, &other[dn], "{dn}: attributes differ between {first_name} and {name}");
        }
    }

    // Every entry has exactly one entryUUID, and no two entries share one.
    let uuids: BTreeSet<&str> = first_records
        .iter()
        .map(|r| match texts(r, "entryUUID")[..] {
            [u] => u,
            ref other => panic!("{}: entryUUID {other:?}", r.dn),
        })
        .collect();
    assert_eq!(uuids.len(), ENTRIES);
}

#[test]
fn values_survive_slapd_encoding_in_every_export() {
    let export = slapd_export(&test_data("slapd/directory.ldif"));
    for (name, path) in export.all() {
        let records = read_ldif(&path);
        let check = |dn: &str| entry(&records, dn);
        let people = |uid: &str| check(&format!("uid={uid},ou=people,{BASE}"));

        // Non-ASCII, whether the input had them raw or in base64 (slapd writes base64).
        let jm = people("jmueller");
        assert_eq!(text(jm, "cn"), "Jürgen Müller", "{name}");
        assert_eq!(text(jm, "sn"), "Müller", "{name}");
        assert_eq!(text(jm, "givenName"), "Jürgen", "{name}");
        assert_eq!(text(jm, "displayName"), "Jürgen Müller", "{name}");
        let zoe = check(ZOE_DN);
        assert_eq!(text(zoe, "cn"), "Zoë Ångström", "{name}");
        assert_eq!(text(zoe, "sn"), "Ångström", "{name}");
        assert_eq!(text(zoe, "givenName"), "Zoë", "{name}");
        let li = people("lilei");
        assert_eq!(text(li, "cn"), "李雷", "{name}");
        assert_eq!(text(li, "sn"), "李", "{name}");
        assert_eq!(text(li, "givenName"), "雷", "{name}");
        assert_eq!(text(people("jnunez"), "cn"), "José Núñez", "{name}");
        assert_eq!(text(people("seanob"), "cn"), "Seán O'Brien", "{name}");
        // Long non-ASCII: base64 and folded.
        assert_eq!(text(people("handerson"), "description"), HANDERSON_DESCRIPTION, "{name}");

        // Binary stays binary, byte for byte.
        let photos: Vec<&Value> = people("asmith").values("jpegPhoto").collect();
        assert_eq!(photos, [&Value::Binary(asmith_photo())], "{name}: jpegPhoto");

        // Folded plain value (> 300 characters).
        assert_eq!(text(people("bjones"), "description"), BJONES_DESCRIPTION, "{name}");

        // Leading and trailing spaces, a leading ':' and '<', an embedded newline.
        let cd = people("cdavis");
        assert_eq!(text(cd, "title"), "Senior Engineer ", "{name}");
        assert_eq!(text(cd, "description"), "  Night shift", "{name}");
        let dm = people("dmiller");
        assert_eq!(texts(dm, "description"), [":-) always cheerful", "<not a URL>"], "{name}");
        // slapd always base64-encodes userPassword; it is still text.
        assert_eq!(text(dm, "userPassword"), "{SSHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g9C9ke", "{name}");
        assert_eq!(text(people("gtaylor"), "description"), "First line\nsecond line", "{name}");

        // Attribute names are lowercased; mixed-case names in the input are all one attribute.
        let ew = people("ewilson");
        assert_eq!(
            texts(ew, "mail"),
            ["ewilson@example.com", "eve.wilson@example.org", "e.wilson@example.net"],
            "{name}"
        );
        for (a, _) in &ew.attrs {
            assert_eq!(a, &a.to_lowercase(), "{name}: attribute name {a}");
        }
    }
}

#[test]
fn group_members_come_back_as_written() {
    let export = slapd_export(&test_data("slapd/directory.ldif"));
    for (name, path) in export.all() {
        let records = read_ldif(&path);
        let group = |cn: &str| entry(&records, &format!("cn={cn},ou=groups,{BASE}"));

        let tech = group("technicians");
        assert!(tech.has_value_ci("objectClass", "groupOfNames"), "{name}");
        assert!(texts(tech, "member").contains(&ZOE_DN), "{name}: {:?}", texts(tech, "member"));
        assert_eq!(texts(tech, "member").len(), 6, "{name}");

        // Member DNs keep the case they were written in (the entry is uid=cdavis,ou=people).
        assert!(
            texts(group("helpdesk"), "member").contains(&"uid=CDavis,ou=People,dc=example,dc=com"),
            "{name}"
        );

        // slapd prints the entry's DN with the comma as \2C, but keeps the member value as written:
        // members must be matched to entries by normalised DN, not by string.
        let staff = group("staff");
        assert!(staff.has_value_ci("objectClass", "groupOfUniqueNames"), "{name}");
        assert_eq!(texts(staff, "uniqueMember").len(), 9, "{name}");
        assert!(
            texts(staff, "uniqueMember").contains(&r"cn=Doe\, Jane,ou=people,dc=example,dc=com"),
            "{name}"
        );
        assert_eq!(
            text(entry(&records, r"cn=Doe\2C Jane,ou=people,dc=example,dc=com"), "cn"),
            "Doe, Jane",
            "{name}"
        );

        // Nested group: a member that is a group.
        assert!(
            texts(group("support"), "member").contains(&"cn=helpdesk,ou=groups,dc=example,dc=com"),
            "{name}"
        );

        let dev = group("developers");
        assert!(dev.has_value_ci("objectClass", "posixGroup"), "{name}");
        assert_eq!(texts(dev, "memberUid"), ["jmueller", "lilei", "fmoore"], "{name}");
        assert_eq!(text(dev, "gidNumber"), "10000", "{name}");
    }
}
