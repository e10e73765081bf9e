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
            println!(
                "{:>5} {:<16} {:<12} {:<18} {:<21} {:<6} {:<10} {:<13} {:>3}  ERROR",
                "ID", "JOB", "TENANT", "PERIOD", "CREATED", "LIGHT", "MODE", "STATUS", "TO"
            );
            for r in &list {
                let status = if r.late { format!("{} (late)", r.status.as_str()) } else { r.status.as_str().to_owned() };
                println!(
                    "{:>5} {:<16} {:<12} {:<18} {:<21} {:<6} {:<10} {:<13} {:>3}  {}",
                    r.id,
                    r.job,
                    r.tenant,
                    r.period_label,
                    fmt_time(Some(r.created_ms)),
                    r.light,
                    r.mode,
                    status,
                    r.recipients.len(),
                    r.last_error.as_deref().unwrap_or("")
                );
            }
            if list.is_empty() {
                println!("(no reports archived yet)");
            }
            Ok(())
        }
        ReportCommand::Resend { id } => {
            let Some(listen) = cfg.http.listen else { bail!("resending needs [http] listen (for the unsubscribe links)") };
            let no_render: RenderFn = Arc::new(|_| Err("resend does not render".into()));
            let sched = scheduler(cfg, store, key, listen, no_render, Arc::new(DeliveryStats::default()))?;
            let rec = sched.resend(id, jiff::Timestamp::now()).await?;
            println!(
                "report {} ({} {}): {} to {} recipient(s) as {}",
                rec.id,
                rec.tenant,
                rec.period_label,
                rec.status.as_str(),
                rec.recipients.len(),
                rec.mode
            );
            if let Some(e) = &rec.last_error {
                bail!("report {} not delivered to everyone: {e}", rec.id);
            }
            Ok(())
        }
        other => bail!("not a delivery command: {other:?}"),
    }
}
