//! `scimsync backup FILE`: a consistent copy of the state database, taken while the daemon may
//! be writing to it.
//!
//! Expected flow: the copy is made with SQLite's online backup API, some pages per step, inside
//! one read transaction on the source: in WAL mode a reader blocks no writer, and the
//! transaction keeps every step on the same committed state, so the copy is the database as of
//! one commit. It is written to `FILE.tmp` (mode 0600), checked (`PRAGMA integrity_check`, then
//! opened as a state database), and only then renamed to `FILE`.
//!
//! Guarantees: `FILE` is either absent, the file that was there (without `--force`, an existing
//! `FILE` is refused before anything is written), or a checked copy. No instance lock is taken.

use super::{create_private, Store, StoreError};
use rusqlite::{backup::StepResult, Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Pages per backup step (4 KiB each: 4 MiB).
const STEP_PAGES: i32 = 1024;

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{0} exists: pass --force to replace it, or choose another file")]
    Exists(PathBuf),
    #[error("{0} is the state database itself: choose another file")]
    Itself(PathBuf),
    #[error("there is no state database at {0} (check state.path): nothing to back up")]
    NoSource(PathBuf),
    #[error("cannot write the backup {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("copying the state database to {path} failed")]
    Copy {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("the copy {path} failed its check ({found}); the state database itself may be damaged: run `sqlite3 STATE 'PRAGMA integrity_check'`")]
    Check { path: PathBuf, found: String },
    #[error("the copy {path} does not open as a state database")]
    Open {
        path: PathBuf,
        #[source]
        source: StoreError,
    },
}

/// What a backup copied.
#[derive(Clone, Debug)]
pub struct Backup {
    pub bytes: u64,
    pub snapshot_version: i64,
    pub took: Duration,
}

/// Copies the state database at `state` to `file`, as described in the module's docs.
pub fn backup(state: &Path, file: &Path, force: bool) -> Result<Backup, BackupError> {
    let started = Instant::now();
    let same = |a: &Path, b: &Path| a.canonicalize().ok().is_some_and(|a| b.canonicalize().ok() == Some(a));
    if same(file, state) {
        return Err(BackupError::Itself(file.to_owned()));
    }
    if !force && file.exists() {
        return Err(BackupError::Exists(file.to_owned()));
    }
    if !state.is_file() {
        return Err(BackupError::NoSource(state.to_owned()));
    }
    let mut tmp = file.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let write_err = |source| BackupError::Write { path: tmp.clone(), source };
    match std::fs::remove_file(&tmp) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(write_err(e)),
        _ => {}
    }
    create_private(&tmp);
    let result = copy(state, &tmp).and_then(|()| check(&tmp));
    let snapshot_version = match result {
        Ok(v) => v,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    let synced = std::fs::File::open(&tmp).and_then(|f| f.sync_all());
    synced.and_then(|()| std::fs::rename(&tmp, file)).map_err(write_err)?;
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        let _ = std::fs::File::open(dir).and_then(|d| d.sync_all());
    }
    let bytes = std::fs::metadata(file).map(|m| m.len()).unwrap_or(0);
    Ok(Backup { bytes, snapshot_version, took: started.elapsed() })
}

/// The online backup of `state` into `tmp`, all steps within one read transaction.
fn copy(state: &Path, tmp: &Path) -> Result<(), BackupError> {
    let err = |source| BackupError::Copy { path: tmp.to_owned(), source };
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let source = Connection::open_with_flags(state, flags).map_err(err)?;
    source.busy_timeout(Duration::from_secs(10)).map_err(err)?;
    // The read transaction starts at the first read and holds that commit until the end.
    source.execute_batch("BEGIN; SELECT count(*) FROM sqlite_schema;").map_err(err)?;
    let mut dest = Connection::open(tmp).map_err(err)?;
    {
        let backup = rusqlite::backup::Backup::new(&source, &mut dest).map_err(err)?;
        loop {
            match backup.step(STEP_PAGES).map_err(err)? {
                StepResult::Done => break,
                StepResult::More => {}
                // Another connection holds a lock the step needs (not in WAL mode): wait a little.
                _ => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }
    source.execute_batch("COMMIT").map_err(err)?;
    drop(dest);
    Ok(())
}

/// Checks the copy; its snapshot version.
fn check(tmp: &Path) -> Result<i64, BackupError> {
    let open = |source| BackupError::Open { path: tmp.to_owned(), source };
    let store = Store::open(tmp).map_err(open)?;
    let found = store.integrity_check().map_err(open)?;
    if found != "ok" {
        return Err(BackupError::Check { path: tmp.to_owned(), found });
    }
    let version = store.snapshot_version().map_err(open)?;
    store.load_snapshot().map_err(open)?;
    Ok(version)
}
