//! The main loop: every interval, gather from all sources into a numbered batch and hand it to
//! the transport; on shutdown, stop gathering and let the transport drain.
//!
//! The gatherer and the transport run concurrently on one thread. They share nothing but a
//! channel: dropping its sender is the transport's signal to flush outstanding acks and close.

use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ampel_protocol::{Batch, PROTOCOL_VERSION};
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, MissedTickBehavior};

use crate::config::{AgentConfig, TransportKind};
use crate::seq::{SeqError, SeqStore};
use crate::sources::{self, Source, SourceError};
use crate::transport::quic::{QuicOptions, QuicTransport};
use crate::transport::{Credentials, Status, Transport, TransportError};

/// How often the agent logs its delivery counters.
pub const STATS_EVERY: Duration = Duration::from_secs(300);

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
    /// The transport task ended while the agent was still producing batches (a bug).
    #[error("the transport stopped unexpectedly")]
    TransportStopped,
}

/// The transports the config can name.
enum AnyTransport {
    Quic(QuicTransport),
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
            TransportKind::Quic => AnyTransport::Quic(QuicTransport::new(&config.collector, creds, quic)?),
        };
        let sources = config.sources.build()?;
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
        let names: Vec<&str> = sources.iter().map(|s| s.name()).collect();
        tracing::info!(
            version = env!("CARGO_PKG_VERSION"),
            interval = %config.interval,
            sources = ?names,
            collector = %config.collector.address,
            device = sender.as_deref().unwrap_or("?"),
            "agent started"
        );
        let gatherer = Gatherer { sources, seqs, sender, interval: config.interval.get() };
        let systemd = crate::systemd::Notifier::from_env();
        systemd.ready(&format!("sending to {}", config.collector.address));
        let result = match transport {
            AnyTransport::Quic(t) => drive(gatherer, t, shutdown).await,
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
}

/// Size of the hand-over channel; the transport takes batches off it at once, so it only
/// smooths a moment of contention.
const CHANNEL: usize = 16;

async fn drive<T: Transport>(gatherer: Gatherer, transport: T, shutdown: impl Future<Output = ()>) -> Result<(), RunError> {
    let (tx, rx) = mpsc::channel(CHANNEL);
    let status = transport.status();
    let (produced, ()) = tokio::join!(produce(gatherer, tx, status, shutdown), transport.run(rx));
    produced
}

async fn produce(
    mut g: Gatherer,
    tx: mpsc::Sender<Batch>,
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
    let mut watchdog = crate::systemd::WatchdogTimer::from_env();
    let systemd = crate::systemd::Notifier::from_env();
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
            }
            _ = ticker.tick() => {
                let now = unix_ms();
                let records = sources::gather_all(&mut g.sources, now);
                let seq = g.seqs.next_seq()?;
                tracing::debug!(seq, records = records.len(), "batch gathered");
                let batch = Batch { version: PROTOCOL_VERSION, seq, sender: g.sender.clone(), records };
                tx.send(batch).await.map_err(|_| RunError::TransportStopped)?;
            }
        }
    }
}

/// Gathers one batch from every enabled source without touching the network or the state
/// directory. Its `seq` is 0, which no real batch carries.
pub fn once(config: &AgentConfig) -> Result<Batch, RunError> {
    let mut sources = config.sources.build()?;
    std::thread::sleep(sources::performance::WARM_UP);
    let records = sources::gather_all(&mut sources, unix_ms());
    Ok(Batch { version: PROTOCOL_VERSION, seq: 0, sender: None, records })
}

/// Now as Unix milliseconds (0 if the clock is before 1970).
pub fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
