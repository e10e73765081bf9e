//! Test support: a throw-away PKI (rcgen) and an in-process QUIC collector stand-in that
//! decodes batches and answers acks the way the real collector does.
//!
//! Also used by `examples/stub_collector.rs`.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ampel_protocol::{ALPN_DATA, Ack, AckStatus, Batch, Identity, Limits, codec, frame, tls};
use quinn::crypto::rustls::QuicServerConfig;
use quinn::{ConnectionError, Endpoint};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::sync::{mpsc, watch};

/// A deployment CA with a collector certificate and one device certificate (CN=dev-1, O=acme).
pub struct Pki {
    pub ca_pem: String,
    pub server_cert_pem: String,
    pub server_key_pem: String,
    pub device_cert_pem: String,
    pub device_key_pem: String,
}

impl Pki {
    /// A PKI whose CA has a name of its own.
    pub fn new() -> Pki {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        Pki::named(&format!("Ampel test CA {}", N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)))
    }

    /// A PKI whose CA is called `ca_name`.
    pub fn named(ca_name: &str) -> Pki {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(DnType::CommonName, ca_name);
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();

        let server_key = KeyPair::generate().unwrap();
        let mut sp = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
        sp.distinguished_name.push(DnType::CommonName, "collector");
        sp.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server_cert = sp.signed_by(&server_key, &ca).unwrap();

        let device_key = KeyPair::generate().unwrap();
        let mut dp = CertificateParams::new(Vec::<String>::new()).unwrap();
        dp.distinguished_name.push(DnType::CommonName, "dev-1");
        dp.distinguished_name.push(DnType::OrganizationName, "acme");
        dp.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let device_cert = dp.signed_by(&device_key, &ca).unwrap();

        Pki {
            ca_pem: ca.pem(),
            server_cert_pem: server_cert.pem(),
            server_key_pem: server_key.serialize_pem(),
            device_cert_pem: device_cert.pem(),
            device_key_pem: device_key.serialize_pem(),
        }
    }

    /// Writes `ca.pem`, `device.pem` and `device.key` into `dir`.
    pub fn write_device_files(&self, dir: &Path) {
        std::fs::write(dir.join("ca.pem"), &self.ca_pem).unwrap();
        std::fs::write(dir.join("device.pem"), &self.device_cert_pem).unwrap();
        std::fs::write(dir.join("device.key"), &self.device_key_pem).unwrap();
    }

    fn ca(&self) -> Vec<CertificateDer<'static>> {
        tls::parse_certs(self.ca_pem.as_bytes()).unwrap()
    }

    fn server_chain(&self) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
        (tls::parse_certs(self.server_cert_pem.as_bytes()).unwrap(), tls::parse_key(self.server_key_pem.as_bytes()).unwrap())
    }
}

/// Writes an agent config using the files of [`Pki::write_device_files`] in `dir`.
pub fn write_config(dir: &Path, addr: SocketAddr, interval: &str) -> PathBuf {
    let path = dir.join("agent.toml");
    let text = format!(
        r#"interval = "{interval}"
state-dir = "state"
[collector]
transport = "quic"
address = "{addr}"
server-name = "localhost"
ca = "ca.pem"
cert = "device.pem"
key = "device.key"
[sources.performance]
enabled = true
mounts = ["/"]
[sources.inventory]
enabled = true
model = "FW-500"
firmware = "7.2"
"#
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// How the stand-in answers.
#[derive(Debug, Clone, Copy, Default)]
pub struct Policy {
    /// Keep acks back until this is false again.
    pub hold: bool,
    /// Answer `rejected` instead of `committed`.
    pub reject: bool,
}

/// Something the stand-in saw.
#[derive(Debug)]
pub enum Event {
    /// A connection from an authenticated device.
    Connected(Identity),
    /// A decoded batch.
    Batch(Batch),
    /// A connection ended.
    Closed(ConnectionError),
}

/// The in-process collector stand-in.
pub struct Server {
    pub addr: SocketAddr,
    endpoint: Endpoint,
    policy: watch::Sender<Policy>,
    events: mpsc::UnboundedReceiver<Event>,
    pub batches_seen: Arc<Mutex<u64>>,
}

impl Server {
    /// Serves with `server` (certificate from it) trusting devices of `clients`' CA.
    pub async fn start(server: &Pki, clients: &Pki, addr: SocketAddr) -> Server {
        Server::start_with_streams(server, clients, addr, None).await
    }

    /// As [`Server::start`], allowing each agent at most `max_streams` open streams.
    pub async fn start_with_streams(server: &Pki, clients: &Pki, addr: SocketAddr, max_streams: Option<u32>) -> Server {
        tls::install_provider();
        let (chain, key) = server.server_chain();
        let cfg = tls::server_config(chain, key, &clients.ca(), vec![], &[ALPN_DATA]).unwrap();
        let mut quic = quinn::ServerConfig::with_crypto(Arc::new(QuicServerConfig::try_from(cfg).unwrap()));
        if let Some(n) = max_streams {
            let mut transport = quinn::TransportConfig::default();
            transport.max_concurrent_bidi_streams(n.into());
            quic.transport_config(Arc::new(transport));
        }
        // The port may still be held for a moment by a stand-in that just stopped.
        let mut tries = 0;
        let endpoint = loop {
            match Endpoint::server(quic.clone(), addr) {
                Ok(ep) => break ep,
                Err(e) if tries < 50 => {
                    tries += 1;
                    eprintln!("bind {addr}: {e}; retrying");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("cannot bind {addr}: {e}"),
            }
        };
        let addr = endpoint.local_addr().unwrap();
        let (policy, policy_rx) = watch::channel(Policy::default());
        let (events_tx, events) = mpsc::unbounded_channel();
        let batches_seen = Arc::new(Mutex::new(0));
        tokio::spawn(accept(endpoint.clone(), policy_rx, events_tx, batches_seen.clone()));
        Server { addr, endpoint, policy, events, batches_seen }
    }

    pub fn set_policy(&self, p: Policy) {
        self.policy.send_replace(p);
    }

    /// The next event, however long it takes (`None` once the stand-in stopped).
    pub async fn recv_event(&mut self) -> Option<Event> {
        self.events.recv().await
    }

    /// The next event, or a panic naming what we waited for.
    pub async fn next_event(&mut self) -> Event {
        tokio::time::timeout(Duration::from_secs(20), self.events.recv())
            .await
            .expect("no event from the stand-in collector within 20 s")
            .expect("stand-in collector stopped")
    }

    /// The next batch, skipping other events.
    pub async fn next_batch(&mut self) -> Batch {
        loop {
            if let Event::Batch(b) = self.next_event().await {
                return b;
            }
        }
    }

    /// The next connection close, skipping other events.
    pub async fn next_close(&mut self) -> ConnectionError {
        loop {
            if let Event::Closed(e) = self.next_event().await {
                return e;
            }
        }
    }

    /// Events that arrive within `wait`.
    pub async fn drain_events(&mut self, wait: Duration) -> Vec<Event> {
        let mut out = Vec::new();
        let deadline = tokio::time::Instant::now() + wait;
        while let Ok(Some(e)) = tokio::time::timeout_at(deadline, self.events.recv()).await {
            out.push(e);
        }
        out
    }

    /// Goes away like a restarting collector: closes every connection and the socket.
    pub async fn stop(self) {
        self.endpoint.close(0u32.into(), b"collector restarting");
        self.endpoint.wait_idle().await;
    }
}

async fn accept(endpoint: Endpoint, policy: watch::Receiver<Policy>, events: mpsc::UnboundedSender<Event>, seen: Arc<Mutex<u64>>) {
    while let Some(incoming) = endpoint.accept().await {
        let (policy, events, seen) = (policy.clone(), events.clone(), seen.clone());
        tokio::spawn(async move {
            let Ok(conn) = incoming.await else { return };
            let identity = conn
                .peer_identity()
                .and_then(|any| any.downcast::<Vec<CertificateDer<'static>>>().ok())
                .and_then(|chain| chain.first().and_then(|leaf| Identity::from_cert_der(leaf).ok()));
            if let Some(id) = identity {
                let _ = events.send(Event::Connected(id));
            }
            loop {
                match conn.accept_bi().await {
                    Ok((send, recv)) => {
                        tokio::spawn(stream(send, recv, policy.clone(), events.clone(), seen.clone()));
                    }
                    Err(e) => {
                        let _ = events.send(Event::Closed(e));
                        return;
                    }
                }
            }
        });
    }
}

async fn stream(
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
    mut policy: watch::Receiver<Policy>,
    events: mpsc::UnboundedSender<Event>,
    seen: Arc<Mutex<u64>>,
) {
    let limits = Limits::default();
    // Frame after frame on the same stream, as the agent sends them, until it finishes.
    loop {
        let mut header = [0u8; frame::HEADER_LEN];
        if recv.read_exact(&mut header).await.is_err() {
            break;
        }
        let Ok(len) = frame::payload_len(header, &limits) else { return };
        let mut payload = vec![0u8; len];
        if recv.read_exact(&mut payload).await.is_err() {
            return;
        }
        let batch = codec::decode_batch(&payload, &limits).expect("agent sent an undecodable batch");
        let seq = batch.seq;
        *seen.lock().unwrap() += 1;
        let _ = events.send(Event::Batch(batch));
        let Ok(p) = policy.wait_for(|p| !p.hold).await.map(|p| *p) else { return };
        let status = if p.reject { AckStatus::Rejected("test says no".to_owned()) } else { AckStatus::Committed };
        let ack = frame::encode_frame(&codec::encode_ack(&Ack { seq, status }).unwrap(), &limits).unwrap();
        if send.write_all(&ack).await.is_err() {
            return;
        }
    }
    let _ = send.finish();
    // Keep the stream state until the peer has the ack.
    let _ = send.stopped().await;
}
