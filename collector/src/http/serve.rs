//! The accept loop of the HTTP listener: bounded connections, bounded time.
//!
//! `axum::serve` keeps a connection as long as the client likes: a partial request or a
//! connection that sends nothing stayed open past 70 s, and 1 100 of them used up the
//! collector's descriptors (`/healthz` stopped answering; a CRL reload failed). Here every
//! connection is admitted by a [`Gate`] — at most `max-connections` in all and
//! `max-connections-per-address` per client address, the global cap also bounded by the
//! descriptors the process may open ([`descriptor_cap`]) so QUIC, the store and trust reloads
//! always find one — and is closed when
//!
//! - its request headers (or the next request on a kept-alive connection) have not arrived
//!   within `header-timeout` (hyper's header-read timer),
//! - no byte moved either way for `idle-timeout` (a stalled body, a client that stops reading),
//! - a request's handler, body included, takes longer than [`REQUEST_TIMEOUT`].
//!
//! Refusals and closes are counted in [`ConnStats`] for `/metrics`; refusals are not logged
//! one by one (a flood would flood the log too).
//!
//! Given a TLS configuration (with `[cluster]`, for the shards' mutually authenticated fleet
//! requests), the same port also speaks TLS: a connection whose first byte is a TLS handshake
//! record (0x16, never the first byte of an HTTP/1 request) is served over TLS, and the
//! client's verified certificate, if it sent one, reaches the handlers as [`PeerCert`]. The
//! first byte must arrive within `header-timeout`, the handshake within it too.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::{Request, Response, StatusCode, header};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

/// Longest a request may take from its headers to its response, body included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Descriptors kept out of the HTTP listener's reach: the stores, the trust files read on a
/// reload, the QUIC socket, SMTP connections, archive files, the runtime's own.
pub const RESERVED_DESCRIPTORS: u64 = 128;
/// How long open connections get to finish after the shutdown signal.
const DRAIN: Duration = Duration::from_secs(5);

/// The listener's limits (from `[http]`).
#[derive(Debug, Clone, Copy)]
pub struct ConnLimits {
    /// See the module docs.
    pub header_timeout: Duration,
    /// See the module docs.
    pub idle_timeout: Duration,
    /// Connections open at once, all clients together.
    pub max_connections: u64,
    /// Connections open at once from one address.
    pub max_per_address: u64,
}

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct ConnStats {
    /// Connections open now.
    pub open: AtomicU64,
    /// Connections accepted and served.
    pub accepted: AtomicU64,
    /// Refused: `max-connections` reached.
    pub refused_global: AtomicU64,
    /// Refused: the client's address had `max-connections-per-address` open.
    pub refused_per_address: AtomicU64,
    /// Closed: headers not complete within `header-timeout`.
    pub header_timeouts: AtomicU64,
    /// Closed: nothing moved for `idle-timeout`.
    pub idle_timeouts: AtomicU64,
    /// Answered 408: the request took longer than [`REQUEST_TIMEOUT`].
    pub request_timeouts: AtomicU64,
    /// `accept` failed (descriptors exhausted, most likely).
    pub accept_errors: AtomicU64,
}

/// The global cap as far as the descriptor limit `nofile` allows: each connection is one
/// descriptor, and at most half of what is left after [`RESERVED_DESCRIPTORS`] goes to HTTP.
pub fn descriptor_cap(configured: u64, nofile: u64) -> u64 {
    configured.min(nofile.saturating_sub(RESERVED_DESCRIPTORS) / 2).max(1)
}

/// Why a connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// All connections in use.
    Global,
    /// The address has its share.
    PerAddress,
}

/// Counts open connections, in all and per address.
#[derive(Debug)]
pub struct Gate {
    limits: ConnLimits,
    open: Mutex<(u64, HashMap<IpAddr, u64>)>,
}

/// One admitted connection; dropping it frees its place.
#[derive(Debug)]
pub struct Permit {
    gate: Arc<Gate>,
    ip: IpAddr,
}

impl Gate {
    /// A gate with `limits`.
    pub fn new(limits: ConnLimits) -> Arc<Gate> {
        Arc::new(Gate { limits, open: Mutex::new((0, HashMap::new())) })
    }

    /// Admits a connection from `ip`, or says why not.
    pub fn admit(self: &Arc<Gate>, ip: IpAddr) -> Result<Permit, Refusal> {
        let mut open = self.open.lock().map_err(|_| Refusal::Global)?;
        if open.0 >= self.limits.max_connections {
            return Err(Refusal::Global);
        }
        let mine = open.1.entry(ip).or_insert(0);
        if *mine >= self.limits.max_per_address {
            return Err(Refusal::PerAddress);
        }
        *mine += 1;
        open.0 += 1;
        Ok(Permit { gate: self.clone(), ip })
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if let Ok(mut open) = self.gate.open.lock() {
            open.0 = open.0.saturating_sub(1);
            if let Some(n) = open.1.get_mut(&self.ip) {
                *n -= 1;
                if *n == 0 {
                    open.1.remove(&self.ip);
                }
            }
        }
    }
}

/// The verified client certificate of a request that came over TLS with one; absent on
/// plain HTTP and on TLS without a client certificate.
#[derive(Debug, Clone)]
pub struct PeerCert(pub rustls_pki_types::CertificateDer<'static>);

/// The first byte of a TLS record carrying a handshake message.
const TLS_HANDSHAKE: u8 = 0x16;

/// Accepts connections on `listener` and serves `app` on each, within `limits`, until
/// `shutdown` turns true; then lets open connections finish for a moment. With `tls`, a
/// connection that starts a TLS handshake is served over TLS (see the module docs).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnLimits,
    stats: Arc<ConnStats>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    mut shutdown: watch::Receiver<bool>,
) {
    let gate = Gate::new(limits);
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => match gate.admit(peer.ip()) {
                    Ok(permit) => {
                        stats.accepted.fetch_add(1, Ordering::Relaxed);
                        let conn = Conn { app: app.clone(), peer, limits, stats: stats.clone(), tls: tls.clone(), shutdown: shutdown.clone() };
                        conns.spawn(conn.run(stream, permit));
                    }
                    // Dropping the stream closes it at once: no descriptor is held for it.
                    Err(Refusal::Global) => { stats.refused_global.fetch_add(1, Ordering::Relaxed); }
                    Err(Refusal::PerAddress) => { stats.refused_per_address.fetch_add(1, Ordering::Relaxed); }
                },
                Err(e) => {
                    // Out of descriptors (EMFILE) or a connection reset before accept: back
                    // off briefly instead of spinning on the error.
                    if stats.accept_errors.fetch_add(1, Ordering::Relaxed) == 0 {
                        tracing::warn!(error = %e, "HTTP accept failed (counted in ampel_http_accept_errors_total)");
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            _ = shutdown.changed() => if *shutdown.borrow() { break },
        }
    }
    drop(listener);
    let _ = tokio::time::timeout(DRAIN, async { while conns.join_next().await.is_some() {} }).await;
}

/// One connection's context.
struct Conn {
    app: Router,
    peer: SocketAddr,
    limits: ConnLimits,
    stats: Arc<ConnStats>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shutdown: watch::Receiver<bool>,
}

impl Conn {
    async fn run(self, stream: TcpStream, permit: Permit) {
        self.stats.open.fetch_add(1, Ordering::Relaxed);
        match self.tls.clone() {
            Some(acceptor) => self.maybe_tls(stream, acceptor).await,
            None => self.drive(stream, None).await,
        }
        drop(permit);
        self.stats.open.fetch_sub(1, Ordering::Relaxed);
    }

    /// Serves `stream` over TLS when its first byte starts a handshake, else as plain HTTP.
    async fn maybe_tls(&self, stream: TcpStream, acceptor: tokio_rustls::TlsAcceptor) {
        let wait = self.limits.header_timeout;
        let mut first = [0u8; 1];
        let Ok(Ok(1)) = tokio::time::timeout(wait, stream.peek(&mut first)).await else {
            self.stats.header_timeouts.fetch_add(1, Ordering::Relaxed);
            return;
        };
        if first[0] != TLS_HANDSHAKE {
            return self.drive(stream, None).await;
        }
        match tokio::time::timeout(wait, acceptor.accept(stream)).await {
            Ok(Ok(tls)) => {
                let cert = tls.get_ref().1.peer_certificates().and_then(|c| c.first()).map(|c| PeerCert(c.clone().into_owned()));
                self.drive(tls, cert).await;
            }
            Ok(Err(e)) => tracing::debug!(client = %self.peer, error = %e, "HTTP listener: TLS handshake failed"),
            Err(_) => {
                self.stats.header_timeouts.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Serves HTTP/1 on `stream` until it ends, times out or the listener shuts down.
    async fn drive<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(&self, stream: S, cert: Option<PeerCert>) {
        let mut shutdown = self.shutdown.clone();
        let activity = Arc::new(Activity::new());
        let io = TokioIo::new(Tracked { inner: stream, activity: activity.clone() });
        let service = PeerService { app: self.app.clone(), peer: self.peer, cert, stats: self.stats.clone() };
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder.timer(TokioTimer::new()).header_read_timeout(self.limits.header_timeout);
        let conn = builder.serve_connection(io, service);
        tokio::pin!(conn);
        let mut draining = false;
        loop {
            tokio::select! {
                done = conn.as_mut() => {
                    if let Err(e) = done
                        && e.is_timeout()
                    {
                        self.stats.header_timeouts.fetch_add(1, Ordering::Relaxed);
                    }
                    break;
                }
                () = activity.idle_for(self.limits.idle_timeout) => {
                    // Dropping the connection closes the socket.
                    self.stats.idle_timeouts.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                _ = shutdown.changed(), if !draining => {
                    if *shutdown.borrow() {
                        draining = true;
                        conn.as_mut().graceful_shutdown();
                    }
                }
            }
        }
    }
}

/// When a connection last moved a byte, in ms since it was accepted.
struct Activity {
    start: Instant,
    last_ms: AtomicU64,
}

impl Activity {
    fn new() -> Activity {
        Activity { start: Instant::now(), last_ms: AtomicU64::new(0) }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    /// Completes once nothing has moved for `idle`.
    async fn idle_for(&self, idle: Duration) {
        loop {
            let last = self.start + Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
            let deadline = last + idle;
            if Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep_until(deadline.into()).await;
        }
    }
}

/// A stream that notes every byte it moves in its [`Activity`].
struct Tracked<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Tracked<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tracked<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The router as a hyper service for one connection: hands the handlers the client's address
/// (`ConnectInfo`) and, over TLS, its certificate ([`PeerCert`]), and bounds each request by
/// [`REQUEST_TIMEOUT`].
#[derive(Clone)]
struct PeerService {
    app: Router,
    peer: SocketAddr,
    cert: Option<PeerCert>,
    stats: Arc<ConnStats>,
}

impl hyper::service::Service<Request<Incoming>> for PeerService {
    type Response = Response<axum::body::Body>;
    type Error = std::convert::Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        let mut req = req.map(axum::body::Body::new);
        req.extensions_mut().insert(ConnectInfo(self.peer));
        if let Some(cert) = &self.cert {
            req.extensions_mut().insert(cert.clone());
        }
        let mut app = self.app.clone();
        let stats = self.stats.clone();
        Box::pin(async move {
            // The router is always ready (axum documents it): no poll_ready needed.
            match tokio::time::timeout(REQUEST_TIMEOUT, tower_service::Service::call(&mut app, req)).await {
                Ok(response) => response,
                Err(_) => {
                    stats.request_timeouts.fetch_add(1, Ordering::Relaxed);
                    let mut r = Response::new(axum::body::Body::from("request timed out\n"));
                    *r.status_mut() = StatusCode::REQUEST_TIMEOUT;
                    r.headers_mut().insert(header::CONNECTION, header::HeaderValue::from_static("close"));
                    Ok(r)
                }
            }
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn limits(max_connections: u64, max_per_address: u64) -> ConnLimits {
        ConnLimits { header_timeout: Duration::from_secs(1), idle_timeout: Duration::from_secs(1), max_connections, max_per_address }
    }

    #[test]
    fn the_gate_caps_connections_in_all_and_per_address_and_frees_them_on_drop() {
        let gate = Gate::new(limits(3, 2));
        let (a, b, c): (IpAddr, IpAddr, IpAddr) = ([10, 0, 0, 1].into(), [10, 0, 0, 2].into(), [10, 0, 0, 3].into());
        let a1 = gate.admit(a).unwrap();
        let _a2 = gate.admit(a).unwrap();
        assert_eq!(gate.admit(a).unwrap_err(), Refusal::PerAddress);
        let _b1 = gate.admit(b).unwrap();
        assert_eq!(gate.admit(c).unwrap_err(), Refusal::Global);
        drop(a1);
        let _c1 = gate.admit(c).unwrap();
        assert_eq!(gate.admit(a).unwrap_err(), Refusal::Global);
    }

    #[test]
    fn the_descriptor_limit_bounds_the_global_cap() {
        assert_eq!(descriptor_cap(256, 1024), 256);
        assert_eq!(descriptor_cap(256, 384), 128);
        assert_eq!(descriptor_cap(256, 64), 1, "never zero");
    }
}
