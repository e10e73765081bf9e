//! `ampel-bench ingest` and `ampel-bench connections`: quinn agents with certificates made on
//! the fly by the deployment CA, against the collector's real QUIC listener, writer and fold
//! thread on loopback — in this process, or with `--child` as a real `ampel-collector serve`
//! child process, so that its memory and CPU time are measured apart from the load generator's.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ampel_collector::ingest::{IngestStats, Writer, quic};
use ampel_collector::pki::{InitOptions, Pki};
use ampel_collector::store::{Store, StoreOptions};
use ampel_protocol::{AckStatus, DeviceId, Limits, TenantId, codec, frame, tls};
use tokio::sync::{Semaphore, watch};

use super::child::{self, ChildCollector};
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
    /// Run the collector as an `ampel-collector serve` child process (next to this binary).
    #[arg(long)]
    pub child: bool,
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
    /// Batches each agent has in flight at once (streams), when not holding.
    #[arg(long, default_value_t = 1)]
    pub in_flight: usize,
    /// Hold every connection this long (`60` or `60s`), each agent sending one small batch at
    /// `--rate`, instead of sending `--batches` as fast as it can.
    #[arg(long, value_parser = parse_secs)]
    pub hold: Option<f64>,
    /// Batches per second per agent while holding (`1` or `1/s`).
    #[arg(long, value_parser = parse_rate, default_value = "1")]
    pub rate: f64,
    /// Run the collector as an `ampel-collector serve` child process (next to this binary) and
    /// report its memory.
    #[arg(long)]
    pub child: bool,
    /// The collector's `[quic] max-streams` with `--child`.
    #[arg(long, default_value_t = 16)]
    pub max_streams: u32,
    /// Where to create the scratch store and PKI (default: the system temp dir).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Keep the scratch directory.
    #[arg(long)]
    pub keep: bool,
}

fn parse_secs(s: &str) -> Result<f64, String> {
    let v: f64 = s.strip_suffix('s').unwrap_or(s).parse().map_err(|e| format!("{s}: {e}"))?;
    if v.is_finite() && v > 0.0 { Ok(v) } else { Err(format!("{s}: must be positive")) }
}

fn parse_rate(s: &str) -> Result<f64, String> {
    parse_secs(s.strip_suffix("/s").unwrap_or(s))
}

/// The collector under test.
#[allow(clippy::large_enum_variant)] // one per benchmark run
enum Collector {
    /// The listener, writer and fold thread in this process.
    InProcess {
        store: Store,
        stats: Arc<IngestStats>,
        shutdown: watch::Sender<bool>,
        listener: tokio::task::JoinHandle<()>,
        writer: std::thread::JoinHandle<()>,
    },
    /// `ampel-collector serve` as a child process.
    Child(ChildCollector),
}

/// A collector listening on loopback, and the client endpoints of the agents.
struct Rig {
    pki: Pki,
    addr: SocketAddr,
    collector: Collector,
    clients: Vec<quinn::Endpoint>,
}

impl Rig {
    fn start(scratch: &Scratch, child: bool, max_streams: u32) -> anyhow::Result<Rig> {
        tls::install_provider();
        let (pki, addr, collector) = if child {
            let (c, pki) = ChildCollector::start(scratch.path(), max_streams)?;
            (pki, c.addr, Collector::Child(c))
        } else {
            let pki = Pki::init(&scratch.path().join("pki"), &InitOptions { names: vec!["127.0.0.1".into()], ..InitOptions::default() })?;
            // The same TLS set-up as `serve`: reloadable trust, data and enrollment ALPNs.
            let trust = ampel_collector::ingest::trust::Trust::load(pki.dir())?;
            let server = ampel_collector::server::server_tls_with(pki.dir(), &[ampel_protocol::ALPN_DATA], &trust)?;
            let store = Store::open(&scratch.path().join("store"), StoreOptions::default())?;
            let stats = Arc::new(IngestStats::default());
            let endpoint = quic::bind("127.0.0.1:0".parse()?, server, max_streams)?;
            let addr = endpoint.local_addr()?;
            let (writer, writer_thread) = Writer::start(store.clone(), stats.clone());
            let (shutdown, rx) = watch::channel(false);
            let listener = tokio::spawn(quic::serve(endpoint, quic::Shared::new(writer, trust), rx));
            (pki, addr, Collector::InProcess { store, stats, shutdown, listener, writer: writer_thread })
        };
        // One UDP socket holds many connections, each with its own certificate: four sockets
        // spread the client side over the runtime's threads.
        let clients = (0..4)
            .map(|_| {
                // Thousands of agents share each of these sockets (in the field each has its
                // own): give them the listener's buffer size so that the drops are the collector's.
                let socket = std::net::UdpSocket::bind("127.0.0.1:0")?;
                quic::set_socket_buffers(&socket);
                let runtime = quinn::default_runtime().ok_or_else(|| anyhow::anyhow!("no async runtime"))?;
                Ok(quinn::Endpoint::new(quinn::EndpointConfig::default(), None, socket, runtime)?)
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(Rig { pki, addr, collector, clients })
    }

    /// A client configuration with a fresh certificate for `device`.
    fn agent(&self, device: &str) -> anyhow::Result<quinn::ClientConfig> {
        let issued = self.pki.issue_device(&TenantId::new("bench")?, &DeviceId::new(device)?, 30)?;
        let chain = tls::parse_certs(issued.cert_pem.as_bytes())?;
        let key = tls::parse_key(issued.key_pem.as_bytes())?;
        let cfg = tls::client_config(&[self.pki.ca_der().clone()], chain, key, &[ampel_protocol::ALPN_DATA])?;
        let mut client = quinn::ClientConfig::new(Arc::new(quinn::crypto::rustls::QuicClientConfig::try_from(cfg)?));
        // As `ampel-agent` does (agent/src/transport/quic.rs): 30 s idle timeout, 10 s keep-alive.
        let mut transport = quinn::TransportConfig::default();
        transport
            .max_idle_timeout(Some(quinn::IdleTimeout::try_from(Duration::from_secs(30))?))
            .keep_alive_interval(Some(Duration::from_secs(10)));
        client.transport_config(Arc::new(transport));
        Ok(client)
    }

    async fn connect(&self, i: usize, cfg: quinn::ClientConfig) -> anyhow::Result<quinn::Connection> {
        let ep = &self.clients[i % self.clients.len()];
        Ok(ep.connect_with(cfg, self.addr, "127.0.0.1")?.await?)
    }

    /// Group commits so far (in-process only).
    fn commits(&self) -> Option<u64> {
        match &self.collector {
            Collector::InProcess { stats, .. } => Some(stats.commits.load(std::sync::atomic::Ordering::Relaxed)),
            Collector::Child(_) => None,
        }
    }

    /// Resident memory of the child collector.
    fn collector_rss(&self) -> Option<u64> {
        match &self.collector {
            Collector::InProcess { .. } => None,
            Collector::Child(c) => c.rss().ok(),
        }
    }

    /// CPU seconds per thread: of this process, and of the child collector if there is one.
    fn cpu(&self) -> anyhow::Result<Cpu> {
        let child = match &self.collector {
            Collector::InProcess { .. } => None,
            Collector::Child(c) => Some(child::cpu_by_thread(&c.pid().to_string())?),
        };
        Ok(Cpu { own: child::cpu_by_thread("self")?, child })
    }

    async fn stop(self) -> anyhow::Result<()> {
        for c in &self.clients {
            c.close(0u32.into(), b"done");
        }
        match self.collector {
            Collector::InProcess { shutdown, listener, writer, .. } => {
                let _ = shutdown.send(true);
                let _ = listener.await;
                let _ = tokio::task::spawn_blocking(move || writer.join()).await;
            }
            Collector::Child(c) => tokio::task::spawn_blocking(move || c.stop()).await??,
        }
        Ok(())
    }
}

/// CPU seconds per thread name at one moment.
struct Cpu {
    own: std::collections::BTreeMap<String, f64>,
    child: Option<std::collections::BTreeMap<String, f64>>,
}

impl Cpu {
    /// Prints the CPU time spent since `before`: the collector's and the load generator's.
    fn report_since(&self, before: &Cpu, wall: Duration) {
        match (&self.child, &before.child) {
            (Some(now), Some(then)) => {
                let c = child::report_cpu("collector", then, now);
                let l = child::report_cpu("loadgen", &before.own, &self.own);
                report("cpu.collector_share", 100.0 * c / (c + l).max(1e-9), "% of the CPU time both sides used");
            }
            _ => {
                child::report_cpu("process", &before.own, &self.own);
            }
        }
        report("cpu.wall", wall.as_secs_f64(), "s");
    }
}

/// A bench agent's connection with its idle streams: like `ampel-agent`, it sends frame after
/// frame on the streams it has open and opens a new one only when all are busy.
struct Link {
    conn: quinn::Connection,
    idle: std::sync::Mutex<Vec<(quinn::SendStream, quinn::RecvStream)>>,
}

impl Link {
    fn new(conn: quinn::Connection) -> Arc<Link> {
        Arc::new(Link { conn, idle: std::sync::Mutex::new(Vec::new()) })
    }
}

/// Sends one encoded frame and waits for the collector's ack.
async fn send(link: &Link, frame_bytes: &[u8]) -> anyhow::Result<AckStatus> {
    let limits = Limits::default();
    let idle = link.idle.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.pop();
    let (mut tx, mut rx) = match idle {
        Some(pair) => pair,
        None => link.conn.open_bi().await?,
    };
    tx.write_all(frame_bytes).await?;
    let mut header = [0u8; frame::HEADER_LEN];
    rx.read_exact(&mut header).await?;
    let len = frame::payload_len(header, &limits)?;
    let mut payload = vec![0u8; len];
    rx.read_exact(&mut payload).await?;
    let status = codec::decode_ack(&payload, &limits)?.status;
    link.idle.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.push((tx, rx));
    Ok(status)
}

fn encode(batch: &ampel_protocol::Batch) -> anyhow::Result<Vec<u8>> {
    Ok(frame::encode_frame(&codec::encode_batch(batch)?, &Limits::default())?)
}

/// Runs the ingest benchmark.
pub async fn ingest(a: &IngestArgs) -> anyhow::Result<()> {
    let scratch = Scratch::new(a.dir.as_deref(), "ingest", a.keep)?;
    let rig = Arc::new(Rig::start(&scratch, a.child, 1024)?);
    let t0 = now_ms() - 2 * a.batches as i64 * a.samples * 10_000;
    // Encode everything first: the clients share the two cores with the collector.
    let mut agents = Vec::new();
    for i in 0..a.agents {
        let frames: Vec<Vec<u8>> = (0..a.batches)
            .map(|s| encode(&metric_batch(i, s as u64, 10, s as i64 * a.samples, a.samples, t0, 10_000)))
            .collect::<anyhow::Result<_>>()?;
        let conn = Link::new(rig.connect(i, rig.agent(&format!("fw-{i:05}"))?).await?);
        agents.push((conn, frames));
    }
    let points = (a.agents * a.batches * 10 * a.samples as usize) as u64;
    let cpu_before = rig.cpu()?;
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
    let cpu_after = rig.cpu()?;
    anyhow::ensure!(committed == a.agents * a.batches, "only {committed} batches acknowledged as committed");
    report("ingest.agents", a.agents as f64, "connections");
    report("ingest.points", points as f64, "points");
    report("ingest.throughput", points as f64 / took.as_secs_f64(), "points/s (acknowledged, durable)");
    report("ingest.batches", (a.agents * a.batches) as f64 / took.as_secs_f64(), "batches/s");
    cpu_after.report_since(&cpu_before, took);
    if let Collector::InProcess { store, .. } = &rig.collector {
        report("ingest.commits", rig.commits().unwrap_or(0) as f64, "transactions");
        while store.log_len()? > 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        report("ingest.folded_wall", points as f64 / started.elapsed().as_secs_f64(), "points/s (until the log is empty)");
    }
    let rig = Arc::try_unwrap(rig).map_err(|_| anyhow::anyhow!("rig still shared"))?;
    rig.stop().await
}

fn report_rss(name: &str, rig: &Rig) -> Option<u64> {
    let rss = rig.collector_rss()?;
    report(name, rss as f64 / f64::from(1u32 << 20), "MiB (collector RSS)");
    Some(rss)
}

/// Runs the connections benchmark.
pub async fn connections(a: &ConnectionsArgs) -> anyhow::Result<()> {
    let scratch = Scratch::new(a.dir.as_deref(), "connections", a.keep)?;
    let rig = Arc::new(Rig::start(&scratch, a.child, if a.child { a.max_streams } else { 1024 })?);
    let configs: Vec<quinn::ClientConfig> = (0..a.agents).map(|i| rig.agent(&format!("fw-{i:05}"))).collect::<anyhow::Result<_>>()?;
    let rss_idle = report_rss("connections.rss_idle", &rig);
    let drops_before = child::udp_rcvbuf_errors();
    let cpu_before = rig.cpu()?;
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    let gate = Arc::new(Semaphore::new(a.concurrency.max(1)));
    for (i, cfg) in configs.into_iter().enumerate() {
        let rig = rig.clone();
        let permit = gate.clone().acquire_owned().await?;
        tasks.spawn(async move {
            // Like an agent: a handshake that fails is retried after a jittered pause.
            let mut retries = 0u32;
            let c = loop {
                match rig.connect(i, cfg.clone()).await {
                    Ok(c) => break Ok(c),
                    Err(e) if retries >= 5 => break Err(e),
                    Err(_) => {
                        retries += 1;
                        tokio::time::sleep(Duration::from_millis(500 + super::mix(i as u64 + u64::from(retries)) % 1000)).await;
                    }
                }
            };
            drop(permit);
            c.map(|c| (i, c, retries))
        });
    }
    let mut conns = Vec::new();
    let mut retries = 0;
    while let Some(r) = tasks.join_next().await {
        let (i, c, r) = r??;
        retries += r;
        conns.push((i, Link::new(c)));
    }
    let handshakes = started.elapsed();
    report("connections.agents", a.agents as f64, "connections");
    report("connections.handshakes", a.agents as f64 / handshakes.as_secs_f64(), "handshakes/s (mutual TLS)");
    report("connections.handshake_retries", f64::from(retries), "handshakes failed and retried");
    let cpu_connected = rig.cpu()?;
    cpu_connected.report_since(&cpu_before, handshakes);
    // The server holds a connection's state only once the handshake is done on its side too.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_connected = report_rss("connections.rss_connected", &rig);
    if let (Some(idle), Some(conn)) = (rss_idle, rss_connected) {
        report(
            "connections.rss_per_connection",
            conn.saturating_sub(idle) as f64 / a.agents as f64 / 1024.0,
            "KiB (connected, no batch yet)",
        );
    }
    let t0 = now_ms() - 3_600_000;
    let cpu_before = rig.cpu()?;
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    let deadline = a.hold.map(|h| started + Duration::from_secs_f64(h));
    for (i, conn) in conns.iter().cloned() {
        let (in_flight, batches, rate) = (a.in_flight.max(1), a.batches, a.rate);
        tasks.spawn(async move {
            let mut acks = Vec::new();
            if let Some(deadline) = deadline {
                // One small batch every 1/rate s, agents spread evenly over the period.
                let period = Duration::from_secs_f64(1.0 / rate);
                let phase = period.mul_f64((super::mix(i as u64) % 10_000) as f64 / 10_000.0);
                let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + phase, period);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                let mut seq = 0u64;
                loop {
                    tick.tick().await;
                    if Instant::now() >= deadline {
                        break;
                    }
                    let f = encode(&metric_batch(i, seq, 10, seq as i64, 1, t0, 10_000))?;
                    let sent = Instant::now();
                    match send(&conn, &f).await {
                        Ok(AckStatus::Committed) => acks.push(sent.elapsed()),
                        Ok(other) => anyhow::bail!("batch not committed: {other:?}"),
                        // A lost connection is counted, not fatal: the others go on.
                        Err(e) => return Ok((acks, Some(e.to_string()))),
                    }
                    seq += 1;
                }
                return Ok((acks, None));
            }
            let frames: Vec<Vec<u8>> =
                (0..batches).map(|s| encode(&metric_batch(i, s as u64, 10, s as i64, 1, t0, 10_000))).collect::<anyhow::Result<_>>()?;
            let gate = Arc::new(Semaphore::new(in_flight));
            let mut sends = tokio::task::JoinSet::new();
            for f in frames {
                let permit = gate.clone().acquire_owned().await?;
                let conn = conn.clone();
                sends.spawn(async move {
                    let sent = Instant::now();
                    let r = send(&conn, &f).await;
                    drop(permit);
                    anyhow::ensure!(r? == AckStatus::Committed, "batch not committed");
                    Ok(sent.elapsed())
                });
            }
            while let Some(r) = sends.join_next().await {
                acks.push(r??);
            }
            Ok::<_, anyhow::Error>((acks, None))
        });
    }
    let mut latencies = Vec::new();
    let mut lost = 0;
    while let Some(r) = tasks.join_next().await {
        let (acks, failed) = r??;
        latencies.extend(acks);
        if let Some(e) = failed {
            if lost == 0 {
                eprintln!("first lost connection: {e}");
            }
            lost += 1;
        }
    }
    let took = started.elapsed();
    let sent = latencies.len();
    let (p50, p99) = super::percentiles(latencies);
    report("connections.acknowledged", sent as f64, "batches");
    report("connections.lost", f64::from(lost), "agents whose connection failed while sending");
    report("connections.batches", sent as f64 / took.as_secs_f64(), "batches/s (10 points each, acknowledged)");
    report("connections.ack_p50", p50, "ms");
    report("connections.ack_p99", p99, "ms");
    if let Some(commits) = rig.commits() {
        report("connections.commits", commits as f64, "transactions");
    }
    rig.cpu()?.report_since(&cpu_before, took);
    if let (Some(idle), Some(held)) = (rss_idle, report_rss("connections.rss_after", &rig)) {
        report(
            "connections.rss_per_connection_after",
            held.saturating_sub(idle) as f64 / a.agents as f64 / 1024.0,
            "KiB (after sending, still connected)",
        );
    }
    // Everyone still connected at the end: the collector held them all.
    let open = conns.iter().filter(|(_, c)| c.conn.close_reason().is_none()).count();
    report("connections.open_at_end", open as f64, "connections");
    if let (Some(before), Some(after)) = (drops_before, child::udp_rcvbuf_errors()) {
        report("connections.udp_rcvbuf_drops", after.saturating_sub(before) as f64, "datagrams (machine-wide)");
    }
    drop(conns);
    let rig = Arc::try_unwrap(rig).map_err(|_| anyhow::anyhow!("rig still shared"))?;
    rig.stop().await
}
