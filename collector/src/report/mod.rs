//! PDF reports rendered in process with genpdf.
//!
//! [`ReportData`] is everything a report shows, gathered by the caller from the store and the
//! risk engine; [`render`] turns it into PDF bytes. Rendering reads no clock and no files, so the
//! same data gives the same bytes.

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

/// Placeholder until the renderer lands.
#[derive(Debug, thiserror::Error)]
#[error("report renderer not built yet")]
pub struct ReportError;

/// Placeholder until the renderer lands.
pub fn render(_data: &ReportData) -> Result<Vec<u8>, ReportError> {
    Err(ReportError)
}
