//! The scheduler: once a minute (and at each slot) it asks [`due`](super::due::due) what is
//! due, renders, archives and mails. One task; the renderer runs on the blocking pool.
//!
//! Restart safety, step by step:
//! 1. a job seen for the first time gets the cursor "now" (nothing from its past is sent);
//! 2. per tenant of a due run, the PDF is rendered, archived and recorded as `pending`
//!    *before* any mail goes out; each recipient delivered is added to the record at once;
//! 3. the job's cursor moves past the slot only when every tenant's record is final (sent,
//!    failed after all attempts, or no recipients).
//!
//! So a restart in the middle of a run finds the slot still due, skips finished tenants and
//! recipients already served, and resumes the rest from the archived file: nobody gets a
//! report twice, and nothing is silently skipped. A render error leaves the cursor where it
//! is, so the run is retried at the next tick.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use jiff::Timestamp;
use tokio::sync::watch;

use super::config::{DeliveryConfig, DeliveryMode, JobConfig};
use super::due;
use super::store::{ArchiveRecord, ArchiveStatus, ArchivedEdition, DeliveryStore, DeliveryStoreError, RecipientState, Resend};
use crate::archive::{self, Archive, ArchiveError};
use crate::mail::{MailError, Mailer, OutgoingMail};
use crate::period::{Period, PeriodError};
use crate::recipients::{self, Links};
use crate::report::mail::{MailStrings, fill};
use crate::report::{Edition, Lang};
use crate::reporting::{ReportRequest, attachment_name, dates_text};

/// Why a scheduler step failed.
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    /// The delivery store failed.
    #[error(transparent)]
    Store(#[from] DeliveryStoreError),
    /// An archive file could not be written or read.
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    /// The report could not be rendered; the run is retried at the next tick.
    #[error("rendering the report of tenant {tenant} failed")]
    Render {
        /// The tenant.
        tenant: String,
        /// What the renderer said.
        source: RenderError,
    },
    /// The job's period could not be computed (a date out of range, tzdata gone).
    #[error("the period of job {job:?}")]
    Period {
        /// The job.
        job: String,
        /// Why.
        source: PeriodError,
    },
    /// A mail could not be built (a bad address or header value).
    #[error(transparent)]
    Mail(#[from] MailError),
    /// `report resend` named a report that does not exist.
    #[error("there is no report {0}; see `ampel-collector report list`")]
    NoSuchReport(u64),
    /// `report resend` found nobody to send to: none of the job's addresses has confirmed.
    #[error(
        "report {id}: none of job {job:?}'s recipients has confirmed, so there is nobody to send it to; see `ampel-collector recipients`"
    )]
    NobodyToSend {
        /// The report.
        id: u64,
        /// Its job.
        job: String,
    },
    /// `recipients invite` named an address or job that does not fit.
    #[error("{address} is not among the to and cc addresses of job {job:?}; add it to that [[jobs]] table first")]
    NotInJob {
        /// The address.
        address: String,
        /// The job.
        job: String,
    },
    /// A job was named (`recipients invite`, `report send --job`, the console) that is not in
    /// the configuration.
    #[error("there is no report job {0:?} in the configuration")]
    UnknownJob(String),
    /// `report resend` named a report whose job is no longer configured.
    #[error("report {id} belongs to job {job:?}, which is no longer in the configuration")]
    NoSuchJob {
        /// The report.
        id: u64,
        /// Its job.
        job: String,
    },
}

/// A rendered report and the summary the mail shows.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// `green`, `yellow`, `red` or `grey`.
    pub light: String,
    /// 0–100.
    pub score: u8,
    /// Top findings, one line each, in the request's language (empty: all in order).
    pub findings: Vec<String>,
    /// The PDF.
    pub pdf: Vec<u8>,
}

/// How a report mail carries the PDF.
enum Carrier {
    /// A signed, expiring download link.
    Link(String),
    /// The PDF, attached.
    Pdf(Vec<u8>),
}

/// Why the renderer failed: the report path's error, or a test renderer's.
pub type RenderError = Box<dyn std::error::Error + Send + Sync>;

/// Renders a report; injected so tests need no PDF renderer. Runs on the blocking pool.
pub type RenderFn = Arc<dyn Fn(&ReportRequest) -> Result<Rendered, RenderError> + Send + Sync>;

/// The real renderer: the one report path ([`crate::reporting::report`]).
pub fn store_renderer(store: crate::store::Store, cfg: Arc<crate::config::Config>) -> RenderFn {
    Arc::new(move |req: &ReportRequest| {
        let (data, pdf) = crate::reporting::report(&store, &cfg, req)?;
        let findings = crate::reporting::finding_lines(&data, req.lang);
        Ok(Rendered { light: data.light.as_str().to_owned(), score: data.score, findings, pdf })
    })
}

/// Delivery counters for `/metrics`.
#[derive(Debug, Default)]
pub struct DeliveryStats {
    /// Reports rendered and archived.
    pub reports: AtomicU64,
    /// Report mails accepted (one per recipient).
    pub mails_sent: AtomicU64,
    /// Report mail attempts that failed.
    pub mail_failures: AtomicU64,
    /// Invitations sent.
    pub invitations: AtomicU64,
    /// Reminders sent to invited addresses that had not confirmed.
    pub reminders: AtomicU64,
    /// Reports that reached nobody: no recipient of the job had confirmed.
    pub reports_unserved: AtomicU64,
    /// Runs sent late (after downtime).
    pub runs_late: AtomicU64,
    /// Slots skipped (missed while down).
    pub runs_skipped: AtomicU64,
}

/// The scheduler with everything it needs.
pub struct Scheduler {
    /// The jobs.
    pub jobs: Vec<JobConfig>,
    /// `[delivery]`.
    pub delivery: DeliveryConfig,
    /// Scheduler state, recipients, archive index.
    pub store: DeliveryStore,
    /// Archive files.
    pub archive: Archive,
    /// Mail delivery.
    pub mailer: Arc<Mailer>,
    /// Link building.
    pub links: Links,
    /// The renderer.
    pub render: RenderFn,
    /// Counters.
    pub stats: Arc<DeliveryStats>,
}

/// `e` and its causes, `: `-separated, as `{:#}` of anyhow shows them.
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    out
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn light_colour(light: &str) -> &'static str {
    match light {
        "red" => "#d32f2f",
        "yellow" => "#f9a825",
        "green" => "#2e7d32",
        _ => "#757575",
    }
}

impl Scheduler {
    /// One step at `now`: make sure every job has a cursor, invite new recipients, and run
    /// what is due. Returns the ids of the reports made or finished.
    pub async fn tick(&self, now: Timestamp) -> Result<Vec<u64>, ScheduleError> {
        let names: Vec<&str> = self.jobs.iter().map(|j| j.name.0.as_str()).collect();
        self.store.init_cursors(&names, due::initial_cursor(now))?;
        self.invite(now).await?;
        self.remind(now).await?;
        let cursors = self.store.cursors()?;
        let mut ids = Vec::new();
        for d in due::due(&self.jobs, &cursors, now, &self.delivery) {
            let Some(job) = self.jobs.iter().find(|j| j.name.0 == d.job) else { continue };
            for s in &d.skipped {
                tracing::warn!(job = %d.job, slot = %s, "a run missed while the collector was down is skipped; only the latest is sent");
                self.stats.runs_skipped.fetch_add(1, Ordering::Relaxed);
            }
            if d.send {
                if d.late {
                    tracing::warn!(job = %d.job, slot = %d.slot, "sending a run late");
                    self.stats.runs_late.fetch_add(1, Ordering::Relaxed);
                }
                ids.extend(self.run(job, d.slot, d.late, now).await?);
            } else {
                tracing::warn!(job = %d.job, slot = %d.slot, "missed run skipped (missed = \"skip\")");
                self.stats.runs_skipped.fetch_add(1, Ordering::Relaxed);
            }
            self.store.set_cursor(&d.job, d.slot.as_millisecond())?;
        }
        Ok(ids)
    }

    /// Sends an invitation to every address of an enabled job not known yet.
    async fn invite(&self, now: Timestamp) -> Result<(), ScheduleError> {
        let now_ms = now.as_millisecond();
        for job in self.jobs.iter().filter(|j| j.enabled) {
            for mailbox in job.to.0.iter().chain(&job.cc.0) {
                let address = recipients::bare(mailbox);
                if self.store.recipient(&address)?.is_some() {
                    continue;
                }
                match self.send_invitation(job, mailbox, now, now_ms, false).await {
                    Ok(()) => {
                        recipients::record_invitation(&self.store, &address, &job.name.0, now_ms)?;
                        self.stats.invitations.fetch_add(1, Ordering::Relaxed);
                        tracing::info!(job = %job.name, "invitation sent");
                        tracing::debug!(job = %job.name, recipient = %address, "invited");
                    }
                    // Not recorded: tried again at the next tick.
                    Err(e) => {
                        tracing::warn!(job = %job.name, error = %recipients::redact_addresses(&e.to_string()), "invitation not sent; retrying at the next tick");
                        tracing::debug!(job = %job.name, recipient = %address, error = %e, "invitation not sent");
                        if matches!(e, MailError::Connection(_)) {
                            // The server is unreachable: do not wait out a timeout per address.
                            return Ok(());
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Mails `mailbox` an invitation (or its one reminder) for `job`, with a fresh confirm link
    /// for the invitation recorded (or to be recorded) at `invited_ms`.
    async fn send_invitation(
        &self,
        job: &JobConfig,
        mailbox: &str,
        now: Timestamp,
        invited_ms: i64,
        reminder: bool,
    ) -> Result<(), MailError> {
        let address = recipients::bare(mailbox);
        let tenants: Vec<String> = job.tenants.iter().map(|t| t.as_str().to_owned()).collect();
        let expires = now.as_millisecond().saturating_add(self.delivery.invite_ttl.as_ms());
        // In the recipient's own language where its entry gives one.
        let lang = job.edition_of(mailbox).lang;
        let confirm = self.links.confirm_url(&address, invited_ms, expires, lang);
        let unsubscribe =
            self.links.unsubscribe_url(&address, now.as_millisecond().saturating_add(self.delivery.unsubscribe_ttl.as_ms()), lang);
        let mail = recipients::invitation(lang, mailbox, &tenants, &confirm, &unsubscribe, reminder);
        self.mailer.send(&mail).await.map(|_| ())
    }

    /// Reminds, once, every address still invited `remind-after` after its invitation, and
    /// marks it `expired` when the reminder's confirm link has expired too.
    async fn remind(&self, now: Timestamp) -> Result<(), ScheduleError> {
        let now_ms = now.as_millisecond();
        for job in self.jobs.iter().filter(|j| j.enabled) {
            for mailbox in job.to.0.iter().chain(&job.cc.0) {
                let address = recipients::bare(mailbox);
                let Some(r) = self.store.recipient(&address)?.filter(|r| r.state == RecipientState::Invited) else { continue };
                match r.reminded_ms {
                    Some(at)
                        if now_ms >= at.saturating_add(self.delivery.invite_ttl.as_ms())
                            && recipients::expire(&self.store, &address, now_ms)? =>
                    {
                        tracing::warn!(job = %job.name, "an invited recipient never confirmed, not even after the reminder: marked expired (`ampel-collector recipients invite` invites again)");
                        tracing::debug!(recipient = %address, "expired");
                    }
                    None if now_ms >= r.invited_ms.saturating_add(self.delivery.remind_after.as_ms()) => {
                        if let Err(e) = self.send_invitation(job, mailbox, now, r.invited_ms, true).await {
                            tracing::warn!(job = %job.name, error = %recipients::redact_addresses(&e.to_string()), "reminder not sent; retrying at the next tick");
                            tracing::debug!(job = %job.name, recipient = %address, error = %e, "reminder not sent");
                            continue;
                        }
                        if recipients::record_reminder(&self.store, &address, &job.name.0, now_ms)? {
                            self.stats.reminders.fetch_add(1, Ordering::Relaxed);
                            tracing::info!(job = %job.name, "reminder sent to an invited recipient who has not confirmed");
                            tracing::debug!(recipient = %address, "reminded");
                        }
                    }
                    _ => {}
                }
            }
        }
        Ok(())
    }

    /// When the next reminder or expiry falls due, so the loop wakes for it.
    fn next_recipient_event(&self) -> Option<Timestamp> {
        let list = self.store.recipients().ok()?;
        let at = list
            .iter()
            .filter(|r| r.state == RecipientState::Invited)
            .map(|r| match r.reminded_ms {
                Some(at) => at.saturating_add(self.delivery.invite_ttl.as_ms()),
                None => r.invited_ms.saturating_add(self.delivery.remind_after.as_ms()),
            })
            .min()?;
        Timestamp::from_millisecond(at).ok()
    }

    /// `recipients invite ADDRESS --job J` and the console's invite: mails an invitation now
    /// and restarts the address's opt-in for the job (see [`recipients::reinvite`]); `source`
    /// goes into the consent log (`cli`, or the console user and address). A confirmed address
    /// gets no mail. Returns the state the address had.
    pub async fn invite_now(
        &self,
        job: &str,
        address: &str,
        source: &str,
        now: Timestamp,
    ) -> Result<Option<RecipientState>, ScheduleError> {
        let job = self.job(job)?;
        let bare = recipients::bare(address);
        let Some(mailbox) = job.to.0.iter().chain(&job.cc.0).find(|m| recipients::bare(m) == bare) else {
            return Err(ScheduleError::NotInJob { address: address.into(), job: job.name.0.clone() });
        };
        let before = self.store.recipient(&bare)?.map(|r| r.state);
        if before != Some(RecipientState::Confirmed) {
            // `reinvite` below records the invitation at `now`: the link names it.
            self.send_invitation(job, mailbox, now, now.as_millisecond(), false).await?;
            self.stats.invitations.fetch_add(1, Ordering::Relaxed);
        }
        recipients::reinvite(&self.store, &bare, &job.name.0, source, now.as_millisecond())?;
        Ok(before)
    }

    /// The configured job `name`.
    fn job(&self, name: &str) -> Result<&JobConfig, ScheduleError> {
        self.jobs.iter().find(|j| j.name.0 == name).ok_or_else(|| ScheduleError::UnknownJob(name.to_owned()))
    }

    /// The console's "send now" and `report send --job`: renders, archives and delivers job
    /// `job`'s report of the period ending now for each of its tenants in `tenants` (the others
    /// are left alone), exactly as a scheduled run at `now` would — the same request, archive
    /// and delivery. The job's cursor does not move: its next scheduled run still comes.
    /// Returns the archive records made.
    pub async fn send_now(&self, job: &str, tenants: &[String], now: Timestamp) -> Result<Vec<ArchiveRecord>, ScheduleError> {
        let job = self.job(job)?;
        let mut done = Vec::new();
        for tenant in job.tenants.iter().map(|t| t.as_str()).filter(|t| tenants.iter().any(|x| x == t)) {
            if let Some(rec) = self.run_tenant(job, tenant, now, false, now).await? {
                done.push(rec);
            }
        }
        Ok(done)
    }

    /// Renders, archives and delivers one slot of a job, tenant by tenant, skipping what a run
    /// before a restart already finished.
    async fn run(&self, job: &JobConfig, slot: Timestamp, late: bool, now: Timestamp) -> Result<Vec<u64>, ScheduleError> {
        let mut ids = Vec::new();
        for tenant in &job.tenants {
            if let Some(rec) = self.run_tenant(job, tenant.as_str(), slot, late, now).await? {
                ids.push(rec.id);
            }
        }
        Ok(ids)
    }

    /// One tenant of a run: its report rendered, archived and delivered, or resumed from the
    /// archive after a restart; `None` when a run before a restart finished it.
    async fn run_tenant(
        &self,
        job: &JobConfig,
        tenant: &str,
        slot: Timestamp,
        late: bool,
        now: Timestamp,
    ) -> Result<Option<ArchiveRecord>, ScheduleError> {
        let mut rec = match self.store.report_of_run(&job.name.0, slot.as_millisecond(), tenant)? {
            Some(r) if r.status != ArchiveStatus::Pending => return Ok(None),
            Some(r) => {
                tracing::info!(job = %job.name, tenant, report = r.id, "resuming a delivery interrupted by a restart");
                r
            }
            None => self.render_and_archive(job, tenant, slot, late, now).await?,
        };
        self.deliver(job, &mut rec, now).await?;
        Ok(Some(rec))
    }

    /// Renders `edition` of `tenant`'s report for `slot` on the blocking pool.
    async fn render(&self, job: &JobConfig, tenant: &str, slot: Timestamp, edition: Edition) -> Result<(Period, Rendered), ScheduleError> {
        let mut req =
            ReportRequest::of_job(job, tenant, slot).map_err(|source| ScheduleError::Period { job: job.name.0.clone(), source })?;
        (req.lang, req.depth) = (edition.lang, edition.depth);
        let period = req.period.clone();
        let render = Arc::clone(&self.render);
        let rendered = tokio::task::spawn_blocking(move || render(&req))
            .await
            .map_err(|e| ScheduleError::Render { tenant: tenant.to_owned(), source: Box::new(e) })?
            .map_err(|source| ScheduleError::Render { tenant: tenant.to_owned(), source })?;
        Ok((period, rendered))
    }

    /// Writes one rendering and its mail summary to the archive.
    fn keep(
        &self,
        job: &JobConfig,
        tenant: &str,
        slot: Timestamp,
        (period, edition): (&Period, Edition),
        rendered: &Rendered,
        own: bool,
    ) -> Result<ArchivedEdition, ScheduleError> {
        let label = period.label();
        let name = if own { label } else { format!("{label}-{}-{}", edition.lang.code(), edition.depth.name()) };
        let file = archive::file_name(&job.name.0, slot.as_millisecond(), tenant, &name);
        self.archive.write(&file, &rendered.pdf)?;
        // The mail summary is kept beside the PDF so a resumed or resent delivery shows it.
        self.archive.write(&archive::summary_name(&file), rendered.findings.join("\n").as_bytes())?;
        Ok(ArchivedEdition { edition, file, bytes: rendered.pdf.len() as u64 })
    }

    /// Renders every edition the job's recipients ask for (the job's own first), archives
    /// each with the mail summary beside it, and records the report as pending.
    async fn render_and_archive(
        &self,
        job: &JobConfig,
        tenant: &str,
        slot: Timestamp,
        late: bool,
        now: Timestamp,
    ) -> Result<ArchiveRecord, ScheduleError> {
        // The job's own edition first: its file keeps the name of a single-edition report,
        // its verdict (the same in every edition) goes into the record.
        let own = Edition { lang: job.language, depth: job.depth };
        let (period, first) = self.render(job, tenant, slot, own).await?;
        let own_rendering = self.keep(job, tenant, slot, (&period, own), &first, true)?;
        let mut editions = vec![own_rendering.clone()];
        for edition in job.editions().into_iter().filter(|e| *e != own) {
            let (_, rendered) = self.render(job, tenant, slot, edition).await?;
            editions.push(self.keep(job, tenant, slot, (&period, edition), &rendered, false)?);
        }
        let (light, score, own) = (first.light, first.score, own_rendering);
        let mut rec = ArchiveRecord {
            id: 0,
            job: job.name.0.clone(),
            tenant: tenant.to_owned(),
            slot_ms: slot.as_millisecond(),
            period_start_ms: period.start_ms,
            period_end_ms: period.end_ms,
            period_label: period.label(),
            created_ms: now.as_millisecond(),
            file: own.file,
            bytes: own.bytes,
            light,
            score,
            late,
            mode: String::new(),
            recipients: Vec::new(),
            status: ArchiveStatus::Pending,
            attempts: 0,
            last_error: None,
            message_id: None,
            link_reason: None,
            resends: Vec::new(),
            editions,
            delivered: Default::default(),
        };
        rec.id = self.store.add_report(rec.clone())?;
        self.stats.reports.fetch_add(1, Ordering::Relaxed);
        tracing::info!(job = %job.name, tenant, report = rec.id, light = %rec.light, bytes = rec.bytes, editions = rec.editions.len(), "report archived");
        Ok(rec)
    }

    /// Why the PDF goes as a link (`None`: attached): always for `link`, never for
    /// `attachment`, and for `auto` when it exceeds `max-attachment-bytes` or the encoded mail
    /// the server's SIZE.
    async fn link_reason(&self, mode: DeliveryMode, bytes: u64) -> Option<String> {
        match mode {
            DeliveryMode::Attachment => None,
            DeliveryMode::Link => Some("delivery = \"link\"".into()),
            DeliveryMode::Auto if bytes > self.delivery.max_attachment_bytes => {
                Some(format!("{bytes} bytes exceed max-attachment-bytes ({})", self.delivery.max_attachment_bytes))
            }
            DeliveryMode::Auto => self.server_refuses(bytes).await,
        }
    }

    /// Why the SMTP server would refuse the PDF attached: the encoded mail exceeds its SIZE.
    async fn server_refuses(&self, bytes: u64) -> Option<String> {
        // base64 grows by 4/3 plus line breaks; 16 KiB for headers, text and HTML.
        let encoded = bytes / 57 * 78 + 78 + 16 * 1024;
        match self.mailer.size_limit().await {
            Ok(Some(max)) if encoded > max => {
                Some(format!("the mail server takes at most {max} bytes (SIZE); with the PDF attached the mail has about {encoded}"))
            }
            Ok(_) => None,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the SMTP server's SIZE; using max-attachment-bytes only");
                None
            }
        }
    }

    /// The job's confirmed `to` and `cc` mailboxes.
    fn audience(&self, job: &JobConfig) -> Result<(Vec<String>, Vec<String>), ScheduleError> {
        Ok((recipients::confirmed(&self.store, &job.name.0, &job.to.0)?, recipients::confirmed(&self.store, &job.name.0, &job.cc.0)?))
    }

    /// Everyone in `to` and `cc`, each address once.
    fn targets(to: &[String], cc: &[String]) -> Vec<String> {
        let mut seen = std::collections::HashSet::new();
        to.iter().chain(cc).filter(|m| seen.insert(recipients::bare(m))).cloned().collect()
    }

    /// The rendering `target` gets, with its index in [`ArchiveRecord::renderings`]: on a
    /// resend the one it got before, else the edition the job gives it. One the report was not
    /// rendered in (the recipient's language or depth changed since) falls back to the job's
    /// own, logged.
    fn rendering_for(job: &JobConfig, rec: &ArchiveRecord, target: &str, resend: bool) -> (usize, ArchivedEdition) {
        let own = Edition { lang: job.language, depth: job.depth };
        let renderings = rec.renderings(own);
        let got = if resend { rec.delivered.get(target).copied() } else { None };
        let wanted = got.unwrap_or_else(|| job.edition_of(target));
        match renderings.into_iter().enumerate().find(|(_, r)| r.edition == wanted) {
            Some(found) => found,
            None => {
                tracing::info!(job = %job.name, report = rec.id, language = wanted.lang.code(), depth = wanted.depth.name(),
                    "the report was not rendered in this recipient's language and depth; sending the job's own");
                // `file` is always the first rendering, the job's own.
                (0, ArchivedEdition { edition: own, file: rec.file.clone(), bytes: rec.bytes })
            }
        }
    }

    /// The report mail of rendering `index` of `rec` for the job's confirmed recipients, the
    /// PDF attached or (with `link`) a fresh download link, in the rendering's language.
    fn prepare(
        &self,
        job: &JobConfig,
        rec: &ArchiveRecord,
        (index, rendering): (usize, &ArchivedEdition),
        link: bool,
        now: Timestamp,
    ) -> Result<OutgoingMail, ScheduleError> {
        // A missing summary is an error, not "no findings": the mail would say all is well.
        let summary = String::from_utf8_lossy(&self.archive.read(&archive::summary_name(&rendering.file))?).into_owned();
        let (to, cc) = self.audience(job)?;
        let lang = rendering.edition.lang;
        let carrier = if link {
            let expires = now.as_millisecond().saturating_add(self.delivery.link_ttl.as_ms());
            Carrier::Link(self.links.download_url(rec.id, index, expires, lang))
        } else {
            Carrier::Pdf(self.archive.read(&rendering.file)?)
        };
        self.mail_for(job, rec, lang, (to, cc), &summary, carrier)
    }

    /// When an unsubscribe link made now expires.
    fn unsubscribe_expiry(&self) -> i64 {
        Timestamp::now().as_millisecond().saturating_add(self.delivery.unsubscribe_ttl.as_ms())
    }

    /// Sends `base` to `target` alone (its envelope and its own unsubscribe link), retrying
    /// with backoff; `attempts` counts the tries.
    async fn send_to(
        &self,
        job: &JobConfig,
        rec: &ArchiveRecord,
        base: &OutgoingMail,
        target: &str,
        attempts: &mut u32,
    ) -> Result<crate::mail::Delivery, MailError> {
        let address = recipients::bare(target);
        let mail = OutgoingMail {
            envelope_to: Some(target.to_owned()),
            list_unsubscribe: Some(self.links.unsubscribe_url(&address, self.unsubscribe_expiry(), job.edition_of(target).lang)),
            ..base.clone()
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            *attempts += 1;
            match self.mailer.send(&mail).await {
                Ok(d) => {
                    self.stats.mails_sent.fetch_add(1, Ordering::Relaxed);
                    return Ok(d);
                }
                Err(e) => {
                    self.stats.mail_failures.fetch_add(1, Ordering::Relaxed);
                    let shown = recipients::redact_addresses(&e.to_string());
                    tracing::warn!(job = %job.name, tenant = %rec.tenant, report = rec.id, attempt, error = %shown, "report mail not delivered");
                    tracing::debug!(report = rec.id, recipient = %address, error = %e, "the recipient of the failed report mail");
                    // The same mail will not get better; nor will more tries help past the last.
                    let hopeless =
                        matches!(e, MailError::InvalidRecipient { .. } | MailError::HeaderInjection { .. } | MailError::Build(_));
                    if hopeless || attempt >= self.delivery.attempts.max(1) {
                        return Err(e);
                    }
                    let wait = self.delivery.retry_backoff.0.saturating_mul(1 << (attempt - 1).min(16));
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    /// The period an archived report of `job` covers, in the job's zone.
    fn period_of(job: &JobConfig, rec: &ArchiveRecord) -> Result<Period, ScheduleError> {
        Period::of_record(rec.period_start_ms, rec.period_end_ms, &rec.period_label, &job.time_zone.0)
            .map_err(|source| ScheduleError::Period { job: job.name.0.clone(), source })
    }

    fn mail_for(
        &self,
        job: &JobConfig,
        rec: &ArchiveRecord,
        lang: Lang,
        (to, cc): (Vec<String>, Vec<String>),
        summary: &str,
        carrier: Carrier,
    ) -> Result<OutgoingMail, ScheduleError> {
        let period = &Self::period_of(job, rec)?;
        let (link, pdf) = match carrier {
            Carrier::Link(url) => (Some(url), None),
            Carrier::Pdf(pdf) => (None, Some(pdf)),
        };
        let link = link.as_deref();
        let m = MailStrings::get(lang);
        let name = period.name(lang);
        let template = job.subject.as_ref().map_or(m.subject, |s| s.0.as_str());
        let subject = fill(template, &[("tenant", &rec.tenant), ("period", &name)]);
        let late = if rec.late { format!("{}\n\n", m.late) } else { String::new() };
        let period_line = fill(m.period_line, &[("period", &name), ("dates", &dates_text(period, lang))]);
        let score = rec.score.to_string();
        let head = format!(
            "{}\n{period_line}\n{}\n",
            fill(m.heading, &[("tenant", &rec.tenant)]),
            fill(m.overall_line, &[("light", m.light(&rec.light)), ("score", &score)])
        );
        let findings = if summary.trim().is_empty() { format!("\n{}\n", m.no_findings) } else { format!("\n{}\n{summary}\n", m.attention) };
        let tail = match link {
            Some(url) => format!("\n{}\n{url}\n", m.download_intro),
            None => format!("\n{}\n", m.attached),
        };
        let message = if job.message.is_empty() { String::new() } else { format!("{}\n\n", job.message) };
        let text = format!("{late}{message}{head}{findings}{tail}");
        let colour = light_colour(&rec.light);
        let items: String = summary.lines().filter(|l| !l.is_empty()).map(|l| format!("<li>{}</li>", html_escape(l))).collect();
        let closing = match link {
            Some(url) => format!("<a href=\"{}\">{}</a>", html_escape(url), html_escape(m.download_link)),
            None => html_escape(m.attached),
        };
        let html = format!(
            "<!DOCTYPE html><html lang=\"{}\"><body style=\"font-family:sans-serif\">{}{}<h2>{}</h2>\
             <p><span style=\"display:inline-block;width:14px;height:14px;border-radius:7px;background:{colour}\"></span> \
             <strong>{}</strong> — {} {}/100</p><p>{}</p>{}<p>{closing}</p></body></html>",
            lang.code(),
            html_escape(late.trim()),
            html_escape(&job.message).replace('\n', "<br>"),
            html_escape(&format!("{} — {period_line}", rec.tenant)),
            html_escape(m.light(&rec.light)),
            m.score,
            rec.score,
            if items.is_empty() { html_escape(findings.trim()) } else { String::new() },
            if items.is_empty() { String::new() } else { format!("<ul>{items}</ul>") },
        );
        Ok(OutgoingMail {
            to,
            cc,
            subject,
            text,
            html: Some(html),
            attachment: pdf.map(|p| (attachment_name(&rec.tenant, period), p)),
            ..OutgoingMail::default()
        })
    }

    /// Delivers an archived report to every confirmed recipient of its job not served yet,
    /// each with their own copy and unsubscribe link, retrying with backoff. Updates `rec`.
    async fn deliver(&self, job: &JobConfig, rec: &mut ArchiveRecord, now: Timestamp) -> Result<(), ScheduleError> {
        let (to, cc) = self.audience(job)?;
        let targets = Self::targets(&to, &cc);
        if targets.is_empty() {
            rec.status = ArchiveStatus::NoRecipients;
            self.store.update_report(rec)?;
            self.stats.reports_unserved.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                job = %job.name,
                tenant = %rec.tenant,
                report = rec.id,
                "nobody got this report: none of the job's recipients has confirmed; it is archived only (see `ampel-collector recipients`)"
            );
            return Ok(());
        }
        let largest = rec.renderings(Edition { lang: job.language, depth: job.depth }).iter().map(|r| r.bytes).max().unwrap_or(rec.bytes);
        rec.link_reason = self.link_reason(job.delivery, largest).await;
        rec.mode = if rec.link_reason.is_some() { "link" } else { "attachment" }.to_owned();
        let mut prepared: HashMap<usize, OutgoingMail> = HashMap::new();
        let mut failed = false;
        let pending: Vec<String> = targets.into_iter().filter(|t| !rec.recipients.contains(t)).collect();
        for target in &pending {
            let (index, rendering) = Self::rendering_for(job, rec, target, false);
            let base = match prepared.entry(index) {
                Entry::Occupied(e) => e.into_mut(),
                Entry::Vacant(e) => e.insert(self.prepare(job, rec, (index, &rendering), rec.link_reason.is_some(), now)?),
            };
            let mut attempts = 0;
            let result = self.send_to(job, rec, base, target, &mut attempts).await;
            rec.attempts += attempts;
            match result {
                Ok(d) => {
                    rec.message_id = Some(d.message_id);
                    rec.recipients.push(target.clone());
                    rec.delivered.insert(target.clone(), rendering.edition);
                    rec.last_error = None;
                }
                Err(e) => {
                    rec.last_error = Some(e.to_string());
                    failed = true;
                }
            }
            // At once, so a restart does not send this recipient's copy again.
            self.store.update_report(rec)?;
        }
        rec.status = if failed { ArchiveStatus::Failed } else { ArchiveStatus::Sent };
        self.store.update_report(rec)?;
        Ok(())
    }

    /// `report resend ID`: delivers an archived report again to its job's confirmed
    /// recipients and appends the delivery to the report's history; the scheduled delivery
    /// stays recorded as it was. What went attached is attached again unless the server's
    /// SIZE now refuses it (then a link, with the reason recorded); what went as a link goes
    /// as a fresh link. Nobody to send to is an error.
    pub async fn resend(&self, id: u64, now: Timestamp, by: &str) -> Result<ArchiveRecord, ScheduleError> {
        let mut rec = self.store.report(id)?.ok_or(ScheduleError::NoSuchReport(id))?;
        let job = self.jobs.iter().find(|j| j.name.0 == rec.job).ok_or_else(|| ScheduleError::NoSuchJob { id, job: rec.job.clone() })?;
        let (to, cc) = self.audience(job)?;
        let targets = Self::targets(&to, &cc);
        if targets.is_empty() {
            return Err(ScheduleError::NobodyToSend { id, job: rec.job.clone() });
        }
        let largest = rec.renderings(Edition { lang: job.language, depth: job.depth }).iter().map(|r| r.bytes).max().unwrap_or(rec.bytes);
        let link_reason = match rec.mode.as_str() {
            "attachment" => self.server_refuses(largest).await,
            "link" => Some(rec.link_reason.clone().unwrap_or_else(|| "sent as a link before".into())),
            _ => self.link_reason(job.delivery, largest).await,
        };
        let mode = if link_reason.is_some() { "link" } else { "attachment" }.to_owned();
        let link = link_reason.is_some();
        let mut entry = Resend {
            at_ms: now.as_millisecond(),
            by: by.to_owned(),
            mode,
            link_reason,
            recipients: Vec::new(),
            status: ArchiveStatus::Sent,
            error: None,
        };
        let mut prepared: HashMap<usize, OutgoingMail> = HashMap::new();
        for target in &targets {
            let (index, rendering) = Self::rendering_for(job, &rec, target, true);
            let base = match prepared.entry(index) {
                Entry::Occupied(e) => e.into_mut(),
                Entry::Vacant(e) => e.insert(self.prepare(job, &rec, (index, &rendering), link, now)?),
            };
            let mut attempts = 0;
            match self.send_to(job, &rec, base, target, &mut attempts).await {
                Ok(_) => entry.recipients.push(target.clone()),
                Err(e) => {
                    entry.error = Some(e.to_string());
                    entry.status = ArchiveStatus::Failed;
                }
            }
        }
        rec.resends.push(entry);
        self.store.update_report(&rec)?;
        Ok(rec)
    }

    /// Runs until `shutdown` turns true: a tick now, then at each next slot or after a
    /// minute, whichever is sooner. A shutdown during a tick abandons it; the next start
    /// resumes (see the module docs).
    pub async fn run_loop(self, mut shutdown: watch::Receiver<bool>) {
        tracing::info!(jobs = self.jobs.len(), "scheduler started");
        loop {
            let now = Timestamp::now();
            tokio::select! {
                r = self.tick(now) => if let Err(e) = r {
                    tracing::error!(error = %error_chain(&e), "scheduler step failed; retrying in a minute");
                },
                _ = shutdown.wait_for(|s| *s) => break,
            }
            let now = Timestamp::now();
            let next =
                self.jobs.iter().filter(|j| j.enabled).filter_map(|j| due::next_slot(j, now)).chain(self.next_recipient_event()).min();
            let mut wait = std::time::Duration::from_secs(60);
            if let Some(next) = next {
                let ms = (next.as_millisecond() - now.as_millisecond()).max(0) as u64;
                wait = wait.min(std::time::Duration::from_millis(ms + 50));
            }
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.wait_for(|s| *s) => break,
            }
        }
        tracing::info!("scheduler stopped");
    }
}
