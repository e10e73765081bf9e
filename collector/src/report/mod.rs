//! PDF reports rendered in process with genpdf.
//!
//! [`ReportData`] is everything a report shows, gathered by the caller from the store and the
//! risk engine; [`render`] turns it into PDF bytes. Rendering reads no clock and no files except
//! the time zone database (through jiff, cached), and the same data gives the same bytes (see
//! `pdf` for what printpdf would otherwise vary).
//!
//! # Layout
//!
//! - [`strings`]: every fixed text, keyed by [`Lang`] (English, German), and number formats.
//! - [`catalogue`]: every word about findings: evidence from their facts, recommendations from
//!   their advice, per [`Lang`].
//! - [`stats`]: the figures of the sections (alerts per source, min/avg/max), pure functions
//!   the data gathering calls.
//! - [`widgets`]: the sections a report definition selects.
//! - [`branding`]: `[branding]` — logo, cover text, bar colours, tenants left unbranded.
//! - `layout`: the pages — cover, executive summary, overview, the sections, appendix.
//! - `elements`, `table`, `chart`: custom genpdf elements (lamps, a paging table whose columns
//!   fit their widest word, the chart).
//! - `flow`: headings kept with what follows them, sections that start a page only when little
//!   of the current one is left.
//! - `text`: making any input drawable (fallback mark, ellipsis, wrapping).
//! - `zone`: dates and chart ticks in the report's time zone.
//! - `fonts`: the embedded DejaVu Sans and the per-report glyph subset.
//! - `pdf`: post-processing for deterministic, compressed output.

pub mod branding;
pub mod catalogue;
mod chart;
mod elements;
mod flow;
mod fonts;
mod layout;
pub mod mail;
mod pdf;
pub mod stats;
pub mod strings;
pub mod synthetic;
mod table;
mod text;
pub mod widgets;
mod zone;

#[cfg(test)]
mod tests;

pub use branding::Theme;
pub use stats::{AlertStats, FileHashRow, Stat, TrafficRow};
pub use strings::Lang;
pub use widgets::{Depth, Widget, Widgets};

use crate::risk::{Finding, FindingChange, Light, ServiceLight};

/// Everything one tenant's report shows.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportData {
    /// Tenant id.
    pub tenant: String,
    /// Start of the period, Unix ms UTC (inclusive).
    pub period_start_ms: i64,
    /// End of the period, Unix ms UTC (exclusive).
    pub period_end_ms: i64,
    /// The period's name as people say it, in the report's language, e.g. `KW 49/2026`
    /// (see [`crate::period::Period::name`]).
    pub period_label: String,
    /// IANA time zone the report's dates are shown in, e.g. `Europe/Berlin`.
    pub time_zone: String,
    /// When the data was taken, Unix ms UTC; shown as "generated at". Passed in so that the
    /// same data renders to the same bytes.
    pub generated_at_ms: i64,
    /// The tenant's light (worst of its devices).
    pub light: Light,
    /// The tenant's 0–100 score (100 = no risk found).
    pub score: u8,
    /// All findings, worst first.
    pub findings: Vec<Finding>,
    /// The tenant's devices, sorted by id.
    pub devices: Vec<DeviceReport>,
    /// Light and score per service over all findings, in [`crate::risk::SERVICES`] order.
    pub services: Vec<ServiceLight>,
    /// New, still open and fixed findings against the previous period.
    pub changes: Vec<FindingChange>,
    /// The previous period compared with, `[start, end)` Unix ms; `None` if there was none.
    pub previous_ms: Option<(i64, i64)>,
    /// Alerts from intrusion detection, firewall, authentication and other sources.
    pub threats: AlertStats,
    /// Antivirus alerts.
    pub malware: AlertStats,
    /// Mail quarantine alerts.
    pub mail: AlertStats,
    /// Bytes per device, interface and category over the period.
    pub traffic: Vec<TrafficRow>,
    /// Version of the rules and thresholds that judged the data, for the manifest.
    pub rule_version: String,
    /// The files most often alerted on (file-hash widget), most frequent first.
    pub file_hashes: Vec<FileHashRow>,
    /// What the `[[suppress]]` entries took away, and how this report treats it.
    pub false_positives: crate::assess::suppress::Suppressed,
}

impl ReportData {
    /// The zone the report's times are shown in; UTC when [`ReportData::time_zone`] is
    /// unknown, which the report's cover then says.
    pub fn zone(&self) -> jiff::tz::TimeZone {
        zone::ReportZone::new(&self.time_zone).tz().clone()
    }

    /// The first contact of a device first seen inside the period; `None` for a device that
    /// was there before (or never).
    pub fn new_since(&self, d: &DeviceReport) -> Option<i64> {
        crate::risk::rules::new_since(d.first_seen_ms, self.period_start_ms, self.period_end_ms)
    }
}

/// One device's part of a report.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceReport {
    /// Device id (certificate CN).
    pub device: String,
    /// Host name from the latest inventory, empty if none arrived.
    pub hostname: String,
    /// Model from the latest inventory.
    pub model: String,
    /// OS from the latest inventory.
    pub os: String,
    /// Agent version from the latest inventory.
    pub agent_version: String,
    /// When the device was first seen, Unix ms UTC; `None` if never.
    pub first_seen_ms: Option<i64>,
    /// When the device was last seen, Unix ms UTC; `None` if never.
    pub last_seen_ms: Option<i64>,
    /// Points stored for the device in the period.
    pub points: u64,
    /// The device's light.
    pub light: Light,
    /// The device's 0–100 score.
    pub score: u8,
    /// CPU usage in percent over the period, as (Unix ms, value), time-ordered.
    pub cpu: Vec<(i64, f64)>,
    /// Memory usage in percent over the period, as (Unix ms, value), time-ordered.
    pub memory: Vec<(i64, f64)>,
    /// CPU min / avg / max over all samples of the period.
    pub cpu_stat: Option<Stat>,
    /// Memory min / avg / max.
    pub memory_stat: Option<Stat>,
    /// Disk usage min / avg / max per mount, sorted by mount.
    pub disks: Vec<(String, Stat)>,
    /// The latest license state, if the device ever sent one.
    pub license: Option<ampel_protocol::License>,
    /// Share of the period covered by samples (0.0..=1.0); `None` when not judged.
    pub coverage: Option<f64>,
    /// Gaps in the samples, `[start, end)` Unix ms, time-ordered.
    pub gaps: Vec<(i64, i64)>,
}

/// Why a report could not be rendered. None of these depends on the report data: any data
/// renders; these are faults of the build or of the libraries underneath.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// An embedded font could not be read or subset.
    #[error("embedded font unusable: {0}")]
    Font(String),
    /// genpdf failed to lay out or write the document.
    #[error("rendering the PDF failed: {0}")]
    Render(String),
    /// Reading back, compressing or writing the finished PDF failed.
    #[error("finishing the PDF failed: {0}")]
    Pdf(String),
}

/// One rendering of a report for its readers: language and depth. A job renders one per
/// distinct edition its recipients ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, serde::Serialize, serde::Deserialize)]
pub struct Edition {
    /// Language of every word.
    pub lang: Lang,
    /// How much of the report.
    pub depth: Depth,
}

/// How a report definition wants the data shown: language, sections, branding.
#[derive(Debug, Clone, Default)]
pub struct ReportOptions {
    /// Language of every fixed text, of dates and numbers.
    pub lang: Lang,
    /// Sections to show.
    pub widgets: Widgets,
    /// Colours, logo and cover text.
    pub theme: Theme,
}

/// Renders `data` as an English PDF report with every section and the default theme.
pub fn render(data: &ReportData) -> Result<Vec<u8>, ReportError> {
    render_in(data, Lang::En)
}

/// Renders `data` as a PDF report in `lang` with every section and the default theme.
pub fn render_in(data: &ReportData, lang: Lang) -> Result<Vec<u8>, ReportError> {
    render_with(data, &ReportOptions { lang, ..ReportOptions::default() })
}

/// Renders `data` as a PDF report as `options` say.
pub fn render_with(data: &ReportData, options: &ReportOptions) -> Result<Vec<u8>, ReportError> {
    layout::render(data, options)
}

/// The first 16 bytes of SHA-256 over everything the report shows, in hex: the data manifest's
/// proof of what a report was made from. `Debug` output is fully determined by the data
/// (floats print exactly), so equal data gives an equal hash.
pub fn data_hash(data: &ReportData) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, format!("{data:?}").as_bytes());
    digest.as_ref()[..16].iter().map(|b| format!("{b:02x}")).collect()
}
