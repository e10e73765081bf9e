//! The console's audit log: every state change (login, logout, resend, ...) as one JSON line
//! — who, what, when, from which address — appended to `<data-dir>/console/audit.jsonl`
//! (mode 0600). A plain append-only file: it survives a lost delivery store, `tail -f` and
//! log shippers read it, and a line is written whole with one `write` call.
//!
//! The file is rotated by size like logrotate's numbered scheme: when a line would take it
//! past [`ROTATE_BYTES`], `audit.jsonl.1` becomes `.2` and so on up to [`KEEP`] files (the
//! oldest is dropped), the live file becomes `audit.jsonl.1`, and the line starts a new live
//! file (0600, as the renamed ones stay). The audit page reads the newest events from the end
//! of the live file and, when it holds fewer, of `audit.jsonl.1`: at most
//! [`TAIL_BYTES_PER_EVENT`] bytes per event asked for from each file, never a whole file.

use std::collections::VecDeque;
use std::io::{BufRead, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// The file inside the console directory.
pub const FILE: &str = "audit.jsonl";
/// Size at which the live file is rotated.
pub const ROTATE_BYTES: u64 = 10 << 20;
/// Rotated files kept beside the live one (`audit.jsonl.1` … `audit.jsonl.5`).
pub const KEEP: usize = 5;
/// Bytes read from the end of a file per event asked for: an event line is a few hundred
/// bytes, so this reads enough lines without reading a whole file.
pub const TAIL_BYTES_PER_EVENT: u64 = 4096;

/// One state change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// When, Unix ms.
    pub at_ms: i64,
    /// The user who did it (for a failed login: the name that was tried).
    pub user: String,
    /// What: `login`, `login-failed`, `logout`, `resend`, ...
    pub action: String,
    /// On what: a report id, a tenant; empty when the action needs no object.
    pub target: String,
    /// The client's address as the listener saw it.
    pub client: String,
}

/// Why the audit log could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// Opening, writing or reading the file failed.
    #[error("audit log {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A line is not an event (the file was edited or cut short).
    #[error("audit log {}, line at byte {offset}: {source}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Where the line starts in the file.
        offset: u64,
        /// What the JSON parser said.
        source: serde_json::Error,
    },
}

/// The audit log file, rotated by size.
#[derive(Debug)]
pub struct AuditLog {
    path: PathBuf,
    rotate_bytes: u64,
    keep: usize,
    // One reader or writer at a time: lines never interleave, and a reader never sees half a
    // line or a rotation half done.
    lock: Mutex<()>,
}

fn io_at(path: &Path) -> impl Fn(std::io::Error) -> AuditError + '_ {
    move |source| AuditError::Io { path: path.to_owned(), source }
}

impl AuditLog {
    /// The log in directory `dir` (created, mode 0700, when the first event is written),
    /// rotated at [`ROTATE_BYTES`], keeping [`KEEP`] old files.
    pub fn new(dir: &Path) -> AuditLog {
        AuditLog::with_rotation(dir, ROTATE_BYTES, KEEP)
    }

    /// The log in `dir`, rotated when a line would take it past `rotate_bytes`, keeping `keep`
    /// old files (at least one: the audit page reads the last one).
    pub fn with_rotation(dir: &Path, rotate_bytes: u64, keep: usize) -> AuditLog {
        AuditLog { path: dir.join(FILE), rotate_bytes, keep: keep.max(1), lock: Mutex::new(()) }
    }

    /// The `n`th rotated file: `audit.jsonl.n`.
    fn rotated(&self, n: usize) -> PathBuf {
        let mut name = self.path.clone().into_os_string();
        name.push(format!(".{n}"));
        PathBuf::from(name)
    }

    fn open(&self) -> Result<std::fs::File, AuditError> {
        std::fs::OpenOptions::new().append(true).create(true).mode(0o600).open(&self.path).map_err(io_at(&self.path))
    }

    /// Appends `event` as one line, rotating first when the line would take the file past
    /// the rotation size.
    pub fn append(&self, event: &AuditEvent) -> Result<(), AuditError> {
        let io = io_at(&self.path);
        let mut line = serde_json::to_vec(event).map_err(|e| io(std::io::Error::other(e)))?;
        line.push(b'\n');
        let _guard = self.lock.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(dir) = self.path.parent() {
            crate::files::create_dir_all(dir).map_err(&io)?;
        }
        let mut file = self.open()?;
        let size = file.metadata().map_err(&io)?.len();
        if size > 0 && size.saturating_add(line.len() as u64) > self.rotate_bytes {
            drop(file);
            self.rotate()?;
            file = self.open()?;
        }
        file.write_all(&line).map_err(io)
    }

    /// Shifts `audit.jsonl.n` to `.n+1` (the oldest beyond [`KEEP`] is overwritten) and the
    /// live file to `.1`. Renames keep each file's mode.
    fn rotate(&self) -> Result<(), AuditError> {
        for n in (1..self.keep).rev() {
            let (from, to) = (self.rotated(n), self.rotated(n + 1));
            match std::fs::rename(&from, &to) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io_at(&from)(e)),
                _ => {}
            }
        }
        std::fs::rename(&self.path, self.rotated(1)).map_err(io_at(&self.path))?;
        tracing::info!(file = %self.path.display(), "audit log rotated");
        Ok(())
    }

    /// The last `max` events, oldest first, from the live file and, when it holds fewer, the
    /// last rotated one; no file yet is no events.
    pub fn tail(&self, max: usize) -> Result<Vec<AuditEvent>, AuditError> {
        let _guard = self.lock.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut events = tail_of(&self.path, max)?;
        if events.len() < max {
            let mut older = tail_of(&self.rotated(1), max - events.len())?;
            older.append(&mut events);
            events = older;
        }
        Ok(events)
    }
}

/// The last `max` events of the file at `path`, oldest first, read from at most
/// `max` × [`TAIL_BYTES_PER_EVENT`] bytes at its end; no file is no events.
fn tail_of(path: &Path, max: usize) -> Result<Vec<AuditEvent>, AuditError> {
    let io = io_at(path);
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(e)),
    };
    let len = file.metadata().map_err(&io)?.len();
    let window = (max as u64).saturating_mul(TAIL_BYTES_PER_EVENT);
    if max == 0 || len == 0 {
        return Ok(Vec::new());
    }
    // Start one byte early: if that byte ends a line, only it is skipped; else the rest of
    // the line cut by the window is.
    let start = len.saturating_sub(window).saturating_sub(1);
    file.seek(SeekFrom::Start(start)).map_err(&io)?;
    let mut reader = std::io::BufReader::new(file.take(len - start));
    let mut offset = start;
    let mut buf = Vec::new();
    if start > 0 {
        offset += reader.read_until(b'\n', &mut buf).map_err(&io)? as u64;
    }
    let mut last = VecDeque::with_capacity(max.min(4096));
    loop {
        buf.clear();
        let n = reader.read_until(b'\n', &mut buf).map_err(&io)?;
        if n == 0 {
            break;
        }
        let line = buf.strip_suffix(b"\n").unwrap_or(&buf);
        let event = serde_json::from_slice(line).map_err(|source| AuditError::Corrupt { path: path.to_owned(), offset, source })?;
        offset += n as u64;
        if last.len() == max {
            last.pop_front();
        }
        last.push_back(event);
    }
    Ok(last.into())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn event(n: i64) -> AuditEvent {
        // Every line the same length (for the rotation sizes).
        AuditEvent {
            at_ms: 1_000 + n,
            user: "ann".into(),
            action: "resend".into(),
            target: format!("report {n:03}"),
            client: "127.0.0.1".into(),
        }
    }

    #[test]
    fn events_are_appended_privately_and_read_back_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::new(&dir.path().join("console"));
        assert!(log.tail(10).unwrap().is_empty());
        for n in 0..5 {
            log.append(&event(n)).unwrap();
        }
        assert_eq!(log.tail(2).unwrap(), [event(3), event(4)]);
        let mode = std::fs::metadata(dir.path().join("console").join(FILE)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn a_damaged_line_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::new(dir.path());
        log.append(&event(1)).unwrap();
        let first = std::fs::metadata(dir.path().join(FILE)).unwrap().len();
        std::fs::OpenOptions::new().append(true).open(dir.path().join(FILE)).unwrap().write_all(b"{\"at_ms\":\n").unwrap();
        let err = log.tail(10).unwrap_err();
        assert!(matches!(err, AuditError::Corrupt { offset, .. } if offset == first), "{err}");
    }

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    /// Rotation at a small size: every file 0600, at most `keep` old ones, and the newest
    /// events read across the live and the last rotated file, newest last.
    #[test]
    fn rotated_files_are_private_bounded_and_read_across_the_boundary() {
        let dir = tempfile::tempdir().unwrap();
        let line = serde_json::to_vec(&event(0)).unwrap().len() as u64 + 1;
        // Four events of this size to a file.
        let log = AuditLog::with_rotation(dir.path(), 4 * line + 2, 2);
        for n in 0..6 {
            log.append(&event(n)).unwrap();
        }
        // 0..4 rotated, 4 and 5 live: the last five come from both.
        assert_eq!(log.tail(5).unwrap(), (1..6).map(event).collect::<Vec<_>>());
        assert_eq!(log.tail(2).unwrap(), [event(4), event(5)]);
        for n in 6..20 {
            log.append(&event(n)).unwrap();
        }
        let mut files: Vec<String> =
            std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        files.sort();
        assert_eq!(files, ["audit.jsonl", "audit.jsonl.1", "audit.jsonl.2"]);
        for f in &files {
            assert_eq!(mode(&dir.path().join(f)), 0o600, "{f}");
            assert!(std::fs::metadata(dir.path().join(f)).unwrap().len() <= 4 * line + 2, "{f}");
        }
        // Only the live and the last rotated file are read: at most eight events here.
        assert_eq!(log.tail(100).unwrap(), (12..20).map(event).collect::<Vec<_>>());
    }

    /// A tail starting inside a long file reads only its end, and from a line's start.
    #[test]
    fn the_tail_of_a_long_file_starts_at_a_whole_line() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::new(dir.path());
        let long = |n: i64| AuditEvent { target: "x".repeat(3000 + n as usize), ..event(n) };
        for n in 0..10 {
            log.append(&long(n)).unwrap();
        }
        assert_eq!(log.tail(3).unwrap(), (7..10).map(long).collect::<Vec<_>>());
    }
}
