//! SMTP delivery, built from separate steps so a failure names the step that failed.
//!
//! lettre's `AsyncSmtpTransport` would do all of this in one call, but it reports a refused
//! TCP connection and an untrusted certificate under the same error kind, and with the `pool`
//! feature its constructor spawns a task (so it cannot be built outside a runtime). Instead
//! each step runs on its own, under its own timeout:
//!
//! 1. resolve `host` (`tokio::net::lookup_host`);
//! 2. TCP connect to each resolved address in turn;
//! 3. `security = "tls"`: the TLS handshake, done here with tokio-rustls because lettre 0.11
//!    cannot take an already connected stream and wrap it in TLS itself;
//! 4. the SMTP greeting and EHLO (lettre's [`AsyncSmtpConnection`]);
//! 5. `security = "starttls"`: STARTTLS, which must be offered and must succeed;
//! 6. AUTH PLAIN or LOGIN when a username is configured.
//!
//! Both TLS paths trust the same anchors: the webpki roots plus the certificates of `ca-file`.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, AsyncTokioStream, Certificate, CertificateStore, TlsParameters};
use lettre::transport::smtp::extension::{ClientId, Extension};
use rustls::RootCertStore;
use rustls::crypto::CryptoProvider;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::config::{Host, MailConfig, Security, Timeout};
use super::error::{MailError, MailTestError};

/// Mechanisms we offer, in order of preference. Both send the password as is, which is why
/// a login is only allowed over TLS (see [`MailConfig::validate`]).
const MECHANISMS: [Mechanism; 2] = [Mechanism::Plain, Mechanism::Login];

/// A password that never shows up in `Debug` output or logs.
pub(crate) struct Secret(String);

impl Secret {
    /// Reads a password file: the whole file, minus the trailing newline(s).
    pub(crate) fn read(path: &Path) -> Result<Secret, MailError> {
        let text = crate::files::read_limited_to_string(path, crate::files::PASSWORD_MAX).map_err(|source| MailError::ReadFile {
            what: "password-file",
            path: path.to_owned(),
            source,
        })?;
        warn_if_world_readable(path);
        let password = text.trim_end_matches(['\r', '\n']);
        if password.is_empty() {
            return Err(MailError::EmptyPassword { path: path.to_owned() });
        }
        Ok(Secret(password.to_owned()))
    }

    /// The password itself, for the AUTH exchange only.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

#[cfg(unix)]
fn warn_if_world_readable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o004 != 0
    {
        tracing::warn!(file = %path.display(), "the SMTP password file is readable by everyone; chmod 0600 it");
    }
}

#[cfg(not(unix))]
fn warn_if_world_readable(_path: &Path) {}

/// A login name with its password.
#[derive(Debug)]
struct Login {
    user: String,
    password: Secret,
}

/// Both TLS configurations, built from the same trust anchors.
struct TlsSetup {
    /// For STARTTLS, which lettre performs.
    starttls: TlsParameters,
    /// For implicit TLS, which we perform.
    implicit: Arc<rustls::ClientConfig>,
    /// How many certificates `ca-file` added (for `Debug`).
    extra_roots: usize,
}

impl fmt::Debug for TlsSetup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsSetup").field("extra_roots", &self.extra_roots).finish_non_exhaustive()
    }
}

impl TlsSetup {
    fn new(host: &Host, ca_file: Option<&Path>) -> Result<TlsSetup, MailError> {
        let extra = match ca_file {
            Some(path) => read_ca_file(path)?,
            None => Vec::new(),
        };

        let mut roots = RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        let mut params = TlsParameters::builder(host.to_string()).certificate_store(CertificateStore::WebpkiRoots);
        for cert in &extra {
            roots.add(cert.clone()).map_err(|e| MailError::TlsSetup(format!("cannot trust a CA certificate: {e}")))?;
            let cert = Certificate::from_der(cert.to_vec()).map_err(|e| MailError::TlsSetup(e.to_string()))?;
            params = params.add_root_certificate(cert);
        }
        let starttls = params.build_rustls().map_err(|e| MailError::TlsSetup(e.to_string()))?;

        // Same provider choice as lettre: the process default (main installs ring), else ring.
        let provider = CryptoProvider::get_default().cloned().unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()));
        let implicit = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| MailError::TlsSetup(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();

        Ok(TlsSetup { starttls, implicit: Arc::new(implicit), extra_roots: extra.len() })
    }
}

/// Reads every `CERTIFICATE` block of a PEM file; at least one must be there and parse.
fn read_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, MailError> {
    let pem = crate::files::read_limited(path, crate::files::CERT_MAX).map_err(|source| MailError::ReadFile {
        what: "ca-file",
        path: path.to_owned(),
        source,
    })?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| MailError::CaFile { path: path.to_owned(), reason: e.to_string() })?;
    if certs.is_empty() {
        return Err(MailError::CaFile { path: path.to_owned(), reason: "no PEM CERTIFICATE block found".into() });
    }
    // Parse each one now, so a damaged file fails at start and not at the first report.
    let mut probe = RootCertStore::empty();
    for cert in &certs {
        probe.add(cert.clone()).map_err(|e| MailError::CaFile { path: path.to_owned(), reason: e.to_string() })?;
    }
    Ok(certs)
}

/// A configured SMTP client. Holds no connection: each delivery or test opens its own,
/// because reports go out rarely and an idle connection would only go stale.
#[derive(Debug)]
pub(crate) struct SmtpClient {
    host: Host,
    port: u16,
    security: Security,
    login: Option<Login>,
    tls: Option<TlsSetup>,
    hello: ClientId,
    timeout: Timeout,
}

impl SmtpClient {
    /// Reads the password and CA files and prepares TLS. `cfg` must have passed `validate`.
    pub(crate) fn new(cfg: &MailConfig) -> Result<SmtpClient, MailError> {
        let host = cfg.host.clone().ok_or_else(|| MailError::Config("transport = \"smtp\" needs `host`".into()))?;
        let login = match (&cfg.username, &cfg.password_file) {
            (Some(user), Some(path)) => Some(Login { user: user.as_str().to_owned(), password: Secret::read(path)? }),
            _ => None,
        };
        let tls = match cfg.security {
            Security::None => None,
            Security::Tls | Security::Starttls => Some(TlsSetup::new(&host, cfg.ca_file.as_deref())?),
        };
        let hello = match &cfg.helo_name {
            Some(name) => name.client_id().clone(),
            None => ClientId::default(),
        };
        Ok(SmtpClient { host, port: cfg.port(), security: cfg.security, login, tls, hello, timeout: cfg.timeout })
    }

    /// `host:port`, with brackets around an IPv6 literal.
    fn server(&self) -> String {
        if self.host.as_str().contains(':') { format!("[{}]:{}", self.host, self.port) } else { format!("{}:{}", self.host, self.port) }
    }

    fn tls_setup(&self) -> Result<&TlsSetup, MailTestError> {
        // `new` builds it for every security but `none`; this is only reached for those.
        self.tls.as_ref().ok_or_else(|| MailTestError::Tls { server: self.server(), reason: "TLS was not set up".into() })
    }

    /// Runs steps 1–6 and returns an open, authenticated connection. `done` collects a short
    /// note per step that succeeded, for [`SmtpClient::test`].
    async fn open(&self, done: &mut Vec<String>) -> Result<AsyncSmtpConnection, MailTestError> {
        let server = self.server();
        let limit = self.timeout;

        // 1. Resolve.
        let addrs: Vec<SocketAddr> =
            match tokio::time::timeout(limit.get(), tokio::net::lookup_host((self.host.as_str(), self.port))).await {
                Err(_) => Err(format!("timed out after {limit}")),
                Ok(Err(e)) => Err(e.to_string()),
                Ok(Ok(addrs)) => Ok(addrs.collect()),
            }
            .and_then(|addrs: Vec<SocketAddr>| if addrs.is_empty() { Err("the name has no addresses".to_owned()) } else { Ok(addrs) })
            .map_err(|reason| MailTestError::Resolve { host: self.host.to_string(), reason })?;
        tracing::debug!(%server, ?addrs, "resolved");

        // 2. TCP connect, trying each address like a browser would (without the racing).
        let mut failures = Vec::new();
        let mut connected = None;
        for addr in &addrs {
            match tokio::time::timeout(limit.get(), TcpStream::connect(addr)).await {
                Ok(Ok(tcp)) => {
                    connected = Some((tcp, *addr));
                    break;
                }
                Ok(Err(e)) => failures.push((*addr, e.to_string())),
                Err(_) => failures.push((*addr, format!("timed out after {limit}"))),
            }
        }
        let Some((tcp, addr)) = connected else {
            let reason = match failures.as_slice() {
                // One address: `server` already says where.
                [(_, only)] => only.clone(),
                _ => failures.iter().map(|(addr, e)| format!("{addr}: {e}")).collect::<Vec<_>>().join("; "),
            };
            return Err(MailTestError::Connect { server, reason });
        };
        // SMTP is a lock-step dialogue of small lines: do not let Nagle delay them.
        let _ = tcp.set_nodelay(true);
        if addr.ip().to_string() == self.host.as_str() {
            done.push(format!("connected to {server}"));
        } else {
            done.push(format!("connected to {server} ({})", addr.ip()));
        }

        // 3. Implicit TLS.
        let stream: Box<dyn AsyncTokioStream> = match self.security {
            Security::Tls => {
                let tls = self.tls_setup()?;
                let name = ServerName::try_from(self.host.as_str().to_owned())
                    .map_err(|e| MailTestError::Tls { server: server.clone(), reason: e.to_string() })?;
                let connector = tokio_rustls::TlsConnector::from(Arc::clone(&tls.implicit));
                let stream = run(limit, connector.connect(name, tcp), |e| e.to_string())
                    .await
                    .map_err(|reason| MailTestError::Tls { server: server.clone(), reason: with_tls_hint(reason) })?;
                let version = stream
                    .get_ref()
                    .1
                    .protocol_version()
                    .and_then(|v| v.as_str())
                    .map(|v| v.replace('_', ".")) // "TLSv1_3" -> "TLSv1.3"
                    .unwrap_or_else(|| "TLS".into());
                done.push(format!("TLS ok ({version})"));
                Box::new(ImplicitTls(stream))
            }
            Security::None | Security::Starttls => Box::new(tcp),
        };

        // 4. Greeting and EHLO.
        let mut conn = run(limit, AsyncSmtpConnection::connect_with_transport(stream, &self.hello), describe).await.map_err(|reason| {
            // A server that wants TLS from the first byte says nothing to a plain greeting.
            let reason = if self.security == Security::Tls {
                reason
            } else {
                format!("{reason} (if this port expects TLS from the first byte, usually 465, try security = \"tls\")")
            };
            MailTestError::Other { step: "SMTP greeting and EHLO", target: server.clone(), reason }
        })?;

        // 5. STARTTLS.
        if self.security == Security::Starttls {
            let tls = self.tls_setup()?;
            if !conn.server_info().supports_feature(Extension::StartTls) {
                conn.abort().await;
                return Err(MailTestError::Tls { server, reason: "the server does not offer STARTTLS".into() });
            }
            if let Err(reason) = run(limit, conn.starttls(tls.starttls.clone(), &self.hello), describe).await {
                return Err(MailTestError::Tls { server, reason });
            }
            done.push("STARTTLS ok".into());
        }

        // 6. Login.
        if let Some(login) = &self.login {
            let fail = |reason: String| MailTestError::Auth { server: server.clone(), user: login.user.clone(), reason };
            if conn.server_info().get_auth_mechanism(&MECHANISMS).is_none() {
                conn.abort().await;
                return Err(fail("the server offers neither AUTH PLAIN nor AUTH LOGIN".into()));
            }
            let credentials = Credentials::new(login.user.clone(), login.password.expose().to_owned());
            if let Err(reason) = run(limit, conn.auth(&MECHANISMS, &credentials), describe).await {
                conn.abort().await;
                return Err(fail(reason));
            }
            done.push(format!("login ok as {}", login.user));
        }
        Ok(conn)
    }

    /// Connects, logs in if configured, checks the session with NOOP and quits. Sends no mail.
    pub(crate) async fn test(&self) -> Result<String, MailTestError> {
        let mut done = Vec::new();
        let mut conn = self.open(&mut done).await?;
        let limit = self.timeout;
        let alive = tokio::time::timeout(limit.get(), conn.test_connected()).await.unwrap_or(false);
        if !alive {
            conn.abort().await;
            return Err(MailTestError::Other { step: "NOOP", target: self.server(), reason: "the server did not answer NOOP".into() });
        }
        let _ = tokio::time::timeout(limit.get(), conn.quit()).await;
        done.push("server ready".into());
        Ok(done.join(", "))
    }

    /// Opens a session, sends EHLO once more to read the raw reply (lettre's `ServerInfo`
    /// drops `SIZE`), and returns the advertised limit.
    pub(crate) async fn size_limit(&self) -> Result<Option<u64>, MailTestError> {
        let mut done = Vec::new();
        let mut conn = self.open(&mut done).await?;
        let limit = self.timeout;
        let reply = run(limit, conn.command(lettre::transport::smtp::commands::Ehlo::new(self.hello.clone())), describe).await;
        let _ = tokio::time::timeout(limit.get(), conn.quit()).await;
        let reply = reply.map_err(|reason| MailTestError::Other { step: "EHLO (SIZE)", target: self.server(), reason })?;
        Ok(reply.message().find_map(parse_size))
    }

    /// Delivers one formatted message to the envelope's recipients.
    pub(crate) async fn send(&self, envelope: &Envelope, email: &[u8]) -> Result<(), MailError> {
        let mut done = Vec::new();
        let mut conn = self.open(&mut done).await?;
        let limit = self.timeout;
        tracing::debug!(server = %self.server(), steps = %done.join(", "), "SMTP session open");
        if let Err(reason) = run(limit, conn.send(envelope, email), describe).await {
            conn.abort().await;
            return Err(MailError::Send { server: self.server(), reason });
        }
        // The message is accepted; a failing QUIT changes nothing about that.
        let _ = tokio::time::timeout(limit.get(), conn.quit()).await;
        Ok(())
    }
}

/// Adds the likely fix to an implicit-TLS handshake error that shows the server answered in
/// plain text (rustls: "received corrupt message of type InvalidContentType").
fn with_tls_hint(reason: String) -> String {
    if reason.contains("InvalidContentType") || reason.contains("corrupt message") {
        format!(
            "{reason} — the server does not speak TLS on this port: try security = \"starttls\" (usually port 587) or security = \"none\""
        )
    } else {
        reason
    }
}

/// `SIZE 10240000` in an EHLO line; `SIZE` or `SIZE 0` means no fixed limit.
fn parse_size(line: &str) -> Option<u64> {
    let mut words = line.split_whitespace();
    if !words.next()?.eq_ignore_ascii_case("SIZE") {
        return None;
    }
    words.next()?.parse().ok().filter(|n| *n > 0)
}

/// Runs one step under the timeout, turning its error into a reason text.
async fn run<T, E>(limit: Timeout, step: impl Future<Output = Result<T, E>>, describe: impl FnOnce(E) -> String) -> Result<T, String> {
    match tokio::time::timeout(limit.get(), step).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(describe(e)),
        Err(_) => Err(format!("timed out after {limit}")),
    }
}

/// The useful part of a lettre SMTP error: the server's reply with its code for negative
/// replies ("permanent error (535): …"), else the underlying cause without lettre's generic
/// prefix (an `io::Error` carrying rustls' "invalid peer certificate: UnknownIssuer").
fn describe(err: lettre::transport::smtp::Error) -> String {
    if err.is_permanent() || err.is_transient() {
        return err.to_string();
    }
    // lettre wraps a failed STARTTLS handshake twice ("Connection error: Connection error:
    // …"): skip its own layers down to the first foreign cause.
    let mut current: &(dyn std::error::Error + 'static) = &err;
    while let Some(source) = current.source() {
        if source.is::<lettre::transport::smtp::Error>() {
            current = source;
        } else {
            return source.to_string();
        }
    }
    current.to_string()
}

/// A TLS stream lettre can drive: lettre only accepts its own `AsyncTokioStream` trait
/// objects, and neither the trait nor tokio-rustls' stream is ours, hence the newtype.
#[derive(Debug)]
struct ImplicitTls(tokio_rustls::client::TlsStream<TcpStream>);

impl AsyncRead for ImplicitTls {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for ImplicitTls {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }

    fn poll_write_vectored(mut self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }
}

impl AsyncTokioStream for ImplicitTls {
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.0.get_ref().0.peer_addr()
    }
}
