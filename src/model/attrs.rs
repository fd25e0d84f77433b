//! `Attrs`: a user's target attribute values in one allocation.
//!
//! Every desired and every managed user carries one, so their size is most of a large run's
//! memory: one buffer of the values' bytes and a fixed index, instead of a map node and a string
//! per value; a managed user whose values equal the desired ones shares them
//! (`Store::load_snapshot_sharing`). Custom attributes (rare, few) live in the same buffer
//! behind the built-ins' values, so a user without any pays nothing for them.

use super::Attr;
use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::borrow::Cow;
use std::fmt::{self, Write as _};
use std::sync::Arc;

const N: usize = Attr::BUILTINS.len();

/// The bytes of one custom attribute's index entry: its id (4 hex digits) and the length of its
/// value (8 hex digits).
const ENTRY: usize = 12;

/// Attribute values keyed by [`Attr`], iterated in `Attr` order (as a `BTreeMap` would be).
///
/// The built-ins' values are concatenated in `Attr::BUILTINS` order at the start of `text`;
/// `ends[i]` is where the value of `Attr::BUILTINS[i]` ends (an absent attribute takes no
/// bytes) and bit `i` of `present` says whether it is set. Then come `custom` index entries
/// (see [`ENTRY`]), then the custom attributes' values, both in `Attr` order. The layout is
/// canonical, so the derived equality is equality of the maps. Clones share `text`: changing a
/// value builds a new one.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Attrs {
    present: u16,
    /// How many custom attributes are set (it fits in what would be padding).
    custom: u16,
    ends: [u32; N],
    text: Arc<str>,
}

impl Attrs {
    pub fn new() -> Attrs {
        Attrs::default()
    }

    /// Builds from one optional value per built-in attribute, in `Attr::BUILTINS` order, and the
    /// custom attributes' values, in `Attr` order without repeats.
    fn from_parts<S: AsRef<str>>(slots: &[Option<S>; N], custom: &[(Attr, S)]) -> Attrs {
        let len: usize =
            slots.iter().flatten().chain(custom.iter().map(|(_, v)| v)).map(|v| v.as_ref().len()).sum();
        let mut text = String::with_capacity(len + custom.len() * ENTRY);
        let mut attrs = Attrs { present: 0, custom: 0, ends: [0; N], text: Arc::default() };
        for (i, slot) in slots.iter().enumerate() {
            if let Some(v) = slot {
                text.push_str(v.as_ref());
                attrs.present |= 1 << i;
            }
            attrs.ends[i] = offset(text.len());
        }
        if !custom.is_empty() {
            attrs.custom = u16::try_from(custom.len()).expect("custom attributes are fewer than MAX_CUSTOM");
            for (attr, value) in custom {
                let _ = write!(text, "{:04x}{:08x}", attr.id(), offset(value.as_ref().len()));
            }
            for (_, value) in custom {
                text.push_str(value.as_ref());
            }
        }
        attrs.text = text.into();
        attrs
    }

    fn slots(&self) -> [Option<&str>; N] {
        std::array::from_fn(|i| self.at(i))
    }

    /// The custom attributes' values, in `Attr` order.
    fn customs(&self) -> Vec<(Attr, &str)> {
        let mut out = Vec::with_capacity(self.custom.into());
        let mut it = self.iter();
        it.next = N;
        out.extend(it);
        out
    }

    fn at(&self, i: usize) -> Option<&str> {
        if self.present & (1 << i) == 0 {
            return None;
        }
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        Some(&self.text[start..self.ends[i] as usize])
    }

    /// Where the custom attributes' index starts.
    fn index_start(&self) -> usize {
        self.ends[N - 1] as usize
    }

    /// The attribute and value length of custom index entry `k`.
    fn entry(&self, k: usize) -> (Attr, usize) {
        let at = self.index_start() + k * ENTRY;
        let e = &self.text.as_bytes()[at..at + ENTRY];
        (Attr::from_id(hex(&e[..4]) as u16), hex(&e[4..]))
    }

    pub fn get(&self, attr: &Attr) -> Option<&str> {
        match attr.builtin_index() {
            Some(i) => self.at(i),
            None if self.custom == 0 => None,
            None => {
                let mut it = self.iter();
                it.next = N;
                it.find(|(a, _)| a == attr).map(|(_, v)| v)
            }
        }
    }

    pub fn contains_key(&self, attr: &Attr) -> bool {
        match attr.builtin_index() {
            Some(i) => self.present & (1 << i) != 0,
            None => (0..usize::from(self.custom)).any(|k| self.entry(k).0 == *attr),
        }
    }

    /// Sets a value, replacing any earlier one.
    pub fn insert(&mut self, attr: Attr, value: &str) {
        let (mut slots, mut custom) = (self.slots(), self.customs());
        match attr.builtin_index() {
            Some(i) => slots[i] = Some(value),
            None => match custom.binary_search_by(|(a, _)| a.cmp(&attr)) {
                Ok(k) => custom[k].1 = value,
                Err(k) => custom.insert(k, (attr, value)),
            },
        }
        *self = Attrs::from_parts(&slots, &custom);
    }

    pub fn remove(&mut self, attr: &Attr) {
        if self.contains_key(attr) {
            self.retain(|a, _| a != *attr);
        }
    }

    /// Keeps the attributes for which `keep` answers true.
    pub fn retain(&mut self, mut keep: impl FnMut(Attr, &str) -> bool) {
        let (mut slots, mut custom) = (self.slots(), self.customs());
        let before = self.len();
        for (slot, attr) in slots.iter_mut().zip(Attr::BUILTINS) {
            if slot.is_some_and(|v| !keep(attr, v)) {
                *slot = None;
            }
        }
        custom.retain(|(a, v)| keep(*a, v));
        if slots.iter().flatten().count() + custom.len() != before {
            *self = Attrs::from_parts(&slots, &custom);
        }
    }

    pub fn iter(&self) -> Iter<'_> {
        Iter { attrs: self, next: 0, custom: 0, at: self.index_start() + usize::from(self.custom) * ENTRY }
    }

    pub fn keys(&self) -> impl Iterator<Item = Attr> + '_ {
        self.iter().map(|(a, _)| a)
    }

    pub fn len(&self) -> usize {
        self.present.count_ones() as usize + usize::from(self.custom)
    }

    pub fn is_empty(&self) -> bool {
        self.present == 0 && self.custom == 0
    }
}

/// The set attributes with their values, in `Attr` order.
pub struct Iter<'a> {
    attrs: &'a Attrs,
    /// The next built-in to look at (`N` once they are done).
    next: usize,
    /// The next custom index entry, and where its value starts.
    custom: usize,
    at: usize,
}

impl<'a> Iterator for Iter<'a> {
    type Item = (Attr, &'a str);

    fn next(&mut self) -> Option<(Attr, &'a str)> {
        while self.next < N {
            let i = self.next;
            self.next += 1;
            if let Some(value) = self.attrs.at(i) {
                return Some((Attr::BUILTINS[i], value));
            }
        }
        if self.custom < usize::from(self.attrs.custom) {
            let (attr, len) = self.attrs.entry(self.custom);
            let value = &self.attrs.text[self.at..self.at + len];
            self.custom += 1;
            self.at += len;
            return Some((attr, value));
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

/// The number the hex digits `from_parts` wrote stand for.
fn hex(digits: &[u8]) -> usize {
    digits.iter().fold(0, |n, &d| n * 16 + (d as char).to_digit(16).unwrap_or(0) as usize)
}

/// Values by attribute as they are gathered: a later value for the same attribute replaces an
/// earlier one.
struct Gather<S> {
    slots: [Option<S>; N],
    custom: Vec<(Attr, S)>,
}

impl<S: AsRef<str>> Gather<S> {
    fn new() -> Gather<S> {
        Gather { slots: std::array::from_fn(|_| None), custom: Vec::new() }
    }

    fn set(&mut self, attr: Attr, value: S) {
        match attr.builtin_index() {
            Some(i) => self.slots[i] = Some(value),
            None => match self.custom.iter_mut().find(|(a, _)| *a == attr) {
                Some(slot) => slot.1 = value,
                None => self.custom.push((attr, value)),
            },
        }
    }

    fn build(mut self) -> Attrs {
        self.custom.sort_by_key(|a| a.0);
        Attrs::from_parts(&self.slots, &self.custom)
    }
}

impl<S: AsRef<str>> FromIterator<(Attr, S)> for Attrs {
    /// A later value for the same attribute replaces an earlier one.
    fn from_iter<I: IntoIterator<Item = (Attr, S)>>(iter: I) -> Attrs {
        let mut gather = Gather::new();
        for (attr, value) in iter {
            gather.set(attr, value);
        }
        gather.build()
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
                let mut gather: Gather<Cow<'de, str>> = Gather::new();
                while let Some((attr, value)) = map.next_entry::<Attr, CowStr<'de>>()? {
                    gather.set(attr, value.0);
                }
                Ok(gather.build())
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
mod tests;
