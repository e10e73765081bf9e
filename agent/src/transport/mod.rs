//! Transports: how batches reach the collector.
//!
//! A transport is one task that owns the connection. The run loop writes each batch to the
//! [`Spool`] and then wakes the transport through a channel; the transport reads batches from
//! the spool, tracks those in flight in its [`Outbox`], deletes a batch from the spool only when
//! it is acknowledged, reconnects with [`Backoff`](crate::backoff::Backoff) when the connection
//! fails, and publishes a [`Status`] for logs and tests. Closing the channel asks it to finish:
//! it waits briefly for outstanding acks, then closes the connection; whatever is not
//! acknowledged stays in the spool for the next start.
//!
//! - [`quic`]: QUIC with mutual TLS, one bidirectional stream per batch.
//! - [`mqtt`]: MQTT (QoS 1) through a broker with mutual TLS; a PUBACK releases a batch.
//! - [`outbox`]: the batches in flight and the resend position, as plain data.
//! - [`shard`]: the collector to connect to after a redirect to the shard owning our tenant.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use ampel_protocol::Identity;
use ampel_protocol::tls::{self, TlsError};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::sync::{mpsc, watch};

use crate::config::CollectorConfig;
use crate::files;
use crate::spool::Spool;

pub mod mqtt;
pub mod outbox;
pub mod quic;
pub mod shard;

pub use outbox::Outbox;

/// The spool, shared by the gatherer (appends) and the transport (reads, deletes). Locks are
/// held for one short LMDB transaction, never across an `.await`.
pub type SharedSpool = Arc<Mutex<Spool>>;

/// The next spooled batch to send (its seq and CBOR payload), marked in flight; `None` when
/// `max_in_flight` are out or nothing is waiting.
pub fn next_batch(spool: &SharedSpool, outbox: &mut Outbox, max_in_flight: usize) -> Option<(u64, Vec<u8>)> {
    if !outbox.has_room(max_in_flight) {
        return None;
    }
    let guard = match spool.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    };
    match guard.next_from(outbox.position(), |s| outbox.is_in_flight(s)) {
        Ok(Some((seq, _))) if !outbox.within_span(seq) => None,
        Ok(Some((seq, payload))) => {
            outbox.sent(seq);
            Some((seq, payload))
        }
        Ok(None) => None,
        Err(e) => {
            tracing::error!(error = %e, "cannot read the spool");
            None
        }
    }
}

/// Deletes acknowledged batches from the spool; a failure is logged (they are resent and the
/// collector answers "duplicate").
pub fn forget(spool: &SharedSpool, seqs: &[u64]) {
    let mut guard = match spool.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    };
    if let Err(e) = guard.remove(seqs) {
        tracing::error!(error = %e, "cannot delete acknowledged batches from the spool");
    }
}

/// Batches held in the spool (0 if it cannot be read).
pub fn spooled(spool: &SharedSpool) -> usize {
    let guard = match spool.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    };
    guard.len().map(|n| n as usize).unwrap_or(0)
}

/// Why a transport could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// A certificate or key file could not be read.
    #[error("cannot read {}: {error}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        error: std::io::Error,
    },
    /// A certificate or key file does not hold what it should.
    #[error("{}: {error}", path.display())]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        error: TlsError,
    },
    /// rustls refused the combination (e.g. the key does not belong to the certificate).
    #[error("TLS configuration from {} and {}: {error}", cert.display(), key.display())]
    Tls {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// What rustls said.
        error: TlsError,
    },
    /// QUIC cannot use the TLS configuration (no TLS 1.3 suite).
    #[error("QUIC cannot use this TLS configuration: {0}")]
    Quic(String),
    /// MQTT needs the device identity (tenant and device id) from the certificate for its topic.
    #[error("{}: the certificate carries no tenant (O) and device id (CN); MQTT needs them for the topic", cert.display())]
    NoIdentity {
        /// The certificate file.
        cert: PathBuf,
    },
}

/// What a transport reports about itself, for logs and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Status {
    /// Whether a connection to the collector is up.
    pub connected: bool,
    /// Batches held in the spool (waiting or in flight).
    pub queued: usize,
    /// Batches in flight.
    pub in_flight: usize,
    /// Batches the collector committed (or had committed before).
    pub acked: u64,
    /// Batches the collector refused for good (dropped, never resent).
    pub rejected: u64,
    /// Batches that could not be encoded or read back (a bug or a damaged spool).
    pub dropped: u64,
    /// The most recent connection error, until the next success.
    pub last_error: Option<String>,
}

/// One way of delivering batches to the collector.
pub trait Transport {
    /// A receiver of this transport's [`Status`] updates.
    fn status(&self) -> watch::Receiver<Status>;

    /// Delivers spooled batches, woken by the seq of each new one on `spooled`, until the
    /// channel is closed; then drains briefly and closes the connection.
    fn run(self, spool: SharedSpool, spooled: mpsc::Receiver<u64>) -> impl Future<Output = ()> + Send;
}

/// The TLS material of a device: the deployment CA, its certificate chain and its key.
pub struct Credentials {
    /// Trust anchors for the collector's certificate.
    pub ca: Vec<CertificateDer<'static>>,
    /// The device certificate, leaf first.
    pub chain: Vec<CertificateDer<'static>>,
    /// The device's private key. Never logged: this type has no `Debug`.
    pub key: PrivateKeyDer<'static>,
    /// Tenant and device id read from the certificate, if it carries them.
    pub identity: Option<Identity>,
}

impl Credentials {
    /// Reads and parses the three PEM files named in the config.
    pub fn load(collector: &CollectorConfig) -> Result<Credentials, TransportError> {
        let ca = tls::parse_certs(&read(&collector.ca, files::CERT_MAX)?).map_err(pem(&collector.ca))?;
        let chain = tls::parse_certs(&read(&collector.cert, files::CERT_MAX)?).map_err(pem(&collector.cert))?;
        let key = tls::parse_key(&read(&collector.key, files::KEY_MAX)?).map_err(pem(&collector.key))?;
        let identity = chain.first().and_then(|leaf| match Identity::from_cert_der(leaf) {
            Ok(id) => Some(id),
            Err(e) => {
                tracing::warn!(cert = %collector.cert.display(), error = %e, "device certificate carries no usable identity; the collector will likely refuse it");
                None
            }
        });
        Ok(Credentials { ca, chain, key, identity })
    }
}

fn read(path: &Path, max: u64) -> Result<Vec<u8>, TransportError> {
    files::read_limited(path, max).map_err(|error| TransportError::Read { path: path.to_owned(), error })
}

fn pem(path: &Path) -> impl FnOnce(TlsError) -> TransportError + '_ {
    move |error| TransportError::Pem { path: path.to_owned(), error }
}
