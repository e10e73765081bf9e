//! Risk scoring: rules over stored data produce [`Finding`]s; lights aggregate the worst of them.
//!
//! The walking skeleton ships the first rules (device silent, CPU high, disk high); the full
//! engine is its own piece of work.

pub mod rules;

use serde::{Deserialize, Serialize};

/// A traffic light. Ordered from harmless to worst so that `max` aggregates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Light {
    /// All OK.
    Green,
    /// Not enough data to judge. Ranks above green so it never hides as green.
    Grey,
    /// Endangered.
    Yellow,
    /// High risk.
    Red,
}

impl Light {
    /// Lowercase English name (`green`, `grey`, `yellow`, `red`).
    pub fn as_str(self) -> &'static str {
        match self {
            Light::Green => "green",
            Light::Grey => "grey",
            Light::Yellow => "yellow",
            Light::Red => "red",
        }
    }
}

/// A rule's verdict about one device (or the tenant as a whole).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// Stable rule id, e.g. `availability.silent`.
    pub rule: String,
    /// Service the rule belongs to: `availability`, `performance`, `license`, `threats`, ...
    pub service: String,
    /// Device the finding is about; `None` for tenant-wide findings.
    pub device: Option<String>,
    /// The verdict.
    pub level: Light,
    /// What was observed, with numbers and the window, in plain English.
    pub evidence: String,
    /// What to do about it, in plain English.
    pub recommendation: String,
}
