//! Following a log file like `tail -F`, remembering where we were across restarts.
//!
//! - **Rename rotation** (logrotate's default, Suricata's `rotate-interval`): when the path names
//!   a new inode, what was written to the old file is read to its end first, then the new file
//!   from its start.
//! - **Copy-truncate**: when the file is shorter than where we are, it was truncated; reading
//!   starts again at 0.
//! - **Partial last line**: bytes after the last newline wait until their line is complete. The
//!   saved offset never covers them, so a restart reads the line whole.
//! - **Restart**: `(device, inode, offset)` of the last complete line is written to a position
//!   file (write to a temporary file, then rename) after every poll that moved. On start, the
//!   same inode resumes at that offset. When the file was rotated while we were down, the old
//!   inode is looked for beside it (`eve.json.1`, `eve.json-2025…`) and finished first; the new
//!   file is then read from 0.
//!   Without a position file the file is read from its end, unless `from_beginning`, so a first
//!   start does not replay a long history.
//!
//! Lines longer than [`MAX_LINE`] are skipped whole and counted in [`Follower::overlong`].

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Longest line kept; anything longer is counted and dropped (bounds memory on garbage input).
pub const MAX_LINE: usize = 1 << 20;

/// Read size: 16 KiB keeps three followers under 50 KiB resident and costs about 3 % throughput
/// against 64 KiB.
const READ_BUF: usize = 16 * 1024;

/// One followed file.
pub struct Follower {
    path: PathBuf,
    pos_file: Option<PathBuf>,
    file: Option<File>,
    id: (u64, u64),
    /// Offset just past the last complete line handed out.
    offset: u64,
    partial: Vec<u8>,
    skipping: bool,
    buf: Vec<u8>,
    /// Where to start the first time the file is opened.
    resume: Option<((u64, u64), u64)>,
    /// Without a saved position: the file and its size when we started, to begin at its end.
    start_at_end: Option<((u64, u64), u64)>,
    saved: Option<((u64, u64), u64)>,
    /// Lines dropped for exceeding [`MAX_LINE`].
    pub overlong: u64,
    /// Rotations noticed.
    pub rotations: u64,
    /// Truncations noticed.
    pub truncations: u64,
}

impl Follower {
    /// Follows `path`; keeps its position in `pos_file` (none: position is not kept).
    pub fn new(path: &Path, pos_file: Option<PathBuf>, from_beginning: bool) -> Follower {
        let resume = pos_file.as_deref().and_then(load_pos);
        let start_at_end = match std::fs::metadata(path) {
            Ok(m) if resume.is_none() && !from_beginning => Some(((m.dev(), m.ino()), m.len())),
            _ => None,
        };
        Follower {
            path: path.to_owned(),
            pos_file,
            file: None,
            id: (0, 0),
            offset: 0,
            partial: Vec::new(),
            skipping: false,
            buf: Vec::new(),
            resume,
            start_at_end,
            saved: resume,
            overlong: 0,
            rotations: 0,
            truncations: 0,
        }
    }

    /// The followed path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn open(&mut self) -> io::Result<bool> {
        let mut f = match File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(e),
        };
        let m = f.metadata()?;
        let mut id = (m.dev(), m.ino());
        let start = match self.resume.take() {
            Some((rid, off)) if rid == id && off <= m.len() => off,
            // Rotated while we were down: finish the old file first if it is still beside the
            // new one (eve.json.1, eve.json-20250101); the next poll moves on to the new one.
            Some((rid, off)) => match find_rotated(&self.path, rid) {
                Some((old, old_meta)) if off <= old_meta.len() => {
                    tracing::info!(path = %self.path.display(), old = %old.display(), "rotated while stopped; finishing the old file first");
                    f = File::open(&old)?;
                    id = rid;
                    off
                }
                _ => 0,
            },
            None => match self.start_at_end {
                Some((sid, len)) if sid == id && len <= m.len() => len,
                _ => 0,
            },
        };
        self.start_at_end = None;
        f.seek(SeekFrom::Start(start))?;
        self.file = Some(f);
        self.id = id;
        self.offset = start;
        self.partial.clear();
        self.skipping = false;
        Ok(true)
    }

    /// Reads what was appended since the last call, at most about `max_bytes`, handing each
    /// complete line (without its `\n` or `\r\n`) to `on_line`. Returns the bytes read.
    pub fn poll(&mut self, max_bytes: u64, on_line: &mut dyn FnMut(&[u8])) -> io::Result<u64> {
        let mut total = 0;
        if self.file.is_none() && !self.open()? {
            return Ok(0);
        }
        // At most one switch to a new file per poll.
        for _ in 0..2 {
            let Some(file) = self.file.as_ref() else { break };
            let len = file.metadata()?.len();
            if len < self.offset + self.partial.len() as u64 {
                tracing::info!(path = %self.path.display(), "file was truncated; reading it from the start");
                self.truncations += 1;
                if let Some(f) = self.file.as_mut() {
                    f.seek(SeekFrom::Start(0))?;
                }
                self.offset = 0;
                self.partial.clear();
                self.skipping = false;
            }
            let (n, eof) = self.read_lines(max_bytes.saturating_sub(total), on_line)?;
            total += n;
            if !eof {
                break;
            }
            let now_id = match std::fs::metadata(&self.path) {
                Ok(m) => (m.dev(), m.ino()),
                // Renamed away, the new one not yet created: keep reading the old one.
                Err(e) if e.kind() == io::ErrorKind::NotFound => break,
                Err(e) => return Err(e),
            };
            if now_id == self.id {
                break;
            }
            // Rotated: the old file may have grown since we hit its end; finish it.
            let (n, _) = self.read_lines(u64::MAX, on_line)?;
            total += n;
            if !self.partial.is_empty() && !self.skipping {
                on_line(trim_cr(&self.partial));
            }
            tracing::info!(path = %self.path.display(), "file was rotated; following the new one");
            self.rotations += 1;
            self.file = None;
            self.resume = None;
            if !self.open()? {
                break;
            }
        }
        Ok(total)
    }

    /// Hands out a last line that has no newline (for reading a whole file that is complete).
    pub fn finish(&mut self, on_line: &mut dyn FnMut(&[u8])) {
        if !self.partial.is_empty() && !self.skipping {
            on_line(trim_cr(&self.partial));
            self.offset += self.partial.len() as u64;
        }
        self.partial.clear();
    }

    /// Reads up to `max_bytes`; returns bytes read and whether the end of the file was reached.
    fn read_lines(&mut self, max_bytes: u64, on_line: &mut dyn FnMut(&[u8])) -> io::Result<(u64, bool)> {
        let mut total = 0u64;
        if self.buf.len() != READ_BUF {
            self.buf = vec![0; READ_BUF];
        }
        let Some(file) = self.file.as_mut() else { return Ok((0, true)) };
        loop {
            if total >= max_bytes {
                return Ok((total, false));
            }
            let n = match file.read(&mut self.buf) {
                Ok(0) => return Ok((total, true)),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            total += n as u64;
            let chunk = &self.buf[..n];
            let mut start = 0;
            while let Some(i) = find_newline(&chunk[start..]) {
                let end = start + i;
                let line = &chunk[start..end];
                if self.skipping {
                    self.skipping = false;
                    self.offset += (self.partial.len() + line.len() + 1) as u64;
                    self.partial.clear();
                } else if self.partial.len() + line.len() > MAX_LINE {
                    self.overlong += 1;
                    self.offset += (self.partial.len() + line.len() + 1) as u64;
                    self.partial = Vec::new();
                } else if self.partial.is_empty() {
                    on_line(trim_cr(line));
                    self.offset += line.len() as u64 + 1;
                } else {
                    self.partial.extend_from_slice(line);
                    on_line(trim_cr(&self.partial));
                    self.offset += self.partial.len() as u64 + 1;
                    self.partial.clear();
                }
                start = end + 1;
            }
            let rest = &chunk[start..];
            if self.skipping {
                // Count skipped bytes in `partial`'s length without keeping them.
                self.offset += rest.len() as u64;
            } else if self.partial.len() + rest.len() > MAX_LINE {
                self.overlong += 1;
                self.skipping = true;
                self.offset += (self.partial.len() + rest.len()) as u64;
                self.partial = Vec::new();
            } else {
                self.partial.extend_from_slice(rest);
            }
        }
    }

    /// Saves the position reached so far. Called once what was read is safe elsewhere (the
    /// run loop: after the batch is in the spool), so a crash between reading and spooling
    /// re-reads those lines instead of skipping them.
    pub fn commit(&mut self) {
        let Some(pos_file) = &self.pos_file else { return };
        if self.file.is_none() {
            return;
        }
        let now = Some((self.id, self.offset));
        if self.saved == now {
            return;
        }
        let text = format!("{} {} {}\n", self.id.0, self.id.1, self.offset);
        match crate::files::write_atomic(pos_file, text.as_bytes(), crate::files::FILE_MODE, false) {
            Ok(()) => self.saved = now,
            Err(e) => tracing::warn!(file = %pos_file.display(), error = %e, "cannot save the read position"),
        }
    }
}

/// Index of the first `\n`, eight bytes at a time (EVE lines are kilobytes long; a bytewise
/// search was a fifth of the parse time).
pub fn find_newline(s: &[u8]) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    const NL: u64 = LO * b'\n' as u64;
    let mut words = s.chunks_exact(8);
    let mut i = 0;
    for w in &mut words {
        let mut b = [0u8; 8];
        b.copy_from_slice(w);
        let x = u64::from_le_bytes(b) ^ NL;
        // A byte of x is zero where s has '\n'; the lowest flagged byte is exact.
        let t = x.wrapping_sub(LO) & !x & HI;
        if t != 0 {
            return Some(i + (t.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    words.remainder().iter().position(|&c| c == b'\n').map(|p| i + p)
}

/// A file beside `path` whose name starts with `path`'s and that is the inode `id`.
fn find_rotated(path: &Path, id: (u64, u64)) -> Option<(PathBuf, std::fs::Metadata)> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path.file_name()?.as_encoded_bytes();
    std::fs::read_dir(dir).ok()?.flatten().find_map(|e| {
        if !e.file_name().as_encoded_bytes().starts_with(name) {
            return None;
        }
        let m = e.metadata().ok()?;
        ((m.dev(), m.ino()) == id).then(|| (e.path(), m))
    })
}

fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn load_pos(path: &Path) -> Option<((u64, u64), u64)> {
    let text = std::fs::read_to_string(path).ok()?;
    let mut it = text.split_whitespace().map(str::parse::<u64>);
    let (dev, ino, off) = (it.next()?.ok()?, it.next()?.ok()?, it.next()?.ok()?);
    Some(((dev, ino), off))
}

/// Reads a whole file through a [`Follower`] (as the running source would, from the start, the
/// last line even without a newline), for `ampel-agent parse`.
pub fn read_whole(path: &Path, on_line: &mut dyn FnMut(&[u8])) -> io::Result<()> {
    std::fs::metadata(path)?;
    let mut f = Follower::new(path, None, true);
    f.poll(u64::MAX, on_line)?;
    f.finish(on_line);
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::io::Write;

    use super::*;

    /// Polls and commits, as the run loop does once the batch is spooled.
    fn lines(f: &mut Follower) -> Vec<String> {
        let out = uncommitted(f);
        f.commit();
        out
    }

    fn uncommitted(f: &mut Follower) -> Vec<String> {
        let mut out = Vec::new();
        f.poll(u64::MAX, &mut |l| out.push(String::from_utf8_lossy(l).into_owned())).unwrap();
        out
    }

    #[test]
    fn lines_read_but_not_committed_are_read_again_after_a_crash() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("eve.json");
        let pos = dir.path().join("eve.pos");
        append(&log, "a\n");
        let mut f = Follower::new(&log, Some(pos.clone()), true);
        assert_eq!(lines(&mut f), ["a"]);
        append(&log, "b\nc\n");
        assert_eq!(uncommitted(&mut f), ["b", "c"]);
        // Killed before the batch with b and c reached the spool.
        drop(f);
        let mut f = Follower::new(&log, Some(pos.clone()), true);
        assert_eq!(lines(&mut f), ["b", "c"], "at least once: nothing read but not spooled is lost");
        drop(f);
        let mut f = Follower::new(&log, Some(pos), true);
        assert!(lines(&mut f).is_empty(), "committed lines are not read twice");
    }

    fn append(p: &Path, s: &str) {
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(p).unwrap();
        f.write_all(s.as_bytes()).unwrap();
    }

    #[test]
    fn partial_lines_wait_rotation_and_truncation_are_followed() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("eve.json");
        let pos = dir.path().join("eve.pos");
        append(&log, "old\n");
        let mut f = Follower::new(&log, Some(pos.clone()), false);
        assert!(lines(&mut f).is_empty(), "a first start begins at the end");
        append(&log, "a\nb");
        assert_eq!(lines(&mut f), ["a"]);
        append(&log, "c\r\n");
        assert_eq!(lines(&mut f), ["bc"]);
        // Rename rotation with a late write to the old file and a partial line there.
        append(&log, "d\n");
        std::fs::rename(&log, dir.path().join("eve.json.1")).unwrap();
        append(&dir.path().join("eve.json.1"), "e\nf");
        append(&log, "g\n");
        assert_eq!(lines(&mut f), ["d", "e", "f", "g"]);
        assert_eq!(f.rotations, 1);
        // Copy-truncate.
        std::fs::write(&log, "").unwrap();
        assert!(lines(&mut f).is_empty());
        append(&log, "h\n");
        assert_eq!(lines(&mut f), ["h"]);
        assert_eq!(f.truncations, 1);
        // Restart: resumes after "h", neither re-reading nor skipping.
        append(&log, "i\nj");
        drop(f);
        let mut f = Follower::new(&log, Some(pos.clone()), false);
        assert_eq!(lines(&mut f), ["i"]);
        drop(f);
        append(&log, "\n");
        let mut f = Follower::new(&log, Some(pos.clone()), false);
        assert_eq!(lines(&mut f), ["j"]);
        // Rotated while stopped: the rest of the old file, then the new one.
        append(&log, "k\n");
        drop(f);
        std::fs::rename(&log, dir.path().join("eve.json.2")).unwrap();
        append(&log, "l\n");
        let mut f = Follower::new(&log, Some(pos), false);
        assert_eq!(lines(&mut f), ["k", "l"]);
    }

    #[test]
    fn newline_search_agrees_with_a_bytewise_one() {
        let mut s = vec![b'a'; 40];
        assert_eq!(find_newline(&s), None);
        for at in 0..40 {
            s.fill(b'a');
            s[at] = b'\n';
            if at + 3 < 40 {
                s[at + 3] = b'\n';
            }
            // Bytes that trip naive zero-byte tricks (0x0b = '\n' + 1, 0x8a, 0x89).
            if at > 0 {
                s[at - 1] = 0x0b;
            }
            assert_eq!(find_newline(&s), Some(at), "{at}");
            assert_eq!(find_newline(&s[..at]), None);
        }
        let odd = [0x8a, 0x89, 0x0b, 0x09, 0x0a];
        assert_eq!(find_newline(&odd), Some(4));
    }

    #[test]
    fn overlong_lines_are_skipped_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("x.log");
        let big = "x".repeat(MAX_LINE + 10);
        std::fs::write(&log, format!("a\n{big}\nb\n")).unwrap();
        let mut f = Follower::new(&log, None, true);
        assert_eq!(lines(&mut f), ["a", "b"]);
        assert_eq!(f.overlong, 1);
    }

    #[test]
    fn a_missing_file_is_waited_for() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("later.log");
        let mut f = Follower::new(&log, None, false);
        assert!(lines(&mut f).is_empty());
        append(&log, "first\n");
        assert_eq!(lines(&mut f), ["first"], "a file created after start is read from its start");
    }
}
