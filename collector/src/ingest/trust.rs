//! Client-certificate trust that changes without a restart: CA rollover and revocation.
//!
//! [`ReloadingVerifier`] is the rustls [`ClientCertVerifier`] of the QUIC listener. It delegates
//! to a `WebPkiClientVerifier` built from the PKI directory — `ca.pem`, the previous CA during a
//! rollover (`ca-next.pem`, `ca-previous.pem`, see [`crate::pki`]) and `crl.pem` — and swaps that delegate when
//! [`Trust::watch`] sees one of the files change (mtime and size, polled every
//! [`POLL_EVERY`]). A file that does not parse, or a CRL not signed by a trusted CA, is
//! refused and the trust in force stays: a broken CRL must not open the door or lock everyone out.
//!
//! After every successful reload the open sessions ([`Sessions`]) are checked against the new
//! trust; a session whose certificate no longer verifies (revoked, or its CA dropped) is closed
//! at once, so `pki revoke` takes effect within seconds rather than at the next reconnect.
//!
//! A reload that fails is retried at every poll until one succeeds — a change is only marked
//! seen once it is in force, so a revocation cannot be lost to a passing failure (descriptors
//! exhausted, a file half written). Meanwhile the last good trust stays in force, and
//! [`TrustHealth`] says so on `/metrics` and `/healthz`: one ERROR when the failing starts, a
//! reminder at most every [`REMIND_EVERY`], one line when it ends.
//!
//! Client certificates are optional at the TLS level, because enrollment
//! ([`ampel_protocol::enroll::ALPN_ENROLL`]) happens before a device has one; the data ALPN
//! refuses a connection without a verified certificate right after the handshake. One port
//! serves both, which keeps firewall rules and agent configs simple.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use ampel_protocol::tls;

use crate::files;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme};
use tokio::sync::watch;

/// How often the trust files are checked for changes, and a failed reload retried.
pub const POLL_EVERY: Duration = Duration::from_secs(2);
/// Least time between two reminders that reloads are still failing.
pub const REMIND_EVERY: Duration = Duration::from_secs(300);

pub use crate::pki::{NEXT_CA_FILE, PREVIOUS_CA_FILE};

/// Application close code for a session whose certificate stopped verifying.
pub const CLOSE_REVOKED: u32 = 3;

/// Why trust material could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A file does not hold what it should.
    #[error("{path}: {message}")]
    Bad {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// Builds a client verifier from the PKI directory: trust anchors from `ca.pem` (and
/// `ca-previous.pem` when present), revocations from `crl.pem` (when present). Client
/// certificates are optional (see the module docs).
pub fn load_verifier(pki_dir: &Path) -> Result<Arc<dyn ClientCertVerifier>, TrustError> {
    let read = |path: PathBuf| {
        let max = if path.ends_with("crl.pem") { files::CRL_MAX } else { files::CERT_MAX };
        files::read_limited(&path, max).map_err(|source| TrustError::Read { path, source })
    };
    let bad = |path: &Path| {
        let path = path.to_owned();
        move |e: tls::TlsError| TrustError::Bad { path, message: e.to_string() }
    };
    let ca_path = pki_dir.join("ca.pem");
    let mut cas = tls::parse_certs(&read(ca_path.clone())?).map_err(bad(&ca_path))?;
    for extra in [NEXT_CA_FILE, PREVIOUS_CA_FILE] {
        let path = pki_dir.join(extra);
        if path.exists() {
            cas.extend(tls::parse_certs(&read(path.clone())?).map_err(bad(&path))?);
        }
    }
    let crl_path = pki_dir.join("crl.pem");
    let crls = if crl_path.exists() {
        let bytes = read(crl_path.clone())?;
        let crls = tls::parse_crls(&bytes).map_err(bad(&crl_path))?;
        if crls.is_empty() {
            return Err(TrustError::Bad { path: crl_path, message: "no CRL in it".into() });
        }
        for crl in &crls {
            x509_parser::parse_x509_crl(crl).map_err(|e| TrustError::Bad { path: crl_path.clone(), message: format!("not a CRL: {e}") })?;
        }
        // rustls would accept a CRL it cannot attribute to a trust anchor. Keep only those
        // signed by one of our CAs (after a rollover window ends, the previous CA's CRL stays
        // in the file until it is re-signed); none at all means the file is not ours.
        let kept: Vec<_> = crls.into_iter().filter(|crl| signed_by_any(crl, &cas)).collect();
        if kept.is_empty() {
            return Err(TrustError::Bad { path: crl_path, message: "the CRL is not signed by a trusted CA".into() });
        }
        kept
    } else {
        Vec::new()
    };
    let mut roots = RootCertStore::empty();
    for ca in &cas {
        roots.add(ca.clone()).map_err(|e| TrustError::Bad { path: ca_path.clone(), message: e.to_string() })?;
    }
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), tls::provider())
        .with_crls(crls)
        .allow_unauthenticated()
        .build()
        .map_err(|e| TrustError::Bad { path: crl_path, message: e.to_string() })?;
    Ok(verifier)
}

/// Whether `crl` is signed by one of `cas`.
fn signed_by_any(crl: &[u8], cas: &[CertificateDer<'static>]) -> bool {
    let Ok((_, parsed)) = x509_parser::parse_x509_crl(crl) else { return false };
    // Every Ampel CA key is ECDSA P-256 (see `crate::pki`), so that is all we check for.
    let tbs: &[u8] = parsed.tbs_cert_list.as_ref();
    let sig: &[u8] = parsed.signature_value.data.as_ref();
    cas.iter().any(|ca| {
        x509_parser::parse_x509_certificate(ca).ok().is_some_and(|(_, ca)| {
            let key: &[u8] = ca.public_key().subject_public_key.data.as_ref();
            ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_ASN1, key).verify(tbs, sig).is_ok()
        })
    })
}

/// The server certificate, replaceable while the listener runs (a CA rollover re-issues it).
#[derive(Debug)]
pub struct ServerCert {
    current: RwLock<Arc<rustls::sign::CertifiedKey>>,
}

/// Loads `server.pem` + `server.key` and appends the issuing CA (the first certificate of
/// `ca.pem`), so an enrolling agent can pin the CA by fingerprint.
pub fn load_server_cert(pki_dir: &Path) -> Result<rustls::sign::CertifiedKey, TrustError> {
    let read = |path: PathBuf| {
        let max = if path.ends_with("server.key") { files::KEY_MAX } else { files::CERT_MAX };
        files::read_limited(&path, max).map_err(|source| TrustError::Read { path, source })
    };
    let bad = |path: &Path| {
        let path = path.to_owned();
        move |e: tls::TlsError| TrustError::Bad { path, message: e.to_string() }
    };
    let (cert_path, key_path, ca_path) = (pki_dir.join("server.pem"), pki_dir.join("server.key"), pki_dir.join("ca.pem"));
    let mut chain = tls::parse_certs(&read(cert_path.clone())?).map_err(bad(&cert_path))?;
    let key = tls::parse_key(&read(key_path.clone())?).map_err(bad(&key_path))?;
    chain.extend(tls::parse_certs(&read(ca_path.clone())?).map_err(bad(&ca_path))?.into_iter().take(1));
    let ck = rustls::sign::CertifiedKey::from_der(chain, key, &tls::provider())
        .map_err(|e| TrustError::Bad { path: cert_path.clone(), message: e.to_string() })?;
    Ok(ck)
}

impl ServerCert {
    /// Starts with `ck`.
    pub fn new(ck: rustls::sign::CertifiedKey) -> ServerCert {
        ServerCert { current: RwLock::new(Arc::new(ck)) }
    }

    fn replace(&self, ck: rustls::sign::CertifiedKey) {
        let ck = Arc::new(ck);
        match self.current.write() {
            Ok(mut g) => *g = ck,
            Err(p) => *p.into_inner() = ck,
        }
    }
}

impl rustls::server::ResolvesServerCert for ServerCert {
    fn resolve(&self, _hello: rustls::server::ClientHello<'_>) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(match self.current.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        })
    }
}

/// A client verifier whose delegate can be replaced while the listener runs.
#[derive(Debug)]
pub struct ReloadingVerifier {
    current: RwLock<Arc<dyn ClientCertVerifier>>,
}

impl ReloadingVerifier {
    /// Starts with `initial`.
    pub fn new(initial: Arc<dyn ClientCertVerifier>) -> ReloadingVerifier {
        ReloadingVerifier { current: RwLock::new(initial) }
    }

    /// The delegate in force.
    pub fn current(&self) -> Arc<dyn ClientCertVerifier> {
        // A poisoned lock still holds a valid Arc: a panic cannot leave it half-written.
        match self.current.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Replaces the delegate; new handshakes use it from now on.
    pub fn replace(&self, next: Arc<dyn ClientCertVerifier>) {
        match self.current.write() {
            Ok(mut g) => *g = next,
            Err(p) => *p.into_inner() = next,
        }
    }

    /// Whether `chain` (leaf first) verifies under the trust in force now.
    pub fn still_valid(&self, chain: &[CertificateDer<'static>]) -> bool {
        let Some((leaf, rest)) = chain.split_first() else { return false };
        self.current().verify_client_cert(leaf, rest, UnixTime::now()).is_ok()
    }
}

impl ClientCertVerifier for ReloadingVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        // Enrollment has no certificate yet; the data ALPN checks for one after the handshake.
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        // Hints are optional and would have to outlive a reload; agents hold one certificate.
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.current().verify_client_cert(end_entity, intermediates, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.current().verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.current().verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.current().supported_verify_schemes()
    }
}

/// One open session: device, the chain it authenticated with, the connection, and when it
/// was added (a counter: larger is newer).
type Session = (String, Vec<CertificateDer<'static>>, quinn::Connection, u64);

/// Open data sessions with the certificate chain they authenticated with.
#[derive(Debug, Default)]
pub struct Sessions {
    open: Mutex<HashMap<usize, Session>>,
    added: AtomicU64,
}

impl Sessions {
    /// Records an authenticated connection of `device`, which may have at most `max` open.
    /// Returns the device's oldest connections beyond that, for the caller to close: a newer
    /// connection wins, because an agent that restarted (crash, power loss) connects again
    /// while its old connection still waits for its idle timeout — refusing the new one would
    /// lock the device out for a minute — and whoever holds the device's key could push the
    /// device out either way.
    pub fn add(&self, device: String, chain: Vec<CertificateDer<'static>>, conn: quinn::Connection, max: usize) -> Vec<quinn::Connection> {
        let Ok(mut m) = self.open.lock() else { return Vec::new() };
        let order = self.added.fetch_add(1, Ordering::Relaxed);
        let mut mine: Vec<(u64, usize)> = m.iter().filter(|(_, s)| s.0 == device).map(|(id, s)| (s.3, *id)).collect();
        m.insert(conn.stable_id(), (device, chain, conn, order));
        mine.sort_unstable();
        let excess = (mine.len() + 1).saturating_sub(max.max(1));
        mine.into_iter().take(excess).filter_map(|(_, id)| m.remove(&id)).map(|s| s.2).collect()
    }

    /// Forgets a connection that ended.
    pub fn remove(&self, conn: &quinn::Connection) {
        if let Ok(mut m) = self.open.lock() {
            m.remove(&conn.stable_id());
        }
    }

    /// Closes every session for which `refusal` gives a close code and reason (of the
    /// certificate chain's identity); returns how many were closed.
    pub fn close_refused(&self, refusal: impl Fn(&ampel_protocol::Identity) -> Option<(u32, Vec<u8>)>) -> usize {
        let victims: Vec<(String, quinn::Connection, (u32, Vec<u8>))> = match self.open.lock() {
            Ok(mut m) => {
                let doomed: Vec<(usize, (u32, Vec<u8>))> = m
                    .iter()
                    .filter_map(|(id, (_, chain, _, _))| {
                        let identity = ampel_protocol::Identity::from_cert_der(chain.first()?).ok()?;
                        Some((*id, refusal(&identity)?))
                    })
                    .collect();
                doomed.into_iter().filter_map(|(id, why)| m.remove(&id).map(|(d, _, c, _)| (d, c, why))).collect()
            }
            Err(_) => Vec::new(),
        };
        for (device, conn, (code, reason)) in &victims {
            tracing::info!(%device, "closing session: the shard map no longer takes its tenant here");
            conn.close(quinn::VarInt::from_u32(*code), reason);
        }
        victims.len()
    }

    /// Closes every session whose certificate no longer verifies under `verifier`; returns how
    /// many were closed.
    pub fn close_invalid(&self, verifier: &ReloadingVerifier) -> usize {
        let victims: Vec<(String, quinn::Connection)> = match self.open.lock() {
            Ok(mut m) => {
                let ids: Vec<usize> = m.iter().filter(|(_, (_, chain, _, _))| !verifier.still_valid(chain)).map(|(id, _)| *id).collect();
                ids.into_iter().filter_map(|id| m.remove(&id)).map(|(d, _, c, _)| (d, c)).collect()
            }
            Err(_) => Vec::new(),
        };
        for (device, conn) in &victims {
            tracing::warn!(%device, "closing session: its certificate is no longer trusted (revoked or CA removed)");
            conn.close(quinn::VarInt::from_u32(CLOSE_REVOKED), b"certificate revoked");
        }
        victims.len()
    }
}

/// What a reload outcome should log, decided by [`Failing::on_result`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogAction {
    /// Nothing (a further failure within [`REMIND_EVERY`] of the last line, or a success that
    /// ends no failing).
    Quiet,
    /// The first failure: an ERROR.
    Started,
    /// Still failing: a reminder.
    Reminder {
        /// Attempts that failed so far.
        attempts: u64,
        /// Since when.
        for_secs: u64,
    },
    /// A success after failures.
    Recovered {
        /// Attempts that had failed.
        attempts: u64,
        /// For how long.
        for_secs: u64,
    },
}

/// A run of failed reloads: plain data, the clock passed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failing {
    since: Instant,
    attempts: u64,
    last_line: Instant,
}

impl Failing {
    /// The next state after a reload that `ok` or not at `now`, and what to log.
    pub fn on_result(state: Option<Failing>, ok: bool, now: Instant) -> (Option<Failing>, LogAction) {
        let for_secs = |f: &Failing| now.saturating_duration_since(f.since).as_secs();
        match (state, ok) {
            (None, true) => (None, LogAction::Quiet),
            (Some(f), true) => (None, LogAction::Recovered { attempts: f.attempts, for_secs: for_secs(&f) }),
            (None, false) => (Some(Failing { since: now, attempts: 1, last_line: now }), LogAction::Started),
            (Some(mut f), false) => {
                f.attempts += 1;
                if now.saturating_duration_since(f.last_line) < REMIND_EVERY {
                    return (Some(f), LogAction::Quiet);
                }
                f.last_line = now;
                (Some(f), LogAction::Reminder { attempts: f.attempts, for_secs: for_secs(&f) })
            }
        }
    }
}

/// Whether the trust in force is the one on disk, for `/metrics` and `/healthz`.
#[derive(Debug, Default)]
pub struct TrustHealth {
    failing: Mutex<Option<(Failing, String)>>,
    failures: AtomicU64,
}

impl TrustHealth {
    /// While reloads fail: the latest error.
    pub fn failing(&self) -> Option<String> {
        self.failing.lock().ok()?.as_ref().map(|(_, e)| e.clone())
    }

    /// Reloads that failed since start.
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    /// Records a reload's outcome and logs it (see the module docs).
    fn record(&self, result: &Result<usize, TrustError>, now: Instant) {
        if result.is_err() {
            self.failures.fetch_add(1, Ordering::Relaxed);
        }
        let Ok(mut failing) = self.failing.lock() else { return };
        let (next, action) = Failing::on_result(failing.as_ref().map(|(f, _)| *f), result.is_ok(), now);
        let error = result.as_ref().err().map(ToString::to_string);
        match action {
            LogAction::Quiet => {}
            LogAction::Started => tracing::error!(
                error = error.as_deref().unwrap_or_default(),
                retry_every_s = POLL_EVERY.as_secs(),
                "refusing the changed CA or CRL; keeping the trust in force and retrying until it loads"
            ),
            LogAction::Reminder { attempts, for_secs } => tracing::warn!(
                error = error.as_deref().unwrap_or_default(),
                attempts,
                for_secs,
                "trust reload still failing; the last good CA and CRL stay in force"
            ),
            LogAction::Recovered { attempts, for_secs } => {
                tracing::info!(attempts, for_secs, "trust reload succeeded again; the current CA and CRL are in force")
            }
        }
        *failing = next.zip(error);
    }
}

/// The listener's live trust: the verifier, the open sessions, and the files they come from.
#[derive(Debug, Clone)]
pub struct Trust {
    /// The verifier installed in the listener's TLS configuration.
    pub verifier: Arc<ReloadingVerifier>,
    /// The server certificate installed in the listener's TLS configuration.
    pub server_cert: Arc<ServerCert>,
    /// Open data sessions.
    pub sessions: Arc<Sessions>,
    /// Whether the last reload failed.
    pub health: Arc<TrustHealth>,
    pki_dir: PathBuf,
}

type Stamp = Vec<Option<(SystemTime, u64)>>;

impl Trust {
    /// Loads the trust from `pki_dir`; fails if it cannot (the collector must not start without).
    pub fn load(pki_dir: &Path) -> Result<Trust, TrustError> {
        let verifier = Arc::new(ReloadingVerifier::new(load_verifier(pki_dir)?));
        let server_cert = Arc::new(ServerCert::new(load_server_cert(pki_dir)?));
        Ok(Trust {
            verifier,
            server_cert,
            sessions: Arc::new(Sessions::default()),
            health: Arc::new(TrustHealth::default()),
            pki_dir: pki_dir.to_owned(),
        })
    }

    fn stamp(&self) -> Stamp {
        ["ca.pem", NEXT_CA_FILE, PREVIOUS_CA_FILE, "crl.pem", "server.pem"]
            .iter()
            .map(|f| std::fs::metadata(self.pki_dir.join(f)).ok().and_then(|m| Some((m.modified().ok()?, m.len()))))
            .collect()
    }

    /// Reloads now: on success swaps the verifier and closes sessions that no longer verify.
    /// The outcome is recorded in [`Trust::health`] (and logged there).
    pub fn reload(&self) -> Result<usize, TrustError> {
        let result = self.try_reload();
        self.health.record(&result, Instant::now());
        result
    }

    fn try_reload(&self) -> Result<usize, TrustError> {
        let next = load_verifier(&self.pki_dir)?;
        let server = load_server_cert(&self.pki_dir)?;
        self.verifier.replace(next);
        self.server_cert.replace(server);
        Ok(self.sessions.close_invalid(&self.verifier))
    }

    /// Polls the trust files until `shutdown` turns true, reloading on every change and
    /// retrying at every poll while reloads fail (by the watcher or by SIGHUP).
    pub async fn watch(self, mut shutdown: watch::Receiver<bool>) {
        let mut seen = self.stamp();
        let mut tick = tokio::time::interval(POLL_EVERY);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.changed() => if *shutdown.borrow() { return },
            }
            let now = self.stamp();
            if now == seen && self.health.failing().is_none() {
                continue;
            }
            // Marked seen only once in force: a failed reload is tried again at the next poll.
            if let Ok(closed) = self.reload() {
                seen = now;
                tracing::info!(dir = %self.pki_dir.display(), closed, "reloaded CA and CRL");
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::pki::{InitOptions, Pki};

    fn new_ca(dir: &Path) -> Pki {
        Pki::init(dir, &InitOptions { names: vec!["localhost".into()], ..InitOptions::default() }).unwrap()
    }

    #[test]
    fn a_malformed_or_foreign_crl_is_refused_and_the_trust_in_force_stays() {
        tls::install_provider();
        let dir = tempfile::tempdir().unwrap();
        let pki = new_ca(dir.path());
        let dev = pki.issue_device(&"acme".parse().unwrap(), &"fw-1".parse().unwrap(), 1).unwrap();
        let chain = tls::parse_certs(dev.cert_pem.as_bytes()).unwrap();
        let trust = Trust::load(dir.path()).unwrap();
        assert!(trust.verifier.still_valid(&chain));

        // Garbage in crl.pem: refused, the device still verifies.
        let good_crl = std::fs::read(pki.crl_path()).unwrap();
        std::fs::write(pki.crl_path(), b"-----BEGIN X509 CRL-----\nbm90IGEgQ1JM\n-----END X509 CRL-----\n").unwrap();
        assert!(trust.reload().is_err());
        assert!(trust.verifier.still_valid(&chain));

        // A well-formed CRL of another CA: refused too (it would lock every device out).
        let other = tempfile::tempdir().unwrap();
        let other_pki = new_ca(other.path());
        std::fs::copy(other_pki.crl_path(), pki.crl_path()).unwrap();
        assert!(trust.reload().is_err());
        assert!(trust.verifier.still_valid(&chain));

        // Our CRL with the device revoked: accepted, the device no longer verifies.
        std::fs::write(pki.crl_path(), good_crl).unwrap();
        pki.revoke_device(&"fw-1".parse().unwrap()).unwrap();
        assert_eq!(trust.reload().unwrap(), 0, "no sessions to close");
        assert!(!trust.verifier.still_valid(&chain));
    }

    #[test]
    fn a_failing_reload_logs_once_then_reminds_at_a_bounded_rate_and_says_when_it_recovers() {
        let t0 = Instant::now();
        let (s, a) = Failing::on_result(None, false, t0);
        assert_eq!(a, LogAction::Started);
        let mut state = s;
        let mut lines = 0;
        // Ten minutes of failures, one attempt per poll.
        for i in 1..=300u64 {
            let (s, a) = Failing::on_result(state, false, t0 + POLL_EVERY * i as u32);
            state = s;
            if a != LogAction::Quiet {
                lines += 1;
                assert!(matches!(a, LogAction::Reminder { .. }), "{a:?}");
            }
        }
        assert_eq!(lines, 600 / REMIND_EVERY.as_secs(), "one reminder per REMIND_EVERY");
        let (s, a) = Failing::on_result(state, true, t0 + Duration::from_secs(601));
        assert_eq!((s, a), (None, LogAction::Recovered { attempts: 301, for_secs: 601 }));
        assert_eq!(Failing::on_result(None, true, t0).1, LogAction::Quiet);
    }

    #[test]
    fn a_failed_reload_is_recorded_until_one_succeeds() {
        tls::install_provider();
        let dir = tempfile::tempdir().unwrap();
        let pki = new_ca(dir.path());
        let trust = Trust::load(dir.path()).unwrap();
        let good_crl = std::fs::read(pki.crl_path()).unwrap();
        std::fs::write(pki.crl_path(), b"not a CRL").unwrap();
        assert!(trust.reload().is_err());
        assert!(trust.reload().is_err());
        assert!(trust.health.failing().is_some_and(|e| e.contains("crl.pem")), "{:?}", trust.health.failing());
        assert_eq!(trust.health.failures(), 2);
        std::fs::write(pki.crl_path(), good_crl).unwrap();
        trust.reload().unwrap();
        assert_eq!(trust.health.failing(), None);
    }

    #[test]
    fn during_a_rollover_both_cas_are_trusted_and_revocation_covers_both() {
        tls::install_provider();
        let dir = tempfile::tempdir().unwrap();
        let pki = new_ca(dir.path());
        let (t, d1, d2) = ("acme".parse().unwrap(), "fw-1".parse().unwrap(), "fw-2".parse().unwrap());
        let old = pki.issue_device(&t, &d1, 1).unwrap();
        pki.rollover_start(10).unwrap();
        let pki = pki.rollover_finish(10).unwrap();
        let new = pki.issue_device(&t, &d2, 1).unwrap();
        let chain = |pem: &str| tls::parse_certs(pem.as_bytes()).unwrap();
        let trust = Trust::load(dir.path()).unwrap();
        assert!(trust.verifier.still_valid(&chain(&old.cert_pem)), "previous CA still trusted");
        assert!(trust.verifier.still_valid(&chain(&new.cert_pem)));
        // The server certificate kept its name and is now issued by the new CA.
        let server = load_server_cert(dir.path()).unwrap();
        assert_eq!(server.cert.get(1), Some(pki.ca_der()));
        pki.revoke_device(&d1).unwrap();
        trust.reload().unwrap();
        assert!(!trust.verifier.still_valid(&chain(&old.cert_pem)), "revoked under the previous CA");
        assert!(trust.verifier.still_valid(&chain(&new.cert_pem)));
        std::fs::remove_file(dir.path().join(PREVIOUS_CA_FILE)).unwrap();
        trust.reload().unwrap();
        assert!(trust.verifier.still_valid(&chain(&new.cert_pem)));
    }
}
