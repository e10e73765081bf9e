//! The figures behind the report's sections, as plain functions over data.
//!
//! The data gathering (`assess/`) already holds the period's alerts for the risk rules, so the
//! sections are computed from those rather than read again: the alerts are split by source here
//! (threats, malware, mail), which the store's tenant-wide summary does not do. (The per-device
//! min / avg / max come from the rollups; [`Stat::of`] is their definition over raw samples.)

use std::collections::{BTreeSet, HashMap};

use ampel_protocol::{Alert, AlertAction, AlertSource};

/// Rows kept in each top-N table.
pub const TOP_N: usize = 10;

/// Lowest, average and highest value of a series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stat {
    /// Smallest value.
    pub min: f64,
    /// Mean of all values.
    pub avg: f64,
    /// Largest value.
    pub max: f64,
}

impl Stat {
    /// Min / avg / max of the finite values of `points`; `None` if there are none.
    pub fn of(points: &[(i64, f64)]) -> Option<Stat> {
        let mut n = 0u64;
        let (mut min, mut max, mut sum) = (f64::INFINITY, f64::NEG_INFINITY, 0.0);
        for &(_, v) in points {
            if v.is_finite() {
                n += 1;
                min = min.min(v);
                max = max.max(v);
                sum += v;
            }
        }
        (n > 0).then(|| Stat { min, avg: sum / n as f64, max })
    }
}

/// Bytes of one device's interface (and category, for per-category counters) in the period.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct TrafficRow {
    /// Device id.
    pub device: String,
    /// Interface name.
    pub interface: String,
    /// Category (application protocol, nftables counter); `None` for interface totals.
    pub category: Option<String>,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
}

/// One section's alerts: totals, actions, per day and top-N tables.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlertStats {
    /// Alerts in the period.
    pub total: u64,
    /// Let through.
    pub allowed: u64,
    /// Blocked, quarantined or rejected.
    pub blocked: u64,
    /// No action stated by the source.
    pub unknown_action: u64,
    /// Alerts per local day of the report: one count per day of the period, in order.
    pub per_day: Vec<(i64, u64)>,
    /// Most frequent signatures (detections, mail reasons), most frequent first.
    pub signatures: Vec<(String, u64)>,
    /// Most frequent source addresses.
    pub sources: Vec<(String, u64)>,
    /// Most frequent destination addresses.
    pub destinations: Vec<(String, u64)>,
    /// Most frequent categories.
    pub categories: Vec<(String, u64)>,
    /// Count per severity, most severe (1) first.
    pub severities: Vec<(u8, u64)>,
    /// Devices with the most alerts.
    pub devices: Vec<(String, u64)>,
    /// Distinct addresses and file hashes seen.
    pub indicators: u64,
}

/// Which report section an alert belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertSection {
    /// IDS, firewall, authentication, other.
    Threats,
    /// Antivirus.
    Malware,
    /// Mail quarantine.
    Mail,
}

impl AlertSection {
    /// The section of an alert source.
    pub fn of(source: AlertSource) -> AlertSection {
        match source {
            AlertSource::Antivirus => AlertSection::Malware,
            AlertSource::Mail => AlertSection::Mail,
            AlertSource::Ids | AlertSource::Firewall | AlertSource::Auth | AlertSource::Other => AlertSection::Threats,
        }
    }
}

/// Whether an engine acted on the alert (blocked, quarantined, rejected).
pub fn is_blocked(action: AlertAction) -> bool {
    matches!(action, AlertAction::Blocked | AlertAction::Quarantined | AlertAction::Rejected)
}

fn top(counts: HashMap<&str, u64>) -> Vec<(String, u64)> {
    let mut v: Vec<(&str, u64)> = counts.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    v.truncate(TOP_N);
    v.into_iter().map(|(k, c)| (k.to_owned(), c)).collect()
}

/// The statistics of `alerts` (device, alert). `days` are the starts of the report's local
/// days (Unix ms, ascending); each alert is counted under the last day starting at or before
/// it, alerts before the first day are not counted per day.
pub fn alert_stats<'a>(alerts: impl Iterator<Item = (&'a str, &'a Alert)>, days: &[i64]) -> AlertStats {
    let mut s = AlertStats::default();
    let mut per_day = vec![0u64; days.len()];
    let (mut sig, mut src, mut dst, mut cat, mut dev) = (HashMap::new(), HashMap::new(), HashMap::new(), HashMap::new(), HashMap::new());
    let mut sev: HashMap<u8, u64> = HashMap::new();
    let mut indicators: BTreeSet<&str> = BTreeSet::new();
    for (device, a) in alerts {
        s.total += 1;
        match a.action {
            AlertAction::Allowed => s.allowed += 1,
            AlertAction::Unknown => s.unknown_action += 1,
            _ => s.blocked += 1,
        }
        let i = days.partition_point(|&d| d <= a.ts);
        if let Some(slot) = i.checked_sub(1).and_then(|i| per_day.get_mut(i)) {
            *slot += 1;
        }
        *sig.entry(a.signature.as_str()).or_default() += 1;
        if let Some(v) = &a.src {
            *src.entry(v.as_str()).or_default() += 1;
            indicators.insert(v);
        }
        if let Some(v) = &a.dst {
            *dst.entry(v.as_str()).or_default() += 1;
            indicators.insert(v);
        }
        if let Some(v) = &a.category {
            *cat.entry(v.as_str()).or_default() += 1;
        }
        for h in [&a.md5, &a.sha1, &a.sha256].into_iter().flatten() {
            indicators.insert(h);
        }
        *sev.entry(a.severity).or_default() += 1;
        *dev.entry(device).or_default() += 1;
    }
    s.per_day = days.iter().copied().zip(per_day).collect();
    s.signatures = top(sig);
    s.sources = top(src);
    s.destinations = top(dst);
    s.categories = top(cat);
    s.devices = top(dev);
    let mut sev: Vec<(u8, u64)> = sev.into_iter().collect();
    sev.sort_unstable();
    s.severities = sev;
    s.indicators = indicators.len() as u64;
    s
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn alert(ts: i64, sig: &str, action: AlertAction, src: &str) -> Alert {
        Alert {
            ts,
            source: AlertSource::Ids,
            severity: ts.rem_euclid(3) as u8 + 1,
            signature_id: None,
            signature: sig.into(),
            category: Some("scan".into()),
            action,
            src: Some(src.into()),
            dst: Some("10.0.0.1".into()),
            detail: None,
            src_port: None,
            dst_port: None,
            protocol: None,
            app_proto: None,
            signature_rev: None,
            md5: None,
            sha1: None,
            sha256: Some("ab".repeat(32)),
        }
    }

    #[test]
    fn alerts_are_counted_per_day_action_and_value() {
        let alerts = [
            alert(5, "b", AlertAction::Allowed, "1.1.1.1"),
            alert(15, "a", AlertAction::Blocked, "1.1.1.1"),
            alert(16, "a", AlertAction::Quarantined, "2.2.2.2"),
            alert(25, "c", AlertAction::Unknown, "3.3.3.3"),
            alert(-1, "c", AlertAction::Allowed, "3.3.3.3"),
        ];
        let s = alert_stats(alerts.iter().map(|a| ("fw-1", a)), &[0, 10, 20]);
        assert_eq!((s.total, s.allowed, s.blocked, s.unknown_action), (5, 2, 2, 1));
        assert_eq!(s.per_day, vec![(0, 1), (10, 2), (20, 1)]);
        assert_eq!(s.signatures, vec![("a".to_owned(), 2), ("c".to_owned(), 2), ("b".to_owned(), 1)]);
        assert_eq!(s.devices, vec![("fw-1".to_owned(), 5)]);
        // Three source addresses, one destination, one hash.
        assert_eq!(s.indicators, 5);
        assert_eq!(s.severities.iter().map(|x| x.1).sum::<u64>(), 5);
        let many: Vec<Alert> = (0..50).map(|i| alert(i, &format!("s{i:02}"), AlertAction::Allowed, "x")).collect();
        assert_eq!(alert_stats(many.iter().map(|a| ("d", a)), &[]).signatures.len(), TOP_N);
    }

    #[test]
    fn stat_skips_values_that_are_not_finite() {
        assert_eq!(Stat::of(&[]), None);
        let s = Stat::of(&[(0, 10.0), (1, f64::NAN), (2, 30.0)]).unwrap();
        assert_eq!((s.min, s.avg, s.max), (10.0, 20.0, 30.0));
    }
}
