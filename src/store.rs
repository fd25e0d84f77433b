//! SQLite state: versioned migrations; the snapshot of managed objects; runs, held operations,
//! the journal and the audit log.
//!
//! Guarantees: every change to the snapshot happens in a transaction together with the journal
//! and audit rows that explain it (a journal entry is deleted as it is resolved: `prune.rs`); the database is created readable by its owner only (0600);
//! WAL with `synchronous = FULL`, so a committed operation survives power loss.

pub mod backup;
// Public for the `store_codec` fuzz target (fuzz/) only; not part of the API.
#[doc(hidden)]
pub mod codec;
#[cfg(test)]
mod format_tests;
mod lock;
mod meta;
mod migrations;
mod prune;
mod runs;
mod snapshot;
mod stats;

pub use lock::{InstanceLock, LockError};
pub use prune::{prune_between_runs, Pruned, Retention, BATCH as PRUNE_BATCH};
pub use runs::{AuditEntry, HeldOp, RunKind, RunOutcome, RunRecord};
pub use snapshot::Confirmed;
pub use stats::{Count, Stats};

use rusqlite::Connection;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the state database {path} (check state.path and that its directory is writable)")]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("cannot create the state directory {path}")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the state database {path} has schema version {found}, newer than this scimsync ({supported}): upgrade scimsync")]
    TooNew { path: PathBuf, found: i64, supported: i64 },
    #[error("state database: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("state database holds a record scimsync cannot read ({what}): {message}")]
    Corrupt { what: String, message: String },
}

pub type Result<T> = std::result::Result<T, StoreError>;

pub struct Store {
    conn: Connection,
    path: PathBuf,
    /// The fewest operations in one commit for which it rebuilds the audit log's name index
    /// rather than inserting into it ([`AUDIT_REBUILD_MIN`]; lower in tests).
    bulk_min: usize,
}

/// A commit of at least this many operations, into an audit log with fewer rows than that, drops
/// the log's name index and builds it again at the end of the same transaction. Names reach the
/// index in random order: inserted one by one, a large first sync rewrote most of the index's
/// pages in every transaction, all of them through the WAL; built at the end, the
/// index is one sort and one sequential write. Below this size inserting is cheaper.
pub const AUDIT_REBUILD_MIN: usize = 50_000;

impl Store {
    /// Opens (creating when missing, mode 0600) and migrates the state database.
    pub fn open(path: &Path) -> Result<Store> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError::CreateDir { path: dir.to_owned(), source: e })?;
        }
        create_private(path);
        let conn =
            Connection::open(path).map_err(|e| StoreError::Open { path: path.to_owned(), source: e })?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        // Pages freed by pruning go back to the file system (`Store::prune`). Takes effect only
        // in a new database, before its first table; an older one keeps reusing its free pages.
        conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        // 64 MiB of page cache instead of 2: the snapshot's key indexes are written in random key
        // order (keys are UUIDs), and with a small cache a large first sync rereads and rewrites
        // the same pages over and over.
        conn.pragma_update(None, "cache_size", -65536)?;
        let mut store = Store { conn, path: path.to_owned(), bulk_min: AUDIT_REBUILD_MIN };
        migrations::migrate(&mut store.conn, path)?;
        Ok(store)
    }

    /// An in-memory database, for tests.
    pub fn in_memory() -> Result<Store> {
        let mut conn = Connection::open_in_memory()?;
        migrations::migrate(&mut conn, Path::new(":memory:"))?;
        Ok(Store { conn, path: PathBuf::from(":memory:"), bulk_min: AUDIT_REBUILD_MIN })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `PRAGMA integrity_check`: `ok` when the file is sound.
    pub fn integrity_check(&self) -> Result<String> {
        Ok(self.conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))?)
    }
}

/// Creates the file with mode 0600 before SQLite opens it, so it is never readable by others.
fn create_private(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        let _ = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_is_created_readable_by_its_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/state.db");
        let store = Store::open(&path).unwrap();
        assert_eq!(store.integrity_check().unwrap(), "ok");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "mode {mode:o}");
        drop(store);
        // Reopening runs no migration twice.
        let store = Store::open(&path).unwrap();
        assert_eq!(store.snapshot_version().unwrap(), 0);
    }

    #[test]
    fn sharing_values_with_the_desired_state_loads_the_same_snapshot() {
        use crate::model::{Attr, DesiredState, DesiredUser, SourceKey};
        use crate::reconcile::Op;
        let user = |k: &str, title: &str| {
            DesiredUser::builder(k, &format!("{k}@x")).origin("t.ldif:1").attr(Attr::Title, title).build()
        };
        let mut store = Store::in_memory().unwrap();
        let run = store.begin_run(RunKind::Sync, 0).unwrap();
        // Inserted out of key order, as a first sync inserts (by userName).
        let ops: Vec<Op> =
            ["m", "c", "x", "a", "n"].iter().map(|k| Op::CreateUser { user: user(k, "T") }).collect();
        let confirmed: Vec<Confirmed> =
            ops.iter().map(|op| Confirmed { journal_id: None, op, target_id: Some("id") }).collect();
        store.commit_ops(run, &confirmed, 0).unwrap();

        let mut desired = DesiredState::default();
        for (k, title) in [("a", "T"), ("c", "changed"), ("m", "T"), ("n", "T"), ("z", "new")] {
            desired.users.insert(SourceKey::from(k), user(k, title));
        }
        let plain = store.load_snapshot().unwrap();
        let shared = store.load_snapshot_sharing(Some(&desired)).unwrap();
        assert_eq!(shared.users, plain.users);
        assert_eq!(shared.users.len(), 5);
        assert_eq!(shared.users[&SourceKey::from("c")].attrs.get(&Attr::Title), Some("T"));
    }

    #[test]
    fn the_audit_log_is_searched_by_name_through_its_index() {
        let mut store = Store::in_memory().unwrap();
        commit_all(&mut store, &[created("ada"), created("bob")]);
        let found = store.audit(Some("ADA@X.example"), 10).unwrap();
        assert_eq!(found.iter().map(|e| e.key.as_str()).collect::<Vec<_>>(), ["ada"]);
        assert_eq!(store.audit(None, 10).unwrap().len(), 2);
        assert_audit_search_uses_its_index(&store);
        let indexes =
            strings(&store, "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'users'");
        assert!(!indexes.iter().any(|i| i == "users_user_name"), "{indexes:?}");
    }

    fn assert_audit_search_uses_its_index(store: &Store) {
        let explain = format!("EXPLAIN QUERY PLAN {}", runs::AUDIT_BY_NAME);
        let plan: String =
            store.conn.query_row(&explain, rusqlite::params!["ada@x.example", 5], |r| r.get(3)).unwrap();
        assert!(plan.contains("USING INDEX audit_name"), "{plan}");
    }

    fn strings(store: &Store, sql: &str) -> Vec<String> {
        let mut stmt = store.conn.prepare(sql).unwrap();
        stmt.query_map([], |r| r.get(0)).unwrap().collect::<rusqlite::Result<_>>().unwrap()
    }

    fn created(k: &str) -> crate::reconcile::Op {
        use crate::model::DesiredUser;
        crate::reconcile::Op::CreateUser {
            user: DesiredUser::builder(k, &format!("{k}@x.example")).origin("t.ldif:1").build(),
        }
    }

    pub(super) fn commit_all(store: &mut Store, ops: &[crate::reconcile::Op]) {
        let run = store.begin_run(RunKind::Sync, 0).unwrap();
        let confirmed: Vec<Confirmed> =
            ops.iter().map(|op| Confirmed { journal_id: None, op, target_id: Some("id") }).collect();
        store.commit_ops(run, &confirmed, 0).unwrap();
    }

    #[test]
    fn a_commit_writes_users_in_key_order_without_moving_them_past_group_operations() {
        use crate::model::SourceKey;
        use crate::reconcile::{plan::Reason, Op};
        let keys = |v: &[&str]| v.iter().map(|k| SourceKey::from(*k)).collect::<Vec<_>>();
        let ops = vec![
            created("m"),
            created("c"),
            Op::CreateGroup { key: SourceKey::from("g"), display_name: "G".into() },
            created("x"),
            created("b"),
            Op::AddMembers {
                key: SourceKey::from("g"),
                display_name: "G".into(),
                members: keys(&["b", "c", "x"]),
            },
            // Deleting b after adding it leaves g without b; moved before the add, it would not.
            Op::DeleteUser {
                key: SourceKey::from("b"),
                user_name: "b@x.example".into(),
                reason: Reason::Missing,
            },
            created("a"),
        ];
        let mut together = Store::in_memory().unwrap();
        commit_all(&mut together, &ops);
        let mut one_by_one = Store::in_memory().unwrap();
        for op in &ops {
            commit_all(&mut one_by_one, std::slice::from_ref(op));
        }
        assert_eq!(together.load_snapshot().unwrap(), one_by_one.load_snapshot().unwrap());
        assert_eq!(
            together.load_snapshot().unwrap().groups[&SourceKey::from("g")].members,
            keys(&["c", "x"]).into_iter().collect()
        );
        let strip =
            |entries: Vec<AuditEntry>| entries.into_iter().map(|e| (e.activity, e.key)).collect::<Vec<_>>();
        assert_eq!(strip(together.audit(None, 20).unwrap()), strip(one_by_one.audit(None, 20).unwrap()));
        // The users rows went in key order within each run of user operations: rowids tell.
        let by_rowid = strings(&together, "SELECT key FROM users ORDER BY rowid");
        assert_eq!(by_rowid, ["c", "m", "x", "a"]);
    }

    #[test]
    fn a_commit_larger_than_the_audit_log_builds_its_name_index_again() {
        let index = |store: &Store| -> (i64, String) {
            store
                .conn
                .query_row("SELECT rowid, sql FROM sqlite_schema WHERE name = 'audit_name'", [], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .unwrap()
        };
        let mut store = Store::in_memory().unwrap();
        store.bulk_min = 3;
        let (first_row, sql) = index(&store);
        let names = |n: usize| (0..n).map(|i| created(&format!("u{i:02}"))).collect::<Vec<_>>();
        commit_all(&mut store, &names(2));
        assert_eq!(index(&store).0, first_row, "two operations are inserted into the index");
        commit_all(&mut store, &names(9)[2..]);
        let (rebuilt_row, rebuilt_sql) = index(&store);
        assert_ne!(rebuilt_row, first_row, "seven operations into a log of two rebuild the index");
        assert_eq!(rebuilt_sql, sql);
        commit_all(&mut store, &names(12)[9..]);
        assert_eq!(index(&store).0, rebuilt_row, "three operations into a log of nine are inserted");
        let found = store.audit(Some("U05@x.example"), 10).unwrap();
        assert_eq!(found.iter().map(|e| e.key.as_str()).collect::<Vec<_>>(), ["u05"]);
        assert_audit_search_uses_its_index(&store);
        assert_eq!(store.integrity_check().unwrap(), "ok");
    }
}
