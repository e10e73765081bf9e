//! The jobs page: the `[[jobs]]` of the configuration, read-only, with their next run in the
//! job's zone, a preview of any job's report rendered on demand and "send now" — tenant
//! managers and administrators, for the tenants they see.
//!
//! Nothing here renders or sends a second way: the next run is the scheduler's
//! [`due::next_slot`], the preview is [`crate::reporting::report`] of
//! [`ReportRequest::of_job`] (the bytes a recipient would get for the period ending now), and
//! "send now" is the scheduler's own run ([`Scheduler::send_now`](crate::schedule::runner::Scheduler::send_now)).
//! A job shows only the tenants the viewer sees; a job with none of them is the same 404 as
//! one that does not exist.

use axum::Form;
use axum::extract::{Path, Query};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use serde::{Deserialize, Serialize};

use super::login::CsrfForm;
use super::pages::{self, blocking};
use super::words::Words;
use super::{BASE, ConsoleError, Refusal, Viewer};
use crate::reporting::{ReportRequest, attachment_name};
use crate::schedule::ArchiveRecord;
use crate::schedule::config::{JobConfig, RuleDay, SendRule};
use crate::schedule::due;

type Page = Result<Response, Refusal>;

/// A job with the tenants of it the viewer sees (at least one).
pub(super) struct VisibleJob<'a> {
    /// The job as configured.
    pub job: &'a JobConfig,
    /// Its tenants the viewer sees, in the job's order.
    pub tenants: Vec<String>,
}

/// `job`'s tenants `viewer` sees, `None` when there are none.
fn visible<'a>(viewer: &Viewer, job: &'a JobConfig) -> Option<VisibleJob<'a>> {
    let tenants: Vec<String> = job.tenants.iter().map(|t| t.as_str().to_owned()).filter(|t| viewer.sees(t)).collect();
    (!tenants.is_empty()).then_some(VisibleJob { job, tenants })
}

/// The jobs with a tenant the viewer sees, in configuration order (reporting roles only).
pub(super) fn visible_jobs(viewer: &Viewer) -> Result<Vec<VisibleJob<'_>>, Refusal> {
    viewer.reporting()?;
    Ok(viewer.console.cfg.jobs.iter().filter_map(|j| visible(viewer, j)).collect())
}

/// Job `name` when the viewer may manage it; else [`Refusal::NotFound`], as for a missing one.
pub(super) fn visible_job<'a>(viewer: &'a Viewer, name: &str) -> Result<VisibleJob<'a>, Refusal> {
    viewer.reporting()?;
    viewer.console.cfg.jobs.iter().find(|j| j.name.0 == name).and_then(|j| visible(viewer, j)).ok_or(Refusal::NotFound)
}

/// One job as the page and `GET /api/v1/jobs` show it.
#[derive(Serialize)]
pub(super) struct JobRow {
    job: String,
    tenants: Vec<String>,
    enabled: bool,
    period: String,
    send: Vec<String>,
    time_zone: String,
    language: &'static str,
    depth: &'static str,
    recipients: usize,
    /// The next scheduled run, Unix ms; none for a disabled job.
    next_run_ms: Option<i64>,
    /// The same in the job's zone, e.g. `2026-12-07 08:00 CET`.
    next_run: Option<String>,
}

/// A send rule in the words of `w`: `daily 08:00`, `Monday 08:00`, `day 1 08:00`.
fn rule_text(w: &Words, r: &SendRule) -> String {
    let time = r.time.strftime("%H:%M").to_string();
    match r.day {
        RuleDay::Daily => (w.daily)(&time),
        RuleDay::Weekly(day) => format!("{} {time}", w.weekday(day)),
        RuleDay::Monthly(n) => (w.monthly)(n, &time),
    }
}

/// `t` in the job's zone as `w`'s language writes times, with the zone's abbreviation.
fn local(w: &Words, job: &JobConfig, t: jiff::Timestamp) -> String {
    let zone = jiff::tz::TimeZone::get(&job.time_zone.0).unwrap_or(jiff::tz::TimeZone::UTC);
    let abbreviation = t.to_zoned(zone.clone()).strftime("%Z").to_string();
    format!("{} {abbreviation}", crate::report::catalogue::time(t.as_millisecond(), w.lang, &zone))
}

/// The job's row at `now`, in the words of `w`.
fn row(w: &Words, v: &VisibleJob<'_>, now: jiff::Timestamp) -> JobRow {
    let job = v.job;
    let next = if job.enabled { due::next_slot(job, now) } else { None };
    let mut addresses: Vec<String> = job.to.0.iter().chain(&job.cc.0).map(|m| crate::recipients::bare(m)).collect();
    addresses.sort();
    addresses.dedup();
    JobRow {
        job: job.name.0.clone(),
        tenants: v.tenants.clone(),
        enabled: job.enabled,
        period: w.report_period(job.window()),
        send: job.send.0.iter().map(|r| rule_text(w, r)).collect(),
        time_zone: job.time_zone.0.clone(),
        language: job.language.code(),
        depth: job.depth.name(),
        recipients: addresses.len(),
        next_run_ms: next.map(|t| t.as_millisecond()),
        next_run: next.map(|t| local(w, job, t)),
    }
}

/// The jobs the viewer manages, as rows in the viewer's words (the page; the API's viewer
/// speaks English).
pub(super) fn rows(viewer: &Viewer) -> Result<Vec<JobRow>, Refusal> {
    let now = jiff::Timestamp::now();
    Ok(visible_jobs(viewer)?.iter().map(|v| row(viewer.words(), v, now)).collect())
}

fn jobs_table(viewer: &Viewer, rows: &[JobRow]) -> Markup {
    let w = viewer.words();
    html! {
        div.scroll { table {
            thead { tr {
                th scope="col" { (w.job) } th scope="col" { (w.tenants) } th scope="col" { (w.period) } th scope="col" { (w.sends) }
                th scope="col" { (w.language) } th scope="col" { (w.depth) } th scope="col" { (w.recipients) }
                th scope="col" { (w.next_run) } th scope="col" { (w.preview) } th scope="col" { (w.send_now) }
            } }
            tbody { @for r in rows { tr {
                th scope="row" { (r.job) }
                td { (r.tenants.join(", ")) }
                td { (r.period) }
                td { (r.send.join("; ")) br; small { (r.time_zone) } }
                td { (r.language) } td { (r.depth) } td.num { (r.recipients) }
                td { @if let Some(next) = &r.next_run { (next) } @else { (w.disabled) } }
                td { @for t in &r.tenants {
                    a href={ (BASE) "/jobs/" (r.job) "/preview?tenant=" (t) } aria-label=((w.preview_label)(&r.job, t)) { ((w.preview_of)(t)) } " "
                } }
                td { form method="post" action={ (BASE) "/jobs/" (r.job) "/send" } {
                    input type="hidden" name="csrf" value=(viewer.csrf);
                    button type="submit" aria-label=((w.send_now_label)(&r.job)) { (w.send_now) }
                } }
            } } }
        } }
    }
}

/// `GET /console/jobs` (tenant managers, administrators).
pub async fn page(viewer: Viewer) -> Page {
    let rows = rows(&viewer)?;
    let w = viewer.words();
    let body = html! {
        p { (w.jobs_intro) }
        @if rows.is_empty() { p { (w.no_jobs) } } @else { (jobs_table(&viewer, &rows)) }
    };
    Ok(pages::page(&viewer, w.jobs, body))
}

/// `?tenant=` of the preview.
#[derive(Deserialize)]
pub struct PreviewQuery {
    tenant: Option<String>,
}

/// The PDF job `job` would send `tenant` (default: its first tenant the viewer sees) for the
/// period ending now: the one report path, rendered on demand.
pub(super) async fn preview_pdf(viewer: &Viewer, job: &str, tenant: Option<&str>) -> Result<(String, Vec<u8>), Refusal> {
    let v = visible_job(viewer, job)?;
    let tenant = match tenant {
        Some(t) => v.tenants.iter().find(|x| *x == t).ok_or(Refusal::NotFound)?,
        None => v.tenants.first().ok_or(Refusal::NotFound)?,
    };
    let req = ReportRequest::of_job(v.job, tenant, jiff::Timestamp::now()).map_err(ConsoleError::from)?;
    let name = attachment_name(tenant, &req.period);
    let console = viewer.console.clone();
    let pdf = blocking(move || Ok(crate::reporting::report(&console.store, &console.cfg, &req)?.1)).await?;
    Ok((name, pdf))
}

/// `GET /console/jobs/{job}/preview?tenant=`: the PDF, shown inline.
pub async fn preview(viewer: Viewer, Path(job): Path<String>, Query(q): Query<PreviewQuery>) -> Page {
    let (name, pdf) = preview_pdf(&viewer, &job, q.tenant.as_deref()).await?;
    // Tenant ids and period labels are [A-Za-z0-9._-]: a valid header value.
    let disposition = HeaderValue::from_str(&format!("inline; filename=\"{name}\"")).unwrap_or(HeaderValue::from_static("inline"));
    Ok(([(header::CONTENT_TYPE, HeaderValue::from_static("application/pdf")), (header::CONTENT_DISPOSITION, disposition)], pdf)
        .into_response())
}

/// Renders and delivers job `job`'s report now for the tenants of it the viewer sees, through
/// the scheduler's own run (page and API alike), to its end even if the client goes away.
/// Recorded in the audit log before it is attempted. The caller has checked the CSRF token
/// where one applies.
pub(super) async fn send_now(viewer: &Viewer, job: &str) -> Result<Vec<ArchiveRecord>, Refusal> {
    let v = visible_job(viewer, job)?;
    if viewer.console.resender().is_none() {
        return Err(Refusal::NoResender);
    }
    let target = format!("job {job} ({})", v.tenants.join(", "));
    viewer.console.record(viewer.user.name.as_str(), "send-now", &target, viewer.client)?;
    let (console, job, tenants, user) = (viewer.console.clone(), job.to_owned(), v.tenants, viewer.user.name.clone());
    super::to_completion(async move {
        let scheduler = console.resender().ok_or(Refusal::NoResender)?;
        let done = scheduler.send_now(&job, &tenants, jiff::Timestamp::now()).await;
        match &done {
            Ok(recs) => tracing::info!(job, user = %user, reports = recs.len(), "console send now"),
            Err(e) => tracing::warn!(job, user = %user, error = %crate::schedule::runner::error_chain(e), "console send now failed"),
        }
        Ok(done?)
    })
    .await?
}

/// One sentence per report sent now.
pub(super) fn sent_line(w: &Words, r: &ArchiveRecord) -> String {
    let error = r.last_error.as_deref().map(|e| format!(": {e}")).unwrap_or_default();
    (w.sent_line)(r.id, &r.tenant, &r.period_label, w.archive_state(r.status), r.recipients.len(), &error)
}

/// `POST /console/jobs/{job}/send` (form `csrf`): [`send_now`]. The CSRF token is checked
/// first: without it nothing is looked up.
pub async fn send(viewer: Viewer, Path(job): Path<String>, Form(f): Form<CsrfForm>) -> Page {
    viewer.check_csrf(&f.csrf)?;
    let done = send_now(&viewer, &job).await?;
    let w = viewer.words();
    let body = html! {
        @if done.is_empty() { p role="status" { (w.nothing_sent) } }
        @else { ul role="status" { @for r in &done { li { (sent_line(w, r)) } } } }
        p { a href={ (BASE) "/reports" } { (w.to_reports) } " · " a href={ (BASE) "/jobs" } { (w.back_to_jobs) } }
    };
    Ok(pages::page(&viewer, &(w.job_sent)(&job), body))
}
