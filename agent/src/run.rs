//! The main loop: every interval, gather from all sources into a numbered batch, write it to the
//! spool and wake the transport; on shutdown, stop gathering and let the transport drain.
//!
//! The gatherer and the transport run concurrently on one thread. They share the spool (one
//! short LMDB transaction at a time) and a channel: dropping its sender is the transport's
//! signal to flush outstanding acks and close.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ampel_protocol::{Batch, PROTOCOL_VERSION};
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, MissedTickBehavior};

use crate::config::{AgentConfig, TransportKind};
use crate::seq::{SeqError, SeqStore};
use crate::sources::{self, Source, SourceError};
use crate::spool::{Spool, SpoolError};
use crate::transport::mqtt::{MqttOptions, MqttTransport};
use crate::transport::quic::{QuicOptions, QuicTransport};
use crate::transport::{Credentials, SharedSpool, Status, Transport, TransportError};

/// How often the agent logs its delivery counters, and gives back pages of code it no longer
/// runs (see [`crate::resident`]).
pub const STATS_EVERY: Duration = Duration::from_secs(300);

/// After this many cycles start-up is over and its pages are given back.
const RELEASE_AFTER_CYCLES: u64 = 2;

/// Why the agent could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A source could not be built.
    #[error("cannot start source: {0}")]
    Source(#[from] SourceError),
    /// The transport could not be set up (certificate files, TLS).
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The sequence counter could not be read or advanced.
    #[error(transparent)]
    Seq(#[from] SeqError),
    /// The spool could not be opened or written.
    #[error(transparent)]
    Spool(#[from] SpoolError),
    /// The transport task ended while the agent was still producing batches (a bug).
    #[error("the transport stopped unexpectedly")]
    TransportStopped,
}

/// The transports the config can name.
enum AnyTransport {
    Quic(QuicTransport),
    Mqtt(MqttTransport),
}

/// An agent ready to run: configuration checked, certificates loaded, sources built.
pub struct Agent {
    config: AgentConfig,
    sources: Vec<Box<dyn Source>>,
    transport: AnyTransport,
    sender: Option<String>,
}

impl Agent {
    /// Checks everything that can be checked without the network: certificate and key files
    /// load and belong together, the TLS configuration builds, the sources start. This is
    /// what `check-config` runs.
    pub fn new(config: AgentConfig) -> Result<Agent, RunError> {
        Agent::with_options(config, QuicOptions::default())
    }

    /// Like [`Agent::new`] with chosen QUIC tuning (tests shorten timeouts).
    pub fn with_options(config: AgentConfig, quic: QuicOptions) -> Result<Agent, RunError> {
        let creds = Credentials::load(&config.collector)?;
        let sender = creds.identity.as_ref().map(|id| id.device.to_string());
        let transport = match config.collector.transport {
            TransportKind::Quic => {
                AnyTransport::Quic(QuicTransport::new(&config.collector, creds, quic)?.with_state_dir(&config.state_dir))
            }
            TransportKind::Mqtt => AnyTransport::Mqtt(MqttTransport::new(&config.collector, creds, MqttOptions::default())?),
        };
        let ctx = sources::BuildContext { state_dir: Some(config.state_dir.clone()), interval: Some(config.interval.get()) };
        let sources = config.sources.build(&ctx)?;
        Ok(Agent { config, sources, transport, sender })
    }

    /// The device id read from the certificate, sent as the batches' `sender`.
    pub fn sender(&self) -> Option<&str> {
        self.sender.as_deref()
    }

    /// Runs until `shutdown` completes, then lets the transport drain and returns.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), RunError> {
        let Agent { config, sources, transport, sender } = self;
        let seqs = SeqStore::open(&config.state_dir)?;
        let spool = Spool::open(&config.state_dir.join("spool"), config.spool.max_bytes.get())?;
        let mut sources = sources;
        for s in sources.iter_mut() {
            if let Some(pos) = spool.cursor(s.name())? {
                s.resume(pos);
            }
        }
        let held = spool.len()?;
        if held > 0 {
            tracing::info!(batches = held, bytes = spool.bytes(), "spool holds unacknowledged batches; resending them first");
        }
        let spool: SharedSpool = Arc::new(Mutex::new(spool));
        let names: Vec<&str> = sources.iter().map(|s| s.name()).collect();
        tracing::info!(
            version = env!("CARGO_PKG_VERSION"),
            interval = %config.interval,
            sources = ?names,
            collector = %config.collector.address,
            device = sender.as_deref().unwrap_or("?"),
            "agent started"
        );
        let gatherer = Gatherer { sources, seqs, sender, interval: config.interval.get(), spool: spool.clone(), reported: None };
        // Configuration, certificates and sources are loaded: their code is not needed again.
        release_pages();
        let systemd = ampel_os::systemd::Notifier::from_env();
        systemd.ready(&format!("sending to {}", config.collector.address));
        let result = match transport {
            AnyTransport::Quic(t) => {
                // Renewal runs beside the transport and ends with it.
                let renewer = crate::enroll::Renewer::new(&config, t.cert_handle());
                // The certificate's expiry travels as a metric, for the risk rules.
                let mut gatherer = gatherer;
                gatherer.sources.push(Box::new(crate::enroll::CertExpiry::new(t.cert_handle())));
                tokio::select! {
                    r = drive(gatherer, t, spool, shutdown) => r,
                    () = renewer.run() => Ok(()),
                }
            }
            AnyTransport::Mqtt(t) => drive(gatherer, t, spool, shutdown).await,
        };
        systemd.stopping();
        result
    }
}

struct Gatherer {
    sources: Vec<Box<dyn Source>>,
    seqs: SeqStore,
    sender: Option<String>,
    interval: Duration,
    spool: SharedSpool,
    /// The drop counters last sent, so `agent.dropped` goes out when it changes.
    reported: Option<std::collections::BTreeMap<&'static str, u64>>,
}

/// Size of the hand-over channel; the transport takes batches off it at once, so it only
/// smooths a moment of contention.
const CHANNEL: usize = 16;

async fn drive<T: Transport>(
    gatherer: Gatherer,
    transport: T,
    spool: SharedSpool,
    shutdown: impl Future<Output = ()>,
) -> Result<(), RunError> {
    let (tx, rx) = mpsc::channel(CHANNEL);
    let status = transport.status();
    let (produced, ()) = tokio::join!(produce(gatherer, tx, status, shutdown), transport.run(spool, rx));
    produced
}

async fn produce(
    mut g: Gatherer,
    tx: mpsc::Sender<u64>,
    status: watch::Receiver<Status>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), RunError> {
    tokio::pin!(shutdown);
    // The first tick comes one interval after start: the performance source took its first
    // CPU sample when it was built, and needs a full interval to compare against.
    let mut ticker = tokio::time::interval_at(Instant::now() + g.interval, g.interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut stats = tokio::time::interval_at(Instant::now() + STATS_EVERY, STATS_EVERY);
    // Fed from this loop, so a wedged gatherer stops the pings and systemd restarts the agent.
    let mut watchdog = ampel_os::systemd::WatchdogTimer::from_env();
    let systemd = ampel_os::systemd::Notifier::from_env();
    let mut cycles = 0u64;
    let mut grid = CycleClock::default();
    loop {
        tokio::select! {
            () = watchdog.tick() => systemd.watchdog(),
            () = &mut shutdown => {
                tracing::info!("shutting down: waiting briefly for outstanding acks");
                return Ok(()); // dropping `tx` tells the transport to drain
            }
            _ = stats.tick() => {
                let s = status.borrow().clone();
                tracing::info!(
                    connected = s.connected,
                    acked = s.acked,
                    rejected = s.rejected,
                    dropped = s.dropped,
                    queued = s.queued,
                    "delivery counters"
                );
                release_pages();
            }
            _ = ticker.tick() => {
                // The handshake is done by now: drop its pages before the first gather, so the
                // two do not add up to the peak.
                if cycles == 0 {
                    release_pages();
                }
                let now = grid.stamp(unix_ms(), g.interval);
                // The `agent` source widens the interval when a cycle overran its CPU budget.
                if let Some(want) = sources::wanted_interval(&g.sources).filter(|w| *w != g.interval) {
                    g.interval = want;
                    ticker = tokio::time::interval_at(Instant::now() + want, want);
                    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
                }
                let seq = spool_one(&mut g, now)?;
                // The batch is safe in the spool; the wake-up only saves the transport a wait.
                let _ = tx.try_send(seq);
                if tx.is_closed() {
                    return Err(RunError::TransportStopped);
                }
                cycles += 1;
                // By the second cycle start-up is over (configuration, certificates, the
                // handshake, the first batch sent): give back the pages only it used.
                if cycles == RELEASE_AFTER_CYCLES {
                    release_pages();
                }
            }
        }
    }
}

/// How far a cycle may start from its place on the interval grid and still be stamped with it.
pub const GRID_TOLERANCE_MS: i64 = 25;

/// Cycle timestamps on the interval's grid. A cycle that starts within [`GRID_TOLERANCE_MS`] of
/// one interval after the previous cycle's timestamp is stamped with exactly that; otherwise
/// (a late tick, a clock step, a changed interval that does not fit) with the wall clock,
/// which starts a new grid. Timer jitter of a few ms then does not reach the data, and the
/// collector stores a regular timestamp in one bit instead of several — the idea of
/// Prometheus' scrape timestamp tolerance.
#[derive(Debug, Default)]
pub struct CycleClock {
    last: Option<i64>,
}

impl CycleClock {
    /// The timestamp of a cycle starting at wall-clock `now` after `interval`.
    pub fn stamp(&mut self, now: i64, interval: Duration) -> i64 {
        let step = i64::try_from(interval.as_millis()).unwrap_or(i64::MAX);
        let ts = match self.last.map(|l| l.saturating_add(step)) {
            Some(expected) if now.abs_diff(expected) <= GRID_TOLERANCE_MS.unsigned_abs() => expected,
            _ => now,
        };
        // Never backwards or repeated, whatever the wall clock does.
        let ts = self.last.map_or(ts, |l| ts.max(l + 1));
        self.last = Some(ts);
        ts
    }
}

/// Drops resident pages of code no longer in use (see [`crate::resident`]).
fn release_pages() {
    let released = crate::resident::release();
    tracing::debug!(mappings = released.mappings, bytes = released.bytes, "released resident pages of read-only mappings");
}

/// Gathers one batch, numbers it and writes it to the spool together with the sources'
/// cursors. Returns its seq.
fn spool_one(g: &mut Gatherer, now: i64) -> Result<u64, RunError> {
    let mut records = sources::gather_all(&mut g.sources, now);
    let cursors: Vec<(&'static str, u64)> = g.sources.iter().filter_map(|s| s.cursor().map(|c| (s.name(), c))).collect();
    let mut spool = match g.spool.lock() {
        Ok(s) => s,
        Err(poisoned) => poisoned.into_inner(),
    };
    // The drop counters travel as metrics whenever they changed (and once after a start).
    if g.reported.as_ref() != Some(spool.dropped()) {
        records.extend(spool.dropped_metrics(now));
        g.reported = Some(spool.dropped().clone());
    }
    let seq = g.seqs.next_seq()?;
    let batch = Batch { version: PROTOCOL_VERSION, seq, sender: g.sender.clone(), records };
    let shed = spool.append(&batch, &cursors)?;
    // Only now may followed files save their positions: a crash before this line re-reads.
    g.sources.iter_mut().for_each(|s| s.committed());
    if !shed.is_empty() {
        tracing::warn!(
            shed = ?shed.records,
            batches_dropped = shed.batches,
            dropped_total = ?spool.dropped(),
            spool_bytes = spool.bytes(),
            "spool full: shed older data by priority"
        );
    }
    tracing::debug!(seq, records = batch.records.len(), "batch spooled");
    Ok(seq)
}

/// Gathers one batch from every enabled source without touching the network or the state
/// directory. Its `seq` is 0, which no real batch carries.
pub fn once(config: &AgentConfig) -> Result<Batch, RunError> {
    let mut sources = config.sources.build(&sources::BuildContext::default())?;
    std::thread::sleep(sources::performance::WARM_UP);
    let records = sources::gather_all(&mut sources, unix_ms());
    Ok(Batch { version: PROTOCOL_VERSION, seq: 0, sender: None, records })
}

/// Now as Unix milliseconds (0 if the clock is before 1970).
pub fn unix_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cycle_timestamps_stay_on_the_grid_within_the_tolerance_and_leave_it_beyond() {
        let ten = Duration::from_secs(10);
        let mut c = CycleClock::default();
        assert_eq!(c.stamp(1_000_003, ten), 1_000_003, "the first cycle starts the grid");
        assert_eq!(c.stamp(1_010_005, ten), 1_010_003, "2 ms of jitter: on the grid");
        assert_eq!(c.stamp(1_019_980, ten), 1_020_003, "23 ms early: on the grid");
        assert_eq!(c.stamp(1_030_200, ten), 1_030_200, "a tick 197 ms late is stamped as it came");
        assert_eq!(c.stamp(1_040_201, ten), 1_040_200, "and starts a new grid");
        assert_eq!(c.stamp(1_040_100, ten), 1_040_201, "a clock stepped back never repeats a timestamp");
        assert_eq!(c.stamp(1_100_210, Duration::from_secs(60)), 1_100_201, "a widened interval continues the grid");
    }
}
