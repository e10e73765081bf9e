//! The fleet summary: one row per tenant — light, score, devices, open findings, devices silent
//! now, last report — kept by a background task, so that the fleet page and
//! `GET /api/v1/tenants` never assess on the request path.
//!
//! The task ([`run`]) makes a pass `[http] fleet-refresh` (30 s) after the previous one ended: it
//! assesses every local tenant over the last 24 hours with the one assessment of `assess/`
//! and, with `[cluster]`, asks every other shard for its rows ([`crate::cluster::fleet`]). A
//! pass is a period, not a reaction to writes: a tenant's light changes with the clock alone
//! (a device falls silent, the 24-hour window slides, a licence expires), so a "the store
//! changed" signal would leave rows wrong. Each row carries the time it was computed, and the
//! page shows it ("as of 12:03:10"): a stale row is never mistaken for a live one. A tenant
//! whose assessment fails keeps its previous row (and age); one that never had a row is shown
//! grey with the reason. Tenant and device pages are still computed per request.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use axum::extract::Query;
use maud::{Markup, html};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::pages::{Page, blocking, light, page, when};
use super::words::Words;
use super::{BASE, Console, ConsoleError, Viewer, now_ms};
use crate::assess::suppress::FalsePositives;
use crate::assess::{self, Period};
use crate::risk::Light;
use crate::schedule::{ArchiveRecord, DeliveryStore};
use crate::store::DeviceRecord;

/// Rows per fleet page: 100 rows weigh ~28 KB, 1,000 on one page would be ~270 KB.
pub const PAGE_ROWS: usize = 100;

/// One tenant on the fleet page and in `GET /api/v1/tenants` (and, between shards, in
/// `GET /cluster/v1/fleet`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FleetRow {
    /// The tenant.
    pub tenant: String,
    /// Its light over the last 24 hours (grey when [`FleetRow::unknown`] says why).
    pub light: Light,
    /// Its score.
    pub score: u8,
    /// Registered devices.
    pub devices: usize,
    /// Open findings.
    #[serde(rename = "open_findings")]
    pub findings: usize,
    /// Devices silent for `[risk] silent-yellow` or longer when the row was computed.
    pub silent: usize,
    /// When the newest archived report of the tenant was made (Unix ms).
    #[serde(rename = "last_report_ms", default, skip_serializing_if = "Option::is_none")]
    pub last_report: Option<i64>,
    /// When the row was computed (Unix ms).
    pub as_of_ms: i64,
    /// The shard owning the tenant, with `[cluster]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<String>,
    /// Where the tenant's console pages are, when another shard owns it (its `http` address
    /// or `public-url`); `None`: this collector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub console_url: Option<String>,
    /// Why the row is not judged (its shard does not answer, its assessment failed): the
    /// light is then grey and the numbers are not the tenant's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unknown: Option<String>,
}

impl FleetRow {
    /// A grey row of `tenant` that says `why` it is not judged.
    pub fn unknown(tenant: &str, why: String, as_of_ms: i64) -> FleetRow {
        FleetRow {
            tenant: tenant.to_owned(),
            light: Light::Grey,
            score: 0,
            devices: 0,
            findings: 0,
            silent: 0,
            last_report: None,
            as_of_ms,
            shard: None,
            console_url: None,
            unknown: Some(why),
        }
    }
}

/// The rows of one pass, worst light first, then by tenant.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// The rows.
    pub rows: Vec<FleetRow>,
    /// When the last pass ended; `None` before the first.
    pub done_ms: Option<i64>,
}

/// The summary the pages read, and what refreshing it cost.
#[derive(Debug)]
pub struct FleetCache {
    snapshot: RwLock<Arc<Snapshot>>,
    /// Tenant assessments made since start (all of them by passes).
    assessments: AtomicU64,
    /// Starts the next pass at once ([`FleetCache::refreshed`]).
    wake: tokio::sync::Notify,
    /// Whether [`run`] is in a pass now.
    running: std::sync::atomic::AtomicBool,
    /// Passes published so far.
    passes: watch::Sender<u64>,
}

impl Default for FleetCache {
    fn default() -> FleetCache {
        FleetCache {
            snapshot: RwLock::default(),
            assessments: AtomicU64::default(),
            wake: tokio::sync::Notify::new(),
            running: std::sync::atomic::AtomicBool::new(false),
            passes: watch::Sender::new(0),
        }
    }
}

impl FleetCache {
    /// The rows of the last pass.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Tenant assessments made so far.
    pub fn assessments(&self) -> u64 {
        self.assessments.load(Ordering::Relaxed)
    }

    /// Replaces the rows: sorted worst first, then by tenant.
    pub fn publish(&self, mut rows: Vec<FleetRow>, done_ms: i64) {
        rows.sort_by(|a, b| b.light.cmp(&a.light).then_with(|| a.tenant.cmp(&b.tenant)));
        *self.snapshot.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(Snapshot { rows, done_ms: Some(done_ms) });
        self.passes.send_modify(|n| *n += 1);
    }

    /// Has [`run`] start a pass now and waits until one that began after the call is published
    /// (for the demo, which shows the console once its agents have registered). Only while
    /// the task runs: after a shutdown no pass comes.
    pub async fn refreshed(&self) {
        let mut passes = self.passes.subscribe();
        let seen = *passes.borrow_and_update();
        // A pass already under way may have read the store before the call: wait for the next.
        let target = seen + 1 + u64::from(self.running.load(Ordering::SeqCst));
        self.wake.notify_one();
        let _ = passes.wait_for(|n| *n >= target).await;
    }
}

/// Devices per tenant, from one scan of the registry.
fn devices_by_tenant(console: &Console) -> Result<BTreeMap<String, Vec<DeviceRecord>>, ConsoleError> {
    let mut by: BTreeMap<String, Vec<DeviceRecord>> = BTreeMap::new();
    for (_, rec) in console.store.devices(None)? {
        by.entry(rec.tenant.clone()).or_default().push(rec);
    }
    Ok(by)
}

/// The row of `tenant` at `now`: its assessment over the last 24 hours and its devices.
fn row_of(
    console: &Console,
    tenant: &str,
    devices: &[DeviceRecord],
    reports: &[ArchiveRecord],
    period: &Period,
    now: i64,
) -> Result<FleetRow, ConsoleError> {
    let a = assess::assess(&console.store, &console.cfg, tenant, period, FalsePositives::default())?;
    console.fleet.assessments.fetch_add(1, Ordering::Relaxed);
    let silent_after = console.cfg.risk.silent_yellow.as_ms();
    Ok(FleetRow {
        tenant: tenant.to_owned(),
        light: a.light,
        score: a.score,
        devices: devices.len(),
        findings: a.findings().len(),
        silent: devices.iter().filter(|d| d.last_seen_ms.is_none_or(|t| now.saturating_sub(t) >= silent_after)).count(),
        last_report: reports.iter().filter(|r| r.tenant == tenant).map(|r| r.created_ms).max(),
        as_of_ms: now,
        shard: console.shard_map().map(|c| c.own().name.clone()),
        console_url: None,
        unknown: None,
    })
}

/// Assesses every tenant this collector owns. A tenant whose assessment fails keeps its row of
/// `previous` (with that row's age), else gets a grey row naming the failure; either way it is
/// logged. `None` when `stop` turned true meanwhile (checked between tenants, so a shutdown
/// does not wait for a whole pass). Blocking: store reads.
pub fn local_rows(
    console: &Console,
    delivery: &DeliveryStore,
    previous: &Snapshot,
    stop: &watch::Receiver<bool>,
) -> Result<Option<Vec<FleetRow>>, ConsoleError> {
    let now = now_ms();
    let period = Period::parse("last-24h", now, &console.cfg.report.time_zone.0)?;
    let reports = delivery.reports()?;
    let mut rows = Vec::new();
    for (tenant, devices) in devices_by_tenant(console)? {
        if *stop.borrow() {
            return Ok(None);
        }
        if !owned_here(console, &tenant) {
            continue;
        }
        match row_of(console, &tenant, &devices, &reports, &period, now) {
            Ok(row) => rows.push(row),
            Err(e) => {
                tracing::error!(tenant = %tenant, error = %e, "fleet summary: assessing the tenant failed; its row keeps its age");
                let kept = previous.rows.iter().find(|r| r.tenant == tenant && r.console_url.is_none()).cloned();
                let shard = console.shard_map().map(|c| c.own().name.clone());
                rows.push(kept.unwrap_or_else(|| FleetRow { shard, ..FleetRow::unknown(&tenant, format!("assessment failed: {e}"), now) }));
            }
        }
    }
    Ok(Some(rows))
}

/// Whether this collector's shard owns `tenant` (always, without `[cluster]`): a tenant moved
/// away is shown by its new owner only.
fn owned_here(console: &Console, tenant: &str) -> bool {
    let Ok(id) = tenant.parse::<ampel_protocol::TenantId>() else { return true };
    crate::cluster::route(console.shard_map().as_deref(), &id) == crate::cluster::Route::Own
}

/// One pass: the local rows, then (with `[cluster]`) the other shards' rows, published together;
/// nothing is published when `stop` turned true during the pass.
pub async fn refresh(console: &Arc<Console>, delivery: &DeliveryStore, stop: &watch::Receiver<bool>) -> Result<(), ConsoleError> {
    let previous = console.fleet.snapshot();
    let (c, d, p, s) = (console.clone(), delivery.clone(), previous.clone(), stop.clone());
    let Some(mut rows) = blocking(move || local_rows(&c, &d, &p, &s)).await? else { return Ok(()) };
    if let Some(peers) = &console.peers {
        rows.extend(peers.rows(&console.zone).await);
    }
    console.fleet.publish(rows, now_ms());
    Ok(())
}

/// The background task: a pass at once, then one `[http] fleet-refresh` after the previous
/// ended, until `shutdown`.
pub async fn run(console: Arc<Console>, delivery: DeliveryStore, mut shutdown: watch::Receiver<bool>) {
    loop {
        let started = std::time::Instant::now();
        let first = console.fleet.snapshot().done_ms.is_none();
        console.fleet.running.store(true, Ordering::SeqCst);
        let done = refresh(&console, &delivery, &shutdown).await;
        console.fleet.running.store(false, Ordering::SeqCst);
        match done {
            Ok(()) => {
                let (rows, ms) = (console.fleet.snapshot().rows.len(), started.elapsed().as_millis() as u64);
                if first {
                    tracing::info!(rows, ms, "fleet summary ready");
                } else {
                    tracing::debug!(rows, ms, "fleet summary refreshed");
                }
            }
            Err(e) => tracing::error!(error = %e, "fleet summary not refreshed; the rows keep their age"),
        }
        tokio::select! {
            _ = tokio::time::sleep(console.cfg.http.fleet_refresh.0) => {}
            () = console.fleet.wake.notified() => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// The rows `viewer` may see, wherever the tenant lives; the last report only for those who
/// see reports.
pub(super) fn visible(viewer: &Viewer, snapshot: &Snapshot) -> Vec<FleetRow> {
    let reporting = viewer.role().sees_reports();
    snapshot
        .rows
        .iter()
        .filter(|r| viewer.sees(&r.tenant))
        .map(|r| FleetRow { last_report: if reporting { r.last_report } else { None }, ..r.clone() })
        .collect()
}

/// `?page=` of the fleet page, from 1.
#[derive(Deserialize)]
pub struct PageQuery {
    page: Option<usize>,
}

/// The link to a tenant's page: here, or on the console of the shard that owns it.
fn tenant_link(r: &FleetRow) -> String {
    match &r.console_url {
        Some(base) => format!("{base}{BASE}/tenants/{}", r.tenant),
        None => format!("{BASE}/tenants/{}", r.tenant),
    }
}

fn row(viewer: &Viewer, r: &FleetRow, reporting: bool) -> Markup {
    let w = viewer.words();
    let int = |n: usize| w.strings().int(n as u64);
    html! { tr {
        th scope="row" { a href=(tenant_link(r)) { (r.tenant) } @if let Some(s) = &r.shard { br; small { (w.shard) " " (s) } } }
        td { (light(viewer, r.light)) }
        @if let Some(why) = &r.unknown {
            td colspan=(if reporting { 5 } else { 4 }) { (w.unknown_row) " " (why) }
        } @else {
            td.num { (r.score) } td.num { (int(r.devices)) } td.num { (int(r.findings)) } td.num { (int(r.silent)) }
            @if reporting { td { @if r.last_report.is_some() { (when(viewer, r.last_report)) } @else { (w.none) } } }
        }
        td { small { (clock(viewer, r.as_of_ms)) } }
    } }
}

/// `[http] fleet-refresh` as people read it.
fn console_refresh(console: &Console) -> String {
    format!("{} s", console.cfg.http.fleet_refresh.0.as_secs())
}

/// `HH:MM:SS` in the console's zone, for row ages.
fn clock(viewer: &Viewer, ms: i64) -> String {
    match jiff::Timestamp::from_millisecond(ms) {
        Ok(t) if ms > 0 => t.to_zoned(viewer.console.zone.clone()).strftime("%H:%M:%S").to_string(),
        _ => viewer.words().never.into(),
    }
}

fn pager(w: &Words, current: usize, pages: usize) -> Markup {
    html! {
        @if pages > 1 { nav.pages aria-label=(w.fleet_pages) {
            @for p in 1..=pages {
                @if p == current { strong aria-current="page" { (p) } } @else { a href={ (BASE) "/?page=" (p) } { (p) } }
            }
        } }
    }
}

/// `GET /console/?page=`: the fleet summary of the tenants the viewer may see, worst first,
/// [`PAGE_ROWS`] to a page.
pub async fn fleet(viewer: Viewer, Query(q): Query<PageQuery>) -> Page {
    let snapshot = viewer.console.fleet.snapshot();
    let rows = visible(&viewer, &snapshot);
    let reporting = viewer.role().sees_reports();
    let pages = rows.len().div_ceil(PAGE_ROWS).max(1);
    let current = q.page.unwrap_or(1).clamp(1, pages);
    let shown = rows.iter().skip((current - 1) * PAGE_ROWS).take(PAGE_ROWS);
    let (c, w) = (&viewer.console, viewer.words());
    let body = html! {
        @match snapshot.done_ms {
            None => p role="status" { (w.fleet_computing) },
            Some(done) => p { ((w.fleet_as_of)(&clock(&viewer, done), &console_refresh(c))) },
        }
        @if rows.is_empty() { p { (w.no_tenant) } } @else {
            (pager(w, current, pages))
            div.scroll { table {
                thead { tr {
                    th scope="col" { (w.tenant) } th scope="col" { (w.light) } th scope="col" { (w.score) }
                    th scope="col" { (w.devices) } th scope="col" { (w.open_findings) } th scope="col" { (w.silent_now) }
                    @if reporting { th scope="col" { (w.last_report) } }
                    th scope="col" { (w.as_of) }
                } }
                tbody { @for r in shown { (row(&viewer, r, reporting)) } }
            } }
            (pager(w, current, pages))
        }
    };
    Ok(page(&viewer, w.fleet, body))
}
