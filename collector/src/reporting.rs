//! The one report path: a [`ReportRequest`] (tenant, period in its time zone, language,
//! widgets, depth) goes through [`report`] — store, risk engine, renderer with `[branding]` —
//! whoever asks: `report preview` (with and without `--job`), `report send`, the scheduler,
//! `demo`. Also the report mail of `report send` and `demo`, and `mail test`.

use std::path::Path;

use anyhow::{Context, Result};

use crate::assess;
use crate::assess::suppress::FalsePositives;
use crate::cli::{ReportChoices, ReportCommand};
use crate::config::Config;
use crate::ingest::quic::now_ms;
use crate::mail::{Mailer, OutgoingMail};
use crate::period::Period;
use crate::report::mail::{MailStrings, fill};
use crate::report::{self, Depth, Lang, ReportData, ReportOptions, Widget, Widgets, catalogue};
use crate::schedule::config::JobConfig;
use crate::store::{Store, StoreError};

/// What to report: everything that decides the PDF's bytes besides the data and the
/// configuration's `[branding]` and `[risk]`.
#[derive(Debug, Clone)]
pub struct ReportRequest {
    /// The tenant.
    pub tenant: String,
    /// The period; its time zone governs the dates, the per-day buckets and the previous
    /// period compared with.
    pub period: Period,
    /// Language of every word and of dates and numbers.
    pub lang: Lang,
    /// Widgets selected (empty: all).
    pub widgets: Vec<Widget>,
    /// How much of it.
    pub depth: Depth,
    /// What the report does with `[[suppress]]`ed false positives.
    pub false_positives: FalsePositives,
}

impl ReportRequest {
    /// The request report job `job` makes for `tenant` at send time `slot`, in the job's
    /// zone, language, widgets and depth.
    pub fn of_job(job: &JobConfig, tenant: &str, slot: jiff::Timestamp) -> Result<ReportRequest, crate::period::PeriodError> {
        Ok(ReportRequest {
            tenant: tenant.to_owned(),
            period: Period::ending_at(job.window(), job.week_start.0, slot, &job.time_zone.0)?,
            lang: job.language,
            widgets: job.widgets.clone(),
            depth: job.depth,
            false_positives: job.false_positives,
        })
    }
}

/// Why a report could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportingError {
    /// Reading the tenant's data from the store failed.
    #[error("gathering the data of tenant {tenant}")]
    Gather {
        /// The tenant.
        tenant: String,
        /// What the store said.
        source: StoreError,
    },
    /// The renderer failed.
    #[error("rendering the report of tenant {tenant}")]
    Render {
        /// The tenant.
        tenant: String,
        /// What the renderer said.
        source: report::ReportError,
    },
}

/// Gathers and renders `req`: the report's data (its period named in the request's
/// language) and the PDF. The same data, configuration and request give the same bytes.
pub fn report(store: &Store, cfg: &Config, req: &ReportRequest) -> Result<(ReportData, Vec<u8>), ReportingError> {
    let tenant = req.tenant.as_str();
    let mut data = assess::report_data(store, cfg, tenant, &req.period, req.false_positives)
        .map_err(|source| ReportingError::Gather { tenant: tenant.to_owned(), source })?;
    data.period_label = req.period.name(req.lang);
    let (theme, logo_error) = cfg.branding.theme_or_without_logo(tenant);
    if let Some(e) = logo_error {
        tracing::warn!(tenant, error = %e, config = %cfg.source.display(), "[branding] logo unusable; rendering the report without it");
    }
    let options = ReportOptions { lang: req.lang, widgets: Widgets::from_list(&req.widgets).at_depth(req.depth), theme };
    let pdf = report::render_with(&data, &options).map_err(|source| ReportingError::Render { tenant: tenant.to_owned(), source })?;
    Ok((data, pdf))
}

/// The attachment's file name: `ampel-acme-2026-w49.pdf` — ASCII, distinct per period.
pub fn attachment_name(tenant: &str, period: &Period) -> String {
    format!("ampel-{tenant}-{}.pdf", period.label())
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

/// Writes a PDF the CLI was asked for, whole or not at all (see [`crate::files::write_atomic`]).
pub fn write_pdf(path: &Path, bytes: &[u8]) -> Result<()> {
    crate::files::write_atomic(path, bytes, crate::files::FILE_MODE, true).with_context(|| format!("writing {}", path.display()))
}

/// The plain-text body of a report mail made by `report send` or `demo`: the light, the score
/// and what to do, in `lang`.
pub fn mail_text(data: &ReportData, period: &Period, lang: Lang) -> String {
    let m = MailStrings::get(lang);
    let score = data.score.to_string();
    let mut text = format!(
        "{}\n{}\n{}\n",
        fill(m.heading, &[("tenant", &data.tenant)]),
        fill(m.period_line, &[("period", &period.name(lang)), ("dates", &dates_text(period, lang))]),
        fill(m.overall_line, &[("light", m.light(data.light.as_str())), ("score", &score)]),
    );
    let findings = finding_lines(data, lang);
    if findings.is_empty() {
        text.push_str(&format!("\n{}\n", m.no_findings));
    } else {
        text.push_str(&format!("\n{}\n", m.attention));
        for line in findings {
            text.push_str(&format!("- {line}\n"));
        }
    }
    text.push_str(&format!("\n{}\n", m.attached));
    text
}

/// The ten worst findings as a mail lists them, one line each in `lang`:
/// `[High risk] fw-1: evidence — recommendation`. Every report mail uses these.
pub fn finding_lines(data: &ReportData, lang: Lang) -> Vec<String> {
    let s = report::strings::Strings::get(lang);
    let m = MailStrings::get(lang);
    let tz = data.zone();
    let line = |f: &crate::risk::Finding| {
        let device = f.device.as_deref().unwrap_or(m.tenant_wide);
        format!("[{}] {device}: {} \u{2014} {}", s.light(f.level), catalogue::evidence(f, lang, &tz), catalogue::recommendation(f, lang))
    };
    data.findings.iter().take(10).map(line).collect()
}

/// The bounds of `period` in its zone, in `lang`'s date format, with the zone:
/// `05.12.2026 00:00 – 06.12.2026 00:00 America/New_York`.
pub fn dates_text(period: &Period, lang: Lang) -> String {
    let s = report::strings::Strings::get(lang);
    let at = |ms: i64| period.local(ms).map(|z| format!("{} {:02}:{:02}", s.date(z.date()), z.hour(), z.minute())).unwrap_or_default();
    format!("{} \u{2013} {} {}", at(period.start_ms), at(period.end_ms), period.zone_name())
}

/// The mail carrying a report rendered for `report send` or `demo`.
pub fn report_mail(data: &ReportData, period: &Period, lang: Lang, pdf: Vec<u8>, to: Vec<String>) -> OutgoingMail {
    let m = MailStrings::get(lang);
    OutgoingMail {
        to,
        subject: fill(m.subject, &[("tenant", &data.tenant), ("period", &period.name(lang))]),
        text: mail_text(data, period, lang),
        attachment: Some((attachment_name(&data.tenant, period), pdf)),
        ..OutgoingMail::default()
    }
}

fn end_ms(end: Option<jiff::Timestamp>) -> i64 {
    end.map_or_else(now_ms, |t| t.as_millisecond())
}

/// The request of `report preview|send` without a job: English, every widget, the period in
/// the `[report]` time zone.
fn cli_request(cfg: &Config, tenant: &str, period: &str, end: Option<jiff::Timestamp>) -> Result<ReportRequest> {
    Ok(ReportRequest {
        tenant: tenant.to_owned(),
        period: Period::parse(period, end_ms(end), &cfg.report.time_zone.0)?,
        lang: Lang::En,
        widgets: Vec::new(),
        depth: Depth::Full,
        false_positives: FalsePositives::default(),
    })
}

/// `req` with the choices given on the command line in place of its own.
fn with_choices(mut req: ReportRequest, c: &ReportChoices) -> ReportRequest {
    req.lang = c.language.unwrap_or(req.lang);
    req.depth = c.depth.unwrap_or(req.depth);
    req.false_positives = c.false_positives.unwrap_or(req.false_positives);
    req
}

/// Runs a `report` subcommand.
pub async fn command(cfg: &Config, cmd: ReportCommand) -> Result<()> {
    if matches!(cmd, ReportCommand::List { .. } | ReportCommand::Resend { .. }) {
        return crate::schedule::commands::report(cfg, cmd).await;
    }
    let store = crate::cli::open_store(cfg)?;
    match cmd {
        ReportCommand::Preview { tenant, period, end, out, job: job_name, choices } => {
            let started = std::time::Instant::now();
            let req = match job_name {
                // As the scheduler renders it: the same request, the job's period ending at
                // --end (or now); its first tenant unless one is named.
                Some(name) => {
                    let job = job(cfg, &name)?;
                    let tenant = match tenant.or_else(|| job.tenants.first().cloned()) {
                        Some(t) => t,
                        None => anyhow::bail!("report job {name:?} has no tenants; name one with --tenant"),
                    };
                    let slot = jiff::Timestamp::from_millisecond(end_ms(end)).context("the end time is out of range")?;
                    ReportRequest::of_job(job, tenant.as_str(), slot)?
                }
                None => {
                    let Some(tenant) = tenant else { anyhow::bail!("name the tenant with --tenant, or a report job with --job") };
                    cli_request(cfg, tenant.as_str(), &period, end)?
                }
            };
            let req = with_choices(req, &choices);
            let (data, pdf) = report(&store, cfg, &req)?;
            write_pdf(&out, &pdf)?;
            println!(
                "{}: report of tenant {} for {} ({} devices, {}, score {}), {} bytes in {} ms",
                out.display(),
                req.tenant,
                req.period.name(req.lang),
                data.devices.len(),
                data.light.as_str(),
                data.score,
                pdf.len(),
                started.elapsed().as_millis()
            );
        }
        ReportCommand::Send { job: Some(job), tenant, .. } => {
            crate::schedule::commands::send_now(cfg, store, &job, tenant).await?;
        }
        ReportCommand::Send { tenant: None, .. } => anyhow::bail!("name the tenant with --tenant, or a report job with --job"),
        ReportCommand::Send { tenant: Some(tenant), period, end, to, choices, job: None } => {
            let req = with_choices(cli_request(cfg, tenant.as_str(), &period, end)?, &choices);
            let mailer = Mailer::new(&cfg.mail).context("setting up mail delivery")?;
            let (data, pdf) = report(&store, cfg, &req)?;
            let delivery = mailer.send(&report_mail(&data, &req.period, req.lang, pdf, to.clone())).await.context("sending the report")?;
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::sync::Arc;

    use ampel_protocol::{Batch, DeviceId, Identity, Metric, PROTOCOL_VERSION, Record, TenantId};

    use super::*;
    use crate::store::PendingBatch;

    const HOUR: i64 = 3_600_000;

    /// A collector whose `[report]` zone is Berlin, with a German daily job in New York.
    fn config(dir: &Path) -> Config {
        let src = format!(
            "data-dir = {:?}\n[report]\ntime-zone = \"Europe/Berlin\"\n[http]\nlisten = \"127.0.0.1:0\"\n\
             [[jobs]]\nname = \"nyc\"\ntenants = [\"acme\"]\nperiod = \"day\"\nsend = [\"daily 08:00\"]\n\
             time-zone = \"America/New_York\"\nlanguage = \"de\"\nto = \"ops@example.org\"\n",
            dir.display()
        );
        Config::parse(&dir.join("collector.toml"), &src).unwrap()
    }

    /// Device `fw-1` of `acme` sampled hourly from `from_ms` for two days.
    fn fill(store: &Store, from_ms: i64) {
        let me = Identity { tenant: TenantId::new("acme").unwrap(), device: DeviceId::new("fw-1").unwrap() };
        store.register_device(&me.tenant, &me.device, from_ms - 86_400_000).unwrap();
        let records = (0..48)
            .map(|h| Record::Metric(Metric { ts: from_ms + h * HOUR, name: "cpu.usage_percent".into(), labels: Vec::new(), value: 10.0 }))
            .collect();
        let batch = Batch { version: PROTOCOL_VERSION, seq: 1, sender: None, records };
        store.commit(&[PendingBatch { identity: me, batch, received_ms: from_ms + 48 * HOUR }]).unwrap();
    }

    /// The text of `pages` (e.g. `["-f", "1", "-l", "1"]`; empty: all) of `pdf`.
    fn pdf_text(pdf: &[u8], dir: &Path, pages: &[&str]) -> String {
        let path = dir.join("text.pdf");
        std::fs::write(&path, pdf).unwrap();
        let out = std::process::Command::new("pdftotext")
            .args(["-enc", "UTF-8"])
            .args(pages)
            .arg(&path)
            .arg("-")
            .output()
            .expect("pdftotext (poppler-utils) is needed by this test");
        String::from_utf8(out.stdout).unwrap()
    }

    /// `report preview --job` and the scheduler's renderer make the same request, so the same
    /// bytes: the job's zone and local dates, not the `[report]` zone's.
    #[tokio::test]
    async fn the_scheduled_pdf_and_preview_job_are_the_same_bytes_in_the_jobs_zone() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path());
        // 08:00 in New York on 6 Dec 2026 is 13:00 UTC; the report covers 5 Dec, New York time.
        let slot: jiff::Timestamp = "2026-12-06T13:00:00Z".parse().unwrap();
        fill(&crate::cli::open_store(&cfg).unwrap(), slot.as_millisecond() - 36 * HOUR);
        let out = dir.path().join("preview.pdf");
        let preview = |choices: ReportChoices| ReportCommand::Preview {
            tenant: None,
            job: Some("nyc".into()),
            period: "last-7d".into(),
            end: Some(slot),
            out: out.clone(),
            choices,
        };
        command(&cfg, preview(ReportChoices::default())).await.unwrap();
        let previewed = std::fs::read(&out).unwrap();

        let store = crate::cli::open_store(&cfg).unwrap();
        let req = ReportRequest::of_job(&cfg.jobs[0], "acme", slot).unwrap();
        let scheduled = crate::schedule::runner::store_renderer(store, Arc::new(cfg.clone()))(&req).unwrap();
        assert!(scheduled.pdf == previewed, "the scheduled PDF and the preview differ");

        let text = pdf_text(&previewed, dir.path(), &[]);
        assert!(text.contains("America/New_York") && !text.contains("Europe/Berlin"), "{text}");
        assert!(text.contains("05.12.2026 00:00") && text.contains("06.12.2026 00:00"), "local dates of the job's zone: {text}");
        let cover = pdf_text(&previewed, dir.path(), &["-f", "1", "-l", "1"]);
        assert!(cover.contains("05.12.2026") && !cover.contains("2026-12-05") && !cover.contains("(05.12.2026)"), "{cover}");
        // The period before, for the change since the last report, is New York's 4 December.
        assert!(text.contains("04.12.2026"), "{text}");

        // The edition another recipient of the job gets: English, a summary, same zone.
        let english = ReportChoices { language: Some(Lang::En), depth: Some(Depth::Summary), false_positives: None };
        command(&cfg, preview(english)).await.unwrap();
        let summary = std::fs::read(&out).unwrap();
        let text = pdf_text(&summary, dir.path(), &[]);
        assert!(text.contains("Security report") && text.contains("5 Dec 2026") && text.contains("America/New_York"), "{text}");
        assert!(summary.len() < previewed.len(), "the summary is not shorter than the full report");
    }

    /// `report send --job` goes through the scheduler: archived like a run, mailed to the
    /// job's confirmed recipients only, for the tenants asked for.
    #[tokio::test]
    async fn send_job_archives_and_mails_to_the_confirmed_recipients() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = dir.path().join("outbox");
        std::fs::create_dir_all(&outbox).unwrap();
        let src = format!(
            "data-dir = {:?}\n[http]\nlisten = \"127.0.0.1:0\"\n[mail]\nfrom = \"Ampel <ampel@localhost>\"\ntransport = \"file\"\noutbox = {:?}\n\
             [[jobs]]\nname = \"daily\"\ntenants = [\"acme\", \"globex\"]\nperiod = \"day\"\nsend = [\"daily 08:00\"]\nto = [\"ops@example.org\", \"new@example.org\"]\n",
            dir.path(),
            outbox
        );
        let cfg = Config::parse(&dir.path().join("collector.toml"), &src).unwrap();
        fill(&crate::cli::open_store(&cfg).unwrap(), now_ms() - 36 * HOUR);
        {
            let (delivery, _) = crate::schedule::commands::open(&cfg).unwrap();
            let ev = crate::schedule::ConsentEvent {
                at_ms: 0,
                address: "ops@example.org".into(),
                event: "confirmed".into(),
                source: "test".into(),
                detail: String::new(),
            };
            delivery.set_recipient_state("ops@example.org", crate::schedule::RecipientState::Confirmed, ev).unwrap();
        }
        use clap::Parser;
        let send = |args: &[&str]| {
            let cli = crate::cli::Cli::try_parse_from([["ampel-collector", "report", "send"].as_slice(), args].concat()).unwrap();
            let crate::cli::Command::Report(cmd) = cli.command else { panic!("not a report command") };
            command(&cfg, cmd)
        };
        let err = send(&["--job", "daily", "--tenant", "initech"]).await.unwrap_err();
        assert!(err.to_string().contains("not one of job daily's tenants"), "{err}");
        send(&["--job", "daily", "--tenant", "acme"]).await.unwrap();
        let (delivery, _) = crate::schedule::commands::open(&cfg).unwrap();
        let reports = delivery.reports().unwrap();
        let made: Vec<(&str, &str, &[String])> =
            reports.iter().map(|r| (r.job.as_str(), r.tenant.as_str(), r.recipients.as_slice())).collect();
        assert_eq!(made, [("daily", "acme", ["ops@example.org".to_owned()].as_slice())]);
        assert_eq!(std::fs::read_dir(&outbox).unwrap().count(), 1, "one mail, to the confirmed address");
        assert!(crate::cli::Cli::try_parse_from(["ampel-collector", "report", "send", "--job", "daily", "--to", "x@example.org"]).is_err());
    }

    #[test]
    fn report_choices_are_spelt_as_in_the_configuration() {
        use clap::Parser;
        let cli = crate::cli::Cli::try_parse_from([
            "ampel-collector",
            "report",
            "preview",
            "--tenant",
            "acme",
            "--out",
            "x.pdf",
            "--language",
            "de",
            "--depth",
            "summary",
            "--false-positives",
            "include",
        ])
        .unwrap();
        let crate::cli::Command::Report(ReportCommand::Preview { choices, .. }) = cli.command else { panic!("not a preview") };
        assert_eq!((choices.language, choices.depth), (Some(Lang::De), Some(Depth::Summary)));
        assert_eq!(choices.false_positives, Some(FalsePositives::Include));
        let wrong =
            crate::cli::Cli::try_parse_from(["ampel-collector", "report", "preview", "--tenant", "a", "--out", "x", "--language", "fr"]);
        assert!(wrong.unwrap_err().to_string().contains("unknown variant `fr`, expected `en` or `de`"));
    }

    #[test]
    fn finding_lines_speak_the_mails_language() {
        let data = report::synthetic::rich(3, 1, 10 * 60_000);
        assert!(!data.findings.is_empty());
        let de = finding_lines(&data, Lang::De);
        let light_names = ["[Hohes Risiko]", "[Gefährdet]", "[In Ordnung]", "[Keine Daten]"];
        for (line, f) in de.iter().zip(&data.findings) {
            let advice = crate::report::catalogue::recommendation(f, Lang::De);
            assert!(light_names.iter().any(|l| line.starts_with(l)) && line.ends_with(&advice), "{line}");
            assert!(line.contains(&crate::report::catalogue::evidence(f, Lang::De, &data.zone())), "{line}");
        }
        assert!(finding_lines(&data, Lang::En).iter().all(|l| !l.contains("Hohes Risiko")));
    }

    #[test]
    fn a_summary_keeps_the_cover_summary_overview_and_findings() {
        let all = Widgets::from_list(&[]).at_depth(Depth::Summary);
        assert_eq!(all.names(), "summary, overview, recommendations");
        assert_eq!(Widgets::from_list(&[Widget::Threats, Widget::Summary]).at_depth(Depth::Summary).names(), "summary");
        assert!(Widgets::from_list(&[]).at_depth(Depth::Full).is_all());
    }
}
