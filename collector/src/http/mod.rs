//! The collector's HTTP listener (`[http]`): opt-in links, report downloads, `/healthz` and
//! `/metrics`.
//!
//! | route | what |
//! | --- | --- |
//! | `GET /confirm?t=` | a page with a button; `POST /confirm` (form `t`) confirms |
//! | `GET /unsubscribe?t=` | a page with a button; `POST /unsubscribe?t=` unsubscribes (RFC 8058 one-click: body `List-Unsubscribe=One-Click`) |
//! | `GET /download?t=` | the archived PDF, while the signed link has not expired |
//! | `GET /healthz` | 200 when the delivery store is open |
//! | `GET /metrics` | Prometheus text: ingest and delivery counters |
//!
//! A GET never changes state: mail scanners fetch links. Every refused link gets the same
//! 403 page, whatever was wrong with it; tokens are never logged. The consent log records the
//! client's address as seen by the listener (put a reverse proxy's address in mind).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use serde::{Deserialize, Deserializer};
use tokio::sync::watch;

use crate::archive::Archive;
use crate::ingest::IngestStats;
use crate::recipients::{self, LinkKey, TokenKind};
use crate::schedule::DeliveryStore;
use crate::schedule::runner::DeliveryStats;

/// `[http]`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct HttpConfig {
    /// Address and TCP port to listen on; no listener when unset. Needed by `[[jobs]]`.
    pub listen: Option<SocketAddr>,
    /// The URL recipients reach the listener under (e.g. behind a reverse proxy); default
    /// `http://<listen>`.
    pub public_url: Option<PublicUrl>,
}

impl HttpConfig {
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
}

/// A running listener.
pub struct HttpServer {
    /// The bound address.
    pub local_addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl HttpServer {
    /// Binds `addr` and serves until `shutdown` turns true. Call inside a tokio runtime.
    pub fn start(addr: SocketAddr, state: HttpState, mut shutdown: watch::Receiver<bool>) -> Result<HttpServer, HttpError> {
        let bind = |source| HttpError::Bind { addr, source };
        let std_listener = std::net::TcpListener::bind(addr).map_err(bind)?;
        std_listener.set_nonblocking(true).map_err(bind)?;
        let local_addr = std_listener.local_addr().map_err(bind)?;
        let listener = tokio::net::TcpListener::from_std(std_listener).map_err(bind)?;
        let app = router(state);
        let task = tokio::spawn(async move {
            let serve = axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).with_graceful_shutdown(async move {
                let _ = shutdown.wait_for(|s| *s).await;
            });
            if let Err(e) = serve.await {
                tracing::error!(error = %e, "HTTP listener failed");
            }
        });
        tracing::info!(addr = %local_addr, "HTTP listener up (opt-in links, downloads, /healthz, /metrics)");
        Ok(HttpServer { local_addr, task })
    }

    /// Waits for the listener to finish (after the shutdown signal).
    pub async fn stopped(self) {
        let _ = self.task.await;
    }
}

/// The routes.
pub fn router(state: HttpState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/confirm", get(confirm_page).post(confirm_post))
        .route("/unsubscribe", get(unsubscribe_page).post(unsubscribe_post))
        .route("/download", get(download))
        .with_state(Arc::new(state))
}

type St = State<Arc<HttpState>>;

#[derive(Deserialize)]
struct TokenParam {
    t: Option<String>,
}

fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{title}</title></head><body style=\"font-family:sans-serif\"><h1>{title}</h1>{body}</body></html>"
    );
    (status, Html(html)).into_response()
}

fn refused() -> Response {
    page(
        StatusCode::FORBIDDEN,
        "Link not valid",
        "<p>This link is not valid or has expired. Ask your administrator for a new invitation.</p>",
    )
}

fn failed(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "HTTP request failed");
    page(StatusCode::INTERNAL_SERVER_ERROR, "Error", "<p>Something went wrong; please try again later.</p>")
}

async fn healthz(State(s): St) -> Response {
    if s.store.healthy() {
        (StatusCode::OK, "ok\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "store unavailable\n").into_response()
    }
}

async fn metrics(State(s): St) -> Response {
    let mut out = String::new();
    let mut put = |name: &str, help: &str, v: u64| {
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}\n"));
    };
    if let Some(i) = &s.ingest {
        put("ampel_ingest_batches_committed_total", "Batches committed to the store.", i.batches_committed.load(Ordering::Relaxed));
        put("ampel_ingest_batches_duplicate_total", "Batches that duplicated committed ones.", i.batches_duplicate.load(Ordering::Relaxed));
        put(
            "ampel_ingest_batches_rejected_total",
            "Batches refused (decode errors, tenant mismatch).",
            i.batches_rejected.load(Ordering::Relaxed),
        );
        put("ampel_ingest_points_total", "Points written.", i.points.load(Ordering::Relaxed));
        put("ampel_ingest_alerts_total", "Alerts written.", i.alerts.load(Ordering::Relaxed));
        put("ampel_ingest_records_unknown_total", "Records of kinds this build does not know.", i.records_unknown.load(Ordering::Relaxed));
        put("ampel_ingest_records_malformed_total", "Records refused as malformed.", i.records_malformed.load(Ordering::Relaxed));
        put("ampel_ingest_commit_errors_total", "Store commits that failed.", i.commit_errors.load(Ordering::Relaxed));
        put(
            "ampel_ingest_sender_mismatch_total",
            "Batches whose payload named another sender than the certificate (stored under the certificate's).",
            i.sender_mismatch.load(Ordering::Relaxed),
        );
        put("ampel_enroll_refused_total", "Enrollment and renewal requests refused.", i.enroll_refused.load(Ordering::Relaxed));
        put(
            "ampel_log_lines_suppressed_total",
            "Refusal log lines held back by the per-peer log rate limit (the refusals are counted above).",
            i.log_throttle.suppressed(),
        );
    }
    let d = &s.delivery;
    put("ampel_reports_archived_total", "Scheduled reports rendered and archived.", d.reports.load(Ordering::Relaxed));
    put("ampel_report_mails_sent_total", "Report mails accepted, one per recipient.", d.mails_sent.load(Ordering::Relaxed));
    put("ampel_report_mail_failures_total", "Report mail attempts that failed.", d.mail_failures.load(Ordering::Relaxed));
    put("ampel_invitations_sent_total", "Opt-in invitations sent.", d.invitations.load(Ordering::Relaxed));
    put(
        "ampel_invitation_reminders_total",
        "Reminders sent to invited addresses that had not confirmed.",
        d.reminders.load(Ordering::Relaxed),
    );
    put(
        "ampel_reports_unserved_total",
        "Scheduled reports that reached nobody: no recipient of the job had confirmed.",
        d.reports_unserved.load(Ordering::Relaxed),
    );
    put("ampel_runs_late_total", "Scheduled runs sent late.", d.runs_late.load(Ordering::Relaxed));
    put("ampel_runs_skipped_total", "Scheduled runs skipped.", d.runs_skipped.load(Ordering::Relaxed));
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], out).into_response()
}

fn attr(s: &str) -> String {
    s.replace('&', "&amp;").replace('"', "&quot;").replace('<', "&lt;").replace('>', "&gt;")
}

async fn confirm_page(State(s): St, Query(q): Query<TokenParam>) -> Response {
    let Some(t) = q.t.filter(|t| s.key.verify(t, TokenKind::Confirm, now_ms()).is_ok()) else { return refused() };
    page(
        StatusCode::OK,
        "Confirm security reports",
        &format!(
            "<form method=\"post\" action=\"confirm\"><input type=\"hidden\" name=\"t\" value=\"{}\"><button type=\"submit\">Yes, send me the reports</button></form>",
            attr(&t)
        ),
    )
}

async fn confirm_post(State(s): St, ConnectInfo(peer): ConnectInfo<SocketAddr>, body: String) -> Response {
    let t = form_value(&body, "t").unwrap_or_default();
    match recipients::confirm(&s.store, &s.key, &t, &peer.ip().to_string(), now_ms()) {
        Ok((address, how)) => {
            if how == recipients::Confirmation::Confirmed {
                tracing::info!(from = %peer.ip(), "recipient confirmed");
                tracing::debug!(recipient = %address, "confirmed");
            }
            page(
                StatusCode::OK,
                "Confirmed",
                &format!("<p>{} will receive the reports. Every report mail has an unsubscribe link.</p>", attr(&address)),
            )
        }
        Err(recipients::OptInError::Token(_)) => refused(),
        Err(e @ recipients::OptInError::NotAwaiting(_)) => {
            // A genuine link replayed after an unsubscribe, an expiry or a newer invitation.
            tracing::info!(from = %peer.ip(), reason = %e, "confirm link refused");
            refused()
        }
        Err(e) => failed(e),
    }
}

async fn unsubscribe_page(State(s): St, Query(q): Query<TokenParam>) -> Response {
    let Some(t) = q.t.filter(|t| s.key.verify(t, TokenKind::Unsubscribe, now_ms()).is_ok()) else { return refused() };
    page(
        StatusCode::OK,
        "Unsubscribe",
        &format!(
            "<form method=\"post\" action=\"unsubscribe?t={}\"><button type=\"submit\">Unsubscribe from security reports</button></form>",
            attr(&t)
        ),
    )
}

async fn unsubscribe_post(State(s): St, ConnectInfo(peer): ConnectInfo<SocketAddr>, Query(q): Query<TokenParam>, body: String) -> Response {
    let one_click = form_value(&body, "List-Unsubscribe").as_deref() == Some("One-Click");
    let Some(t) = q.t.or_else(|| form_value(&body, "t")) else { return refused() };
    let how = if one_click { "one-click" } else { "link" };
    match recipients::unsubscribe(&s.store, &s.key, &t, &peer.ip().to_string(), how, now_ms()) {
        Ok(address) => {
            tracing::info!(from = %peer.ip(), how, "recipient unsubscribed");
            tracing::debug!(recipient = %address, "unsubscribed");
            page(StatusCode::OK, "Unsubscribed", &format!("<p>{} will receive no more reports.</p>", attr(&address)))
        }
        Err(recipients::OptInError::Token(_)) => refused(),
        Err(e) => failed(e),
    }
}

async fn download(State(s): St, Query(q): Query<TokenParam>) -> Response {
    let Some(id) = q.t.and_then(|t| s.key.verify(&t, TokenKind::Download, now_ms()).ok()).and_then(|id| id.parse::<u64>().ok()) else {
        return refused();
    };
    let rec = match s.store.report(id) {
        Ok(Some(r)) => r,
        Ok(None) => return page(StatusCode::NOT_FOUND, "Not found", "<p>This report is no longer in the archive.</p>"),
        Err(e) => return failed(e),
    };
    let pdf = match s.archive.read(&rec.file) {
        Ok(b) => b,
        Err(e) => return failed(e),
    };
    let name = format!("ampel-{}-{}.pdf", rec.tenant, rec.period_label);
    let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")).unwrap_or(HeaderValue::from_static("attachment"));
    ([(header::CONTENT_TYPE, HeaderValue::from_static("application/pdf")), (header::CONTENT_DISPOSITION, disposition)], pdf).into_response()
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
