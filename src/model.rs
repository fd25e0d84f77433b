//! The desired state: users and groups after mapping, keyed by stable source keys, with their
//! canonical (case-folded) forms.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

mod attr;
mod attrs;
pub use attr::{Attr, MAX_CUSTOM};
pub use attrs::Attrs;

/// The stable identity of a source object: `entryUUID`, `nsUniqueId`, `objectGUID` (base64) or,
/// when none is present, the DN. It never changes when the object is renamed.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SourceKey(pub String);

/// The keys' byte order, as for `String`. Keys are compared millions of times per run (sorts,
/// ordered maps, the planner's merge) and most are UUIDs that differ within their first bytes:
/// comparing the first 16 bytes as one integer settles most comparisons without `memcmp`.
impl Ord for SourceKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        let (a, b) = (self.0.as_bytes(), other.0.as_bytes());
        if let (Some(x), Some(y)) = (a.first_chunk::<16>(), b.first_chunk::<16>()) {
            let (x, y) = (u128::from_be_bytes(*x), u128::from_be_bytes(*y));
            if x != y {
                return x.cmp(&y);
            }
        }
        a.cmp(b)
    }
}

impl PartialOrd for SourceKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for SourceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for SourceKey {
    fn from(s: &str) -> Self {
        SourceKey(s.to_owned())
    }
}

/// The canonical form of a userName for uniqueness: SCIM treats userName case-insensitively.
pub fn fold_user_name(name: &str) -> String {
    name.to_lowercase()
}

/// Where a record came from, for error messages and reports: `path:line`, or for JSON documents
/// `path#/Resources/3` with `line` 0. Written and read as that text.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Origin {
    /// Shared by all the records of one file.
    pub path: Arc<str>,
    pub line: u64,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            f.write_str(&self.path)
        } else {
            write!(f, "{}:{}", self.path, self.line)
        }
    }
}

impl From<&str> for Origin {
    /// `path:line` when the text ends in a line number, else a path alone; its `Display` gives
    /// the same text back.
    fn from(s: &str) -> Origin {
        // Only digits without a leading zero: what `Display` writes for a line.
        let line = |l: &str| l.bytes().all(|b| b.is_ascii_digit()) && !l.starts_with('0');
        match s.rsplit_once(':') {
            Some((path, l)) if line(l) => match l.parse() {
                Ok(line) => Origin { path: path.into(), line },
                Err(_) => Origin { path: s.into(), line: 0 },
            },
            _ => Origin { path: s.into(), line: 0 },
        }
    }
}

impl From<String> for Origin {
    fn from(s: String) -> Origin {
        Origin::from(s.as_str())
    }
}

impl Serialize for Origin {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Origin {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Origin, D::Error> {
        Ok(Origin::from(std::borrow::Cow::<'de, str>::deserialize(deserializer)?.as_ref()))
    }
}

/// A user as the target should have it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DesiredUser {
    pub key: SourceKey,
    /// Where the record was read, for reports (`people.ldif:120`).
    pub origin: Origin,
    /// Attribute values; `Attr::UserName` is always present.
    pub attrs: Attrs,
    pub active: bool,
    pub roles: BTreeSet<String>,
}

impl DesiredUser {
    pub fn user_name(&self) -> &str {
        self.attrs.get(&Attr::UserName).unwrap_or("")
    }

    /// A user with this key and userName, built up attribute by attribute: active, no roles, no
    /// other attribute and an empty origin until set.
    ///
    /// ```
    /// use scimsync::model::{Attr, DesiredUser};
    /// let ada = DesiredUser::builder("k1", "ada@example.com")
    ///     .attr(Attr::GivenName, "Ada")
    ///     .role("Helpdesk")
    ///     .build();
    /// assert_eq!(ada.user_name(), "ada@example.com");
    /// assert!(ada.active && ada.roles.contains("Helpdesk"));
    /// ```
    pub fn builder(key: impl Into<SourceKey>, user_name: &str) -> DesiredUserBuilder {
        DesiredUserBuilder {
            user: DesiredUser {
                key: key.into(),
                origin: Origin::from(""),
                attrs: Attrs::from([(Attr::UserName, user_name)]),
                active: true,
                roles: BTreeSet::new(),
            },
        }
    }
}

/// A [`DesiredUser`] being built; see [`DesiredUser::builder`].
#[derive(Clone, Debug)]
#[must_use]
pub struct DesiredUserBuilder {
    user: DesiredUser,
}

impl DesiredUserBuilder {
    pub fn origin(mut self, origin: impl Into<Origin>) -> Self {
        self.user.origin = origin.into();
        self
    }

    /// Sets an attribute, replacing its earlier value (the userName's too).
    pub fn attr(mut self, attr: Attr, value: impl AsRef<str>) -> Self {
        self.user.attrs.insert(attr, value.as_ref());
        self
    }

    /// [`DesiredUserBuilder::attr`] for each pair.
    pub fn attrs<S: AsRef<str>>(self, attrs: impl IntoIterator<Item = (Attr, S)>) -> Self {
        attrs.into_iter().fold(self, |b, (attr, value)| b.attr(attr, value))
    }

    pub fn active(mut self, active: bool) -> Self {
        self.user.active = active;
        self
    }

    /// Adds a role.
    pub fn role(mut self, role: impl Into<String>) -> Self {
        self.user.roles.insert(role.into());
        self
    }

    /// Adds each role.
    pub fn roles<R: Into<String>>(self, roles: impl IntoIterator<Item = R>) -> Self {
        roles.into_iter().fold(self, Self::role)
    }

    pub fn build(self) -> DesiredUser {
        self.user
    }
}

/// A group as the target should have it, with its members flattened (nested groups resolved).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DesiredGroup {
    pub key: SourceKey,
    pub origin: String,
    pub display_name: String,
    pub members: BTreeSet<SourceKey>,
}

/// Why a source record is not part of the desired state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skip {
    pub origin: String,
    /// The source key, when the record had one: a skipped managed object is never deprovisioned.
    pub key: Option<SourceKey>,
    pub reason: String,
}

/// The last entry of an export that ends without a line break: read and used, but it may be
/// cut off, so nothing may be removed on the word of that read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CutOff {
    pub origin: String,
    /// The entry's key when it was a user or group.
    pub key: Option<SourceKey>,
}

/// Everything the planner needs from the source side.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DesiredState {
    pub users: BTreeMap<SourceKey, DesiredUser>,
    pub groups: BTreeMap<SourceKey, DesiredGroup>,
    /// Records left out (duplicates, no userName, inactive and never provisioned, …).
    pub skipped: Vec<Skip>,
    /// Mapping warnings (unknown userType defaulted, …), one line each.
    pub warnings: Vec<String>,
    /// How many source records were read in total.
    pub records_read: u64,
    /// Set when the source ended inside its last entry (see [`CutOff`]).
    #[serde(default)]
    pub cut_off: Option<CutOff>,
    /// The read's summary line (records read, users, groups, what was passed over).
    #[serde(skip)]
    pub read_summary: String,
}

impl DesiredState {
    /// Keys the source still knows about but that are left out of this run; the planner never
    /// deprovisions them.
    pub fn protected_keys(&self) -> BTreeSet<&SourceKey> {
        self.skipped.iter().filter_map(|s| s.key.as_ref()).collect()
    }
}

/// The target's dialect (`target.profile`): which attributes it takes and the rules it adds.
/// The mapping applies its rules (ninjaone: email userName, userType, no phone numbers); the
/// target client speaks it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Profile {
    NinjaOne,
    Generic,
    EntraCompat,
}

#[cfg(test)]
mod tests {
    use super::Origin;

    #[test]
    fn an_origin_reads_back_what_it_writes() {
        for text in [
            "people.ldif:120",
            "export.json#/Resources/3",
            "https://idp.example:8443/scim/v2/Users/9",
            "https://idp.example:8443",
            "odd:007",
            "odd:+5",
            "odd:",
            "c:\\exports\\people.ldif:99999999999999999999999",
        ] {
            let origin = Origin::from(text);
            assert_eq!(origin.to_string(), text);
            let json = serde_json::to_string(&origin).unwrap();
            assert_eq!(serde_json::from_str::<Origin>(&json).unwrap(), origin, "{text}");
        }
        assert_eq!(Origin::from("people.ldif:120").line, 120);
        assert_eq!(Origin::from("odd:007").line, 0);
    }

    #[test]
    fn source_keys_sort_as_their_strings() {
        use super::SourceKey;
        let texts = [
            "6b3c1385-0495-42e2-a17f-0529b243eed6",
            "6b3c1385-0495-42e2-a17f-0529b243eed5",
            "6b3c1385-0495-42e2",
            "6b3c1385-0495-42e2-",
            "6b3c1385-0495-42e3-a17f-0529b243eed6",
            "uid=ada,ou=people,dc=example,dc=com",
            "uid=ada,ou=people,dc=example,dc=co",
            "Ü",
            "",
            "6b3c1385-0495-42e2\u{0}",
            "short",
            "short\u{0}",
            "shore-and-longer-than-16",
        ];
        for a in texts {
            for b in texts {
                let (ka, kb) = (SourceKey::from(a), SourceKey::from(b));
                assert_eq!(ka.cmp(&kb), a.cmp(b), "{a:?} against {b:?}");
            }
        }
    }
}
