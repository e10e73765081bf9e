//! The CLI side of scheduled delivery: `recipients`, `report list`, `report resend ID`,
//! `report send --job`, and
//! the wiring `serve` uses to start the scheduler and the HTTP listener.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, Result, bail};

use super::runner::{DeliveryStats, RenderFn, Scheduler};
use super::store::{ArchiveStatus, DeliveryStore, RecipientState};
use crate::archive::Archive;
use crate::cli::{RecipientsAction, RecipientsArgs, ReportCommand, fmt_time};
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

/// `recipients`: every known address with its opt-in state, and every job that reaches
/// nobody; `--log` prints the consent log; `invite` and `remove` change one address.
pub async fn recipients(cfg: &Config, args: RecipientsArgs) -> Result<()> {
    let (store, key) = open(cfg)?;
    let now = jiff::Timestamp::now();
    match args.action {
        Some(RecipientsAction::Invite { address, job }) => {
            let Some(listen) = cfg.http.listen else { bail!("inviting needs [http] listen (for the confirm link)") };
            let no_render: RenderFn = Arc::new(|_| Err("invite does not render".into()));
            let sched = scheduler(cfg, store, key, listen, no_render, Arc::new(DeliveryStats::default()))?;
            match sched.invite_now(&job, &address, "cli", now).await? {
                Some(RecipientState::Confirmed) => println!("{address} has confirmed already; it gets job {job}'s reports"),
                before => println!(
                    "invitation for job {job} sent to {address}{}",
                    before.map(|s| format!(" (was {})", s.as_str())).unwrap_or_default()
                ),
            }
            return Ok(());
        }
        Some(RecipientsAction::Remove { address, job }) => {
            if !cfg.jobs.iter().any(|j| j.name.0 == job) {
                bail!("there is no report job {job:?} in {}", cfg.source.display());
            }
            if !crate::recipients::remove(&store, &address, &job, "cli", now.as_millisecond())? {
                bail!("{address} is not a known recipient; see `ampel-collector recipients`");
            }
            println!("{address} gets no more reports of job {job}; remove it from the job's to/cc in {} as well", cfg.source.display());
            return Ok(());
        }
        None => {}
    }
    if args.log {
        let events = store.consent_log()?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&events)?);
            return Ok(());
        }
        let rows =
            events.iter().map(|e| vec![fmt_time(Some(e.at_ms)), e.address.clone(), e.event.clone(), e.source.clone(), e.detail.clone()]);
        print_table(&["WHEN", "ADDRESS", "EVENT", "FROM", "DETAIL"], &[], rows.collect());
        return Ok(());
    }
    let list = store.recipients()?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(());
    }
    let rows = list.iter().map(|r| {
        vec![
            r.address.clone(),
            r.state.as_str().to_owned(),
            fmt_time(Some(r.invited_ms)),
            r.reminded_ms.map(|t| fmt_time(Some(t))).unwrap_or_default(),
            fmt_time(Some(r.changed_ms)),
            r.removed_jobs.join(", "),
        ]
    });
    print_table(&["ADDRESS", "STATE", "INVITED", "REMINDED", "CHANGED", "REMOVED FROM"], &[], rows.collect());
    if list.is_empty() {
        println!("(no recipients yet; addresses of [[jobs]] are invited when `serve` runs)");
    }
    unserved(cfg, &store)
}

/// One line per enabled job none of whose addresses has confirmed: its reports reach nobody.
fn unserved(cfg: &Config, store: &DeliveryStore) -> Result<()> {
    let reports = store.reports()?;
    for job in cfg.jobs.iter().filter(|j| j.enabled) {
        let name = &job.name.0;
        let confirmed =
            crate::recipients::confirmed(store, name, &job.to.0)?.len() + crate::recipients::confirmed(store, name, &job.cc.0)?.len();
        if confirmed > 0 {
            continue;
        }
        let last = reports.iter().rev().find(|r| &r.job == name && r.status == ArchiveStatus::NoRecipients);
        let last =
            last.map(|r| format!("; the last that reached nobody: report {} ({} {})", r.id, r.tenant, r.period_label)).unwrap_or_default();
        println!(
            "WARNING: job {name}: none of its {} address(es) has confirmed, so its reports reach nobody{last}",
            job.to.0.len() + job.cc.0.len()
        );
    }
    Ok(())
}

/// `report send --job J [--tenant T]`: the console's "send now" from the command line — job
/// `J`'s report of the period ending now for its tenants (or `T` alone), rendered, archived and
/// mailed to the confirmed recipients by [`Scheduler::send_now`].
pub async fn send_now(cfg: &Config, store: crate::store::Store, job: &str, tenant: Option<ampel_protocol::TenantId>) -> Result<()> {
    let Some(listen) = cfg.http.listen else { bail!("sending a job's report needs [http] listen (for the unsubscribe links)") };
    let Some(config) = cfg.jobs.iter().find(|j| j.name.0 == job) else {
        bail!("there is no report job {job:?} in {}", cfg.source.display());
    };
    let tenants: Vec<String> = match tenant {
        Some(t) if config.tenants.contains(&t) => vec![t.to_string()],
        Some(t) => bail!("tenant {t} is not one of job {job}'s tenants"),
        None => config.tenants.iter().map(|t| t.to_string()).collect(),
    };
    let (delivery, key) = open(cfg)?;
    let render = super::runner::store_renderer(store, Arc::new(cfg.clone()));
    let sched = scheduler(cfg, delivery, key, listen, render, Arc::new(DeliveryStats::default()))?;
    let done = sched.send_now(job, &tenants, jiff::Timestamp::now()).await?;
    for r in &done {
        let error = r.last_error.as_deref().map(|e| format!(": {e}")).unwrap_or_default();
        println!("report {} ({} {}): {} to {} recipient(s){error}", r.id, r.tenant, r.period_label, r.status.as_str(), r.recipients.len());
    }
    if done.iter().any(|r| r.status == ArchiveStatus::Failed) {
        bail!("not every recipient got the report; `ampel-collector report resend ID` tries again");
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
