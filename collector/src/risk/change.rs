//! Change since the last period: which findings are new, still open or fixed, by their stable
//! [`Finding::id`](super::Finding::id).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Finding, Light, Rule};

/// How a finding compares with the previous period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Change {
    /// Not there in the previous period.
    New,
    /// There in both periods (its level may have changed).
    StillOpen,
    /// There in the previous period, gone now.
    Fixed,
}

impl Change {
    /// Lowercase English name (`new`, `still open`, `fixed`).
    pub fn as_str(self) -> &'static str {
        match self {
            Change::New => "new",
            Change::StillOpen => "still open",
            Change::Fixed => "fixed",
        }
    }
}

/// One finding id's change.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FindingChange {
    /// The stable finding id.
    pub id: String,
    /// New, still open or fixed.
    pub change: Change,
    /// The rule; serialized as its id.
    pub rule: Rule,
    /// Device, if any.
    pub device: Option<String>,
    /// Subject (mount, feature), if any.
    pub subject: Option<String>,
    /// Level in the previous period, if it was there.
    pub previous: Option<Light>,
    /// Level now, if it is there.
    pub current: Option<Light>,
}

/// Compares the findings of the previous period with the current ones. Green findings do not
/// count as open. Sorted: new, still open, fixed; then by device, rule and subject.
pub fn compare(previous: &[Finding], current: &[Finding]) -> Vec<FindingChange> {
    let open = |fs: &[Finding]| -> BTreeMap<String, Finding> {
        fs.iter().filter(|f| f.level != Light::Green).map(|f| (f.id.clone(), f.clone())).collect()
    };
    let (prev, cur) = (open(previous), open(current));
    let mut out: Vec<FindingChange> = Vec::new();
    for (id, f) in &cur {
        let before = prev.get(id).map(|p| p.level);
        out.push(FindingChange {
            id: id.clone(),
            change: if before.is_some() { Change::StillOpen } else { Change::New },
            rule: f.rule,
            device: f.device.clone(),
            subject: f.subject.clone(),
            previous: before,
            current: Some(f.level),
        });
    }
    for (id, f) in prev.iter().filter(|(id, _)| !cur.contains_key(*id)) {
        out.push(FindingChange {
            id: id.clone(),
            change: Change::Fixed,
            rule: f.rule,
            device: f.device.clone(),
            subject: f.subject.clone(),
            previous: Some(f.level),
            current: None,
        });
    }
    out.sort_by(|a, b| (a.change, &a.device, &a.rule, &a.subject).cmp(&(b.change, &b.device, &b.rule, &b.subject)));
    out
}

/// Sets [`Finding::change`] on `current` from [`compare`]'s result.
pub fn mark(current: &mut [Finding], changes: &[FindingChange]) {
    for f in current {
        f.change = changes.iter().find(|c| c.id == f.id && c.change != Change::Fixed).map(|c| c.change);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::risk::finding_id;

    fn f(rule: &str, subject: Option<&str>, level: Light) -> Finding {
        let rule = Rule::from_id(rule).unwrap();
        Finding {
            rule,
            device: Some("fw-1".into()),
            level,
            id: finding_id(rule, Some("fw-1"), subject),
            subject: subject.map(Into::into),
            facts: crate::risk::Facts::NeverSeen,
            window_ms: [0, 1],
            change: None,
        }
    }

    #[test]
    #[allow(clippy::type_complexity)]
    fn new_still_open_and_fixed() {
        let prev = [f("performance.disk", Some("/var"), Light::Yellow), f("availability.silent", None, Light::Red)];
        let mut cur = vec![f("performance.disk", Some("/var"), Light::Red), f("performance.disk", Some("/"), Light::Yellow)];
        let c = compare(&prev, &cur);
        let got: Vec<(Change, &str, Option<&str>, Option<Light>, Option<Light>)> =
            c.iter().map(|c| (c.change, c.rule.id(), c.subject.as_deref(), c.previous, c.current)).collect();
        assert_eq!(
            got,
            vec![
                (Change::New, "performance.disk", Some("/"), None, Some(Light::Yellow)),
                (Change::StillOpen, "performance.disk", Some("/var"), Some(Light::Yellow), Some(Light::Red)),
                (Change::Fixed, "availability.silent", None, Some(Light::Red), None),
            ]
        );
        mark(&mut cur, &c);
        assert_eq!(cur[0].change, Some(Change::StillOpen));
        assert_eq!(cur[1].change, Some(Change::New));
    }

    #[test]
    fn green_is_not_open_and_nothing_before_means_all_new() {
        let c = compare(&[f("performance.cpu", None, Light::Green)], &[f("performance.cpu", None, Light::Yellow)]);
        assert_eq!(c[0].change, Change::New);
        assert!(compare(&[], &[]).is_empty());
    }
}
