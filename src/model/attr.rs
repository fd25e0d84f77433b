//! `Attr`: a target user attribute. The built-ins are the attributes scimsync has always
//! known (and gives special meaning: `userName`, `userType`, …); any other attribute path of the
//! target's schemas (`nickName`, `name.formatted`, an extension's `department`,
//! `addresses[type eq "work"].locality`) is a custom attribute, interned by name.
//!
//! Custom attributes are ordered by their case-folded name, never by when they were interned:
//! plans are saved, fingerprinted and applied in different processes, and must list the same
//! attributes in the same order in each.

use serde::de::{Unexpected, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Mutex, OnceLock};

/// A target user attribute: one of the built-ins (`Attr::UserName`, …) or a custom path.
///
/// Equal paths are the same `Attr` whatever their case (SCIM attribute names and schema URIs
/// are case-insensitive); the name is spelled as it was first seen in the process.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Attr(u16);

const BUILTIN_NAMES: [(&str, &str); 11] = [
    ("UserName", "userName"),
    ("GivenName", "name.givenName"),
    ("FamilyName", "name.familyName"),
    ("DisplayName", "displayName"),
    ("Title", "title"),
    ("WorkEmail", "emails[type eq \"work\"].value"),
    ("WorkPhone", "phoneNumbers[type eq \"work\"].value"),
    ("MobilePhone", "phoneNumbers[type eq \"mobile\"].value"),
    ("ExternalId", "externalId"),
    ("UserType", "userType"),
    ("OrganizationId", "organizationId"),
];

const BUILTIN_COUNT: u16 = BUILTIN_NAMES.len() as u16;

/// How many custom attributes one process may know: far more than any mapping names, few enough
/// that a state database or plan naming endless made-up attributes is refused, not stored.
pub const MAX_CUSTOM: usize = 1024;

/// The longest custom path accepted, in bytes.
const MAX_PATH_LEN: usize = 512;

const CORE_USER_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const ENTERPRISE_USER_URN: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

#[allow(non_upper_case_globals)]
impl Attr {
    pub const UserName: Attr = Attr(0);
    pub const GivenName: Attr = Attr(1);
    pub const FamilyName: Attr = Attr(2);
    pub const DisplayName: Attr = Attr(3);
    pub const Title: Attr = Attr(4);
    pub const WorkEmail: Attr = Attr(5);
    pub const WorkPhone: Attr = Attr(6);
    pub const MobilePhone: Attr = Attr(7);
    pub const ExternalId: Attr = Attr(8);
    pub const UserType: Attr = Attr(9);
    pub const OrganizationId: Attr = Attr(10);
}

impl Attr {
    /// The built-in attributes, in their fixed order (which comes before every custom one).
    pub const BUILTINS: [Attr; BUILTIN_COUNT as usize] = [
        Attr::UserName,
        Attr::GivenName,
        Attr::FamilyName,
        Attr::DisplayName,
        Attr::Title,
        Attr::WorkEmail,
        Attr::WorkPhone,
        Attr::MobilePhone,
        Attr::ExternalId,
        Attr::UserType,
        Attr::OrganizationId,
    ];

    /// The name used in config files, reports, plans and the state database: the SCIM path.
    pub fn name(self) -> &'static str {
        match self.builtin_index() {
            Some(i) => BUILTIN_NAMES[i].1,
            None => custom(self).map_or("", |c| c.name),
        }
    }

    pub fn is_builtin(self) -> bool {
        self.0 < BUILTIN_COUNT
    }

    /// The attribute's number in this process (never stored: custom numbers differ between
    /// processes).
    pub(super) fn id(self) -> u16 {
        self.0
    }

    /// The attribute of an [`Attr::id`] this process gave out.
    pub(super) fn from_id(id: u16) -> Attr {
        Attr(id)
    }

    /// The position in [`Attr::BUILTINS`], for a built-in attribute.
    pub fn builtin_index(self) -> Option<usize> {
        self.is_builtin().then_some(self.0 as usize)
    }

    /// Whether this is a phone number: the built-in ones or any `phoneNumbers` path.
    pub fn is_phone(self) -> bool {
        match self.builtin_index() {
            Some(_) => matches!(self, Attr::WorkPhone | Attr::MobilePhone),
            None => custom(self).is_some_and(|c| c.phone),
        }
    }

    /// Parses a config key: a built-in name or one of the spellings administrators use
    /// (`email`, `givenName`, `mobile`), or any SCIM attribute path (see [`Attr::from_name`]).
    pub fn parse(key: &str) -> Result<Attr, String> {
        let k = key.trim();
        let alias = match k.to_ascii_lowercase().as_str() {
            "givenname" => Some(Attr::GivenName),
            "familyname" => Some(Attr::FamilyName),
            "email" | "emails.work" | "mail" => Some(Attr::WorkEmail),
            "phone" | "phonenumbers.work" => Some(Attr::WorkPhone),
            "mobile" | "phonenumbers.mobile" => Some(Attr::MobilePhone),
            _ => None,
        };
        match alias {
            Some(a) => Ok(a),
            None => Attr::from_name(k),
        }
    }

    /// The attribute a stored name or a SCIM attribute path names: a built-in's name, or a path
    /// as RFC 7644 §3.10 writes it, optionally with a schema URN in front and one
    /// `[type eq "…"]` value filter on the attribute (followed by a sub-attribute):
    /// `nickName`, `name.formatted`, `emails[type eq "home"].value`,
    /// `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department`.
    /// A custom path is interned; the error says what a valid path looks like.
    pub fn from_name(name: &str) -> Result<Attr, String> {
        if let Some(i) = BUILTIN_NAMES.iter().position(|(_, n)| *n == name) {
            return Ok(Attr::BUILTINS[i]);
        }
        let path = canonical(name).map_err(|why| {
            format!(
                "{name:?} is not a SCIM attribute path ({why}); write one as `nickName`, \
                 `name.formatted`, `addresses[type eq \"work\"].locality` or, in an extension, \
                 `{ENTERPRISE_USER_URN}:department`"
            )
        })?;
        if let Some(i) = BUILTIN_NAMES.iter().position(|(_, n)| n.eq_ignore_ascii_case(&path)) {
            return Ok(Attr::BUILTINS[i]);
        }
        if let Some(why) = reserved(&path) {
            return Err(format!("{name:?} cannot be mapped: {why}"));
        }
        intern(path)
    }
}

impl PartialOrd for Attr {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Built-ins first in their fixed order, then custom attributes by case-folded name.
impl Ord for Attr {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self.is_builtin(), other.is_builtin()) {
            (true, true) => self.0.cmp(&other.0),
            (true, false) => Ordering::Less,
            (false, true) => Ordering::Greater,
            (false, false) if self.0 == other.0 => Ordering::Equal,
            (false, false) => {
                let folded = |a: &Attr| custom(*a).map_or("", |c| c.folded);
                folded(self).cmp(folded(other))
            }
        }
    }
}

impl fmt::Display for Attr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A built-in as its constant's name (`Title`), a custom attribute as `Attr("nickName")`.
impl fmt::Debug for Attr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.builtin_index() {
            Some(i) => f.write_str(BUILTIN_NAMES[i].0),
            None => f.debug_tuple("Attr").field(&self.name()).finish(),
        }
    }
}

impl Serialize for Attr {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Attr {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Attr, D::Error> {
        struct AttrVisitor;
        impl Visitor<'_> for AttrVisitor {
            type Value = Attr;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a SCIM attribute path")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Attr, E> {
                Attr::from_name(v).map_err(|why| E::invalid_value(Unexpected::Str(v), &why.as_str()))
            }
        }
        deserializer.deserialize_str(AttrVisitor)
    }
}

/// What the process knows of one custom attribute.
struct Custom {
    /// As first seen, in canonical form.
    name: &'static str,
    /// Lowercased: the identity and the order.
    folded: &'static str,
    phone: bool,
}

/// The custom attributes by id − `BUILTIN_COUNT`: written once each, read without a lock.
static CUSTOM: [OnceLock<Custom>; MAX_CUSTOM] = [const { OnceLock::new() }; MAX_CUSTOM];

/// Folded name → id, and the next free slot. Only interning takes the lock.
static INTERNED: Mutex<BTreeMap<&'static str, u16>> = Mutex::new(BTreeMap::new());

fn custom(attr: Attr) -> Option<&'static Custom> {
    CUSTOM.get(usize::from(attr.0.checked_sub(BUILTIN_COUNT)?))?.get()
}

/// The attribute of a canonical custom path, interned if new. The names live as long as the
/// process: there are at most [`MAX_CUSTOM`] of them.
fn intern(path: String) -> Result<Attr, String> {
    let folded = path.to_lowercase();
    let mut table = INTERNED.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(&id) = table.get(folded.as_str()) {
        return Ok(Attr(id));
    }
    let slot = table.len();
    if slot >= MAX_CUSTOM {
        return Err(format!(
            "{path:?} is one custom attribute too many: this scimsync knows at most {MAX_CUSTOM}"
        ));
    }
    let phone = is_phone_path(&folded);
    let name: &'static str = Box::leak(path.into_boxed_str());
    let folded: &'static str = Box::leak(folded.into_boxed_str());
    let id = BUILTIN_COUNT + slot as u16;
    // The slot is free: slots are taken in order under the lock.
    let _ = CUSTOM[slot].set(Custom { name, folded, phone });
    table.insert(folded, id);
    Ok(Attr(id))
}

/// Whether a (folded) path names `phoneNumbers` or one of its parts, in any schema.
fn is_phone_path(folded: &str) -> bool {
    let (_, attr) = split_urn(folded);
    attr.strip_prefix("phonenumbers").is_some_and(|rest| rest.is_empty() || rest.starts_with(['[', '.']))
}

/// Splits `urn:…:Resource:attr…` at the colon that ends the URN: the last one before any value
/// filter (a filter's value may hold colons).
fn split_urn(path: &str) -> (Option<&str>, &str) {
    let head = path.find('[').map_or(path, |i| &path[..i]);
    match head.rfind(':') {
        Some(i) => (Some(&path[..i]), &path[i + 1..]),
        None => (None, path),
    }
}

/// The canonical spelling of a path, or what is wrong with it: the core User schema's URN is
/// dropped (`urn:…:core:2.0:User:nickName` is `nickName`), the enterprise URN is spelled as its
/// RFC does, a value filter is written `[type eq "value"]`; names keep their case.
fn canonical(path: &str) -> Result<String, String> {
    let path = path.trim();
    if path.is_empty() {
        return Err("it is empty".into());
    }
    if path.len() > MAX_PATH_LEN {
        return Err(format!("it is longer than {MAX_PATH_LEN} bytes"));
    }
    let (urn, attr) = split_urn(path);
    let mut out = String::with_capacity(path.len());
    if let Some(urn) = urn {
        check_urn(urn)?;
        if urn.eq_ignore_ascii_case(ENTERPRISE_USER_URN) {
            out.push_str(ENTERPRISE_USER_URN);
            out.push(':');
        } else if !urn.eq_ignore_ascii_case(CORE_USER_URN) {
            out.push_str(urn);
            out.push(':');
        }
    }
    let (name, rest) = attr_name(attr)?;
    out.push_str(name);
    let rest = match rest.strip_prefix('[') {
        Some(filter) => {
            let (value, rest) = value_filter(filter)?;
            out.push_str(&format!("[type eq \"{value}\"]"));
            if !rest.starts_with('.') {
                return Err(format!("a value filter is followed by a sub-attribute: `{name}[…].value`"));
            }
            rest
        }
        None => rest,
    };
    if let Some(sub) = rest.strip_prefix('.') {
        let (sub, after) = attr_name(sub)?;
        if !after.is_empty() {
            return Err(format!("{after:?} after the sub-attribute {sub:?}"));
        }
        out.push('.');
        out.push_str(sub);
    } else if !rest.is_empty() {
        return Err(format!("{rest:?} after the attribute name {name:?}"));
    }
    Ok(out)
}

/// `urn:` and at least two more parts, each of letters, digits, `.`, `-` or `_`.
fn check_urn(urn: &str) -> Result<(), String> {
    let parts: Vec<&str> = urn.split(':').collect();
    if !parts[0].eq_ignore_ascii_case("urn") {
        return Err("a schema in front of the attribute is a URN starting with `urn:`".into());
    }
    let good =
        |p: &&str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if parts.len() < 3 || !parts.iter().all(good) {
        return Err(format!("the schema URN {urn:?} is not of the form `urn:…:2.0:User`"));
    }
    Ok(())
}

/// An ATTRNAME (a letter, then letters, digits, `-` or `_`) and what follows it.
fn attr_name(s: &str) -> Result<(&str, &str), String> {
    let end = s.find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_')).unwrap_or(s.len());
    let name = &s[..end];
    match name.chars().next() {
        Some(c) if c.is_ascii_alphabetic() => Ok((name, &s[end..])),
        Some(_) => Err(format!("the attribute name {name:?} does not start with a letter")),
        None if s.is_empty() => Err("an attribute name is missing at the end".into()),
        None => Err(format!("an attribute name is missing before {s:?}")),
    }
}

/// The value of `type eq "value"]` (after the `[`) and what follows the `]`.
fn value_filter(s: &str) -> Result<(&str, &str), String> {
    let wrong = || "the only value filter is `[type eq \"…\"]`".to_owned();
    let (attr, rest) = s.trim_start().split_once(char::is_whitespace).ok_or_else(wrong)?;
    let (op, rest) = rest.trim_start().split_once(char::is_whitespace).ok_or_else(wrong)?;
    if !attr.eq_ignore_ascii_case("type") || !op.eq_ignore_ascii_case("eq") {
        return Err(wrong());
    }
    let rest = rest.trim_start().strip_prefix('"').ok_or_else(wrong)?;
    let (value, rest) = rest.split_once('"').ok_or_else(wrong)?;
    if value.trim().is_empty() || value.contains(|c: char| c == '\\' || c.is_control()) {
        return Err("the filter's type is a string without `\\` or control characters".into());
    }
    let after = rest.trim_start().strip_prefix(']').ok_or_else(wrong)?;
    Ok((value, after))
}

/// Why a (canonical) path may not be mapped: what scimsync sets itself or the server owns.
fn reserved(path: &str) -> Option<&'static str> {
    let (urn, attr) = split_urn(path);
    if urn.is_some() {
        return None;
    }
    let (name, _) = attr_name(attr).ok()?;
    match name.to_ascii_lowercase().as_str() {
        "active" => Some("`active` is set by `mapping.active` and the source's account state"),
        "roles" => Some("roles are set by `mapping.roles`"),
        "groups" => Some("group memberships come from the source's groups"),
        "id" | "meta" | "schemas" => Some("the server sets it"),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
