//! `report preview`, `report send` and `mail test`: the store, the risk engine, the renderer and
//! the mailer in sequence.

use std::path::Path;

use anyhow::{Context, Result};

use crate::assess::suppress::FalsePositives;
use crate::assess::{self, Period};
use crate::cli::ReportCommand;
use crate::config::Config;
use crate::ingest::quic::now_ms;
use crate::mail::{Mailer, OutgoingMail};
use crate::report::{self, Lang, ReportData, ReportOptions, Widget, Widgets, catalogue};
use crate::schedule::config::{JobConfig, Language};
use crate::store::Store;

/// Renders a tenant's report for a period: English, every section, `[branding]` applied.
pub fn render(store: &Store, cfg: &Config, tenant: &str, period: &Period) -> Result<(ReportData, Vec<u8>)> {
    render_as(store, cfg, tenant, period, Language::En, &[], FalsePositives::default())
}

/// Renders a tenant's report in `language` with `widgets` (empty: all) and false positives as
/// `fp` says, `[branding]` applied, dates in the `[report]` time zone.
pub fn render_as(
    store: &Store,
    cfg: &Config,
    tenant: &str,
    period: &Period,
    language: Language,
    widgets: &[Widget],
    fp: FalsePositives,
) -> Result<(ReportData, Vec<u8>)> {
    render_in_zone(store, cfg, tenant, period, (language, widgets, fp), &cfg.report.time_zone.0)
}

/// [`render_as`] with dates in time zone `tz`. The job's choices travel as one tuple
/// (language, widgets, false positives) until a report request type carries them.
pub fn render_in_zone(
    store: &Store,
    cfg: &Config,
    tenant: &str,
    period: &Period,
    (language, widgets, fp): (Language, &[Widget], FalsePositives),
    tz: &str,
) -> Result<(ReportData, Vec<u8>)> {
    let data = assess::report_data_in(store, cfg, tenant, period, tz, fp).with_context(|| format!("gathering data of tenant {tenant}"))?;
    let (theme, logo_error) = cfg.branding.theme_or_without_logo(tenant);
    if let Some(e) = logo_error {
        tracing::warn!(tenant, error = %e, config = %cfg.source.display(), "[branding] logo unusable; rendering the report without it");
    }
    let options = ReportOptions { lang: language.into(), widgets: Widgets::from_list(widgets), theme };
    let pdf = report::render_with(&data, &options).with_context(|| format!("rendering the report of tenant {tenant}"))?;
    Ok((data, pdf))
}

/// The job named `name`, or an error listing the configured ones.
fn job<'a>(cfg: &'a Config, name: &str) -> Result<&'a JobConfig> {
    cfg.jobs.iter().find(|j| j.name.0 == name).ok_or_else(|| {
        let names: Vec<&str> = cfg.jobs.iter().map(|j| j.name.0.as_str()).collect();
        if names.is_empty() {
            anyhow::anyhow!("there is no report job {name:?}: {} has no [[jobs]]", cfg.source.display())
        } else {
            anyhow::anyhow!("there is no report job {name:?} in {}; configured jobs: {}", cfg.source.display(), names.join(", "))
        }
    })
}

/// Writes `bytes` to `path` through a temporary file, so a reader never sees half a PDF.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("pdf.tmp");
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))
}

/// The plain-text body of a report mail: the light, the score and what to do.
pub fn mail_text(data: &ReportData) -> String {
    let mut s = format!(
        "Ampel security report for {}\nPeriod: {}\nOverall: {} (score {} of 100)\n",
        data.tenant,
        data.period_label,
        data.light.as_str().to_uppercase(),
        data.score
    );
    if data.findings.is_empty() {
        s.push_str("\nNo findings: all devices are in order.\n");
    } else {
        s.push_str("\nWhat needs attention:\n");
        let tz = data.zone();
        for f in data.findings.iter().take(10) {
            s.push_str(&format!(
                "- [{}] {}: {}\n  {}\n",
                f.level.as_str(),
                f.device.as_deref().unwrap_or("tenant"),
                catalogue::evidence(f, Lang::En, &tz),
                catalogue::recommendation(f, Lang::En)
            ));
        }
    }
    s.push_str("\nThe full report is attached as PDF.\n");
    s
}

/// The mail carrying a rendered report.
pub fn report_mail(data: &ReportData, pdf: Vec<u8>, to: Vec<String>) -> OutgoingMail {
    OutgoingMail {
        to,
        subject: format!("{}: A security report has been created", data.tenant),
        text: mail_text(data),
        attachment: Some((format!("ampel-{}-{}.pdf", data.tenant, data.period_label), pdf)),
        ..OutgoingMail::default()
    }
}

fn end_ms(end: Option<jiff::Timestamp>) -> i64 {
    end.map_or_else(now_ms, |t| t.as_millisecond())
}

/// Runs a `report` subcommand.
pub async fn command(cfg: &Config, cmd: ReportCommand) -> Result<()> {
    if matches!(cmd, ReportCommand::List { .. } | ReportCommand::Resend { .. }) {
        return crate::schedule::commands::report(cfg, cmd).await;
    }
    let store = crate::cli::open_store(cfg)?;
    match cmd {
        ReportCommand::Preview { tenant, period, end, out, job: job_name } => {
            let started = std::time::Instant::now();
            let (data, pdf, tenant) = match job_name {
                // As the scheduler would render it: the job's period ending at --end (or now),
                // its language, widgets and time zone; its first tenant unless one is named.
                Some(name) => {
                    let job = job(cfg, &name)?;
                    let tenant = match tenant.or_else(|| job.tenants.first().cloned()) {
                        Some(t) => t,
                        None => anyhow::bail!("report job {name:?} has no tenants; name one with --tenant"),
                    };
                    let slot = jiff::Timestamp::from_millisecond(end_ms(end)).context("the end time is out of range")?;
                    let p = crate::schedule::due::period_of(job, slot);
                    let period = Period { start_ms: p.start.as_millisecond(), end_ms: p.end.as_millisecond(), label: p.label };
                    let (data, pdf) = render_in_zone(
                        &store,
                        cfg,
                        tenant.as_str(),
                        &period,
                        (job.language, &job.widgets, job.false_positives),
                        &job.time_zone.0,
                    )?;
                    (data, pdf, tenant)
                }
                None => {
                    let Some(tenant) = tenant else { anyhow::bail!("name the tenant with --tenant, or a report job with --job") };
                    let period = Period::parse(&period, end_ms(end)).map_err(anyhow::Error::msg)?;
                    let (data, pdf) = render(&store, cfg, tenant.as_str(), &period)?;
                    (data, pdf, tenant)
                }
            };
            write_atomic(&out, &pdf)?;
            println!(
                "{}: report of tenant {} ({} devices, {}, score {}), {} bytes in {} ms",
                out.display(),
                tenant,
                data.devices.len(),
                data.light.as_str(),
                data.score,
                pdf.len(),
                started.elapsed().as_millis()
            );
        }
        ReportCommand::Send { tenant, period, end, to } => {
            let period = Period::parse(&period, end_ms(end)).map_err(anyhow::Error::msg)?;
            let mailer = Mailer::new(&cfg.mail).context("setting up mail delivery")?;
            let (data, pdf) = render(&store, cfg, tenant.as_str(), &period)?;
            let delivery = mailer.send(&report_mail(&data, pdf, to.clone())).await.context("sending the report")?;
            match delivery.file {
                Some(f) => println!("report of tenant {tenant} written to {} (file transport)", f.display()),
                None => println!("report of tenant {tenant} sent to {} (message id {})", to.join(", "), delivery.message_id),
            }
        }
        // Answered above, before the main store is opened.
        ReportCommand::List { .. } | ReportCommand::Resend { .. } => {}
    }
    Ok(())
}

/// `mail test`.
pub async fn mail_test(cfg: &Config) -> Result<()> {
    let mailer = Mailer::new(&cfg.mail).context("setting up mail delivery")?;
    let summary = mailer.test_connection().await?;
    println!("{summary}");
    Ok(())
}
