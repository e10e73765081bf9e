//! Crash-safe file writes for certificates and keys.
//!
//! Every file is written to a temporary name in the same directory, flushed to disk and then
//! moved into place, so a reader (the collector, mosquitto, an operator copying files) sees the
//! old file or the new one, never half of one. Key files get their mode when they are created,
//! so there is no moment at which a key is readable by others.

use std::fs::{self, DirBuilder, File, OpenOptions, Permissions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::PkiError;

/// Mode of a file that holds a private key: readable by its owner only.
pub(crate) const KEY_MODE: u32 = 0o600;
/// Mode of a certificate or CRL: anyone may read it.
pub(crate) const PUBLIC_MODE: u32 = 0o644;
/// Mode of a directory created to hold keys.
pub(crate) const DIR_MODE: u32 = 0o700;

/// Creates `dir` (and missing parents) with mode 0700. An existing directory is left as it is:
/// its mode is the operator's choice (mosquitto, for one, may need to read the server key).
pub(crate) fn create_private_dir(dir: &Path) -> Result<(), PkiError> {
    DirBuilder::new().recursive(true).mode(DIR_MODE).create(dir).map_err(PkiError::io("create directory", dir))
}

/// Writes `bytes` to `dest`, replacing any file there, atomically.
pub(crate) fn write_replace(dest: &Path, bytes: &[u8], mode: u32) -> Result<(), PkiError> {
    let tmp = write_temp(dest, bytes, mode)?;
    if let Err(e) = fs::rename(&tmp, dest) {
        let _ = fs::remove_file(&tmp);
        return Err(PkiError::io("rename a temporary file to", dest)(e));
    }
    sync_dir(dest)
}

/// Writes `bytes` to `dest` only if nothing is there yet, atomically: a hard link does not
/// replace an existing file, so two writers cannot both succeed and no reader sees half a file.
pub(crate) fn write_new(dest: &Path, bytes: &[u8], mode: u32) -> Result<(), PkiError> {
    let tmp = write_temp(dest, bytes, mode)?;
    let linked = fs::hard_link(&tmp, dest);
    let _ = fs::remove_file(&tmp);
    match linked {
        Ok(()) => sync_dir(dest),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(PkiError::FileExists { path: dest.to_owned() }),
        Err(e) => Err(PkiError::io("create", dest)(e)),
    }
}

/// The directory a file lives in (`.` for a bare file name).
fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Writes and flushes a temporary sibling of `dest` with exactly `mode` (whatever the umask).
fn write_temp(dest: &Path, bytes: &[u8], mode: u32) -> Result<PathBuf, PkiError> {
    let name = dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = parent_of(dest).join(format!(".{name}.tmp.{}.{:016x}", std::process::id(), rand::random::<u64>()));
    let result = (|| {
        let mut file = OpenOptions::new().write(true).create_new(true).mode(mode).open(&tmp)?;
        file.set_permissions(Permissions::from_mode(mode))?;
        file.write_all(bytes)?;
        file.sync_all()
    })();
    match result {
        Ok(()) => Ok(tmp),
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            Err(PkiError::io("write", dest)(e))
        }
    }
}

/// Flushes the directory entry of `path`, so the rename or link survives a power cut.
fn sync_dir(path: &Path) -> Result<(), PkiError> {
    let dir = parent_of(path);
    File::open(dir).and_then(|d| d.sync_all()).map_err(PkiError::io("sync directory", dir))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn replace_overwrites_and_sets_the_mode_and_leaves_no_temporary_files() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("k.pem");
        write_replace(&f, b"one", PUBLIC_MODE).unwrap();
        write_replace(&f, b"two", KEY_MODE).unwrap();
        assert_eq!(fs::read(&f).unwrap(), b"two");
        assert_eq!(mode(&f), KEY_MODE);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1, "temporary file left behind");
    }

    #[test]
    fn write_new_refuses_an_existing_file_and_keeps_its_content() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("d.key");
        write_new(&f, b"first", KEY_MODE).unwrap();
        let err = write_new(&f, b"second", KEY_MODE).unwrap_err();
        assert!(matches!(&err, PkiError::FileExists { path } if path == &f), "{err}");
        assert_eq!(fs::read(&f).unwrap(), b"first");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1, "temporary file left behind");
    }

    #[test]
    fn created_directories_are_private() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("a/pki");
        create_private_dir(&d).unwrap();
        assert_eq!(mode(&d), DIR_MODE);
    }
}
