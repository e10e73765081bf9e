//! Every word the console's HTML pages show, per language: one `static` table per [`Lang`]
//! in the style of `report/mail.rs`, so a text missing in one language does not compile.
//! Sentences with values in them are functions, so their arguments are checked too.
//!
//! Findings are put into words by [`crate::report::catalogue`], times and numbers by the
//! report's helpers ([`catalogue::time`], [`Strings`]); this table holds the rest. The JSON
//! API does not read it, except [`Words::get`]`(Lang::En)` for the sentences it shares with
//! the pages (a resend's outcome, an invitation, a refused period).
//!
//! [`catalogue::time`]: crate::report::catalogue::time

use axum::http::{HeaderMap, StatusCode, header};

use super::users::{Role, UserConfig};
use crate::report::Lang;
use crate::report::strings::Strings;
use crate::risk::Light;
use crate::risk::change::Change;
use crate::schedule::config::ReportPeriod;
use crate::schedule::{ArchiveStatus, RecipientState};

/// The fixed texts of the console in one language. Field names say where a text appears.
#[derive(Debug)]
pub struct Words {
    /// The language these words are in (`<html lang>`).
    pub lang: Lang,
    // Navigation, on every page of a logged-in user.
    /// The nav's label for screen readers.
    pub nav_label: &'static str,
    /// Nav: the fleet page, also its title.
    pub fleet: &'static str,
    /// Nav: the reports page, also its title.
    pub reports: &'static str,
    /// Nav: the jobs page, also its title.
    pub jobs: &'static str,
    /// Nav: the recipients page, also its title.
    pub recipients: &'static str,
    /// Nav: the enrollment page, also its title.
    pub enrollment: &'static str,
    /// Nav: the audit log, also its title.
    pub audit_log: &'static str,
    /// Nav: the logout button.
    pub log_out: &'static str,
    /// Role names: administrator, tenant manager, analyst.
    pub roles: [&'static str; 3],
    /// Light names: red, yellow, green, grey.
    pub lights: [&'static str; 4],
    /// Change names: new, still open, fixed.
    pub changes: [&'static str; 3],
    // Login.
    /// Title and button of the login page.
    pub log_in: &'static str,
    /// Label of the user name field.
    pub user_name: &'static str,
    /// Label of the password field.
    pub password: &'static str,
    /// The login form's token was missing or old.
    pub login_expired: &'static str,
    /// A wrong name or password (which one is not said).
    pub login_failed: &'static str,
    /// Too many failed logins: the allowed failures and the window in minutes.
    pub login_blocked: fn(u32, i64) -> String,
    // Error pages.
    /// Titles by status: 400, 403, 404, 409, 429, 500, 502, 503, any other.
    pub status_titles: [&'static str; 9],
    /// 404: does not exist or not for this user.
    pub not_found: &'static str,
    /// 403: a form without its CSRF token.
    pub stale_form: &'static str,
    /// 403: a proxy user not in `[[users]]`.
    pub unknown_proxy_user: &'static str,
    /// 409: resending without `[[jobs]]`.
    pub no_resender: &'static str,
    /// Before the cause of a declined request.
    pub declined: &'static str,
    /// 500.
    pub server_failed: &'static str,
    /// The way back for a logged-in user.
    pub to_fleet: &'static str,
    /// The way back for anyone else.
    pub to_login: &'static str,
    // Periods.
    /// The offered periods: last 24 hours, yesterday, last week, last month.
    pub periods: [&'static str; 4],
    /// Label of the periods' nav.
    pub period_nav: &'static str,
    /// Label of the custom-period form.
    pub custom_period: &'static str,
    /// "From" of the custom period.
    pub from: &'static str,
    /// "to" of the custom period.
    pub to: &'static str,
    /// Its button.
    pub show: &'static str,
    /// An unknown `?period=`.
    pub period_unknown: fn(&str) -> String,
    /// Only one of the two dates.
    pub period_incomplete: &'static str,
    /// Not a date.
    pub period_not_a_date: fn(&str) -> String,
    /// The last day before the first: (from, to).
    pub period_reversed: fn(&str, &str) -> String,
    /// Too long: (days, max).
    pub period_too_long: fn(i64, i64) -> String,
    /// Not computable: the cause.
    pub period_uncomputable: fn(&str) -> String,
    // Fleet.
    /// The first pass has not ended.
    pub fleet_computing: &'static str,
    /// What the table shows: (as of, refresh interval).
    pub fleet_as_of: fn(&str, &str) -> String,
    /// No tenant to show.
    pub no_tenant: &'static str,
    /// Label of the pager.
    pub fleet_pages: &'static str,
    /// Column: tenant; also "Tenant {t}" headings.
    pub tenant: &'static str,
    /// Column: light.
    pub light: &'static str,
    /// Column: score.
    pub score: &'static str,
    /// "score" before a score in a sentence.
    pub score_word: &'static str,
    /// Column: devices; also a heading.
    pub devices: &'static str,
    /// Column: open findings.
    pub open_findings: &'static str,
    /// Column: silent devices.
    pub silent_now: &'static str,
    /// Column: last report.
    pub last_report: &'static str,
    /// Column: age of the row.
    pub as_of: &'static str,
    /// Before a shard's name.
    pub shard: &'static str,
    /// Before why a row is not known.
    pub unknown_row: &'static str,
    /// No report yet.
    pub none: &'static str,
    /// A time that never was.
    pub never: &'static str,
    // Tenant and device.
    /// Title of a tenant page: (tenant, period).
    pub tenant_title: fn(&str, &str) -> String,
    /// Title of a device page: (device, period).
    pub device_title: fn(&str, &str) -> String,
    /// "Tenant light" before the light.
    pub tenant_light: &'static str,
    /// Heading: services.
    pub services: &'static str,
    /// Heading and column: findings.
    pub findings: &'static str,
    /// Column: device.
    pub device: &'static str,
    /// Column: model.
    pub model: &'static str,
    /// Column: licensed.
    pub licensed: &'static str,
    /// Column: licence expiry.
    pub licence_expiry: &'static str,
    /// Column: agent version.
    pub agent: &'static str,
    /// Column: last seen.
    pub last_seen: &'static str,
    /// Column: coverage.
    pub coverage: &'static str,
    /// Coverage value: (percent, gaps).
    pub coverage_value: fn(&str, usize) -> String,
    /// Coverage not judged.
    pub not_judged: &'static str,
    /// Yes.
    pub yes: &'static str,
    /// No.
    pub no: &'static str,
    /// Not known (yet).
    pub unknown: &'static str,
    /// A licence without expiry.
    pub no_expiry: &'static str,
    /// Column: evidence.
    pub evidence: &'static str,
    /// Column: recommendation.
    pub recommendation: &'static str,
    /// Column: change.
    pub change: &'static str,
    /// Device cell of a tenant-wide finding.
    pub tenant_wide: &'static str,
    /// No findings.
    pub no_findings: &'static str,
    /// Heading of the fixed findings.
    pub fixed_since: &'static str,
    /// A fixed finding: " on {device}".
    pub on_device: fn(&str) -> String,
    /// A fixed finding: ", was {light}".
    pub was: fn(&str) -> String,
    /// "light" on the device page.
    pub light_word: &'static str,
    /// Label: host name.
    pub host_name: &'static str,
    /// Heading: performance.
    pub performance: &'static str,
    /// Heading and chart: traffic.
    pub traffic: &'static str,
    /// Chart title: traffic on an interface.
    pub traffic_on: fn(&str) -> String,
    /// Chart title: CPU.
    pub cpu_usage: &'static str,
    /// Chart title: memory.
    pub memory_usage: &'static str,
    /// Chart title: disks.
    pub disk_usage: &'static str,
    /// Line names: CPU, memory, received, sent.
    pub lines: [&'static str; 4],
    /// No traffic in the period.
    pub no_traffic: &'static str,
    // Charts.
    /// Unit names: percent, bits per second.
    pub units: [&'static str; 2],
    /// Columns of a chart's table: line, min, avg, max.
    pub chart_columns: [&'static str; 4],
    /// A line without samples.
    pub no_samples: &'static str,
    /// A chart without samples.
    pub no_samples_period: &'static str,
    /// A chart's text alternative: (title, unit, lines, from, to, gaps).
    pub chart_alternative: fn(&str, &str, &str, &str, &str, usize) -> String,
    // Device history.
    /// Heading: licence and inventory history.
    pub history: &'static str,
    /// Heading: licence.
    pub licence: &'static str,
    /// Heading: inventory.
    pub inventory: &'static str,
    /// What the store no longer keeps: the horizon.
    pub history_horizon: fn(&str) -> String,
    /// Only so many reports compared.
    pub history_truncated: fn(usize) -> String,
    /// Before the fields of the first report.
    pub first_report: &'static str,
    /// No licence report.
    pub no_licence_report: &'static str,
    /// No inventory report.
    pub no_inventory_report: &'static str,
    /// No change.
    pub no_change: &'static str,
    /// A licence feature with its expiry: (name, until).
    pub feature_until: fn(&str, &str) -> String,
    /// Field names of the licence history: licensed, licence expiry, product, model, serial,
    /// features, licence unreadable.
    pub licence_fields: [&'static str; 7],
    /// Field names of the inventory history: host name, model, firmware, operating system,
    /// kernel, agent version.
    pub inventory_fields: [&'static str; 6],
    // Reports.
    /// No reports.
    pub no_reports: &'static str,
    /// Column: job.
    pub job: &'static str,
    /// Column: period.
    pub period: &'static str,
    /// Column: language.
    pub language: &'static str,
    /// Column: size.
    pub size: &'static str,
    /// Column: deliveries.
    pub deliveries: &'static str,
    /// Column: failures.
    pub failures: &'static str,
    /// Column: the download link.
    pub pdf: &'static str,
    /// The download link.
    pub download: &'static str,
    /// Column and button: resend; title of its page.
    pub resend: &'static str,
    /// Label of a resend button: the report's id.
    pub resend_label: fn(u64) -> String,
    /// The job of a report is gone.
    pub job_removed: &'static str,
    /// Resent to all: (id, recipients, mode).
    pub resent: fn(u64, usize, &str) -> String,
    /// Resent to some: (id, error).
    pub resent_partly: fn(u64, &str) -> String,
    /// The resend was not recorded: id.
    pub resend_unrecorded: fn(u64) -> String,
    /// Not resent: (id, error).
    pub not_resent: fn(u64, &str) -> String,
    /// Back to the reports.
    pub back_to_reports: &'static str,
    // Audit.
    /// What the audit page shows: how many.
    pub audit_intro: fn(usize) -> String,
    /// Audit columns: when, user, action, target, client.
    pub audit_columns: [&'static str; 5],
    // Jobs.
    /// What the jobs page is.
    pub jobs_intro: &'static str,
    /// No jobs.
    pub no_jobs: &'static str,
    /// Column: the tenants of a job.
    pub tenants: &'static str,
    /// Column: the send rules.
    pub sends: &'static str,
    /// Column: depth.
    pub depth: &'static str,
    /// Column: next run.
    pub next_run: &'static str,
    /// Column: preview.
    pub preview: &'static str,
    /// Column and button: send now.
    pub send_now: &'static str,
    /// A disabled job's next run.
    pub disabled: &'static str,
    /// Preview link: tenant.
    pub preview_of: fn(&str) -> String,
    /// Label of the preview link: (job, tenant).
    pub preview_label: fn(&str, &str) -> String,
    /// Label of the send-now button: job.
    pub send_now_label: fn(&str) -> String,
    /// A job's period: day, week, month.
    pub report_periods: [&'static str; 3],
    /// A job's period in days.
    pub days: fn(u16) -> String,
    /// A job's period in hours.
    pub hours: fn(u16) -> String,
    /// A send rule: daily at time.
    pub daily: fn(&str) -> String,
    /// A send rule: day of month at time.
    pub monthly: fn(i8, &str) -> String,
    /// Weekday names, Monday first.
    pub weekdays: [&'static str; 7],
    /// Title after sending: job.
    pub job_sent: fn(&str) -> String,
    /// Nothing sent.
    pub nothing_sent: &'static str,
    /// One report sent: (id, tenant, period, status, recipients, error).
    pub sent_line: fn(u64, &str, &str, &str, usize, &str) -> String,
    /// To the reports.
    pub to_reports: &'static str,
    /// Back to the jobs.
    pub back_to_jobs: &'static str,
    // Recipients.
    /// What the recipients page is.
    pub recipients_intro: &'static str,
    /// Heading and button: invite.
    pub invite: &'static str,
    /// Button: remove.
    pub remove: &'static str,
    /// Caption: "Job".
    pub job_caption: fn(&str) -> String,
    /// Recipient columns: address, field, state, consent log, actions.
    pub recipient_columns: [&'static str; 5],
    /// Recipient states: invited, confirmed, unsubscribed, expired.
    pub recipient_states: [&'static str; 4],
    /// Archive states of a report: pending, sent, failed, no recipients.
    pub archive_states: [&'static str; 4],
    /// Removed from the job.
    pub removed_from_job: &'static str,
    /// Not invited yet.
    pub not_invited: &'static str,
    /// Label of an action button: (action, address, job).
    pub action_label: fn(&str, &str, &str) -> String,
    /// Label of the address field.
    pub invite_address: &'static str,
    /// Button: send the invitation.
    pub send_invitation: &'static str,
    /// Title after inviting.
    pub invitation: &'static str,
    /// Title after removing.
    pub removed: &'static str,
    /// Confirmed already: (address, job).
    pub invited_confirmed: fn(&str, &str) -> String,
    /// Invited again: (job, address, state before).
    pub invited_again: fn(&str, &str, &str) -> String,
    /// Invited: (job, address).
    pub invited: fn(&str, &str) -> String,
    /// Removed: (address, job).
    pub removed_text: fn(&str, &str) -> String,
    /// Back to the recipients.
    pub back_to_recipients: &'static str,
    // Enrollment.
    /// Heading: enroll a device.
    pub enroll_device: &'static str,
    /// What a token is: the validity.
    pub token_intro: fn(&str) -> String,
    /// Label of the device field.
    pub device_id: &'static str,
    /// Button: make a token.
    pub make_token: &'static str,
    /// What revoking does.
    pub revoke_intro: &'static str,
    /// No device.
    pub no_devices: &'static str,
    /// Column: revoked certificates.
    pub revoked_certificates: &'static str,
    /// After a count of revoked certificates.
    pub revoked_mark: &'static str,
    /// Column and button: revoke.
    pub revoke: &'static str,
    /// Label of a revoke button: device.
    pub revoke_label: fn(&str) -> String,
    /// Title of the token page.
    pub token_title: &'static str,
    /// The token: (device, tenant, valid until).
    pub token_for: fn(&str, &str, &str) -> String,
    /// Copy it now (before the command).
    pub token_once: &'static str,
    /// Label of the token.
    pub token_label: &'static str,
    /// Back to enrollment.
    pub back_to_enrollment: &'static str,
    /// Title after revoking.
    pub device_revoked: &'static str,
    /// Nothing left to revoke: (device, tenant).
    pub nothing_revoked: fn(&str, &str) -> String,
    /// Revoked: (device, tenant, count, serials).
    pub revoked_text: fn(&str, &str, usize, &str) -> String,
}

static EN: Words = Words {
    lang: Lang::En,
    nav_label: "Console",
    fleet: "Fleet",
    reports: "Reports",
    jobs: "Jobs",
    recipients: "Recipients",
    enrollment: "Enrollment",
    audit_log: "Audit log",
    log_out: "Log out",
    roles: ["administrator", "tenant-manager", "analyst"],
    lights: ["red", "yellow", "green", "grey"],
    changes: ["new", "still open", "fixed"],
    log_in: "Log in",
    user_name: "User name",
    password: "Password",
    login_expired: "The login form had expired. Please try again.",
    login_failed: "Unknown user or wrong password.",
    login_blocked: |n, min| format!("Too many failed logins ({n} within {min} minutes). Try again later."),
    status_titles: [
        "Bad Request",
        "Forbidden",
        "Not found",
        "Conflict",
        "Too Many Requests",
        "Internal Server Error",
        "Bad Gateway",
        "Service Unavailable",
        "Error",
    ],
    not_found: "There is nothing here, or nothing you may see.",
    stale_form: "This form has expired. Go back, reload the page and try again.",
    unknown_proxy_user: "You are not a user of this console; ask its administrator.",
    no_resender: "Resending needs report jobs ([[jobs]]) in the configuration.",
    declined: "This could not be done:",
    server_failed: "Something went wrong on the server; the log says what.",
    to_fleet: "To the fleet",
    to_login: "To the login",
    periods: ["Last 24 hours", "Yesterday", "Last week", "Last month"],
    period_nav: "Period",
    custom_period: "Custom period",
    from: "From",
    to: "to",
    show: "Show",
    period_unknown: |p| format!("There is no period {p:?}: choose one of the links on the page, or a first and a last day."),
    period_incomplete: "A custom period needs both a first and a last day.",
    period_not_a_date: |s| format!("{s:?} is not a date; write it as YYYY-MM-DD, e.g. 2026-03-01."),
    period_reversed: |from, to| format!("The period ends on {to}, before it starts on {from}: swap the two dates."),
    period_too_long: |days, max| {
        format!("The period spans {days} days; a page covers at most {max} days (what the store keeps of the charts' figures).")
    },
    period_uncomputable: |e| format!("The period cannot be computed: {e}"),
    fleet_computing: "The fleet summary is being computed (the first pass since the start); reload in a moment.",
    fleet_as_of: |at, every| {
        format!("Lights and findings over the last 24 hours, worst first; summary as of {at}, refreshed {every} after each pass.")
    },
    no_tenant: "No tenant to show.",
    fleet_pages: "Fleet pages",
    tenant: "Tenant",
    light: "Light",
    score: "Score",
    score_word: "score",
    devices: "Devices",
    open_findings: "Open findings",
    silent_now: "Silent now",
    last_report: "Last report",
    as_of: "As of",
    shard: "shard",
    unknown_row: "unknown:",
    none: "none",
    never: "never",
    tenant_title: |t, p| format!("Tenant {t} \u{b7} {p}"),
    device_title: |d, p| format!("Device {d} \u{b7} {p}"),
    tenant_light: "Tenant light",
    services: "Services",
    findings: "Findings",
    device: "Device",
    model: "Model",
    licensed: "Licensed",
    licence_expiry: "Licence expiry",
    agent: "Agent",
    last_seen: "Last seen",
    coverage: "Coverage",
    coverage_value: |pct, gaps| format!("{pct} % ({gaps} gaps)"),
    not_judged: "not judged",
    yes: "yes",
    no: "no",
    unknown: "unknown",
    no_expiry: "no expiry",
    evidence: "Evidence",
    recommendation: "Recommendation",
    change: "Change",
    tenant_wide: "tenant",
    no_findings: "No findings: everything judged is green.",
    fixed_since: "Fixed since the previous period",
    on_device: |d| format!(" on {d}"),
    was: |l| format!(", was {l}"),
    light_word: "light",
    host_name: "Host name",
    performance: "Performance",
    traffic: "Traffic",
    traffic_on: |i| format!("Traffic on {i}"),
    cpu_usage: "CPU usage",
    memory_usage: "Memory usage",
    disk_usage: "Disk usage per mount",
    lines: ["CPU", "memory", "received", "sent"],
    no_traffic: "No interface traffic was reported in this period.",
    units: ["percent", "bits per second"],
    chart_columns: ["Line", "Min", "Avg", "Max"],
    no_samples: "no samples",
    no_samples_period: "No samples in this period.",
    chart_alternative: |title, unit, lines, from, to, gaps| {
        let gaps = match gaps {
            0 => String::new(),
            1 => ", with 1 gap in the data".to_owned(),
            n => format!(", with {n} gaps in the data"),
        };
        format!("{title} in {unit} ({lines}) from {from} to {to}{gaps}; minimum, average and maximum are in the table below")
    },
    history: "Licence and inventory history",
    licence: "Licence",
    inventory: "Inventory",
    history_horizon: |at| {
        format!("Before {at} the store keeps only the latest licence and inventory report, so earlier changes are not known.")
    },
    history_truncated: |n| format!("Only the latest {n} reports of the period are compared."),
    first_report: "first report: ",
    no_licence_report: "The device has sent no licence report.",
    no_inventory_report: "The device has sent no inventory report.",
    no_change: "No change in this period.",
    feature_until: |name, until| format!("{name} (until {until})"),
    licence_fields: ["Licensed", "Licence expiry", "Product", "Model", "Serial", "Features", "Licence unreadable"],
    inventory_fields: ["Host name", "Model", "Firmware", "Operating system", "Kernel", "Agent version"],
    no_reports: "No reports archived yet.",
    job: "Job",
    period: "Period",
    language: "Language",
    size: "Size",
    deliveries: "Deliveries",
    failures: "Failures",
    pdf: "PDF",
    download: "Download",
    resend: "Resend",
    resend_label: |id| format!("Resend report {id}"),
    job_removed: "(job removed)",
    resent: |id, n, mode| format!("Report {id} resent to {n} recipient(s) as {mode}."),
    resent_partly: |id, e| format!("Report {id} not resent to everyone: {e}"),
    resend_unrecorded: |id| format!("Report {id}: the resend was not recorded."),
    not_resent: |id, e| format!("Report {id} was not resent: {e}"),
    back_to_reports: "Back to the reports",
    audit_intro: |n| format!("The last {n} state changes, newest first."),
    audit_columns: ["When", "User", "Action", "Target", "Client"],
    jobs_intro: "The report jobs of the configuration, read-only. \u{201c}Send now\u{201d} renders the report of the period ending now and mails it to the job's confirmed recipients, as the scheduled run would; the schedule is not changed.",
    no_jobs: "No report job for your tenants.",
    tenants: "Tenants",
    sends: "Sends",
    depth: "Depth",
    next_run: "Next run (job's zone)",
    preview: "Preview",
    send_now: "Send now",
    disabled: "disabled",
    preview_of: |t| format!("Preview {t}"),
    preview_label: |job, t| format!("Preview of job {job} for {t}"),
    send_now_label: |job| format!("Send job {job} now"),
    report_periods: ["day", "week", "month"],
    days: |n| format!("{n} days"),
    hours: |n| format!("{n} hours"),
    daily: |t| format!("daily {t}"),
    monthly: |d, t| format!("day {d} {t}"),
    weekdays: ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"],
    job_sent: |job| format!("Job {job} sent"),
    nothing_sent: "Nothing was sent: this run was finished already.",
    sent_line: |id, tenant, period, status, n, error| {
        format!("Report {id} of {tenant} for {period}: {status}, to {n} recipient(s){error}.")
    },
    to_reports: "To the reports",
    back_to_jobs: "Back to the jobs",
    recipients_intro: "An address gets a job's reports once it has confirmed the invitation mail; unsubscribing stops all of them. Invite sends a fresh invitation; remove stops this job's reports to the address.",
    invite: "Invite",
    remove: "Remove",
    job_caption: |job| format!("Job {job}"),
    recipient_columns: ["Address", "Field", "State", "Consent log", "Actions"],
    recipient_states: ["invited", "confirmed", "unsubscribed", "expired"],
    archive_states: ["pending", "sent", "failed", "no-recipients"],
    removed_from_job: "removed from this job",
    not_invited: "not invited yet",
    action_label: |action, address, job| format!("{action} {address} (job {job})"),
    invite_address: "Address (one of the job's to or cc)",
    send_invitation: "Send invitation",
    invitation: "Invitation",
    removed: "Removed",
    invited_confirmed: |address, job| format!("{address} has confirmed already; it gets job {job}'s reports."),
    invited_again: |job, address, was| format!("Invitation for job {job} sent to {address} (it was {was})."),
    invited: |job, address| format!("Invitation for job {job} sent to {address}."),
    removed_text: |address, job| format!("{address} gets no more reports of job {job}."),
    back_to_recipients: "Back to the recipients",
    enroll_device: "Enroll a device",
    token_intro: |ttl| {
        format!("A token lets one agent enroll once as the named device of the tenant, within {ttl} ([pki] token-ttl). It is shown once.")
    },
    device_id: "Device id (unique across all tenants)",
    make_token: "Make a one-time token",
    revoke_intro: "Revoking puts every certificate of the device on the CRL: the collector refuses its next connection.",
    no_devices: "No device registered yet.",
    revoked_certificates: "Revoked certificates",
    revoked_mark: "(revoked)",
    revoke: "Revoke",
    revoke_label: |d| format!("Revoke device {d}"),
    token_title: "Enrollment token",
    token_for: |d, t, until| format!("One-time token for device {d} of tenant {t}, valid until {until}."),
    token_once: "Copy it now: it is shown only this once. Give it to the agent with",
    token_label: "Enrollment token",
    back_to_enrollment: "Back to enrollment",
    device_revoked: "Device revoked",
    nothing_revoked: |d, t| format!("Device {d} of tenant {t} had no certificate left to revoke; the CRL was re-signed."),
    revoked_text: |d, t, n, serials| format!("Device {d} of tenant {t}: {n} certificate(s) revoked ({serials})."),
};

static DE: Words = Words {
    lang: Lang::De,
    nav_label: "Konsole",
    fleet: "Übersicht",
    reports: "Berichte",
    jobs: "Aufträge",
    recipients: "Empfänger",
    enrollment: "Registrierung",
    audit_log: "Protokoll",
    log_out: "Abmelden",
    roles: ["Administration", "Mandantenverwaltung", "Analyse"],
    lights: ["rot", "gelb", "grün", "grau"],
    changes: ["neu", "weiter offen", "behoben"],
    log_in: "Anmelden",
    user_name: "Benutzername",
    password: "Passwort",
    login_expired: "Das Anmeldeformular war abgelaufen. Bitte versuchen Sie es noch einmal.",
    login_failed: "Unbekannter Benutzer oder falsches Passwort.",
    login_blocked: |n, min| {
        format!("Zu viele fehlgeschlagene Anmeldungen ({n} innerhalb von {min} Minuten). Bitte versuchen Sie es später noch einmal.")
    },
    status_titles: [
        "Ungültige Anfrage",
        "Nicht erlaubt",
        "Nicht gefunden",
        "Konflikt",
        "Zu viele Anfragen",
        "Serverfehler",
        "Fehler eines anderen Servers",
        "Dienst nicht verfügbar",
        "Fehler",
    ],
    not_found: "Hier gibt es nichts, oder nichts, was Sie sehen dürfen.",
    stale_form: "Dieses Formular ist abgelaufen. Gehen Sie zurück, laden Sie die Seite neu und versuchen Sie es noch einmal.",
    unknown_proxy_user: "Sie sind kein Benutzer dieser Konsole; wenden Sie sich an ihre Administration.",
    no_resender: "Zum erneuten Senden braucht die Konfiguration Berichtsaufträge ([[jobs]]).",
    declined: "Das ließ sich nicht ausführen:",
    server_failed: "Auf dem Server ist etwas schiefgegangen; das Log sagt, was.",
    to_fleet: "Zur Übersicht",
    to_login: "Zur Anmeldung",
    periods: ["Letzte 24 Stunden", "Gestern", "Letzte Woche", "Letzter Monat"],
    period_nav: "Zeitraum",
    custom_period: "Eigener Zeitraum",
    from: "Von",
    to: "bis",
    show: "Anzeigen",
    period_unknown: |p| {
        format!("Einen Zeitraum {p:?} gibt es nicht: Wählen Sie einen der Links auf der Seite oder einen ersten und letzten Tag.")
    },
    period_incomplete: "Ein eigener Zeitraum braucht einen ersten und einen letzten Tag.",
    period_not_a_date: |s| format!("{s:?} ist kein Datum; schreiben Sie es als JJJJ-MM-TT, z. B. 2026-03-01."),
    period_reversed: |from, to| format!("Der Zeitraum endet am {to}, bevor er am {from} beginnt: Tauschen Sie die beiden Daten."),
    period_too_long: |days, max| {
        format!(
            "Der Zeitraum umfasst {days} Tage; eine Seite zeigt höchstens {max} Tage (so lange hält der Speicher die Werte der Diagramme)."
        )
    },
    period_uncomputable: |e| format!("Der Zeitraum lässt sich nicht berechnen: {e}"),
    fleet_computing: "Die Übersicht wird berechnet (der erste Durchlauf seit dem Start); laden Sie die Seite gleich neu.",
    fleet_as_of: |at, every| {
        format!(
            "Ampeln und Befunde der letzten 24 Stunden, die schlechtesten zuerst; Stand {at}, neu berechnet {every} nach jedem Durchlauf."
        )
    },
    no_tenant: "Kein Mandant anzuzeigen.",
    fleet_pages: "Seiten der Übersicht",
    tenant: "Mandant",
    light: "Ampel",
    score: "Punktzahl",
    score_word: "Punktzahl",
    devices: "Geräte",
    open_findings: "Offene Befunde",
    silent_now: "Jetzt stumm",
    last_report: "Letzter Bericht",
    as_of: "Stand",
    shard: "Shard",
    unknown_row: "unbekannt:",
    none: "keiner",
    never: "nie",
    tenant_title: |t, p| format!("Mandant {t} \u{b7} {p}"),
    device_title: |d, p| format!("Gerät {d} \u{b7} {p}"),
    tenant_light: "Ampel des Mandanten",
    services: "Dienste",
    findings: "Befunde",
    device: "Gerät",
    model: "Modell",
    licensed: "Lizenziert",
    licence_expiry: "Lizenz läuft ab",
    agent: "Agent",
    last_seen: "Zuletzt gesehen",
    coverage: "Abdeckung",
    coverage_value: |pct, gaps| format!("{pct} % ({gaps} Lücken)"),
    not_judged: "nicht bewertet",
    yes: "ja",
    no: "nein",
    unknown: "unbekannt",
    no_expiry: "kein Ablauf",
    evidence: "Beobachtung",
    recommendation: "Empfehlung",
    change: "Änderung",
    tenant_wide: "Mandant",
    no_findings: "Keine Befunde: alles Bewertete ist grün.",
    fixed_since: "Behoben seit dem vorigen Zeitraum",
    on_device: |d| format!(" auf {d}"),
    was: |l| format!(", war {l}"),
    light_word: "Ampel",
    host_name: "Hostname",
    performance: "Leistung",
    traffic: "Datenverkehr",
    traffic_on: |i| format!("Datenverkehr auf {i}"),
    cpu_usage: "CPU-Auslastung",
    memory_usage: "Speicherauslastung",
    disk_usage: "Plattenbelegung je Einhängepunkt",
    lines: ["CPU", "Speicher", "empfangen", "gesendet"],
    no_traffic: "In diesem Zeitraum wurde kein Datenverkehr von Schnittstellen gemeldet.",
    units: ["Prozent", "Bit pro Sekunde"],
    chart_columns: ["Linie", "Min.", "Mittel", "Max."],
    no_samples: "keine Messwerte",
    no_samples_period: "Keine Messwerte in diesem Zeitraum.",
    chart_alternative: |title, unit, lines, from, to, gaps| {
        let gaps = match gaps {
            0 => String::new(),
            1 => ", mit 1 Lücke in den Daten".to_owned(),
            n => format!(", mit {n} Lücken in den Daten"),
        };
        format!("{title} in {unit} ({lines}) von {from} bis {to}{gaps}; Minimum, Mittel und Maximum stehen in der Tabelle darunter")
    },
    history: "Verlauf von Lizenz und Inventar",
    licence: "Lizenz",
    inventory: "Inventar",
    history_horizon: |at| {
        format!("Vor {at} hält der Speicher nur den letzten Lizenz- und Inventarbericht; frühere Änderungen sind nicht bekannt.")
    },
    history_truncated: |n| format!("Nur die letzten {n} Berichte des Zeitraums werden verglichen."),
    first_report: "erster Bericht: ",
    no_licence_report: "Das Gerät hat keinen Lizenzbericht gesendet.",
    no_inventory_report: "Das Gerät hat keinen Inventarbericht gesendet.",
    no_change: "Keine Änderung in diesem Zeitraum.",
    feature_until: |name, until| format!("{name} (bis {until})"),
    licence_fields: ["Lizenziert", "Lizenz läuft ab", "Produkt", "Modell", "Seriennummer", "Module", "Lizenz nicht lesbar"],
    inventory_fields: ["Hostname", "Modell", "Firmware", "Betriebssystem", "Kernel", "Agent-Version"],
    no_reports: "Noch keine Berichte archiviert.",
    job: "Auftrag",
    period: "Zeitraum",
    language: "Sprache",
    size: "Größe",
    deliveries: "Zustellungen",
    failures: "Fehler",
    pdf: "PDF",
    download: "Herunterladen",
    resend: "Erneut senden",
    resend_label: |id| format!("Bericht {id} erneut senden"),
    job_removed: "(Auftrag entfernt)",
    resent: |id, n, mode| format!("Bericht {id} erneut an {n} Empfänger gesendet ({mode})."),
    resent_partly: |id, e| format!("Bericht {id} nicht an alle erneut gesendet: {e}"),
    resend_unrecorded: |id| format!("Bericht {id}: das erneute Senden wurde nicht festgehalten."),
    not_resent: |id, e| format!("Bericht {id} wurde nicht erneut gesendet: {e}"),
    back_to_reports: "Zurück zu den Berichten",
    audit_intro: |n| format!("Die letzten {n} Änderungen, die neuesten zuerst."),
    audit_columns: ["Wann", "Benutzer", "Aktion", "Ziel", "Client"],
    jobs_intro: "Die Berichtsaufträge der Konfiguration, nur zum Lesen. \u{201e}Jetzt senden\u{201c} erstellt den Bericht des jetzt endenden Zeitraums und schickt ihn an die bestätigten Empfänger des Auftrags, wie es der geplante Lauf täte; der Zeitplan bleibt, wie er ist.",
    no_jobs: "Kein Berichtsauftrag für Ihre Mandanten.",
    tenants: "Mandanten",
    sends: "Versand",
    depth: "Tiefe",
    next_run: "Nächster Lauf (Zone des Auftrags)",
    preview: "Vorschau",
    send_now: "Jetzt senden",
    disabled: "abgeschaltet",
    preview_of: |t| format!("Vorschau {t}"),
    preview_label: |job, t| format!("Vorschau des Auftrags {job} für {t}"),
    send_now_label: |job| format!("Auftrag {job} jetzt senden"),
    report_periods: ["Tag", "Woche", "Monat"],
    days: |n| format!("{n} Tage"),
    hours: |n| format!("{n} Stunden"),
    daily: |t| format!("täglich {t}"),
    monthly: |d, t| format!("am {d}. {t}"),
    weekdays: ["Montag", "Dienstag", "Mittwoch", "Donnerstag", "Freitag", "Samstag", "Sonntag"],
    job_sent: |job| format!("Auftrag {job} gesendet"),
    nothing_sent: "Nichts gesendet: dieser Lauf war schon erledigt.",
    sent_line: |id, tenant, period, status, n, error| format!("Bericht {id} von {tenant} für {period}: {status}, an {n} Empfänger{error}."),
    to_reports: "Zu den Berichten",
    back_to_jobs: "Zurück zu den Aufträgen",
    recipients_intro: "Eine Adresse erhält die Berichte eines Auftrags, sobald sie die Einladungsmail bestätigt hat; wer sich abmeldet, erhält keine mehr. Einladen schickt eine neue Einladung; Entfernen beendet die Berichte dieses Auftrags an die Adresse.",
    invite: "Einladen",
    remove: "Entfernen",
    job_caption: |job| format!("Auftrag {job}"),
    recipient_columns: ["Adresse", "Feld", "Zustand", "Einwilligungen", "Aktionen"],
    recipient_states: ["eingeladen", "bestätigt", "abgemeldet", "abgelaufen"],
    archive_states: ["ausstehend", "gesendet", "fehlgeschlagen", "ohne Empfänger"],
    removed_from_job: "aus diesem Auftrag entfernt",
    not_invited: "noch nicht eingeladen",
    action_label: |action, address, job| format!("{action}: {address} (Auftrag {job})"),
    invite_address: "Adresse (eine der to- oder cc-Adressen des Auftrags)",
    send_invitation: "Einladung senden",
    invitation: "Einladung",
    removed: "Entfernt",
    invited_confirmed: |address, job| format!("{address} hat schon bestätigt und erhält die Berichte des Auftrags {job}."),
    invited_again: |job, address, was| format!("Einladung für den Auftrag {job} an {address} gesendet (Zustand vorher: {was})."),
    invited: |job, address| format!("Einladung für den Auftrag {job} an {address} gesendet."),
    removed_text: |address, job| format!("{address} erhält keine Berichte des Auftrags {job} mehr."),
    back_to_recipients: "Zurück zu den Empfängern",
    enroll_device: "Gerät registrieren",
    token_intro: |ttl| {
        format!(
            "Mit einem Token registriert sich ein Agent einmal als das genannte Gerät des Mandanten, innerhalb von {ttl} ([pki] token-ttl). Es wird nur einmal angezeigt."
        )
    },
    device_id: "Geräte-ID (eindeutig über alle Mandanten)",
    make_token: "Einmal-Token erstellen",
    revoke_intro: "Sperren setzt jedes Zertifikat des Geräts auf die Sperrliste: der Collector weist seine nächste Verbindung ab.",
    no_devices: "Noch kein Gerät registriert.",
    revoked_certificates: "Gesperrte Zertifikate",
    revoked_mark: "(gesperrt)",
    revoke: "Sperren",
    revoke_label: |d| format!("Gerät {d} sperren"),
    token_title: "Registrierungs-Token",
    token_for: |d, t, until| format!("Einmal-Token für das Gerät {d} des Mandanten {t}, gültig bis {until}."),
    token_once: "Kopieren Sie es jetzt: es wird nur dieses eine Mal angezeigt. Geben Sie es dem Agenten mit",
    token_label: "Registrierungs-Token",
    back_to_enrollment: "Zurück zur Registrierung",
    device_revoked: "Gerät gesperrt",
    nothing_revoked: |d, t| {
        format!("Das Gerät {d} des Mandanten {t} hatte kein Zertifikat mehr zu sperren; die Sperrliste wurde neu signiert.")
    },
    revoked_text: |d, t, n, serials| format!("Gerät {d} des Mandanten {t}: {n} Zertifikat(e) gesperrt ({serials})."),
};

impl Words {
    /// The table for `lang`.
    pub fn get(lang: Lang) -> &'static Words {
        match lang {
            Lang::En => &EN,
            Lang::De => &DE,
        }
    }

    /// The report's texts in the same language (numbers, dates, services).
    pub fn strings(&self) -> &'static Strings {
        Strings::get(self.lang)
    }

    /// A role's name.
    pub fn role(&self, role: Role) -> &'static str {
        let [admin, manager, analyst] = self.roles;
        match role {
            Role::Administrator => admin,
            Role::TenantManager => manager,
            Role::Analyst => analyst,
        }
    }

    /// A light's name.
    pub fn light_name(&self, light: Light) -> &'static str {
        let [red, yellow, green, grey] = self.lights;
        match light {
            Light::Red => red,
            Light::Yellow => yellow,
            Light::Green => green,
            Light::Grey => grey,
        }
    }

    /// A change's name.
    pub fn change_name(&self, change: Change) -> &'static str {
        let [new, open, fixed] = self.changes;
        match change {
            Change::New => new,
            Change::StillOpen => open,
            Change::Fixed => fixed,
        }
    }

    /// The title of an error page with `status`.
    pub fn status_title(&self, status: StatusCode) -> &'static str {
        let [bad, forbidden, not_found, conflict, many, failed, gateway, unavailable, other] = self.status_titles;
        match status {
            StatusCode::BAD_REQUEST => bad,
            StatusCode::FORBIDDEN => forbidden,
            StatusCode::NOT_FOUND => not_found,
            StatusCode::CONFLICT => conflict,
            StatusCode::TOO_MANY_REQUESTS => many,
            StatusCode::INTERNAL_SERVER_ERROR => failed,
            StatusCode::BAD_GATEWAY => gateway,
            StatusCode::SERVICE_UNAVAILABLE => unavailable,
            _ => other,
        }
    }

    /// A job's report period.
    pub fn report_period(&self, p: ReportPeriod) -> String {
        let [day, week, month] = self.report_periods;
        match p {
            ReportPeriod::Day => day.into(),
            ReportPeriod::Week => week.into(),
            ReportPeriod::Month => month.into(),
            ReportPeriod::Days(n) => (self.days)(n),
            ReportPeriod::Hours(n) => (self.hours)(n),
        }
    }

    /// A weekday's name.
    pub fn weekday(&self, w: jiff::civil::Weekday) -> &'static str {
        use jiff::civil::Weekday as W;
        let [mon, tue, wed, thu, fri, sat, sun] = self.weekdays;
        match w {
            W::Monday => mon,
            W::Tuesday => tue,
            W::Wednesday => wed,
            W::Thursday => thu,
            W::Friday => fri,
            W::Saturday => sat,
            W::Sunday => sun,
        }
    }

    /// A recipient's state.
    pub fn recipient_state(&self, s: RecipientState) -> &'static str {
        let [invited, confirmed, unsubscribed, expired] = self.recipient_states;
        match s {
            RecipientState::Invited => invited,
            RecipientState::Confirmed => confirmed,
            RecipientState::Unsubscribed => unsubscribed,
            RecipientState::Expired => expired,
        }
    }

    /// An archived report's state.
    pub fn archive_state(&self, s: ArchiveStatus) -> &'static str {
        let [pending, sent, failed, nobody] = self.archive_states;
        match s {
            ArchiveStatus::Pending => pending,
            ArchiveStatus::Sent => sent,
            ArchiveStatus::Failed => failed,
            ArchiveStatus::NoRecipients => nobody,
        }
    }
}

/// The language of a page: the user's `language` in `[[users]]` when set, else the first
/// language of the browser's `Accept-Language` this collector speaks, else English.
pub fn page_lang(user: Option<&UserConfig>, headers: &HeaderMap) -> Lang {
    if let Some(lang) = user.and_then(|u| u.language) {
        return lang;
    }
    headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()).map_or(Lang::En, Lang::from_accept_language)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_german_words_are_german() {
        let (en, de) = (Words::get(Lang::En), Words::get(Lang::De));
        assert_eq!(de.lang, Lang::De);
        let nav = |w: &Words| [w.fleet, w.reports, w.jobs, w.recipients, w.enrollment, w.audit_log, w.log_out];
        for (e, d) in nav(en).iter().zip(nav(de)) {
            assert_ne!(*e, d, "{e} is not translated");
        }
        assert_eq!(de.report_period(ReportPeriod::Days(3)), "3 Tage");
        assert_eq!(de.weekday(jiff::civil::Weekday::Sunday), "Sonntag");
        assert_eq!(de.status_title(StatusCode::CONFLICT), "Konflikt");
    }
}
