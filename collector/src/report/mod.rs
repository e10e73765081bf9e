//! PDF reports rendered in process with genpdf.
//!
//! [`ReportData`] is everything a report shows, gathered by the caller from the store and the
//! risk engine; [`render`] turns it into PDF bytes. Rendering reads no clock and no files except
//! the time zone database (through jiff, cached), and the same data gives the same bytes (see
//! `pdf` for what printpdf would otherwise vary).
//!
//! # Layout
//!
//! - [`strings`]: every fixed text, keyed by [`Lang`]; English only so far.
//! - `layout`: the pages — cover, summary and findings, device table, charts.
//! - `elements`, `table`, `chart`: custom genpdf elements (lamps, a paging table, the chart).
//! - `text`: making any input drawable (fallback mark, ellipsis, wrapping).
//! - `zone`: dates and chart ticks in the report's time zone.
//! - `fonts`: the embedded DejaVu Sans and the per-report glyph subset.
//! - `pdf`: post-processing for deterministic, compressed output.

mod chart;
mod elements;
mod fonts;
mod layout;
mod pdf;
pub mod strings;
mod table;
mod text;
mod zone;

#[cfg(test)]
mod tests;

pub use strings::Lang;

use crate::risk::{Finding, Light};

/// Everything one tenant's report shows.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportData {
    /// Tenant id.
    pub tenant: String,
    /// Start of the period, Unix ms UTC (inclusive).
    pub period_start_ms: i64,
    /// End of the period, Unix ms UTC (exclusive).
    pub period_end_ms: i64,
    /// Human label of the period as asked for, e.g. `last-7d`.
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

/// Renders `data` as an English PDF report.
pub fn render(data: &ReportData) -> Result<Vec<u8>, ReportError> {
    render_in(data, Lang::En)
}

/// Renders `data` as a PDF report in `lang`.
pub fn render_in(data: &ReportData, lang: Lang) -> Result<Vec<u8>, ReportError> {
    layout::render(data, lang)
}
