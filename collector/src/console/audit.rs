//! The console's audit log: every state change (login, logout, resend, ...) as one JSON line
//! — who, what, when, from which address — appended to `<data-dir>/console/audit.jsonl`
//! (mode 0600). A plain append-only file: it survives a lost delivery store, `tail -f` and
//! log shippers read it, and a line is written whole with one `write` call.

use std::collections::VecDeque;
use std::io::{BufRead, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// The file inside the console directory.
pub const FILE: &str = "audit.jsonl";

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
    #[error("audit log {}, line {line}: {source}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What the JSON parser said.
        source: serde_json::Error,
    },
}

/// The audit log file.
#[derive(Debug)]
pub struct AuditLog {
    path: PathBuf,
    // One writer at a time, so lines never interleave.
    write: Mutex<()>,
}

impl AuditLog {
    /// The log in directory `dir` (created, mode 0700, when the first event is written).
    pub fn new(dir: &Path) -> AuditLog {
        AuditLog { path: dir.join(FILE), write: Mutex::new(()) }
    }

    /// Appends `event` as one line.
    pub fn append(&self, event: &AuditEvent) -> Result<(), AuditError> {
        let io = |source| AuditError::Io { path: self.path.clone(), source };
        let mut line = serde_json::to_vec(event).map_err(|e| io(std::io::Error::other(e)))?;
        line.push(b'\n');
        let _guard = self.write.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(dir) = self.path.parent() {
            crate::files::create_dir_all(dir).map_err(io)?;
        }
        let mut file = std::fs::OpenOptions::new().append(true).create(true).mode(0o600).open(&self.path).map_err(io)?;
        file.write_all(&line).map_err(io)
    }

    /// The last `max` events, oldest first; no file yet is no events.
    pub fn tail(&self, max: usize) -> Result<Vec<AuditEvent>, AuditError> {
        let io = |source| AuditError::Io { path: self.path.clone(), source };
        let file = match std::fs::File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io(e)),
        };
        let mut last = VecDeque::with_capacity(max.min(4096));
        for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
            let line = line.map_err(io)?;
            let event =
                serde_json::from_str(&line).map_err(|source| AuditError::Corrupt { path: self.path.clone(), line: i + 1, source })?;
            if last.len() == max {
                last.pop_front();
            }
            last.push_back(event);
        }
        Ok(last.into())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn event(n: i64) -> AuditEvent {
        AuditEvent { at_ms: n, user: "ann".into(), action: "resend".into(), target: format!("report {n}"), client: "127.0.0.1".into() }
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
        std::fs::OpenOptions::new().append(true).open(dir.path().join(FILE)).unwrap().write_all(b"{\"at_ms\":\n").unwrap();
        let err = log.tail(10).unwrap_err();
        assert!(matches!(err, AuditError::Corrupt { line: 2, .. }), "{err}");
    }
}
