//! The store's writer lock: `<store>/writer.lock`, held by `serve` for its whole life and by
//! the commands that write a tenant's data from outside it (`tenant import`, `tenant delete`).
//!
//! Reading commands (`devices`, `query`, `tenant export`) do not take it: LMDB gives them a
//! consistent snapshot beside a running collector. Writing beside it is not safe: a large write
//! from another process grows the map, after which every transaction of the running collector
//! fails (LMDB's `MDB_MAP_RESIZED`; the store adopts only sizes it grew itself), and the
//! collector's caches (series ids) would go stale. So those commands need it stopped, and this
//! lock makes that the only way. An advisory `flock`, released by the kernel when the process
//! ends, however it ends.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

/// The lock file's name inside the store directory.
pub const LOCK_FILE: &str = "writer.lock";

/// Held while it lives.
#[derive(Debug)]
pub struct WriterLock {
    _file: File,
}

/// Why the lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process holds it.
    #[error("{}: the store is in use by a running `ampel-collector serve` (or an import); stop it first", path.display())]
    Busy {
        /// The lock file.
        path: PathBuf,
    },
    /// The lock file could not be opened or locked.
    #[error("{}: {source}", path.display())]
    Io {
        /// The lock file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

/// Takes the writer lock of the store in `dir`, or says who holds it.
pub fn lock(dir: &Path) -> Result<WriterLock, LockError> {
    let path = dir.join(LOCK_FILE);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|source| LockError::Io { path: path.clone(), source })?;
    match file.try_lock() {
        Ok(()) => Ok(WriterLock { _file: file }),
        Err(TryLockError::WouldBlock) => Err(LockError::Busy { path }),
        Err(TryLockError::Error(source)) => Err(LockError::Io { path, source }),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_until_the_first_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let first = lock(dir.path()).unwrap();
        assert!(matches!(lock(dir.path()), Err(LockError::Busy { .. })));
        drop(first);
        lock(dir.path()).unwrap();
    }
}
