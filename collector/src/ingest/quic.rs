//! The QUIC listener: mutual TLS, one bidirectional stream per batch.
//!
//! The client certificate is verified by rustls against the deployment CA (and its CRL) during
//! the handshake; the device and tenant are then read from that verified certificate — never
//! from the payload. Each stream carries one length-prefixed batch up and one ack down. The
//! length is checked before anything is read; the payload is then read into one buffer sized
//! for it, of which at most [`PREALLOC_MAX`] bytes are reserved before they arrive.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use ampel_protocol::logsafe::esc;
use ampel_protocol::{Ack, AckStatus, Identity, Limits, codec, frame};
use rustls_pki_types::CertificateDer;
use tokio::sync::{Semaphore, watch};

use super::budget::{Busy, FrameBudget, Held};
use super::trust::Trust;
use super::writer::Writer;
use crate::cluster::{self, live::LiveMap};
use crate::enroll::EnrollService;

/// Why the listener could not start.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    /// The TLS configuration is not usable for QUIC.
    #[error("TLS configuration unusable for QUIC: {0}")]
    Tls(String),
    /// The UDP socket could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
}

/// Bytes a connection may have in flight towards the collector across all its streams: two
/// frames of the largest size [`Limits::default`] allows.
pub const CONNECTION_RECEIVE_WINDOW: u32 = 8 << 20;

/// Builds a bound QUIC endpoint from a rustls server configuration (which must require client
/// certificates).
pub fn bind(addr: SocketAddr, tls: rustls::ServerConfig, max_streams: u32) -> Result<quinn::Endpoint, ListenError> {
    let config = server_config(tls, max_streams)?;
    let err = |source| ListenError::Bind { addr, source };
    let socket = std::net::UdpSocket::bind(addr).map_err(err)?;
    set_socket_buffers(&socket);
    let runtime = quinn::default_runtime().ok_or_else(|| err(std::io::Error::other("no async runtime")))?;
    quinn::Endpoint::new(quinn::EndpointConfig::default(), Some(config), socket, runtime).map_err(err)
}

/// Socket buffer size asked for on the listening socket; the kernel caps it at
/// `net.core.rmem_max` / `wmem_max`.
pub const SOCKET_BUFFER: usize = 4 << 20;

/// One UDP socket carries every agent: with the kernel's default receive buffer (about 200 KB)
/// a burst of handshakes or batches from thousands of agents overflows it, and each dropped
/// datagram costs its sender a retransmission timeout. Best effort: a smaller buffer works,
/// only with more loss under bursts.
pub fn set_socket_buffers(socket: &std::net::UdpSocket) {
    let sock = socket2::SockRef::from(socket);
    if let Err(e) = sock.set_recv_buffer_size(SOCKET_BUFFER).and_then(|()| sock.set_send_buffer_size(SOCKET_BUFFER)) {
        tracing::warn!(error = %e, "cannot enlarge the UDP socket buffers");
    }
    if let (Ok(rcv), Ok(snd)) = (sock.recv_buffer_size(), sock.send_buffer_size()) {
        tracing::debug!(rcv, snd, "UDP socket buffers");
    }
}

/// The QUIC server configuration for `bind`, also used to swap certificates and CRL into a
/// running endpoint on reload (`Endpoint::set_server_config`).
pub fn server_config(tls: rustls::ServerConfig, max_streams: u32) -> Result<quinn::ServerConfig, ListenError> {
    let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(tls).map_err(|e| ListenError::Tls(e.to_string()))?;
    let mut server = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    let mut transport = quinn::TransportConfig::default();
    transport
        .max_concurrent_bidi_streams(max_streams.into())
        .max_concurrent_uni_streams(0u32.into())
        // quinn's default lets a peer have up to `max_streams` × 1.25 MB unread in the
        // collector's buffers, per connection; ten thousand agents must not be able to pin that.
        // Batches are read as they arrive, so this window only binds when the collector lags.
        .receive_window(CONNECTION_RECEIVE_WINDOW.into())
        // Agents send no datagrams: refuse them instead of buffering up to 1.25 MB of them.
        .datagram_receive_buffer_size(None)
        .max_idle_timeout(Some(quinn::IdleTimeout::from(quinn::VarInt::from_u32(60_000))));
    server.transport_config(Arc::new(transport));
    Ok(server)
}

/// What every connection of the listener shares.
#[derive(Clone)]
pub struct Shared {
    /// The store's writer.
    pub writer: Writer,
    /// Frame and decode bounds.
    pub limits: Limits,
    /// The live trust and the open sessions.
    pub trust: Trust,
    /// Enrollment, when the CA can sign.
    pub enroll: Option<Arc<EnrollService>>,
    /// Buffer bytes partial frames may hold.
    pub budget: Arc<FrameBudget>,
    /// Data connections one device may have open; a newer one closes the oldest.
    pub max_connections_per_device: usize,
    /// The shard map in force (`[cluster]`, reloaded on SIGHUP): connections of tenants this
    /// shard does not take are closed with a redirect. No map: every tenant is ours.
    pub cluster: LiveMap,
}

impl Shared {
    /// Defaults around `writer` and `trust`: [`Limits::default`], no enrollment, a
    /// [`DEFAULT_FRAME_BUDGET`] and [`DEFAULT_CONNECTIONS_PER_DEVICE`].
    pub fn new(writer: Writer, trust: Trust) -> Shared {
        let limits = Limits::default();
        Shared {
            writer,
            limits,
            trust,
            enroll: None,
            budget: FrameBudget::new(DEFAULT_FRAME_BUDGET, limits.max_frame),
            max_connections_per_device: DEFAULT_CONNECTIONS_PER_DEVICE,
            cluster: LiveMap::default(),
        }
    }
}

/// Default of `[quic] frame-budget-mib`, in bytes.
pub const DEFAULT_FRAME_BUDGET: usize = 256 << 20;
/// Default of `[quic] max-connections-per-device`.
pub const DEFAULT_CONNECTIONS_PER_DEVICE: usize = 2;
/// Application close code for a connection replaced by a newer one of the same device.
pub const CLOSE_SUPERSEDED: u32 = 4;

/// Accepts connections until `shutdown` turns true, then stops accepting, gives open streams a
/// moment to finish and closes the endpoint.
///
/// Connections on [`ampel_protocol::enroll::ALPN_ENROLL`] go to `enroll` (refused when it is
/// `None`); data connections must carry a client certificate that `trust` verified, and are
/// registered in its sessions so that a revocation can close them.
pub async fn serve(endpoint: quinn::Endpoint, shared: Shared, mut shutdown: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            incoming = endpoint.accept() => {
                let Some(incoming) = incoming else { break };
                let shared = shared.clone();
                tokio::spawn(async move {
                    let remote = incoming.remote_address();
                    if let Err(e) = connection(incoming, shared).await {
                        tracing::debug!(%remote, error = %esc(&e), "connection ended");
                    }
                });
            }
            _ = shutdown.changed() => {
                if *shutdown.borrow() { break; }
            }
        }
    }
    tracing::info!("QUIC listener stopping");
    // Streams already handed to the writer commit regardless; a short grace lets their acks go out.
    tokio::time::sleep(Duration::from_millis(300)).await;
    endpoint.close(quinn::VarInt::from_u32(0), b"collector shutting down");
    endpoint.wait_idle().await;
}

/// The verified identity of a connection's peer.
fn peer_identity(conn: &quinn::Connection) -> Result<(Identity, Vec<CertificateDer<'static>>), String> {
    let any = conn.peer_identity().ok_or("no client certificate")?;
    let chain = any.downcast::<Vec<CertificateDer<'static>>>().map_err(|_| "unexpected peer identity type")?;
    let leaf = chain.first().ok_or("empty certificate chain")?;
    let id = Identity::from_cert_der(leaf).map_err(|e| e.to_string())?;
    Ok((id, *chain))
}

/// The ALPN protocol the handshake settled on.
fn alpn(conn: &quinn::Connection) -> Option<Vec<u8>> {
    conn.handshake_data()?.downcast::<quinn::crypto::rustls::HandshakeData>().ok()?.protocol
}

async fn connection(incoming: quinn::Incoming, shared: Shared) -> Result<(), String> {
    let remote = incoming.remote_address();
    let conn = incoming.await.map_err(|e| format!("handshake with {remote} failed: {e}"))?;
    if alpn(&conn).as_deref() == Some(ampel_protocol::enroll::ALPN_ENROLL) {
        let Some(enroll) = shared.enroll else {
            conn.close(quinn::VarInt::from_u32(2), b"enrollment is not enabled");
            return Err("enrollment is not enabled".into());
        };
        let peer = peer_identity(&conn).ok().map(|(id, _)| id);
        enroll.handle(conn, remote, peer).await;
        return Ok(());
    }
    let stats = shared.writer.stats().clone();
    let (identity, chain) = match peer_identity(&conn) {
        Ok(id) => id,
        Err(e) => {
            if stats.log_throttle.allow("identity", &remote.ip().to_string()) {
                tracing::warn!(%remote, error = %esc(&e), "refusing connection: certificate carries no usable identity");
            }
            conn.close(quinn::VarInt::from_u32(2), b"certificate carries no usable identity");
            return Err(e);
        }
    };
    if let Some((code, reason)) = cluster::quic_refusal(shared.cluster.current().as_deref(), &identity.tenant) {
        // Before any stream is accepted: nothing of this connection can reach the store.
        stats.foreign_tenant.fetch_add(1, Ordering::Relaxed);
        if stats.log_throttle.allow("shard", identity.device.as_str()) {
            tracing::warn!(%remote, device = %identity.device, tenant = %identity.tenant, answer = %esc(&String::from_utf8_lossy(&reason)), "tenant not owned by this shard; connection closed");
        }
        conn.close(quinn::VarInt::from_u32(code), &reason);
        return Ok(());
    }
    tracing::info!(%remote, device = %identity.device, tenant = %identity.tenant, "agent connected");
    // A device gets a few connections; a newer one closes the oldest (see `Sessions::add`).
    let superseded = shared.trust.sessions.add(identity.device.to_string(), chain, conn.clone(), shared.max_connections_per_device);
    for old in superseded {
        stats.connections_superseded.fetch_add(1, Ordering::Relaxed);
        old.close(quinn::VarInt::from_u32(CLOSE_SUPERSEDED), b"superseded by a newer connection of this device");
    }
    // A reload between the check above and `add` found no session to close: check again.
    if let Some((code, reason)) = cluster::quic_refusal(shared.cluster.current().as_deref(), &identity.tenant) {
        shared.trust.sessions.remove(&conn);
        conn.close(quinn::VarInt::from_u32(code), &reason);
        return Ok(());
    }
    let share = shared.budget.device(identity.device.as_str());
    let ended = serve_streams(&conn, &identity, &shared, &share).await;
    shared.trust.sessions.remove(&conn);
    ended
}

async fn serve_streams(conn: &quinn::Connection, identity: &Identity, shared: &Shared, share: &Arc<Semaphore>) -> Result<(), String> {
    loop {
        let (send, recv) = match conn.accept_bi().await {
            Ok(s) => s,
            Err(e) => {
                // The reason may be the peer's close reason: its own words.
                tracing::info!(device = %identity.device, reason = %esc(&e), "agent disconnected");
                return Ok(());
            }
        };
        let ctx = StreamCtx { identity: identity.clone(), shared: shared.clone(), share: share.clone() };
        tokio::spawn(async move {
            if let Err(e) = ctx.stream(send, recv).await {
                tracing::debug!(device = %ctx.identity.device, error = %esc(&e), "stream failed");
            }
        });
    }
}

/// One stream's context.
struct StreamCtx {
    identity: Identity,
    shared: Shared,
    /// The device's share of the frame budget.
    share: Arc<Semaphore>,
}

/// What became of one frame.
enum FrameOutcome {
    /// Answer `status` for `seq`; `in_step`: the next frame can be found on the stream.
    Answer { seq: u64, status: AckStatus, in_step: bool },
    /// Not stored (writer failed, budget exhausted): reset the stream without an ack so the
    /// agent sends it again.
    Unanswered(String),
}

impl StreamCtx {
    async fn stream(&self, mut send: quinn::SendStream, mut recv: quinn::RecvStream) -> Result<(), String> {
        // An agent keeps its streams open and sends one frame after another on each, waiting
        // for the ack in between; a stream it finishes ends here. A stream per frame works too.
        loop {
            let mut header = [0u8; frame::HEADER_LEN];
            match recv.read_exact(&mut header).await {
                Ok(()) => {}
                Err(quinn::ReadExactError::FinishedEarly(0)) => break,
                Err(e) => return Err(e.to_string()),
            }
            let (seq, status, in_step) = match self.frame(header, &mut recv).await? {
                FrameOutcome::Answer { seq, status, in_step } => (seq, status, in_step),
                FrameOutcome::Unanswered(why) => {
                    let _ = send.reset(quinn::VarInt::from_u32(1));
                    let _ = recv.stop(quinn::VarInt::from_u32(1));
                    return Err(why);
                }
            };
            let stats = self.shared.writer.stats();
            if let AckStatus::Rejected(reason) = &status {
                stats.batches_rejected.fetch_add(u64::from(seq == 0), Ordering::Relaxed);
                // Decode errors quote the peer's bytes; one device must not flood the log.
                if stats.log_throttle.allow("batch", self.identity.device.as_str()) {
                    tracing::warn!(device = %self.identity.device, reason = %esc(reason), "batch rejected");
                }
            }
            let limits = &self.shared.limits;
            let ack = codec::encode_ack(&Ack { seq, status }).map_err(|e| e.to_string())?;
            let bytes = frame::encode_frame(&ack, limits).map_err(|e| e.to_string())?;
            send.write_all(&bytes).await.map_err(|e| e.to_string())?;
            if !in_step {
                break;
            }
        }
        send.finish().map_err(|e| e.to_string())?;
        Ok(())
    }

    /// Reads, decodes and commits the frame after `header`; its buffer bytes are held from the
    /// budget until the batch is committed.
    async fn frame(&self, header: [u8; frame::HEADER_LEN], recv: &mut quinn::RecvStream) -> Result<FrameOutcome, String> {
        let limits = &self.shared.limits;
        let len = match frame::payload_len(header, limits) {
            Ok(len) => len,
            Err(e) => return Ok(FrameOutcome::Answer { seq: 0, status: AckStatus::Rejected(e.to_string()), in_step: false }),
        };
        let stats = self.shared.writer.stats();
        let mut held = Held::new(self.shared.budget.clone(), self.share.clone(), stats.clone());
        let payload = match read_payload(recv, len, &mut held).await {
            Ok(p) => p,
            Err(ReadError::Busy(busy)) => {
                stats.frames_over_budget.fetch_add(1, Ordering::Relaxed);
                if stats.log_throttle.allow("budget", self.identity.device.as_str()) {
                    tracing::warn!(device = %self.identity.device, frame_bytes = len, "{busy}");
                }
                return Ok(FrameOutcome::Unanswered(busy.to_string()));
            }
            Err(ReadError::Stream(e)) => return Err(e),
        };
        if payload.len() != len {
            let status = AckStatus::Rejected(format!("frame announced {len} bytes but carried {}", payload.len()));
            return Ok(FrameOutcome::Answer { seq: 0, status, in_step: false });
        }
        let batch = match codec::decode_batch(&payload, limits) {
            Ok(batch) => batch,
            Err(e) => return Ok(FrameOutcome::Answer { seq: 0, status: AckStatus::Rejected(e.to_string()), in_step: true }),
        };
        drop(payload);
        drop(held);
        let seq = batch.seq;
        match self.shared.writer.submit(self.identity.clone(), batch, now_ms()).await {
            Ok(status) => Ok(FrameOutcome::Answer { seq, status, in_step: true }),
            // Not stored: say nothing so the agent resends later.
            Err(e) => Ok(FrameOutcome::Unanswered(e.to_string())),
        }
    }
}

/// Most bytes reserved for a payload before they arrive. Batches up to this size (a 1 000-point
/// batch is about 70 KiB) are copied once from quinn's chunks into a buffer of the right size,
/// never reallocated; a peer that announces a large frame and then sends nothing pins no more
/// than this.
pub const PREALLOC_MAX: usize = 256 << 10;

/// Why a payload could not be read.
enum ReadError {
    /// The stream failed.
    Stream(String),
    /// The budget had no bytes for it.
    Busy(Busy),
}

/// Reads the payload of a frame whose length `len` was checked against the limits: exactly
/// `len` bytes, in stream order, straight into one buffer whose every byte of capacity is
/// taken from the budget first (`held`), and then the end of the stream. Returns fewer bytes
/// when the stream ends early; more than `len` bytes are an error.
async fn read_payload(recv: &mut quinn::RecvStream, len: usize, held: &mut Held) -> Result<Vec<u8>, ReadError> {
    let first = len.min(PREALLOC_MAX);
    held.grow(first).await.map_err(ReadError::Busy)?;
    let mut payload = Vec::with_capacity(first);
    while payload.len() < len {
        match recv.read_chunk(len - payload.len(), true).await.map_err(|e| ReadError::Stream(e.to_string()))? {
            Some(chunk) => {
                let need = payload.len() + chunk.bytes.len();
                if need > payload.capacity() {
                    // Grow as a Vec would (doubling), but never past the frame, and only with
                    // bytes from the budget.
                    let cap = need.max(payload.capacity().saturating_mul(2)).min(len);
                    held.grow(cap - payload.capacity()).await.map_err(ReadError::Busy)?;
                    payload.reserve_exact(cap - payload.len());
                }
                payload.extend_from_slice(&chunk.bytes);
            }
            None => return Ok(payload),
        }
    }
    Ok(payload)
}

/// Wall-clock time in Unix ms.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
