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

/// Which hash a file-hash row shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HashKind {
    /// SHA-256, shown whenever the source sent it.
    Sha256,
    /// SHA-1, when there is no SHA-256.
    Sha1,
    /// MD5, when there is nothing stronger.
    Md5,
}

impl HashKind {
    /// The name printed beside the hash.
    pub fn label(self) -> &'static str {
        match self {
            HashKind::Sha256 => "SHA-256",
            HashKind::Sha1 => "SHA-1",
            HashKind::Md5 => "MD5",
        }
    }
}

/// One row of the file-hash widget: a file seen in the period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileHashRow {
    /// The strongest hash the source sent, lowercase hex; `None` when it sent none (Suricata
    /// hashes files only with `force-hash`): then the row stands for the file name.
    pub hash: Option<(HashKind, String)>,
    /// The file name or path (EVE `fileinfo.filename`, ClamAV's path); the most frequent one
    /// when a file came under several.
    pub name: Option<String>,
    /// The verdict: the antivirus detection, or the IDS signature id that matched the file
    /// (`sid 2100498`); `None` when no engine flagged it.
    pub verdict: Option<String>,
    /// Alerts about this file.
    pub count: u64,
    /// The devices that saw it, sorted.
    pub devices: Vec<String>,
}

/// What a file's alerts are counted under: its strongest hash, else its name.
fn file_key(a: &Alert) -> Option<(Option<(HashKind, &str)>, &str)> {
    let hash = [(HashKind::Sha256, &a.sha256), (HashKind::Sha1, &a.sha1), (HashKind::Md5, &a.md5)]
        .into_iter()
        .find_map(|(kind, h)| h.as_deref().filter(|h| !h.is_empty()).map(|h| (kind, h)));
    let is_file = a.source == AlertSource::Antivirus || a.category.as_deref() == Some("file");
    match (hash, a.detail.as_deref()) {
        (Some(h), _) => Some((Some(h), h.1)),
        (None, Some(name)) if is_file && !name.is_empty() => Some((None, name)),
        _ => None,
    }
}

/// The verdict of one alert about a file: EVE's `fileinfo` events carry the matched signature
/// id only; an antivirus detection or an IDS alert its name.
fn verdict_of(a: &Alert) -> Option<String> {
    if a.signature == "fileinfo" {
        return a.signature_id.map(|sid| format!("sid {sid}"));
    }
    Some(a.signature.clone()).filter(|s| !s.is_empty())
}

#[derive(Default)]
struct FileTally<'a> {
    count: u64,
    names: HashMap<&'a str, u64>,
    verdicts: HashMap<Option<String>, u64>,
    devices: BTreeSet<&'a str>,
}

/// The most frequent key of `counts` (ties: the smallest).
fn most<K: Ord + Clone>(counts: HashMap<K, u64>) -> Option<K> {
    counts.into_iter().max_by(|a, b| a.1.cmp(&b.1).then_with(|| b.0.cmp(&a.0))).map(|(k, _)| k)
}

/// The [`TOP_N`] files most often alerted on in `alerts` (device, alert): alerts with a file
/// hash, antivirus detections and EVE `fileinfo` events, counted by their strongest hash (by
/// name when they have none). Most frequent first; on a tie hashed files first, then by hash
/// or name.
pub fn file_hashes<'a>(alerts: impl Iterator<Item = (&'a str, &'a Alert)>) -> Vec<FileHashRow> {
    let mut files: HashMap<(Option<HashKind>, &'a str), FileTally<'a>> = HashMap::new();
    for (device, a) in alerts {
        let Some((hash, key)) = file_key(a) else { continue };
        let t = files.entry((hash.map(|h| h.0), key)).or_default();
        t.count += 1;
        if let Some(name) = a.detail.as_deref().filter(|n| !n.is_empty()) {
            *t.names.entry(name).or_default() += 1;
        }
        *t.verdicts.entry(verdict_of(a)).or_default() += 1;
        t.devices.insert(device);
    }
    let mut rows: Vec<((Option<HashKind>, &str), FileTally<'_>)> = files.into_iter().collect();
    // Most frequent first; on a tie a file with a hash before one known by name only.
    rows.sort_by(|a, b| b.1.count.cmp(&a.1.count).then_with(|| a.0.0.is_none().cmp(&b.0.0.is_none())).then_with(|| a.0.cmp(&b.0)));
    rows.truncate(TOP_N);
    rows.into_iter()
        .map(|((kind, key), t)| FileHashRow {
            hash: kind.map(|k| (k, key.to_owned())),
            name: most(t.names).map(str::to_owned),
            verdict: most(t.verdicts).flatten(),
            count: t.count,
            devices: t.devices.into_iter().map(str::to_owned).collect(),
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn alert(ts: i64, sig: &str, action: AlertAction, src: &str) -> Alert {
        Alert {
            category: Some("scan".into()),
            src: Some(src.into()),
            dst: Some("10.0.0.1".into()),
            sha256: Some("ab".repeat(32)),
            ..Alert::new(ts, AlertSource::Ids, ts.rem_euclid(3) as u8 + 1, sig.into(), action)
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
    fn files_are_counted_by_their_strongest_hash_else_by_name() {
        let file = |name: Option<&str>, md5: Option<&str>, sha256: Option<&str>, sid: Option<u64>| Alert {
            signature: "fileinfo".into(),
            signature_id: sid,
            category: Some("file".into()),
            detail: name.map(str::to_owned),
            md5: md5.map(str::to_owned),
            sha256: sha256.map(str::to_owned),
            ..alert(0, "x", AlertAction::Allowed, "1.1.1.1")
        };
        let eicar = Alert {
            source: AlertSource::Antivirus,
            signature: "Win.Test.EICAR_HDB-1".into(),
            category: None,
            detail: Some("/home/u/eicar.com".into()),
            sha256: None,
            ..alert(0, "x", AlertAction::Quarantined, "1.1.1.1")
        };
        let alerts = [
            ("fw-1", file(Some("a.exe"), Some("m1"), Some("s1"), Some(7))),
            ("fw-2", file(Some("b.exe"), Some("m1"), Some("s1"), None)),
            ("fw-2", file(Some("a.exe"), Some("m1"), Some("s1"), Some(7))),
            ("fw-1", file(Some("c.txt"), Some("m2"), None, None)),
            ("fw-1", file(Some("nohash.pdf"), None, None, None)),
            ("fw-1", file(None, None, None, None)),
            ("av-1", eicar.clone()),
            ("av-1", eicar),
            // An IDS alert about no file.
            ("fw-1", Alert { sha256: None, ..alert(0, "ET SCAN", AlertAction::Allowed, "1.1.1.1") }),
        ];
        let rows = file_hashes(alerts.iter().map(|(d, a)| (*d, a)));
        /// Hash, name, verdict, count, devices.
        type Row<'a> = (Option<(HashKind, &'a str)>, Option<&'a str>, Option<&'a str>, u64, usize);
        let got: Vec<Row<'_>> = rows
            .iter()
            .map(|r| (r.hash.as_ref().map(|h| (h.0, h.1.as_str())), r.name.as_deref(), r.verdict.as_deref(), r.count, r.devices.len()))
            .collect();
        assert_eq!(
            got,
            vec![
                (Some((HashKind::Sha256, "s1")), Some("a.exe"), Some("sid 7"), 3, 2),
                (None, Some("/home/u/eicar.com"), Some("Win.Test.EICAR_HDB-1"), 2, 1),
                (Some((HashKind::Md5, "m2")), Some("c.txt"), None, 1, 1),
                (None, Some("nohash.pdf"), None, 1, 1),
            ]
        );
        let many: Vec<Alert> = (0..30).map(|i| file(Some("f"), None, Some(&format!("{i:02}")), None)).collect();
        assert_eq!(file_hashes(many.iter().map(|a| ("d", a))).len(), TOP_N);
    }

    #[test]
    fn stat_skips_values_that_are_not_finite() {
        assert_eq!(Stat::of(&[]), None);
        let s = Stat::of(&[(0, 10.0), (1, f64::NAN), (2, 30.0)]).unwrap();
        assert_eq!((s.min, s.avg, s.max), (10.0, 20.0, 30.0));
    }
}
