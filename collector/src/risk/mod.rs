//! Risk scoring: rules over gathered data produce [`Finding`]s; lights aggregate the worst of
//! them; scores stand beside the lights.
//!
//! Everything here is a plain function over data — no store, no clock: the moment judged and
//! the period come in as a [`rules::Window`]. `assess/` gathers the data from the store.
//!
//! # Layout
//! - [`rules`]: [`rules::DeviceInput`] and the built-in rules, [`rules::evaluate`].
//! - [`samples`]: a device's samples reduced to what the rules read, slice by slice of time.
//! - [`forecast`]: least-squares trend fit behind the disk forecast.
//! - [`coverage`]: gaps in a device's samples against the expected interval.
//! - [`aggregate`]: device, service and tenant lights and the 0–100 score.
//! - [`change`]: new / still open / fixed against the previous period.
//! - [`text`]: the rule catalogue with recommendations in English and German.
//! - [`scenario`]: scenario files (device data + expected findings) for `risk test`.

pub mod aggregate;
pub mod change;
pub mod coverage;
pub mod forecast;
pub mod rules;
pub mod samples;
pub mod scenario;
pub mod text;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use aggregate::{ServiceLight, light_of, score_of, service_lights, tenant_score};
pub use change::{Change, FindingChange};

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

/// The services a finding can belong to, in the order reports list them. A rule id starts
/// with its service (`license.expired` belongs to `license`).
pub const SERVICES: [&str; 8] = ["license", "threats", "malware", "mail", "availability", "performance", "traffic", "coverage"];

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
    /// Stable id: the same rule, device and subject give the same id in every period, so a
    /// report can tell new, still open and fixed findings apart. See [`finding_id`].
    #[serde(default)]
    pub id: String,
    /// What on the device the finding is about, when a rule judges several things: a mount,
    /// a licensed feature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// What to do about it, in German.
    #[serde(default)]
    pub recommendation_de: String,
    /// The numbers behind the evidence (e.g. `used_percent`, `allowed`), for machines.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub values: BTreeMap<String, f64>,
    /// The window judged, `[start, end)` in Unix ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_ms: Option<[i64; 2]>,
    /// Compared with the previous period; set by the assessment when it ran both.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change: Option<Change>,
}

impl Finding {
    /// The recommendation in `lang` (`de` for German, English otherwise).
    pub fn recommendation_in(&self, lang: &str) -> &str {
        if lang.starts_with("de") && !self.recommendation_de.is_empty() { &self.recommendation_de } else { &self.recommendation }
    }
}

/// The stable id of a finding: the first 16 hex digits of SHA-256 over rule id, device and
/// subject, separated by NUL bytes. Independent of the level, the numbers and the build.
pub fn finding_id(rule: &str, device: Option<&str>, subject: Option<&str>) -> String {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for part in [rule, device.unwrap_or(""), subject.unwrap_or("")] {
        ctx.update(part.as_bytes());
        ctx.update(&[0]);
    }
    ctx.finish().as_ref()[..8].iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn finding_ids_are_stable_and_tell_subjects_apart() {
        // Pinned: a changed id would make every finding "new" after an upgrade.
        let id = finding_id("performance.disk", Some("fw-1"), Some("/var"));
        assert_eq!(id, "0b76f0cd4bef3bcc");
        assert_eq!(id, finding_id("performance.disk", Some("fw-1"), Some("/var")));
        assert_ne!(id, finding_id("performance.disk", Some("fw-1"), Some("/")));
        assert_ne!(id, finding_id("performance.disk", Some("fw-2"), Some("/var")));
        // The separator keeps ("ab", "c") and ("a", "bc") apart.
        assert_ne!(finding_id("x", Some("ab"), Some("c")), finding_id("x", Some("a"), Some("bc")));
        assert_eq!(finding_id("availability.silent", Some("fw-1"), None), finding_id("availability.silent", Some("fw-1"), Some("")));
    }

    #[test]
    fn recommendations_fall_back_to_english() {
        let f = Finding {
            rule: "r".into(),
            service: "s".into(),
            device: None,
            level: Light::Yellow,
            evidence: String::new(),
            recommendation: "Do it.".into(),
            id: String::new(),
            subject: None,
            recommendation_de: "Mach es.".into(),
            values: BTreeMap::new(),
            window_ms: None,
            change: None,
        };
        assert_eq!(f.recommendation_in("de"), "Mach es.");
        assert_eq!(f.recommendation_in("en"), "Do it.");
    }
}
