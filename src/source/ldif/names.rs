//! The attribute descriptions met so far, each checked and lowercased once. Exports repeat the
//! same attributes in the same order, so a line is first compared with the description at its
//! position in the entries before, then looked up by hash; only a new description is checked,
//! lowercased and looked up in the `keep` set.

use super::lines::Head;
use std::collections::HashMap;

/// Past this many descriptions the table is emptied before the next entry (an export with a
/// description per entry, say `cn;x-id-…`, would otherwise keep them all).
const MAX_NAMES: usize = 4096;

/// One description.
pub(super) struct Name {
    /// As written.
    pub(super) raw: Box<[u8]>,
    /// With its colon, to compare a line's start with at once.
    pub(super) head: Option<Head>,
    lower: Box<str>,
    /// Whether entries keep it.
    pub(super) keep: bool,
    /// The description that followed it last (`u32::MAX`: none yet).
    after: u32,
}

#[derive(Default)]
pub(super) struct Names {
    /// An entry's attributes name their description by its index here, which stays valid until
    /// the next entry begins.
    table: Vec<Name>,
    by_raw: HashMap<Box<[u8]>, u32, foldhash::fast::RandomState>,
    /// The description at each position of the entries read so far.
    at: Vec<u32>,
}

impl Names {
    /// The description written `raw` at position `index` of its entry, and whether it is kept.
    #[inline]
    pub(super) fn find(&mut self, index: usize, raw: &[u8]) -> Option<(u32, bool)> {
        if let Some(&id) = self.at.get(index) {
            if let Some(name) = self.table.get(id as usize) {
                if *name.raw == *raw {
                    return Some((id, name.keep));
                }
            }
        }
        let &id = self.by_raw.get(raw)?;
        self.remember(index, id);
        self.table.get(id as usize).map(|name| (id, name.keep))
    }

    /// The description at position `index` of the entries before.
    #[inline]
    pub(super) fn expected(&self, index: usize) -> Option<(u32, &Name)> {
        let id = *self.at.get(index)?;
        Some((id, self.table.get(id as usize)?))
    }

    /// Adds a description not found before.
    pub(super) fn insert(&mut self, index: usize, raw: &[u8], lower: String, keep: bool) -> u32 {
        // At most one description per line, and lines are far fewer than 2^32 per table.
        let id = u32::try_from(self.table.len()).unwrap_or(u32::MAX);
        self.table.push(Name {
            raw: raw.into(),
            head: Head::new(raw),
            lower: lower.into(),
            keep,
            after: u32::MAX,
        });
        self.by_raw.insert(raw.into(), id);
        self.remember(index, id);
        id
    }

    /// The description that followed description `prev` last time: the guess when an optional
    /// attribute shifted the ones after it.
    #[inline]
    pub(super) fn after(&self, prev: u32) -> Option<(u32, &Name)> {
        let id = self.table.get(prev as usize)?.after;
        Some((id, self.table.get(id as usize)?))
    }

    /// Notes that description `id` followed `prev`.
    #[inline]
    pub(super) fn follows(&mut self, prev: u32, id: u32) {
        if let Some(name) = self.table.get_mut(prev as usize) {
            name.after = id;
        }
    }

    /// Notes that description `id` is at position `index`.
    pub(super) fn remember(&mut self, index: usize, id: u32) {
        if let Some(slot) = self.at.get_mut(index) {
            *slot = id;
        } else if index == self.at.len() {
            self.at.push(id);
        }
    }

    /// The lowercased description.
    #[inline]
    pub(super) fn lower(&self, id: u32) -> &str {
        self.table.get(id as usize).map_or("", |name| &name.lower)
    }

    /// Forgets every description (the `keep` set changed).
    pub(super) fn clear(&mut self) {
        self.table.clear();
        self.by_raw.clear();
        self.at.clear();
    }

    /// Called before an entry: forgets every description if there are too many.
    pub(super) fn trim(&mut self) {
        if self.table.len() > MAX_NAMES {
            self.clear();
        }
    }
}
