//! Per-source-address rate limit for enrollment requests: a fixed window per address.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Length of one window.
pub const WINDOW: Duration = Duration::from_secs(60);
/// Requests one address may make per window.
pub const PER_WINDOW: u32 = 10;
/// Addresses remembered at most; beyond that, finished windows are forgotten first and then
/// everything (a flood of addresses must not grow memory without bound).
const MAX_ADDRS: usize = 10_000;

/// Counts requests per address.
#[derive(Debug, Default)]
pub struct RateLimiter {
    seen: HashMap<IpAddr, (Instant, u32)>,
}

impl RateLimiter {
    /// Whether `ip` may make one more request at `now`; counts it if so.
    pub fn allow(&mut self, ip: IpAddr, now: Instant) -> bool {
        if self.seen.len() >= MAX_ADDRS {
            self.seen.retain(|_, (start, _)| now.duration_since(*start) < WINDOW);
            if self.seen.len() >= MAX_ADDRS {
                self.seen.clear();
            }
        }
        let entry = self.seen.entry(ip).or_insert((now, 0));
        if now.duration_since(entry.0) >= WINDOW {
            *entry = (now, 0);
        }
        if entry.1 >= PER_WINDOW {
            return false;
        }
        entry.1 += 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_gets_its_quota_per_window_and_others_are_unaffected() {
        let mut l = RateLimiter::default();
        let t = Instant::now();
        let a: IpAddr = [10, 0, 0, 1].into();
        let b: IpAddr = [10, 0, 0, 2].into();
        for _ in 0..PER_WINDOW {
            assert!(l.allow(a, t));
        }
        assert!(!l.allow(a, t));
        assert!(l.allow(b, t));
        assert!(l.allow(a, t + WINDOW));
    }
}
