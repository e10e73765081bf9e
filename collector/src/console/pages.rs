//! The console's pages, rendered on the server with maud: no script, no external resource,
//! one embedded stylesheet. Lights and findings come from the assessment (`assess`), never
//! computed here a second way.

use std::sync::Arc;

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};
use serde::Deserialize;

use super::audit::AuditEvent;
use super::chart::{self, Chart, Line, Unit};
use super::history;
use super::login::CsrfForm;
use super::words::Words;
use super::{BASE, Console, ConsoleError, Refusal, Viewer, now_ms};
use crate::assess::suppress::FalsePositives;
use crate::assess::{self, Period};
use crate::http::HttpState;
use crate::report::{DeviceReport, Lang, catalogue};
use crate::risk::{Finding, Light};
use crate::schedule::ArchiveRecord;
use crate::store::DeviceHistory;

/// The embedded stylesheet.
const STYLE: &str = include_str!("style.css");
/// Audit events the audit page shows, newest first.
const AUDIT_SHOWN: usize = 500;

/// What a page handler answers.
pub(super) type Page = Result<Response, Refusal>;

/// Runs store reads off the async workers.
pub(super) async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T, ConsoleError> + Send + 'static) -> Result<T, ConsoleError> {
    tokio::task::spawn_blocking(f).await?
}

/// The one place the console takes a finding's texts from: (evidence, recommendation), in
/// `lang` with times in `tz`.
pub(super) fn finding_text(f: &Finding, lang: Lang, tz: &jiff::tz::TimeZone) -> (String, String) {
    (catalogue::evidence(f, lang, tz), catalogue::recommendation(f, lang))
}

/// The page of a refusal with `status` saying `reason`, in the words of `w`: with the
/// navigation and a link to the fleet for a logged-in `viewer`, else with a link to the login.
pub fn error_page(viewer: Option<&Viewer>, w: &'static Words, status: StatusCode, reason: &str) -> Response {
    let body = html! {
        p.alert role="alert" { (reason) }
        p { @if viewer.is_some() { a href={ (BASE) "/" } { (w.to_fleet) } } @else { a href={ (BASE) "/login" } { (w.to_login) } } }
    };
    (status, Html(document(w, w.status_title(status), viewer, body).into_string())).into_response()
}

fn document(w: &Words, title: &str, viewer: Option<&Viewer>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang=(w.lang.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Ampel" }
                link rel="stylesheet" href={ (BASE) "/style.css" };
            }
            body {
                header { @if let Some(v) = viewer { (nav(v)) } @else { span.brand { "Ampel" } } }
                main { h1 { (title) } (body) }
            }
        }
    }
}

fn nav(v: &Viewer) -> Markup {
    let w = v.words();
    html! {
        nav aria-label=(w.nav_label) {
            a.brand href={ (BASE) "/" } { "Ampel" }
            a href={ (BASE) "/" } { (w.fleet) }
            @if v.role().sees_reports() {
                a href={ (BASE) "/reports" } { (w.reports) }
                a href={ (BASE) "/jobs" } { (w.jobs) }
                a href={ (BASE) "/recipients" } { (w.recipients) }
            }
            @if v.role() == super::users::Role::Administrator {
                a href={ (BASE) "/enrollment" } { (w.enrollment) }
                a href={ (BASE) "/audit" } { (w.audit_log) }
            }
            span.who { (v.user.name.as_str()) " (" (w.role(v.role())) ")" }
            form method="post" action={ (BASE) "/logout" } {
                input type="hidden" name="csrf" value=(v.csrf);
                button type="submit" { (w.log_out) }
            }
        }
    }
}

/// A page of the console for `viewer`, with the navigation, in the viewer's language.
pub(super) fn page(viewer: &Viewer, title: &str, body: Markup) -> Response {
    Html(document(viewer.words(), title, Some(viewer), body).into_string()).into_response()
}

/// The login page in the words of `w`; `csrf` goes into the hidden field (and the cookie, see
/// `login`).
pub fn login_page(w: &Words, csrf: &str, message: Option<&str>) -> Html<String> {
    let body = html! {
        @if let Some(m) = message { p.alert role="alert" { (m) } }
        form.login method="post" action={ (BASE) "/login" } {
            input type="hidden" name="csrf" value=(csrf);
            label for="user" { (w.user_name) }
            input #user name="user" type="text" autocomplete="username" required autofocus;
            label for="password" { (w.password) }
            input #password name="password" type="password" autocomplete="current-password" required;
            button type="submit" { (w.log_in) }
        }
    };
    Html(document(w, w.log_in, None, body).into_string())
}

/// Any other path under `/console`: the login for a request without a user, else the 404
/// page with the navigation.
pub async fn unknown(_viewer: Viewer) -> Refusal {
    Refusal::NotFound
}

/// `GET /console/style.css`.
pub async fn stylesheet() -> Response {
    let headers = [
        (header::CONTENT_TYPE, HeaderValue::from_static("text/css; charset=utf-8")),
        (header::CACHE_CONTROL, HeaderValue::from_static("max-age=3600")),
    ];
    (headers, STYLE).into_response()
}

/// A light as a coloured label with its name in the viewer's language.
pub(super) fn light(v: &Viewer, l: Light) -> Markup {
    html! { span class={ "light " (l.as_str()) } { (v.words().light_name(l)) } }
}

/// `ms` as a local time in the console's zone, as the viewer's language writes it, or "never".
pub(super) fn when(v: &Viewer, ms: Option<i64>) -> String {
    match ms {
        Some(ms) => catalogue::time(ms, v.lang, &v.console.zone),
        None => v.words().never.into(),
    }
}

/// The period a tenant or device page (or its API twin) is asked for: `?period=` — one of
/// the links' names or a range of dates `2026-03-01..2026-03-15` — or `?from=&to=`, the two
/// dates of the custom-period form (both days included).
#[derive(Deserialize, Default)]
pub struct PeriodQuery {
    pub(super) period: Option<String>,
    pub(super) from: Option<String>,
    pub(super) to: Option<String>,
}

/// The periods pages offer: the last 24 hours, and the last complete day, week and month;
/// their names are [`Words::periods`], in this order.
const PERIODS: [&str; 4] = ["last-24h", "day", "week", "month"];

/// The longest custom period a page shows: the page runs the rules over the period and the one
/// before it, and counts its days one by one (see [`Period::days`]).
const MAX_CUSTOM_DAYS: i64 = 400;

const DAY_MS: i64 = 86_400_000;

/// Why the period asked for is not shown: a 400 with the sentence [`BadPeriod::say`] gives
/// (in English, its `Display`, for the API and the log).
#[derive(Debug)]
pub enum BadPeriod {
    /// Not one of the offered names nor a range of dates.
    Unknown(String),
    /// The form was sent with one date only.
    Incomplete,
    /// A date that does not parse.
    NotADate(String),
    /// The last day lies before the first.
    Reversed {
        /// The first day asked for.
        from: jiff::civil::Date,
        /// The last day asked for.
        to: jiff::civil::Date,
    },
    /// Longer than the store keeps the figures the page shows, or than a page may cover.
    TooLong {
        /// Days asked for.
        days: i64,
        /// Days allowed.
        max: i64,
    },
    /// The dates cannot be placed in the time zone (out of jiff's range).
    Uncomputable(crate::assess::PeriodError),
}

impl BadPeriod {
    /// The sentence saying why, in the words of `w`.
    pub fn say(&self, w: &Words) -> String {
        match self {
            BadPeriod::Unknown(p) => (w.period_unknown)(p),
            BadPeriod::Incomplete => w.period_incomplete.into(),
            BadPeriod::NotADate(s) => (w.period_not_a_date)(s),
            BadPeriod::Reversed { from, to } => (w.period_reversed)(&catalogue::day(*from, w.lang), &catalogue::day(*to, w.lang)),
            BadPeriod::TooLong { days, max } => (w.period_too_long)(*days, *max),
            BadPeriod::Uncomputable(e) => (w.period_uncomputable)(&e.to_string()),
        }
    }
}

impl std::fmt::Display for BadPeriod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.say(Words::get(Lang::En)))
    }
}

impl std::error::Error for BadPeriod {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BadPeriod::Uncomputable(e) => Some(e),
            _ => None,
        }
    }
}

/// Which period a page shows: one of [`PERIODS`] or a custom range of days.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Choice {
    /// One of [`PERIODS`], by its name in the query.
    Named(&'static str),
    /// From the first to the last day, both included, in the console's time zone.
    Custom(jiff::civil::Date, jiff::civil::Date),
}

impl Choice {
    /// The period as `?period=` names it.
    fn query(&self) -> String {
        match self {
            Choice::Named(p) => (*p).to_owned(),
            Choice::Custom(a, b) => format!("{a}..{b}"),
        }
    }
}

fn date(s: &str) -> Result<jiff::civil::Date, BadPeriod> {
    s.trim().parse().map_err(|_| BadPeriod::NotADate(s.to_owned()))
}

fn custom(from: &str, to: &str) -> Result<Choice, BadPeriod> {
    let (from, to) = (date(from)?, date(to)?);
    if to < from {
        return Err(BadPeriod::Reversed { from, to });
    }
    Ok(Choice::Custom(from, to))
}

/// What `q` asks for, without looking at the clock or the store: the form's two dates if
/// either is there, else `?period=`, else the last 24 hours.
pub(super) fn choice_of(q: &PeriodQuery) -> Result<Choice, BadPeriod> {
    let filled = |s: &Option<String>| s.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned);
    match (filled(&q.from), filled(&q.to)) {
        (Some(from), Some(to)) => return custom(&from, &to),
        (None, None) => {}
        _ => return Err(BadPeriod::Incomplete),
    }
    let asked = q.period.as_deref().unwrap_or("last-24h");
    if let Some(name) = PERIODS.iter().find(|p| **p == asked) {
        return Ok(Choice::Named(name));
    }
    match asked.split_once("..") {
        Some((from, to)) => custom(from, to),
        None => Err(BadPeriod::Unknown(asked.to_owned())),
    }
}

/// The longest period a page may cover: what the store keeps of the figures the charts are
/// drawn from (raw points, minute and hour rollups: the longest of them), at most
/// [`MAX_CUSTOM_DAYS`].
fn longest_days(retention: &crate::store::Retention) -> i64 {
    let kept = [retention.raw_ms, retention.minute_ms, retention.hour_ms];
    let longest = kept.iter().try_fold(0i64, |m, k| k.map(|k| m.max(k)));
    longest.map_or(MAX_CUSTOM_DAYS, |ms| (ms / DAY_MS).clamp(1, MAX_CUSTOM_DAYS))
}

/// The period `q` asks for, in the console's time zone (`[report] time-zone`, the zone of
/// every tenant), with the choice it came from.
pub(super) fn period_of(console: &Console, q: &PeriodQuery) -> Result<(Period, Choice), Refusal> {
    let choice = choice_of(q).map_err(Refusal::BadPeriod)?;
    let zone = &console.cfg.report.time_zone.0;
    let period = match &choice {
        Choice::Named(name) => Period::parse(name, now_ms(), zone).map_err(ConsoleError::from)?,
        Choice::Custom(..) => Period::parse(&choice.query(), now_ms(), zone).map_err(|e| Refusal::BadPeriod(BadPeriod::Uncomputable(e)))?,
    };
    let max = longest_days(&console.store.options().retention);
    let days = (period.end_ms - period.start_ms).div_euclid(DAY_MS);
    if days > max {
        return Err(Refusal::BadPeriod(BadPeriod::TooLong { days, max }));
    }
    Ok((period, choice))
}

/// The day/week/month links and the custom-period form (two dates, no script), the form
/// filled with the dates of the period shown, in the words of `w`.
fn period_links(w: &Words, path: &str, choice: &Choice, period: &Period) -> Markup {
    let day = |ms: i64| period.local(ms).map(|z| z.date().to_string()).unwrap_or_default();
    let (from, to) = match choice {
        Choice::Custom(a, b) => (a.to_string(), b.to_string()),
        Choice::Named(_) => (day(period.start_ms), day(period.end_ms.saturating_sub(1))),
    };
    html! {
        div.periods {
            nav aria-label=(w.period_nav) {
                @for (p, name) in PERIODS.into_iter().zip(w.periods) {
                    @if *choice == Choice::Named(p) { strong aria-current="page" { (name) } } @else { a href={ (path) "?period=" (p) } { (name) } }
                }
            }
            form.custom method="get" action=(path) aria-label=(w.custom_period) {
                span { label for="from" { (w.from) } " " input #from name="from" type="date" required value=(from); }
                span { label for="to" { (w.to) } " " input #to name="to" type="date" required value=(to); }
                button type="submit" { (w.show) }
            }
        }
    }
}

/// The report data of `tenant` when the viewer may see it and it exists; else `None`.
pub(super) async fn tenant_data(
    viewer: &Viewer,
    tenant: String,
    period: Period,
) -> Result<Option<crate::report::ReportData>, ConsoleError> {
    if !viewer.sees(&tenant) {
        return Ok(None);
    }
    let console = viewer.console.clone();
    blocking(move || {
        if !console.store.tenants()?.contains(&tenant) {
            return Ok(None);
        }
        Ok(Some(assess::report_data(&console.store, &console.cfg, &tenant, &period, FalsePositives::default())?))
    })
    .await
}

/// The findings with their texts in the viewer's language, times in `tz`.
fn findings_table(v: &Viewer, findings: &[Finding], tz: &jiff::tz::TimeZone) -> Markup {
    let w = v.words();
    html! {
        @if findings.is_empty() { p { (w.no_findings) } } @else {
            div.scroll { table {
                thead { tr {
                    th scope="col" { (w.light) } th scope="col" { (w.device) } th scope="col" { (w.evidence) }
                    th scope="col" { (w.recommendation) } th scope="col" { (w.change) }
                } }
                tbody { @for f in findings {
                    @let (evidence, recommendation) = finding_text(f, v.lang, tz);
                    tr {
                        td { (light(v, f.level)) }
                        td { @if let Some(d) = &f.device { a href={ (BASE) "/devices/" (d) } { (d) } } @else { (w.tenant_wide) } }
                        td { (evidence) @let [s, e] = f.window_ms; br; small { (when(v, Some(s))) " – " (when(v, Some(e))) } }
                        td { (recommendation) }
                        td { (f.change.map_or("", |c| w.change_name(c))) }
                    }
                } }
            } }
        }
    }
}

/// The findings of the previous period that are gone now.
fn fixed_list(w: &Words, changes: &[crate::risk::FindingChange]) -> Markup {
    let fixed: Vec<&crate::risk::FindingChange> = changes.iter().filter(|c| c.change == crate::risk::Change::Fixed).collect();
    html! {
        @if !fixed.is_empty() {
            h2 { (w.fixed_since) }
            ul { @for c in fixed {
                li { (c.rule) @if let Some(d) = &c.device { ((w.on_device)(d)) } @if let Some(s) = &c.subject { " (" (s) ")" }
                     @if let Some(l) = c.previous { ((w.was)(w.light_name(l))) } }
            } }
        }
    }
}

/// Share of the period covered by samples, with the number of gaps.
fn coverage(w: &Words, d: &DeviceReport) -> String {
    match d.coverage {
        Some(share) => (w.coverage_value)(&w.strings().num(share * 100.0, 0), d.gaps.len()),
        None => w.not_judged.into(),
    }
}

fn licensed(w: &Words, d: &DeviceReport) -> &'static str {
    match &d.license {
        Some(l) if l.licensed => w.yes,
        Some(_) => w.no,
        None => w.unknown,
    }
}

fn expiry(v: &Viewer, d: &DeviceReport) -> String {
    match &d.license {
        Some(l) if l.expires.is_some() => when(v, l.expires),
        Some(_) => v.words().no_expiry.into(),
        None => v.words().unknown.into(),
    }
}

/// `GET /console/tenants/{tenant}?period=`.
pub async fn tenant(viewer: Viewer, Path(tenant): Path<String>, Query(q): Query<PeriodQuery>) -> Page {
    let (period, choice) = period_of(&viewer.console, &q)?;
    let (v, w) = (&viewer, viewer.words());
    let name = period.name(v.lang);
    let links = period_links(w, &format!("{BASE}/tenants/{tenant}"), &choice, &period);
    let Some(data) = tenant_data(v, tenant.clone(), period).await? else { return Err(Refusal::NotFound) };
    let body = html! {
        (links)
        p { (w.tenant_light) " " (light(v, data.light)) ", " (w.score_word) " " (data.score) ", " (when(v, Some(data.period_start_ms))) " – " (when(v, Some(data.period_end_ms))) " (" (data.time_zone) ")." }
        h2 { (w.services) }
        ul.services { @for s in &data.services { li { (w.strings().service(s.service)) " " (light(v, s.light)) } } }
        h2 { (w.devices) }
        div.scroll { table {
            thead { tr {
                th scope="col" { (w.device) } th scope="col" { (w.light) } th scope="col" { (w.model) } th scope="col" { (w.licensed) }
                th scope="col" { (w.licence_expiry) } th scope="col" { (w.agent) } th scope="col" { (w.last_seen) } th scope="col" { (w.coverage) }
            } }
            tbody { @for d in &data.devices {
                tr {
                    th scope="row" { a href={ (BASE) "/devices/" (d.device) } { (d.device) } }
                    td { (light(v, d.light)) } td { (known(w, model_of(d))) } td { (licensed(w, d)) }
                    td { (expiry(v, d)) }
                    td { (known(w, &d.agent_version)) } td { (when(v, d.last_seen_ms)) } td { (coverage(w, d)) }
                }
            } }
        } }
        h2 { (w.findings) }
        (findings_table(v, &data.findings, &data.zone()))
        (fixed_list(w, &data.changes))
    };
    Ok(page(v, &(w.tenant_title)(&tenant, &name), body))
}

/// An inventory field, or "unknown" while the device has sent none.
fn known<'a>(w: &Words, s: &'a str) -> &'a str {
    if s.is_empty() { w.unknown } else { s }
}

/// The model the licence names, else the inventory's.
pub(super) fn model_of(d: &DeviceReport) -> &str {
    match d.license.as_ref().map(|l| l.model.as_str()).filter(|m| !m.is_empty()) {
        Some(m) => m,
        None => &d.model,
    }
}

/// The tenant of `device` and its report data over `period`, when the viewer may see it; a
/// device of a foreign tenant is [`Refusal::NotFound`] like one that does not exist.
pub(super) async fn device_data(viewer: &Viewer, device: &str, period: Period) -> Result<(String, crate::report::ReportData), Refusal> {
    let console = viewer.console.clone();
    let id = device.to_owned();
    let record = blocking(move || Ok(console.store.device(&id)?)).await?;
    let Some(record) = record.filter(|r| viewer.sees(&r.tenant)) else { return Err(Refusal::NotFound) };
    let Some(data) = tenant_data(viewer, record.tenant.clone(), period).await? else { return Err(Refusal::NotFound) };
    if !data.devices.iter().any(|d| d.device == device) {
        return Err(Refusal::NotFound);
    }
    Ok((record.tenant, data))
}

/// What only the device page shows: the disk and traffic charts and the licence and
/// inventory history over `period`. The caller has checked the viewer may see the device.
async fn device_extras(
    console: &Arc<Console>,
    device: &str,
    period: &Period,
) -> Result<(assess::DeviceCharts, DeviceHistory), ConsoleError> {
    let (console, device, period) = (console.clone(), device.to_owned(), period.clone());
    blocking(move || {
        let charts = assess::device_charts(&console.store, &device, &period)?;
        let history = console.store.device_history(&device, period.start_ms, period.end_ms)?;
        Ok((charts, history))
    })
    .await
}

/// Bytes per second as bits per second, for the traffic charts.
fn bits(points: &[(i64, f64)]) -> Vec<(i64, f64)> {
    points.iter().map(|&(t, v)| (t, v * 8.0)).collect()
}

/// The device's charts: CPU and memory (from the report data), disks and traffic per
/// interface, all through [`chart::chart`].
fn device_charts(v: &Viewer, d: &DeviceReport, charts: &assess::DeviceCharts, range: (i64, i64)) -> Markup {
    let (start_ms, end_ms, w) = (range.0, range.1, v.words());
    let [cpu, memory, received, sent] = w.lines;
    let chart_of = |title: &str, unit: Unit, lines: Vec<Line<'_>>| {
        chart::chart(&Chart { title, unit, start_ms, end_ms, step_ms: charts.step_ms, lines, zone: &v.console.zone, words: w })
    };
    let disks: Vec<Line<'_>> = charts.disks.iter().map(|(mount, points, stat)| Line { name: mount, points, stat: *stat }).collect();
    let traffic: Vec<(&str, assess::ChartLine, assess::ChartLine)> =
        charts.traffic.iter().map(|(i, rx, tx)| (i.as_str(), bits(rx), bits(tx))).collect();
    html! {
        h2 { (w.performance) }
        (chart_of(w.cpu_usage, Unit::Percent, vec![Line { name: cpu, points: &d.cpu, stat: d.cpu_stat }]))
        (chart_of(w.memory_usage, Unit::Percent, vec![Line { name: memory, points: &d.memory, stat: d.memory_stat }]))
        (chart_of(w.disk_usage, Unit::Percent, disks))
        h2 { (w.traffic) }
        @if traffic.is_empty() { p { (w.no_traffic) } }
        @for (interface, rx, tx) in &traffic {
            @let title = if interface.is_empty() { w.traffic.to_owned() } else { (w.traffic_on)(interface) };
            (chart_of(&title, Unit::BitsPerSecond, vec![
                Line { name: received, points: rx, stat: None },
                Line { name: sent, points: tx, stat: None },
            ]))
        }
    }
}

/// One list of "what changed when".
fn changes_list(v: &Viewer, changes: &[history::Changed]) -> Markup {
    let w = v.words();
    html! {
        ul.changes { @for c in changes.iter().rev() {
            li {
                time { (when(v, Some(c.at_ms))) } ": "
                @if c.fields.iter().all(|f| f.before.is_none()) { (w.first_report) }
                @for (i, f) in c.fields.iter().enumerate() {
                    @if i > 0 { "; " }
                    (f.field) " "
                    @match &f.before {
                        Some(b) => { (known(w, b)) " \u{2192} " (known(w, &f.after)) }
                        None => { (f.after) }
                    }
                }
            }
        } }
    }
}

/// The licence and inventory history of the period, newest first: only reports that changed
/// something, and what the store no longer keeps said plainly.
fn history_section(v: &Viewer, h: &DeviceHistory, period: &Period) -> Markup {
    let w = v.words();
    let time = |ms: i64| when(v, Some(ms));
    let licences = history::license_changes(&h.licenses, period.start_ms, w, &time);
    let inventory = history::inventory_changes(&h.inventories, period.start_ms, w);
    html! {
        h2 { (w.history) }
        @if h.horizon_ms > period.start_ms { p { ((w.history_horizon)(&when(v, Some(h.horizon_ms)))) } }
        @if h.truncated { p { ((w.history_truncated)(crate::store::HISTORY_MAX)) } }
        h3 { (w.licence) }
        @if h.licenses.is_empty() { p { (w.no_licence_report) } }
        @else if licences.is_empty() { p { (w.no_change) } }
        @else { (changes_list(v, &licences)) }
        h3 { (w.inventory) }
        @if h.inventories.is_empty() { p { (w.no_inventory_report) } }
        @else if inventory.is_empty() { p { (w.no_change) } }
        @else { (changes_list(v, &inventory)) }
    }
}

/// `GET /console/devices/{device}?period=`.
pub async fn device(viewer: Viewer, Path(device): Path<String>, Query(q): Query<PeriodQuery>) -> Page {
    let (period, choice) = period_of(&viewer.console, &q)?;
    let (v, w) = (&viewer, viewer.words());
    let links = period_links(w, &format!("{BASE}/devices/{device}"), &choice, &period);
    let (tenant, data) = device_data(v, &device, period.clone()).await?;
    let Some(d) = data.devices.iter().find(|d| d.device == device) else { return Err(Refusal::NotFound) };
    let (charts, history) = device_extras(&viewer.console, &device, &period).await?;
    let findings: Vec<Finding> = data.findings.iter().filter(|f| f.device.as_deref() == Some(device.as_str())).cloned().collect();
    let body = html! {
        (links)
        p { (w.tenant) " " a href={ (BASE) "/tenants/" (tenant) } { (tenant) } ", " (w.light_word) " " (light(v, d.light)) ", " (w.score_word) " " (d.score) "." }
        dl {
            dt { (w.model) } dd { (known(w, model_of(d))) }
            dt { (w.host_name) } dd { (known(w, &d.hostname)) }
            dt { (w.agent) } dd { (known(w, &d.agent_version)) }
            dt { (w.licensed) } dd { (licensed(w, d)) }
            dt { (w.licence_expiry) } dd { (expiry(v, d)) }
            dt { (w.last_seen) } dd { (when(v, d.last_seen_ms)) }
        }
        h2 { (w.findings) }
        (findings_table(v, &findings, &data.zone()))
        (device_charts(v, d, &charts, (data.period_start_ms, data.period_end_ms)))
        (history_section(v, &history, &period))
    };
    Ok(page(v, &(w.device_title)(&device, &period.name(v.lang)), body))
}

/// `GET /console/reports`: the archive of the viewer's tenants (not for analysts).
pub async fn reports(viewer: Viewer, State(state): State<Arc<HttpState>>) -> Page {
    viewer.reporting()?;
    let delivery = state.store.clone();
    let mut list: Vec<ArchiveRecord> =
        blocking(move || Ok(delivery.reports()?)).await?.into_iter().filter(|r| viewer.sees(&r.tenant)).collect();
    list.sort_by_key(|r| std::cmp::Reverse(r.id));
    let (c, w) = (&viewer.console, viewer.words());
    let language = |job: &str| c.cfg.jobs.iter().find(|j| j.name.0 == job).map_or(w.job_removed, |j| j.language.code());
    let body = html! {
        @if list.is_empty() { p { (w.no_reports) } } @else {
            div.scroll { table {
                thead { tr {
                    th scope="col" { (w.job) } th scope="col" { (w.tenant) } th scope="col" { (w.period) } th scope="col" { (w.language) }
                    th scope="col" { (w.recipients) } th scope="col" { (w.size) } th scope="col" { (w.deliveries) } th scope="col" { (w.failures) } th scope="col" { (w.pdf) } th scope="col" { (w.resend) }
                } }
                tbody { @for r in &list {
                    @let failures = usize::from(r.status == crate::schedule::ArchiveStatus::Failed) + r.resends.iter().filter(|x| x.error.is_some()).count();
                    tr {
                        td { (r.job) } td { (r.tenant) } td { (r.period_label) } td { (language(&r.job)) }
                        td { (r.recipients.join(", ")) } td.num { (w.strings().int(r.bytes / 1024)) " KiB" }
                        td.num { (1 + r.resends.len()) } td.num { (failures) @if let Some(e) = &r.last_error { br; small { (e) } } }
                        td { a href={ (BASE) "/reports/" (r.id) "/pdf" } { (w.download) } }
                        td { form method="post" action={ (BASE) "/reports/" (r.id) "/resend" } {
                            input type="hidden" name="csrf" value=(viewer.csrf);
                            button type="submit" aria-label=((w.resend_label)(r.id)) { (w.resend) }
                        } }
                    }
                } }
            } }
        }
    };
    Ok(page(&viewer, w.reports, body))
}

/// The archived report `id` (as the path has it) when the viewer may see reports and its
/// tenant; else [`Refusal::NotFound`], also for an id that is not a number.
pub(super) async fn visible_report(viewer: &Viewer, state: &HttpState, id: &str) -> Result<ArchiveRecord, Refusal> {
    viewer.reporting()?;
    let Ok(id) = id.parse::<u64>() else { return Err(Refusal::NotFound) };
    let delivery = state.store.clone();
    blocking(move || Ok(delivery.report(id)?)).await?.filter(|r| viewer.sees(&r.tenant)).ok_or(Refusal::NotFound)
}

/// The PDF of a visible report, as a download.
pub(super) async fn download_of(viewer: &Viewer, state: &HttpState, id: &str) -> Result<Response, Refusal> {
    let rec = visible_report(viewer, state, id).await?;
    let archive = state.archive.clone();
    let file = rec.file.clone();
    let pdf = blocking(move || Ok(archive.read(&file)?)).await?;
    // Tenant ids and period labels are [A-Za-z0-9._-]: a valid header value.
    let name = format!("attachment; filename=\"ampel-{}-{}.pdf\"", rec.tenant, rec.period_label);
    let disposition = HeaderValue::from_str(&name).unwrap_or(HeaderValue::from_static("attachment"));
    Ok(([(header::CONTENT_TYPE, HeaderValue::from_static("application/pdf")), (header::CONTENT_DISPOSITION, disposition)], pdf)
        .into_response())
}

/// `GET /console/reports/{id}/pdf`.
pub async fn download(viewer: Viewer, State(state): State<Arc<HttpState>>, Path(id): Path<String>) -> Page {
    download_of(&viewer, &state, &id).await
}

/// What a resend did.
pub(super) struct Resent {
    /// The report.
    pub id: u64,
    /// The report's record after the resend, or why the scheduler refused it.
    pub result: Result<ArchiveRecord, crate::schedule::runner::ScheduleError>,
}

impl Resent {
    /// Whether every recipient got it.
    pub fn ok(&self) -> bool {
        self.result.as_ref().is_ok_and(|r| r.resends.last().is_some_and(|x| x.error.is_none()))
    }

    /// One sentence on the outcome in the words of `w`: the page's language, or English for
    /// the API.
    pub fn message(&self, w: &Words) -> String {
        let id = self.id;
        match &self.result {
            Ok(done) => match done.resends.last() {
                Some(r) if r.error.is_none() => (w.resent)(id, r.recipients.len(), &r.mode),
                Some(r) => (w.resent_partly)(id, r.error.as_deref().unwrap_or(w.unknown)),
                None => (w.resend_unrecorded)(id),
            },
            Err(e) => (w.not_resent)(id, &e.to_string()),
        }
    }
}

/// Delivers the visible report `id` again to its job's confirmed recipients through the
/// scheduler's resend (tenant managers and administrators), for the page and the API alike.
/// Recorded in the audit log before it is attempted, and in the report's own history with
/// its outcome. The caller has checked the CSRF token where one applies.
pub(super) async fn resend_report(viewer: &Viewer, state: &HttpState, id: &str) -> Result<Resent, Refusal> {
    let rec = visible_report(viewer, state, id).await?;
    if viewer.console.resender().is_none() {
        return Err(Refusal::NoResender);
    }
    let id = rec.id;
    viewer.console.record(
        viewer.user.name.as_str(),
        "resend",
        &format!("report {id} ({} {})", rec.tenant, rec.period_label),
        viewer.client,
    )?;
    let (console, user, client) = (viewer.console.clone(), viewer.user.name.clone(), viewer.client);
    let result = super::to_completion(async move {
        let scheduler = console.resender().ok_or(Refusal::NoResender)?;
        let result = scheduler.resend(id, jiff::Timestamp::now(), &format!("console ({user})")).await;
        if let Err(e) = &result {
            tracing::warn!(report = id, user = %user, error = %e, "console resend failed");
        }
        tracing::info!(report = id, user = %user, client = %client, "console resend");
        Ok::<_, Refusal>(result)
    })
    .await??;
    Ok(Resent { id, result })
}

/// `POST /console/reports/{id}/resend` (form `csrf`): [`resend_report`] for the session's
/// user. The CSRF token is checked first: without it nothing is looked up.
pub async fn resend(viewer: Viewer, State(state): State<Arc<HttpState>>, Path(id): Path<String>, Form(f): Form<CsrfForm>) -> Page {
    viewer.check_csrf(&f.csrf)?;
    let w = viewer.words();
    let message = resend_report(&viewer, &state, &id).await?.message(w);
    let body = html! { p role="status" { (message) } p { a href={ (BASE) "/reports" } { (w.back_to_reports) } } };
    Ok(page(&viewer, w.resend, body))
}

/// `GET /console/audit`: the last state changes (administrators).
pub async fn audit(viewer: Viewer) -> Page {
    viewer.administrator()?;
    let console = viewer.console.clone();
    let mut events: Vec<AuditEvent> = blocking(move || Ok(console.audit.tail(AUDIT_SHOWN)?)).await?;
    events.reverse();
    let w = viewer.words();
    let [at, user, action, target, client] = w.audit_columns;
    let body = html! {
        p { ((w.audit_intro)(AUDIT_SHOWN)) }
        div.scroll { table {
            thead { tr { th scope="col" { (at) } th scope="col" { (user) } th scope="col" { (action) } th scope="col" { (target) } th scope="col" { (client) } } }
            tbody { @for e in &events { tr { td { (when(&viewer, Some(e.at_ms))) } td { (e.user) } td { (e.action) } td { (e.target) } td { (e.client) } } } }
        } }
    };
    Ok(page(&viewer, w.audit_log, body))
}
