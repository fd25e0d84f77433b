//! Versioned schema migrations, tracked in `PRAGMA user_version`. Append only: a released
//! migration is never edited.

use super::{Result, StoreError};
use rusqlite::Connection;
use std::path::Path;

pub(super) const MIGRATIONS: &[&str] = &[
    // 1: snapshot, runs, held operations, journal, audit log.
    r#"
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    INSERT INTO meta (key, value) VALUES ('snapshot_version', '0');
    CREATE TABLE users (
        key TEXT PRIMARY KEY,
        target_id TEXT NOT NULL,
        user_name TEXT NOT NULL,
        attrs TEXT NOT NULL,
        active INTEGER NOT NULL,
        roles TEXT NOT NULL,
        missing_since INTEGER,
        missing_runs INTEGER NOT NULL DEFAULT 0,
        updated_at INTEGER NOT NULL
    );
    CREATE INDEX users_user_name ON users (user_name COLLATE NOCASE);
    CREATE TABLE groups (
        key TEXT PRIMARY KEY,
        target_id TEXT NOT NULL,
        display_name TEXT NOT NULL,
        updated_at INTEGER NOT NULL
    );
    CREATE TABLE memberships (
        group_key TEXT NOT NULL REFERENCES groups (key) ON DELETE CASCADE,
        user_key TEXT NOT NULL,
        PRIMARY KEY (group_key, user_key)
    ) WITHOUT ROWID;
    CREATE TABLE runs (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL,
        started_at INTEGER NOT NULL,
        finished_at INTEGER,
        outcome TEXT NOT NULL DEFAULT 'running',
        summary TEXT,
        error TEXT,
        source_fingerprint TEXT,
        snapshot_version INTEGER
    );
    CREATE TABLE held (
        id INTEGER PRIMARY KEY,
        run_id INTEGER NOT NULL REFERENCES runs (id),
        seq INTEGER NOT NULL,
        op TEXT NOT NULL,
        reason TEXT NOT NULL,
        released_at INTEGER,
        superseded_by INTEGER
    );
    CREATE TABLE journal (
        id INTEGER PRIMARY KEY,
        run_id INTEGER NOT NULL REFERENCES runs (id),
        seq INTEGER NOT NULL,
        op TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('pending', 'done', 'failed', 'abandoned')),
        target_id TEXT,
        error TEXT,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    );
    CREATE INDEX journal_pending ON journal (state) WHERE state = 'pending';
    CREATE TABLE audit (
        id INTEGER PRIMARY KEY,
        run_id INTEGER NOT NULL,
        at INTEGER NOT NULL,
        activity TEXT NOT NULL,
        object_key TEXT NOT NULL,
        name TEXT NOT NULL,
        target_id TEXT,
        details TEXT NOT NULL
    );
    CREATE INDEX audit_name ON audit (name COLLATE NOCASE);
    "#,
    // 2: quarantine state (one row) and the count of consecutive auth-stopped runs.
    r#"
    CREATE TABLE quarantine (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        since INTEGER NOT NULL,
        until INTEGER NOT NULL,
        level INTEGER NOT NULL,
        reason TEXT NOT NULL
    );
    INSERT INTO meta (key, value) VALUES ('auth_streak', '0');
    "#,
    // 3: no index on users.user_name. No query looks users up by name (`status` lists the few
    // users pending deprovisioning by scanning), and keeping it cost a random-order B-tree
    // insert for every user a first sync writes.
    r#"
    DROP INDEX users_user_name;
    "#,
    // 4: no `user_name` column in users (it is in `attrs`), and `attrs` in the compact binary form
    // of `store::codec` from now on. Rows written before keep their JSON text, which is still
    // read, until they are next written.
    r#"
    ALTER TABLE users DROP COLUMN user_name;
    "#,
    // 5: a binary key of 16 bytes (AD's objectGUID) is the canonical GUID string instead of its
    // base64 (`source::directory::source_key`): `guid_keys` rewrites the stored keys in the same
    // transaction, so a directory keyed by objectGUID keeps its managed users.
    "-- guid_keys",
    // 6: resolved journal entries and old runs are deleted (`store::prune`); what they counted
    // for `status` and `/metrics` (counters that must not go down) is kept in these totals. The
    // indexes find the latest run of a kind and a run's held operations without a scan.
    r#"
    CREATE INDEX runs_kind ON runs (kind);
    CREATE INDEX held_run ON held (run_id);
    CREATE TABLE op_totals (
        kind TEXT NOT NULL,
        state TEXT NOT NULL,
        count INTEGER NOT NULL,
        PRIMARY KEY (kind, state)
    ) WITHOUT ROWID;
    CREATE TABLE run_totals (
        kind TEXT NOT NULL,
        outcome TEXT NOT NULL,
        count INTEGER NOT NULL,
        PRIMARY KEY (kind, outcome)
    ) WITHOUT ROWID;
    "#,
];

/// The schema version whose migration rewrites base64 GUID keys ([`guid_keys`]).
const GUID_KEYS_VERSION: usize = 5;

/// The audit log's name index as migration 1 made it. A commit larger than the log drops it and
/// builds it again with this statement (`Store::commit_and_journal`).
pub(super) const AUDIT_NAME_INDEX: &str = "CREATE INDEX audit_name ON audit (name COLLATE NOCASE)";

pub fn migrate(conn: &mut Connection, path: &Path) -> Result<()> {
    let current: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let supported = MIGRATIONS.len() as i64;
    if current > supported {
        return Err(StoreError::TooNew { path: path.to_owned(), found: current, supported });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        if i + 1 == GUID_KEYS_VERSION {
            guid_keys(&tx)?;
        }
        tx.pragma_update(None, "user_version", i as i64 + 1)?;
        tx.commit()?;
    }
    Ok(())
}

/// The canonical GUID string of a key that is the base64 of 16 bytes (how keys from binary
/// 16-byte values were stored before schema 5); `None` for any other key.
fn guid_of(key: &str) -> Option<String> {
    use base64::Engine;
    if key.len() != 24 || !key.ends_with("==") {
        return None;
    }
    let bytes = base64::engine::general_purpose::STANDARD.decode(key).ok()?;
    Some(crate::source::directory::guid_string(bytes.try_into().ok()?))
}

/// `text` with every JSON string that is a base64 GUID key replaced by its GUID string.
fn guid_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find('"') {
        out.push_str(&rest[..=start]);
        rest = &rest[start + 1..];
        match rest.get(..25).filter(|t| t.ends_with('"')).and_then(|t| guid_of(&t[..24])) {
            Some(guid) => {
                out.push_str(&guid);
                out.push('"');
                rest = &rest[25..];
            }
            None => continue,
        }
    }
    out.push_str(rest);
    out
}

/// Rewrites base64 GUID keys as GUID strings: the snapshot (users, groups, memberships), the
/// operations still to be applied (held, pending in the journal) and the audit log's keys.
fn guid_keys(tx: &rusqlite::Transaction<'_>) -> Result<()> {
    // Groups and their memberships change keys one table at a time: checked at the commit.
    tx.pragma_update(None, "defer_foreign_keys", true)?;
    tx.execute_batch("CREATE TEMP TABLE guid_keys (old TEXT PRIMARY KEY, new TEXT NOT NULL)")?;
    {
        let mut insert = tx.prepare("INSERT OR IGNORE INTO guid_keys (old, new) VALUES (?1, ?2)")?;
        for table in ["SELECT key FROM users", "SELECT key FROM groups", "SELECT user_key FROM memberships"] {
            let mut select = tx.prepare(table)?;
            let keys: Vec<String> = select.query_map([], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?;
            for old in keys {
                if let Some(new) = guid_of(&old) {
                    insert.execute((&old, &new))?;
                }
            }
        }
    }
    tx.execute_batch(
        "UPDATE users SET key = (SELECT new FROM guid_keys WHERE old = users.key)
             WHERE key IN (SELECT old FROM guid_keys);
         UPDATE groups SET key = (SELECT new FROM guid_keys WHERE old = groups.key)
             WHERE key IN (SELECT old FROM guid_keys);
         UPDATE memberships SET group_key = (SELECT new FROM guid_keys WHERE old = memberships.group_key)
             WHERE group_key IN (SELECT old FROM guid_keys);
         UPDATE memberships SET user_key = (SELECT new FROM guid_keys WHERE old = memberships.user_key)
             WHERE user_key IN (SELECT old FROM guid_keys);
         UPDATE audit SET object_key = (SELECT new FROM guid_keys WHERE old = audit.object_key)
             WHERE object_key IN (SELECT old FROM guid_keys);
         DROP TABLE guid_keys;",
    )?;
    for (select, update) in [
        ("SELECT id, op FROM held WHERE released_at IS NULL", "UPDATE held SET op = ?2 WHERE id = ?1"),
        ("SELECT id, op FROM journal WHERE state = 'pending'", "UPDATE journal SET op = ?2 WHERE id = ?1"),
    ] {
        let rows: Vec<(i64, String)> = tx
            .prepare(select)?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        for (id, op) in rows {
            let new = guid_text(&op);
            if new != op {
                tx.execute(update, (id, &new))?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_guid_keys_become_guid_strings_and_nothing_else_changes() {
        // AD's example GUID {6f9619ff-8b86-d011-b42d-00c04fc964ff} as stored on the wire.
        let b64 = "/xmWb4aLEdC0LQDAT8lk/w==";
        assert_eq!(guid_of(b64).as_deref(), Some("6f9619ff-8b86-d011-b42d-00c04fc964ff"));
        assert_eq!(guid_of("0f97bd01-7928-5d9c-be18-865eae75f759"), None);
        assert_eq!(guid_of("uid=a,dc=example,dc=com"), None);
        assert_eq!(guid_of("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"), None);
        let op = format!(r#"{{"op":"remove_members","key":"{b64}","members":["{b64}","k2"],"n":"x\"y"}}"#);
        let guid = "6f9619ff-8b86-d011-b42d-00c04fc964ff";
        assert_eq!(
            guid_text(&op),
            format!(r#"{{"op":"remove_members","key":"{guid}","members":["{guid}","k2"],"n":"x\"y"}}"#)
        );
    }
}
