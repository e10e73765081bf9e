//! Batch sequence numbers that only ever grow, across restarts and crashes.
//!
//! The collector acknowledges and de-duplicates by `(device, seq)`, so a number used twice would
//! make it throw away new data as a duplicate. Writing the counter on every batch would cost an
//! fsync per batch; instead the agent reserves a block: it durably writes "the next run starts at
//! N + block" before handing out numbers below it. A crash or restart skips the rest of the block
//! (gaps are harmless), and a number is never reused.
//!
//! The file `<state-dir>/seq` holds one decimal number and a newline. It is replaced atomically
//! (write a temporary file, fsync, rename, fsync the directory).

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Why the sequence counter could not be read or advanced.
#[derive(Debug, thiserror::Error)]
pub enum SeqError {
    /// Reading, writing or syncing the counter file (or creating its directory) failed.
    #[error("sequence counter {}: {error}", path.display())]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// What the OS said.
        error: std::io::Error,
    },
    /// The counter file holds something other than a number. Starting over could reuse
    /// numbers, so the agent refuses; an operator who knows better can delete the file.
    #[error("sequence counter {} is corrupt ({content:?}); delete it only if the collector should accept this device's numbers from 1 again", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What it held (at most 64 bytes).
        content: String,
    },
    /// All 2^64 numbers are used up.
    #[error("sequence numbers exhausted")]
    Exhausted,
}

/// The persisted counter.
#[derive(Debug)]
pub struct SeqStore {
    dir: PathBuf,
    path: PathBuf,
    next: u64,
    reserved_until: u64,
    block: u64,
}

/// Numbers reserved per fsync. Kept well below the collector's dedupe window (1024): every
/// restart skips up to a block, and batches spooled before and after a restart travel together
/// when the agent catches up — their numbers must stay inside the window, or the collector would
/// take the older ones for duplicates.
pub const BLOCK: u64 = 64;

impl SeqStore {
    /// Opens (creating if needed) the counter in `state_dir` and reserves the first block.
    pub fn open(state_dir: &Path) -> Result<SeqStore, SeqError> {
        SeqStore::open_with_block(state_dir, BLOCK)
    }

    /// Like [`SeqStore::open`] with a chosen block size (at least 1).
    pub fn open_with_block(state_dir: &Path, block: u64) -> Result<SeqStore, SeqError> {
        crate::files::create_dir_all(state_dir).map_err(|error| SeqError::Io { path: state_dir.to_owned(), error })?;
        let path = state_dir.join("seq");
        let next = match fs::read_to_string(&path) {
            Ok(text) => text
                .trim()
                .parse::<u64>()
                .map_err(|_| SeqError::Corrupt { path: path.clone(), content: text.chars().take(64).collect() })?,
            // Sequence numbers start at 1; 0 marks a batch that was never numbered (`once`).
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 1,
            Err(error) => return Err(SeqError::Io { path, error }),
        };
        let mut store = SeqStore { dir: state_dir.to_owned(), path, next, reserved_until: next, block: block.max(1) };
        store.reserve()?;
        Ok(store)
    }

    /// The next sequence number.
    pub fn next_seq(&mut self) -> Result<u64, SeqError> {
        if self.next >= self.reserved_until {
            self.reserve()?;
        }
        let seq = self.next;
        self.next += 1;
        Ok(seq)
    }

    /// Durably records that the next run starts after a fresh block.
    fn reserve(&mut self) -> Result<(), SeqError> {
        let until = self.next.checked_add(self.block).ok_or(SeqError::Exhausted)?;
        let tmp = self.dir.join("seq.tmp");
        let io = |path: &Path| {
            let path = path.to_owned();
            move |error| SeqError::Io { path, error }
        };
        let mut f = {
            use std::os::unix::fs::OpenOptionsExt;
            fs::OpenOptions::new().write(true).create(true).truncate(true).mode(crate::files::FILE_MODE).open(&tmp).map_err(io(&tmp))?
        };
        writeln!(f, "{until}").map_err(io(&tmp))?;
        f.sync_all().map_err(io(&tmp))?;
        drop(f);
        fs::rename(&tmp, &self.path).map_err(io(&self.path))?;
        // The rename is durable only once the directory entry is.
        File::open(&self.dir).and_then(|d| d.sync_all()).map_err(io(&self.dir))?;
        self.reserved_until = until;
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn numbers_grow_across_restarts_and_are_never_reused() {
        let dir = tempfile::tempdir().unwrap();
        let mut seen = Vec::new();
        for _run in 0..4 {
            // Each run takes a different number of batches, some crossing block borders.
            let mut s = SeqStore::open_with_block(dir.path(), 4).unwrap();
            for _ in 0..(3 + seen.len() % 5) {
                seen.push(s.next_seq().unwrap());
            }
        } // dropped without any shutdown step: like a crash
        assert_eq!(seen[0], 1);
        assert!(seen.windows(2).all(|w| w[0] < w[1]), "{seen:?}");
    }

    #[test]
    fn a_new_instance_starts_after_the_reserved_block() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = SeqStore::open(dir.path()).unwrap();
        assert_eq!((a.next_seq().unwrap(), a.next_seq().unwrap()), (1, 2));
        let mut b = SeqStore::open(dir.path()).unwrap();
        assert_eq!(b.next_seq().unwrap(), 1 + BLOCK);
        assert_eq!(fs::read_to_string(dir.path().join("seq")).unwrap(), format!("{}\n", 1 + 2 * BLOCK));
    }

    #[test]
    fn a_corrupt_counter_is_refused_not_reset() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("seq"), "garbage").unwrap();
        let e = SeqStore::open(dir.path()).unwrap_err();
        assert!(matches!(e, SeqError::Corrupt { .. }));
        assert!(e.to_string().contains("seq"), "{e}");
    }

    #[test]
    fn the_state_dir_is_created() {
        let dir = tempfile::tempdir().unwrap();
        let nested = dir.path().join("a/b");
        assert_eq!(SeqStore::open(&nested).unwrap().next_seq().unwrap(), 1);
    }
}
