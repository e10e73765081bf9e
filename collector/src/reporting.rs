//! `report preview`, `report send` and `mail test`: the store, the risk engine, the renderer and
//! the mailer in sequence.

use std::path::Path;

use anyhow::{Context, Result};

use crate::assess::{self, Period};
use crate::cli::ReportCommand;
use crate::config::Config;
use crate::ingest::quic::now_ms;
use crate::mail::{Mailer, OutgoingMail};
use crate::report::{self, ReportData};
use crate::store::Store;

/// Renders a tenant's report for a period.
pub fn render(store: &Store, cfg: &Config, tenant: &str, period: &Period) -> Result<(ReportData, Vec<u8>)> {
    let data = assess::report_data(store, cfg, tenant, period).with_context(|| format!("gathering data of tenant {tenant}"))?;
    let pdf = report::render(&data).with_context(|| format!("rendering the report of tenant {tenant}"))?;
    Ok((data, pdf))
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
        for f in data.findings.iter().take(10) {
            s.push_str(&format!(
                "- [{}] {}: {}\n  {}\n",
                f.level.as_str(),
                f.device.as_deref().unwrap_or("tenant"),
                f.evidence,
                f.recommendation
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
    let store = Store::open(&cfg.store_dir(), cfg.store_options())
        .with_context(|| format!("opening the store in {}", cfg.store_dir().display()))?;
    match cmd {
        ReportCommand::Preview { tenant, period, end, out } => {
            let period = Period::parse(&period, end_ms(end)).map_err(anyhow::Error::msg)?;
            let started = std::time::Instant::now();
            let (data, pdf) = render(&store, cfg, tenant.as_str(), &period)?;
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
