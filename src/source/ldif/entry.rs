//! [`Entry`]: an LDIF entry as the reader hands it out, its values borrowed from the read buffer.

use super::names::Names;
use super::parse::Parser;
use crate::source::{Origin, Record, SourceEntry, ValueRef};
use std::sync::Arc;

/// Where a value of the parsed entry is.
#[derive(Clone, Copy, Debug)]
pub(super) enum Loc {
    /// Bytes of the entry's text in the read buffer: a plain value on one line.
    Text(usize, usize),
    /// Bytes of the decoded text: a folded, base64 or URL value, or any value of an entry that
    /// was checked value by value.
    Decoded(usize, usize),
    /// Bytes of the decoded binary values.
    Binary(usize, usize),
}

/// A kept attribute value: its description in [`Names`] and the value.
#[derive(Clone, Copy, Debug)]
pub(super) struct Attr {
    pub(super) name: u32,
    pub(super) value: Loc,
}

/// An entry borrowed from the reader ([`super::LdifReader::next_entry`]), valid until the next
/// call. Attribute descriptions are lowercased; with [`super::LdifReader::keep_only`], only the
/// attributes kept are here.
#[derive(Clone, Copy)]
pub struct Entry<'a> {
    path: &'a Arc<str>,
    line: u64,
    /// The entry's text in the read buffer, checked to be UTF-8 without NUL bytes; empty when
    /// every value is decoded.
    text: &'a str,
    decoded: &'a str,
    binary: &'a [u8],
    dn: Loc,
    attrs: &'a [Attr],
    names: &'a Names,
}

impl<'a> Entry<'a> {
    pub(super) fn new(parser: &'a Parser, text: &'a str) -> Self {
        let entry = &parser.entry;
        Entry {
            path: &parser.path,
            line: entry.line,
            text,
            decoded: &entry.decoded,
            binary: &entry.binary,
            dn: entry.dn,
            attrs: &entry.attrs,
            names: &parser.names,
        }
    }

    #[inline]
    pub fn dn(&self) -> &'a str {
        self.value(self.dn).as_text().unwrap_or_default()
    }

    /// The number of its dn line.
    #[inline]
    pub fn line(&self) -> u64 {
        self.line
    }

    #[inline]
    pub fn origin(&self) -> Origin {
        Origin { path: self.path.clone(), line: self.line }
    }

    /// `(lowercased attribute description, value)` in file order.
    #[inline]
    pub fn attrs(&self) -> impl ExactSizeIterator<Item = (&'a str, ValueRef<'a>)> + 'a {
        let entry = *self;
        self.attrs.iter().map(move |a| (entry.names.lower(a.name), entry.value(a.value)))
    }

    /// The entry as an owned [`Record`].
    pub fn to_record(&self) -> Record {
        let mut attrs = Vec::with_capacity(self.attrs.len());
        attrs.extend(self.attrs().map(|(name, value)| (name.to_owned(), value.to_value())));
        Record { origin: self.origin(), dn: self.dn().to_owned(), attrs }
    }

    #[inline]
    fn value(&self, at: Loc) -> ValueRef<'a> {
        match at {
            Loc::Text(from, to) => ValueRef::Text(self.text.get(from..to).unwrap_or_default()),
            Loc::Decoded(from, to) => ValueRef::Text(self.decoded.get(from..to).unwrap_or_default()),
            Loc::Binary(from, to) => ValueRef::Binary(self.binary.get(from..to).unwrap_or_default()),
        }
    }
}

impl std::fmt::Debug for Entry<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry")
            .field("line", &self.line)
            .field("dn", &self.dn())
            .field("attrs", &self.attrs().collect::<Vec<_>>())
            .finish()
    }
}

impl SourceEntry for Entry<'_> {
    fn dn(&self) -> &str {
        Entry::dn(self)
    }

    fn origin(&self) -> Origin {
        Entry::origin(self)
    }

    #[inline]
    fn attributes(&self) -> impl Iterator<Item = (&str, ValueRef<'_>)> {
        self.attrs()
    }
}
