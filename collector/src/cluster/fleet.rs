//! The fleet view across shards: each collector's fleet summary also holds the other shards'
//! rows, asked for by its background task ([`crate::console::fleet`]) over HTTPS with mutual
//! TLS.
//!
//! With `[cluster]` the HTTP listener also speaks TLS on its port ([`crate::http::serve`]),
//! with the collector's `server.pem` and client certificates verified against the CA and CRL,
//! as on the QUIC port. `GET /cluster/v1/fleet` ([`answer`]) gives this shard's own rows, and
//! only to a **collector of the shard map**: a client certificate that the CA verified, that
//! names no tenant (no O, unlike every device certificate), and whose CN or a DNS/IP subject
//! alternative name is a shard's name or the host of a shard's `http` or `quic` address. The
//! asking collector presents its own `server.pem`/`server.key` (issued for client
//! authentication too, by `pki init` and `pki rollover`; read at every pass) and checks the
//! answering shard's certificate against the same CA for the host of its `http` address.
//!
//! A shard that does not answer within [`TIMEOUT`] (or answers with anything but its rows)
//! shows every tenant the map gives it as grey, "shard eu-2 unreachable since …", never green
//! and never left out; so does a shard without an `http` address. Rows of another shard link
//! to that shard's console: its `[http] public-url`, which it sends along, else
//! `https://<http address>`.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rustls_pki_types::ServerName;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::live::LiveMap;
use super::{HostPort, ShardConfig, ShardMap};
use crate::console::fleet::FleetRow;
use crate::http::{HttpState, PeerCert};

/// Where a shard answers with its fleet rows.
pub const PATH: &str = "/cluster/v1/fleet";
/// How long a shard has to answer, connection and handshake included.
pub const TIMEOUT: Duration = Duration::from_secs(5);
/// The most an answer may hold (about 100,000 rows).
const MAX_ANSWER: u64 = 32 << 20;

/// What a shard answers on [`PATH`].
#[derive(Debug, Serialize, Deserialize)]
pub struct FleetAnswer {
    /// The answering shard.
    pub shard: String,
    /// Its console's base URL (`[http] public-url`), when set.
    pub console_url: Option<String>,
    /// Its own tenants' rows.
    pub rows: Vec<FleetRow>,
}

/// Why the other shards cannot be asked at all.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    /// A file of the PKI directory could not be read.
    #[error("reading {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A certificate or key did not parse, or rustls refused them.
    #[error("{}: {source}", path.display())]
    Tls {
        /// The file, or the PKI directory for the configuration as a whole.
        path: PathBuf,
        /// What was wrong.
        source: ampel_protocol::tls::TlsError,
    },
}

/// Why one shard's rows could not be had.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// TCP connection or TLS handshake failed, or the connection broke.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The address is no TLS server name.
    #[error("{0:?} is no TLS server name")]
    Name(String),
    /// Nothing within [`TIMEOUT`].
    #[error("no answer within {} s", TIMEOUT.as_secs())]
    Timeout,
    /// An HTTP answer that is not a plain 200 with a body.
    #[error("answered {0}")]
    Status(String),
    /// The body is not fleet rows.
    #[error("answer is not fleet rows: {0}")]
    Decode(#[from] serde_json::Error),
    /// The request's task ended without an answer (logged).
    #[error("the request ended without an answer")]
    NoAnswer,
    /// This collector's own certificate, key or CA could not be used to ask.
    #[error("this collector's certificate: {0}")]
    OwnCertificate(Arc<PeerError>),
}

/// The other shards, and since when each has not answered.
pub struct Peers {
    /// The map in force (reloaded on SIGHUP): who the other shards are and their tenants.
    map: LiveMap,
    pki_dir: PathBuf,
    down_since: Mutex<BTreeMap<String, i64>>,
}

/// What asking one shard gave: its answer, or why not (`None`: it has no `http` address).
type Asked = Result<FleetAnswer, Option<FetchError>>;

/// Asks every shard of `others` at once, each within [`TIMEOUT`]; the results in their order.
async fn ask_all(tls: &Arc<rustls::ClientConfig>, others: &[&ShardConfig]) -> Vec<Asked> {
    let mut asked = tokio::task::JoinSet::new();
    for (i, shard) in others.iter().enumerate() {
        let (tls, http) = (tls.clone(), shard.http.clone());
        asked.spawn(async move {
            let Some(http) = http else { return (i, Err(None)) };
            match tokio::time::timeout(TIMEOUT, fetch(&tls, &http)).await {
                Ok(Ok(answer)) => (i, Ok(answer)),
                Ok(Err(e)) => (i, Err(Some(e))),
                Err(_) => (i, Err(Some(FetchError::Timeout))),
            }
        });
    }
    let mut answers: Vec<Asked> = others.iter().map(|_| Err(Some(FetchError::NoAnswer))).collect();
    while let Some(done) = asked.join_next().await {
        match done {
            Ok((i, result)) => answers[i] = result,
            // Its shard keeps `NoAnswer`: unknown, never left out.
            Err(e) => tracing::error!(error = %e, "fleet summary: asking a shard failed"),
        }
    }
    answers
}

fn read(path: PathBuf, max: u64) -> Result<(PathBuf, Vec<u8>), PeerError> {
    match crate::files::read_limited(&path, max) {
        Ok(bytes) => Ok((path, bytes)),
        Err(source) => Err(PeerError::Read { path, source }),
    }
}

impl Peers {
    /// The peers of `cfg`'s `[cluster]` as `map` has them; none without one.
    pub fn new(cfg: &crate::config::Config, map: LiveMap) -> Option<Peers> {
        cfg.cluster.as_ref()?;
        Some(Peers { map, pki_dir: cfg.pki_dir(), down_since: Mutex::default() })
    }

    /// The shard map in force.
    pub fn map(&self) -> Option<Arc<ShardMap>> {
        self.map.current()
    }

    /// The TLS client: the collector's own certificate, the CA as the only root. Read at
    /// every pass, so a renewed certificate or a CA rollover is used from the next one.
    fn client(&self) -> Result<Arc<rustls::ClientConfig>, PeerError> {
        use ampel_protocol::tls;
        let bad = |path: &PathBuf| {
            let path = path.clone();
            move |source| PeerError::Tls { path, source }
        };
        let dir = &self.pki_dir;
        let (ca_path, ca) = read(dir.join(crate::pki::CA_CERT_FILE), crate::files::CERT_MAX)?;
        let (cert_path, cert) = read(dir.join(crate::pki::SERVER_CERT_FILE), crate::files::CERT_MAX)?;
        let (key_path, key) = read(dir.join(crate::pki::SERVER_KEY_FILE), crate::files::KEY_MAX)?;
        let cas = tls::parse_certs(&ca).map_err(bad(&ca_path))?;
        let chain = tls::parse_certs(&cert).map_err(bad(&cert_path))?;
        let key = tls::parse_key(&key).map_err(bad(&key_path))?;
        Ok(Arc::new(tls::client_config(&cas, chain, key, &[b"http/1.1"]).map_err(bad(dir))?))
    }

    /// Every other shard's rows, asked all at once: its answer, or a grey row per tenant the
    /// map gives it when it does not answer (or when this collector's own certificate cannot
    /// be used to ask).
    pub async fn rows(&self, zone: &jiff::tz::TimeZone) -> Vec<FleetRow> {
        let Some(map) = self.map.current() else { return Vec::new() };
        let others: Vec<&ShardConfig> = map.shards().iter().filter(|s| s.name != map.own().name).collect();
        let answers = match self.client() {
            Ok(tls) => ask_all(&tls, &others).await,
            Err(e) => {
                tracing::error!(error = %e, "fleet summary: the other shards cannot be asked; their tenants show grey");
                let e = Arc::new(e);
                others.iter().map(|_| Err(Some(FetchError::OwnCertificate(e.clone())))).collect()
            }
        };
        let now = crate::console::now_ms();
        let mut rows = Vec::new();
        for (shard, answer) in others.into_iter().zip(answers) {
            match answer {
                Ok(answer) => rows.extend(self.answered(shard, answer)),
                Err(why) => rows.extend(self.unreachable(shard, why, now, zone)),
            }
        }
        rows
    }

    /// The rows `shard` sent of the tenants the map gives it, marked with it and its console.
    fn answered(&self, shard: &ShardConfig, answer: FleetAnswer) -> Vec<FleetRow> {
        if self.lock().remove(&shard.name).is_some() {
            tracing::info!(shard = %shard.name, "fleet summary: shard answers again");
        }
        let console = answer.console_url.or_else(|| shard.http.as_ref().map(|h| format!("https://{h}")));
        answer
            .rows
            .into_iter()
            .filter(|r| r.tenant.parse().is_ok_and(|t| shard.tenants.contains(&t)))
            .map(|r| FleetRow { shard: Some(shard.name.clone()), console_url: console.clone(), ..r })
            .collect()
    }

    /// A grey row for every tenant of `shard`, saying since when it has not answered and why.
    fn unreachable(&self, shard: &ShardConfig, why: Option<FetchError>, now: i64, zone: &jiff::tz::TimeZone) -> Vec<FleetRow> {
        let since = *self.lock().entry(shard.name.clone()).or_insert_with(|| {
            tracing::warn!(shard = %shard.name, error = ?why.as_ref().map(ToString::to_string), "fleet summary: shard does not answer; its tenants show grey");
            now
        });
        let when = jiff::Timestamp::from_millisecond(since).map(|t| t.to_zoned(zone.clone()).strftime("%Y-%m-%d %H:%M:%S").to_string());
        let text = match (&why, when) {
            (None, _) => format!("shard {} has no http address in [cluster]", shard.name),
            (Some(e), Ok(t)) => format!("shard {} unreachable since {t} ({e})", shard.name),
            (Some(e), Err(_)) => format!("shard {} unreachable ({e})", shard.name),
        };
        let console = shard.http.as_ref().map(|h| format!("https://{h}"));
        shard
            .tenants
            .iter()
            .map(|t| FleetRow {
                shard: Some(shard.name.clone()),
                console_url: console.clone(),
                ..FleetRow::unknown(t.as_str(), text.clone(), now)
            })
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, i64>> {
        self.down_since.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// `GET /cluster/v1/fleet` of the shard at `http`, over TLS with the collector's certificate.
async fn fetch(tls: &Arc<rustls::ClientConfig>, http: &HostPort) -> Result<FleetAnswer, FetchError> {
    let name = ServerName::try_from(http.host().to_owned()).map_err(|_| FetchError::Name(http.host().to_owned()))?;
    let tcp = tokio::net::TcpStream::connect((http.host(), http.port())).await?;
    let mut stream = tokio_rustls::TlsConnector::from(tls.clone()).connect(name, tcp).await?;
    let request = format!("GET {PATH} HTTP/1.1\r\nHost: {http}\r\nConnection: close\r\nAccept: application/json\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut raw = Vec::new();
    (&mut stream).take(MAX_ANSWER).read_to_end(&mut raw).await?;
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").ok_or_else(|| FetchError::Status("without a complete head".into()))?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let status = head.lines().next().unwrap_or_default();
    if status.split_whitespace().nth(1) != Some("200") || head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        return Err(FetchError::Status(ampel_protocol::logsafe::esc(status).to_string()));
    }
    Ok(serde_json::from_slice(&raw[split + 4..])?)
}

/// Whether `der`, a client certificate the CA already verified, is a collector of `map` (see
/// the module docs).
pub fn is_collector(map: &ShardMap, der: &[u8]) -> bool {
    use x509_parser::extensions::GeneralName;
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(der) else { return false };
    if cert.subject().iter_organization().next().is_some() {
        return false;
    }
    let known = |name: &str| {
        map.shards()
            .iter()
            .any(|s| s.name == name || s.http.as_ref().is_some_and(|h| same_host(h.host(), name)) || same_host(s.quic.host(), name))
    };
    let cn = cert.subject().iter_common_name().filter_map(|c| c.as_str().ok()).any(known);
    let san = cert.subject_alternative_name().ok().flatten().is_some_and(|ext| {
        ext.value.general_names.iter().any(|g| match g {
            GeneralName::DNSName(d) => known(d),
            GeneralName::IPAddress(b) => ip_of(b).is_some_and(|ip| known(&ip.to_string())),
            _ => false,
        })
    });
    cn || san
}

fn ip_of(bytes: &[u8]) -> Option<IpAddr> {
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes).ok().map(IpAddr::from),
        16 => <[u8; 16]>::try_from(bytes).ok().map(IpAddr::from),
        _ => None,
    }
}

/// Host names compare without case; IP addresses by value.
fn same_host(a: &str, b: &str) -> bool {
    match (a.parse::<IpAddr>(), b.parse::<IpAddr>()) {
        (Ok(x), Ok(y)) => x == y,
        _ => a.eq_ignore_ascii_case(b),
    }
}

fn refuse(status: StatusCode, message: &str) -> Response {
    let body = serde_json::json!({ "error": message }).to_string();
    (status, [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], body).into_response()
}

/// `GET /cluster/v1/fleet`: this shard's own rows of the fleet summary, to another shard's
/// collector only (403 to anyone else, 404 without `[cluster]`, 503 before the first pass).
pub async fn answer(State(state): State<Arc<HttpState>>, req: Request) -> Response {
    let Some(console) = state.console.as_ref() else { return refuse(StatusCode::NOT_FOUND, "not found") };
    let Some(map) = console.shard_map() else { return refuse(StatusCode::NOT_FOUND, "not found") };
    let Some(PeerCert(der)) = req.extensions().get::<PeerCert>() else {
        tracing::warn!("fleet request refused: no client certificate (plain HTTP or TLS without one)");
        return refuse(StatusCode::FORBIDDEN, "only a collector of the shard map, over TLS with its certificate");
    };
    if !is_collector(&map, der) {
        tracing::warn!("fleet request refused: the client certificate is no collector of the shard map");
        return refuse(StatusCode::FORBIDDEN, "only a collector of the shard map, over TLS with its certificate");
    }
    let snapshot = console.fleet.snapshot();
    if snapshot.done_ms.is_none() {
        return refuse(StatusCode::SERVICE_UNAVAILABLE, "the fleet summary is being computed");
    }
    let rows = snapshot.rows.iter().filter(|r| r.console_url.is_none()).cloned().collect();
    let console_url = console.cfg.http.public_url.as_ref().map(|u| u.0.clone());
    let answer = FleetAnswer { shard: map.own().name.clone(), console_url, rows };
    match serde_json::to_vec(&answer) {
        Ok(body) => (StatusCode::OK, [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], body).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "fleet answer could not be serialized");
            refuse(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn map(own_http: &str, other_http: &str) -> ShardMap {
        #[derive(Deserialize)]
        struct Top {
            cluster: ShardMap,
        }
        let src = format!(
            "[cluster]\nshard = \"eu-1\"\n\
             [[cluster.shards]]\nname = \"eu-1\"\nquic = \"eu-1.example.net:4433\"\nhttp = \"{own_http}\"\ntenants = [\"acme\"]\n\
             [[cluster.shards]]\nname = \"eu-2\"\nquic = \"eu-2.example.net:4433\"\nhttp = \"{other_http}\"\ntenants = [\"initech\"]\n"
        );
        toml::from_str::<Top>(&src).unwrap().cluster
    }

    fn der(pem: &str) -> Vec<u8> {
        ampel_protocol::tls::parse_certs(pem.as_bytes()).unwrap().remove(0).to_vec()
    }

    /// A collector's certificate (from `pki init`: CN and SANs, no O) counts when a name of it
    /// is a shard's address host; a device certificate never does, even one named like a shard.
    #[test]
    fn only_a_certificate_naming_a_shard_and_no_tenant_is_a_collector() {
        let dir = tempfile::tempdir().unwrap();
        let opts = crate::pki::InitOptions { names: vec!["localhost".into(), "127.0.0.1".into()], ..Default::default() };
        let pki = crate::pki::Pki::init(dir.path(), &opts).unwrap();
        let server = der(&std::fs::read_to_string(pki.server_cert_path()).unwrap());
        assert!(is_collector(&map("127.0.0.1:8443", "127.0.0.1:9443"), &server), "an IP SAN of a shard's http host");
        assert!(is_collector(&map("eu-1.example.net:8443", "localhost:9443"), &server), "a DNS SAN of a shard's http host");
        assert!(!is_collector(&map("eu-1.example.net:8443", "eu-2.example.net:9443"), &server), "a collector of another deployment");
        let device = pki.issue_device(&"acme".parse().unwrap(), &"eu-2".parse().unwrap(), 1).unwrap();
        assert!(!is_collector(&map("127.0.0.1:8443", "127.0.0.1:9443"), &der(&device.cert_pem)), "a device named like a shard");
        assert!(!is_collector(&map("127.0.0.1:8443", "127.0.0.1:9443"), b"not a certificate"));
    }

    /// The shard map section with eu-2's tenants as given.
    fn cluster_toml(eu2_tenants: &str) -> String {
        format!(
            "[cluster]\nshard = \"eu-1\"\n\
             [[cluster.shards]]\nname = \"eu-1\"\nquic = \"127.0.0.1:4433\"\nhttp = \"127.0.0.1:1\"\ntenants = [\"acme\"]\n\
             [[cluster.shards]]\nname = \"eu-2\"\nquic = \"127.0.0.1:4434\"\nhttp = \"127.0.0.1:1\"\ntenants = [{eu2_tenants}]\n"
        )
    }

    /// A reload that gives eu-2 another tenant shows up in the next pass's grey rows of eu-2
    /// (unreachable here: this collector has no certificate to ask with).
    #[tokio::test]
    async fn the_other_shards_rows_follow_a_reloaded_map() {
        let dir = tempfile::tempdir().unwrap();
        let config = |eu2: &str| {
            let src = format!("data-dir = \"{}\"\n{}", dir.path().join("data").display(), cluster_toml(eu2));
            crate::config::Config::parse(&dir.path().join("collector.toml"), &src).unwrap()
        };
        let cfg = config("\"initech\"");
        let live = LiveMap::new(cfg.cluster.clone());
        let peers = Peers::new(&cfg, live.clone()).unwrap();
        let tenants = |rows: Vec<FleetRow>| rows.into_iter().map(|r| (r.tenant, r.light)).collect::<Vec<_>>();
        let grey = crate::risk::Light::Grey;
        assert_eq!(tenants(peers.rows(&jiff::tz::TimeZone::UTC).await), [("initech".to_owned(), grey)]);
        live.replace(config("\"initech\", \"umbrella\"").cluster).unwrap();
        assert_eq!(tenants(peers.rows(&jiff::tz::TimeZone::UTC).await), [("initech".to_owned(), grey), ("umbrella".to_owned(), grey)]);
        assert_eq!(peers.map().unwrap().shards()[1].tenants.len(), 2);
    }
}
