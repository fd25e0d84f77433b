//! The attribute descriptions met so far, each checked and lowercased once. Exports repeat the
//! same attributes in the same order, so a line is first compared with the description at its
//! position in the entries before, then looked up by hash; only a new description is checked,
//! lowercased and looked up in the `keep` set.

use std::collections::HashMap;

/// Past this many descriptions the table is emptied before the next entry (an export with a
/// description per entry, say `cn;x-id-…`, would otherwise keep them all).
const MAX_NAMES: usize = 4096;

#[derive(Default)]
pub(super) struct Names {
    /// `(as written, lowercased, kept)`; an entry's attributes name their description by its
    /// index here, which stays valid until the next entry begins.
    table: Vec<(Box<[u8]>, Box<str>, bool)>,
    by_raw: HashMap<Box<[u8]>, u32, foldhash::fast::RandomState>,
    /// The description at each position of the entries read so far.
    at: Vec<u32>,
}

impl Names {
    /// The description written `raw` at position `index` of its entry, and whether it is kept.
    #[inline]
    pub(super) fn find(&mut self, index: usize, raw: &[u8]) -> Option<(u32, bool)> {
        if let Some(&id) = self.at.get(index) {
            if let Some((seen, _, keep)) = self.table.get(id as usize) {
                if **seen == *raw {
                    return Some((id, *keep));
                }
            }
        }
        let &id = self.by_raw.get(raw)?;
        self.remember(index, id);
        self.table.get(id as usize).map(|(_, _, keep)| (id, *keep))
    }

    /// The description at position `index` of the entries before, as written, and whether it is
    /// kept.
    #[inline]
    pub(super) fn expected(&self, index: usize) -> Option<(u32, &[u8], bool)> {
        let id = *self.at.get(index)?;
        let (raw, _, keep) = self.table.get(id as usize)?;
        Some((id, raw, *keep))
    }

    /// Adds a description not found before.
    pub(super) fn insert(&mut self, index: usize, raw: &[u8], lower: String, keep: bool) -> u32 {
        // At most one description per line, and lines are far fewer than 2^32 per table.
        let id = u32::try_from(self.table.len()).unwrap_or(u32::MAX);
        self.table.push((raw.into(), lower.into(), keep));
        self.by_raw.insert(raw.into(), id);
        self.remember(index, id);
        id
    }

    fn remember(&mut self, index: usize, id: u32) {
        if let Some(slot) = self.at.get_mut(index) {
            *slot = id;
        } else if index == self.at.len() {
            self.at.push(id);
        }
    }

    /// The lowercased description.
    #[inline]
    pub(super) fn lower(&self, id: u32) -> &str {
        self.table.get(id as usize).map_or("", |(_, lower, _)| lower)
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
