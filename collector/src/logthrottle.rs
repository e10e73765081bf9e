//! Rejections logged at a bounded rate per peer.
//!
//! A device sending garbage as fast as it can, or an address hammering the enrollment ALPN,
//! must not turn every refusal into a WARN (2 000 lines in 50 ms from one device were
//! measured). Each site asks [`LogThrottle::check`] with what it logs and whose it is (a
//! device, an address); a peer gets [`PER_WINDOW`] lines per [`WINDOW`] and site; when it is
//! allowed again, a line says how many were held back. Every refusal is still counted on
//! `/metrics` by its site; the lines held back are counted in [`LogThrottle::suppressed`].
//!
//! Plain data behind one mutex, never held across an `.await`; the clock is passed in.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ampel_protocol::logsafe::esc;

/// Length of one window.
pub const WINDOW: Duration = Duration::from_secs(60);
/// Lines one peer gets per window and site.
pub const PER_WINDOW: u32 = 5;
/// Peers remembered at most: beyond that, finished windows are forgotten, and then all (peers
/// are chosen by the other side, so they must not grow memory without bound).
const MAX_KEYS: usize = 4096;

#[derive(Debug)]
struct Window {
    start: Instant,
    logged: u32,
    held_back: u64,
}

/// Per-peer log budget, shared by the sites that log refusals.
#[derive(Debug, Default)]
pub struct LogThrottle {
    windows: Mutex<HashMap<(&'static str, String), Window>>,
    suppressed: AtomicU64,
}

impl LogThrottle {
    /// Whether the line `site` wants to log about `peer` at `now` should be written. `Some(n)`:
    /// write it, noting that `n` lines about this peer were held back before it; `None`: hold
    /// it back (counted).
    pub fn check(&self, site: &'static str, peer: &str, now: Instant) -> Option<u64> {
        let Ok(mut windows) = self.windows.lock() else { return Some(0) };
        if windows.len() >= MAX_KEYS && !windows.contains_key(&(site, peer.to_owned())) {
            windows.retain(|_, w| now.saturating_duration_since(w.start) < WINDOW);
            if windows.len() >= MAX_KEYS {
                windows.clear();
            }
        }
        let w = windows.entry((site, peer.to_owned())).or_insert(Window { start: now, logged: 0, held_back: 0 });
        if now.saturating_duration_since(w.start) >= WINDOW {
            w.start = now;
            w.logged = 0;
        }
        if w.logged >= PER_WINDOW {
            w.held_back += 1;
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        w.logged += 1;
        Some(std::mem::take(&mut w.held_back))
    }

    /// Whether to log the line `site` wants to write about `peer` now. When lines about this
    /// peer were held back before, says so first, in a line of its own.
    pub fn allow(&self, site: &'static str, peer: &str) -> bool {
        match self.check(site, peer, Instant::now()) {
            None => false,
            Some(0) => true,
            Some(held_back) => {
                tracing::warn!(site, peer = %esc(peer), held_back, window_s = WINDOW.as_secs(), "more refusals of this peer were not logged");
                true
            }
        }
    }

    /// Lines held back so far.
    pub fn suppressed(&self) -> u64 {
        self.suppressed.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_gets_its_lines_per_window_others_are_unaffected_and_the_next_line_counts_the_rest() {
        let t = LogThrottle::default();
        let now = Instant::now();
        for _ in 0..PER_WINDOW {
            assert_eq!(t.check("batch", "fw-1", now), Some(0));
        }
        for _ in 0..7 {
            assert_eq!(t.check("batch", "fw-1", now), None);
        }
        assert_eq!(t.check("batch", "fw-2", now), Some(0), "another device has its own budget");
        assert_eq!(t.check("sender", "fw-1", now), Some(0), "another site too");
        assert_eq!(t.suppressed(), 7);
        assert_eq!(t.check("batch", "fw-1", now + WINDOW), Some(7), "the held-back lines are reported");
        assert_eq!(t.check("batch", "fw-1", now + WINDOW), Some(0));
    }

    #[test]
    fn a_flood_of_peers_does_not_grow_memory_without_bound() {
        let t = LogThrottle::default();
        let now = Instant::now();
        for i in 0..(3 * MAX_KEYS) {
            t.check("enroll", &format!("peer-{i}"), now);
        }
        assert!(t.windows.lock().unwrap().len() <= MAX_KEYS);
    }
}
