//! The CLI side of scheduled delivery: `recipients`, `report list`, `report resend ID`, and
//! the wiring `serve` uses to start the scheduler and the HTTP listener.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, Result, bail};

use super::runner::{DeliveryStats, RenderFn, Scheduler};
use super::store::DeliveryStore;
use crate::archive::Archive;
use crate::cli::{ReportCommand, fmt_time};
use crate::config::Config;
use crate::mail::Mailer;
use crate::recipients::{LinkKey, Links};

/// The link key file inside the delivery directory.
pub const LINK_KEY_FILE: &str = "link.key";

/// Opens the delivery store and the link key of `cfg`.
pub fn open(cfg: &Config) -> Result<(DeliveryStore, LinkKey)> {
    let dir = cfg.delivery_dir();
    let store = DeliveryStore::open(&dir).with_context(|| format!("opening the delivery store in {}", dir.display()))?;
    let key = LinkKey::load_or_create(&dir.join(LINK_KEY_FILE))?;
    Ok((store, key))
}

/// Builds the scheduler of `cfg`. `http` is the listener's bound address (for links when no
/// `public-url` is set).
pub fn scheduler(
    cfg: &Config,
    store: DeliveryStore,
    key: LinkKey,
    http: SocketAddr,
    render: RenderFn,
    stats: Arc<DeliveryStats>,
) -> Result<Scheduler> {
    let mailer = Mailer::new(&cfg.mail).context("setting up mail delivery")?;
    Ok(Scheduler {
        jobs: cfg.jobs.clone(),
        delivery: cfg.delivery.clone(),
        store,
        archive: Archive::new(&cfg.archive_dir()),
        mailer: Arc::new(mailer),
        links: Links { public_url: cfg.http.base_url(http), key },
        render,
        stats,
    })
}

/// `recipients`: every known address with its opt-in state; `--log` prints the consent log.
pub fn recipients(cfg: &Config, log: bool, json: bool) -> Result<()> {
    let (store, _) = open(cfg)?;
    if log {
        let events = store.consent_log()?;
        if json {
            println!("{}", serde_json::to_string_pretty(&events)?);
            return Ok(());
        }
        println!("{:<21} {:<32} {:<13} {:<16} DETAIL", "WHEN", "ADDRESS", "EVENT", "FROM");
        for e in &events {
            println!("{:<21} {:<32} {:<13} {:<16} {}", fmt_time(Some(e.at_ms)), e.address, e.event, e.source, e.detail);
        }
        return Ok(());
    }
    let list = store.recipients()?;
    if json {
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(());
    }
    println!("{:<32} {:<13} {:<21} {:<21}", "ADDRESS", "STATE", "INVITED", "CHANGED");
    for r in &list {
        println!("{:<32} {:<13} {:<21} {:<21}", r.address, r.state.as_str(), fmt_time(Some(r.invited_ms)), fmt_time(Some(r.changed_ms)));
    }
    if list.is_empty() {
        println!("(no recipients yet; addresses of [[jobs]] are invited when `serve` runs)");
    }
    Ok(())
}

/// One `report list` row. The status is the scheduled delivery's, then the resends'.
fn report_row(r: &super::ArchiveRecord) -> Vec<String> {
    let mut status = if r.late { format!("{} (late)", r.status.as_str()) } else { r.status.as_str().to_owned() };
    if let Some(last) = r.resends.last() {
        status.push_str(&format!(", resent {}× (last {} {})", r.resends.len(), last.status.as_str(), fmt_time(Some(last.at_ms))));
    }
    let error = r.resends.last().and_then(|x| x.error.as_deref()).or(r.last_error.as_deref()).unwrap_or("");
    vec![
        r.id.to_string(),
        r.job.clone(),
        r.tenant.clone(),
        r.period_label.clone(),
        fmt_time(Some(r.created_ms)),
        r.light.clone(),
        r.mode.clone(),
        status,
        r.recipients.len().to_string(),
        error.replace(['\r', '\n'], " "),
    ]
}

/// Prints a table whose columns are as wide as their widest cell, so a long value never
/// shifts the columns after it; `right` are the right-aligned columns. The last column is
/// not padded.
pub(crate) fn print_table(headers: &[&str], right: &[usize], rows: Vec<Vec<String>>) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut out = String::new();
        for (i, (cell, w)) in cells.zip(&widths).enumerate() {
            let pad = w.saturating_sub(cell.chars().count());
            if i > 0 {
                out.push_str("  ");
            }
            if right.contains(&i) {
                out.push_str(&" ".repeat(pad));
                out.push_str(cell);
            } else {
                out.push_str(cell);
                if i + 1 < widths.len() {
                    out.push_str(&" ".repeat(pad));
                }
            }
        }
        println!("{}", out.trim_end());
    };
    line(&mut headers.iter().copied());
    for row in &rows {
        line(&mut row.iter().map(String::as_str));
    }
}

/// `report list` and `report resend ID`.
pub async fn report(cfg: &Config, cmd: ReportCommand) -> Result<()> {
    let (store, key) = open(cfg)?;
    match cmd {
        ReportCommand::List { json } => {
            let list = store.reports()?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
                return Ok(());
            }
            let rows = list.iter().map(report_row).collect();
            print_table(&["ID", "JOB", "TENANT", "PERIOD", "CREATED", "LIGHT", "MODE", "STATUS", "TO", "ERROR"], &[0, 8], rows);
            if list.is_empty() {
                println!("(no reports archived yet)");
            }
            Ok(())
        }
        ReportCommand::Resend { id } => {
            let Some(listen) = cfg.http.listen else { bail!("resending needs [http] listen (for the unsubscribe links)") };
            let no_render: RenderFn = Arc::new(|_| Err("resend does not render".into()));
            let sched = scheduler(cfg, store, key, listen, no_render, Arc::new(DeliveryStats::default()))?;
            let by = format!("cli ({})", std::env::var("USER").unwrap_or_else(|_| "unknown user".into()));
            let rec = sched.resend(id, jiff::Timestamp::now(), &by).await?;
            let Some(r) = rec.resends.last() else { bail!("report {id}: the resend was not recorded") };
            println!(
                "report {} ({} {}): resent to {} recipient(s) as {}{}",
                rec.id,
                rec.tenant,
                rec.period_label,
                r.recipients.len(),
                r.mode,
                r.link_reason.as_ref().map(|why| format!(" ({why})")).unwrap_or_default()
            );
            if let Some(e) = &r.error {
                bail!("report {} not resent to everyone: {e}", rec.id);
            }
            Ok(())
        }
        other => bail!("not a delivery command: {other:?}"),
    }
}
