//! Enrollment, renewal and certificate hot-swap.
//!
//! - [`enroll`] (`ampel-agent enroll --server HOST:PORT --token TOKEN`): generates the device
//!   key here — it never leaves the device — sends a CSR on the `ampel-enroll/1` ALPN, pinning
//!   the collector's CA by the SHA-256 fingerprint the token carries, and writes the key,
//!   certificate and CA to the paths of the configuration's `[collector]` section.
//! - [`CertHandle`]: the client certificate the QUIC transport presents, replaceable while it
//!   runs (a rustls [`ResolvesClientCert`]); replacing it tells the transport to reconnect with
//!   the new one without waiting out a backoff. Unacknowledged batches are resent on the new
//!   connection and deduplicated by the collector, so nothing is lost.
//! - [`Renewer`]: renews two thirds into the certificate's lifetime over a connection
//!   authenticated by the current certificate, writes the files and swaps the certificate.
//!
//! The certificate's expiry is written to `<state-dir>/cert-expires-at` (Unix seconds) at every
//! enrollment and renewal, and sent in every batch as the metric [`EXPIRY_METRIC`]
//! (`agent.cert_expires_at`) by [`CertExpiry`].

mod pin;

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use ampel_protocol::enroll::{self, ENROLL_LIMITS, EnrollRequest, EnrollResponse, Token};
use ampel_protocol::logsafe::esc;
use ampel_protocol::{Identity, frame, tls};
use rustls::DigitallySignedStruct;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ResolvesClientCert, WebPkiServerVerifier};
use rustls::sign::CertifiedKey;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use tokio::sync::watch;

use crate::config::{AgentConfig, CollectorConfig};

/// Name of the file in the state directory that holds the certificate's notAfter.
pub const EXPIRY_FILE: &str = "cert-expires-at";

/// How long an enrollment exchange may take.
const TIMEOUT: Duration = Duration::from_secs(15);

/// Why enrollment or renewal failed.
#[derive(Debug, thiserror::Error)]
pub enum EnrollError {
    /// The token is malformed.
    #[error(transparent)]
    Token(#[from] enroll::TokenError),
    /// The server address is not HOST:PORT.
    #[error("server address {0:?}: expected HOST:PORT")]
    Address(String),
    /// Name resolution or socket trouble.
    #[error("cannot reach {address}: {}", esc(reason))]
    Network {
        /// The address.
        address: String,
        /// What failed.
        reason: String,
    },
    /// The TLS handshake failed (for enrollment: most likely the CA does not match the token).
    #[error("TLS with the collector failed: {}", esc(.0))]
    Tls(String),
    /// The collector refused the request (its reason, escaped: it goes to logs and terminals).
    #[error("collector refused: {}", esc(.0))]
    Refused(String),
    /// The collector answered something we cannot use.
    #[error("collector broke the enrollment protocol: {}", esc(.0))]
    Protocol(String),
    /// Key or CSR generation failed.
    #[error("cannot generate the key or CSR: {0}")]
    Generate(String),
    /// A file could not be read or written.
    #[error("{}: {reason}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What failed.
        reason: String,
    },
}

/// What [`enroll`] wrote.
#[derive(Debug, Clone)]
pub struct Enrolled {
    /// The device's identity.
    pub identity: Identity,
    /// notAfter of the new certificate, Unix seconds.
    pub not_after: i64,
}

/// The client certificate in force and the CAs the collector is checked against, both
/// replaceable at run time (renewal; CA rollover).
#[derive(Debug, Clone)]
pub struct CertHandle {
    current: Arc<RwLock<Arc<CertifiedKey>>>,
    server: Arc<RwLock<Arc<WebPkiServerVerifier>>>,
    cas: Arc<RwLock<Vec<CertificateDer<'static>>>>,
    generation: Arc<watch::Sender<u64>>,
}

fn server_verifier(cas: &[CertificateDer<'static>]) -> Result<Arc<WebPkiServerVerifier>, rustls::Error> {
    let mut roots = rustls::RootCertStore::empty();
    for ca in cas {
        roots.add(ca.clone()).map_err(|e| rustls::Error::General(format!("trust anchor refused: {e}")))?;
    }
    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), tls::provider()).build().map_err(|e| rustls::Error::General(e.to_string()))
}

fn put<T>(lock: &RwLock<T>, value: T) {
    match lock.write() {
        Ok(mut g) => *g = value,
        Err(p) => *p.into_inner() = value,
    }
}

fn get<T: Clone>(lock: &RwLock<T>) -> T {
    match lock.read() {
        Ok(g) => g.clone(),
        Err(p) => p.into_inner().clone(),
    }
}

impl CertHandle {
    /// A handle presenting `chain`/`key` and trusting `cas` for the collector.
    pub fn new(
        cas: Vec<CertificateDer<'static>>,
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Result<CertHandle, rustls::Error> {
        let ck = certified(chain, key)?;
        let server = server_verifier(&cas)?;
        let (generation, _) = watch::channel(0);
        Ok(CertHandle {
            current: Arc::new(RwLock::new(Arc::new(ck))),
            server: Arc::new(RwLock::new(server)),
            cas: Arc::new(RwLock::new(cas)),
            generation: Arc::new(generation),
        })
    }

    /// Replaces the certificate (and, when given, the trusted CAs); new handshakes use them,
    /// and subscribers hear of it.
    pub fn replace(
        &self,
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
        cas: Option<Vec<CertificateDer<'static>>>,
    ) -> Result<(), rustls::Error> {
        let ck = Arc::new(certified(chain, key)?);
        if let Some(cas) = cas {
            put(&self.server, server_verifier(&cas)?);
            put(&self.cas, cas);
        }
        put(&self.current, ck);
        self.generation.send_modify(|g| *g += 1);
        Ok(())
    }

    /// The CAs the collector is checked against now.
    pub fn cas(&self) -> Vec<CertificateDer<'static>> {
        get(&self.cas)
    }

    /// Changes whenever the certificate is replaced.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.generation.subscribe()
    }

    fn get(&self) -> Arc<CertifiedKey> {
        get(&self.current)
    }

    /// The leaf certificate in force.
    pub fn leaf(&self) -> Option<CertificateDer<'static>> {
        self.get().cert.first().cloned()
    }
}

fn certified(chain: Vec<CertificateDer<'static>>, key: PrivateKeyDer<'static>) -> Result<CertifiedKey, rustls::Error> {
    CertifiedKey::from_der(chain, key, &tls::provider())
}

impl ResolvesClientCert for CertHandle {
    fn resolve(&self, _hints: &[&[u8]], _schemes: &[rustls::SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        Some(self.get())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

impl ServerCertVerifier for CertHandle {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        get(&self.server).verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
    }

    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        get(&self.server).verify_tls12_signature(m, c, d)
    }

    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        get(&self.server).verify_tls13_signature(m, c, d)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        get(&self.server).supported_verify_schemes()
    }
}

/// A client configuration that checks the collector against the CAs `cert` holds and presents
/// the certificate it holds — both replaceable without rebuilding the configuration.
pub fn client_config(cert: &CertHandle, alpn: &[&[u8]]) -> Result<rustls::ClientConfig, tls::TlsError> {
    let mut cfg = rustls::ClientConfig::builder_with_provider(tls::provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| tls::TlsError::Rustls(e.to_string()))?
        .dangerous()
        // Delegates to rustls's WebPkiServerVerifier over the CAs in force: nothing is skipped.
        .with_custom_certificate_verifier(Arc::new(cert.clone()))
        .with_client_cert_resolver(Arc::new(cert.clone()));
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(cfg)
}

/// A fresh P-256 key and a CSR for it, DER. The key is returned as PKCS#8 PEM.
fn key_and_csr(device: &str) -> Result<(String, Vec<u8>), EnrollError> {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(|e| EnrollError::Generate(e.to_string()))?;
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name.push(rcgen::DnType::CommonName, device);
    let csr = params.serialize_request(&key).map_err(|e| EnrollError::Generate(e.to_string()))?;
    Ok((key.serialize_pem(), csr.der().to_vec()))
}

/// Resolves HOST:PORT (or the config's address) to one socket address.
async fn resolve(address: &str) -> Result<SocketAddr, EnrollError> {
    let net = |reason: String| EnrollError::Network { address: address.to_owned(), reason };
    tokio::net::lookup_host(address).await.map_err(|e| net(e.to_string()))?.next().ok_or_else(|| net("no address".into()))
}

/// One request/response exchange on the enroll ALPN.
async fn exchange(
    tls_config: rustls::ClientConfig,
    addr: SocketAddr,
    server_name: &str,
    request: &EnrollRequest,
) -> Result<EnrollResponse, EnrollError> {
    let net = |reason: String| EnrollError::Network { address: addr.to_string(), reason };
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls_config).map_err(|e| EnrollError::Tls(e.to_string()))?;
    let bind: SocketAddr = if addr.is_ipv6() { (Ipv6Addr::UNSPECIFIED, 0).into() } else { (Ipv4Addr::UNSPECIFIED, 0).into() };
    let endpoint = quinn::Endpoint::client(bind).map_err(|e| net(e.to_string()))?;
    let result = tokio::time::timeout(TIMEOUT, async {
        let conn = endpoint
            .connect_with(quinn::ClientConfig::new(Arc::new(crypto)), addr, server_name)
            .map_err(|e| EnrollError::Tls(e.to_string()))?
            .await
            .map_err(|e| EnrollError::Tls(e.to_string()))?;
        let (mut send, mut recv) = conn.open_bi().await.map_err(|e| EnrollError::Tls(e.to_string()))?;
        let body = enroll::encode(request)
            .and_then(|b| frame::encode_frame(&b, &ENROLL_LIMITS))
            .map_err(|e| EnrollError::Protocol(e.to_string()))?;
        send.write_all(&body).await.map_err(|e| EnrollError::Tls(e.to_string()))?;
        let _ = send.finish();
        let mut header = [0u8; frame::HEADER_LEN];
        recv.read_exact(&mut header).await.map_err(|e| EnrollError::Tls(e.to_string()))?;
        let len = frame::payload_len(header, &ENROLL_LIMITS).map_err(|e| EnrollError::Protocol(e.to_string()))?;
        let payload = recv.read_to_end(len).await.map_err(|e| EnrollError::Protocol(e.to_string()))?;
        conn.close(0u32.into(), b"done");
        enroll::decode_response(&payload).map_err(|e| EnrollError::Protocol(e.to_string()))
    })
    .await;
    let _ = tokio::time::timeout(Duration::from_secs(1), endpoint.wait_idle()).await;
    result.map_err(|_| net(format!("no answer within {TIMEOUT:?}")))?
}

/// Checks an issued certificate and returns its DER chain, identity and notAfter.
fn check_issued(cert_pem: &str, key_pem: &str) -> Result<(Vec<CertificateDer<'static>>, Identity, i64), EnrollError> {
    let chain = tls::parse_certs(cert_pem.as_bytes()).map_err(|e| EnrollError::Protocol(e.to_string()))?;
    let leaf = chain.first().ok_or_else(|| EnrollError::Protocol("no certificate".into()))?;
    let identity = Identity::from_cert_der(leaf).map_err(|e| EnrollError::Protocol(e.to_string()))?;
    let (_, not_after) = enroll::validity(leaf).ok_or_else(|| EnrollError::Protocol("unreadable certificate".into()))?;
    // The certificate must carry our key, or it is useless (and the collector confused).
    let key = tls::parse_key(key_pem.as_bytes()).map_err(|e| EnrollError::Generate(e.to_string()))?;
    certified(chain.clone(), key)
        .and_then(|ck| ck.keys_match())
        .map_err(|e| EnrollError::Protocol(format!("certificate does not match our key: {e}")))?;
    Ok((chain, identity, not_after))
}

/// Enrolls this device: see the module docs. Refuses to overwrite an existing key file.
pub async fn enroll(config: &AgentConfig, server: &str, token: &str) -> Result<Enrolled, EnrollError> {
    tls::install_provider();
    let token = Token::parse(token)?;
    let c = &config.collector;
    if c.key.exists() {
        return Err(EnrollError::File {
            path: c.key.clone(),
            reason: "a key exists already; this device is enrolled (remove the key to enroll again)".into(),
        });
    }
    let host = server
        .rsplit_once(':')
        .map(|(h, _)| h.trim_start_matches('[').trim_end_matches(']'))
        .ok_or_else(|| EnrollError::Address(server.to_owned()))?;
    ServerName::try_from(host.to_owned()).map_err(|_| EnrollError::Address(server.to_owned()))?;
    let addr = resolve(server).await?;
    let (key_pem, csr) = key_and_csr(token.device.as_str())?;
    let tls_config = pin::config(&token.ca_sha256).map_err(|e| EnrollError::Tls(e.to_string()))?;
    let request = EnrollRequest::Enroll {
        id: token.id.clone(),
        secret: token.secret.clone(),
        tenant: token.tenant.to_string(),
        device: token.device.to_string(),
        csr,
    };
    let (cert_pem, ca_pem, _, shard) = issued(exchange(tls_config, addr, host, &request).await?)?;
    // The CA we are told to trust must be the one the token pinned.
    let cas = tls::parse_certs(ca_pem.as_bytes()).map_err(|e| EnrollError::Protocol(e.to_string()))?;
    if !cas.iter().any(|ca| pin::sha256_hex(ca) == token.ca_sha256) {
        return Err(EnrollError::Protocol("the CA sent is not the one the token names".into()));
    }
    let (_, identity, not_after) = check_issued(&cert_pem, &key_pem)?;
    if identity.tenant != token.tenant || identity.device != token.device {
        return Err(EnrollError::Protocol(format!("certificate issued for {}/{}, not the token's", identity.tenant, identity.device)));
    }
    write_file(&c.key, key_pem.as_bytes(), 0o600)?;
    write_file(&c.cert, cert_pem.as_bytes(), 0o644)?;
    write_file(&c.ca, ca_pem.as_bytes(), 0o644)?;
    write_expiry(&config.state_dir, not_after);
    remember_shard(config, shard.as_deref());
    Ok(Enrolled { identity, not_after })
}

/// Saves the shard a collector named in its answer (`<state-dir>/shard`), so the first data
/// connection goes there; the answer came over the connection verified against the pinned CA.
/// A redirect that does not parse is logged and left: the configured collector redirects.
fn remember_shard(config: &AgentConfig, shard: Option<&str>) {
    let Some(text) = shard else { return };
    let mut target = crate::transport::shard::ShardTarget::load(config.collector.address.clone(), Some(&config.state_dir));
    let followed = ampel_protocol::shard::Redirect::decode(text.as_bytes()).map_err(|e| e.to_string()).and_then(|r| {
        let name = r.shard.clone();
        target.redirected(r).map(|()| name).map_err(|e| e.to_string())
    });
    match followed {
        Ok(name) => tracing::info!(shard = %name, "the collector named our tenant's shard; connecting there"),
        Err(e) => tracing::warn!(error = %ampel_protocol::logsafe::esc(&e), "the collector named a shard we cannot use"),
    }
}

fn issued(r: EnrollResponse) -> Result<(String, String, i64, Option<String>), EnrollError> {
    match r {
        EnrollResponse::Issued { cert_pem, ca_pem, not_after, shard } => Ok((cert_pem, ca_pem, not_after, shard)),
        EnrollResponse::Refused(reason) => Err(EnrollError::Refused(reason)),
    }
}

/// Writes a file atomically (temporary sibling, fsync, rename) with `mode`.
fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<(), EnrollError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let err = |e: std::io::Error| EnrollError::File { path: path.to_owned(), reason: e.to_string() };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        crate::files::create_dir_all(dir).map_err(err)?;
    }
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp.{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .and_then(|mut f| f.write_all(bytes).and_then(|()| f.sync_all()))
        .and_then(|()| std::fs::rename(&tmp, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written.map_err(err)
}

/// Records the certificate's expiry for monitoring; a failure is logged, not fatal.
pub fn write_expiry(state_dir: &Path, not_after: i64) {
    if let Err(e) = write_file(&state_dir.join(EXPIRY_FILE), format!("{not_after}\n").as_bytes(), 0o644) {
        tracing::warn!(error = %e, "cannot record the certificate's expiry");
    }
}

/// Name of the metric that carries the certificate's notAfter (Unix seconds) in every batch.
pub const EXPIRY_METRIC: &str = "agent.cert_expires_at";

/// A source of one metric, [`EXPIRY_METRIC`], read from the certificate in force, so the
/// collector's risk rules can see a certificate about to lapse (renewal failing).
pub struct CertExpiry {
    cert: CertHandle,
}

impl CertExpiry {
    /// Reports the expiry of the certificate `cert` holds.
    pub fn new(cert: CertHandle) -> CertExpiry {
        CertExpiry { cert }
    }
}

impl crate::sources::Source for CertExpiry {
    fn name(&self) -> &'static str {
        "certificate"
    }

    fn gather(&mut self, now_ms: i64) -> Result<Vec<ampel_protocol::Record>, crate::sources::SourceError> {
        let not_after = self.cert.leaf().and_then(|leaf| enroll::validity(&leaf)).map(|(_, na)| na);
        Ok(not_after
            .map(|na| {
                ampel_protocol::Record::Metric(ampel_protocol::Metric {
                    ts: now_ms,
                    name: EXPIRY_METRIC.to_owned(),
                    labels: Vec::new(),
                    value: na as f64,
                })
            })
            .into_iter()
            .collect())
    }
}

/// Renews the device certificate before it expires and hot-swaps it.
pub struct Renewer {
    collector: CollectorConfig,
    state_dir: PathBuf,
    cert: CertHandle,
}

/// Wait after a failed renewal before the next try.
const RETRY: Duration = Duration::from_secs(30);

impl Renewer {
    /// A renewer for the certificate (and trusted CAs) in `cert`.
    pub fn new(config: &AgentConfig, cert: CertHandle) -> Renewer {
        Renewer { collector: config.collector.clone(), state_dir: config.state_dir.clone(), cert }
    }

    /// Seconds until renewal is due for the certificate in force (0 when overdue).
    fn due_in(&self, now: i64) -> Option<Duration> {
        let leaf = self.cert.leaf()?;
        let (nb, na) = enroll::validity(&leaf)?;
        Some(Duration::from_secs(u64::try_from(enroll::renew_at(nb, na) - now).unwrap_or(0)))
    }

    /// Runs forever: sleeps until renewal is due, renews, repeats. Drop it to stop.
    pub async fn run(self) {
        if let Some(leaf) = self.cert.leaf()
            && let Some((_, na)) = enroll::validity(&leaf)
        {
            write_expiry(&self.state_dir, na);
        }
        loop {
            let Some(wait) = self.due_in(crate::run::unix_ms() / 1000) else {
                tracing::warn!("cannot read the certificate's validity; automatic renewal is off");
                std::future::pending::<()>().await;
                return;
            };
            if !wait.is_zero() {
                tracing::debug!(in_secs = wait.as_secs(), "certificate renewal scheduled");
                // Wake at least hourly: a long sleep would miss a clock change, and tokio
                // timers do not reach past a couple of years.
                tokio::time::sleep(wait.min(Duration::from_secs(3600))).await;
                continue;
            }
            match self.renew_once().await {
                Ok(not_after) => tracing::info!(not_after, "certificate renewed; switching to it"),
                Err(e) => {
                    tracing::warn!(error = %e, retry_in_s = RETRY.as_secs(), "certificate renewal failed");
                    tokio::time::sleep(RETRY).await;
                }
            }
        }
    }

    /// One renewal: new key, CSR, exchange, files, swap. Returns the new notAfter.
    pub async fn renew_once(&self) -> Result<i64, EnrollError> {
        let device = self.cert.leaf().and_then(|l| Identity::from_cert_der(&l).ok()).map(|i| i.device.to_string()).unwrap_or_default();
        let (key_pem, csr) = key_and_csr(&device)?;
        let tls_config = client_config(&self.cert, &[enroll::ALPN_ENROLL]).map_err(|e| EnrollError::Tls(e.to_string()))?;
        let address = self.collector.address.to_string();
        let addr = match self.collector.address.socket_addr() {
            Some(a) => a,
            None => resolve(&address).await?,
        };
        let name = self.collector.tls_name().to_str().into_owned();
        let (cert_pem, ca_pem, _, _) = issued(exchange(tls_config, addr, &name, &EnrollRequest::Renew { csr }).await?)?;
        let (chain, _, not_after) = check_issued(&cert_pem, &key_pem)?;
        let key = tls::parse_key(key_pem.as_bytes()).map_err(|e| EnrollError::Generate(e.to_string()))?;
        // Key first: a crash between the two writes leaves a key without its certificate,
        // which the next start reports, rather than a certificate for a lost key.
        // The CAs to trust from now on (two during a CA rollover). Only a set that includes one
        // we trust already is taken: the answer came over a connection verified against it.
        let known = self.cert.cas();
        let cas = tls::parse_certs(ca_pem.as_bytes()).ok().filter(|cas| cas.iter().any(|c| known.contains(c)));
        write_file(&self.collector.key, key_pem.as_bytes(), 0o600)?;
        write_file(&self.collector.cert, cert_pem.as_bytes(), 0o644)?;
        if cas.is_some() {
            write_file(&self.collector.ca, ca_pem.as_bytes(), 0o644)?;
        }
        write_expiry(&self.state_dir, not_after);
        self.cert.replace(chain, key, cas).map_err(|e| EnrollError::Protocol(e.to_string()))?;
        Ok(not_after)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::sources::Source;

    fn cert(cn: &str, secs: i64) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>, i64) {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut p = rcgen::CertificateParams::new(vec!["localhost".into()]).unwrap();
        p.distinguished_name.push(rcgen::DnType::CommonName, cn);
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        p.not_before = time::OffsetDateTime::from_unix_timestamp(now - 300).unwrap();
        p.not_after = time::OffsetDateTime::from_unix_timestamp(now + secs).unwrap();
        let c = p.self_signed(&key).unwrap();
        let k = tls::parse_key(key.serialize_pem().as_bytes()).unwrap();
        (vec![c.der().clone()], k, now + secs)
    }

    #[test]
    fn the_handle_swaps_the_certificate_and_the_expiry_metric_follows() {
        tls::install_provider();
        let (chain, key, na1) = cert("fw-1", 60);
        let h = CertHandle::new(chain.clone(), chain, key).unwrap();
        let gen_rx = h.subscribe();
        let mut src = CertExpiry::new(h.clone());
        let value = |s: &mut CertExpiry| match s.gather(0).unwrap().pop() {
            Some(ampel_protocol::Record::Metric(m)) => (m.name, m.value as i64),
            other => panic!("{other:?}"),
        };
        assert_eq!(value(&mut src), (EXPIRY_METRIC.to_owned(), na1));
        let (chain, key, na2) = cert("fw-1", 3600);
        h.replace(chain, key, None).unwrap();
        assert!(gen_rx.has_changed().unwrap());
        assert_eq!(value(&mut src).1, na2);
    }
}
