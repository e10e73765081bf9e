//! The collector's HTTP listener (`[http]`): opt-in links, report downloads, `/healthz` and
//! `/metrics`.
//!
//! | route | what |
//! | --- | --- |
//! | `GET /confirm?t=` | a page with a button; `POST /confirm` (form `t`) confirms |
//! | `GET /unsubscribe?t=` | a page with a button; `POST /unsubscribe?t=` unsubscribes (RFC 8058 one-click: body `List-Unsubscribe=One-Click`) |
//! | `GET /download?t=` | the archived PDF, while the signed link has not expired |
//! | `GET /healthz` | 200 when the delivery store is open and the CA/CRL reloads succeed |
//! | `GET /metrics` | Prometheus text: ingest and delivery counters |
//! | `/console/...` | the web console, see [`crate::console`] |
//! | `/api/v1/...` | the console's JSON API, see [`crate::console::api`] |
//! | `GET /cluster/v1/fleet` | with `[cluster]`, over TLS to another shard's collector only: this shard's fleet rows, see [`crate::cluster::fleet`] |
//!
//! Connections are bounded in number (in all and per address) and in time (header-read and
//! idle timeouts): see [`serve`].
//!
//! A GET never changes state: mail scanners fetch links. Every refused link gets the same
//! 403 page, whatever was wrong with it; tokens are never logged. The consent log records the
//! client's address as seen by the listener (put a reverse proxy's address in mind).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use serde::{Deserialize, Deserializer};
use tokio::sync::watch;

pub mod serve;

pub use serve::{ConnLimits, ConnStats, PeerCert};

use crate::archive::Archive;
use crate::ingest::IngestStats;
use crate::ingest::trust::TrustHealth;
use crate::recipients::{self, LinkKey, TokenKind};
use crate::report::Lang;
use crate::report::mail::{MailStrings, fill};
use crate::schedule::DeliveryStore;
use crate::schedule::runner::DeliveryStats;
use crate::schedule::store::MovedReport;

/// `[http]`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct HttpConfig {
    /// Address and TCP port to listen on; no listener when unset. Needed by `[[jobs]]`.
    pub listen: Option<SocketAddr>,
    /// The URL recipients reach the listener under (e.g. behind a reverse proxy); default
    /// `http://<listen>`.
    pub public_url: Option<PublicUrl>,
    /// Longest a client may take to send a request's headers, and longest a kept-alive
    /// connection may wait for its next request.
    #[serde(default = "default_header_timeout")]
    pub header_timeout: crate::config::Duration,
    /// A connection on which no byte moved either way for this long is closed.
    #[serde(default = "default_idle_timeout")]
    pub idle_timeout: crate::config::Duration,
    /// Connections open at once (also bounded by the descriptor limit, see `serve.rs`).
    #[serde(default = "default_max_connections")]
    pub max_connections: u32,
    /// Connections open at once from one client address (behind a reverse proxy every client
    /// has the proxy's address: raise it to `max-connections` there).
    #[serde(default = "default_max_per_address")]
    pub max_connections_per_address: u32,
    /// Header an authenticating reverse proxy puts the console user's name in (e.g.
    /// `X-Remote-User`); believed only on requests from `proxy-addresses`. Unset: off.
    #[serde(default)]
    pub trust_proxy_header: Option<crate::console::users::ProxyHeader>,
    /// Addresses of the reverse proxies whose `trust-proxy-header` is believed.
    #[serde(default)]
    pub proxy_addresses: Vec<std::net::IpAddr>,
    /// Pause between the end of one pass of the console's fleet summary and the next.
    #[serde(default = "default_fleet_refresh")]
    pub fleet_refresh: crate::config::Duration,
}

fn default_fleet_refresh() -> crate::config::Duration {
    crate::config::Duration(std::time::Duration::from_secs(30))
}

fn default_header_timeout() -> crate::config::Duration {
    crate::config::Duration(std::time::Duration::from_secs(10))
}

fn default_idle_timeout() -> crate::config::Duration {
    crate::config::Duration(std::time::Duration::from_secs(60))
}

fn default_max_connections() -> u32 {
    256
}

fn default_max_per_address() -> u32 {
    32
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: None,
            public_url: None,
            header_timeout: default_header_timeout(),
            idle_timeout: default_idle_timeout(),
            max_connections: default_max_connections(),
            max_connections_per_address: default_max_per_address(),
            trust_proxy_header: None,
            proxy_addresses: Vec::new(),
            fleet_refresh: default_fleet_refresh(),
        }
    }
}

impl HttpConfig {
    /// Checks across the keys of `[http]`.
    pub fn validate(&self) -> Result<(), String> {
        let tenth = std::time::Duration::from_millis(100);
        if self.header_timeout.0 < tenth || self.idle_timeout.0 < tenth {
            return Err("header-timeout and idle-timeout must be at least 100ms, e.g. \"10s\" and \"60s\"".into());
        }
        if self.fleet_refresh.0 < std::time::Duration::from_secs(1) {
            return Err("fleet-refresh must be at least 1s, e.g. \"30s\"".into());
        }
        if self.max_connections == 0 || self.max_connections_per_address == 0 {
            return Err("max-connections and max-connections-per-address must be at least 1".into());
        }
        if self.trust_proxy_header.is_some() == self.proxy_addresses.is_empty() {
            return Err("trust-proxy-header and proxy-addresses go together: name the header and the proxies it is believed from".into());
        }
        if self.max_connections_per_address > self.max_connections {
            return Err(format!(
                "max-connections-per-address ({}) must not exceed max-connections ({})",
                self.max_connections_per_address, self.max_connections
            ));
        }
        Ok(())
    }

    /// The listener's limits, the global cap bounded by the descriptor limit `nofile`.
    pub fn limits(&self, nofile: u64) -> ConnLimits {
        ConnLimits {
            header_timeout: self.header_timeout.0,
            idle_timeout: self.idle_timeout.0,
            max_connections: serve::descriptor_cap(self.max_connections.into(), nofile),
            max_per_address: self.max_connections_per_address.into(),
        }
    }

    /// The base of every link, without a trailing slash.
    pub fn base_url(&self, bound: SocketAddr) -> String {
        match &self.public_url {
            Some(u) => u.0.clone(),
            None => format!("http://{bound}"),
        }
    }
}

/// An `http://` or `https://` URL without spaces, quotes, angle brackets or control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicUrl(pub String);

impl<'de> Deserialize<'de> for PublicUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let ok = (s.starts_with("https://") || s.starts_with("http://"))
            && s.len() > 8
            && !s.chars().any(|c| c.is_control() || c.is_whitespace() || "<>\"',?#".contains(c));
        if !ok {
            return Err(serde::de::Error::custom(format!(
                "{s:?} is not a URL such as \"https://ampel.example.org\" (no query, no spaces)"
            )));
        }
        Ok(PublicUrl(s.trim_end_matches('/').to_owned()))
    }
}

/// Why the listener could not start.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// Binding failed (address in use, no permission).
    #[error("cannot listen on {addr} (HTTP): {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
}

/// What the handlers share.
#[derive(Clone)]
pub struct HttpState {
    /// Connection counters of the listener (filled by [`HttpServer::start`]).
    pub connections: Arc<ConnStats>,
    /// Recipients, consent log, archive index.
    pub store: DeliveryStore,
    /// Link key.
    pub key: LinkKey,
    /// Archive files.
    pub archive: Archive,
    /// Delivery counters.
    pub delivery: Arc<DeliveryStats>,
    /// Ingest counters, when running inside the server.
    pub ingest: Option<Arc<IngestStats>>,
    /// Whether the live trust could be reloaded, when running inside the server.
    pub trust: Option<Arc<TrustHealth>>,
    /// The web console (`/console`), when running inside the server.
    pub console: Option<Arc<crate::console::Console>>,
}

/// A running listener.
pub struct HttpServer {
    /// The bound address.
    pub local_addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl HttpServer {
    /// Binds `addr` and serves until `shutdown` turns true, within `limits` (see
    /// [`serve`]). Call inside a tokio runtime.
    pub fn start(addr: SocketAddr, limits: ConnLimits, state: HttpState, shutdown: watch::Receiver<bool>) -> Result<HttpServer, HttpError> {
        HttpServer::start_with_tls(addr, limits, state, None, shutdown)
    }

    /// Like [`HttpServer::start`], and with `tls` the port also serves TLS (see [`serve`]).
    pub fn start_with_tls(
        addr: SocketAddr,
        limits: ConnLimits,
        state: HttpState,
        tls: Option<Arc<rustls::ServerConfig>>,
        shutdown: watch::Receiver<bool>,
    ) -> Result<HttpServer, HttpError> {
        let bind = |source| HttpError::Bind { addr, source };
        let std_listener = std::net::TcpListener::bind(addr).map_err(bind)?;
        std_listener.set_nonblocking(true).map_err(bind)?;
        let local_addr = std_listener.local_addr().map_err(bind)?;
        let listener = tokio::net::TcpListener::from_std(std_listener).map_err(bind)?;
        let stats = state.connections.clone();
        let app = router(state);
        let tls = tls.map(tokio_rustls::TlsAcceptor::from);
        let task = tokio::spawn(serve::serve(listener, app, limits, stats, tls, shutdown));
        tracing::info!(
            addr = %local_addr,
            max_connections = limits.max_connections,
            per_address = limits.max_per_address,
            header_timeout_ms = limits.header_timeout.as_millis() as u64,
            idle_timeout_ms = limits.idle_timeout.as_millis() as u64,
            "HTTP listener up (opt-in links, downloads, /healthz, /metrics)"
        );
        Ok(HttpServer { local_addr, task })
    }

    /// Waits for the listener to finish (after the shutdown signal).
    pub async fn stopped(self) {
        let _ = self.task.await;
    }
}

/// The routes.
pub fn router(state: HttpState) -> Router {
    let state = Arc::new(state);
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/confirm", get(confirm_page).post(confirm_post))
        .route("/unsubscribe", get(unsubscribe_page).post(unsubscribe_post))
        .route("/download", get(download))
        .merge(crate::console::routes(&state))
        .route(crate::cluster::fleet::PATH, get(crate::cluster::fleet::answer))
        .with_state(state)
}

type St = State<Arc<HttpState>>;

#[derive(Deserialize)]
struct TokenParam {
    t: Option<String>,
    /// The language the link's mail was in (`en`, `de`).
    l: Option<String>,
}

impl TokenParam {
    /// The language of the page: the one the link carries, else the browser's
    /// `Accept-Language`, else English.
    fn lang(&self, headers: &HeaderMap) -> Lang {
        let accepted = || headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()).map_or(Lang::En, Lang::from_accept_language);
        self.l.as_deref().and_then(Lang::from_code).unwrap_or_else(accepted)
    }
}

fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

fn page(status: StatusCode, lang: Lang, title: &str, body: &str) -> Response {
    let title = attr(title);
    let html = format!(
        "<!DOCTYPE html><html lang=\"{}\"><head><meta charset=\"utf-8\"><title>{title}</title></head><body style=\"font-family:sans-serif\"><h1>{title}</h1>{body}</body></html>",
        lang.code()
    );
    (status, Html(html)).into_response()
}

fn refused(lang: Lang) -> Response {
    let m = MailStrings::get(lang);
    page(StatusCode::FORBIDDEN, lang, m.invalid_title, &format!("<p>{}</p>", attr(m.invalid_text)))
}

fn failed(lang: Lang, e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "HTTP request failed");
    let m = MailStrings::get(lang);
    page(StatusCode::INTERNAL_SERVER_ERROR, lang, m.error_title, &format!("<p>{}</p>", attr(m.error_text)))
}

async fn healthz(State(s): St) -> Response {
    if !s.store.healthy() {
        return (StatusCode::SERVICE_UNAVAILABLE, "store unavailable\n").into_response();
    }
    // A revocation that is not in force is a security problem, not a detail.
    if let Some(error) = s.trust.as_ref().and_then(|t| t.failing()) {
        let body = format!("trust reload failing: {error}; the last good CA and CRL stay in force, retried every 2 s\n");
        return (StatusCode::SERVICE_UNAVAILABLE, body).into_response();
    }
    (StatusCode::OK, "ok\n").into_response()
}

/// One Prometheus counter (or, with `kind` "gauge", gauge) with its samples: `(labels, value)`.
fn metric(out: &mut String, kind: &str, name: &str, help: &str, samples: &[(&str, u64)]) {
    out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
    for (labels, v) in samples {
        out.push_str(&format!("{name}{labels} {v}\n"));
    }
}

fn counter(out: &mut String, name: &str, help: &str, v: u64) {
    metric(out, "counter", name, help, &[("", v)]);
}

async fn metrics(State(s): St) -> Response {
    let mut out = String::new();
    if let Some(i) = &s.ingest {
        ingest_metrics(&mut out, i);
    }
    if let Some(t) = &s.trust {
        let failing = u64::from(t.failing().is_some());
        metric(
            &mut out,
            "gauge",
            "ampel_trust_reload_failing",
            "1 while CA/CRL reloads fail (the last good trust stays in force).",
            &[("", failing)],
        );
        counter(
            &mut out,
            "ampel_trust_reload_failures_total",
            "CA/CRL reloads that failed (each retried until one succeeds).",
            t.failures(),
        );
    }
    delivery_metrics(&mut out, &s.delivery);
    http_metrics(&mut out, &s.connections);
    if let Some(c) = &s.console {
        console_metrics(&mut out, c);
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], out).into_response()
}

fn ingest_metrics(out: &mut String, i: &IngestStats) {
    let n = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    counter(out, "ampel_ingest_batches_committed_total", "Batches committed to the store.", n(&i.batches_committed));
    counter(out, "ampel_ingest_batches_duplicate_total", "Batches that duplicated committed ones.", n(&i.batches_duplicate));
    counter(out, "ampel_ingest_batches_rejected_total", "Batches refused (decode errors, tenant mismatch).", n(&i.batches_rejected));
    counter(out, "ampel_ingest_points_total", "Points written.", n(&i.points));
    counter(out, "ampel_ingest_alerts_total", "Alerts written.", n(&i.alerts));
    counter(out, "ampel_ingest_records_unknown_total", "Records of kinds this build does not know.", n(&i.records_unknown));
    counter(out, "ampel_ingest_records_malformed_total", "Records refused as malformed.", n(&i.records_malformed));
    counter(out, "ampel_ingest_commit_errors_total", "Store commits that failed.", n(&i.commit_errors));
    counter(
        out,
        "ampel_ingest_sender_mismatch_total",
        "Batches whose payload named another sender than the certificate (stored under the certificate's).",
        n(&i.sender_mismatch),
    );
    counter(
        out,
        "ampel_ingest_foreign_tenant_total",
        "QUIC connections and MQTT messages refused because another shard (or none) owns the tenant.",
        n(&i.foreign_tenant),
    );
    counter(out, "ampel_enroll_refused_total", "Enrollment and renewal requests refused.", n(&i.enroll_refused));
    counter(
        out,
        "ampel_quic_connections_superseded_total",
        "Data connections closed because a newer one of the same device came (max-connections-per-device).",
        n(&i.connections_superseded),
    );
    counter(
        out,
        "ampel_quic_frames_over_budget_total",
        "Frames refused without an ack because the partial-frame budget had no room (agents resend them).",
        n(&i.frames_over_budget),
    );
    metric(
        out,
        "gauge",
        "ampel_quic_partial_frame_bytes",
        "Buffer bytes partially received frames hold now.",
        &[("", n(&i.partial_frame_bytes))],
    );
    counter(
        out,
        "ampel_log_lines_suppressed_total",
        "Refusal log lines held back by the per-peer log rate limit (the refusals are counted above).",
        i.log_throttle.suppressed(),
    );
}

fn delivery_metrics(out: &mut String, d: &DeliveryStats) {
    let n = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    counter(out, "ampel_reports_archived_total", "Scheduled reports rendered and archived.", n(&d.reports));
    counter(out, "ampel_report_mails_sent_total", "Report mails accepted, one per recipient.", n(&d.mails_sent));
    counter(out, "ampel_report_mail_failures_total", "Report mail attempts that failed.", n(&d.mail_failures));
    counter(out, "ampel_invitations_sent_total", "Opt-in invitations sent.", n(&d.invitations));
    counter(out, "ampel_invitation_reminders_total", "Reminders sent to invited addresses that had not confirmed.", n(&d.reminders));
    counter(
        out,
        "ampel_reports_unserved_total",
        "Scheduled reports that reached nobody: no recipient of the job had confirmed.",
        n(&d.reports_unserved),
    );
    counter(out, "ampel_runs_late_total", "Scheduled runs sent late.", n(&d.runs_late));
    counter(out, "ampel_runs_skipped_total", "Scheduled runs skipped.", n(&d.runs_skipped));
}

fn console_metrics(out: &mut String, c: &crate::console::Console) {
    let n = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    counter(
        out,
        "ampel_api_token_failures_total",
        "API requests with an unknown, expired or revoked token.",
        n(&c.api_stats.token_failures),
    );
    counter(
        out,
        "ampel_api_token_throttled_total",
        "API requests refused with 429: their address had used up its failed token attempts.",
        n(&c.api_stats.throttled),
    );
    counter(out, "ampel_fleet_assessments_total", "Tenant assessments made for the fleet summary.", c.fleet.assessments());
}

fn http_metrics(out: &mut String, c: &ConnStats) {
    let n = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    metric(out, "gauge", "ampel_http_connections_open", "HTTP connections open now.", &[("", n(&c.open))]);
    counter(out, "ampel_http_connections_accepted_total", "HTTP connections accepted.", n(&c.accepted));
    metric(
        out,
        "counter",
        "ampel_http_connections_refused_total",
        "HTTP connections closed at once: max-connections open in all, or max-connections-per-address from that address.",
        &[("{reason=\"max-connections\"}", n(&c.refused_global)), ("{reason=\"max-connections-per-address\"}", n(&c.refused_per_address))],
    );
    counter(
        out,
        "ampel_http_header_timeouts_total",
        "HTTP connections closed: no complete request headers within header-timeout.",
        n(&c.header_timeouts),
    );
    counter(out, "ampel_http_idle_timeouts_total", "HTTP connections closed: nothing moved for idle-timeout.", n(&c.idle_timeouts));
    counter(
        out,
        "ampel_http_request_timeouts_total",
        "HTTP requests answered 408: longer than the request timeout.",
        n(&c.request_timeouts),
    );
    counter(
        out,
        "ampel_http_accept_errors_total",
        "HTTP accept calls that failed (descriptors exhausted, most likely).",
        n(&c.accept_errors),
    );
}

fn attr(s: &str) -> String {
    s.replace('&', "&amp;").replace('"', "&quot;").replace('<', "&lt;").replace('>', "&gt;")
}

async fn confirm_page(State(s): St, Query(q): Query<TokenParam>, headers: HeaderMap) -> Response {
    let lang = q.lang(&headers);
    let m = MailStrings::get(lang);
    let Some(t) = q.t.filter(|t| s.key.verify(t, TokenKind::Confirm, now_ms()).is_ok()) else { return refused(lang) };
    page(
        StatusCode::OK,
        lang,
        m.confirm_title,
        &format!(
            "<form method=\"post\" action=\"confirm?l={}\"><input type=\"hidden\" name=\"t\" value=\"{}\"><button type=\"submit\">{}</button></form>",
            lang.code(),
            attr(&t),
            attr(m.confirm_button)
        ),
    )
}

async fn confirm_post(
    State(s): St,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Query(q): Query<TokenParam>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let lang = q.lang(&headers);
    let t = form_value(&body, "t").unwrap_or_default();
    match recipients::confirm(&s.store, &s.key, &t, &peer.ip().to_string(), now_ms()) {
        Ok((address, how)) => {
            if how == recipients::Confirmation::Confirmed {
                tracing::info!(from = %peer.ip(), "recipient confirmed");
                tracing::debug!(recipient = %address, "confirmed");
            }
            let m = MailStrings::get(lang);
            page(StatusCode::OK, lang, m.confirmed_title, &format!("<p>{}</p>", attr(&fill(m.confirmed_text, &[("address", &address)]))))
        }
        Err(recipients::OptInError::Token(_)) => refused(lang),
        Err(e @ recipients::OptInError::NotAwaiting(_)) => {
            // A genuine link replayed after an unsubscribe, an expiry or a newer invitation.
            tracing::info!(from = %peer.ip(), reason = %e, "confirm link refused");
            refused(lang)
        }
        Err(e) => failed(lang, e),
    }
}

async fn unsubscribe_page(State(s): St, Query(q): Query<TokenParam>, headers: HeaderMap) -> Response {
    let lang = q.lang(&headers);
    let m = MailStrings::get(lang);
    let Some(t) = q.t.filter(|t| s.key.verify(t, TokenKind::Unsubscribe, now_ms()).is_ok()) else { return refused(lang) };
    page(
        StatusCode::OK,
        lang,
        m.unsubscribe_title,
        &format!(
            "<form method=\"post\" action=\"unsubscribe?t={}&amp;l={}\"><button type=\"submit\">{}</button></form>",
            attr(&t),
            lang.code(),
            attr(m.unsubscribe_button)
        ),
    )
}

async fn unsubscribe_post(
    State(s): St,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Query(q): Query<TokenParam>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let lang = q.lang(&headers);
    let one_click = form_value(&body, "List-Unsubscribe").as_deref() == Some("One-Click");
    let Some(t) = q.t.or_else(|| form_value(&body, "t")) else { return refused(lang) };
    let how = if one_click { "one-click" } else { "link" };
    match recipients::unsubscribe(&s.store, &s.key, &t, &peer.ip().to_string(), how, now_ms()) {
        Ok(address) => {
            tracing::info!(from = %peer.ip(), how, "recipient unsubscribed");
            tracing::debug!(recipient = %address, "unsubscribed");
            let m = MailStrings::get(lang);
            page(
                StatusCode::OK,
                lang,
                m.unsubscribed_title,
                &format!("<p>{}</p>", attr(&fill(m.unsubscribed_text, &[("address", &address)]))),
            )
        }
        Err(recipients::OptInError::Token(_)) => refused(lang),
        Err(e) => failed(lang, e),
    }
}

async fn download(State(s): St, Query(q): Query<TokenParam>, headers: HeaderMap) -> Response {
    let lang = q.lang(&headers);
    // The token names the report, and the rendering unless it is the job's own: `7` or `7/1`.
    let Some((id, edition)) = q.t.and_then(|t| s.key.verify(&t, TokenKind::Download, now_ms()).ok()).and_then(|subject| {
        let (id, edition) = subject.split_once('/').unwrap_or((&subject, "0"));
        Some((id.parse::<u64>().ok()?, edition.parse::<usize>().ok()?))
    }) else {
        return refused(lang);
    };
    let rec = match s.store.report(id) {
        Ok(Some(r)) => r,
        Ok(None) => return not_archived(&s.store, id, lang),
        Err(e) => return failed(lang, e),
    };
    // Records of releases that rendered one edition list none: `file` is it.
    let file = if edition == 0 { Some(&rec.file) } else { rec.editions.get(edition).map(|e| &e.file) };
    let Some(file) = file else {
        let m = MailStrings::get(lang);
        return page(StatusCode::NOT_FOUND, lang, m.gone_title, &format!("<p>{}</p>", attr(m.gone_text)));
    };
    let pdf = match s.archive.read(file) {
        Ok(b) => b,
        Err(e) => return failed(lang, e),
    };
    // The archive label is the period's stable ASCII name (see `Period::label`).
    let name = format!("ampel-{}-{}.pdf", rec.tenant, rec.period_label);
    let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")).unwrap_or(HeaderValue::from_static("attachment"));
    ([(header::CONTENT_TYPE, HeaderValue::from_static("application/pdf")), (header::CONTENT_DISPOSITION, disposition)], pdf).into_response()
}

/// The page of a download link whose report is not in the archive: moved away with its
/// tenant to the shard the map named then, or gone (deleted without a shard to go to).
fn not_archived(store: &DeliveryStore, id: u64, lang: Lang) -> Response {
    let m = MailStrings::get(lang);
    match store.moved_report(id) {
        Ok(Some(MovedReport { tenant, to: Some(to), .. })) => {
            let text = fill(m.moved_text, &[("tenant", &tenant), ("shard", &to)]);
            page(StatusCode::GONE, lang, m.moved_title, &format!("<p>{}</p>", attr(&text)))
        }
        Ok(_) => page(StatusCode::NOT_FOUND, lang, m.gone_title, &format!("<p>{}</p>", attr(m.gone_text))),
        Err(e) => failed(lang, e),
    }
}

/// One value of an `application/x-www-form-urlencoded` body.
fn form_value(body: &str, key: &str) -> Option<String> {
    body.split('&').filter_map(|pair| pair.split_once('=')).find(|(k, _)| decode(k) == key).map(|(_, v)| decode(v))
}

/// Percent-decoding with `+` as space; invalid escapes are kept as they are.
fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
