//! Sources: each reads a whole export into records, or fails; nothing is planned from a partial read.

pub mod ldif;

use std::fmt;

/// One attribute value as a source gives it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Value {
    /// Valid UTF-8 text (LDIF plain or base64 values that decode to UTF-8, CSV cells, JSON strings).
    Text(String),
    /// Bytes that are not UTF-8 (base64 LDIF values such as certificates or `objectGUID`).
    Binary(Vec<u8>),
}

impl Value {
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Value::Text(s) => Some(s),
            Value::Binary(_) => None,
        }
    }
}

/// Where a record came from, for error messages and reports: `path:line`, `path: row N`, ….
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    pub path: String,
    pub line: u64,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.path, self.line)
    }
}

/// A source record: an LDIF entry, a CSV row or a SCIM resource, with attribute names folded to
/// lowercase (attribute names are case-insensitive in LDAP and SCIM alike).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub origin: Origin,
    /// The DN for LDIF, the resource `id` for SCIM, the row's id column for CSV.
    pub dn: String,
    /// `(lowercased attribute description, value)` in file order; options such as `;binary` kept
    /// in the name after the base name.
    pub attrs: Vec<(String, Value)>,
}

impl Record {
    /// All values of an attribute (name compared case-insensitively, options ignored).
    pub fn values<'a, 'n>(
        &'a self,
        name: &'n str,
    ) -> impl Iterator<Item = &'a Value> + use<'a, 'n> {
        self.attrs
            .iter()
            .filter(move |(n, _)| attr_base(n).eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// The first text value of an attribute.
    pub fn first_text(&self, name: &str) -> Option<&str> {
        self.values(name).find_map(Value::as_text)
    }

    pub fn has_value_ci(&self, name: &str, wanted: &str) -> bool {
        self.values(name)
            .filter_map(Value::as_text)
            .any(|v| v.eq_ignore_ascii_case(wanted))
    }
}

/// The attribute type without options: `usercertificate;binary` → `usercertificate`.
pub fn attr_base(desc: &str) -> &str {
    desc.split(';').next().unwrap_or(desc)
}
