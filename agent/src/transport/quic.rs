//! QUIC transport: one connection with mutual TLS, batches on bidirectional streams.
//!
//! Per batch: take an idle stream (or open one), write `frame(encode_batch(batch))`, read one
//! ack frame back, and put the stream back for the next batch. Streams stay open: opening and
//! closing one per batch cost more than the batch itself for small batches. A stream carries one
//! batch at a time, so up to [`QuicOptions::max_in_flight`] streams exist; when the collector
//! allows fewer, a batch waits for a stream to come back. The batch is released when the
//! collector's [`Ack`] says `committed` or `duplicate`. `rejected` means "never send this
//! again": it is logged and dropped.
//!
//! Batches come from the [`Spool`](crate::spool::Spool) and are deleted from it on their ack.
//! Any failure — connection lost, ack timeout, a collector that breaks the protocol — puts every
//! unacknowledged batch back to waiting ([`Outbox::requeue_all`]), closes the connection and
//! reconnects after a [`Backoff`] delay; spooled batches are then resent in sequence order.
//! After a restart, the spool's leftovers go first.
//!
//! With TLS 1.3 the handshake completes on the client before the collector has judged our
//! certificate; a refusal arrives as the connection closing with a TLS alert, usually on the
//! first stream read. [`classify`] turns that into "collector refused our certificate".

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use ampel_protocol::logsafe::esc;
use ampel_protocol::shard::{self, Redirect};
use ampel_protocol::{ALPN_DATA, Ack, AckStatus, Limits, codec, frame, tls};
use quinn::crypto::rustls::QuicClientConfig;
use quinn::{Connection, ConnectionError, Endpoint, VarInt};
use rand::SeedableRng;
use rand::rngs::StdRng;
use tokio::sync::{mpsc, watch};
use tokio::task::{JoinError, JoinSet};
use tokio::time::Instant;

use super::outbox::{Frame, Outbox};
use super::shard::ShardTarget;
use super::{Credentials, SharedSpool, Status, Transport, TransportError, forget, next_batch, spooled};
use crate::backoff::{Backoff, BackoffConfig};
use crate::config::{CollectorAddress, CollectorConfig};
use crate::enroll::CertHandle;

/// Bounds for decoding an ack: acks are tiny, so anything large is a broken or hostile peer.
pub const ACK_LIMITS: Limits = Limits { max_frame: 8 << 10, max_records: 16, max_string: 4 << 10, max_depth: 4 };

/// Application close code: the agent is stopping.
pub const CLOSE_SHUTDOWN: u32 = 0;
/// Application close code: the collector broke the protocol.
pub const CLOSE_PROTOCOL_ERROR: u32 = 1;
/// Application close code: an ack did not arrive in time.
pub const CLOSE_ACK_TIMEOUT: u32 = 2;
/// Application close code: the agent reconnects with a renewed certificate.
pub const CLOSE_ROTATED: u32 = 3;

/// Tuning of the QUIC transport. The defaults suit a 1 s – 5 min batch interval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuicOptions {
    /// Streams (batches awaiting their ack) at once.
    pub max_in_flight: usize,
    /// How long a batch may wait for its ack before the connection is considered broken.
    pub ack_timeout: Duration,
    /// How long a connection attempt may take.
    pub connect_timeout: Duration,
    /// On shutdown, how long to wait for outstanding acks.
    pub drain_timeout: Duration,
    /// Reconnect backoff.
    pub backoff: BackoffConfig,
    /// A connection silent this long is dead.
    pub idle_timeout: Duration,
    /// Keep-alive interval, so an idle connection (long batch interval) is not timed out.
    pub keep_alive: Duration,
    /// A connection counts as working (backoff reset, "connected" logged) after its first ack
    /// or after staying up this long, whichever comes first.
    pub proven_after: Duration,
}

impl Default for QuicOptions {
    fn default() -> Self {
        QuicOptions {
            max_in_flight: 8,
            ack_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(10),
            drain_timeout: Duration::from_secs(2),
            backoff: BackoffConfig::default(),
            idle_timeout: Duration::from_secs(30),
            keep_alive: Duration::from_secs(10),
            proven_after: Duration::from_secs(5),
        }
    }
}

/// Why a connection or a batch's stream failed. Each ends the connection and leads to a
/// reconnect after a backoff delay.
#[derive(Debug, thiserror::Error)]
pub enum QuicError {
    /// DNS resolution failed.
    #[error("cannot resolve {address}: {error}")]
    Resolve {
        /// The configured address.
        address: String,
        /// What the resolver said.
        error: std::io::Error,
    },
    /// DNS returned nothing.
    #[error("{0} resolves to no address")]
    NoAddress(String),
    /// No UDP socket.
    #[error("cannot open a UDP socket: {0}")]
    Socket(std::io::Error),
    /// quinn refused to start the connection (e.g. an unusable server name).
    #[error("cannot start a connection: {0}")]
    Connect(String),
    /// The handshake did not complete in time.
    #[error("no answer from the collector within {0:?}")]
    ConnectTimeout(Duration),
    /// We do not trust the collector's certificate.
    #[error("collector's certificate not accepted: {0} (check `ca` and `server-name`)")]
    ServerUntrusted(String),
    /// Our side of the TLS handshake failed for a reason other than the collector's certificate.
    #[error("TLS handshake with the collector failed: {0}")]
    Handshake(String),
    /// The collector does not accept our certificate.
    #[error("collector refused our certificate: {0}")]
    CertificateRefused(String),
    /// The collector ended the TLS handshake for another reason (e.g. no common ALPN).
    #[error("collector ended the TLS handshake: {0}")]
    HandshakeRefused(String),
    /// The connection failed or was closed.
    #[error("connection lost: {0}")]
    Connection(ConnectionError),
    /// A batch's ack did not arrive in time.
    #[error("no ack for batch {seq} within {after:?}")]
    AckTimeout {
        /// The batch.
        seq: u64,
        /// The timeout.
        after: Duration,
    },
    /// The collector answered something that is not a valid ack for the batch.
    #[error("collector broke the protocol: {0}")]
    Protocol(String),
    /// A stream was reset or stopped by the collector.
    #[error("stream of batch {seq} failed: {reason}")]
    Stream {
        /// The batch.
        seq: u64,
        /// What happened.
        reason: String,
    },
    /// A stream task died (a bug, not the peer's doing).
    #[error("internal error: {0}")]
    Internal(String),
    /// The client certificate was renewed: reconnect with it at once (not a failure).
    #[error("switching to the renewed certificate")]
    Rotated,
    /// The collector does not own our tenant and named the shard that does.
    #[error("collector sent us to shard {} at {}", .0.shard, .0.address)]
    Redirected(Redirect),
}

/// Turns quinn's connection error into one that says who refused what.
pub fn classify(e: ConnectionError) -> QuicError {
    // QUIC carries TLS alerts as transport error codes 0x100 + alert.
    let alert = |code: u64| (0x100..0x200).contains(&code).then(|| rustls::AlertDescription::from((code & 0xff) as u8));
    match e {
        ConnectionError::TransportError(te) if alert(te.code.into()).is_some() => {
            if te.reason.contains("certificate") {
                QuicError::ServerUntrusted(te.reason)
            } else {
                QuicError::Handshake(te.reason)
            }
        }
        ConnectionError::ConnectionClosed(cc) => match alert(cc.error_code.into()) {
            Some(alert) => {
                use rustls::AlertDescription as A;
                let reason = String::from_utf8_lossy(&cc.reason).into_owned();
                let text = if reason.is_empty() { format!("{alert:?}") } else { format!("{alert:?} ({reason})") };
                // A CA of the same name but another key fails the signature check: DecryptError.
                let about_our_cert = reason.contains("peer certificate");
                match alert {
                    _ if about_our_cert => QuicError::CertificateRefused(text),
                    A::BadCertificate
                    | A::UnsupportedCertificate
                    | A::CertificateRevoked
                    | A::CertificateExpired
                    | A::CertificateUnknown
                    | A::UnknownCA
                    | A::AccessDenied
                    | A::CertificateRequired => QuicError::CertificateRefused(text),
                    _ => QuicError::HandshakeRefused(text),
                }
            }
            None => QuicError::Connection(ConnectionError::ConnectionClosed(cc)),
        },
        other => QuicError::Connection(other),
    }
}

/// The QUIC transport.
pub struct QuicTransport {
    /// The configured collector (a redirect may send us elsewhere, see [`ShardTarget`]).
    address: CollectorAddress,
    /// The configured `server-name`; without one, the host of the address connected to.
    server_name: Option<String>,
    /// Where a redirect is remembered; `None`: only until the transport stops.
    state_dir: Option<std::path::PathBuf>,
    client: quinn::ClientConfig,
    options: QuicOptions,
    status: watch::Sender<Status>,
    cert: CertHandle,
}

impl QuicTransport {
    /// Builds the TLS and QUIC configuration; fails on unusable credentials. Does no I/O.
    pub fn new(collector: &CollectorConfig, creds: Credentials, options: QuicOptions) -> Result<QuicTransport, TransportError> {
        tls::install_provider();
        let tls_err = |error| TransportError::Tls { cert: collector.cert.clone(), key: collector.key.clone(), error };
        // The certificate is presented through a replaceable handle, so renewal needs no restart.
        let cert = CertHandle::new(creds.ca, creds.chain, creds.key).map_err(|e| tls_err(tls::TlsError::Rustls(e.to_string())))?;
        let tls_config = crate::enroll::client_config(&cert, &[ALPN_DATA]).map_err(tls_err)?;
        let crypto = QuicClientConfig::try_from(tls_config).map_err(|e| TransportError::Quic(e.to_string()))?;
        let mut transport = quinn::TransportConfig::default();
        let idle = quinn::IdleTimeout::try_from(options.idle_timeout).map_err(|e| TransportError::Quic(e.to_string()))?;
        transport
            .max_idle_timeout(Some(idle))
            .keep_alive_interval(Some(options.keep_alive))
            // The collector never opens streams towards us, and acks are small.
            .max_concurrent_bidi_streams(VarInt::from_u32(0))
            .max_concurrent_uni_streams(VarInt::from_u32(0))
            .stream_receive_window(VarInt::from_u32(64 << 10))
            .receive_window(VarInt::from_u32(256 << 10))
            .send_window(1 << 20);
        let mut client = quinn::ClientConfig::new(Arc::new(crypto));
        client.transport_config(Arc::new(transport));
        let (status, _) = watch::channel(Status::default());
        Ok(QuicTransport {
            address: collector.address.clone(),
            server_name: collector.server_name.is_some().then(|| collector.tls_name().to_str().into_owned()),
            state_dir: None,
            client,
            options,
            status,
            cert,
        })
    }

    /// Remembers a redirect to another shard in `state_dir`, so it outlives a restart.
    pub fn with_state_dir(mut self, state_dir: &std::path::Path) -> QuicTransport {
        self.state_dir = Some(state_dir.to_owned());
        self
    }

    /// The handle of the client certificate this transport presents; replacing the certificate
    /// through it makes the transport reconnect with the new one.
    pub fn cert_handle(&self) -> CertHandle {
        self.cert.clone()
    }

    /// Resolves `address` and completes a handshake. The endpoint (UDP socket) is reused
    /// across attempts unless the address family changed.
    pub async fn connect(&self, endpoint: &mut Option<Endpoint>, address: &CollectorAddress) -> Result<Connection, QuicError> {
        let addr = resolve(address).await?;
        let reusable = endpoint.as_ref().filter(|ep| ep.local_addr().is_ok_and(|a| a.is_ipv6() == addr.is_ipv6()));
        let ep = match reusable {
            Some(ep) => ep.clone(),
            None => {
                let bind: SocketAddr = if addr.is_ipv6() { (Ipv6Addr::UNSPECIFIED, 0).into() } else { (Ipv4Addr::UNSPECIFIED, 0).into() };
                let ep = Endpoint::client(bind).map_err(QuicError::Socket)?;
                *endpoint = Some(ep.clone());
                ep
            }
        };
        let host = address.host().to_str();
        let server_name = self.server_name.as_deref().unwrap_or(&host);
        let connecting = ep.connect_with(self.client.clone(), addr, server_name).map_err(|e| QuicError::Connect(e.to_string()))?;
        match tokio::time::timeout(self.options.connect_timeout, connecting).await {
            Ok(Ok(conn)) => Ok(conn),
            Ok(Err(e)) => Err(classify(e)),
            Err(_) => Err(QuicError::ConnectTimeout(self.options.connect_timeout)),
        }
    }

    /// Delivers over one connection until it fails (`Some(error)`) or the agent stops (`None`).
    async fn serve(&self, conn: &Connection, batches: &mut mpsc::Receiver<u64>, st: &mut State) -> Option<QuicError> {
        let mut streams: JoinSet<(u64, Result<Ack, QuicError>)> = JoinSet::new();
        let link = Link::new(conn.clone());
        let mut proven = false;
        let proof = tokio::time::sleep(self.options.proven_after);
        tokio::pin!(proof);
        let mut rotated = self.cert.subscribe();
        rotated.mark_unchanged();
        st.status.connected = true;
        let result = loop {
            let mut waiting = false;
            while let Some((seq, payload)) = next_batch(&st.spool, &mut st.outbox, self.options.max_in_flight) {
                match frame::encode_frame(&payload, &Limits::default()) {
                    Ok(f) => {
                        streams.spawn(deliver(link.clone(), seq, Arc::from(f), self.options.ack_timeout));
                    }
                    Err(e) => {
                        // Spooled by this agent, so it encodes; a damaged spool entry is dropped.
                        tracing::error!(seq, error = %e, "cannot frame spooled batch; dropping it");
                        st.outbox.release(seq);
                        forget(&st.spool, &[seq]);
                        st.status.dropped += 1;
                    }
                }
                waiting = true;
            }
            if !st.outbox.has_room(self.options.max_in_flight) {
                waiting = true;
            }
            self.publish(st);
            if st.drain_until.is_some() && st.outbox.in_flight() == 0 && !waiting {
                break None;
            }
            let deadline = st.drain_until.unwrap_or_else(far_future);
            tokio::select! {
                b = batches.recv(), if st.drain_until.is_none() => self.take(st, b),
                Some(joined) = streams.join_next() => match self.settle_ready(st, joined, &mut streams) {
                    Ok(()) if !proven => {
                        proven = true;
                        self.proved(st);
                    }
                    Ok(()) => {}
                    Err(e) => break Some(e),
                },
                e = conn.closed() => break Some(classify(e)),
                Ok(()) = rotated.changed() => break Some(QuicError::Rotated),
                _ = &mut proof, if !proven => {
                    proven = true;
                    self.proved(st);
                }
                _ = tokio::time::sleep_until(deadline), if st.drain_until.is_some() => break None,
            }
        };
        // A stream may see the close before `closed()` does: the redirect is the real reason.
        let result = result.map(|e| redirect_of(conn).map_or(e, QuicError::Redirected));
        // Take the outcomes that are in already, so no ack that arrived is thrown away.
        while let Some(joined) = streams.try_join_next() {
            let _ = self.settle(st, joined);
        }
        flush(st);
        streams.abort_all();
        match &result {
            None => conn.close(VarInt::from_u32(CLOSE_SHUTDOWN), b"agent shutting down"),
            Some(QuicError::AckTimeout { .. }) => conn.close(VarInt::from_u32(CLOSE_ACK_TIMEOUT), b"ack timeout"),
            Some(QuicError::Rotated) => conn.close(VarInt::from_u32(CLOSE_ROTATED), b"renewed certificate"),
            Some(QuicError::Protocol(_) | QuicError::Stream { .. } | QuicError::Internal(_)) => {
                conn.close(VarInt::from_u32(CLOSE_PROTOCOL_ERROR), b"protocol error")
            }
            Some(_) => {} // the connection is gone already
        }
        st.status.connected = false;
        result
    }

    async fn run_inner(self, spool: SharedSpool, mut batches: mpsc::Receiver<u64>) {
        let mut st = State {
            spool,
            acked: Vec::new(),
            outbox: Outbox::new(),
            backoff: Backoff::new(self.options.backoff),
            status: Status::default(),
            drain_until: None,
            target: ShardTarget::load(self.address.clone(), self.state_dir.as_deref()),
        };
        let mut rng = StdRng::from_os_rng();
        let mut endpoint: Option<Endpoint> = None;
        'life: loop {
            // Connect, taking batches meanwhile. A stop request lets the attempt finish within
            // the drain time, so batches gathered just before it still get their chance.
            let attempt = {
                let address = st.target.address().clone();
                let connecting = self.connect(&mut endpoint, &address);
                tokio::pin!(connecting);
                loop {
                    let deadline = st.drain_until.unwrap_or_else(far_future);
                    tokio::select! {
                        r = &mut connecting => break Some(r),
                        b = batches.recv(), if st.drain_until.is_none() => self.take(&mut st, b),
                        _ = tokio::time::sleep_until(deadline), if st.drain_until.is_some() => break None,
                    }
                }
            };
            let error = match attempt {
                None => break 'life,
                Some(Ok(conn)) => {
                    tracing::debug!(collector = %st.target.address(), "handshake complete");
                    match self.serve(&conn, &mut batches, &mut st).await {
                        None => break 'life,
                        Some(e) => e,
                    }
                }
                Some(Err(e)) => e,
            };
            st.outbox.requeue_all();
            if matches!(error, QuicError::Rotated) {
                // Not a failure: reconnect at once; unacknowledged batches go out again.
                tracing::info!(collector = %st.target.address(), "reconnecting with the renewed certificate");
                continue 'life;
            }
            self.retarget(&mut st.target, &error);
            let delay = st.backoff.failed(std::time::Instant::now(), &mut rng);
            if delay.log {
                tracing::warn!(
                    collector = %st.target.address(),
                    // May carry the collector's close reason: the peer's words.
                    error = %esc(&error),
                    attempt = delay.failures,
                    retry_in_ms = delay.wait.as_millis() as u64,
                    backoff_ceiling_ms = delay.ceiling.as_millis() as u64,
                    "cannot deliver to collector; retrying with backoff",
                );
            } else {
                tracing::debug!(collector = %st.target.address(), error = %esc(&error), attempt = delay.failures, "collector still unreachable");
            }
            st.status.last_error = Some(error.to_string());
            self.publish(&st);
            if st.drain_until.is_some() {
                break;
            }
            // Wait out the backoff, taking batches meanwhile; a stop request ends the wait.
            let pause = tokio::time::sleep(delay.wait);
            tokio::pin!(pause);
            while st.drain_until.is_none() {
                tokio::select! {
                    _ = &mut pause => break,
                    b = batches.recv() => self.take(&mut st, b),
                }
            }
            if st.drain_until.is_some() {
                break;
            }
        }
        let left = spooled(&st.spool);
        if left > 0 {
            tracing::info!(
                batches = left,
                "stopping with unacknowledged batches; they stay in the spool and are sent after the next start"
            );
        }
        st.outbox = Outbox::new();
        st.status.connected = false;
        self.publish(&st);
        if let Some(ep) = endpoint {
            // Give the CONNECTION_CLOSE a moment to leave.
            let _ = tokio::time::timeout(Duration::from_secs(1), ep.wait_idle()).await;
        }
    }

    /// Handles what the channel gave: a new spooled batch (read from the spool when there is
    /// room), or `None` — the agent is stopping.
    fn take(&self, st: &mut State, batch: Option<u64>) {
        if batch.is_none() {
            st.drain_until = Some(Instant::now() + self.options.drain_timeout);
        }
        self.publish(st);
    }

    fn publish(&self, st: &State) {
        let mut s = st.status.clone();
        s.queued = spooled(&st.spool);
        s.in_flight = st.outbox.in_flight();
        self.status.send_if_modified(|old| {
            let changed = *old != s;
            if changed {
                *old = s;
            }
            changed
        });
    }

    /// Settles `first` and every other stream that has finished already, then deletes the
    /// acknowledged batches from the spool in one transaction: under load many acks arrive
    /// together, and one commit (one fsync) per ack would cap the rate.
    fn settle_ready(
        &self,
        st: &mut State,
        first: Result<(u64, Result<Ack, QuicError>), JoinError>,
        streams: &mut JoinSet<(u64, Result<Ack, QuicError>)>,
    ) -> Result<(), QuicError> {
        let mut result = self.settle(st, first);
        while result.is_ok()
            && let Some(joined) = streams.try_join_next()
        {
            result = self.settle(st, joined);
        }
        flush(st);
        result
    }

    /// Applies a finished stream's outcome to the outbox. An error ends the connection.
    fn settle(&self, st: &mut State, joined: Result<(u64, Result<Ack, QuicError>), JoinError>) -> Result<(), QuicError> {
        let (seq, result) = joined.map_err(|e| QuicError::Internal(e.to_string()))?;
        match result {
            Ok(Ack { status: AckStatus::Committed | AckStatus::Duplicate, .. }) => {
                if st.outbox.release(seq) {
                    st.status.acked += 1;
                }
                st.acked.push(seq);
                tracing::debug!(seq, "batch acknowledged");
            }
            Ok(Ack { status: AckStatus::Rejected(reason), .. }) => {
                if st.outbox.release(seq) {
                    st.status.rejected += 1;
                }
                st.acked.push(seq);
                tracing::warn!(seq, reason = %esc(&reason), "collector rejected the batch; dropping it");
            }
            Err(e) => {
                st.outbox.requeue(seq);
                return Err(e);
            }
        }
        Ok(())
    }

    /// Follows a redirect, or counts a failure of the current target (which may send us back
    /// to the configured collector). A redirect still waits out a backoff delay, so two
    /// collectors whose maps disagree cannot make the agent spin between them.
    fn retarget(&self, target: &mut ShardTarget, error: &QuicError) {
        match error {
            QuicError::Redirected(r) => match target.redirected(r.clone()) {
                Ok(()) => {
                    tracing::info!(shard = %r.shard, collector = %target.address(), "collector sent us to the shard owning our tenant")
                }
                Err(e) => tracing::warn!(error = %e, "redirect not remembered"),
            },
            _ => {
                if target.failed(std::time::Instant::now()) {
                    tracing::warn!(collector = %self.address, "the shard we were sent to stayed unreachable; back to the configured collector");
                }
            }
        }
    }

    /// The connection works: reset the backoff and say so once.
    fn proved(&self, st: &mut State) {
        st.target.connected();
        let failures = st.backoff.succeeded();
        let collector = st.target.address();
        if failures > 0 {
            tracing::info!(%collector, shard = ?st.target.shard(), failed_attempts = failures, "reconnected to collector");
        } else {
            tracing::info!(%collector, shard = ?st.target.shard(), "connected to collector");
        }
        st.status.last_error = None;
    }
}

/// What the transport task carries from one connection to the next.
struct State {
    spool: SharedSpool,
    /// Acknowledged (or refused) seqs not yet deleted from the spool.
    acked: Vec<u64>,
    outbox: Outbox,
    backoff: Backoff,
    status: Status,
    /// Set when the channel closed: deliver what we can until then, then stop.
    drain_until: Option<Instant>,
    /// The collector to connect to: configured, or the shard a redirect named.
    target: ShardTarget,
}

impl Transport for QuicTransport {
    fn status(&self) -> watch::Receiver<Status> {
        self.status.subscribe()
    }

    fn run(self, spool: SharedSpool, batches: mpsc::Receiver<u64>) -> impl Future<Output = ()> + Send {
        self.run_inner(spool, batches)
    }
}

/// Deletes the acknowledged batches from the spool in one transaction.
fn flush(st: &mut State) {
    if !st.acked.is_empty() {
        forget(&st.spool, &st.acked);
        st.acked.clear();
    }
}

/// Resolves a collector address (no lookup for an IP address).
async fn resolve(address: &CollectorAddress) -> Result<SocketAddr, QuicError> {
    if let Some(sa) = address.socket_addr() {
        return Ok(sa);
    }
    let address = address.to_string();
    let first =
        tokio::net::lookup_host(address.as_str()).await.map_err(|error| QuicError::Resolve { address: address.clone(), error })?.next();
    first.ok_or(QuicError::NoAddress(address))
}

/// The redirect a collector closed a verified connection with, if it did. Only called for
/// connections whose handshake completed: an application close travels in 1-RTT packets only,
/// protected by the keys of the handshake in which our CA verified the collector.
fn redirect_of(conn: &Connection) -> Option<Redirect> {
    match conn.close_reason()? {
        ConnectionError::ApplicationClosed(c) if c.error_code == VarInt::from_u32(shard::CLOSE_WRONG_SHARD) => {
            match Redirect::decode(&c.reason) {
                Ok(r) => Some(r),
                Err(e) => {
                    tracing::warn!(error = %e, "collector sent an unreadable redirect; retrying it");
                    None
                }
            }
        }
        _ => None,
    }
}

/// A deadline that never comes, for a `select!` branch that is disabled anyway.
fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86_400)
}

/// A connection and its idle streams.
struct Link {
    conn: Connection,
    idle: std::sync::Mutex<Vec<(quinn::SendStream, quinn::RecvStream)>>,
    /// Told whenever a stream goes back to `idle`.
    returned: tokio::sync::Notify,
}

impl Link {
    fn new(conn: Connection) -> Arc<Link> {
        Arc::new(Link { conn, idle: std::sync::Mutex::new(Vec::new()), returned: tokio::sync::Notify::new() })
    }

    fn pop(&self) -> Option<(quinn::SendStream, quinn::RecvStream)> {
        match self.idle.lock() {
            Ok(mut idle) => idle.pop(),
            Err(poisoned) => poisoned.into_inner().pop(),
        }
    }

    fn put_back(&self, pair: (quinn::SendStream, quinn::RecvStream)) {
        match self.idle.lock() {
            Ok(mut idle) => idle.push(pair),
            Err(poisoned) => poisoned.into_inner().push(pair),
        }
        self.returned.notify_one();
    }

    /// An idle stream, or a new one — or, when the collector allows no more streams, the next
    /// one that comes back.
    async fn take(&self) -> Result<(quinn::SendStream, quinn::RecvStream), ConnectionError> {
        loop {
            if let Some(pair) = self.pop() {
                return Ok(pair);
            }
            tokio::select! {
                biased;
                () = self.returned.notified() => {}
                opened = self.conn.open_bi() => return opened,
            }
        }
    }
}

/// Sends one framed batch and waits for its ack.
async fn deliver(link: Arc<Link>, seq: u64, frame: Frame, ack_timeout: Duration) -> (u64, Result<Ack, QuicError>) {
    let result = match tokio::time::timeout(ack_timeout, exchange(&link, seq, &frame)).await {
        Ok(r) => r,
        Err(_) => Err(QuicError::AckTimeout { seq, after: ack_timeout }),
    };
    (seq, result)
}

async fn exchange(link: &Link, seq: u64, frame: &[u8]) -> Result<Ack, QuicError> {
    let stream_err = |reason: String| QuicError::Stream { seq, reason };
    // A stream that fails is dropped (reset), never put back.
    let (mut send, mut recv) = link.take().await.map_err(classify)?;
    send.write_all(frame).await.map_err(|e| match e {
        quinn::WriteError::ConnectionLost(e) => classify(e),
        other => stream_err(other.to_string()),
    })?;
    let read_err = |e: quinn::ReadExactError| match e {
        quinn::ReadExactError::ReadError(quinn::ReadError::ConnectionLost(e)) => classify(e),
        other => stream_err(other.to_string()),
    };
    let mut header = [0u8; frame::HEADER_LEN];
    recv.read_exact(&mut header).await.map_err(read_err)?;
    let len = frame::payload_len(header, &ACK_LIMITS).map_err(|e| QuicError::Protocol(format!("ack frame: {e}")))?;
    let mut payload = vec![0u8; len];
    recv.read_exact(&mut payload).await.map_err(read_err)?;
    let ack = codec::decode_ack(&payload, &ACK_LIMITS).map_err(|e| QuicError::Protocol(format!("ack: {e}")))?;
    if ack.seq != seq {
        return Err(QuicError::Protocol(format!("ack for batch {} on the stream of batch {seq}", ack.seq)));
    }
    link.put_back((send, recv));
    Ok(ack)
}
