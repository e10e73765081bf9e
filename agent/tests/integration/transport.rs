//! The QUIC transport against the in-process collector stand-in.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use ampel_agent::AgentConfig;
use ampel_agent::backoff::BackoffConfig;
use ampel_agent::transport::quic::{CLOSE_SHUTDOWN, QuicError, QuicOptions, QuicTransport};
use std::sync::{Arc, Mutex};

use ampel_agent::spool::Spool;
use ampel_agent::transport::{Credentials, SharedSpool, Status, Transport};
use ampel_protocol::{Batch, Metric, PROTOCOL_VERSION, Record};
use quinn::ConnectionError;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::support::{Event, Pki, Policy, Server, write_config};

fn options() -> QuicOptions {
    QuicOptions {
        backoff: BackoffConfig { base: Duration::from_millis(20), cap: Duration::from_millis(200), quiet_at_cap: Duration::from_secs(1) },
        ..QuicOptions::default()
    }
}

fn transport(dir: &Path, pki: &Pki, addr: SocketAddr) -> QuicTransport {
    pki.write_device_files(dir);
    let config = AgentConfig::load(&write_config(dir, addr, "1s")).unwrap();
    let creds = Credentials::load(&config.collector).unwrap();
    QuicTransport::new(&config.collector, creds, options()).unwrap()
}

struct Agent {
    tx: Option<mpsc::Sender<u64>>,
    spool: SharedSpool,
    _dir: Option<tempfile::TempDir>,
    status: watch::Receiver<Status>,
    task: JoinHandle<()>,
}

impl Agent {
    fn start(t: QuicTransport) -> Agent {
        let dir = tempfile::tempdir().unwrap();
        let spool = Arc::new(Mutex::new(Spool::open(dir.path(), 1 << 20).unwrap()));
        Agent::with_spool(t, spool, Some(dir))
    }

    fn with_spool(t: QuicTransport, spool: SharedSpool, dir: Option<tempfile::TempDir>) -> Agent {
        let (tx, rx) = mpsc::channel(16);
        let status = t.status();
        let task = tokio::spawn(t.run(spool.clone(), rx));
        Agent { tx: Some(tx), spool, _dir: dir, status, task }
    }

    /// Spools a batch, then wakes the transport — as the run loop does.
    async fn send(&self, seq: u64) {
        self.spool.lock().unwrap().append(&batch(seq), &[]).unwrap();
        let tx = self.tx.as_ref().unwrap();
        tx.send(seq).await.unwrap();
    }

    /// Waits until the status satisfies `pred`, or panics showing the last status.
    async fn wait_for(&mut self, what: &str, pred: impl Fn(&Status) -> bool) -> Status {
        let r = tokio::time::timeout(Duration::from_secs(20), self.status.wait_for(|s| pred(s))).await.map(|r| r.map(|s| s.clone()));
        match r {
            Ok(Ok(s)) => s,
            _ => panic!("transport never reached: {what}; last status {:?}", *self.status.borrow()),
        }
    }
}

fn batch(seq: u64) -> Batch {
    let m = Metric { ts: 1_700_000_000_000 + seq as i64, name: "cpu.usage_percent".into(), labels: vec![], value: 12.5 };
    Batch { version: PROTOCOL_VERSION, seq, sender: Some("dev-1".into()), records: vec![Record::Metric(m)] }
}

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

#[tokio::test]
async fn batches_reach_the_collector_and_are_released_by_their_acks() {
    let pki = Pki::new();
    let mut server = Server::start(&pki, &pki, loopback()).await;
    let dir = tempfile::tempdir().unwrap();
    let mut agent = Agent::start(transport(dir.path(), &pki, server.addr));
    for seq in 1..=5 {
        agent.send(seq).await;
    }
    let s = agent.wait_for("5 acked", |s| s.acked == 5).await;
    assert_eq!((s.queued, s.in_flight, s.rejected, s.dropped, s.connected), (0, 0, 0, 0, true));

    let mut seqs = Vec::new();
    for e in server.drain_events(Duration::from_millis(200)).await {
        match e {
            Event::Connected(id) => assert_eq!(id.to_string(), "acme/dev-1"),
            Event::Batch(b) => {
                assert_eq!(b, batch(b.seq), "batch decoded differently from what was sent");
                seqs.push(b.seq);
            }
            Event::Closed(e) => panic!("connection closed: {e}"),
        }
    }
    seqs.sort();
    assert_eq!(seqs, [1, 2, 3, 4, 5]);
}

/// Streams stay open for the next batch; a collector allowing fewer streams than the agent
/// has batches in flight must not stall it: batches wait for a stream to come back.
#[tokio::test]
async fn a_collector_allowing_fewer_streams_than_batches_in_flight_gets_them_all_on_one_connection() {
    let pki = Pki::new();
    let mut server = Server::start_with_streams(&pki, &pki, loopback(), Some(2)).await;
    let dir = tempfile::tempdir().unwrap();
    let mut agent = Agent::start(transport(dir.path(), &pki, server.addr));
    assert!(options().max_in_flight > 2);
    for seq in 1..=40 {
        agent.send(seq).await;
    }
    let s = agent.wait_for("40 acked", |s| s.acked == 40).await;
    assert_eq!((s.queued, s.in_flight, s.rejected, s.connected), (0, 0, 0, true));
    let mut connections = 0;
    let mut seqs = Vec::new();
    for e in server.drain_events(Duration::from_millis(200)).await {
        match e {
            Event::Connected(_) => connections += 1,
            Event::Batch(b) => seqs.push(b.seq),
            Event::Closed(e) => panic!("connection closed: {e}"),
        }
    }
    seqs.sort();
    assert_eq!(seqs, (1..=40).collect::<Vec<_>>(), "each batch once");
    assert_eq!(connections, 1, "no reconnect");
}

#[tokio::test]
async fn a_batch_is_held_until_its_ack_arrives() {
    let pki = Pki::new();
    let mut server = Server::start(&pki, &pki, loopback()).await;
    server.set_policy(Policy { hold: true, reject: false });
    let dir = tempfile::tempdir().unwrap();
    let mut agent = Agent::start(transport(dir.path(), &pki, server.addr));
    for seq in 1..=3 {
        agent.send(seq).await;
    }
    for _ in 0..3 {
        server.next_batch().await;
    }
    // Received and its stream finished, but not acknowledged: still held.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let s = agent.status.borrow().clone();
    assert_eq!((s.acked, s.queued, s.in_flight), (0, 3, 3), "{s:?}");

    server.set_policy(Policy::default());
    let s = agent.wait_for("3 acked", |s| s.acked == 3).await;
    assert_eq!(s.queued, 0);
}

#[tokio::test]
async fn a_rejected_batch_is_dropped_and_never_resent() {
    let pki = Pki::new();
    let mut server = Server::start(&pki, &pki, loopback()).await;
    server.set_policy(Policy { hold: false, reject: true });
    let dir = tempfile::tempdir().unwrap();
    let mut agent = Agent::start(transport(dir.path(), &pki, server.addr));
    agent.send(7).await;
    let s = agent.wait_for("1 rejected", |s| s.rejected == 1).await;
    assert_eq!((s.acked, s.queued), (0, 0));
    assert_eq!(server.next_batch().await.seq, 7);
    let later: Vec<u64> = server
        .drain_events(Duration::from_millis(500))
        .await
        .into_iter()
        .filter_map(|e| match e {
            Event::Batch(b) => Some(b.seq),
            _ => None,
        })
        .collect();
    assert!(later.is_empty(), "rejected batch was resent: {later:?}");
}

#[tokio::test]
async fn unacked_batches_are_resent_in_order_when_the_collector_comes_back() {
    let pki = Pki::new();
    let mut server = Server::start(&pki, &pki, loopback()).await;
    let addr = server.addr;
    let dir = tempfile::tempdir().unwrap();
    let mut agent = Agent::start(transport(dir.path(), &pki, addr));
    agent.send(1).await;
    agent.send(2).await;
    agent.wait_for("2 acked", |s| s.acked == 2).await;
    assert_eq!((server.next_batch().await.seq, server.next_batch().await.seq), (1, 2));

    // Batch 3 arrives but the collector goes away before acknowledging it.
    server.set_policy(Policy { hold: true, reject: false });
    agent.send(3).await;
    assert_eq!(server.next_batch().await.seq, 3);
    server.stop().await;
    let s = agent.wait_for("disconnected", |s| !s.connected).await;
    assert_eq!(s.queued, 1);
    // Batch 4 is gathered while the collector is down.
    agent.send(4).await;
    agent.wait_for("4 queued", |s| s.queued == 2).await;

    let mut server = Server::start(&pki, &pki, addr).await;
    let mut resent = vec![server.next_batch().await.seq, server.next_batch().await.seq];
    assert_eq!(resent[0], 3, "oldest first");
    resent.sort();
    assert_eq!(resent, [3, 4]);
    let s = agent.wait_for("4 acked", |s| s.acked == 4).await;
    assert_eq!((s.queued, s.last_error), (0, None));
}

#[tokio::test]
async fn a_collector_with_a_certificate_from_another_ca_is_refused_clearly() {
    let (ours, theirs) = (Pki::new(), Pki::new());
    let server = Server::start(&theirs, &ours, loopback()).await;
    let dir = tempfile::tempdir().unwrap();
    let t = transport(dir.path(), &ours, server.addr);
    let err = t.connect(&mut None, &server.addr.to_string().parse::<ampel_agent::config::CollectorAddress>().unwrap()).await.unwrap_err();
    assert!(matches!(err, QuicError::ServerUntrusted(_)), "{err:?}");
    let msg = err.to_string();
    assert!(msg.starts_with("collector's certificate not accepted: ") && msg.contains("UnknownIssuer"), "{msg}");

    // The running transport reports the same and keeps the batch.
    let mut agent = Agent::start(t);
    agent.send(1).await;
    let s = agent.wait_for("an error", |s| s.last_error.is_some()).await;
    assert!(s.last_error.unwrap().contains("not accepted"));
    assert_eq!(s.acked, 0);
}

#[tokio::test]
async fn a_collector_that_refuses_our_certificate_says_so() {
    // Another deployment's CA under another name (alert UnknownCA), and under the same name
    // (the signature check fails: alert DecryptError). Both must read as a refused certificate.
    for same_name in [false, true] {
        let ours = Pki::named("Ampel CA one");
        let theirs = Pki::named(if same_name { "Ampel CA one" } else { "Ampel CA two" });
        // The collector's certificate is one we trust, but it only accepts devices of another CA.
        let server = Server::start(&ours, &theirs, loopback()).await;
        let dir = tempfile::tempdir().unwrap();
        let mut agent = Agent::start(transport(dir.path(), &ours, server.addr));
        agent.send(1).await;
        let s = agent.wait_for("an error", |s| s.last_error.is_some()).await;
        let e = s.last_error.unwrap();
        assert!(e.starts_with("collector refused our certificate: "), "{e}");
        assert_eq!((s.acked, s.queued), (0, 1));
    }
}

#[tokio::test]
async fn closing_the_channel_drains_acks_and_closes_with_a_reason() {
    let pki = Pki::new();
    let mut server = Server::start(&pki, &pki, loopback()).await;
    let dir = tempfile::tempdir().unwrap();
    let mut agent = Agent::start(transport(dir.path(), &pki, server.addr));
    agent.send(1).await;
    agent.send(2).await;
    drop(agent.tx.take());
    tokio::time::timeout(Duration::from_secs(5), agent.task).await.unwrap().unwrap();
    assert_eq!(agent.status.borrow().acked, 2, "outstanding acks were not awaited");
    match server.next_close().await {
        ConnectionError::ApplicationClosed(c) => {
            assert_eq!(c.error_code, CLOSE_SHUTDOWN.into());
            assert_eq!(&c.reason[..], b"agent shutting down");
        }
        other => panic!("closed without a reason: {other}"),
    }
}

#[tokio::test]
async fn batches_left_in_the_spool_by_a_stopped_agent_are_sent_by_the_next() {
    let pki = Pki::new();
    let spool_dir = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    {
        // No collector: the batches stay in the spool.
        let dead: SocketAddr =
            format!("127.0.0.1:{}", std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()).parse().unwrap();
        let spool = Arc::new(Mutex::new(Spool::open(spool_dir.path(), 1 << 20).unwrap()));
        let mut agent = Agent::with_spool(transport(dir.path(), &pki, dead), spool, None);
        for seq in 1..=3 {
            agent.send(seq).await;
        }
        agent.wait_for("an error", |s| s.last_error.is_some()).await;
        drop(agent.tx.take());
        tokio::time::timeout(Duration::from_secs(5), agent.task).await.unwrap().unwrap();
    }
    let mut server = Server::start(&pki, &pki, loopback()).await;
    let spool = Arc::new(Mutex::new(Spool::open(spool_dir.path(), 1 << 20).unwrap()));
    let mut agent = Agent::with_spool(transport(dir.path(), &pki, server.addr), spool, None);
    let s = agent.wait_for("3 acked", |s| s.acked == 3).await;
    assert_eq!(s.queued, 0);
    let mut seqs: Vec<u64> = server
        .drain_events(Duration::from_millis(200))
        .await
        .into_iter()
        .filter_map(|e| match e {
            Event::Batch(b) => Some(b.seq),
            _ => None,
        })
        .collect();
    seqs.sort();
    assert_eq!(seqs, [1, 2, 3]);
}
