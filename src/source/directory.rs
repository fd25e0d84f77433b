//! Reads directory records as users and groups: group classes and member attributes, source
//! keys, AD `userAccountControl`, and nested groups flattened (SPEC §2).

use super::{is_type, Names, Record, SourceEntry, UserRecord, ValueRef};

mod flatten;
mod rules;
use crate::model::{Skip, SourceKey};
use base64::Engine;
pub use flatten::flatten;
pub use rules::DirectoryRules;
use std::collections::hash_map::Entry;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::hash::BuildHasher;

/// Hash maps keyed by DNs and uids, a million of them for a large directory: foldhash hashes
/// such strings several times faster than the standard SipHash (no untrusted input decides
/// their keys' cost here beyond the export itself).
type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// Finds the user a group's member reference names.
pub trait UserIndex {
    fn find(&self, id: &str, users: &[SourceUser]) -> Option<usize>;
}

/// By the exact id (SCIM resource ids, uids).
impl<S: BuildHasher> UserIndex for HashMap<String, usize, S> {
    fn find(&self, id: &str, _: &[SourceUser]) -> Option<usize> {
        self.get(id).copied()
    }
}

/// Users by normalised DN, holding each DN's hash instead of the DN (the DNs themselves would be
/// a large share of a big read's peak): a match is confirmed by normalising the user's DN again.
/// A DN whose hash another DN already has is kept whole.
#[derive(Default)]
struct DnIndex {
    by_hash: FastMap<u64, usize>,
    whole: FastMap<String, usize>,
    state: foldhash::fast::RandomState,
}

impl DnIndex {
    fn with_state(state: foldhash::fast::RandomState) -> Self {
        DnIndex { by_hash: FastMap::default(), whole: FastMap::default(), state }
    }

    /// User `idx`, whose normalised DN hashes to `hash` under this index's state; a later user
    /// with the same DN replaces the earlier one.
    fn insert(&mut self, hash: u64, idx: usize, users: &[SourceUser]) {
        match self.by_hash.entry(hash) {
            Entry::Vacant(e) => {
                e.insert(idx);
            }
            Entry::Occupied(mut e) => {
                let dn = normalize_dn(&users[idx].record.dn);
                if normalize_dn(&users[*e.get()].record.dn) == dn {
                    e.insert(idx);
                } else {
                    self.whole.insert(dn, idx);
                }
            }
        }
    }
}

impl UserIndex for DnIndex {
    fn find(&self, dn: &str, users: &[SourceUser]) -> Option<usize> {
        if let Some(&i) = self.whole.get(dn) {
            return Some(i);
        }
        let &i = self.by_hash.get(&self.state.hash_one(dn))?;
        (normalize_dn(&users[i].record.dn) == dn).then_some(i)
    }
}

/// A source user before mapping.
#[derive(Clone, Debug)]
pub struct SourceUser {
    pub key: SourceKey,
    pub record: UserRecord,
    /// False when the source marks the account disabled.
    pub active: bool,
    /// Names of the groups the user belongs to, nested groups included.
    pub groups: BTreeSet<String>,
}

/// A source group with its members flattened to user keys.
#[derive(Clone, Debug)]
pub struct SourceGroup {
    pub key: SourceKey,
    pub origin: String,
    pub name: String,
    pub members: BTreeSet<SourceKey>,
}

/// Everything a source read yields, before mapping.
#[derive(Clone, Debug, Default)]
pub struct SourceDirectory {
    pub users: Vec<SourceUser>,
    pub groups: Vec<SourceGroup>,
    pub skipped: Vec<Skip>,
    pub records_read: u64,
    /// Entries that are neither users nor groups (organizational units, the suffix, …).
    pub ignored: u64,
    /// AD `computer` objects: accounts of machines, never of people.
    pub computers: u64,
    /// AD `contact` objects left out (`source.include_contacts = false`): address-book entries
    /// of people who do not log in.
    pub contacts: u64,
    /// Search references (`ref:` records of `ldapsearch`) passed over, not followed.
    pub references: u64,
    /// What the plan should tell the administrator about the read (members that name nothing).
    pub warnings: Vec<String>,
    /// Set when the export does not end with a line break: its last entry may be cut off.
    pub cut_off: Option<CutOff>,
}

pub use crate::model::CutOff;

impl SourceDirectory {
    /// The read's summary line: what was read and what was passed over, and why.
    pub fn summary(&self) -> String {
        let mut line = format!(
            "{} records read: {} users, {} groups",
            self.records_read,
            self.users.len(),
            self.groups.len()
        );
        let passed = [
            (self.ignored, "other entries (organizational units, the suffix, …) ignored"),
            (self.computers, "AD computer objects ignored"),
            (self.contacts, "AD contacts left out (source.include_contacts)"),
            (self.references, "search references not followed"),
        ];
        for (n, what) in passed {
            if n > 0 {
                line.push_str(&format!(", {n} {what}"));
            }
        }
        if let Some(cut) = &self.cut_off {
            line.push_str(&format!("; ends without a line break after {}", cut.origin));
        }
        line
    }
}

/// A group member reference before resolution.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum MemberRef {
    /// A normalised DN (`member`, `uniqueMember`), or a resource id (SCIM).
    Id(String),
    /// A `memberUid` value: the user's `uid`.
    Uid(String),
}

/// A group as read, before its members are resolved.
#[derive(Clone, Debug)]
pub struct RawGroup {
    pub key: SourceKey,
    /// How members name this group (normalised DN or SCIM id).
    pub id: String,
    pub origin: String,
    pub name: String,
    pub members: Vec<MemberRef>,
}

/// A normalised DN for matching member values to entries: escapes decoded (`\2C` and `\,` are
/// the same), specials re-escaped, no spaces around `,` `=` `+`, lowercase.
pub fn normalize_dn(dn: &str) -> String {
    // Most DNs are ASCII with no escapes and no spaces: lowercasing is all there is to do.
    if dn.bytes().all(|b| b > b' ' && b < 0x7f && b != b'\\') {
        return dn.to_ascii_lowercase();
    }
    // Decode escapes to (byte, escaped) pairs.
    let b = dn.trim().as_bytes();
    let mut bytes = Vec::with_capacity(b.len());
    let mut escaped = Vec::with_capacity(b.len());
    let hex = |c: u8| (c as char).to_digit(16);
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 1 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), b.get(i + 2).and_then(|c| hex(*c))) {
                bytes.push((h * 16 + l) as u8);
                i += 3;
            } else {
                bytes.push(b[i + 1]);
                i += 2;
            }
            escaped.push(true);
        } else {
            bytes.push(b[i]);
            escaped.push(false);
            i += 1;
        }
    }
    let mut out = String::with_capacity(dn.len());
    let mut pending_space = false;
    let mut last_sep = true;
    let mut k = 0;
    // Re-encode: escaped bytes become literal text, specials escaped again.
    while k < bytes.len() {
        let len = utf8_len(bytes[k]).min(bytes.len() - k);
        let chunk = String::from_utf8_lossy(&bytes[k..k + len]).into_owned();
        let was_escaped = escaped[k];
        k += len;
        let c = chunk.chars().next().unwrap_or('\u{fffd}');
        if !was_escaped && c == ' ' {
            pending_space = true;
            continue;
        }
        let sep = !was_escaped && matches!(c, ',' | '=' | '+');
        if pending_space && !sep && !last_sep {
            out.push(' ');
        }
        pending_space = false;
        if was_escaped && matches!(c, ',' | '=' | '+' | '"' | '\\' | '<' | '>' | ';' | '#' | ' ') {
            out.push('\\');
        }
        out.extend(chunk.chars().flat_map(char::to_lowercase));
        last_sep = sep;
    }
    out
}

fn utf8_len(first: u8) -> usize {
    match first {
        0xF0..=0xF7 => 4,
        0xE0..=0xEF => 3,
        0xC0..=0xDF => 2,
        _ => 1,
    }
}

/// The stable key of an entry: the first key attribute present, else its normalised DN. A
/// binary value of 16 bytes (AD's `objectGUID`, from a live read or a base64 LDIF value) is the
/// canonical GUID string AD's tools show (`7c5e4f2a-…`, the first three fields little-endian);
/// other binary values are their base64. Text keys are trimmed and lowercased: an `objectGUID`
/// whose 16 bytes happen to be UTF-8 is text in an LDIF export and in a live read alike, so both
/// give it the same key.
pub fn source_key(record: &impl SourceEntry, rules: &DirectoryRules) -> SourceKey {
    for name in &rules.key_attributes {
        if let Some(v) = record.values_of(name).next() {
            if let ValueRef::Binary(b) = v {
                if let Ok(guid) = <[u8; 16]>::try_from(b) {
                    return SourceKey(guid_string(guid));
                }
            }
            return SourceKey(match v {
                ValueRef::Text(t) if !t.trim().is_empty() => t.trim().to_ascii_lowercase(),
                ValueRef::Text(_) => continue,
                ValueRef::Binary(b) => base64::engine::general_purpose::STANDARD.encode(b),
            });
        }
    }
    SourceKey(normalize_dn(record.dn()))
}

/// The canonical string of an AD GUID as stored (`objectGUID`): what AD's tools show.
pub fn guid_string(bytes: [u8; 16]) -> String {
    uuid::Uuid::from_bytes_le(bytes).hyphenated().to_string()
}

const PERSON_CLASSES: [&str; 6] =
    ["person", "organizationalperson", "inetorgperson", "user", "posixaccount", "account"];

/// The attribute types (lowercased) that [`interpret`] reads, whatever the mapping reads.
pub fn needed_attributes(rules: &DirectoryRules) -> impl Iterator<Item = String> + '_ {
    let fixed = ["objectclass", "uid", "useraccountcontrol", "nsaccountlock"].into_iter().map(str::to_owned);
    let configured = rules
        .key_attributes
        .iter()
        .chain(&rules.user_name_attributes)
        .chain(&rules.member_attributes)
        .chain(std::iter::once(&rules.group_name_attribute))
        .map(|a| a.to_ascii_lowercase());
    fixed.chain(configured)
}

/// Interprets LDAP directory records (LDIF, later LDAP search results), consuming them one by
/// one: a user keeps its record, a group only its resolved parts.
pub fn interpret(records: impl IntoIterator<Item = Record>, rules: &DirectoryRules) -> SourceDirectory {
    interpret_keeping(records, rules, None)
}

/// [`interpret`], keeping in each user's record only the attributes in `keep` (lowercased types)
/// once the user is classified and keyed; `None` keeps them all.
pub fn interpret_keeping(
    records: impl IntoIterator<Item = Record>,
    rules: &DirectoryRules,
    keep: Option<&HashSet<String>>,
) -> SourceDirectory {
    let hasher = DnHasher::default();
    join_parts(vec![interpret_part(records, rules, keep, &hasher)], hasher)
}

/// Hashes normalised DNs for the index that resolves group members; one per read, so that parts
/// interpreted on different threads hash alike.
#[derive(Clone, Default)]
pub struct DnHasher(foldhash::fast::RandomState);

/// One stretch of a directory's records, interpreted on its own (a large export is read in
/// parts, on several threads): its users in file order, the hash of each user's normalised DN,
/// the first user with each `uid`, and its groups before their members are resolved.
pub struct Part {
    users: Vec<SourceUser>,
    dn_hashes: Vec<u64>,
    uids: FastMap<String, usize>,
    raw_groups: Vec<RawGroup>,
    records_read: u64,
    ignored: u64,
    computers: u64,
    contacts: u64,
    /// The key of the last entry added, when it was a user or group.
    last_key: Option<SourceKey>,
    /// Where the last entry added starts.
    last_origin: Option<crate::model::Origin>,
    references: u64,
    /// The stretch ends without a line break (only the last stretch of a file can).
    cut_off: bool,
}

/// Interprets one stretch of records, consuming them one by one: a user keeps its record (only
/// the attributes in `keep`), a group only its unresolved parts.
pub fn interpret_part(
    records: impl IntoIterator<Item = Record>,
    rules: &DirectoryRules,
    keep: Option<&HashSet<String>>,
    hasher: &DnHasher,
) -> Part {
    let mut part = PartBuilder::new(rules, keep, hasher);
    for record in records {
        part.add(&record);
    }
    part.finish()
}

/// Interprets one stretch of entries as they come, each borrowed only while it is added: what a
/// user keeps of its entry (the attributes in `keep`) and what a group needs are copied, nothing
/// else.
pub struct PartBuilder<'r> {
    part: Part,
    rules: &'r DirectoryRules,
    keep: Option<&'r HashSet<String>>,
    hasher: &'r DnHasher,
    names: Names,
}

impl<'r> PartBuilder<'r> {
    pub fn new(rules: &'r DirectoryRules, keep: Option<&'r HashSet<String>>, hasher: &'r DnHasher) -> Self {
        let part = Part {
            users: Vec::new(),
            dn_hashes: Vec::new(),
            uids: FastMap::default(),
            raw_groups: Vec::new(),
            records_read: 0,
            ignored: 0,
            computers: 0,
            contacts: 0,
            last_key: None,
            last_origin: None,
            references: 0,
            cut_off: false,
        };
        PartBuilder { part, rules, keep, hasher, names: Names::default() }
    }

    pub fn add(&mut self, record: &impl SourceEntry) {
        let (rules, part) = (self.rules, &mut self.part);
        part.records_read += 1;
        part.last_key = None;
        part.last_origin = Some(record.origin());
        // One pass for the attributes every entry is asked about.
        let (mut group, mut person, mut uid, mut uac, mut locked) = (false, false, None, None, false);
        let (mut computer, mut contact) = (false, false);
        for (name, value) in record.attributes() {
            let Some(text) = value.as_text() else { continue };
            if is_type(name, "objectclass") {
                group = group || rules.group_classes.iter().any(|g| text.eq_ignore_ascii_case(g));
                person = person || PERSON_CLASSES.iter().any(|p| text.eq_ignore_ascii_case(p));
                computer = computer || text.eq_ignore_ascii_case("computer");
                contact = contact || text.eq_ignore_ascii_case("contact");
            } else if is_type(name, "uid") {
                uid = uid.or(Some(text));
            } else if is_type(name, "useraccountcontrol") {
                uac = uac.or(Some(text));
            } else if is_type(name, "nsaccountlock") {
                locked = locked || text.eq_ignore_ascii_case("true");
            }
        }
        // An AD computer is a `user` too: it is a machine's account, never a person's.
        if computer {
            part.computers += 1;
            return;
        }
        if contact && !rules.include_contacts {
            part.contacts += 1;
            return;
        }
        if group {
            let group = ldap_group(record, rules);
            part.last_key = Some(group.key.clone());
            part.raw_groups.push(group);
            return;
        }
        let named = rules.user_name_attributes.iter().any(|a| record.text_of(a).is_some());
        if !person && !named {
            part.ignored += 1;
            return;
        }
        let key = source_key(record, rules);
        // AD `userAccountControl` bit 0x2, 389-ds `nsAccountLock: true`.
        let disabled = uac.and_then(|v| v.trim().parse::<u64>().ok()).is_some_and(|v| v & 0x2 != 0) || locked;
        let idx = part.users.len();
        part.dn_hashes.push(self.hasher.0.hash_one(normalize_dn(record.dn())));
        if let Some(uid) = uid {
            // `uid` matches case-insensitively in LDAP, and so does `memberUid` here.
            part.uids.entry(uid.trim().to_lowercase()).or_insert(idx);
        }
        let record = UserRecord::from_entry(record, self.keep, &mut self.names);
        part.last_key = Some(key.clone());
        part.users.push(SourceUser { key, record, active: !disabled, groups: BTreeSet::new() });
    }

    pub fn finish(self) -> Part {
        self.part
    }

    /// Records how the stretch ended: the search references passed over in it, and whether it
    /// ends without a line break (its last entry may then be cut off).
    pub fn ended(&mut self, references: u64, without_line_break: bool) {
        self.part.references += references;
        self.part.cut_off = without_line_break;
    }
}

/// Joins parts interpreted from consecutive stretches of one export, in file order, and resolves
/// the groups' members across all of them: the same directory as reading the records in one go
/// (a later entry with the same DN wins, the first user with a `uid` answers `memberUid`).
pub fn join_parts(parts: Vec<Part>, hasher: DnHasher) -> SourceDirectory {
    let mut dir = SourceDirectory::default();
    let total = parts.iter().map(|p| p.users.len()).sum();
    // The parts are moved in one by one, each freed once moved: the users are never in memory
    // twice.
    dir.users.reserve_exact(total);
    let mut dn_hashes = Vec::with_capacity(total);
    let mut uids: FastMap<String, usize> = FastMap::default();
    let mut raw_groups = Vec::new();
    for part in parts {
        let offset = dir.users.len();
        dir.users.extend(part.users);
        dn_hashes.extend(part.dn_hashes);
        if offset == 0 {
            uids = part.uids;
        } else {
            for (uid, idx) in part.uids {
                uids.entry(uid).or_insert(idx + offset);
            }
        }
        raw_groups.extend(part.raw_groups);
        dir.records_read += part.records_read;
        dir.ignored += part.ignored;
        dir.computers += part.computers;
        dir.contacts += part.contacts;
        dir.references += part.references;
        dir.cut_off = match (part.cut_off, part.last_origin) {
            (true, Some(origin)) => Some(CutOff { origin: origin.to_string(), key: part.last_key }),
            _ => None,
        };
    }
    let mut user_ids = DnIndex::with_state(hasher.0);
    for (idx, hash) in dn_hashes.into_iter().enumerate() {
        user_ids.insert(hash, idx, &dir.users);
    }
    flatten(&mut dir, raw_groups, &user_ids, &uids);
    dir
}

fn ldap_group(record: &impl SourceEntry, rules: &DirectoryRules) -> RawGroup {
    let key = source_key(record, rules);
    let name = record
        .text_of(&rules.group_name_attribute)
        .map(str::to_owned)
        .unwrap_or_else(|| first_rdn_value(record.dn()));
    let mut members = Vec::new();
    for attr in &rules.member_attributes {
        for v in record.values_of(attr).filter_map(ValueRef::as_text) {
            if attr.eq_ignore_ascii_case("memberuid") {
                members.push(MemberRef::Uid(v.trim().to_lowercase()));
            } else {
                // uniqueMember may carry an optional `#'0101'B` unique identifier.
                let dn = match v.rfind("#'") {
                    Some(i) if v.ends_with("'B") => &v[..i],
                    _ => v,
                };
                members.push(MemberRef::Id(normalize_dn(dn)));
            }
        }
    }
    let (id, origin) = (normalize_dn(record.dn()), record.origin().to_string());
    RawGroup { key, id, origin, name, members }
}

fn first_rdn_value(dn: &str) -> String {
    let rdn = dn.split(',').next().unwrap_or(dn);
    rdn.split_once('=').map_or(rdn, |(_, v)| v).trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::{Origin, Value};

    fn rec(dn: &str, attrs: &[(&str, &str)]) -> Record {
        Record {
            origin: Origin { path: "t.ldif".into(), line: 1 },
            dn: dn.into(),
            attrs: attrs.iter().map(|(k, v)| (k.to_lowercase(), Value::Text(v.to_string()))).collect(),
        }
    }

    #[test]
    fn the_dn_index_confirms_matches_and_keeps_colliding_dns_whole() {
        let user = |dn: &str| SourceUser {
            key: SourceKey(dn.into()),
            record: UserRecord::keep(rec(dn, &[]), None, &mut Names::default()),
            active: true,
            groups: BTreeSet::new(),
        };
        let users = vec![user("uid=a,dc=x"), user("UID=B,DC=X"), user("uid=a,dc=x")];
        let mut index = DnIndex::default();
        let hash = |dn: &str| index.state.hash_one(dn);
        let (a, b) = (hash("uid=a,dc=x"), hash("uid=b,dc=x"));
        index.insert(a, 0, &users);
        // "uid=b,dc=x" made to share user 0's hash: it is kept whole.
        index.by_hash.insert(b, 0);
        index.insert(b, 1, &users);
        assert_eq!(index.whole.len(), 1);
        assert_eq!(index.find("uid=b,dc=x", &users), Some(1));
        // The same DN again: the later user wins, as it did with a map of DNs.
        index.insert(a, 2, &users);
        assert_eq!(index.find("uid=a,dc=x", &users), Some(2));
        assert_eq!(index.find("uid=c,dc=x", &users), None);
    }

    #[test]
    fn nested_groups_are_flattened_and_cycles_cut() {
        let rules = DirectoryRules::default();
        let records = vec![
            rec("uid=a,ou=p", &[("objectClass", "inetOrgPerson"), ("mail", "a@x"), ("uid", "a")]),
            rec("uid=b,ou=p", &[("objectClass", "inetOrgPerson"), ("mail", "b@x"), ("uid", "b")]),
            rec(
                "cn=outer,ou=g",
                &[("objectClass", "groupOfNames"), ("cn", "outer"), ("member", "cn=inner, ou=g")],
            ),
            rec(
                "cn=inner,ou=g",
                &[("objectClass", "groupOfNames"), ("member", "UID=a,ou=p"), ("member", "cn=outer,ou=g")],
            ),
            rec("cn=posix,ou=g", &[("objectClass", "posixGroup"), ("cn", "posix"), ("memberUid", "b")]),
            rec("ou=p", &[("objectClass", "organizationalUnit")]),
        ];
        let dir = interpret(records, &rules);
        assert_eq!(dir.ignored, 1);
        let names: Vec<_> = dir.groups.iter().map(|g| (g.name.as_str(), g.members.len())).collect();
        assert_eq!(names, [("outer", 1), ("inner", 1), ("posix", 1)]);
        assert_eq!(dir.users[0].groups, BTreeSet::from(["inner".to_string(), "outer".to_string()]));
        assert_eq!(dir.users[1].groups, BTreeSet::from(["posix".to_string()]));
    }

    #[test]
    fn dn_normalisation_decodes_escapes_and_spaces() {
        assert_eq!(normalize_dn("cn=Doe\\2C Jane, ou=P"), normalize_dn("CN = Doe\\, Jane,ou=p"));
        assert_eq!(normalize_dn("cn=Doe\\, Jane,ou=p"), "cn=doe\\, jane,ou=p");
        assert_eq!(normalize_dn("cn=J\\C3\\BCrgen,ou=p"), "cn=jürgen,ou=p");
        assert_ne!(normalize_dn("cn=a\\,b"), normalize_dn("cn=a,b"));
    }

    #[test]
    fn keys_prefer_uuids_and_uac_disables() {
        let rules = DirectoryRules::default();
        let r = rec(
            "CN=X, OU=P",
            &[("objectClass", "user"), ("userPrincipalName", "x@y"), ("userAccountControl", "514")],
        );
        let dir = interpret(vec![r], &rules);
        assert_eq!(dir.users[0].key.0, "cn=x,ou=p");
        assert!(!dir.users[0].active);
        let r = rec("cn=x", &[("entryUUID", "ABC-1"), ("mail", "x@y")]);
        assert_eq!(source_key(&r, &rules).0, "abc-1");
    }
}
