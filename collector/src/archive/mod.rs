//! The report archive: every scheduled report is kept as a PDF file under
//! `<data-dir>/archive/` with its record (tenant, period, light, delivery status) in the
//! delivery store. `report list` shows the records, `report resend ID` sends a file again,
//! and download links serve the files.

use std::path::{Path, PathBuf};

/// Why an archive file could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// The file name is not one the archive makes (no separators, no leading dot).
    #[error("{0:?} is not an archive file name")]
    BadName(String),
    /// Reading or writing failed.
    #[error("archive file {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

/// The archive directory.
#[derive(Debug, Clone)]
pub struct Archive {
    dir: PathBuf,
}

/// The file name of a report: `<slot-ms>-<job>-ampel-<tenant>-<period>.pdf`, unique per
/// (job, slot, tenant), sorting by time.
pub fn file_name(job: &str, slot_ms: i64, tenant: &str, period_label: &str) -> String {
    format!("{slot_ms:013}-{job}-ampel-{tenant}-{period_label}.pdf")
}

fn check(name: &str) -> Result<(), ArchiveError> {
    if name.is_empty() || name.starts_with('.') || name.contains(['/', '\\', '\0']) {
        return Err(ArchiveError::BadName(name.to_owned()));
    }
    Ok(())
}

impl Archive {
    /// The archive in `dir` (normally `<data-dir>/archive`); created on first write.
    pub fn new(dir: &Path) -> Archive {
        Archive { dir: dir.to_owned() }
    }

    /// Writes a report file through a temporary name, so a reader never sees half a PDF.
    pub fn write(&self, name: &str, pdf: &[u8]) -> Result<(), ArchiveError> {
        check(name)?;
        let path = self.dir.join(name);
        let io = |source| ArchiveError::Io { path: path.clone(), source };
        // Reports are confidential: 0750 / 0640 whatever the umask.
        crate::files::create_dir_all(&self.dir).map_err(io)?;
        crate::files::write_atomic(&path, pdf, crate::files::FILE_MODE, true).map_err(io)
    }

    /// Reads a report file.
    pub fn read(&self, name: &str) -> Result<Vec<u8>, ArchiveError> {
        check(name)?;
        let path = self.dir.join(name);
        std::fs::read(&path).map_err(|source| ArchiveError::Io { path, source })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn files_round_trip_and_names_cannot_escape() {
        let dir = tempfile::tempdir().unwrap();
        let a = Archive::new(&dir.path().join("archive"));
        let name = file_name("weekly", 1_774_850_400_000, "acme", "week-2026-03-30");
        assert_eq!(name, "1774850400000-weekly-ampel-acme-week-2026-03-30.pdf");
        a.write(&name, b"%PDF").unwrap();
        assert_eq!(a.read(&name).unwrap(), b"%PDF");
        for bad in ["../store/data.mdb", "/etc/passwd", ".hidden", ""] {
            assert!(matches!(a.read(bad), Err(ArchiveError::BadName(_))), "{bad}");
        }
    }
}
