//! `ampel-bench ingest` and `ampel-bench connections`: quinn agents with certificates made on
//! the fly by the deployment CA, against the collector's real QUIC listener, writer and fold
//! thread, all in this process on loopback.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ampel_collector::ingest::{IngestStats, Writer, quic};
use ampel_collector::pki::{InitOptions, Pki};
use ampel_collector::store::{Store, StoreOptions};
use ampel_protocol::{AckStatus, DeviceId, Limits, TenantId, codec, frame, tls};
use tokio::sync::{Semaphore, watch};

use super::{Scratch, metric_batch, now_ms, report};

/// Options of the ingest benchmark.
#[derive(Debug, clap::Args)]
pub struct IngestArgs {
    /// Agents, one QUIC connection each.
    #[arg(long, default_value_t = 50)]
    pub agents: usize,
    /// Batches each agent sends.
    #[arg(long, default_value_t = 100)]
    pub batches: usize,
    /// Samples per metric in a batch (10 metrics).
    #[arg(long, default_value_t = 100)]
    pub samples: i64,
    /// Batches in flight per agent (streams).
    #[arg(long, default_value_t = 8)]
    pub in_flight: usize,
    /// Where to create the scratch store and PKI (default: the system temp dir).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Keep the scratch directory.
    #[arg(long)]
    pub keep: bool,
}

/// Options of the connections benchmark.
#[derive(Debug, clap::Args)]
pub struct ConnectionsArgs {
    /// Agents connecting at once.
    #[arg(long, default_value_t = 1000)]
    pub agents: usize,
    /// Small batches (10 points) each agent sends, one after the other.
    #[arg(long, default_value_t = 10)]
    pub batches: usize,
    /// Handshakes in flight at once (agents reconnect with jitter, not all in the same
    /// millisecond).
    #[arg(long, default_value_t = 100)]
    pub concurrency: usize,
    /// Where to create the scratch store and PKI (default: the system temp dir).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Keep the scratch directory.
    #[arg(long)]
    pub keep: bool,
}

/// A collector listening on loopback.
struct Rig {
    pki: Pki,
    store: Store,
    stats: Arc<IngestStats>,
    addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    listener: tokio::task::JoinHandle<()>,
    writer: std::thread::JoinHandle<()>,
    clients: Vec<quinn::Endpoint>,
}

impl Rig {
    fn start(scratch: &Scratch) -> anyhow::Result<Rig> {
        tls::install_provider();
        let pki = Pki::init(&scratch.path().join("pki"), &InitOptions { names: vec!["127.0.0.1".into()], ..InitOptions::default() })?;
        // The same TLS set-up as `serve`: reloadable trust, data and enrollment ALPNs.
        let trust = ampel_collector::ingest::trust::Trust::load(pki.dir())?;
        let server = ampel_collector::server::server_tls_with(pki.dir(), &[ampel_protocol::ALPN_DATA], &trust)?;
        let store = Store::open(&scratch.path().join("store"), StoreOptions::default())?;
        let stats = Arc::new(IngestStats::default());
        let endpoint = quic::bind("127.0.0.1:0".parse()?, server, 1024)?;
        let addr = endpoint.local_addr()?;
        let (writer, writer_thread) = Writer::start(store.clone(), stats.clone());
        let (shutdown, rx) = watch::channel(false);
        let listener = tokio::spawn(quic::serve(endpoint, writer, Limits::default(), trust, None, rx));
        let clients =
            (0..4).map(|_| quinn::Endpoint::client("127.0.0.1:0".parse()?).map_err(anyhow::Error::from)).collect::<anyhow::Result<_>>()?;
        Ok(Rig { pki, store, stats, addr, shutdown, listener, writer: writer_thread, clients })
    }

    /// A client configuration with a fresh certificate for `device`.
    fn agent(&self, device: &str) -> anyhow::Result<quinn::ClientConfig> {
        let issued = self.pki.issue_device(&TenantId::new("bench")?, &DeviceId::new(device)?, 30)?;
        let chain = tls::parse_certs(issued.cert_pem.as_bytes())?;
        let key = tls::parse_key(issued.key_pem.as_bytes())?;
        let cfg = tls::client_config(&[self.pki.ca_der().clone()], chain, key, &[ampel_protocol::ALPN_DATA])?;
        Ok(quinn::ClientConfig::new(Arc::new(quinn::crypto::rustls::QuicClientConfig::try_from(cfg)?)))
    }

    async fn connect(&self, i: usize, cfg: quinn::ClientConfig) -> anyhow::Result<quinn::Connection> {
        let ep = &self.clients[i % self.clients.len()];
        Ok(ep.connect_with(cfg, self.addr, "127.0.0.1")?.await?)
    }

    async fn stop(self) {
        let _ = self.shutdown.send(true);
        let _ = self.listener.await;
        for c in &self.clients {
            c.close(0u32.into(), b"done");
        }
        let writer = self.writer;
        let _ = tokio::task::spawn_blocking(move || writer.join()).await;
    }
}

/// Sends one encoded frame on a fresh stream and waits for the collector's ack.
async fn send(conn: &quinn::Connection, frame_bytes: &[u8]) -> anyhow::Result<AckStatus> {
    let limits = Limits::default();
    let (mut tx, mut rx) = conn.open_bi().await?;
    tx.write_all(frame_bytes).await?;
    tx.finish()?;
    let resp = rx.read_to_end(64 << 10).await?;
    let (payload, _) = frame::split_frame(&resp, &limits)?.ok_or_else(|| anyhow::anyhow!("short ack"))?;
    Ok(codec::decode_ack(payload, &limits)?.status)
}

fn encode(batch: &ampel_protocol::Batch) -> anyhow::Result<Vec<u8>> {
    Ok(frame::encode_frame(&codec::encode_batch(batch)?, &Limits::default())?)
}

/// Runs the ingest benchmark.
pub async fn ingest(a: &IngestArgs) -> anyhow::Result<()> {
    let scratch = Scratch::new(a.dir.as_deref(), "ingest", a.keep)?;
    let rig = Arc::new(Rig::start(&scratch)?);
    let t0 = now_ms() - 2 * a.batches as i64 * a.samples * 10_000;
    // Encode everything first: the clients share the two cores with the collector.
    let mut agents = Vec::new();
    for i in 0..a.agents {
        let frames: Vec<Vec<u8>> = (0..a.batches)
            .map(|s| encode(&metric_batch(i, s as u64, 10, s as i64 * a.samples, a.samples, t0, 10_000)))
            .collect::<anyhow::Result<_>>()?;
        let conn = rig.connect(i, rig.agent(&format!("fw-{i:05}"))?).await?;
        agents.push((conn, frames));
    }
    let points = (a.agents * a.batches * 10 * a.samples as usize) as u64;
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for (conn, frames) in agents {
        let in_flight = Arc::new(Semaphore::new(a.in_flight));
        for f in frames {
            let permit = in_flight.clone().acquire_owned().await?;
            let conn = conn.clone();
            tasks.spawn(async move {
                let r = send(&conn, &f).await;
                drop(permit);
                r
            });
        }
    }
    let mut committed = 0;
    while let Some(r) = tasks.join_next().await {
        if r?? == AckStatus::Committed {
            committed += 1;
        }
    }
    let took = started.elapsed();
    anyhow::ensure!(committed == a.agents * a.batches, "only {committed} batches acknowledged as committed");
    report("ingest.agents", a.agents as f64, "connections");
    report("ingest.points", points as f64, "points");
    report("ingest.throughput", points as f64 / took.as_secs_f64(), "points/s (acknowledged, durable)");
    report("ingest.batches", (a.agents * a.batches) as f64 / took.as_secs_f64(), "batches/s");
    report("ingest.commits", rig.stats.commits.load(std::sync::atomic::Ordering::Relaxed) as f64, "transactions");
    while rig.store.log_len()? > 0 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    report("ingest.folded_wall", points as f64 / started.elapsed().as_secs_f64(), "points/s (until the log is empty)");
    let rig = Arc::try_unwrap(rig).map_err(|_| anyhow::anyhow!("rig still shared"))?;
    rig.stop().await;
    Ok(())
}

/// Runs the connections benchmark.
pub async fn connections(a: &ConnectionsArgs) -> anyhow::Result<()> {
    let scratch = Scratch::new(a.dir.as_deref(), "connections", a.keep)?;
    let rig = Arc::new(Rig::start(&scratch)?);
    let configs: Vec<quinn::ClientConfig> = (0..a.agents).map(|i| rig.agent(&format!("fw-{i:05}"))).collect::<anyhow::Result<_>>()?;
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    let gate = Arc::new(Semaphore::new(a.concurrency.max(1)));
    for (i, cfg) in configs.into_iter().enumerate() {
        let rig = rig.clone();
        let permit = gate.clone().acquire_owned().await?;
        tasks.spawn(async move {
            let c = rig.connect(i, cfg).await;
            drop(permit);
            c
        });
    }
    let mut conns = Vec::new();
    while let Some(r) = tasks.join_next().await {
        conns.push(r??);
    }
    let handshakes = started.elapsed();
    report("connections.agents", a.agents as f64, "connections");
    report("connections.handshakes", a.agents as f64 / handshakes.as_secs_f64(), "handshakes/s (mutual TLS)");
    let t0 = now_ms() - 3_600_000;
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for (i, conn) in conns.iter().enumerate() {
        let conn = conn.clone();
        let frames: Vec<Vec<u8>> =
            (0..a.batches).map(|s| encode(&metric_batch(i, s as u64, 10, s as i64, 1, t0, 10_000))).collect::<anyhow::Result<_>>()?;
        tasks.spawn(async move {
            let mut acks = Vec::with_capacity(frames.len());
            for f in &frames {
                let sent = Instant::now();
                anyhow::ensure!(send(&conn, f).await? == AckStatus::Committed, "batch not committed");
                acks.push(sent.elapsed());
            }
            Ok::<_, anyhow::Error>(acks)
        });
    }
    let mut latencies = Vec::new();
    while let Some(r) = tasks.join_next().await {
        latencies.extend(r??);
    }
    let took = started.elapsed();
    let (p50, p99) = super::percentiles(latencies);
    report("connections.batches", (a.agents * a.batches) as f64 / took.as_secs_f64(), "batches/s (10 points each, acknowledged)");
    report("connections.ack_p50", p50, "ms");
    report("connections.ack_p99", p99, "ms");
    report("connections.commits", rig.stats.commits.load(std::sync::atomic::Ordering::Relaxed) as f64, "transactions");
    drop(conns);
    let rig = Arc::try_unwrap(rig).map_err(|_| anyhow::anyhow!("rig still shared"))?;
    rig.stop().await;
    Ok(())
}
