//! The report archive: every scheduled report is kept as a PDF file under
//! `<data-dir>/archive/` with its record (tenant, period, light, delivery status) in the
//! delivery store. `report list` shows the records, `report resend ID` sends a file again,
//! and download links serve the files.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
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

/// Refuses a name the archive would not make: one that could leave the directory, or a
/// hidden one (temporary files are hidden).
pub fn check(name: &str) -> Result<(), ArchiveError> {
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

/// A report file arriving from another collector (`tenant import`): written to a hidden
/// temporary file in the archive and hashed as it comes, then given its name by
/// [`Archive::settle`]. Dropped unsettled, the temporary file is removed.
pub struct Incoming {
    tmp: Option<PathBuf>,
    out: BufWriter<File>,
    hash: ring::digest::Context,
}

impl Incoming {
    /// Appends `bytes`.
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), ArchiveError> {
        self.hash.update(bytes);
        let path = self.tmp.clone().unwrap_or_default();
        self.out.write_all(bytes).map_err(|source| ArchiveError::Io { path, source })
    }
}

impl Drop for Incoming {
    fn drop(&mut self) {
        if let Some(tmp) = self.tmp.take() {
            let _ = std::fs::remove_file(tmp);
        }
    }
}

/// Where [`Archive::settle`] put a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settled {
    /// Its name in the archive.
    pub name: String,
    /// False: a file of that name with the same bytes was there already.
    pub created: bool,
}

/// The SHA-256 of a file, read in pieces.
fn digest_of(path: &Path) -> std::io::Result<ring::digest::Digest> {
    let mut f = File::open(path)?;
    let mut hash = ring::digest::Context::new(&ring::digest::SHA256);
    let mut buf = vec![0u8; 64 << 10];
    loop {
        match f.read(&mut buf)? {
            0 => return Ok(hash.finish()),
            n => hash.update(buf.get(..n).unwrap_or_default()),
        }
    }
}

/// The mail summary kept beside rendering `file`, which a resent or resumed delivery puts in
/// the mail body.
pub fn summary_name(file: &str) -> String {
    format!("{file}.summary")
}

/// Names for a PDF arriving as `name` when that is taken by other bytes: `name`, then
/// `<stem>-<alt>.pdf`, `<stem>-<alt>-2.pdf`, … `-99`.
pub fn alternatives<'a>(name: &'a str, alt: &'a str) -> impl Iterator<Item = String> + 'a {
    let stem = name.strip_suffix(".pdf").unwrap_or(name);
    std::iter::once(name.to_owned())
        .chain(std::iter::once(format!("{stem}-{alt}.pdf")))
        .chain((2..100).map(move |n| format!("{stem}-{alt}-{n}.pdf")))
}

impl Archive {
    /// Opens a report file for reading in pieces; returns it and its size.
    pub fn open(&self, name: &str) -> Result<(File, u64), ArchiveError> {
        check(name)?;
        let path = self.dir.join(name);
        let io = |source| ArchiveError::Io { path: path.clone(), source };
        let f = File::open(&path).map_err(io)?;
        let size = f.metadata().map_err(io)?.len();
        Ok((f, size))
    }

    /// Starts a file arriving from elsewhere (see [`Incoming`]).
    pub fn incoming(&self) -> Result<Incoming, ArchiveError> {
        use std::os::unix::fs::OpenOptionsExt;
        let tmp = self.dir.join(format!(".incoming-{:016x}.partial", rand::random::<u64>()));
        let io = |source| ArchiveError::Io { path: tmp.clone(), source };
        crate::files::create_dir_all(&self.dir).map_err(io)?;
        let f = std::fs::OpenOptions::new().write(true).create_new(true).mode(crate::files::FILE_MODE).open(&tmp).map_err(io)?;
        Ok(Incoming { tmp: Some(tmp), out: BufWriter::new(f), hash: ring::digest::Context::new(&ring::digest::SHA256) })
    }

    /// Removes the temporary files of arrivals a crash left behind. Only `tenant import`
    /// makes them, under the store's writer lock: call it holding that lock.
    pub fn clear_incoming(&self) -> Result<(), ArchiveError> {
        let io = |source| ArchiveError::Io { path: self.dir.clone(), source };
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io(e)),
        };
        for entry in entries {
            let name = entry.map_err(io)?.file_name();
            let name = name.to_string_lossy();
            if name.starts_with(".incoming-") && name.ends_with(".partial") {
                let path = self.dir.join(&*name);
                std::fs::remove_file(&path).map_err(|source| ArchiveError::Io { path, source })?;
            }
        }
        Ok(())
    }

    /// Gives an arrived file the first of `names` that is free or holds the same bytes (e.g.
    /// [`alternatives`]), never overwriting a file.
    pub fn settle(&self, mut incoming: Incoming, names: impl IntoIterator<Item = String>) -> Result<Settled, ArchiveError> {
        let tmp = incoming.tmp.clone().unwrap_or_default();
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| ArchiveError::Io { path, source }
        };
        incoming.out.flush().and_then(|()| incoming.out.get_ref().sync_all()).map_err(io(&tmp))?;
        let ours = std::mem::replace(&mut incoming.hash, ring::digest::Context::new(&ring::digest::SHA256)).finish();
        let mut last = None;
        for candidate in names {
            check(&candidate)?;
            let path = self.dir.join(&candidate);
            // A hard link fails on an existing name: nothing is ever overwritten.
            match std::fs::hard_link(&tmp, &path) {
                Ok(()) => return Ok(Settled { name: candidate, created: true }),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    if digest_of(&path).map_err(io(&path))?.as_ref() == ours.as_ref() {
                        return Ok(Settled { name: candidate, created: false });
                    }
                    last = Some(path);
                }
                Err(e) => return Err(io(&path)(e)),
            }
        }
        let taken = std::io::Error::new(std::io::ErrorKind::AlreadyExists, "taken by another file with other bytes");
        Err(io(&last.unwrap_or_else(|| self.dir.clone()))(taken))
    }

    /// Removes a report file; one already gone is no error.
    pub fn remove(&self, name: &str) -> Result<(), ArchiveError> {
        check(name)?;
        let path = self.dir.join(name);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(ArchiveError::Io { path, source: e }),
            _ => Ok(()),
        }
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

    #[test]
    fn an_arriving_file_never_overwrites_and_lands_once() {
        let dir = tempfile::tempdir().unwrap();
        let a = Archive::new(&dir.path().join("archive"));
        a.write("r.pdf", b"ours").unwrap();
        let arrive = |bytes: &[u8]| {
            let mut i = a.incoming().unwrap();
            i.write(bytes).unwrap();
            a.settle(i, alternatives("r.pdf", "from-eu-1")).unwrap()
        };
        assert_eq!(arrive(b"ours"), Settled { name: "r.pdf".into(), created: false }, "the same bytes: kept");
        assert_eq!(arrive(b"theirs"), Settled { name: "r-from-eu-1.pdf".into(), created: true });
        assert_eq!(arrive(b"theirs"), Settled { name: "r-from-eu-1.pdf".into(), created: false }, "again: found");
        assert_eq!(arrive(b"third"), Settled { name: "r-from-eu-1-2.pdf".into(), created: true });
        let mut i = a.incoming().unwrap();
        i.write(b"fourth").unwrap();
        assert!(matches!(a.settle(i, ["r.pdf".to_owned()]), Err(ArchiveError::Io { .. })), "the one name asked for is taken");
        assert_eq!(a.read("r.pdf").unwrap(), b"ours");
        assert_eq!(a.read("r-from-eu-1.pdf").unwrap(), b"theirs");
        // No temporary file is left, settled or dropped, or after a crash and the next import.
        drop(a.incoming().unwrap());
        std::mem::forget(a.incoming().unwrap());
        a.clear_incoming().unwrap();
        let mut left: Vec<String> =
            std::fs::read_dir(dir.path().join("archive")).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        left.sort();
        assert_eq!(left, ["r-from-eu-1-2.pdf", "r-from-eu-1.pdf", "r.pdf"]);
    }
}
