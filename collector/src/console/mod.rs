//! The web console: server-rendered pages for the users of `[[users]]`, served by the `[http]`
//! listener under `/console`.
//!
//! Every page handler takes a [`Viewer`]: the extractor that finds the session, looks its user
//! up in the *current* `[[users]]` (so a user removed by SIGHUP is out at the next request)
//! and answers a request without a valid session with a redirect to the login page. Behind an
//! authenticating reverse proxy (`[http] trust-proxy-header`, `proxy-addresses`) the user named
//! in that header is taken instead, on requests from those addresses only; such users have no
//! session and their CSRF token is an HMAC of their name under a per-process key. What a
//! viewer may see is decided by [`Viewer::sees`] and [`Viewer::reporting`] only; a tenant,
//! device or report the viewer may not see gets the very same 404 as one that does not exist.
//!
//! # Layout
//! - [`users`]: `[[users]]`: roles, tenants, argon2id hashes.
//! - [`session`]: sessions in memory with idle and absolute expiry; the login rate limit.
//! - [`audit`]: the append-only audit log of state changes.
//! - [`login`]: login and logout, cookies, CSRF.
//! - [`fleet`]: the fleet summary a background task keeps, and the fleet page that reads it.
//! - [`pages`]: tenant, device, reports and audit pages (maud templates); the period a tenant
//!   or device page shows (the links and the custom-period form).
//! - `chart`: line charts as inline SVG with a text alternative and a min / avg / max table.
//! - `history`: the device's licence and inventory reports reduced to what changed when.
//! - [`jobs`]: the `[[jobs]]` read-only with their next run, "send now" and the preview.
//! - [`recipients`]: recipients of the jobs with opt-in state and consent log; invite, remove.
//! - [`enrollment`]: one-time enrollment tokens and revocation (administrators).
//! - [`passwd`]: `ampel-collector user passwd NAME`.
//! - [`words`]: every word of the pages, in English and German; the page's language.
//! - [`tokens`]: per-user API tokens (`user token`, `user tokens`, `user revoke-token`).
//! - [`api`]: the JSON API under `/api/v1`, authenticated by those tokens, and its OpenAPI
//!   description; it answers from the same functions as the pages, through the same
//!   [`Viewer`] checks.

pub mod api;
pub mod audit;
mod chart;
pub mod enrollment;
pub mod fleet;
mod history;
pub mod jobs;
pub mod login;
pub mod pages;
pub mod passwd;
pub mod recipients;
pub mod session;
pub mod tokens;
pub mod users;
pub mod words;

#[cfg(test)]
mod tests;

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, RwLock};

use axum::Router;
use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};

use crate::config::Config;
use crate::http::HttpState;
use crate::report::Lang;
use crate::store::Store;
use audit::{AuditEvent, AuditLog};
use session::{LoginLimiter, Sessions};
use users::{Role, UserConfig};
use words::Words;

/// The session cookie.
pub const SESSION_COOKIE: &str = "ampel_session";
/// Where the console lives.
pub const BASE: &str = "/console";

/// The console's state: users, sessions, the limiter, the audit log and what pages read.
pub struct Console {
    users: RwLock<Arc<Vec<UserConfig>>>,
    /// Logged-in sessions.
    pub sessions: Sessions,
    /// Failed logins per address and user name.
    pub limiter: LoginLimiter,
    /// State changes.
    pub audit: AuditLog,
    /// API tokens, read again whenever the file changed (the CLI changes it while the server runs).
    pub tokens: tokens::Tokens,
    /// Failed API token attempts per client address (the login limiter's type).
    pub api_limiter: LoginLimiter,
    /// Refused API token requests, for `/metrics`.
    pub api_stats: api::ApiStats,
    /// The time series store pages read.
    pub store: Store,
    /// The fleet summary, kept by [`fleet::run`]; the fleet page and `GET /api/v1/tenants` read it.
    pub fleet: fleet::FleetCache,
    /// The other shards the summary asks for their rows, with `[cluster]`.
    pub peers: Option<crate::cluster::fleet::Peers>,
    /// The configuration at start (rules, jobs, time zone); `[[users]]` is [`Console::users`].
    pub cfg: Arc<Config>,
    /// Whether cookies get `Secure` (`public-url` is https).
    pub secure: bool,
    /// The zone pages show times in (`[report] time-zone`).
    pub zone: jiff::tz::TimeZone,
    /// `[http] trust-proxy-header` and the addresses it is believed from.
    proxy: Option<(axum::http::HeaderName, Vec<IpAddr>)>,
    /// Key of the CSRF tokens of proxy-authenticated users (who have no session): random per
    /// process, so a restart invalidates open forms, as it ends sessions.
    proxy_csrf_key: ring::hmac::Key,
    /// The console's scheduler, when `[[jobs]]` exist: resend, send now and invite go through
    /// it (set once the listener is bound, since links in the mails need its address).
    resender: std::sync::OnceLock<crate::schedule::runner::Scheduler>,
    /// A hash verified when the user name is unknown, so that a wrong name takes as long as a
    /// wrong password and does not tell which names exist.
    dummy: users::PasswordHashString,
}

/// Why a console request failed on the server's side.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// The time series store.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// The delivery store (archive index).
    #[error(transparent)]
    Delivery(#[from] crate::schedule::DeliveryStoreError),
    /// An archived PDF.
    #[error(transparent)]
    Archive(#[from] crate::archive::ArchiveError),
    /// The audit log.
    #[error(transparent)]
    Audit(#[from] audit::AuditError),
    /// The API token file.
    #[error(transparent)]
    Tokens(#[from] tokens::TokenError),
    /// Hashing at start.
    #[error(transparent)]
    Hash(#[from] users::HashError),
    /// A scheduler step (send now, invite) failed on the server's side.
    #[error(transparent)]
    Schedule(#[from] crate::schedule::runner::ScheduleError),
    /// A report preview could not be made.
    #[error(transparent)]
    Report(#[from] crate::reporting::ReportingError),
    /// The certificate authority failed while issuing a token or revoking.
    #[error(transparent)]
    Pki(#[from] crate::pki::PkiError),
    /// Looking up a device for an enrollment token failed.
    #[error(transparent)]
    Issue(#[from] crate::enroll::tokens::IssueError),
    /// A calendar period could not be computed in the configured time zone.
    #[error(transparent)]
    Period(#[from] crate::assess::PeriodError),
    /// `[report] time-zone` is no longer in the tz database (it was when the config was read).
    #[error("time zone {0:?} is not in the tz database")]
    UnknownZone(String),
    /// A blocking task panicked or was cancelled.
    #[error("console task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// The request reached the console without the client's address (a listener that does
    /// not set `ConnectInfo`).
    #[error("no client address on the request")]
    NoClientAddress,
}

/// Why a console request is answered without the page it asked for.
#[derive(Debug)]
pub enum Refusal {
    /// It does not exist, or it is not for this viewer: the same 404 either way.
    NotFound,
    /// A state-changing form without the session's CSRF token (403).
    StaleForm,
    /// A period the pages do not show: unknown, reversed, too long (400, saying which).
    BadPeriod(pages::BadPeriod),
    /// Resending needs `[[jobs]]` (and so a scheduler); there are none (409).
    NoResender,
    /// The reverse proxy vouched for a user who is not in `[[users]]` (403).
    UnknownProxyUser,
    /// The request cannot be done as asked, for a reason the user can act on (an address not
    /// in the job, a device id taken, no CA, the mail server unreachable): `status`, with the
    /// reason's text.
    Declined {
        /// 400, 409 or 502.
        status: StatusCode,
        /// Why, with its causes.
        reason: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The server failed (500); logged with its cause.
    Failed(Box<ConsoleError>),
}

impl From<ConsoleError> for Refusal {
    fn from(e: ConsoleError) -> Refusal {
        Refusal::Failed(Box::new(e))
    }
}

/// A scheduler error is the user's to act on (409; 502 for the mail server) unless it is the
/// server's own failure (store, archive, renderer: 500).
impl From<crate::schedule::runner::ScheduleError> for Refusal {
    fn from(e: crate::schedule::runner::ScheduleError) -> Refusal {
        use crate::schedule::runner::ScheduleError as E;
        let status = match &e {
            E::NotInJob { .. } | E::NobodyToSend { .. } | E::NoSuchReport(_) | E::NoSuchJob { .. } | E::UnknownJob(_) => {
                StatusCode::CONFLICT
            }
            E::Mail(_) => StatusCode::BAD_GATEWAY,
            E::Store(_) | E::Archive(_) | E::Render { .. } | E::Period { .. } => return ConsoleError::Schedule(e).into(),
        };
        Refusal::Declined { status, reason: Box::new(e) }
    }
}

impl Refusal {
    /// The status the refusal is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            Refusal::NotFound => StatusCode::NOT_FOUND,
            Refusal::StaleForm | Refusal::UnknownProxyUser => StatusCode::FORBIDDEN,
            Refusal::BadPeriod(_) => StatusCode::BAD_REQUEST,
            Refusal::NoResender => StatusCode::CONFLICT,
            Refusal::Declined { status, .. } => *status,
            Refusal::Failed(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Why, in words of the page's language. A declined request's cause is said as its
    /// error says it (in English), after the page's lead-in.
    pub fn reason(&self, w: &Words) -> String {
        match self {
            Refusal::NotFound => w.not_found.into(),
            Refusal::StaleForm => w.stale_form.into(),
            Refusal::BadPeriod(why) => why.say(w),
            Refusal::UnknownProxyUser => w.unknown_proxy_user.into(),
            Refusal::NoResender => w.no_resender.into(),
            Refusal::Declined { reason, .. } => format!("{} {}", w.declined, crate::schedule::runner::error_chain(reason.as_ref())),
            Refusal::Failed(_) => w.server_failed.into(),
        }
    }
}

/// A refusal on its way to the page that says it: the response of a handler carries it as an
/// extension, and [`error_pages`] renders it in the page's language, with the navigation when
/// the request has a user.
#[derive(Clone)]
pub(crate) struct Refused(Arc<Refusal>);

/// The status of the refusal and the refusal, for [`error_pages`]; a server failure is logged
/// with its cause here.
impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        if let Refusal::Failed(e) = &self {
            tracing::error!(error = %e, "console request failed");
        }
        let mut resp = self.status().into_response();
        resp.extensions_mut().insert(Refused(Arc::new(self)));
        resp
    }
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        Refusal::from(self).into_response()
    }
}

/// Renders every refusal of a console page as a full page with the refusal's status: in the
/// page's language, with the navigation and a link to the fleet for a request with a user,
/// else a link to the login, and the reason. Other responses pass as they are.
async fn error_pages(State(state): State<Arc<HttpState>>, req: Request, next: Next) -> Response {
    let headers = req.headers().clone();
    let client = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    let mut resp = next.run(req).await;
    let Some(Refused(refusal)) = resp.extensions_mut().remove::<Refused>() else { return resp };
    let viewer = match (&state.console, client, refusal.as_ref()) {
        // The proxy's unknown user was looked up (and logged) already.
        (_, _, Refusal::UnknownProxyUser) => None,
        (Some(console), Some(client), _) => console.viewer(&headers, client).ok(),
        _ => None,
    };
    let lang = viewer.as_ref().map_or_else(|| words::page_lang(None, &headers), |v| v.lang);
    pages::error_page(viewer.as_ref(), Words::get(lang), refusal.status(), &refusal.reason(Words::get(lang)))
}

impl Console {
    /// The console of `cfg`, reading `store`; audit log under `<data-dir>/console/`.
    pub fn new(cfg: Arc<Config>, store: Store) -> Result<Console, ConsoleError> {
        let secure = cfg.http.public_url.as_ref().is_some_and(|u| u.0.starts_with("https://"));
        // The name was checked against the tz database when the config was read.
        let zone =
            jiff::tz::TimeZone::get(&cfg.report.time_zone.0).map_err(|_| ConsoleError::UnknownZone(cfg.report.time_zone.0.clone()))?;
        Ok(Console {
            users: RwLock::new(Arc::new(cfg.users.clone())),
            sessions: Sessions::default(),
            limiter: LoginLimiter::default(),
            audit: AuditLog::new(&cfg.data_dir.join("console")),
            tokens: tokens::Tokens::new(&cfg.data_dir.join("console")),
            api_limiter: LoginLimiter::default(),
            api_stats: api::ApiStats::default(),
            store,
            fleet: fleet::FleetCache::default(),
            peers: crate::cluster::fleet::Peers::new(&cfg, crate::cluster::live::LiveMap::new(cfg.cluster.clone())),
            secure,
            zone,
            proxy: cfg.http.trust_proxy_header.as_ref().map(|h| (h.0.clone(), cfg.http.proxy_addresses.clone())),
            proxy_csrf_key: ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &rand::random::<[u8; 32]>()),
            resender: std::sync::OnceLock::new(),
            dummy: users::hash_password("not a password of anyone")?,
            cfg,
        })
    }

    /// Makes the console follow `map`, the shard map the server reloads on SIGHUP, rather than
    /// the `[cluster]` of the configuration it was made with.
    pub fn with_shard_map(mut self, map: crate::cluster::live::LiveMap) -> Console {
        self.peers = crate::cluster::fleet::Peers::new(&self.cfg, map);
        self
    }

    /// The shard map in force (`None` without `[cluster]`): which tenants this shard shows as
    /// its own, and which shards it asks for the rest.
    pub fn shard_map(&self) -> Option<Arc<crate::cluster::ShardMap>> {
        self.peers.as_ref().and_then(crate::cluster::fleet::Peers::map)
    }

    /// Gives the console a scheduler to resend archived reports with (the same
    /// [`Scheduler::resend`](crate::schedule::runner::Scheduler::resend) `report resend` uses),
    /// to send a job's report now and to invite recipients. Only the first call counts.
    pub fn set_resender(&self, scheduler: crate::schedule::runner::Scheduler) {
        if self.resender.set(scheduler).is_err() {
            tracing::warn!("console resender set twice; the first stays");
        }
    }

    /// The scheduler resends, sends now and invitations go through, when there are jobs.
    pub fn resender(&self) -> Option<&crate::schedule::runner::Scheduler> {
        self.resender.get()
    }

    /// The users now in force.
    pub fn users(&self) -> Arc<Vec<UserConfig>> {
        self.users.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Applies a reloaded `[[users]]`: removed users and changed passwords end their sessions
    /// at once; changed roles and tenants apply from the next request.
    pub fn set_users(&self, users: Vec<UserConfig>) {
        let users = Arc::new(users);
        *self.users.write().unwrap_or_else(std::sync::PoisonError::into_inner) = users.clone();
        self.sessions.retain(|s| users.iter().any(|u| u.name.as_str() == s.user && credential(u) == s.credential));
        tracing::info!(users = users.len(), "console users applied");
    }

    /// The user name a trusted reverse proxy vouches for: the `trust-proxy-header` of a request
    /// from one of `proxy-addresses`. The header from anywhere else is ignored.
    fn proxy_user<'a>(&self, headers: &'a HeaderMap, client: IpAddr) -> Option<&'a str> {
        let (header, proxies) = self.proxy.as_ref()?;
        let value = headers.get(header)?;
        if !proxies.contains(&client) {
            tracing::debug!(client = %client, "proxy user header ignored: not from a proxy address");
            return None;
        }
        value.to_str().ok()
    }

    /// The CSRF token of a proxy-authenticated user: HMAC of the name under the process key.
    fn proxy_csrf(&self, user: &str) -> String {
        session::hex(ring::hmac::sign(&self.proxy_csrf_key, user.as_bytes()).as_ref())
    }

    /// Records a state change in the audit log.
    pub fn record(&self, user: &str, action: &str, target: &str, client: IpAddr) -> Result<(), ConsoleError> {
        let event = AuditEvent {
            at_ms: now_ms(),
            user: user.to_owned(),
            action: action.to_owned(),
            target: target.to_owned(),
            client: client.to_string(),
        };
        self.audit.append(&event)?;
        Ok(())
    }
}

/// Runs a state change to its end in a task of its own: a client that goes away (a closed tab,
/// the connection's idle timeout while the mail server is retried) must not cut a delivery
/// half-way — leaving a report pending that no scheduled run resumes — or send an invitation
/// whose confirm link is never recorded.
pub(crate) async fn to_completion<T: Send + 'static>(f: impl Future<Output = T> + Send + 'static) -> Result<T, ConsoleError> {
    Ok(tokio::spawn(f).await?)
}

/// A fingerprint of the user's password hash: a session remembers it, so a changed password
/// ends the sessions made with the old one.
pub fn credential(u: &UserConfig) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, u.password_hash.as_str().as_bytes());
    session::hex(&digest.as_ref()[..16])
}

/// Now, Unix ms.
pub fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// The logged-in user of a request, as the current `[[users]]` has them.
pub struct Viewer {
    /// The user (role, tenants).
    pub user: UserConfig,
    /// The session's CSRF token, for forms.
    pub csrf: String,
    /// The session cookie, for logout.
    pub token: String,
    /// The client's address.
    pub client: IpAddr,
    /// The console.
    pub console: Arc<Console>,
    /// The language of the viewer's pages ([`words::page_lang`]).
    pub lang: Lang,
}

impl Viewer {
    /// The words of the viewer's pages.
    pub fn words(&self) -> &'static Words {
        Words::get(self.lang)
    }

    /// Whether the viewer may see `tenant`.
    pub fn sees(&self, tenant: &str) -> bool {
        self.user.sees(tenant)
    }

    /// The viewer's role.
    pub fn role(&self) -> Role {
        self.user.role
    }

    /// Reporting (archive, downloads, resends) is not for analysts: for them it does not exist.
    pub fn reporting(&self) -> Result<(), Refusal> {
        if self.role().sees_reports() { Ok(()) } else { Err(Refusal::NotFound) }
    }

    /// The audit log is for administrators only.
    pub fn administrator(&self) -> Result<(), Refusal> {
        if self.role() == Role::Administrator { Ok(()) } else { Err(Refusal::NotFound) }
    }

    /// A state-changing request must carry the session's CSRF token.
    pub fn check_csrf(&self, token: &str) -> Result<(), Refusal> {
        if session::same(token, &self.csrf) {
            return Ok(());
        }
        tracing::warn!(user = %self.user.name, client = %self.client, "console request refused: CSRF token missing or wrong");
        Err(Refusal::StaleForm)
    }
}

/// The client's address, as the listener saw it.
pub fn client_of(parts: &Parts) -> Result<IpAddr, ConsoleError> {
    parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip()).ok_or(ConsoleError::NoClientAddress)
}

/// The value of cookie `name`, if the request has it.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Why a request has no [`Viewer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoViewer {
    /// No session, or one that ended: to the login page.
    Login,
    /// The reverse proxy vouched for a user who is not in `[[users]]`.
    UnknownProxyUser,
}

impl Console {
    /// The user of a request from `client` with `headers`: the trusted proxy's user, else the
    /// session's (which this touches), as the current `[[users]]` has them.
    pub fn viewer(self: &Arc<Self>, headers: &HeaderMap, client: IpAddr) -> Result<Viewer, NoViewer> {
        let viewer = |user: UserConfig, csrf: String, token: String| {
            let lang = words::page_lang(Some(&user), headers);
            Viewer { user, csrf, token, client, console: self.clone(), lang }
        };
        if let Some(name) = self.proxy_user(headers, client) {
            let Some(user) = self.users().iter().find(|u| u.name.as_str() == name).cloned() else {
                tracing::warn!(client = %client, user = %ampel_protocol::logsafe::esc(name), "console request refused: the proxy's user is not in [[users]]");
                return Err(NoViewer::UnknownProxyUser);
            };
            let csrf = self.proxy_csrf(name);
            return Ok(viewer(user, csrf, String::new()));
        }
        let Some(token) = cookie(headers, SESSION_COOKIE).map(str::to_owned) else { return Err(NoViewer::Login) };
        let Some(session) = self.sessions.touch(&token, now_ms()) else { return Err(NoViewer::Login) };
        let users = self.users();
        let Some(user) = users.iter().find(|u| u.name.as_str() == session.user && credential(u) == session.credential) else {
            self.sessions.remove(&token);
            return Err(NoViewer::Login);
        };
        Ok(viewer(user.clone(), session.csrf, token))
    }
}

impl FromRequestParts<Arc<HttpState>> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<HttpState>) -> Result<Self, Response> {
        let Some(console) = state.console.clone() else { return Err(Refusal::NotFound.into_response()) };
        let client = client_of(parts).map_err(IntoResponse::into_response)?;
        match console.viewer(&parts.headers, client) {
            Ok(viewer) => Ok(viewer),
            Err(NoViewer::Login) => Err(Redirect::to(&format!("{BASE}/login")).into_response()),
            Err(NoViewer::UnknownProxyUser) => Err(Refusal::UnknownProxyUser.into_response()),
        }
    }
}

/// The Content-Security-Policy of every console response: nothing from elsewhere, no script,
/// styles only from the embedded stylesheet, forms only to the console, never framed.
pub const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Adds the security headers to every console response.
async fn security_headers(req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
    resp
}

/// The console's routes, to be merged into the listener's router of `state`.
pub fn routes(state: &Arc<HttpState>) -> Router<Arc<HttpState>> {
    use axum::routing::{get, post};
    Router::new()
        .route("/console", get(fleet::fleet))
        .route("/console/", get(fleet::fleet))
        .route("/console/style.css", get(pages::stylesheet))
        .route("/console/login", get(login::form).post(login::submit))
        .route("/console/logout", post(login::logout))
        .route("/console/tenants/{tenant}", get(pages::tenant))
        .route("/console/devices/{device}", get(pages::device))
        .route("/console/reports", get(pages::reports))
        .route("/console/reports/{id}/pdf", get(pages::download))
        .route("/console/reports/{id}/resend", post(pages::resend))
        .route("/console/audit", get(pages::audit))
        .route("/console/jobs", get(jobs::page))
        .route("/console/jobs/{job}/preview", get(jobs::preview))
        .route("/console/jobs/{job}/send", post(jobs::send))
        .route("/console/recipients", get(recipients::page))
        .route("/console/recipients/invite", post(recipients::invite))
        .route("/console/recipients/remove", post(recipients::remove))
        .route("/console/enrollment", get(enrollment::page))
        .route("/console/enrollment/token", post(enrollment::token))
        .route("/console/enrollment/revoke", post(enrollment::revoke))
        .route("/console/{*rest}", axum::routing::any(pages::unknown))
        .layer(axum::middleware::from_fn_with_state(state.clone(), error_pages))
        .merge(api::routes())
        .layer(axum::middleware::from_fn(security_headers))
}
