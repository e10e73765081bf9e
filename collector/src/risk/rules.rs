//! The built-in rules. Plain functions over gathered data — no store, no clock: the moment
//! judged is the end of the [`Window`].
//!
//! | rule | service | light |
//! | --- | --- | --- |
//! | `license.expired` | license | red: not licensed, or expiry passed |
//! | `license.expiring` | license | yellow: expires within `license-warning` |
//! | `license.expiry-forecast` | license | yellow: expires before the next report |
//! | `license.unknown` / `license.missing` | license | grey |
//! | `threats.ids-severe` | threats | red: severe IDS alert allowed; yellow: all blocked |
//! | `malware.found` | malware | red: not quarantined; yellow: all quarantined |
//! | `mail.quarantine-spike` | mail | yellow |
//! | `availability.silent` / `availability.never-seen` | availability | yellow, red / grey |
//! | `availability.certificate-expiring` / `-expired` | availability | yellow / red |
//! | `performance.cpu` / `.memory` / `.disk` | performance | yellow, red |
//! | `performance.disk-full-forecast` | performance | yellow |
//! | `traffic.capture-drops` | traffic | yellow |
//! | `coverage.gaps` / `coverage.no-performance-data` | coverage | grey |

use std::collections::BTreeMap;

use ampel_protocol::model::{Alert, AlertAction, AlertSource, License};
use jiff::tz::TimeZone;

use super::facts::{Facts, GapFacts, MAX_LISTED_GAPS, Rule, SignatureCount};
use super::samples::{SampleFacts, wants_forecast};
use super::{Finding, Light, finding_id};
use crate::config::RiskConfig;

pub use super::aggregate::{light_of, score_of, tenant_score};

/// Metric names the rules read (a contract with the agent). The IDS capture metrics are
/// configurable (`[risk] capture-*-metric`).
pub mod metrics {
    /// CPU usage, percent.
    pub const CPU: &str = "cpu.usage_percent";
    /// Memory used, percent.
    pub const MEMORY: &str = "memory.used_percent";
    /// Disk used, percent, label `mount`.
    pub const DISK_USED: &str = "disk.used_percent";
    /// The notAfter of the device certificate in force, Unix seconds (sent by the agent).
    pub const CERT_EXPIRES_AT: &str = "agent.cert_expires_at";
}

/// The samples of one file system.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Disk {
    /// Mount point.
    pub mount: String,
    /// `disk.used_percent` samples in the period, time-ordered.
    pub points: Vec<(i64, f64)>,
}

/// The file system a `disk.used_percent` series is about: its `mount` label, `?` without one.
pub fn mount_of(labels: &[(String, String)]) -> &str {
    labels.iter().find(|(k, _)| k == "mount").map_or("?", |(_, v)| v.as_str())
}

/// What the rules look at for one device.
///
/// The rules read the samples through [`SampleFacts`], reduced from the sample fields here.
/// Callers that hold a device's samples in memory (scenarios, tests) fill them and call
/// [`evaluate`]; the store's gathering leaves them empty, streams the period through a
/// [`super::samples::SampleReducer`] a slice of time at a time (each slice a `DeviceInput`
/// too) and calls [`evaluate_with`].
#[derive(Debug, Clone, Default)]
pub struct DeviceInput {
    /// Device id.
    pub device: String,
    /// First batch received, Unix ms; coverage is not asked for before it.
    pub first_seen_ms: Option<i64>,
    /// Last batch received, Unix ms; `None` if never.
    pub last_seen_ms: Option<i64>,
    /// CPU usage samples in the period.
    pub cpu: Vec<(i64, f64)>,
    /// Memory usage samples in the period.
    pub memory: Vec<(i64, f64)>,
    /// Per mount: usage samples in the period.
    pub disks: Vec<Disk>,
    /// IDS capture: dropped packets per interval (all series together).
    pub capture_drops: Vec<(i64, f64)>,
    /// IDS capture: captured packets per interval (all series together).
    pub capture_packets: Vec<(i64, f64)>,
    /// The latest license state, if the device ever sent one.
    pub license: Option<License>,
    /// `agent.cert_expires_at` samples in the period (notAfter, Unix seconds).
    pub cert_expires_at: Vec<(i64, f64)>,
    /// The device's alerts in the period.
    pub alerts: Vec<Alert>,
}

impl DeviceInput {
    /// Files a metric series under the field the rules read it from; other names are ignored.
    /// Series of one name are merged and kept time-ordered.
    pub fn add_series(&mut self, name: &str, labels: &[(String, String)], points: Vec<(i64, f64)>, cfg: &RiskConfig) {
        let target = if name == metrics::CPU {
            &mut self.cpu
        } else if name == metrics::MEMORY {
            &mut self.memory
        } else if name == metrics::CERT_EXPIRES_AT {
            &mut self.cert_expires_at
        } else if name == cfg.capture_drops_metric.0 {
            &mut self.capture_drops
        } else if name == cfg.capture_packets_metric.0 {
            &mut self.capture_packets
        } else if name == metrics::DISK_USED {
            let mount = mount_of(labels);
            match self.disks.iter().position(|d| d.mount == mount) {
                Some(i) => &mut self.disks[i].points,
                None => {
                    self.disks.push(Disk { mount: mount.to_owned(), points: Vec::new() });
                    let last = self.disks.len() - 1;
                    &mut self.disks[last].points
                }
            }
        } else {
            return;
        };
        target.extend(points);
        target.sort_by_key(|p| p.0);
    }

    /// Times of every sample the device sent in the period (for coverage).
    pub fn sample_times(&self) -> Vec<i64> {
        let mut ts: Vec<i64> = self
            .cpu
            .iter()
            .chain(&self.memory)
            .chain(&self.capture_drops)
            .chain(&self.capture_packets)
            .chain(self.disks.iter().flat_map(|d| &d.points))
            .map(|p| p.0)
            .collect();
        ts.sort_unstable();
        ts.dedup();
        ts
    }
}

/// The period judged, `[start_ms, end_ms)`, and the time zone its days are counted in. The
/// end is "now" for the rules: a report judges the state at its end.
#[derive(Debug, Clone)]
pub struct Window {
    /// Start, Unix ms (inclusive).
    pub start_ms: i64,
    /// End, Unix ms (exclusive); the moment judged.
    pub end_ms: i64,
    /// Time zone of the report: days (mail spike) and dates in evidence.
    pub tz: TimeZone,
}

impl Window {
    /// A window in UTC.
    pub fn utc(start_ms: i64, end_ms: i64) -> Window {
        Window { start_ms, end_ms, tz: TimeZone::UTC }
    }

    fn len_ms(&self) -> i64 {
        self.end_ms.saturating_sub(self.start_ms)
    }

    /// Whether `ts` lies in `[start_ms, end_ms)`.
    pub(crate) fn contains(&self, ts: i64) -> bool {
        (self.start_ms..self.end_ms).contains(&ts)
    }

    /// The local calendar date of `ms`.
    fn day_of(&self, ms: i64) -> Option<jiff::civil::Date> {
        jiff::Timestamp::from_millisecond(ms).ok().map(|ts| ts.to_zoned(self.tz.clone()).date())
    }
}

/// Collects one device's findings.
struct Out<'a> {
    dev: &'a DeviceInput,
    facts: &'a SampleFacts,
    win: &'a Window,
    findings: Vec<Finding>,
}

impl Out<'_> {
    fn push(&mut self, rule: Rule, subject: Option<&str>, level: Light, facts: Facts) {
        self.findings.push(Finding {
            rule,
            device: Some(self.dev.device.clone()),
            level,
            id: finding_id(rule, Some(&self.dev.device), subject),
            subject: subject.map(str::to_owned),
            facts,
            window_ms: [self.win.start_ms, self.win.end_ms],
            change: None,
        });
    }
}

/// Runs every rule over one device for `win`, with the samples `dev` holds.
pub fn evaluate(dev: &DeviceInput, cfg: &RiskConfig, win: &Window) -> Vec<Finding> {
    evaluate_with(dev, &SampleFacts::of(dev, cfg, win), cfg, win)
}

/// Runs every rule over one device for `win`, with its samples already reduced to `facts`
/// (for the same `cfg` and `win`); the sample fields of `dev` are not read.
pub fn evaluate_with(dev: &DeviceInput, facts: &SampleFacts, cfg: &RiskConfig, win: &Window) -> Vec<Finding> {
    let mut out = Out { dev, facts, win, findings: Vec::new() };
    license(&mut out, cfg);
    ids(&mut out, cfg);
    malware(&mut out);
    mail_spike(&mut out, cfg);
    availability(&mut out, cfg);
    certificate(&mut out, cfg);
    performance(&mut out, cfg);
    disks(&mut out, cfg);
    capture(&mut out, cfg);
    coverage_rules(&mut out, cfg);
    out.findings
}

fn license(out: &mut Out<'_>, cfg: &RiskConfig) {
    let Some(lic) = out.dev.license.clone() else {
        if cfg.license_required && out.dev.last_seen_ms.is_some() {
            out.push(Rule::LicenseMissing, None, Light::Grey, Facts::LicenseMissing);
        }
        return;
    };
    if let Some(reason) = &lic.unknown_reason {
        out.push(Rule::LicenseUnknown, None, Light::Grey, Facts::LicenseUnknown { product: lic.product.clone(), reason: reason.clone() });
        return;
    }
    if !lic.licensed {
        out.push(Rule::LicenseExpired, None, Light::Red, Facts::NotLicensed { product: lic.product.clone(), state_ms: lic.ts });
    } else if let Some(exp) = lic.expires {
        expiry(out, cfg, None, &lic.product, exp);
    }
    for feature in &lic.features {
        if let Some(exp) = feature.expires {
            expiry(out, cfg, Some(&feature.name), &lic.product, exp);
        }
    }
}

/// Expired (red), expiring within the warning time (yellow), or expiring before the next
/// report, one period length ahead (yellow forecast). `feature` is the subject.
fn expiry(out: &mut Out<'_>, cfg: &RiskConfig, feature: Option<&str>, product: &str, expires: i64) {
    let left = expires.saturating_sub(out.win.end_ms);
    let warn = cfg.license_warning.as_ms();
    let (rule, level, horizon_ms) = if left <= 0 {
        (Rule::LicenseExpired, Light::Red, warn)
    } else if left <= warn {
        (Rule::LicenseExpiring, Light::Yellow, warn)
    } else if left <= out.win.len_ms() {
        (Rule::LicenseExpiryForecast, Light::Yellow, out.win.len_ms())
    } else {
        return;
    };
    out.push(rule, feature, level, Facts::LicenseExpiry { product: product.to_owned(), expires_ms: expires, left_ms: left, horizon_ms });
}

/// Whether the device stopped what the alert is about. `unknown` counts as not stopped: an
/// alert we cannot prove was blocked is treated as let through.
fn blocked(action: AlertAction) -> bool {
    matches!(action, AlertAction::Blocked | AlertAction::Quarantined | AlertAction::Rejected)
}

/// The most frequent signatures, at most three, most frequent first.
fn top_signatures<'a>(alerts: impl Iterator<Item = &'a Alert>) -> Vec<SignatureCount> {
    let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
    for a in alerts {
        *counts.entry(a.signature.as_str()).or_default() += 1;
    }
    let mut v: Vec<(&str, u64)> = counts.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    v.into_iter().take(3).map(|(name, count)| SignatureCount { name: name.to_owned(), count }).collect()
}

fn ids(out: &mut Out<'_>, cfg: &RiskConfig) {
    let sev = cfg.ids_severity.0;
    let severe: Vec<&Alert> =
        out.dev.alerts.iter().filter(|a| a.source == AlertSource::Ids && a.severity <= sev && out.win.contains(a.ts)).collect();
    if severe.is_empty() {
        return;
    }
    let allowed = severe.iter().filter(|a| !blocked(a.action)).count() as u64;
    let alerts = severe.len() as u64;
    let level = if allowed > 0 { Light::Red } else { Light::Yellow };
    let top = top_signatures(severe.iter().copied());
    out.push(Rule::IdsSevere, None, level, Facts::IdsAlerts { severity: sev, alerts, allowed, blocked: alerts - allowed, top });
}

fn malware(out: &mut Out<'_>) {
    let found: Vec<&Alert> = out.dev.alerts.iter().filter(|a| a.source == AlertSource::Antivirus && out.win.contains(a.ts)).collect();
    if found.is_empty() {
        return;
    }
    let loose = found.iter().filter(|a| !blocked(a.action)).count() as u64;
    let detections = found.len() as u64;
    let level = if loose > 0 { Light::Red } else { Light::Yellow };
    let top = top_signatures(found.iter().copied());
    out.push(Rule::MalwareFound, None, level, Facts::Malware { detections, not_quarantined: loose, quarantined: detections - loose, top });
}

/// Quarantined mails on the period's last local day against the mean of the days before.
fn mail_spike(out: &mut Out<'_>, cfg: &RiskConfig) {
    let win = out.win;
    let (Some(first), Some(last)) = (win.day_of(win.start_ms), win.day_of(win.end_ms.saturating_sub(1))) else {
        return;
    };
    if first >= last {
        return; // one day or less: nothing to compare with
    }
    let mut per_day: BTreeMap<jiff::civil::Date, u32> = BTreeMap::new();
    for a in out.dev.alerts.iter().filter(|a| a.source == AlertSource::Mail && a.action == AlertAction::Quarantined && win.contains(a.ts)) {
        if let Some(d) = win.day_of(a.ts) {
            *per_day.entry(d).or_default() += 1;
        }
    }
    let today = per_day.get(&last).copied().unwrap_or(0);
    // Every local day from the first to the one before the last, quiet days included.
    let mut days = 0u32;
    let mut d = first;
    while d < last {
        days += 1;
        match d.tomorrow() {
            Ok(next) => d = next,
            Err(_) => break,
        }
    }
    let before: u32 = per_day.range(first..last).map(|(_, n)| n).sum();
    let mean = f64::from(before) / f64::from(days.max(1));
    let factor = cfg.mail_spike_factor.0;
    if today >= cfg.mail_spike_min_count && f64::from(today) >= mean * factor {
        let facts = Facts::MailSpike {
            // The window's last moment lies on the last local day, whatever the zone's midnights.
            day_ms: win.end_ms.saturating_sub(1),
            today: u64::from(today),
            daily_mean: mean,
            days: u64::from(days),
            factor,
            min_count: u64::from(cfg.mail_spike_min_count),
        };
        out.push(Rule::MailQuarantineSpike, None, Light::Yellow, facts);
    }
}

fn availability(out: &mut Out<'_>, cfg: &RiskConfig) {
    let Some(last) = out.dev.last_seen_ms else {
        out.push(Rule::NeverSeen, None, Light::Grey, Facts::NeverSeen);
        return;
    };
    let silent = out.win.end_ms.saturating_sub(last);
    let (yellow_ms, red_ms) = (cfg.silent_yellow.as_ms(), cfg.silent_red.as_ms());
    let level = if silent >= red_ms {
        Light::Red
    } else if silent >= yellow_ms {
        Light::Yellow
    } else {
        return;
    };
    out.push(Rule::Silent, None, level, Facts::Silent { last_seen_ms: last, silent_ms: silent, yellow_ms, red_ms });
}

/// The device certificate, as the agent last reported it in the period: expired (red) or
/// expiring within `certificate-warning` (yellow), which means renewal has been failing.
fn certificate(out: &mut Out<'_>, cfg: &RiskConfig) {
    let Some((_, not_after_s)) = out.facts.certificate else {
        return;
    };
    if !not_after_s.is_finite() {
        return;
    }
    let expires = (not_after_s * 1000.0) as i64;
    let left = expires.saturating_sub(out.win.end_ms);
    let warning_ms = cfg.certificate_warning.as_ms();
    let (rule, level) = if left <= 0 {
        (Rule::CertificateExpired, Light::Red)
    } else if left <= warning_ms {
        (Rule::CertificateExpiring, Light::Yellow)
    } else {
        return;
    };
    out.push(rule, None, level, Facts::Certificate { expires_ms: expires, left_ms: left, warning_ms });
}

fn performance(out: &mut Out<'_>, cfg: &RiskConfig) {
    let share = cfg.high_share_percent.0 / 100.0;
    for (rule, samples, limit) in
        [(Rule::Cpu, out.facts.cpu, cfg.cpu_high_percent.0), (Rule::Memory, out.facts.memory, cfg.memory_high_percent.0)]
    {
        if samples.samples == 0 {
            continue;
        }
        let frac = samples.high as f64 / samples.samples as f64;
        let red_share = (2.0 * share).min(1.0);
        let level = if frac > red_share && share > 0.0 {
            Light::Red
        } else if frac > share {
            Light::Yellow
        } else {
            continue;
        };
        let facts = Facts::Usage {
            limit_percent: limit,
            high_share_percent: frac * 100.0,
            samples: samples.samples as u64,
            yellow_share_percent: share * 100.0,
            red_share_percent: red_share * 100.0,
        };
        out.push(rule, None, level, facts);
    }
}

fn disks(out: &mut Out<'_>, cfg: &RiskConfig) {
    let facts = out.facts;
    for disk in &facts.disks {
        let (Some(first_ts), Some((last_ts, used))) = (disk.first_ms, disk.last) else { continue };
        let mount = disk.mount.as_str();
        let (yellow_percent, red_percent) = (cfg.disk_yellow_percent.0, cfg.disk_red_percent.0);
        let level = if used >= red_percent {
            Some(Light::Red)
        } else if used >= yellow_percent {
            Some(Light::Yellow)
        } else {
            None
        };
        if let Some(level) = level {
            out.push(Rule::Disk, Some(mount), level, Facts::DiskUsage { used_percent: used, at_ms: last_ts, yellow_percent, red_percent });
        }
        // Not when red already or full, nor from fewer than three samples or too short a span.
        if !wants_forecast(cfg, disk) {
            continue;
        }
        let Some(trend) = disk.trend else { continue };
        let Some(full) = trend.reaches(100.0) else { continue };
        let left = full.saturating_sub(out.win.end_ms).max(0);
        let warning_ms = cfg.disk_full_within.as_ms();
        if left <= warning_ms {
            let facts = Facts::DiskForecast {
                used_percent: used,
                growth_per_day: trend.slope_per_day,
                samples: disk.samples as u64,
                first_ms: first_ts,
                last_ms: last_ts,
                full_ms: full,
                left_ms: left,
                warning_ms,
            };
            out.push(Rule::DiskFullForecast, Some(mount), Light::Yellow, facts);
        }
    }
}

fn capture(out: &mut Out<'_>, cfg: &RiskConfig) {
    let (drops, packets) = (out.facts.capture_drops, out.facts.capture_packets);
    // Suricata counts dropped packets among the captured ones; guard against sources that do
    // not, so the share never exceeds 100 %.
    let total = packets.max(drops);
    if total <= 0.0 {
        return;
    }
    let share = drops / total * 100.0;
    if share > cfg.capture_drop_percent.0 {
        let facts =
            Facts::CaptureDrops { dropped: drops, packets: total, drop_percent: share, threshold_percent: cfg.capture_drop_percent.0 };
        out.push(Rule::CaptureDrops, None, Light::Yellow, facts);
    }
}

fn coverage_rules(out: &mut Out<'_>, cfg: &RiskConfig) {
    let facts = out.facts;
    if out.dev.last_seen_ms.is_none() {
        return; // never seen: availability.never-seen says it
    }
    if !facts.cpu_or_memory {
        out.push(Rule::NoPerformanceData, None, Light::Grey, Facts::NoPerformanceData);
    }
    let Some(c) = &facts.coverage else { return };
    // Before the device first reported, there was nothing to cover.
    let start = facts.coverage_start_ms;
    // From the missing time, not the share, so that exactly the minimum is not a float coin toss.
    let len = out.win.end_ms.saturating_sub(start).max(1);
    let pct = (len - c.missing_ms) as f64 * 100.0 / len as f64;
    if pct < cfg.coverage_min_percent.0 {
        let interval_ms = cfg.expected_interval.as_ms();
        let gaps = c
            .gaps
            .iter()
            .take(MAX_LISTED_GAPS)
            .map(|g| GapFacts { start_ms: g.start_ms, end_ms: g.end_ms, missing_ms: g.missing_ms })
            .collect();
        let facts = Facts::CoverageGaps {
            coverage_percent: pct,
            from_ms: start,
            new_since_ms: new_since(out.dev.first_seen_ms, out.win.start_ms, out.win.end_ms),
            min_percent: cfg.coverage_min_percent.0,
            interval_ms,
            missing_ms: c.missing_ms,
            gap_count: c.gaps.len() as u64,
            gaps,
        };
        out.push(Rule::CoverageGaps, None, Light::Grey, facts);
    }
}

/// A device's first contact, when it lies inside `(start_ms, end_ms)`: a device that is new in
/// the period is judged from then on, and findings and the report say so.
pub fn new_since(first_seen_ms: Option<i64>, start_ms: i64, end_ms: i64) -> Option<i64> {
    first_seen_ms.filter(|&t| t > start_ms && t < end_ms)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::report::{Lang, catalogue};
    use crate::risk::Advice;
    use ampel_protocol::model::LicenseFeature;

    const MIN: i64 = 60_000;
    const DAY_MS: i64 = 86_400_000;
    const HOUR: i64 = 60 * MIN;
    /// 2026-03-10T00:00:00Z.
    const T0: i64 = 1_773_100_800_000;

    /// One day, T0 to T0 + 24 h.
    fn win() -> Window {
        Window::utc(T0, T0 + 24 * HOUR)
    }

    /// A healthy device sampled every minute over the window.
    fn dev() -> DeviceInput {
        let every_minute = |v: f64| (0..24 * 60).map(|i| (T0 + i * MIN, v)).collect::<Vec<_>>();
        DeviceInput {
            device: "fw-1".into(),
            first_seen_ms: Some(T0 - 10 * 24 * HOUR),
            last_seen_ms: Some(T0 + 24 * HOUR - MIN),
            cpu: every_minute(10.0),
            memory: every_minute(40.0),
            disks: vec![Disk { mount: "/".into(), points: every_minute(50.0) }],
            ..DeviceInput::default()
        }
    }

    /// The English evidence, as `risk show` and scenario files read it.
    fn en(f: &Finding) -> String {
        catalogue::evidence(f, Lang::En, &TimeZone::UTC)
    }

    fn levels(f: &[Finding]) -> Vec<(&str, Light)> {
        f.iter().map(|f| (f.rule.id(), f.level)).collect()
    }

    fn run(d: &DeviceInput) -> Vec<Finding> {
        evaluate(d, &RiskConfig::default(), &win())
    }

    fn alert(source: AlertSource, severity: u8, action: AlertAction, sig: &str, ts: i64) -> Alert {
        Alert::new(ts, source, severity, sig.into(), action)
    }

    #[test]
    fn a_healthy_device_is_green_with_full_score() {
        let f = run(&dev());
        assert!(f.is_empty(), "{f:?}");
        assert_eq!((light_of(&f), score_of(&f)), (Light::Green, 100));
    }

    #[test]
    fn silence_turns_yellow_at_15_minutes_and_red_at_24_hours() {
        let cfg = RiskConfig::default();
        let mut d = dev();
        let end = win().end_ms;
        let at = |d: &DeviceInput| {
            levels(&evaluate(d, &cfg, &win())).into_iter().filter(|(r, _)| r.starts_with("availability")).map(|x| x.1).collect::<Vec<_>>()
        };
        d.last_seen_ms = Some(end - 15 * MIN + 1);
        assert_eq!(at(&d), vec![]);
        d.last_seen_ms = Some(end - 15 * MIN);
        assert_eq!(at(&d), vec![Light::Yellow]);
        d.last_seen_ms = Some(end - 24 * HOUR + 1);
        assert_eq!(at(&d), vec![Light::Yellow]);
        d.last_seen_ms = Some(end - 24 * HOUR);
        assert_eq!(at(&d), vec![Light::Red]);
        let red = evaluate(&d, &cfg, &win());
        let f = red.iter().find(|f| f.rule == Rule::Silent).unwrap();
        assert!(en(f).contains("No data for 24 hours"), "{}", en(f));
        assert_eq!(f.advice(), Advice::SilentLong);
        d.last_seen_ms = Some(end - 24 * HOUR + 1);
        let yellow = evaluate(&d, &cfg, &win());
        assert_eq!(yellow.iter().find(|f| f.rule == Rule::Silent).map(Finding::advice), Some(Advice::SilentBriefly));
        assert!(score_of(&red) <= 49);
    }

    #[test]
    fn cpu_high_for_a_quarter_is_fine_more_is_yellow_more_than_half_is_red() {
        let with_high = |n: usize| {
            let mut d = dev();
            d.cpu.truncate(100);
            d.memory.truncate(100);
            // Keep coverage out of the way: the disk series still covers the day.
            for s in d.cpu.iter_mut().take(n) {
                s.1 = 90.0;
            }
            levels(&run(&d)).into_iter().map(|(r, l)| (r.to_owned(), l)).collect::<Vec<_>>()
        };
        assert_eq!(with_high(25), vec![]);
        assert_eq!(with_high(26), vec![("performance.cpu".to_owned(), Light::Yellow)]);
        assert_eq!(with_high(50), vec![("performance.cpu".to_owned(), Light::Yellow)]);
        assert_eq!(with_high(51), vec![("performance.cpu".to_owned(), Light::Red)]);
    }

    #[test]
    fn disk_thresholds() {
        let at = |pct: f64| {
            let mut d = dev();
            d.disks = vec![Disk { mount: "/var".into(), points: vec![(T0, 10.0), (T0 + HOUR, pct)] }];
            run(&d).into_iter().map(|f| (f.level, f.subject)).collect::<Vec<_>>()
        };
        assert_eq!(at(84.9), vec![]);
        assert_eq!(at(85.0), vec![(Light::Yellow, Some("/var".to_owned()))]);
        assert_eq!(at(94.9), vec![(Light::Yellow, Some("/var".to_owned()))]);
        assert_eq!(at(95.0), vec![(Light::Red, Some("/var".to_owned()))]);
    }

    #[test]
    fn disk_full_forecast_from_the_trend() {
        // /data grows 1 point a day from 70 %: full in 29 days at the window's end.
        let grow = |per_day: f64| {
            let mut d = dev();
            d.disks = vec![Disk {
                mount: "/data".into(),
                points: (0..24 * 60).map(|i| (T0 + i * MIN, 70.0 + per_day * i as f64 / (24.0 * 60.0))).collect(),
            }];
            run(&d)
        };
        assert!(grow(1.0).is_empty());
        // Growing 2 points a day from 70 %: the fit reaches 100 % 15 days after T0, i.e. 14 days
        // after the end (minus the last minute's rounding) -> within 14 days, yellow.
        // (Exactly 2 points a day would hit the 14-day threshold exactly; the float fit makes
        // that edge a coin toss, so the test straddles it. The arithmetic is pinned in
        // `forecast`'s tests.)
        let f = grow(2.001);
        assert_eq!(levels(&f), vec![("performance.disk-full-forecast", Light::Yellow)]);
        let Facts::DiskForecast { growth_per_day, left_ms, .. } = f[0].facts else { panic!("{:?}", f[0].facts) };
        assert!((growth_per_day - 2.001).abs() < 1e-6);
        assert!((left_ms as f64 / DAY_MS as f64 - 13.9925).abs() < 1e-3, "{:?}", f[0].facts);
        assert!(en(&f[0]).contains("full on 2026-03-24, in 13 days"), "{}", en(&f[0]));
        // Just slower: full in a little more than 14 days -> nothing.
        assert!(grow(1.999).is_empty());
        // Too short a span: no forecast.
        let mut d = dev();
        d.disks = vec![Disk { mount: "/data".into(), points: (0..60).map(|i| (T0 + 23 * HOUR + i * MIN, 80.0 + i as f64)).collect() }];
        assert!(!run(&d).iter().any(|f| f.rule == Rule::DiskFullForecast));
    }

    #[test]
    fn license_expired_expiring_and_forecast() {
        let end = win().end_ms;
        let lic = |expires: i64| {
            let mut d = dev();
            d.license = Some(License {
                ts: end - HOUR,
                product: "UTM".into(),
                model: String::new(),
                serial: String::new(),
                licensed: true,
                expires: Some(expires),
                features: vec![],
                unknown_reason: None,
            });
            levels(&run(&d)).into_iter().map(|(r, l)| (r.to_owned(), l)).collect::<Vec<_>>()
        };
        let one = |r: &str, l| vec![(r.to_owned(), l)];
        assert_eq!(lic(end - 1), one("license.expired", Light::Red));
        assert_eq!(lic(end), one("license.expired", Light::Red));
        assert_eq!(lic(end + 1), one("license.expiring", Light::Yellow));
        assert_eq!(lic(end + 30 * 24 * HOUR), one("license.expiring", Light::Yellow));
        assert_eq!(lic(end + 30 * 24 * HOUR + 1), vec![]);
        // A 60-day window: expiring 45 days ahead is before the next report.
        let mut d = dev();
        d.license = Some(License {
            ts: end,
            product: "UTM".into(),
            model: String::new(),
            serial: String::new(),
            licensed: true,
            expires: Some(end + 45 * 24 * HOUR),
            features: vec![],
            unknown_reason: None,
        });
        let long = Window::utc(end - 60 * 24 * HOUR, end);
        let f = evaluate(&d, &RiskConfig::default(), &long);
        assert!(f.iter().any(|f| f.rule == Rule::LicenseExpiryForecast && f.level == Light::Yellow), "{f:?}");
        d.license.as_mut().unwrap().expires = Some(end + 60 * 24 * HOUR + 1);
        assert!(!evaluate(&d, &RiskConfig::default(), &long).iter().any(|f| f.service() == "license"));
        // Not licensed at all, and features with their own subject.
        let mut d = dev();
        d.license = Some(License {
            ts: end,
            product: "UTM".into(),
            model: String::new(),
            serial: String::new(),
            licensed: false,
            expires: None,
            features: vec![
                LicenseFeature { name: "ids".into(), expires: Some(end + DAY_MS) },
                LicenseFeature { name: "av".into(), expires: None },
            ],
            unknown_reason: None,
        });
        let f = run(&d);
        assert_eq!(levels(&f), vec![("license.expired", Light::Red), ("license.expiring", Light::Yellow)]);
        assert_eq!(f[1].subject.as_deref(), Some("ids"));
    }

    #[test]
    fn certificate_expired_expiring_at_the_edges() {
        let end = win().end_ms;
        let cert = |not_after_ms: i64| {
            let mut d = dev();
            d.cert_expires_at = vec![(end - HOUR, (not_after_ms / 1000) as f64)];
            levels(&run(&d)).into_iter().map(|(r, l)| (r.to_owned(), l)).collect::<Vec<_>>()
        };
        let one = |r: &str, l| vec![(r.to_owned(), l)];
        let week = 7 * 24 * HOUR;
        assert_eq!(cert(end - 1000), one("availability.certificate-expired", Light::Red));
        assert_eq!(cert(end), one("availability.certificate-expired", Light::Red));
        assert_eq!(cert(end + 1000), one("availability.certificate-expiring", Light::Yellow));
        assert_eq!(cert(end + week), one("availability.certificate-expiring", Light::Yellow));
        assert_eq!(cert(end + week + 1000), vec![]);
        // A sample after the window's end is not what the device reported in the period.
        let mut d = dev();
        d.cert_expires_at = vec![(end + HOUR, ((end - HOUR) / 1000) as f64)];
        assert!(levels(&run(&d)).is_empty());
    }

    #[test]
    fn license_unknown_or_missing_is_grey() {
        let mut d = dev();
        d.license = Some(License {
            ts: T0,
            product: "UTM".into(),
            model: String::new(),
            serial: String::new(),
            licensed: false,
            expires: None,
            features: vec![],
            unknown_reason: Some("no license file".into()),
        });
        assert_eq!(levels(&run(&d)), vec![("license.unknown", Light::Grey)]);
        let d = dev();
        assert!(run(&d).is_empty());
        let cfg = RiskConfig { license_required: true, ..RiskConfig::default() };
        assert_eq!(levels(&evaluate(&d, &cfg, &win())), vec![("license.missing", Light::Grey)]);
    }

    #[test]
    fn ids_severity_allowed_is_red_blocked_only_is_yellow() {
        let with = |alerts: Vec<Alert>| {
            let mut d = dev();
            d.alerts = alerts;
            run(&d)
        };
        let t = T0 + HOUR;
        assert!(with(vec![alert(AlertSource::Ids, 2, AlertAction::Allowed, "ET SCAN", t)]).is_empty());
        let y = with(vec![
            alert(AlertSource::Ids, 1, AlertAction::Blocked, "ET EXPLOIT", t),
            alert(AlertSource::Ids, 1, AlertAction::Blocked, "ET EXPLOIT", t),
        ]);
        assert_eq!(levels(&y), vec![("threats.ids-severe", Light::Yellow)]);
        assert!(en(&y[0]).contains("0 allowed through, 2 blocked") && en(&y[0]).contains("ET EXPLOIT (2)"), "{}", en(&y[0]));
        assert_eq!(y[0].advice(), Advice::IdsAllBlocked);
        let r =
            with(vec![alert(AlertSource::Ids, 1, AlertAction::Blocked, "A", t), alert(AlertSource::Ids, 1, AlertAction::Allowed, "B", t)]);
        assert_eq!(levels(&r), vec![("threats.ids-severe", Light::Red)]);
        assert!(matches!(r[0].facts, Facts::IdsAlerts { allowed: 1, blocked: 1, .. }), "{:?}", r[0].facts);
        assert_eq!(r[0].advice(), Advice::IdsAllowedThrough);
        // Outside the window: ignored.
        assert!(with(vec![alert(AlertSource::Ids, 1, AlertAction::Allowed, "B", T0 - 1)]).is_empty());
        // ids-severity = 2 widens it.
        let mut d = dev();
        d.alerts = vec![alert(AlertSource::Ids, 2, AlertAction::Allowed, "ET SCAN", t)];
        let cfg = RiskConfig { ids_severity: crate::config::Severity(2), ..RiskConfig::default() };
        assert_eq!(levels(&evaluate(&d, &cfg, &win())), vec![("threats.ids-severe", Light::Red)]);
    }

    #[test]
    fn malware_not_quarantined_is_red_quarantined_is_yellow() {
        let mut d = dev();
        d.alerts = vec![alert(AlertSource::Antivirus, 1, AlertAction::Quarantined, "Eicar-Test-Signature", T0 + HOUR)];
        assert_eq!(levels(&run(&d)), vec![("malware.found", Light::Yellow)]);
        d.alerts.push(alert(AlertSource::Antivirus, 1, AlertAction::Allowed, "Win.Trojan.Agent", T0 + 2 * HOUR));
        let f = run(&d);
        assert_eq!(levels(&f), vec![("malware.found", Light::Red)]);
        assert!(en(&f[0]).contains("1 not quarantined, 1 quarantined"), "{}", en(&f[0]));
    }

    fn mails(day_counts: &[(i64, u32)]) -> Vec<Alert> {
        day_counts
            .iter()
            .flat_map(|(start, n)| {
                (0..*n).map(move |i| alert(AlertSource::Mail, 3, AlertAction::Quarantined, "spam", start + i64::from(i) * MIN))
            })
            .collect()
    }

    #[test]
    fn mail_spike_below_at_and_above_the_factor() {
        // A 4-day window; 5 mails a day on the first three days (mean 5), spike factor 3.
        let w = Window::utc(T0, T0 + 4 * DAY_MS);
        let run_with = |today: u32| {
            let mut d = dev();
            d.cpu.clear();
            d.memory.clear();
            d.disks.clear();
            d.last_seen_ms = Some(w.end_ms - MIN);
            d.alerts = mails(&[(T0, 5), (T0 + DAY_MS, 5), (T0 + 2 * DAY_MS, 5), (T0 + 3 * DAY_MS, today)]);
            evaluate(&d, &RiskConfig::default(), &w).into_iter().filter(|f| f.service() == "mail").collect::<Vec<_>>()
        };
        assert!(run_with(14).is_empty());
        let f = run_with(15);
        assert_eq!(levels(&f), vec![("mail.quarantine-spike", Light::Yellow)]);
        assert!(en(&f[0]).contains("15 mails quarantined on 2026-03-13") && en(&f[0]).contains("mean of 5.0"), "{}", en(&f[0]));
        assert_eq!(levels(&run_with(16)), vec![("mail.quarantine-spike", Light::Yellow)]);
        // Below the minimum count no spike, however quiet the days before were.
        let mut d = dev();
        d.alerts = mails(&[(T0 + 3 * DAY_MS, 9)]);
        assert!(evaluate(&d, &RiskConfig::default(), &w).iter().all(|f| f.service() != "mail"));
    }

    #[test]
    fn capture_drops_just_below_at_and_above() {
        let with = |drops: f64| {
            let mut d = dev();
            d.capture_packets = vec![(T0 + HOUR, 5_000.0), (T0 + 2 * HOUR, 5_000.0)];
            d.capture_drops = vec![(T0 + HOUR, drops / 2.0), (T0 + 2 * HOUR, drops / 2.0)];
            levels(&run(&d)).into_iter().map(|(r, l)| (r.to_owned(), l)).collect::<Vec<_>>()
        };
        assert_eq!(with(99.0), vec![]);
        assert_eq!(with(100.0), vec![]); // exactly 1 %: "above" is strict
        assert_eq!(with(101.0), vec![("traffic.capture-drops".to_owned(), Light::Yellow)]);
    }

    #[test]
    fn coverage_below_the_minimum_is_grey_and_lists_the_gaps() {
        let with_hole = |hole_min: i64| {
            let mut d = dev();
            let keep = |p: &(i64, f64)| !(T0 + 10 * HOUR..T0 + 10 * HOUR + hole_min * MIN).contains(&p.0);
            d.cpu.retain(keep);
            d.memory.retain(keep);
            d.disks[0].points.retain(keep);
            run(&d)
        };
        // 90 % of 24 h = 144 min may be missing: a hole of n samples misses n minutes.
        assert!(with_hole(144).is_empty());
        let f = with_hole(146);
        assert_eq!(levels(&f), vec![("coverage.gaps", Light::Grey)]);
        // The gap runs from the last sample before to the first after; the total and the gap
        // say the same time missing, rounded the same way, and "1 gap" is singular.
        let Facts::CoverageGaps { missing_ms, ref gaps, .. } = f[0].facts else { panic!("{:?}", f[0].facts) };
        assert_eq!((missing_ms, gaps.iter().map(|g| g.missing_ms).sum::<i64>()), (146 * MIN, 146 * MIN));
        let text = en(&f[0]);
        assert!(text.contains("; 2 hours missing in 1 gap: 2026-03-10 09:59 to 2026-03-10 12:26 (2 hours missing)."), "{text}");
        assert_eq!(light_of(&f), Light::Grey);
        // A device first seen in the middle of the window is judged from then on.
        let mut d = dev();
        d.first_seen_ms = Some(T0 + 12 * HOUR);
        for s in [&mut d.cpu, &mut d.memory, &mut d.disks[0].points] {
            s.retain(|p| p.0 >= T0 + 12 * HOUR);
        }
        assert!(run(&d).is_empty());
        // When it has gaps since, the finding says that it is new, and since when.
        let hole = T0 + 14 * HOUR..T0 + 18 * HOUR;
        for s in [&mut d.cpu, &mut d.memory, &mut d.disks[0].points] {
            s.retain(|p| !hole.contains(&p.0));
        }
        let f = run(&d);
        assert!(matches!(f[0].facts, Facts::CoverageGaps { new_since_ms: Some(t), .. } if t == T0 + 12 * HOUR), "{:?}", f[0].facts);
        assert_eq!(f[0].advice(), Advice::CoverageGapsNewDevice);
        assert!(en(&f[0]).contains("The device is new since 2026-03-10 12:00"), "{}", en(&f[0]));
    }

    #[test]
    fn a_device_without_data_is_grey_never_green() {
        let d = DeviceInput { device: "fw-2".into(), ..DeviceInput::default() };
        let f = run(&d);
        assert_eq!(levels(&f), vec![("availability.never-seen", Light::Grey)]);
        assert_eq!(light_of(&f), Light::Grey);
        assert!(score_of(&f) < 100);
        let d = DeviceInput { device: "fw-2".into(), last_seen_ms: Some(T0 + 24 * HOUR - MIN), ..DeviceInput::default() };
        assert_eq!(levels(&run(&d)), vec![("coverage.no-performance-data", Light::Grey)]);
    }

    #[test]
    fn every_finding_has_its_id_and_the_window() {
        let mut d = dev();
        d.disks = vec![Disk { mount: "/var".into(), points: vec![(T0, 99.0)] }];
        d.alerts = vec![alert(AlertSource::Ids, 1, AlertAction::Allowed, "x", T0)];
        for f in run(&d) {
            assert_eq!(f.id, finding_id(f.rule, f.device.as_deref(), f.subject.as_deref()));
            assert_eq!(f.window_ms, [T0, T0 + 24 * HOUR]);
        }
    }

    fn berlin_day(date: &str) -> Window {
        let tz = TimeZone::get("Europe/Berlin").unwrap();
        let d: jiff::civil::Date = date.parse().unwrap();
        let start = d.to_zoned(tz.clone()).unwrap().timestamp().as_millisecond();
        let end = d.tomorrow().unwrap().to_zoned(tz.clone()).unwrap().timestamp().as_millisecond();
        Window { start_ms: start, end_ms: end, tz }
    }

    #[test]
    fn dst_days_are_judged_on_their_real_length() {
        for (date, hours) in [("2026-03-29", 23), ("2026-10-25", 25)] {
            let w = berlin_day(date);
            assert_eq!(w.end_ms - w.start_ms, hours * HOUR, "{date}");
            let every_minute = |v: f64| (0..hours * 60).map(|i| (w.start_ms + i * MIN, v)).collect::<Vec<_>>();
            let d = DeviceInput {
                device: "fw-1".into(),
                first_seen_ms: Some(0),
                last_seen_ms: Some(w.end_ms - MIN),
                cpu: every_minute(10.0),
                memory: every_minute(40.0),
                ..DeviceInput::default()
            };
            // Neither the hour that does not exist nor the extra hour is a gap.
            let f = evaluate(&d, &RiskConfig::default(), &w);
            assert!(f.is_empty(), "{date}: {f:?}");
            // Dropping the samples of one real hour is noticed, with local times.
            let mut d = d.clone();
            let hole = w.start_ms + 3 * HOUR..w.start_ms + 6 * HOUR;
            d.cpu.retain(|p| !hole.contains(&p.0));
            d.memory.retain(|p| !hole.contains(&p.0));
            let f = evaluate(&d, &RiskConfig::default(), &w);
            assert_eq!(levels(&f), vec![("coverage.gaps", Light::Grey)], "{date}");
        }
    }

    #[test]
    fn mail_days_follow_the_time_zone_across_dst() {
        // Three Berlin days ending with the 23-hour DST day; the spike lands in its last hour.
        let last = berlin_day("2026-03-29");
        let first = berlin_day("2026-03-27");
        let w = Window { start_ms: first.start_ms, end_ms: last.end_ms, tz: last.tz.clone() };
        let mut d = dev();
        d.alerts = mails(&[(first.start_ms + HOUR, 2), (first.end_ms + HOUR, 2), (last.end_ms - 30 * MIN, 12)]);
        let f: Vec<Finding> = evaluate(&d, &RiskConfig::default(), &w).into_iter().filter(|f| f.service() == "mail").collect();
        assert_eq!(levels(&f), vec![("mail.quarantine-spike", Light::Yellow)]);
        let text = catalogue::evidence(&f[0], Lang::En, &w.tz);
        assert!(text.contains("on 2026-03-29") && text.contains("over the 2 days before"), "{text}");
    }
}
