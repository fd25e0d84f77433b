//! `Attrs`: a user's target attribute values in one allocation.
//!
//! Every desired and every managed user carries one, so their size is most of a large run's
//! memory: one buffer of the values' bytes and a fixed index, instead of a map node and a string
//! per value; a managed user whose values equal the desired ones shares them
//! (`Store::load_snapshot_sharing`).

use super::Attr;
use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

const N: usize = Attr::ALL.len();

/// Attribute values keyed by [`Attr`], iterated in `Attr` order (as a `BTreeMap` would be).
///
/// The values are concatenated in `Attr` order in `text`; `ends[i]` is where the value of
/// `Attr::ALL[i]` ends (an absent attribute takes no bytes) and bit `i` of `present` says whether
/// it is set. The layout is canonical, so the derived equality is equality of the maps. Clones
/// share `text`: changing a value builds a new one.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Attrs {
    present: u16,
    ends: [u32; N],
    text: Arc<str>,
}

impl Attrs {
    pub fn new() -> Attrs {
        Attrs::default()
    }

    /// Builds from one optional value per attribute, in `Attr::ALL` order.
    fn from_slots<S: AsRef<str>>(slots: &[Option<S>; N]) -> Attrs {
        let len: usize = slots.iter().flatten().map(|v| v.as_ref().len()).sum();
        let mut text = String::with_capacity(len);
        let mut attrs = Attrs { present: 0, ends: [0; N], text: Arc::default() };
        for (i, slot) in slots.iter().enumerate() {
            if let Some(v) = slot {
                text.push_str(v.as_ref());
                attrs.present |= 1 << i;
            }
            attrs.ends[i] = offset(text.len());
        }
        attrs.text = text.into();
        attrs
    }

    fn slots(&self) -> [Option<&str>; N] {
        std::array::from_fn(|i| self.at(i))
    }

    fn at(&self, i: usize) -> Option<&str> {
        if self.present & (1 << i) == 0 {
            return None;
        }
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        Some(&self.text[start..self.ends[i] as usize])
    }

    pub fn get(&self, attr: &Attr) -> Option<&str> {
        self.at(*attr as usize)
    }

    pub fn contains_key(&self, attr: &Attr) -> bool {
        self.present & (1 << *attr as usize) != 0
    }

    /// Sets a value, replacing any earlier one.
    pub fn insert(&mut self, attr: Attr, value: &str) {
        let mut slots = self.slots();
        slots[attr as usize] = Some(value);
        *self = Attrs::from_slots(&slots);
    }

    pub fn remove(&mut self, attr: &Attr) {
        if self.contains_key(attr) {
            let mut slots = self.slots();
            slots[*attr as usize] = None;
            *self = Attrs::from_slots(&slots);
        }
    }

    /// Keeps the attributes for which `keep` answers true.
    pub fn retain(&mut self, mut keep: impl FnMut(Attr, &str) -> bool) {
        let mut slots = self.slots();
        let before = slots.iter().flatten().count();
        for (slot, attr) in slots.iter_mut().zip(Attr::ALL) {
            if slot.is_some_and(|v| !keep(attr, v)) {
                *slot = None;
            }
        }
        if slots.iter().flatten().count() != before {
            *self = Attrs::from_slots(&slots);
        }
    }

    pub fn iter(&self) -> Iter<'_> {
        Iter { attrs: self, next: 0 }
    }

    pub fn keys(&self) -> impl Iterator<Item = Attr> + '_ {
        self.iter().map(|(a, _)| a)
    }

    pub fn len(&self) -> usize {
        self.present.count_ones() as usize
    }

    pub fn is_empty(&self) -> bool {
        self.present == 0
    }
}

/// The set attributes with their values, in `Attr` order.
pub struct Iter<'a> {
    attrs: &'a Attrs,
    next: usize,
}

impl<'a> Iterator for Iter<'a> {
    type Item = (Attr, &'a str);

    fn next(&mut self) -> Option<(Attr, &'a str)> {
        while self.next < N {
            let i = self.next;
            self.next += 1;
            if let Some(value) = self.attrs.at(i) {
                return Some((Attr::ALL[i], value));
            }
        }
        None
    }
}

impl<'a> IntoIterator for &'a Attrs {
    type Item = (Attr, &'a str);
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

/// Offsets are `u32`: one user's attribute values never come near 4 GiB (sources bound a value's
/// size long before), so a larger text is a bug.
fn offset(len: usize) -> u32 {
    u32::try_from(len).expect("a user's attribute values exceed 4 GiB")
}

impl<S: AsRef<str>> FromIterator<(Attr, S)> for Attrs {
    /// A later value for the same attribute replaces an earlier one.
    fn from_iter<I: IntoIterator<Item = (Attr, S)>>(iter: I) -> Attrs {
        let mut slots: [Option<S>; N] = std::array::from_fn(|_| None);
        for (attr, value) in iter {
            slots[attr as usize] = Some(value);
        }
        Attrs::from_slots(&slots)
    }
}

impl<S: AsRef<str>, const K: usize> From<[(Attr, S); K]> for Attrs {
    fn from(pairs: [(Attr, S); K]) -> Attrs {
        pairs.into_iter().collect()
    }
}

/// `attrs[&Attr::Title]`: the value, or a panic when it is not set (as for a `BTreeMap`).
impl std::ops::Index<&Attr> for Attrs {
    type Output = str;

    fn index(&self, attr: &Attr) -> &str {
        self.get(attr).unwrap_or_else(|| panic!("attribute {attr} is not set"))
    }
}

impl fmt::Debug for Attrs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// The same JSON object a `BTreeMap<Attr, String>` gives: the state database's `users.attrs`
/// column and the JSON plan keep their format.
impl Serialize for Attrs {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.len()))?;
        for (attr, value) in self.iter() {
            map.serialize_entry(&attr, value)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Attrs {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Attrs, D::Error> {
        struct AttrsVisitor;
        impl<'de> Visitor<'de> for AttrsVisitor {
            type Value = Attrs;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of target attribute names to strings")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Attrs, A::Error> {
                let mut slots: [Option<Cow<'de, str>>; N] = std::array::from_fn(|_| None);
                while let Some((attr, value)) = map.next_entry::<Attr, CowStr<'de>>()? {
                    slots[attr as usize] = Some(value.0);
                }
                Ok(Attrs::from_slots(&slots))
            }
        }
        deserializer.deserialize_map(AttrsVisitor)
    }
}

/// A string borrowed from the input where it has no escapes, owned where it has.
struct CowStr<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for CowStr<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<CowStr<'de>, D::Error> {
        struct CowVisitor;
        impl<'de> Visitor<'de> for CowVisitor {
            type Value = CowStr<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<CowStr<'de>, E> {
                Ok(CowStr(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<CowStr<'de>, E> {
                Ok(CowStr(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<CowStr<'de>, E> {
                Ok(CowStr(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(CowVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn behaves_as_the_ordered_map_it_replaces() {
        let mut map = BTreeMap::new();
        let mut attrs = Attrs::new();
        // Inserts, replacements (longer, shorter, empty) and removals, in an order that moves
        // values in front of and behind each other.
        let steps: &[(Attr, Option<&str>)] = &[
            (Attr::Title, Some("Engineer")),
            (Attr::UserName, Some("ada@example.org")),
            (Attr::OrganizationId, Some("7")),
            (Attr::Title, Some("Principal engineer")),
            (Attr::GivenName, Some("")),
            (Attr::UserName, None),
            (Attr::WorkPhone, Some("+49 30 1234")),
            (Attr::Title, Some("É")),
            (Attr::GivenName, None),
            (Attr::ExternalId, Some("x")),
            (Attr::DisplayName, None),
        ];
        for (attr, value) in steps {
            match value {
                Some(v) => {
                    map.insert(*attr, v.to_string());
                    attrs.insert(*attr, v);
                }
                None => {
                    map.remove(attr);
                    attrs.remove(attr);
                }
            }
            let want: Vec<(Attr, &str)> = map.iter().map(|(a, v)| (*a, v.as_str())).collect();
            assert_eq!(attrs.iter().collect::<Vec<_>>(), want);
            assert_eq!(attrs.len(), map.len());
            for a in Attr::ALL {
                assert_eq!(attrs.get(&a), map.get(&a).map(String::as_str), "{a}");
            }
            assert_eq!(serde_json::to_string(&attrs).unwrap(), serde_json::to_string(&map).unwrap());
            let rebuilt: Attrs = map.iter().map(|(a, v)| (*a, v.as_str())).collect();
            assert_eq!(rebuilt, attrs, "equal maps are equal values");
        }
    }

    #[test]
    fn clones_share_their_values_until_one_changes() {
        let a = Attrs::from([(Attr::UserName, "a@x"), (Attr::Title, "T")]);
        let mut b = a.clone();
        assert!(Arc::ptr_eq(&a.text, &b.text));
        b.insert(Attr::Title, "U");
        assert_eq!((a.get(&Attr::Title), b.get(&Attr::Title)), (Some("T"), Some("U")));
    }

    #[test]
    fn an_absent_attribute_differs_from_an_empty_one() {
        let empty = Attrs::from([(Attr::Title, "")]);
        assert_ne!(empty, Attrs::new());
        assert_eq!(empty.get(&Attr::Title), Some(""));
        assert_eq!(Attrs::new().get(&Attr::Title), None);
    }

    #[test]
    fn reads_what_the_state_database_holds() {
        let json = r#"{"userName":"a\u00e9@x","title":"T","organizationId":"All"}"#;
        let attrs: Attrs = serde_json::from_str(json).unwrap();
        assert_eq!(attrs.get(&Attr::UserName), Some("aé@x"));
        assert_eq!(
            serde_json::to_string(&attrs).unwrap(),
            r#"{"userName":"aé@x","title":"T","organizationId":"All"}"#
        );
        let err = serde_json::from_str::<Attrs>(r#"{"shoeSize":"9"}"#).unwrap_err().to_string();
        assert!(err.contains("shoeSize"), "{err}");
        assert!(serde_json::from_str::<Attrs>(r#"{"title":9}"#).is_err());
    }

    #[test]
    fn retain_and_later_duplicates() {
        let mut attrs: Attrs =
            [(Attr::WorkPhone, "1"), (Attr::Title, "a"), (Attr::Title, "b")].into_iter().collect();
        assert_eq!(attrs.get(&Attr::Title), Some("b"));
        attrs.retain(|a, _| !a.is_phone());
        assert_eq!(attrs.keys().collect::<Vec<_>>(), [Attr::Title]);
    }
}
