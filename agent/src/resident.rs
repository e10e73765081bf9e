//! Giving back resident pages the agent no longer uses.
//!
//! Most of the agent's resident set is not its heap but file-backed pages of code: its own
//! binary, libc, libm. The kernel maps page-cache pages in 64 KiB blocks around each fault
//! ("fault-around"), so code run once at start-up — argument and configuration parsing,
//! certificate loading, the TLS handshake, enrolment — leaves nearly the whole binary mapped
//! (measured: 2.8 of 3.0 MiB of text, 6.0 MiB resident in all, 0.7 MiB of it anonymous).
//!
//! [`release`] drops this process's mappings of such pages (`MADV_DONTNEED`) for every private
//! file mapping that holds no page of its own: read-only code and data. The pages stay in the
//! page cache; what the agent still runs faults straight back in, so afterwards the resident
//! set is the code actually in use. Mappings with anonymous pages (relocated data made
//! read-only, a debugger's breakpoints) are left alone: dropping those would lose their
//! contents. glibc's heap is trimmed as well (`malloc_trim`).
//!
//! The agent calls it once its configuration is loaded, before the first gather, after the
//! second cycle and then every 5 minutes; it costs about a millisecond and a few hundred minor
//! faults afterwards.

use std::ffi::c_void;
use std::ptr::NonNull;

use nix::sys::mman::{MmapAdvise, madvise};

/// What [`release`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Released {
    /// Mappings whose pages were dropped.
    pub mappings: usize,
    /// Bytes those mappings had resident before.
    pub bytes: u64,
}

/// One mapping of `/proc/self/smaps`, as far as [`release`] needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Mapping {
    start: usize,
    end: usize,
    /// Private, not writable, backed by a file (not `[vdso]` or anonymous memory).
    candidate: bool,
    rss_kib: u64,
    anonymous_kib: u64,
}

/// Reads the mappings out of the text of `/proc/self/smaps`.
fn mappings(smaps: &str) -> Vec<Mapping> {
    let mut out: Vec<Mapping> = Vec::new();
    for line in smaps.lines() {
        let mut fields = line.split_whitespace();
        let Some(first) = fields.next() else { continue };
        if let Some((start, end)) = first.split_once('-') {
            let (Ok(start), Ok(end)) = (usize::from_str_radix(start, 16), usize::from_str_radix(end, 16)) else {
                continue;
            };
            let perms = fields.next().unwrap_or("");
            // offset, device, inode, then the path (absent for anonymous memory).
            let path = fields.nth(3).unwrap_or("");
            let candidate =
                perms.len() == 4 && perms.starts_with('r') && perms.as_bytes()[1] == b'-' && perms.ends_with('p') && path.starts_with('/');
            out.push(Mapping { start, end, candidate, rss_kib: 0, anonymous_kib: 0 });
            continue;
        }
        let Some(last) = out.last_mut() else { continue };
        let kib = || fields.clone().next().and_then(|v| v.parse::<u64>().ok()).unwrap_or(u64::MAX);
        match first {
            "Rss:" => last.rss_kib = kib(),
            "Anonymous:" => last.anonymous_kib = kib(),
            _ => {}
        }
    }
    out
}

/// Whether dropping the mapping's pages loses nothing and gains something.
fn droppable(m: &Mapping) -> bool {
    m.candidate && m.anonymous_kib == 0 && m.rss_kib > 0 && m.rss_kib != u64::MAX && m.end > m.start
}

/// Drops the resident pages of read-only file mappings and trims the heap. Never fails: what
/// cannot be read or released is left as it is.
pub fn release() -> Released {
    trim_heap();
    let mut done = Released::default();
    let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else { return done };
    for m in mappings(&smaps).iter().filter(|m| droppable(m)) {
        let Some(addr) = NonNull::new(m.start as *mut c_void) else { continue };
        // SAFETY: the range is a whole private, read-only file mapping of this process without
        // anonymous (copied-on-write) pages, so its contents are exactly the file's: after
        // MADV_DONTNEED the next access reads the same bytes back from the page cache. Nothing
        // else is unmapped or changed.
        #[allow(unsafe_code)]
        let result = unsafe { madvise(addr, m.end - m.start, MmapAdvise::MADV_DONTNEED) };
        if result.is_ok() {
            done.mappings += 1;
            done.bytes += m.rss_kib * 1024;
        }
    }
    done
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim_heap() {
    // SAFETY: malloc_trim only returns free heap memory to the kernel; it is thread-safe.
    #[allow(unsafe_code)]
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim_heap() {}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const SMAPS: &str = "\
55d0c0a00000-55d0c0b00000 r--p 00000000 fe:01 123 /usr/bin/ampel-agent
Size:               1024 kB
Rss:                 720 kB
Anonymous:             0 kB
55d0c0b00000-55d0c0e00000 r-xp 00100000 fe:01 123 /usr/bin/ampel-agent
Size:               3072 kB
Rss:                2832 kB
Anonymous:             0 kB
55d0c0e00000-55d0c0e40000 r--p 00400000 fe:01 123 /usr/bin/ampel-agent
Size:                256 kB
Rss:                 120 kB
Anonymous:           116 kB
55d0c0e40000-55d0c0e43000 rw-p 00440000 fe:01 123 /usr/bin/ampel-agent
Rss:                  12 kB
Anonymous:            12 kB
7f0000000000-7f0000600000 r--s 00000000 fe:01 456 /var/lib/ampel/agent/spool/data.mdb
Rss:                  60 kB
Anonymous:             0 kB
7f0000600000-7f0000700000 rw-p 00000000 00:00 0 
Rss:                  56 kB
Anonymous:            56 kB
7ffd00000000-7ffd00002000 r-xp 00000000 00:00 0                          [vdso]
Rss:                   4 kB
Anonymous:             0 kB
";

    #[test]
    fn only_clean_private_read_only_file_mappings_are_dropped() {
        let maps = mappings(SMAPS);
        assert_eq!(maps.len(), 7);
        let dropped: Vec<usize> = maps.iter().filter(|m| droppable(m)).map(|m| m.start).collect();
        // Code and read-only data of the binary; not the relocated data (anonymous pages), not
        // the writable data, not the shared LMDB map, not anonymous memory, not the vDSO.
        assert_eq!(dropped, [0x55d0_c0a0_0000, 0x55d0_c0b0_0000]);
    }

    #[test]
    fn releasing_keeps_the_process_working() {
        let before = crate::sources::agent::rss_bytes();
        let released = release();
        // Code still runs, data still reads the same.
        let text = format!("{:?}", released);
        assert!(text.starts_with("Released"));
        assert!(released.mappings > 0, "{released:?}");
        assert!(before > 0);
    }
}
