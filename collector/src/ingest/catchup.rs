//! After a restart: which agents that were sending before have caught up.
//!
//! While the collector is down, agents keep gathering into their spools and retry with a
//! backoff of up to a minute. A report rendered in the first minutes after a restart would
//! show a gap that their spooled data fills moments later. So at start-up the server names the
//! devices that were sending before ([`expected_devices`]: last seen within
//! [`CONNECTED_BEFORE_MS`] of the newest batch the store holds), the writer tells [`CatchUp`]
//! about every stored batch, and the scheduler's first step waits ([`CatchUp::settle`]) until
//! each of those devices has delivered a batch *gathered after the start-up* — or until the
//! start-up grace (`[delivery] startup-grace`) ends, whichever comes first.
//!
//! Why a batch gathered after start-up means "drained": an agent sends its spool oldest batch
//! first, so by the time one gathered after the restart arrives, everything it spooled while
//! the collector was down has been sent ahead of it. Only batches still in flight beside it
//! (at most the agent's in-flight window, acknowledged within moments) can trail. An agent
//! whose clock runs behind the collector's by more than the grace is never seen as caught up
//! and costs the whole grace, never more.

use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use ampel_protocol::logsafe::esc;
use ampel_protocol::{Batch, Identity};
use tokio::sync::{Notify, watch};

use crate::store::{Store, StoreError};

/// A device counts as "sending before the restart" when it was last seen at most this long
/// before the newest batch in the store: ten agent intervals of a minute, with room for a
/// backoff.
pub const CONNECTED_BEFORE_MS: i64 = 15 * 60_000;

/// Devices (tenant, device) expected to catch up, and whether they have.
#[derive(Debug, Default)]
pub struct CatchUp {
    /// False once nothing is awaited: the writer's path is then one atomic load.
    active: AtomicBool,
    state: Mutex<State>,
    notify: Notify,
}

#[derive(Debug, Default)]
struct State {
    /// Batches gathered at or after this moment (Unix ms) show a device has caught up.
    since_ms: i64,
    /// Devices not caught up yet.
    waiting: HashSet<(String, String)>,
}

/// How the wait at start-up ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settled {
    /// Every expected device caught up (or none was expected).
    CaughtUp,
    /// The grace ended first; these devices (tenant, device) had not caught up.
    GraceOver(Vec<(String, String)>),
    /// The collector is shutting down.
    Shutdown,
}

impl CatchUp {
    /// Awaits `devices` (tenant, device): each has caught up once a batch of it gathered at or
    /// after `since_ms` is stored. Replaces whatever was awaited before.
    pub fn expect(&self, since_ms: i64, devices: impl IntoIterator<Item = (String, String)>) {
        let mut state = self.lock();
        state.since_ms = since_ms;
        state.waiting = devices.into_iter().collect();
        self.active.store(!state.waiting.is_empty(), Ordering::Release);
    }

    /// The writer stored `batch` of `who`: if it was gathered after start-up (its newest
    /// record is), the device has caught up.
    pub fn observe(&self, who: &Identity, batch: &Batch) {
        if !self.active.load(Ordering::Acquire) {
            return;
        }
        let Some(newest) = batch.records.iter().filter_map(|r| r.ts()).max() else { return };
        let mut state = self.lock();
        if newest < state.since_ms {
            return;
        }
        let key = (who.tenant.as_str().to_owned(), who.device.as_str().to_owned());
        if state.waiting.remove(&key) && state.waiting.is_empty() {
            self.active.store(false, Ordering::Release);
            self.notify.notify_waiters();
        }
    }

    /// Devices still awaited, sorted.
    pub fn waiting(&self) -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = self.lock().waiting.iter().cloned().collect();
        v.sort();
        v
    }

    /// Waits until every awaited device has caught up, `grace` has passed, or `shutdown`
    /// turns true.
    pub async fn settle(&self, grace: Duration, shutdown: &mut watch::Receiver<bool>) -> Settled {
        let deadline = tokio::time::Instant::now() + grace;
        loop {
            // Registered before the check, so a notification between the two is not lost.
            let notified = self.notify.notified();
            if self.lock().waiting.is_empty() {
                return Settled::CaughtUp;
            }
            tokio::select! {
                _ = notified => {}
                _ = tokio::time::sleep_until(deadline) => return Settled::GraceOver(self.waiting()),
                _ = shutdown.wait_for(|s| *s) => return Settled::Shutdown,
            }
        }
    }

    /// [`CatchUp::settle`] with its outcome logged: what the scheduler's first step runs.
    pub async fn settle_logged(&self, grace: Duration, shutdown: &mut watch::Receiver<bool>) {
        let awaited = self.lock().waiting.len();
        if awaited == 0 || grace.is_zero() {
            return;
        }
        tracing::info!(
            agents = awaited,
            grace_s = grace.as_secs(),
            "reports wait for the agents that were sending before the restart to deliver what they spooled"
        );
        let started = std::time::Instant::now();
        match self.settle(grace, shutdown).await {
            Settled::CaughtUp => {
                tracing::info!(agents = awaited, after_ms = started.elapsed().as_millis() as u64, "every agent caught up; reports run")
            }
            Settled::GraceOver(left) => {
                let names: Vec<String> = left.iter().take(5).map(|(t, d)| format!("{}/{}", esc(t), esc(d))).collect();
                tracing::warn!(
                    agents = left.len(),
                    first = %names.join(", "),
                    "start-up grace over before these agents caught up; reports due now run without their spooled data"
                );
            }
            Settled::Shutdown => {}
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is a set of names: a panic elsewhere cannot leave it half-updated.
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The devices (tenant, device) that were sending before the collector stopped: last seen at
/// most [`CONNECTED_BEFORE_MS`] before the newest batch the store holds.
pub fn expected_devices(store: &Store) -> Result<Vec<(String, String)>, StoreError> {
    let devices = store.devices(None)?;
    let Some(newest) = devices.iter().filter_map(|(_, r)| r.last_seen_ms).max() else { return Ok(Vec::new()) };
    Ok(devices
        .into_iter()
        .filter(|(_, r)| r.last_seen_ms.is_some_and(|t| t >= newest - CONNECTED_BEFORE_MS))
        .map(|(id, r)| (r.tenant, id))
        .collect())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Arc;

    use ampel_protocol::{DeviceId, Metric, Record, TenantId};

    use super::*;

    fn who(tenant: &str, device: &str) -> Identity {
        Identity { tenant: TenantId::new(tenant).unwrap(), device: DeviceId::new(device).unwrap() }
    }

    fn batch(seq: u64, ts: &[i64]) -> Batch {
        let records =
            ts.iter().map(|&ts| Record::Metric(Metric { ts, name: "cpu.usage_percent".into(), labels: vec![], value: 1.0 })).collect();
        Batch { version: 1, seq, sender: None, records }
    }

    fn pair(t: &str, d: &str) -> (String, String) {
        (t.to_owned(), d.to_owned())
    }

    #[test]
    fn only_a_batch_gathered_after_start_up_counts() {
        let c = CatchUp::default();
        c.expect(10_000, [pair("acme", "fw-1"), pair("acme", "fw-2")]);
        // Spooled data from before the restart: still catching up.
        c.observe(&who("acme", "fw-1"), &batch(1, &[5_000, 9_999]));
        // A record-less batch says nothing about when it was gathered.
        c.observe(&who("acme", "fw-1"), &batch(2, &[]));
        assert_eq!(c.waiting(), [pair("acme", "fw-1"), pair("acme", "fw-2")]);
        // The newest record decides, wherever it sits in the batch.
        c.observe(&who("acme", "fw-1"), &batch(3, &[10_000, 4_000]));
        assert_eq!(c.waiting(), [pair("acme", "fw-2")]);
        // A device of the same name in another tenant is someone else.
        c.observe(&who("other", "fw-2"), &batch(1, &[20_000]));
        assert_eq!(c.waiting(), [pair("acme", "fw-2")]);
        c.observe(&who("acme", "fw-2"), &batch(9, &[20_000]));
        assert!(c.waiting().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn settle_returns_when_the_last_device_catches_up() {
        let c = Arc::new(CatchUp::default());
        c.expect(1_000, [pair("acme", "fw-1"), pair("acme", "fw-2")]);
        let (_tx, mut rx) = watch::channel(false);
        let feeder = {
            let c = c.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(5)).await;
                c.observe(&who("acme", "fw-1"), &batch(1, &[2_000]));
                tokio::time::sleep(Duration::from_secs(5)).await;
                c.observe(&who("acme", "fw-2"), &batch(1, &[2_000]));
            })
        };
        let started = tokio::time::Instant::now();
        assert_eq!(c.settle(Duration::from_secs(120), &mut rx).await, Settled::CaughtUp);
        // Ten seconds of (paused) time: it returned when the second device came, not at the
        // end of the grace.
        assert_eq!(started.elapsed().as_secs(), 10);
        feeder.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn settle_gives_up_at_the_end_of_the_grace_and_names_who_is_missing() {
        let c = CatchUp::default();
        c.expect(1_000, [pair("acme", "fw-1"), pair("beta", "gw")]);
        c.observe(&who("acme", "fw-1"), &batch(1, &[2_000]));
        let (_tx, mut rx) = watch::channel(false);
        let started = tokio::time::Instant::now();
        assert_eq!(c.settle(Duration::from_secs(120), &mut rx).await, Settled::GraceOver(vec![pair("beta", "gw")]));
        assert_eq!(started.elapsed().as_secs(), 120);
        // Nothing awaited: no wait at all.
        let none = CatchUp::default();
        none.expect(1_000, []);
        assert_eq!(none.settle(Duration::from_secs(120), &mut rx).await, Settled::CaughtUp);
    }

    #[tokio::test(start_paused = true)]
    async fn settle_stops_at_shutdown() {
        let c = CatchUp::default();
        c.expect(1_000, [pair("acme", "fw-1")]);
        let (tx, mut rx) = watch::channel(false);
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(3)).await;
            tx.send(true).unwrap();
        });
        assert_eq!(c.settle(Duration::from_secs(120), &mut rx).await, Settled::Shutdown);
    }
}
