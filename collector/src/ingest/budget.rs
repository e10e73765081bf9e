//! The memory partial frames may hold, in all and per device.
//!
//! A frame's payload is read into a buffer that grows as its bytes arrive. Without a bound, one
//! device certificate could announce 4 MiB frames on every stream of many connections and send
//! half of each: 120 connections × 16 streams took the collector from 14.5 MB to 1.03 GB. Every
//! byte of buffer capacity is now taken from two semaphores first — the device's share and the
//! collector's whole budget — and given back when the frame is done. A frame that cannot get
//! its bytes waits ([`WAIT`]: back-pressure, while QUIC flow control holds the peer), then is
//! refused without an ack, so a well-behaved agent sends it again later and loses nothing.
//!
//! A device's share is an eighth of the budget, never less than two of the largest frames: one
//! device cannot take the budget from the others; it takes eight devices with valid
//! certificates acting together, and each of them is capped in connections as well.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::IngestStats;

/// How long a frame waits for buffer bytes before it is refused.
pub const WAIT: Duration = Duration::from_secs(5);

/// The budget shared by every connection of the listener.
#[derive(Debug)]
pub struct FrameBudget {
    global: Arc<Semaphore>,
    per_device: usize,
    devices: Mutex<HashMap<String, Weak<Semaphore>>>,
    wait: Duration,
}

/// The buffer bytes could not be had within [`WAIT`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("partial-frame budget exhausted; refused without an ack (the agent sends it again)")]
pub struct Busy;

impl FrameBudget {
    /// A budget of `total` bytes, of which one device may hold at most an eighth but at least
    /// `2 × max_frame` (bounded by `total`).
    pub fn new(total: usize, max_frame: usize) -> Arc<FrameBudget> {
        FrameBudget::with_wait(total, max_frame, WAIT)
    }

    /// [`FrameBudget::new`] with another wait than [`WAIT`].
    pub fn with_wait(total: usize, max_frame: usize, wait: Duration) -> Arc<FrameBudget> {
        let per_device = (total / 8).max(max_frame.saturating_mul(2)).min(total);
        Arc::new(FrameBudget { global: Arc::new(Semaphore::new(total)), per_device, devices: Mutex::new(HashMap::new()), wait })
    }

    /// The share of `device`, shared by all its connections while any is open.
    pub fn device(&self, device: &str) -> Arc<Semaphore> {
        let Ok(mut devices) = self.devices.lock() else { return Arc::new(Semaphore::new(self.per_device)) };
        if let Some(s) = devices.get(device).and_then(Weak::upgrade) {
            return s;
        }
        if devices.len() >= 1024 {
            devices.retain(|_, s| s.strong_count() > 0);
        }
        let s = Arc::new(Semaphore::new(self.per_device));
        devices.insert(device.to_owned(), Arc::downgrade(&s));
        s
    }

    /// Bytes one device may hold.
    pub fn per_device(&self) -> usize {
        self.per_device
    }
}

/// The buffer bytes one frame holds; given back on drop.
pub struct Held {
    budget: Arc<FrameBudget>,
    device: Arc<Semaphore>,
    permits: Vec<OwnedSemaphorePermit>,
    bytes: usize,
    stats: Arc<IngestStats>,
}

impl Held {
    /// Nothing held yet, for a frame of the device whose share is `device`.
    pub fn new(budget: Arc<FrameBudget>, device: Arc<Semaphore>, stats: Arc<IngestStats>) -> Held {
        Held { budget, device, permits: Vec::new(), bytes: 0, stats }
    }

    /// Takes `n` more bytes, waiting at most [`WAIT`] (or the budget's wait) for them.
    pub async fn grow(&mut self, n: usize) -> Result<(), Busy> {
        let count = u32::try_from(n).map_err(|_| Busy)?;
        let take = async {
            let mine = self.device.clone().acquire_many_owned(count).await.map_err(|_| Busy)?;
            let all = self.budget.global.clone().acquire_many_owned(count).await.map_err(|_| Busy)?;
            Ok::<_, Busy>((mine, all))
        };
        let (mine, all) = tokio::time::timeout(self.budget.wait, take).await.map_err(|_| Busy)??;
        self.permits.push(mine);
        self.permits.push(all);
        self.bytes += n;
        self.stats.partial_frame_bytes.fetch_add(n as u64, Ordering::Relaxed);
        Ok(())
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.stats.partial_frame_bytes.fetch_sub(self.bytes as u64, Ordering::Relaxed);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_device_gets_its_share_others_get_theirs_and_bytes_come_back_on_drop() {
        let stats = Arc::new(IngestStats::default());
        let budget = FrameBudget::with_wait(64, 4, Duration::from_millis(20));
        assert_eq!(budget.per_device(), 8);
        let (a, b) = (budget.device("fw-1"), budget.device("fw-2"));
        assert!(Arc::ptr_eq(&a, &budget.device("fw-1")), "one share per device across its connections");
        let mut first = Held::new(budget.clone(), a.clone(), stats.clone());
        first.grow(8).await.unwrap();
        let mut more = Held::new(budget.clone(), a.clone(), stats.clone());
        assert_eq!(more.grow(1).await, Err(Busy), "fw-1 has used its share: refused after the wait");
        let mut other = Held::new(budget.clone(), b, stats.clone());
        other.grow(8).await.unwrap();
        assert_eq!(stats.partial_frame_bytes.load(Ordering::Relaxed), 16);
        drop(first);
        more.grow(8).await.unwrap();
        drop((more, other));
        assert_eq!(stats.partial_frame_bytes.load(Ordering::Relaxed), 0);
        assert_eq!(budget.global.available_permits(), 64);
    }

    #[tokio::test]
    async fn the_whole_budget_bounds_all_devices_together() {
        let stats = Arc::new(IngestStats::default());
        let budget = FrameBudget::with_wait(16, 4, Duration::from_millis(20));
        assert_eq!(budget.per_device(), 8, "never less than two of the largest frames");
        let mut held = Vec::new();
        for d in ["a", "b"] {
            let mut h = Held::new(budget.clone(), budget.device(d), stats.clone());
            h.grow(8).await.unwrap();
            held.push(h);
        }
        let mut c = Held::new(budget.clone(), budget.device("c"), stats.clone());
        assert_eq!(c.grow(1).await, Err(Busy));
    }
}
