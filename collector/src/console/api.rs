//! The JSON API under `/api/v1`: tenants, devices, findings, reports, jobs and recipients for
//! scripts and other portals, with the console's roles.
//!
//! A request carries `Authorization: Bearer <token>`, a per-user token made by `ampel-collector
//! user token NAME` (see [`super::tokens`]). The token stands for its user as the current
//! `[[users]]` has them: a user removed by SIGHUP, an expired or a revoked token get 401. Token
//! requests make no session and set no cookie, so they need no CSRF token. What a user may see
//! is decided by the very [`Viewer`] checks the pages use, and the answers come from the same
//! functions as the pages (assessment, archive, scheduler resend, send now, invite, remove): a
//! foreign or missing thing is 404, reporting routes are 404 for analysts, and every error is
//! `{"error": "..."}`. Failed token attempts count against the client's address in the login
//! limiter's type (5 in 15 minutes, then 429 until the window passes), counted on `/metrics`.
//!
//! The routes are one table, [`endpoints`]; the OpenAPI 3.1 description ([`openapi`]) is
//! checked against it by a test.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;
use serde::Serialize;

use super::pages::{self, PeriodQuery, blocking, finding_text};
use super::{ConsoleError, Refusal, Viewer, client_of, now_ms};
use crate::http::HttpState;
use crate::report::Lang;
use crate::report::{DeviceReport, ReportData};
use crate::risk::{Finding, Light};
use crate::schedule::{ArchiveRecord, ArchiveStatus};

/// Where the API lives.
pub const API: &str = "/api/v1";

/// Counters of refused token requests, for `/metrics`.
#[derive(Debug, Default)]
pub struct ApiStats {
    /// Requests with an unknown, expired or revoked token.
    pub token_failures: AtomicU64,
    /// Requests refused with 429: their address had used up its failed attempts.
    pub throttled: AtomicU64,
}

/// Why an API request is answered with an error.
#[derive(Debug)]
pub enum ApiError {
    /// No token, an unknown, expired or revoked one, or one of a removed user (401).
    Unauthorized,
    /// Too many failed token attempts from the client's address (429).
    Throttled,
    /// The fleet summary's first pass since the start has not finished (503).
    NotReady,
    /// What the pages would refuse, answered in JSON.
    Refused(Refusal),
}

impl From<Refusal> for ApiError {
    fn from(r: Refusal) -> ApiError {
        ApiError::Refused(r)
    }
}

impl From<ConsoleError> for ApiError {
    fn from(e: ConsoleError) -> ApiError {
        ApiError::Refused(Refusal::from(e))
    }
}

/// `{"error": "..."}` with `status`.
fn error(status: StatusCode, message: &str) -> Response {
    json(status, &serde_json::json!({ "error": message }))
}

/// `value` as a JSON response.
fn json(status: StatusCode, value: &impl Serialize) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => (status, [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], body).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "API answer could not be serialized");
            let body = br#"{"error":"internal error; the server log says what"}"#.as_slice();
            (StatusCode::INTERNAL_SERVER_ERROR, [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], body)
                .into_response()
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::Unauthorized => {
                let mut resp = error(StatusCode::UNAUTHORIZED, "a valid API token is needed: Authorization: Bearer <token>");
                resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                resp
            }
            ApiError::Throttled => {
                let minutes = super::session::WINDOW_MS / 60_000;
                let mut resp =
                    error(StatusCode::TOO_MANY_REQUESTS, &format!("too many failed token attempts; try again within {minutes} minutes"));
                resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(minutes * 60));
                resp
            }
            ApiError::NotReady => {
                let mut resp = error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the fleet summary is being computed (first pass since the start); retry in a moment",
                );
                resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(5));
                resp
            }
            ApiError::Refused(Refusal::NotFound) => error(StatusCode::NOT_FOUND, "not found"),
            ApiError::Refused(Refusal::BadPeriod(why)) => error(StatusCode::BAD_REQUEST, &why.to_string()),
            ApiError::Refused(Refusal::NoResender) => {
                error(StatusCode::CONFLICT, "resending needs report jobs ([[jobs]]) in the configuration")
            }
            ApiError::Refused(Refusal::StaleForm | Refusal::UnknownProxyUser) => error(StatusCode::FORBIDDEN, "forbidden"),
            ApiError::Refused(Refusal::Declined { status, reason }) => {
                error(status, &crate::schedule::runner::error_chain(reason.as_ref()))
            }
            ApiError::Refused(Refusal::Failed(e)) => {
                tracing::error!(error = %e, "API request failed");
                error(StatusCode::INTERNAL_SERVER_ERROR, "internal error; the server log says what")
            }
        }
    }
}

/// The user of an API request, found by its bearer token; the [`Viewer`] the pages use.
pub struct ApiViewer(pub Viewer);

/// The token of `Authorization: Bearer <token>`.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|t| !t.is_empty())
}

impl FromRequestParts<Arc<HttpState>> for ApiViewer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<HttpState>) -> Result<Self, ApiError> {
        let Some(console) = state.console.clone() else { return Err(Refusal::NotFound.into()) };
        let client = client_of(parts)?;
        let Some(token) = bearer(&parts.headers).map(str::to_owned) else {
            tracing::debug!(client = %client, "API request without a bearer token");
            return Err(ApiError::Unauthorized);
        };
        let keys = [format!("addr:{client}")];
        let now = now_ms();
        if console.api_limiter.blocked(&keys, now) {
            console.api_stats.throttled.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(client = %client, "API request refused: too many failed token attempts");
            return Err(ApiError::Throttled);
        }
        let c = console.clone();
        let Some(record) = blocking(move || Ok(c.tokens.verify(&token, now)?)).await? else {
            console.api_limiter.failed(&keys, now);
            console.api_stats.token_failures.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(client = %client, "API request refused: unknown, expired or revoked token");
            return Err(ApiError::Unauthorized);
        };
        let Some(user) = console.users().iter().find(|u| u.name.as_str() == record.user).cloned() else {
            tracing::warn!(client = %client, token = %record.id, user = %record.user, "API request refused: the token's user is not in [[users]]");
            return Err(ApiError::Unauthorized);
        };
        // Token requests never check a CSRF token; a random one keeps `check_csrf` failing
        // should one ever be asked.
        // The API is language-neutral: the few sentences it has are English.
        Ok(ApiViewer(Viewer { user, csrf: super::session::random_token(), token: String::new(), client, console, lang: Lang::En }))
    }
}

type Answer = Result<Response, ApiError>;

fn ok(value: &impl Serialize) -> Answer {
    Ok(json(StatusCode::OK, value))
}

/// `GET /api/v1/tenants`: light, score, devices and open findings of every visible tenant
/// over the last 24 hours, from the fleet summary (each row with its `as_of_ms`).
async fn tenants(ApiViewer(viewer): ApiViewer) -> Answer {
    let snapshot = viewer.console.fleet.snapshot();
    if snapshot.done_ms.is_none() {
        return Err(ApiError::NotReady);
    }
    ok(&super::fleet::visible(&viewer, &snapshot))
}

/// A finding with its catalogue texts.
#[derive(Serialize)]
struct FindingJson<'a> {
    #[serde(flatten)]
    finding: &'a Finding,
    service: &'static str,
    evidence: String,
    recommendation: String,
}

fn findings_json<'a>(data: &'a ReportData, device: Option<&str>) -> Vec<FindingJson<'a>> {
    let tz = data.zone();
    data.findings
        .iter()
        .filter(|f| device.is_none_or(|d| f.device.as_deref() == Some(d)))
        .map(|f| {
            let (evidence, recommendation) = finding_text(f, Lang::En, &tz);
            FindingJson { finding: f, service: f.service(), evidence, recommendation }
        })
        .collect()
}

#[derive(Serialize)]
struct PeriodJson<'a> {
    label: &'a str,
    start_ms: i64,
    end_ms: i64,
    time_zone: &'a str,
}

fn period_json(data: &ReportData) -> PeriodJson<'_> {
    PeriodJson { label: &data.period_label, start_ms: data.period_start_ms, end_ms: data.period_end_ms, time_zone: &data.time_zone }
}

#[derive(Serialize)]
struct DeviceJson<'a> {
    device: &'a str,
    light: Light,
    score: u8,
    model: &'a str,
    hostname: &'a str,
    os: &'a str,
    agent_version: &'a str,
    licensed: Option<bool>,
    licence_expires_ms: Option<i64>,
    first_seen_ms: Option<i64>,
    last_seen_ms: Option<i64>,
    coverage: Option<f64>,
    gaps: usize,
}

fn device_json(d: &DeviceReport) -> DeviceJson<'_> {
    DeviceJson {
        device: &d.device,
        light: d.light,
        score: d.score,
        model: pages::model_of(d),
        hostname: &d.hostname,
        os: &d.os,
        agent_version: &d.agent_version,
        licensed: d.license.as_ref().map(|l| l.licensed),
        licence_expires_ms: d.license.as_ref().and_then(|l| l.expires),
        first_seen_ms: d.first_seen_ms,
        last_seen_ms: d.last_seen_ms,
        coverage: d.coverage,
        gaps: d.gaps.len(),
    }
}

#[derive(Serialize)]
struct ServiceJson {
    service: &'static str,
    light: Light,
    score: u8,
    findings: usize,
}

/// `GET /api/v1/tenants/{tenant}?period=`: service lights, devices and findings.
async fn tenant(ApiViewer(viewer): ApiViewer, Path(tenant): Path<String>, Query(q): Query<PeriodQuery>) -> Answer {
    let period = pages::period_of(&viewer.console, &q)?.0;
    let Some(data) = pages::tenant_data(&viewer, tenant, period).await? else { return Err(Refusal::NotFound.into()) };
    let services: Vec<ServiceJson> =
        data.services.iter().map(|s| ServiceJson { service: s.service, light: s.light, score: s.score, findings: s.findings }).collect();
    ok(&serde_json::json!({
        "tenant": data.tenant,
        "period": period_json(&data),
        "light": data.light,
        "score": data.score,
        "services": services,
        "devices": data.devices.iter().map(device_json).collect::<Vec<_>>(),
        "findings": findings_json(&data, None),
    }))
}

/// `GET /api/v1/devices/{device}?period=`: the device and its findings.
async fn device(ApiViewer(viewer): ApiViewer, Path(device): Path<String>, Query(q): Query<PeriodQuery>) -> Answer {
    let period = pages::period_of(&viewer.console, &q)?.0;
    let (tenant, data) = pages::device_data(&viewer, &device, period).await?;
    let Some(d) = data.devices.iter().find(|d| d.device == device) else { return Err(Refusal::NotFound.into()) };
    ok(&serde_json::json!({
        "tenant": tenant,
        "period": period_json(&data),
        "device": device_json(d),
        "findings": findings_json(&data, Some(&device)),
    }))
}

#[derive(Serialize)]
struct ReportJson<'a> {
    id: u64,
    job: &'a str,
    tenant: &'a str,
    period: &'a str,
    period_start_ms: i64,
    period_end_ms: i64,
    created_ms: i64,
    bytes: u64,
    light: &'a str,
    score: u8,
    recipients: &'a [String],
    status: ArchiveStatus,
    deliveries: usize,
    failures: usize,
}

fn report_json(r: &ArchiveRecord) -> ReportJson<'_> {
    ReportJson {
        id: r.id,
        job: &r.job,
        tenant: &r.tenant,
        period: &r.period_label,
        period_start_ms: r.period_start_ms,
        period_end_ms: r.period_end_ms,
        created_ms: r.created_ms,
        bytes: r.bytes,
        light: &r.light,
        score: r.score,
        recipients: &r.recipients,
        status: r.status,
        deliveries: 1 + r.resends.len(),
        failures: usize::from(r.status == ArchiveStatus::Failed) + r.resends.iter().filter(|x| x.error.is_some()).count(),
    }
}

/// `GET /api/v1/reports`: the archive records of the visible tenants, newest first (not for
/// analysts).
async fn reports(ApiViewer(viewer): ApiViewer, State(state): State<Arc<HttpState>>) -> Answer {
    viewer.reporting()?;
    let delivery = state.store.clone();
    let mut list: Vec<ArchiveRecord> =
        blocking(move || Ok(delivery.reports()?)).await?.into_iter().filter(|r| viewer.sees(&r.tenant)).collect();
    list.sort_by_key(|r| std::cmp::Reverse(r.id));
    ok(&list.iter().map(report_json).collect::<Vec<_>>())
}

/// `GET /api/v1/reports/{id}/pdf`: the archived PDF.
async fn pdf(ApiViewer(viewer): ApiViewer, State(state): State<Arc<HttpState>>, Path(id): Path<String>) -> Answer {
    Ok(pages::download_of(&viewer, &state, &id).await?)
}

/// `POST /api/v1/reports/{id}/resend`: the console's resend; 200 when every recipient got
/// it, 502 with the reason when not.
async fn resend(ApiViewer(viewer): ApiViewer, State(state): State<Arc<HttpState>>, Path(id): Path<String>) -> Answer {
    let done = pages::resend_report(&viewer, &state, &id).await?;
    let message = done.message(viewer.words());
    if !done.ok() {
        return Ok(error(StatusCode::BAD_GATEWAY, &message));
    }
    ok(&serde_json::json!({ "report": done.id, "message": message }))
}

/// `GET /api/v1/recipients`: for every job of a visible tenant, its recipients with their
/// opt-in state and consent log (tenant managers and administrators). A job's other tenants
/// are not named.
async fn recipients(ApiViewer(viewer): ApiViewer, State(state): State<Arc<HttpState>>) -> Answer {
    ok(&super::recipients::listing(&viewer, &state.store).await?)
}

/// The body of `POST /api/v1/recipients`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct InviteBody {
    job: String,
    address: String,
}

/// `POST /api/v1/recipients` with `{"job": "...", "address": "..."}`: the console's invite.
async fn invite(ApiViewer(viewer): ApiViewer, body: axum::body::Bytes) -> Answer {
    let body: InviteBody =
        serde_json::from_slice(&body).map_err(|e| Refusal::Declined { status: StatusCode::BAD_REQUEST, reason: Box::new(e) })?;
    let before = super::recipients::invite_to(&viewer, &body.job, &body.address).await?;
    let message = super::recipients::invited_message(viewer.words(), &body.address, &body.job, before);
    ok(&serde_json::json!({ "job": body.job, "address": body.address, "was": before, "message": message }))
}

/// `DELETE /api/v1/recipients/{job}/{address}`: the console's remove.
async fn remove(ApiViewer(viewer): ApiViewer, State(state): State<Arc<HttpState>>, Path((job, address)): Path<(String, String)>) -> Answer {
    super::recipients::remove_from(&viewer, &state.store, &job, &address).await?;
    ok(&serde_json::json!({ "job": job, "address": address, "removed": true }))
}

/// `GET /api/v1/jobs`: the jobs of the visible tenants with their next run.
async fn jobs(ApiViewer(viewer): ApiViewer) -> Answer {
    ok(&super::jobs::rows(&viewer)?)
}

/// `POST /api/v1/jobs/{job}/send`: the console's "send now"; the reports made.
async fn send_job(ApiViewer(viewer): ApiViewer, Path(job): Path<String>) -> Answer {
    let done = super::jobs::send_now(&viewer, &job).await?;
    ok(&done.iter().map(report_json).collect::<Vec<_>>())
}

/// `GET /api/v1/openapi.json`: the description below (no token needed: it holds no data).
async fn openapi_json() -> Response {
    json(StatusCode::OK, &openapi())
}

/// Every route of the API: method, path (axum's and OpenAPI's `{name}` syntax alike) and
/// handler. [`routes`] is built from it and the OpenAPI test checks [`openapi`] against it.
pub fn endpoints() -> Vec<(Method, &'static str, MethodRouter<Arc<HttpState>>)> {
    use axum::routing::{delete, get, post};
    vec![
        (Method::GET, "/api/v1/openapi.json", get(openapi_json)),
        (Method::GET, "/api/v1/tenants", get(tenants)),
        (Method::GET, "/api/v1/tenants/{tenant}", get(tenant)),
        (Method::GET, "/api/v1/devices/{device}", get(device)),
        (Method::GET, "/api/v1/reports", get(reports)),
        (Method::GET, "/api/v1/reports/{id}/pdf", get(pdf)),
        (Method::POST, "/api/v1/reports/{id}/resend", post(resend)),
        (Method::GET, "/api/v1/recipients", get(recipients)),
        (Method::POST, "/api/v1/recipients", post(invite)),
        (Method::DELETE, "/api/v1/recipients/{job}/{address}", delete(remove)),
        (Method::GET, "/api/v1/jobs", get(jobs)),
        (Method::POST, "/api/v1/jobs/{job}/send", post(send_job)),
    ]
}

/// The API's routes, to be merged into the console's.
pub fn routes() -> Router<Arc<HttpState>> {
    endpoints().into_iter().fold(Router::new(), |r, (_, path, handler)| r.route(path, handler))
}

/// A path parameter of the description.
fn param(name: &str, description: &str) -> serde_json::Value {
    serde_json::json!({ "name": name, "in": "path", "required": true, "description": description, "schema": { "type": "string" } })
}

/// An operation of the description: summary, parameters and the responses besides 401.
fn operation(summary: &str, params: &[serde_json::Value], ok: &str, errors: &[u16]) -> serde_json::Value {
    let mut responses = serde_json::json!({
        "200": { "description": ok },
        "401": { "$ref": "#/components/responses/Unauthorized" },
        "429": { "$ref": "#/components/responses/Throttled" },
    });
    for code in errors {
        responses[code.to_string()] = serde_json::json!({ "$ref": format!("#/components/responses/E{code}") });
    }
    serde_json::json!({ "summary": summary, "parameters": params, "responses": responses })
}

/// The OpenAPI 3.1 description of the API.
pub fn openapi() -> serde_json::Value {
    let period = serde_json::json!({
        "name": "period", "in": "query", "required": false,
        "description": "last-24h (default), day (yesterday), week or month (the last complete one), or a range of days FIRST..LAST (2026-03-01..2026-03-15, both included, at most as long as the store keeps hourly figures and 400 days), in the collector's time zone",
        "schema": { "type": "string", "pattern": "^(last-24h|day|week|month|[0-9]{4}-[0-9]{2}-[0-9]{2}\\.\\.[0-9]{4}-[0-9]{2}-[0-9]{2})$" },
    });
    let tenant = param("tenant", "Tenant id");
    let device = param("device", "Device id");
    let id = param("id", "Report id, as GET /api/v1/reports lists it");
    let job = param("job", "Job name, as GET /api/v1/jobs lists it");
    let address = param("address", "One of the job's to or cc addresses");
    let error = |description: &str| serde_json::json!({ "description": description, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } });
    serde_json::json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Ampel collector API",
            "version": "1",
            "description": "Lights, findings, devices, reports and recipients of the tenants the token's user may see. \
                            Foreign and missing things are both 404; reports and recipients are 404 for analysts.",
        },
        "security": [{ "bearer": [] }],
        "paths": {
            "/api/v1/openapi.json": { "get": {
                "summary": "This description", "security": [], "responses": { "200": { "description": "OpenAPI 3.1" } },
            } },
            "/api/v1/tenants": { "get": operation("Visible tenants: light, score, devices, open findings (last 24 hours), from the fleet summary with each row's as_of_ms; rows of an unreachable shard are grey with `unknown` saying why", &[], "Tenants", &[503]) },
            "/api/v1/tenants/{tenant}": { "get": operation("A tenant's service lights, devices and findings over a period", &[tenant, period.clone()], "The tenant", &[400, 404]) },
            "/api/v1/devices/{device}": { "get": operation("A device and its findings over a period", &[device, period], "The device", &[400, 404]) },
            "/api/v1/reports": { "get": operation("Archived reports of visible tenants, newest first (not for analysts)", &[], "Reports", &[404]) },
            "/api/v1/reports/{id}/pdf": { "get": {
                "summary": "The archived PDF of a report (not for analysts)",
                "parameters": [id.clone()],
                "responses": {
                    "200": { "description": "The PDF", "content": { "application/pdf": {} } },
                    "401": { "$ref": "#/components/responses/Unauthorized" },
                    "404": { "$ref": "#/components/responses/E404" },
                    "429": { "$ref": "#/components/responses/Throttled" },
                },
            } },
            "/api/v1/reports/{id}/resend": { "post": operation("Deliver a report again to its job's confirmed recipients (tenant managers, administrators)", &[id], "Resent to every recipient", &[404, 409, 502]) },
            "/api/v1/recipients": {
                "get": operation("The recipients of the visible tenants' jobs with their opt-in state and consent log (tenant managers, administrators)", &[], "Jobs and recipients", &[404]),
                "post": {
                    "summary": "Invite an address of a job again: a fresh invitation mail (tenant managers, administrators)",
                    "parameters": [],
                    "requestBody": { "required": true, "content": { "application/json": { "schema": {
                        "type": "object", "required": ["job", "address"], "additionalProperties": false,
                        "properties": { "job": { "type": "string" }, "address": { "type": "string", "description": "One of the job's to or cc addresses" } },
                    } } } },
                    "responses": {
                        "200": { "description": "Invited (or confirmed already: no mail)" },
                        "400": { "$ref": "#/components/responses/E400" },
                        "401": { "$ref": "#/components/responses/Unauthorized" },
                        "404": { "$ref": "#/components/responses/E404" },
                        "409": { "$ref": "#/components/responses/E409" },
                        "502": { "$ref": "#/components/responses/E502" },
                    },
                },
            },
            "/api/v1/recipients/{job}/{address}": { "delete": operation("Stop a job's reports to one of its addresses (tenant managers, administrators)", &[job.clone(), address], "Removed from the job", &[404, 409]) },
            "/api/v1/jobs": { "get": operation("The report jobs of the visible tenants with their next run (tenant managers, administrators)", &[], "Jobs", &[404]) },
            "/api/v1/jobs/{job}/send": { "post": operation("Render and send a job's report of the period ending now to its confirmed recipients, for the visible tenants (tenant managers, administrators)", &[job], "The reports made", &[404, 409, 502]) },
        },
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer", "description": "A token from `ampel-collector user token NAME`" } },
            "schemas": { "Error": { "type": "object", "required": ["error"], "properties": { "error": { "type": "string" } } } },
            "responses": {
                "Unauthorized": error("No token, or an unknown, expired or revoked one, or its user was removed"),
                "Throttled": error("Too many failed token attempts from this address; try again after Retry-After seconds"),
                "E400": error("Unknown period, or a malformed request body"),
                "E404": error("Not found, or not for this user"),
                "E409": error("No report jobs configured, or the request does not fit them (an address not in the job, nobody confirmed, never invited)"),
                "E502": error("The mail server did not take the mail"),
                "E503": error("The fleet summary is being computed (the first pass since the start); retry after Retry-After seconds"),
            },
        },
    })
}
