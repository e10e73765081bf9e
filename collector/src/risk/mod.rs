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
//! - [`facts`]: [`Rule`], the typed [`Facts`] of a finding and the [`Advice`] that fits them;
//!   `report::catalogue` words them per language.
//! - [`scenario`]: scenario files (device data + expected findings) for `risk test`.

pub mod aggregate;
pub mod change;
pub mod coverage;
pub mod facts;
pub mod forecast;
pub mod rules;
pub mod samples;
pub mod scenario;

use serde::{Deserialize, Serialize};

pub use aggregate::{ServiceLight, light_of, score_of, service_lights, tenant_score};
pub use change::{Change, FindingChange};
pub use facts::{Advice, Facts, GapFacts, Rule, SignatureCount};

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

/// A rule's verdict about one device (or the tenant as a whole): typed facts, no prose. The
/// words come from `report::catalogue`, in the reader's language.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// The rule that fired; serialized as its id, e.g. `availability.silent`.
    pub rule: Rule,
    /// Device the finding is about; `None` for tenant-wide findings.
    pub device: Option<String>,
    /// The verdict.
    pub level: Light,
    /// Stable id: the same rule, device and subject give the same id in every period, so a
    /// report can tell new, still open and fixed findings apart. See [`finding_id`].
    pub id: String,
    /// What on the device the finding is about, when a rule judges several things: a mount,
    /// a licensed feature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// What the rule saw.
    pub facts: Facts,
    /// The window judged, `[start, end)` in Unix ms.
    pub window_ms: [i64; 2],
    /// Compared with the previous period; set by the assessment when it ran both.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change: Option<Change>,
}

impl Finding {
    /// The service the finding belongs to, one of [`SERVICES`].
    pub fn service(&self) -> &'static str {
        self.rule.service()
    }

    /// What to do about it, chosen by the facts.
    pub fn advice(&self) -> Advice {
        Advice::choose(self.rule, &self.facts, self.subject.as_deref(), self.level)
    }
}

/// The stable id of a finding: the first 16 hex digits of SHA-256 over rule id, device and
/// subject, separated by NUL bytes. Independent of the level, the numbers and the build.
pub fn finding_id(rule: Rule, device: Option<&str>, subject: Option<&str>) -> String {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for part in [rule.id(), device.unwrap_or(""), subject.unwrap_or("")] {
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
        let id = finding_id(Rule::Disk, Some("fw-1"), Some("/var"));
        assert_eq!(id, "0b76f0cd4bef3bcc");
        assert_eq!(id, finding_id(Rule::Disk, Some("fw-1"), Some("/var")));
        assert_ne!(id, finding_id(Rule::Disk, Some("fw-1"), Some("/")));
        assert_ne!(id, finding_id(Rule::Disk, Some("fw-2"), Some("/var")));
        // The separator keeps ("ab", "c") and ("a", "bc") apart.
        assert_ne!(finding_id(Rule::Disk, Some("ab"), Some("c")), finding_id(Rule::Disk, Some("a"), Some("bc")));
        assert_eq!(finding_id(Rule::Silent, Some("fw-1"), None), finding_id(Rule::Silent, Some("fw-1"), Some("")));
    }

    /// `risk show --json` prints findings with the rule id and the typed facts, and they read
    /// back as they were.
    #[test]
    fn findings_serialize_as_rule_id_and_typed_facts() {
        let f = Finding {
            rule: Rule::IdsSevere,
            device: Some("fw-1".into()),
            level: Light::Yellow,
            id: finding_id(Rule::IdsSevere, Some("fw-1"), None),
            subject: None,
            facts: Facts::IdsAlerts {
                severity: 1,
                alerts: 3,
                allowed: 0,
                blocked: 3,
                top: vec![SignatureCount { name: "ET EXPLOIT x".into(), count: 3 }],
            },
            window_ms: [0, 86_400_000],
            change: None,
        };
        let json: serde_json::Value = serde_json::to_value(&f).unwrap();
        assert_eq!(json["rule"], "threats.ids-severe");
        assert_eq!(json["facts"]["kind"], "ids-alerts");
        assert_eq!((json["facts"]["allowed"].as_u64(), json["facts"]["blocked"].as_u64()), (Some(0), Some(3)));
        assert_eq!(json["facts"]["top"][0]["name"], "ET EXPLOIT x");
        assert_eq!(serde_json::from_value::<Finding>(json).unwrap(), f);
        assert_eq!(f.advice(), Advice::IdsAllBlocked);
    }
}
