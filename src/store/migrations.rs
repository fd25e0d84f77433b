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
];

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
        tx.pragma_update(None, "user_version", i as i64 + 1)?;
        tx.commit()?;
    }
    Ok(())
}
