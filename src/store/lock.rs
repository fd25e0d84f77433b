//! One process per state database: an exclusive `flock` on `STATE.lock` next to the database,
//! holding the owner's pid so a refused process can name it.
//!
//! Guarantees: while an [`InstanceLock`] lives no other process can take one on the same state
//! path; the kernel releases it when the process ends, however it ends (kill -9 included), so a
//! stale lock file never blocks a restart. The file is never removed (removing it would let two
//! processes lock two different inodes of the same name).

use std::fs::{File, OpenOptions};
use std::io::{Read as _, Seek as _, Write as _};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "another scimsync ({}) holds the lock on {path}: only one process may apply changes from \
         one state database; stop the other one (`systemctl stop scimsync`) or use another state.path",
        holder.map_or_else(|| "pid unknown".to_owned(), |p| format!("pid {p}"))
    )]
    Held { holder: Option<u32>, path: PathBuf },
    #[error("cannot create the lock file {path} (check that the state directory is writable)")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Held for as long as the value lives.
#[derive(Debug)]
pub struct InstanceLock {
    _file: File,
    path: PathBuf,
}

impl InstanceLock {
    /// The lock file of a state database: `state.db` → `state.db.lock`.
    pub fn path_for(state_path: &Path) -> PathBuf {
        let mut name = state_path.as_os_str().to_owned();
        name.push(".lock");
        PathBuf::from(name)
    }

    /// Takes the lock without waiting, or names the process that holds it.
    pub fn acquire(state_path: &Path) -> Result<InstanceLock, LockError> {
        let path = Self::path_for(state_path);
        let io = |source| LockError::Io { path: path.clone(), source };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let mut options = OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&path).map_err(io)?;
        // Called through the trait: std's inherent `File::try_lock` is newer than our MSRV.
        match fs4::FileExt::try_lock(&file) {
            Ok(()) => {}
            Err(fs4::TryLockError::WouldBlock) => {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                return Err(LockError::Held { holder: text.trim().parse().ok(), path });
            }
            Err(fs4::TryLockError::Error(e)) => return Err(io(e)),
        }
        file.set_len(0).map_err(io)?;
        file.rewind().map_err(io)?;
        writeln!(file, "{}", std::process::id()).map_err(io)?;
        file.sync_all().map_err(io)?;
        Ok(InstanceLock { _file: file, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_is_refused_naming_the_holder_and_free_again_after_drop() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("state.db");
        let first = InstanceLock::acquire(&db).unwrap();
        assert_eq!(first.path(), dir.path().join("state.db.lock"));
        // flock locks belong to the open file description: a second open conflicts even within
        // one process, as it would from another one.
        let err = InstanceLock::acquire(&db).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with(&format!("another scimsync (pid {}) holds the lock on ", std::process::id())),
            "{msg}"
        );
        drop(first);
        InstanceLock::acquire(&db).expect("free again once dropped");
    }
}
