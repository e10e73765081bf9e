//! The one task that writes to the store.
//!
//! Connections hand decoded batches to the [`Writer`] through a bounded channel and wait for the
//! answer. The writer thread takes whatever has queued up — up to [`GROUP_MAX_BATCHES`] batches
//! or [`GROUP_MAX_RECORDS`] records — commits it in one LMDB transaction, and only then answers
//! every waiting connection, which acknowledges to its agent. LMDB transactions are synchronous,
//! so the writer is a plain thread and never holds a transaction across an `.await`.
//!
//! The commit only appends to the store's ingest log. The writer thread also owns the store's
//! maintenance thread ([`Maintenance`]), which folds the log into blocks and rollups and applies
//! retention; it is stopped when the writer stops.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use ampel_protocol::logsafe::esc;
use ampel_protocol::{AckStatus, Batch, Identity};
use tokio::sync::{mpsc, oneshot};

use super::catchup::CatchUp;
use crate::logthrottle::LogThrottle;
use crate::store::maintenance::{Maintenance, MaintenanceOptions};
use crate::store::{PendingBatch, Store};

/// Most batches committed in one transaction.
pub const GROUP_MAX_BATCHES: usize = 512;
/// Most records committed in one transaction (a soft bound: a group closes once past it).
pub const GROUP_MAX_RECORDS: usize = 200_000;

/// Counters an operator wants to see, shared with `/metrics` and the logs.
#[derive(Debug, Default)]
pub struct IngestStats {
    /// Batches committed.
    pub batches_committed: AtomicU64,
    /// Batches that were duplicates of committed ones.
    pub batches_duplicate: AtomicU64,
    /// Batches refused (decode errors, tenant mismatch).
    pub batches_rejected: AtomicU64,
    /// Points written.
    pub points: AtomicU64,
    /// Alerts written.
    pub alerts: AtomicU64,
    /// Records of kinds this build does not know.
    pub records_unknown: AtomicU64,
    /// Records refused as malformed.
    pub records_malformed: AtomicU64,
    /// Points and alerts refused because they are older than their retention.
    pub records_expired: AtomicU64,
    /// QUIC data connections and MQTT messages refused because another shard (or none) owns
    /// the tenant (`[cluster]`); nothing of them was stored.
    pub foreign_tenant: AtomicU64,
    /// Batches whose payload named a sender other than the certificate.
    pub sender_mismatch: AtomicU64,
    /// Transactions committed.
    pub commits: AtomicU64,
    /// Commits that failed (each failed batch was answered with an error, not acknowledged).
    pub commit_errors: AtomicU64,
    /// Enrollment and renewal requests refused (bad or used tokens, rate limit, bad requests).
    pub enroll_refused: AtomicU64,
    /// Data connections closed because a newer one of the same device came.
    pub connections_superseded: AtomicU64,
    /// Frames refused without an ack because the partial-frame budget had no room.
    pub frames_over_budget: AtomicU64,
    /// Buffer bytes partial frames hold now (a gauge).
    pub partial_frame_bytes: AtomicU64,
    /// The per-peer budget of refusal log lines, and how many were held back.
    pub log_throttle: LogThrottle,
    /// After a restart: the agents that were sending before, until they have caught up.
    pub catch_up: CatchUp,
}

struct Request {
    pending: PendingBatch,
    reply: oneshot::Sender<Result<AckStatus, String>>,
}

/// Handle to the writer: cheap to clone, one per connection.
#[derive(Clone)]
pub struct Writer {
    tx: mpsc::Sender<Request>,
    stats: Arc<IngestStats>,
}

/// Why a batch could not be handed to the writer.
#[derive(Debug, thiserror::Error)]
pub enum WriterError {
    /// The writer has stopped (shutdown or a fatal store error).
    #[error("the store writer has stopped")]
    Stopped,
    /// The commit failed; the batch was not stored and must not be acknowledged.
    #[error("commit failed: {0}")]
    Commit(String),
}

impl Writer {
    /// Starts the writer thread over `store`, with the store's maintenance thread (fold and
    /// retention) beside it. It stops when every [`Writer`] clone is dropped, after committing
    /// what was queued and stopping the maintenance thread; join the returned handle to wait
    /// for that.
    pub fn start(store: Store, stats: Arc<IngestStats>) -> (Writer, std::thread::JoinHandle<()>) {
        Writer::start_with(store, stats, Some(MaintenanceOptions::default()))
    }

    /// [`Writer::start`] with chosen maintenance options; `None` runs no maintenance thread
    /// (the log then grows until something folds it, e.g. a benchmark measuring the commit
    /// path alone).
    pub fn start_with(
        store: Store,
        stats: Arc<IngestStats>,
        maintenance: Option<MaintenanceOptions>,
    ) -> (Writer, std::thread::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(4096);
        let thread_stats = stats.clone();
        let handle = std::thread::Builder::new()
            .name("ampel-writer".into())
            .spawn(move || {
                let maintenance = maintenance.and_then(|opts| match Maintenance::start(store.clone(), opts) {
                    Ok(m) => Some(m),
                    Err(e) => {
                        tracing::error!(error = %e, "cannot start the fold thread; the ingest log will not be folded");
                        None
                    }
                });
                run(store, rx, thread_stats);
                if let Some(m) = maintenance {
                    m.stop();
                }
            })
            .unwrap_or_else(|e| {
                // Without a writer thread the collector cannot work at all; this happens only when
                // the OS refuses a thread at start-up.
                tracing::error!(error = %e, "cannot start the writer thread");
                std::process::exit(70)
            });
        (Writer { tx, stats }, handle)
    }

    /// The shared counters.
    pub fn stats(&self) -> &Arc<IngestStats> {
        &self.stats
    }

    /// Queues a batch and waits until it is committed (or found to be a duplicate).
    pub async fn submit(&self, identity: Identity, batch: Batch, received_ms: i64) -> Result<AckStatus, WriterError> {
        if batch.sender.as_deref().is_some_and(|s| s != identity.device.as_str()) {
            self.stats.sender_mismatch.fetch_add(1, Ordering::Relaxed);
            if self.stats.log_throttle.allow("sender", identity.device.as_str()) {
                let claimed = batch.sender.as_deref().map(esc);
                tracing::warn!(device = %identity.device, claimed = ?claimed, "payload names another sender; stored under the certificate's identity");
            }
        }
        let (reply, rx) = oneshot::channel();
        let req = Request { pending: PendingBatch { identity, batch, received_ms }, reply };
        self.tx.send(req).await.map_err(|_| WriterError::Stopped)?;
        match rx.await {
            Ok(Ok(status)) => Ok(status),
            Ok(Err(e)) => Err(WriterError::Commit(e)),
            Err(_) => Err(WriterError::Stopped),
        }
    }
}

fn run(store: Store, mut rx: mpsc::Receiver<Request>, stats: Arc<IngestStats>) {
    let mut group: Vec<Request> = Vec::with_capacity(GROUP_MAX_BATCHES);
    while let Some(first) = rx.blocking_recv() {
        let mut records = first.pending.batch.records.len();
        group.push(first);
        while group.len() < GROUP_MAX_BATCHES && records < GROUP_MAX_RECORDS {
            match rx.try_recv() {
                Ok(r) => {
                    records += r.pending.batch.records.len();
                    group.push(r);
                }
                Err(_) => break,
            }
        }
        let pending: Vec<PendingBatch> = group
            .iter_mut()
            .map(|r| PendingBatch {
                identity: r.pending.identity.clone(),
                batch: std::mem::replace(&mut r.pending.batch, Batch { version: 0, seq: 0, sender: None, records: Vec::new() }),
                received_ms: r.pending.received_ms,
            })
            .collect();
        match store.commit(&pending) {
            Ok(results) => {
                stats.commits.fetch_add(1, Ordering::Relaxed);
                for ((req, (status, outcome)), batch) in group.drain(..).zip(results).zip(&pending) {
                    if !matches!(status, AckStatus::Rejected(_)) {
                        stats.catch_up.observe(&batch.identity, &batch.batch);
                    }
                    match &status {
                        AckStatus::Committed => stats.batches_committed.fetch_add(1, Ordering::Relaxed),
                        AckStatus::Duplicate => stats.batches_duplicate.fetch_add(1, Ordering::Relaxed),
                        AckStatus::Rejected(_) => stats.batches_rejected.fetch_add(1, Ordering::Relaxed),
                    };
                    stats.points.fetch_add(outcome.points, Ordering::Relaxed);
                    stats.alerts.fetch_add(outcome.alerts, Ordering::Relaxed);
                    stats.records_unknown.fetch_add(outcome.unknown, Ordering::Relaxed);
                    stats.records_malformed.fetch_add(outcome.malformed, Ordering::Relaxed);
                    stats.records_expired.fetch_add(outcome.expired, Ordering::Relaxed);
                    // The connection may have gone; the data is committed either way and a
                    // resend will be acknowledged as a duplicate.
                    let _ = req.reply.send(Ok(status));
                }
            }
            Err(e) => {
                stats.commit_errors.fetch_add(1, Ordering::Relaxed);
                tracing::error!(error = %e, batches = group.len(), "commit failed; batches not acknowledged");
                for req in group.drain(..) {
                    let _ = req.reply.send(Err(e.to_string()));
                }
            }
        }
    }
    tracing::debug!("writer stopped: all handles dropped");
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::Duration;

    use ampel_protocol::{DeviceId, Metric, Record, TenantId};

    use super::*;
    use crate::store::StoreOptions;

    #[tokio::test]
    async fn acknowledged_batches_are_readable_at_once_and_folded_in_the_background() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
        let stats = Arc::new(IngestStats::default());
        let opts = MaintenanceOptions { idle: Duration::from_millis(20), ..MaintenanceOptions::default() };
        let (writer, thread) = Writer::start_with(store.clone(), stats.clone(), Some(opts));
        let identity = Identity { tenant: TenantId::new("acme").unwrap(), device: DeviceId::new("fw-1").unwrap() };
        // Recent data: the maintenance thread applies the default retention to wall-clock time.
        let t0 = crate::ingest::quic::now_ms() - 3_600_000;
        for seq in 0..20u64 {
            let records = (0..100)
                .map(|i| Record::Metric(Metric { ts: t0 + seq as i64 * 100 + i, name: "cpu".into(), labels: vec![], value: 1.0 }))
                .collect();
            let status = writer.submit(identity.clone(), Batch { version: 1, seq, sender: None, records }, 0).await.unwrap();
            assert_eq!(status, AckStatus::Committed);
            // Acknowledged means readable, folded or not.
            assert_eq!(store.count_points("fw-1", 0, i64::MAX).unwrap(), (seq + 1) * 100);
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while store.log_len().unwrap() > 0 {
            assert!(std::time::Instant::now() < deadline, "the fold thread did not catch up");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(store.count_points("fw-1", 0, i64::MAX).unwrap(), 2000);
        assert_eq!(stats.points.load(Ordering::Relaxed), 2000);
        drop(writer);
        tokio::task::spawn_blocking(move || thread.join().unwrap()).await.unwrap();
    }

    #[tokio::test]
    async fn agents_sending_before_a_restart_are_awaited_until_a_fresh_batch_is_stored() {
        use crate::ingest::catchup::expected_devices;
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
        let stats = Arc::new(IngestStats::default());
        let (writer, thread) = Writer::start_with(store.clone(), stats.clone(), None);
        let who = |d: &str| Identity { tenant: TenantId::new("acme").unwrap(), device: DeviceId::new(d).unwrap() };
        let batch = |seq: u64, ts: i64| Batch {
            version: 1,
            seq,
            sender: None,
            records: vec![Record::Metric(Metric { ts, name: "cpu".into(), labels: vec![], value: 1.0 })],
        };
        let stop = crate::ingest::quic::now_ms() - 3_600_000;
        // Before the "restart": fw-1 and fw-2 were sending; fw-old went quiet 20 minutes earlier.
        for (seq, (device, seen)) in [("fw-old", stop - 20 * 60_000), ("fw-1", stop - 60_000), ("fw-2", stop)].into_iter().enumerate() {
            let status = writer.submit(who(device), batch(seq as u64, seen - 1000), seen).await.unwrap();
            assert_eq!(status, AckStatus::Committed);
        }
        let mut expected = expected_devices(&store).unwrap();
        expected.sort();
        let pair = |d: &str| ("acme".to_owned(), d.to_owned());
        assert_eq!(expected, [pair("fw-1"), pair("fw-2")]);

        let started = stop + 600_000;
        stats.catch_up.expect(started, expected);
        // fw-1 sends what it spooled while the collector was down: not caught up yet.
        writer.submit(who("fw-1"), batch(10, started - 1), started + 5_000).await.unwrap();
        assert_eq!(stats.catch_up.waiting(), [pair("fw-1"), pair("fw-2")]);
        // Then a batch gathered after the start: caught up.
        writer.submit(who("fw-1"), batch(11, started + 1), started + 5_001).await.unwrap();
        assert_eq!(stats.catch_up.waiting(), [pair("fw-2")]);
        // A resent (duplicate) batch still tells when the device's data is from.
        assert_eq!(writer.submit(who("fw-2"), batch(2, stop - 1000), started).await.unwrap(), AckStatus::Duplicate);
        assert_eq!(stats.catch_up.waiting(), [pair("fw-2")]);
        writer.submit(who("fw-2"), batch(12, started + 30_000), started + 31_000).await.unwrap();
        assert!(stats.catch_up.waiting().is_empty());
        drop(writer);
        tokio::task::spawn_blocking(move || thread.join().unwrap()).await.unwrap();
    }
}
