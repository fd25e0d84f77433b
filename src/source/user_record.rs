//! `UserRecord`: a source user's record as kept from reading to mapping.
//!
//! Every user of a source is held until the groups are known (they may come last in the file),
//! so at a million users this is most of a run's peak memory. A parsed [`Record`] holds each
//! attribute as a pair of heap strings in a vector (about 100 bytes per attribute); a
//! `UserRecord` holds only text values, all in one buffer, with attribute names shared between
//! records (about 25 bytes plus the value per attribute).

use super::{attr_base, is_type, Origin, Record, SourceEntry, ValueRef};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserRecord {
    pub origin: Origin,
    /// The DN for LDIF, the resource `id` for SCIM, the row's id column for CSV.
    pub dn: String,
    /// Each value's lowercased attribute description and where the value ends in `text`, in
    /// source order.
    attrs: Box<[(Arc<str>, u32)]>,
    text: Box<str>,
}

/// Attribute descriptions shared between the records of one read, each with whether it is kept:
/// one hash lookup per value decides both, or only a comparison when the record has the same
/// description at the same position as the record before. One `Names` serves one `keep` set.
#[derive(Default)]
pub struct Names {
    all: HashMap<Arc<str>, bool, foldhash::fast::RandomState>,
    /// The description at each position of the record before.
    last: Vec<(Arc<str>, bool)>,
}

impl Names {
    /// The shared description and whether it is kept, for the `position`-th value of a record.
    fn intern(&mut self, position: usize, name: &str, wanted: impl FnOnce(&str) -> bool) -> (Arc<str>, bool) {
        if let Some((n, kept)) = self.last.get(position) {
            if **n == *name {
                return (n.clone(), *kept);
            }
        }
        let found = match self.all.get_key_value(name) {
            Some((n, kept)) => (n.clone(), *kept),
            None => {
                let n: Arc<str> = name.into();
                let kept = wanted(name);
                self.all.insert(n.clone(), kept);
                (n, kept)
            }
        };
        if let Some(slot) = self.last.get_mut(position) {
            *slot = found.clone();
        } else if position == self.last.len() {
            self.last.push(found.clone());
        }
        found
    }
}

impl UserRecord {
    /// Keeps the text values of `record` whose attribute type is in `keep` (all when `None`).
    /// Binary values are dropped: the mapping reads text only.
    pub fn keep(record: Record, keep: Option<&HashSet<String>>, names: &mut Names) -> UserRecord {
        let Record { origin, dn, attrs } = record;
        let values = attrs.iter().map(|(name, value)| (name.as_str(), value.borrowed()));
        Self::build(origin, dn, values, keep, names)
    }

    /// [`Self::keep`] from an entry that may be borrowed from the reader: only what is kept is
    /// copied.
    pub fn from_entry(
        entry: &impl SourceEntry,
        keep: Option<&HashSet<String>>,
        names: &mut Names,
    ) -> UserRecord {
        Self::build(entry.origin(), entry.dn().to_owned(), entry.attributes(), keep, names)
    }

    fn build<'v>(
        origin: Origin,
        dn: String,
        values: impl Iterator<Item = (&'v str, ValueRef<'v>)>,
        keep: Option<&HashSet<String>>,
        names: &mut Names,
    ) -> UserRecord {
        let wanted = |n: &str| keep.is_none_or(|k| k.contains(attr_base(n)));
        let kept: Vec<(Arc<str>, &str)> = values
            .enumerate()
            .filter_map(|(i, (name, value))| match value {
                ValueRef::Text(t) => match names.intern(i, name, wanted) {
                    (name, true) => Some((name, t)),
                    (_, false) => None,
                },
                ValueRef::Binary(_) => None,
            })
            .collect();
        // Both allocated at their final size: shrinking a block by reallocation may keep the
        // larger block (mimalloc keeps it when at least half is used).
        let mut text = String::with_capacity(kept.iter().map(|(_, t)| t.len()).sum());
        let mut attrs = Vec::with_capacity(kept.len());
        for (name, value) in kept {
            text.push_str(value);
            attrs.push((name, offset(text.len())));
        }
        let (attrs, text) = (attrs.into_boxed_slice(), text.into_boxed_str());
        UserRecord { origin, dn, attrs, text }
    }

    /// `(lowercased attribute description, value)` in source order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.attrs.iter().enumerate().map(|(i, (name, end))| {
            let start = if i == 0 { 0 } else { self.attrs[i - 1].1 as usize };
            (&**name, &self.text[start..*end as usize])
        })
    }

    /// All text values of an attribute (name compared case-insensitively, options ignored).
    pub fn values<'a, 'n>(&'a self, name: &'n str) -> impl Iterator<Item = &'a str> + use<'a, 'n> {
        self.iter().filter(move |(n, _)| is_type(n, name)).map(|(_, v)| v)
    }

    /// The first text value of an attribute.
    pub fn first_text(&self, name: &str) -> Option<&str> {
        self.values(name).next()
    }

    pub fn has_value_ci(&self, name: &str, wanted: &str) -> bool {
        self.values(name).any(|v| v.eq_ignore_ascii_case(wanted))
    }

    /// Keeps the values whose attribute description `keep` accepts.
    pub fn retain(&mut self, keep: impl Fn(&str) -> bool) {
        let kept: Vec<(Arc<str>, String)> =
            self.iter().filter(|(n, _)| keep(n)).map(|(n, v)| (self.name(n), v.to_owned())).collect();
        let mut text = String::new();
        let mut attrs = Vec::with_capacity(kept.len());
        for (name, value) in kept {
            text.push_str(&value);
            attrs.push((name, offset(text.len())));
        }
        self.attrs = attrs.into();
        self.text = text.into();
    }

    fn name(&self, name: &str) -> Arc<str> {
        self.attrs.iter().find(|(n, _)| &**n == name).map(|(n, _)| n.clone()).unwrap_or_else(|| name.into())
    }
}

/// A record's values are bounded by the source reader's limits, far below 4 GiB.
fn offset(len: usize) -> u32 {
    u32::try_from(len).expect("a record's values exceed 4 GiB")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::Value;

    fn record(attrs: &[(&str, Value)]) -> Record {
        Record {
            origin: Origin { path: "t.ldif".into(), line: 3 },
            dn: "uid=a,dc=x".into(),
            attrs: attrs.iter().map(|(n, v)| (n.to_string(), v.clone())).collect(),
        }
    }

    fn text(s: &str) -> Value {
        Value::Text(s.into())
    }

    #[test]
    fn keeps_the_text_values_asked_for_in_order() {
        let r = record(&[
            ("cn", text("Ada")),
            ("mail", text("ada@x")),
            ("jpegphoto", Value::Binary(vec![0xff, 0])),
            ("cn;lang-de", text("Ada L.")),
            ("title", text("")),
            ("sn", text("Lovelace")),
        ]);
        let keep: HashSet<String> = ["cn", "mail", "title", "jpegphoto"].map(String::from).into();
        let mut names = Names::default();
        let u = UserRecord::keep(r.clone(), Some(&keep), &mut names);
        assert_eq!(
            u.iter().collect::<Vec<_>>(),
            [("cn", "Ada"), ("mail", "ada@x"), ("cn;lang-de", "Ada L."), ("title", "")]
        );
        assert_eq!(u.values("CN").collect::<Vec<_>>(), ["Ada", "Ada L."]);
        assert_eq!(u.first_text("sn"), None);
        assert_eq!(u.first_text("title"), Some(""));
        assert!(u.has_value_ci("Mail", "ADA@X"));
        assert_eq!((u.dn.as_str(), u.origin.to_string().as_str()), ("uid=a,dc=x", "t.ldif:3"));

        let again = UserRecord::keep(r.clone(), Some(&keep), &mut names);
        assert!(Arc::ptr_eq(&u.attrs[0].0, &again.attrs[0].0), "names are shared between records");
        let all = UserRecord::keep(r, None, &mut Names::default());
        assert_eq!(all.iter().count(), 5, "every text value; the binary one is dropped");
    }

    #[test]
    fn retain_keeps_order_and_values() {
        let r = record(&[("a", text("1")), ("b", text("22")), ("a", text("333")), ("c", text(""))]);
        let mut u = UserRecord::keep(r, None, &mut Names::default());
        u.retain(|n| n != "b");
        assert_eq!(u.iter().collect::<Vec<_>>(), [("a", "1"), ("a", "333"), ("c", "")]);
        u.retain(|_| false);
        assert_eq!(u.iter().count(), 0);
    }
}
