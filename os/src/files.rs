//! Files named by the configuration, read with a size limit suited to what they hold.
//!
//! A path in the configuration may name anything: `/dev/zero` (an endless read that once took
//! `check-config` past 2.8 GB), a FIFO (a read that blocks forever), a directory or a file far
//! larger than what it should hold. [`read_limited`] refuses what is not a regular file before
//! opening it and never reads more than its limit plus one byte, so the caller's error arrives
//! at once and memory stays bounded. The errors are `std::io::Error`s, so every caller keeps
//! its own error type naming the key and the path.
//!
//! Directories and data files are created with explicit modes ([`create_dir_all`],
//! [`write_atomic`]), so a umask of 000 does not make reports or mails carrying bearer links
//! world-readable.
//!
//! The agent and the collector add the limits of the files only they read
//! (`ampel_agent::files`, `ampel_collector::files`).

use std::io::Read;
use std::path::Path;

/// A TOML configuration file.
pub const CONFIG_MAX: u64 = 1 << 20;
/// A PEM file of certificates (a CA bundle, a chain).
pub const CERT_MAX: u64 = 1 << 20;
/// A PEM private key.
pub const KEY_MAX: u64 = 64 << 10;
/// A password file.
pub const PASSWORD_MAX: u64 = 4 << 10;

/// What kind of thing `meta` describes, for a message.
fn kind(meta: &std::fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    if t.is_dir() {
        "a directory"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

/// Checks that `path` is a regular file (symbolic links followed) of at most `max` bytes.
pub fn check_regular(path: &Path, max: u64) -> std::io::Result<()> {
    let meta = std::fs::metadata(path)?;
    if !meta.is_file() {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{}, not a regular file", kind(&meta))));
    }
    if meta.len() > max {
        return Err(too_large(max));
    }
    Ok(())
}

fn too_large(max: u64) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, format!("larger than {} bytes, the most this file may hold", max))
}

/// Reads the regular file `path`, refusing anything else and anything over `max` bytes (also
/// when the file grows while it is read, or claims size 0 as `/proc` files do).
pub fn read_limited(path: &Path, max: u64) -> std::io::Result<Vec<u8>> {
    check_regular(path, max)?;
    let file = std::fs::File::open(path)?;
    let mut bytes = Vec::new();
    file.take(max.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(too_large(max));
    }
    Ok(bytes)
}

/// [`read_limited`] as UTF-8 text appended to `buf`, which a caller reading every cycle keeps
/// to avoid an allocation per read.
pub fn read_limited_into(path: &Path, max: u64, buf: &mut String) -> std::io::Result<()> {
    check_regular(path, max)?;
    let start = buf.len();
    std::fs::File::open(path)?.take(max.saturating_add(1)).read_to_string(buf)?;
    if (buf.len() - start) as u64 > max {
        buf.truncate(start);
        return Err(too_large(max));
    }
    Ok(())
}

/// [`read_limited`] as UTF-8 text.
pub fn read_limited_to_string(path: &Path, max: u64) -> std::io::Result<String> {
    String::from_utf8(read_limited(path, max)?).map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "not UTF-8 text"))
}

/// Checks that `path` can be the directory something is kept in: a directory if it exists,
/// else below a directory that exists.
pub fn check_dir(path: &Path) -> std::io::Result<()> {
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(meta) => Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{}, not a directory", kind(&meta)))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // Created at start: the nearest existing ancestor must be a directory.
            let mut up = path.parent();
            while let Some(dir) = up.filter(|d| !d.as_os_str().is_empty()) {
                if let Ok(meta) = std::fs::metadata(dir) {
                    return if meta.is_dir() {
                        Ok(())
                    } else {
                        Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{} is {}", dir.display(), kind(&meta))))
                    };
                }
                up = dir.parent();
            }
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// Directories we keep data in: owner and group only, whatever the umask (a umask can only
/// take more away).
pub const DIR_MODE: u32 = 0o750;
/// Data files we write: owner read-write, group read.
pub const FILE_MODE: u32 = 0o640;

/// Creates `path` and its missing parents with [`DIR_MODE`]; existing ones are left as they are.
pub fn create_dir_all(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new().recursive(true).mode(DIR_MODE).create(path)
}

/// Writes `bytes` to `path` through a temporary sibling and a rename, with `mode` from the
/// first byte on ([`FILE_MODE`] for data, `0o600` for secrets): a reader never sees half a
/// file, and neither the umask nor a moment of a wider mode decides who may read it. `durable`:
/// synced to disk before the rename (a crash leaves the old or the new file, never an empty
/// one); positions saved every cycle skip that.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32, durable: bool) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    let written = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(mode).open(&tmp).and_then(|mut f| {
        // A temporary file left by a crash keeps its old mode; set it.
        f.set_permissions(std::fs::Permissions::from_mode(mode))?;
        f.write_all(bytes)?;
        if durable { f.sync_all() } else { Ok(()) }
    });
    match written.and_then(|()| std::fs::rename(&tmp, path)) {
        Ok(()) => Ok(()),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn devices_fifos_and_directories_are_refused_at_once_and_large_files_by_their_limit() {
        let dir = tempfile::tempdir().unwrap();
        let started = std::time::Instant::now();
        let err = read_limited(Path::new("/dev/zero"), 1024).unwrap_err();
        assert!(err.to_string().contains("character device"), "{err}");
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        assert!(read_limited(&fifo, 1024).unwrap_err().to_string().contains("FIFO"), "a FIFO is refused before it is opened");
        assert!(read_limited(dir.path(), 1024).unwrap_err().to_string().contains("directory"));
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'x'; 2000]).unwrap();
        assert!(read_limited(&big, 1999).unwrap_err().to_string().contains("larger than 1999 bytes"));
        assert_eq!(read_limited(&big, 2000).unwrap().len(), 2000);
        // /proc files say they are empty; the limit still holds while reading.
        assert!(read_limited(Path::new("/proc/self/maps"), 10).is_err());
        assert!(!read_limited_to_string(Path::new("/proc/self/maps"), 1 << 20).unwrap().is_empty());
    }

    #[test]
    fn directories_and_files_get_their_modes_whatever_the_umask_allows() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let deep = dir.path().join("a/b");
        create_dir_all(&deep).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        // The test's umask may take bits away, never add them.
        assert_eq!(mode(&deep) & !DIR_MODE, 0);
        assert_eq!(mode(&dir.path().join("a")) & !DIR_MODE, 0);
        let f = deep.join("f");
        std::fs::write(deep.join(".f.tmp"), b"stale").unwrap();
        std::fs::set_permissions(deep.join(".f.tmp"), std::fs::Permissions::from_mode(0o666)).unwrap();
        write_atomic(&f, b"data", FILE_MODE, true).unwrap();
        assert_eq!(std::fs::read(&f).unwrap(), b"data");
        assert_eq!(mode(&f), FILE_MODE, "a stale temporary file's mode is not kept");
        let secret = deep.join("secret");
        write_atomic(&secret, b"s", 0o600, false).unwrap();
        assert_eq!(mode(&secret), 0o600);
    }

    #[test]
    fn a_directory_to_keep_things_in_must_be_one_or_be_creatable() {
        let dir = tempfile::tempdir().unwrap();
        check_dir(dir.path()).unwrap();
        check_dir(&dir.path().join("new/deeper")).unwrap();
        assert!(check_dir(Path::new("/dev/zero")).unwrap_err().to_string().contains("character device"));
        assert!(check_dir(Path::new("/dev/zero/store")).is_err(), "below a device");
    }
}
