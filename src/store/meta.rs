//! The `meta` table's free keys: small values a component keeps between runs under a key of its
//! own (what was last notified, the notification counters). No schema change: the table has
//! held key/value pairs since the first migration.

use super::{Result, Store};
use rusqlite::{params, OptionalExtension as _};

impl Store {
    /// The value stored under `key`, if any.
    pub fn meta(&self, key: &str) -> Result<Option<String>> {
        Ok(self.conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0)).optional()?)
    }

    /// Stores `value` under `key`, replacing what was there.
    pub fn set_meta(&mut self, key: &str, value: &str) -> Result<()> {
        self.conn.execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = ?2",
            params![key, value],
        )?;
        Ok(())
    }

    /// Adds `n` to the counter under `key` (0 when missing).
    pub fn add_to_meta(&mut self, key: &str, n: u64) -> Result<()> {
        self.conn.execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2)
             ON CONFLICT (key) DO UPDATE SET value = CAST(CAST(value AS INTEGER) + ?2 AS TEXT)",
            params![key, n as i64],
        )?;
        Ok(())
    }

    /// Every key starting with `prefix`, with its value, in key order.
    pub fn meta_prefixed(&self, prefix: &str) -> Result<Vec<(String, String)>> {
        let mut stmt =
            self.conn.prepare("SELECT key, value FROM meta WHERE substr(key, 1, ?2) = ?1 ORDER BY key")?;
        let rows = stmt.query_map(params![prefix, prefix.len() as i64], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_and_counters_are_kept_by_key() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("state.db")).unwrap();
        assert_eq!(store.meta("notify.told").unwrap(), None);
        store.set_meta("notify.told", "{}").unwrap();
        store.set_meta("notify.told", "{\"a\":1}").unwrap();
        assert_eq!(store.meta("notify.told").unwrap().as_deref(), Some("{\"a\":1}"));
        store.add_to_meta("notify.sent.webhook", 1).unwrap();
        store.add_to_meta("notify.sent.webhook", 2).unwrap();
        let counters = store.meta_prefixed("notify.sent.").unwrap();
        assert_eq!(counters, [("notify.sent.webhook".to_owned(), "3".to_owned())]);
        // The keys scimsync keeps there already are left alone.
        assert_eq!(store.meta("auth_streak").unwrap().as_deref(), Some("0"));
    }
}
