//! Gathers a tenant's data from the store, runs the risk rules over it and builds what the
//! report shows. The one place where store, risk and report meet.
//!
//! # Layout
//!
//! - this file: periods, the assessment, the report's data.
//! - `gather`: one device's period from the store — the rules' samples streamed a day at a
//!   time, what the report shows per device from the rollups.
//! - [`suppress`]: `[[suppress]]` false positives, taken out before the rules see the alerts.

mod gather;
pub mod suppress;

use crate::config::Config;
use crate::report::stats::{self, AlertSection, Stat, TrafficRow};
use crate::report::{DeviceReport, ReportData};
use crate::risk::rules::{self, DeviceInput};
use crate::risk::samples::SampleFacts;
use crate::risk::{Finding, FindingChange, Light, ServiceLight, change, light_of, score_of, service_lights, tenant_score};
use crate::store::{Store, StoreError};
use suppress::{FalsePositives, Suppressed, Suppressor};

pub use crate::period::{Period, PeriodError};

/// One device's verdict.
#[derive(Debug, Clone)]
pub struct DeviceAssessment {
    /// Device id.
    pub device: String,
    /// The device's light: the worst of its services.
    pub light: Light,
    /// The device's score.
    pub score: u8,
    /// Light and score per service.
    pub services: Vec<ServiceLight>,
    /// Its findings.
    pub findings: Vec<Finding>,
}

/// A tenant's verdict.
#[derive(Debug, Clone)]
pub struct TenantAssessment {
    /// Tenant id.
    pub tenant: String,
    /// Worst of its devices; grey without devices.
    pub light: Light,
    /// Capped mean of its device scores.
    pub score: u8,
    /// Light and score per service over all of the tenant's findings.
    pub services: Vec<ServiceLight>,
    /// Per device, sorted by id.
    pub devices: Vec<DeviceAssessment>,
    /// Against the previous period: new, still open and fixed findings. Empty unless the
    /// previous period was assessed too ([`assess_with_changes`]).
    pub changes: Vec<FindingChange>,
    /// The previous period, when it was assessed.
    pub previous: Option<Period>,
    /// What the `[[suppress]]` entries took away (alerts before the rules, findings after).
    pub suppressed: Suppressed,
}

impl TenantAssessment {
    /// All findings, worst first, then by device and rule.
    pub fn findings(&self) -> Vec<Finding> {
        let mut findings: Vec<Finding> = self.devices.iter().flat_map(|d| d.findings.clone()).collect();
        findings.sort_by(|a, b| {
            b.level
                .cmp(&a.level)
                .then_with(|| a.device.cmp(&b.device))
                .then_with(|| a.rule.cmp(&b.rule))
                .then_with(|| a.subject.cmp(&b.subject))
        });
        findings
    }
}

/// Most points a chart series has.
pub const CHART_POINTS: usize = 400;

pub use gather::chart_step;

/// A chart series as the gathering builds it from the rollups, built from raw samples: the
/// mean of the finite values per bucket of [`chart_step`] over `[start_ms, end_ms)`, placed in
/// the middle of the bucket's part of the period. For data that did not come from a store
/// (the synthetic tenant of the tests and the benchmark).
pub fn chart_points(points: &[(i64, f64)], start_ms: i64, end_ms: i64) -> Vec<(i64, f64)> {
    let step = chart_step(start_ms, end_ms, CHART_POINTS);
    let mut buckets: std::collections::BTreeMap<i64, (f64, u64)> = std::collections::BTreeMap::new();
    for &(t, v) in points.iter().filter(|p| (start_ms..end_ms).contains(&p.0) && p.1.is_finite()) {
        let b = buckets.entry(t.div_euclid(step).saturating_mul(step)).or_insert((0.0, 0));
        b.0 += v;
        b.1 += 1;
    }
    buckets
        .into_iter()
        .map(|(bucket, (sum, n))| {
            let (a, b) = (bucket.max(start_ms), bucket.saturating_add(step).min(end_ms));
            (a + (b - a) / 2, sum / n as f64)
        })
        .collect()
}

/// `f` of every item, in order, spread over the machine's cores: one thread per core at most,
/// each taking a contiguous share of the items. For reads of a tenant's devices, which do not
/// depend on each other. The first error (in item order) is returned.
fn in_parallel<T: Sync, R: Send, E: Send>(items: &[T], f: impl Fn(&T) -> Result<R, E> + Sync) -> Result<Vec<R>, E> {
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get).min(items.len());
    if threads <= 1 {
        return items.iter().map(&f).collect();
    }
    let share = items.len().div_ceil(threads);
    std::thread::scope(|s| {
        let f = &f;
        let running: Vec<_> = items.chunks(share).map(|part| s.spawn(move || part.iter().map(f).collect::<Result<Vec<R>, E>>())).collect();
        let mut out = Vec::with_capacity(items.len());
        for thread in running {
            // A panic in a reader is a bug: it goes on up as it would have on one thread.
            out.extend(thread.join().unwrap_or_else(|p| std::panic::resume_unwind(p))?);
        }
        Ok(out)
    })
}

/// One device's data for the rules: its input without samples, and the samples reduced.
struct Gathered {
    input: DeviceInput,
    facts: SampleFacts,
    record: crate::store::DeviceRecord,
    points: u64,
}

const HOUR_MS: i64 = 3_600_000;

/// Bytes per interface (and category) of a device in the period, from the hourly rollups of
/// the `traffic.rx_bytes` / `traffic.tx_bytes` series the store keeps for traffic records.
fn traffic_of(store: &Store, device: &str, period: &Period) -> Result<Vec<TrafficRow>, StoreError> {
    let mut rows: std::collections::BTreeMap<(String, Option<String>), (u64, u64)> = std::collections::BTreeMap::new();
    for (name, rx) in [("traffic.rx_bytes", true), ("traffic.tx_bytes", false)] {
        for (labels, aggs) in store.metric_step(device, name, period.start_ms, period.end_ms, HOUR_MS)? {
            let label = |k: &str| labels.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
            let key = (label("interface").unwrap_or_default(), label("category"));
            let sum: f64 = aggs.iter().map(|a| a.sum).filter(|v| v.is_finite() && *v > 0.0).sum();
            let e = rows.entry(key).or_default();
            // Saturating float-to-int conversion: a counter cannot be negative or overflow.
            let bytes = sum as u64;
            if rx {
                e.0 = e.0.saturating_add(bytes);
            } else {
                e.1 = e.1.saturating_add(bytes);
            }
        }
    }
    Ok(rows
        .into_iter()
        .map(|((interface, category), (rx_bytes, tx_bytes))| TrafficRow {
            device: device.to_owned(),
            interface,
            category,
            rx_bytes,
            tx_bytes,
        })
        .collect())
}

/// Every device of the tenant with its data in the period. The samples the rules read are
/// reduced as they are read (`gather::sample_facts`), never held for the whole period.
/// Suppressed alerts are taken out here, before the rules see them.
fn gather(store: &Store, cfg: &Config, tenant: &str, period: &Period, sup: &mut Suppressor<'_>) -> Result<Vec<Gathered>, StoreError> {
    let window = period.window();
    // Alerts come tenant-wide, time-ordered; each device gets its own, in that order.
    let mut alerts: std::collections::HashMap<String, Vec<_>> = std::collections::HashMap::new();
    for a in store.alerts(tenant, period.start_ms, period.end_ms)? {
        alerts.entry(a.device.clone()).or_default().push(a.alert);
    }
    let devices = store.devices(Some(tenant))?;
    // The devices' samples are read independently of each other: on all cores.
    let read = in_parallel(&devices, |(device, record)| {
        let points = gather::count_points(store, device, period.start_ms, period.end_ms)?;
        if record.registered_ms >= period.end_ms && points == 0 {
            return Ok(None); // not there yet: nothing to judge (and nothing "fixed" later)
        }
        Ok(Some((points, gather::sample_facts(store, device, record.first_seen_ms, &cfg.risk, &window)?)))
    })?;
    let mut out = Vec::new();
    for ((device, record), read) in devices.into_iter().zip(read) {
        let Some((points, facts)) = read else { continue };
        let mut input = DeviceInput { device: device.clone(), ..DeviceInput::default() };
        input.alerts = sup.alerts(&device, alerts.remove(&device).unwrap_or_default());
        input.license = record.license.clone();
        // A device is judged on what it had sent by the end of the period. A device first heard
        // of after the period had not been seen by its end — unless its samples fall inside.
        let seen_by_end = record.first_seen_ms.is_some_and(|f| f < period.end_ms);
        let arrived = record.last_seen_ms.filter(|_| seen_by_end).map(|l| l.min(period.end_ms));
        // The latest sample in the period: what "last seen" means for data sent late (a
        // spooled backlog) or for a report of a past period.
        input.last_seen_ms = arrived.max(facts.latest_ms);
        input.first_seen_ms = record.first_seen_ms;
        out.push(Gathered { input, facts, record, points });
    }
    Ok(out)
}

fn assess_gathered(tenant: &str, gathered: &[Gathered], cfg: &Config, period: &Period, mut sup: Suppressor<'_>) -> TenantAssessment {
    let window = period.window();
    let mut devices: Vec<DeviceAssessment> = gathered
        .iter()
        .map(|g| {
            let findings = sup.findings(rules::evaluate_with(&g.input, &g.facts, &cfg.risk, &window));
            DeviceAssessment {
                device: g.input.device.clone(),
                light: light_of(&findings),
                score: score_of(&findings),
                services: service_lights(&findings),
                findings,
            }
        })
        .collect();
    devices.sort_by(|a, b| a.device.cmp(&b.device));
    let light = devices.iter().map(|d| d.light).max().unwrap_or(Light::Grey);
    let scores: Vec<u8> = devices.iter().map(|d| d.score).collect();
    let score = if devices.is_empty() { 0 } else { tenant_score(&scores, light) };
    let all: Vec<Finding> = devices.iter().flat_map(|d| d.findings.clone()).collect();
    TenantAssessment {
        tenant: tenant.to_owned(),
        light,
        score,
        services: service_lights(&all),
        devices,
        changes: Vec::new(),
        previous: None,
        suppressed: sup.finish(),
    }
}

/// Runs the rules over a tenant's devices for a period, false positives treated as `fp` says.
pub fn assess(store: &Store, cfg: &Config, tenant: &str, period: &Period, fp: FalsePositives) -> Result<TenantAssessment, StoreError> {
    let mut sup = Suppressor::new(&cfg.suppress, tenant, period.end_ms, fp);
    let gathered = gather(store, cfg, tenant, period, &mut sup)?;
    Ok(assess_gathered(tenant, &gathered, cfg, period, sup))
}

/// Sets the changes of `current` against the findings of `previous` and marks each current
/// finding new or still open.
pub fn with_changes(mut current: TenantAssessment, previous: &TenantAssessment, previous_period: &Period) -> TenantAssessment {
    current.changes = change::compare(&previous.findings(), &current.findings());
    for d in &mut current.devices {
        change::mark(&mut d.findings, &current.changes);
    }
    current.previous = Some(previous_period.clone());
    current
}

/// [`assess`], plus the change since the previous period (found by running the rules over
/// the previous period: see [`Period::previous`]).
pub fn assess_with_changes(
    store: &Store,
    cfg: &Config,
    tenant: &str,
    period: &Period,
    fp: FalsePositives,
) -> Result<TenantAssessment, StoreError> {
    let prev_period = period.previous();
    let previous = assess(store, cfg, tenant, &prev_period, fp)?;
    Ok(with_changes(assess(store, cfg, tenant, period, fp)?, &previous, &prev_period))
}

/// Everything the report of a tenant shows for a period, with the period's time zone
/// governing its dates, its per-day buckets and the previous period compared with, and false
/// positives treated as `fp` says. The period's name is its stable label here; the report path
/// names it in the reader's language. Only [`crate::reporting::report`] (and `ampel-bench
/// report`, which times it) call this.
pub fn report_data(store: &Store, cfg: &Config, tenant: &str, period: &Period, fp: FalsePositives) -> Result<ReportData, StoreError> {
    let mut sup = Suppressor::new(&cfg.suppress, tenant, period.end_ms, fp);
    let gathered = gather(store, cfg, tenant, period, &mut sup)?;
    let prev_period = period.previous();
    let previous = assess(store, cfg, tenant, &prev_period, fp)?;
    let assessment = with_changes(assess_gathered(tenant, &gathered, cfg, period, sup), &previous, &prev_period);
    let findings = assessment.findings();
    let days = period.days();
    let all_alerts = || gathered.iter().flat_map(|g| g.input.alerts.iter().map(move |a| (g.input.device.as_str(), a)));
    let section = |s: AlertSection| stats::alert_stats(all_alerts().filter(|(_, a)| AlertSection::of(a.source) == s), &days);
    let traffic = in_parallel(&gathered, |g| traffic_of(store, &g.input.device, period))?.concat();
    let pairs: Vec<(&Gathered, &DeviceAssessment)> = gathered.iter().zip(&assessment.devices).collect();
    let devices = in_parallel(&pairs, |(g, a)| device_report(store, g, a, period))?;
    Ok(ReportData {
        tenant: tenant.to_owned(),
        period_start_ms: period.start_ms,
        period_end_ms: period.end_ms,
        period_label: period.label(),
        time_zone: period.zone_name().to_owned(),
        generated_at_ms: period.end_ms,
        light: assessment.light,
        score: assessment.score,
        findings,
        devices,
        services: assessment.services.clone(),
        changes: assessment.changes.clone(),
        previous_ms: assessment.previous.as_ref().map(|p| (p.start_ms, p.end_ms)),
        threats: section(AlertSection::Threats),
        malware: section(AlertSection::Malware),
        mail: section(AlertSection::Mail),
        traffic,
        rule_version: rule_version(cfg),
        file_hashes: stats::file_hashes(all_alerts()),
        false_positives: assessment.suppressed.clone(),
    })
}

/// What the report shows of one device: its verdict, the coverage the rules found and, from
/// the rollups, the min / avg / max and charts of its samples.
fn device_report(store: &Store, g: &Gathered, a: &DeviceAssessment, period: &Period) -> Result<DeviceReport, StoreError> {
    let series = store.series_of(&g.input.device)?;
    let range = (period.start_ms, period.end_ms);
    let step = chart_step(period.start_ms, period.end_ms, CHART_POINTS);
    let ids = |name: &str| series.iter().filter(|s| s.0 == name).map(|s| s.2).collect::<Vec<u64>>();
    let cpu = gather::shown(store, &ids(rules::metrics::CPU), range, step)?;
    let memory = gather::shown(store, &ids(rules::metrics::MEMORY), range, step)?;
    let mut mounts: std::collections::BTreeMap<&str, Vec<u64>> = std::collections::BTreeMap::new();
    for (_, labels, id) in series.iter().filter(|s| s.0 == rules::metrics::DISK_USED) {
        mounts.entry(rules::mount_of(labels)).or_default().push(*id);
    }
    let mut disks: Vec<(String, Stat)> = Vec::new();
    for (mount, ids) in mounts {
        if let Some(stat) = gather::shown(store, &ids, range, step)?.stat {
            disks.push((mount.to_owned(), stat));
        }
    }
    let inv = g.record.inventory.as_ref();
    let cov = g.facts.coverage.as_ref().filter(|_| g.input.last_seen_ms.is_some());
    Ok(DeviceReport {
        device: g.input.device.clone(),
        hostname: inv.map(|i| i.hostname.clone()).unwrap_or_default(),
        model: inv.map(|i| i.model.clone()).unwrap_or_default(),
        os: inv.map(|i| i.os.clone()).unwrap_or_default(),
        agent_version: inv.map(|i| i.agent_version.clone()).unwrap_or_default(),
        first_seen_ms: g.record.first_seen_ms,
        last_seen_ms: g.record.last_seen_ms,
        points: g.points,
        light: a.light,
        score: a.score,
        cpu: cpu.chart,
        memory: memory.chart,
        cpu_stat: cpu.stat,
        memory_stat: memory.stat,
        disks,
        license: g.record.license.clone(),
        coverage: cov.map(|c| c.share),
        gaps: cov.map(|c| c.gaps.iter().map(|x| (x.start_ms, x.end_ms)).collect()).unwrap_or_default(),
    })
}

/// The version of the rules that judged a report: the collector's version and a hash of the
/// thresholds in effect, so that two reports judged alike show the same string.
pub fn rule_version(cfg: &Config) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, format!("{:?}", cfg.risk).as_bytes());
    let short: String = digest.as_ref()[..4].iter().map(|b| format!("{b:02x}")).collect();
    format!("{} ({} rules, thresholds {short})", env!("CARGO_PKG_VERSION"), crate::risk::Rule::ALL.len())
}

/// One line of a chart: (Unix ms, value) per bucket with data, time-ordered.
pub type ChartLine = Vec<(i64, f64)>;

/// The charts of a device the console shows beside CPU and memory (which the report has):
/// disk usage per mount and traffic per interface, drawn from the rollups in buckets of
/// [`chart_step`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeviceCharts {
    /// Bucket width, ms: two points of a line further apart than this have a gap between them.
    pub step_ms: i64,
    /// Disk usage in percent per mount, sorted by mount: (mount, line, min / avg / max).
    pub disks: Vec<(String, ChartLine, Option<Stat>)>,
    /// Per interface, sorted by name: (interface, received, sent) in bytes per second.
    pub traffic: Vec<(String, ChartLine, ChartLine)>,
}

/// Disk usage and interface traffic of `device` over `period` for its charts. Traffic is the
/// agent's per-interface byte deltas (`traffic.rx_bytes` / `traffic.tx_bytes` without a
/// `category`: the interface totals, not the per-protocol or nftables shares) as a rate per
/// bucket.
pub fn device_charts(store: &Store, device: &str, period: &Period) -> Result<DeviceCharts, StoreError> {
    let series = store.series_of(device)?;
    let range = (period.start_ms, period.end_ms);
    let step = chart_step(period.start_ms, period.end_ms, CHART_POINTS);
    let mut mounts: std::collections::BTreeMap<&str, Vec<u64>> = std::collections::BTreeMap::new();
    for (_, labels, id) in series.iter().filter(|s| s.0 == rules::metrics::DISK_USED) {
        mounts.entry(rules::mount_of(labels)).or_default().push(*id);
    }
    let mut disks = Vec::with_capacity(mounts.len());
    for (mount, ids) in mounts {
        let shown = gather::shown(store, &ids, range, step)?;
        disks.push((mount.to_owned(), shown.chart, shown.stat));
    }
    // Per interface: the ids of its received and its sent series.
    let mut interfaces: std::collections::BTreeMap<&str, (Vec<u64>, Vec<u64>)> = std::collections::BTreeMap::new();
    for (name, labels, id) in &series {
        let label = |k: &str| labels.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        let (Some(interface), None) = (label("interface"), label("category")) else { continue };
        match name.as_str() {
            "traffic.rx_bytes" => interfaces.entry(interface).or_default().0.push(*id),
            "traffic.tx_bytes" => interfaces.entry(interface).or_default().1.push(*id),
            _ => {}
        }
    }
    let mut traffic = Vec::with_capacity(interfaces.len());
    for (interface, (rx, tx)) in interfaces {
        traffic.push((interface.to_owned(), gather::rates(store, &rx, range, step)?, gather::rates(store, &tx, range, step)?));
    }
    Ok(DeviceCharts { step_ms: step, disks, traffic })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// End to end over a real store: gather, rules, lights per service, change since the
    /// previous calendar day.
    #[test]
    fn assessment_over_the_store_with_changes_since_the_previous_day() {
        use crate::store::{PendingBatch, StoreOptions};
        use ampel_protocol::{AlertAction, AlertSource, Batch, DeviceId, Identity, Metric, PROTOCOL_VERSION, Record, TenantId};
        const MIN: i64 = 60_000;
        let day0: i64 = 1_773_014_400_000; // 2026-03-09T00:00:00Z
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
        let (tenant, fw1, fw2) = (TenantId::new("acme").unwrap(), DeviceId::new("fw-1").unwrap(), DeviceId::new("fw-2").unwrap());
        store.register_device(&tenant, &fw1, day0 - 86_400_000).unwrap();
        store.register_device(&tenant, &fw2, day0 - 86_400_000).unwrap();
        let me = Identity { tenant: tenant.clone(), device: fw1.clone() };
        let metric = |ts: i64, name: &str, mount: Option<&str>, value: f64| {
            Record::Metric(Metric {
                ts,
                name: name.into(),
                labels: mount.map(|m| vec![("mount".to_owned(), m.to_owned())]).unwrap_or_default(),
                value,
            })
        };
        // Two days, one batch an hour, a sample a minute. "/" is full on day 1 and fine on day 2;
        // "/var" is fine on day 1 and full on day 2.
        let mut group = Vec::new();
        for hour in 0..48i64 {
            let mut records = Vec::new();
            for m in 0..60 {
                let ts = day0 + (hour * 60 + m) * MIN;
                let second_day = hour >= 24;
                records.push(metric(ts, "cpu.usage_percent", None, 10.0));
                records.push(metric(ts, "memory.used_percent", None, 40.0));
                records.push(metric(ts, "disk.used_percent", Some("/"), if second_day { 50.0 } else { 96.0 }));
                records.push(metric(ts, "disk.used_percent", Some("/var"), if second_day { 96.0 } else { 50.0 }));
            }
            if hour == 30 {
                records.push(Record::Alert(ampel_protocol::Alert {
                    signature_id: Some(1),
                    ..ampel_protocol::Alert::new(day0 + 30 * 60 * MIN, AlertSource::Ids, 1, "ET EXPLOIT x".into(), AlertAction::Allowed)
                }));
            }
            let batch = Batch { version: PROTOCOL_VERSION, seq: hour as u64 + 1, sender: None, records };
            group.push(PendingBatch { identity: me.clone(), batch, received_ms: day0 + (hour + 1) * 60 * MIN - 1 });
        }
        store.commit(&group).unwrap();
        let cfg = Config::parse(std::path::Path::new("/etc/ampel/collector.toml"), "").unwrap();
        let period = Period::parse("2026-03-10", 0, "UTC").unwrap();
        let a = assess_with_changes(&store, &cfg, "acme", &period, FalsePositives::default()).unwrap();
        assert_eq!(a.light, Light::Red);
        assert_eq!(a.previous.as_ref().map(Period::label).as_deref(), Some("2026-03-09"));
        let fw1 = &a.devices[0];
        let rules: Vec<(&str, Light, Option<&str>, Option<change::Change>)> =
            fw1.findings.iter().map(|f| (f.rule.id(), f.level, f.subject.as_deref(), f.change)).collect();
        assert_eq!(
            rules,
            vec![
                ("threats.ids-severe", Light::Red, None, Some(change::Change::New)),
                ("performance.disk", Light::Red, Some("/var"), Some(change::Change::New))
            ]
        );
        let service = |name: &str| fw1.services.iter().find(|s| s.service == name).map(|s| s.light);
        assert_eq!(
            (service("threats"), service("performance"), service("license")),
            (Some(Light::Red), Some(Light::Red), Some(Light::Green))
        );
        // fw-2 never sent anything: grey, never green; the tenant is red and scores at most 49.
        assert_eq!((a.devices[1].device.as_str(), a.devices[1].light), ("fw-2", Light::Grey));
        assert!(a.score <= 49);
        let fixed: Vec<(&str, Option<&str>)> =
            a.changes.iter().filter(|c| c.change == change::Change::Fixed).map(|c| (c.rule.id(), c.subject.as_deref())).collect();
        assert_eq!(fixed, vec![("performance.disk", Some("/"))]);
        let still: Vec<&str> = a.changes.iter().filter(|c| c.change == change::Change::StillOpen).map(|c| c.rule.id()).collect();
        assert_eq!(still, vec!["availability.never-seen"]);
        // The report's data carries the same verdict, with the change marked on each finding.
        let data = report_data(&store, &cfg, "acme", &period, FalsePositives::default()).unwrap();
        assert_eq!((data.light, data.score, data.findings.len()), (a.light, a.score, 3));
        assert!(data.findings.iter().all(|f| f.change.is_some() && !f.id.is_empty()));
    }

    const MIN: i64 = 60_000;
    const HOUR: i64 = 60 * MIN;
    /// 2026-03-09T00:00:00Z.
    const DAY0: i64 = 1_773_014_400_000;

    /// A store with one healthy day (2026-03-09) of `fw-1` of tenant `acme` and one severe IDS
    /// alert let through, from the vulnerability scanner 10.1.2.3.
    fn scanned_store() -> (tempfile::TempDir, Store, Period) {
        use crate::store::{PendingBatch, StoreOptions};
        use ampel_protocol::{Alert, AlertAction, AlertSource, Batch, DeviceId, Identity, Metric, PROTOCOL_VERSION, Record, TenantId};
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
        let me = Identity { tenant: TenantId::new("acme").unwrap(), device: DeviceId::new("fw-1").unwrap() };
        store.register_device(&me.tenant, &me.device, DAY0 - 86_400_000).unwrap();
        let mut records = Vec::new();
        for k in 0..24 * 60 {
            let m = |name: &str, labels: Vec<(String, String)>, value: f64| {
                Record::Metric(Metric { ts: DAY0 + k * MIN, name: name.into(), labels, value })
            };
            records.push(m("cpu.usage_percent", Vec::new(), 10.0));
            records.push(m("memory.used_percent", Vec::new(), 40.0));
            records.push(m("disk.used_percent", vec![("mount".into(), "/".into())], 50.0));
        }
        let mut alert = Alert::new(DAY0 + 5 * HOUR, AlertSource::Ids, 1, "ET SCAN Nmap Scripting Engine".into(), AlertAction::Allowed);
        alert.signature_id = Some(2_010_935);
        alert.src = Some("10.1.2.3".into());
        records.push(Record::Alert(alert));
        let batch = Batch { version: PROTOCOL_VERSION, seq: 1, sender: None, records };
        store.commit(&[PendingBatch { identity: me, batch, received_ms: DAY0 + 24 * HOUR }]).unwrap();
        (dir, store, Period::parse("2026-03-09", 0, "UTC").unwrap())
    }

    fn threats(d: &DeviceAssessment) -> Option<Light> {
        d.services.iter().find(|s| s.service == "threats").map(|s| s.light)
    }

    /// A suppressed severe IDS alert drives no light and is listed; `include` counts it; once
    /// expired, the entry stops applying and the report says so.
    #[test]
    fn suppressed_alerts_leave_the_light_green_unless_included_or_expired() {
        let (_dir, store, period) = scanned_store();
        let toml = |until: &str| {
            format!("[[suppress]]\ntenant = \"acme\"\nsignature-id = 2010935\nsource = \"10.0.0.0/8\"\nreason = \"weekly scan\"\n{until}")
        };
        let cfg = Config::parse(std::path::Path::new("/etc/ampel/collector.toml"), &toml("")).unwrap();
        let a = assess(&store, &cfg, "acme", &period, FalsePositives::Appendix).unwrap();
        assert_eq!((a.devices[0].light, threats(&a.devices[0])), (Light::Green, Some(Light::Green)));
        let data = report_data(&store, &cfg, "acme", &period, FalsePositives::default()).unwrap();
        assert_eq!((data.light, data.threats.total), (Light::Green, 0));
        let applied = &data.false_positives.applied;
        assert_eq!(applied.len(), 1);
        assert_eq!((applied[0].index, applied[0].alerts, applied[0].reason.as_str()), (1, 1, "weekly scan"));
        assert_eq!(applied[0].devices, vec!["fw-1".to_owned()]);
        assert_eq!(applied[0].signatures, vec![("ET SCAN Nmap Scripting Engine".to_owned(), 1)]);

        let included = report_data(&store, &cfg, "acme", &period, FalsePositives::Include).unwrap();
        assert_eq!((included.light, included.threats.total), (Light::Red, 1));
        assert_eq!((included.false_positives.applied.len(), included.false_positives.ignored), (0, 1));

        // `until` inside the period: expired by its end, so the alert counts again.
        let cfg = Config::parse(std::path::Path::new("/etc/ampel/collector.toml"), &toml("until = 2026-03-09T12:00:00Z")).unwrap();
        let expired = report_data(&store, &cfg, "acme", &period, FalsePositives::default()).unwrap();
        assert_eq!((expired.light, expired.threats.total), (Light::Red, 1));
        let e = &expired.false_positives.expired;
        assert_eq!((e.len(), e[0].index, e[0].until_ms), (1, 1, DAY0 + 12 * HOUR));
        // A rule suppressed for the device drops its finding instead.
        let cfg = Config::parse(
            std::path::Path::new("/etc/ampel/collector.toml"),
            "[[suppress]]\ntenant = \"acme\"\ndevice = \"fw-1\"\nrule = \"threats.ids-severe\"\nreason = \"lab\"\n",
        )
        .unwrap();
        let a = assess(&store, &cfg, "acme", &period, FalsePositives::Exclude).unwrap();
        assert_eq!((a.devices[0].light, a.suppressed.findings(), a.suppressed.alerts()), (Light::Green, 1, 0));
    }

    /// Hour `hour` after [`DAY0`] of a device sampled every minute (off the minute), with
    /// CPU high 40 % of the time, a second CPU series, a disk growing towards full and one
    /// full, two capture counters each, the certificate hourly, and three silences.
    fn odd_hour(hour: i64) -> Vec<ampel_protocol::Record> {
        use ampel_protocol::{Metric, Record};
        let m = |ts: i64, name: &str, label: Option<(&str, &str)>, value: f64| {
            let labels = label.map(|(k, v)| vec![(k.to_owned(), v.to_owned())]).unwrap_or_default();
            Record::Metric(Metric { ts, name: name.into(), labels, value })
        };
        let silences = [(34 * HOUR, 37 * HOUR), (47 * HOUR, 49 * HOUR + 30 * MIN), (55 * HOUR, 60 * HOUR)];
        let mut records = Vec::new();
        for i in 0..60 {
            let k = hour * 60 + i;
            let ts = DAY0 + k * MIN + 1_234;
            if silences.iter().any(|(a, b)| (DAY0 + a..DAY0 + b).contains(&ts)) {
                continue;
            }
            records.push(m(ts, "cpu.usage_percent", None, if k % 10 < 4 { 95.0 } else { 20.0 + (k % 7) as f64 * 0.1 }));
            records.push(m(ts, "memory.used_percent", None, 40.0 + (k % 13) as f64 * 0.5));
            records.push(m(ts, "disk.used_percent", Some(("mount", "/")), 60.0 + k as f64 * 0.005 + (k % 3) as f64 * 0.01));
            records.push(m(ts, "disk.used_percent", Some(("mount", "/boot")), 96.0));
            if k % 5 == 0 {
                let late = ts + 30_000;
                records.push(m(late, "cpu.usage_percent", Some(("core", "1")), 50.0 + (k % 11) as f64));
                for iface in ["eth0", "eth1"] {
                    records.push(m(late, "ids.capture.kernel_packets", Some(("iface", iface)), 1000.0));
                    records.push(m(late, "ids.capture.kernel_drops", Some(("iface", iface)), 15.0));
                }
            }
            if i == 0 {
                records.push(m(ts, "agent.cert_expires_at", None, ((DAY0 + 6 * 86_400_000) / 1000) as f64));
            }
        }
        records
    }

    /// A store with 72 hours of [`odd_hour`] from device `fw-1` of tenant `acme`, the last two
    /// hours not yet folded (readers merge them in from the ingest log), and a period that
    /// starts and ends off every bucket edge.
    fn odd_store() -> (tempfile::TempDir, Store, Period) {
        use crate::store::{PendingBatch, StoreOptions};
        use ampel_protocol::{Batch, DeviceId, Identity, PROTOCOL_VERSION, TenantId};
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
        let me = Identity { tenant: TenantId::new("acme").unwrap(), device: DeviceId::new("fw-1").unwrap() };
        store.register_device(&me.tenant, &me.device, DAY0 - 86_400_000).unwrap();
        let batch = |hour: i64| PendingBatch {
            identity: me.clone(),
            batch: Batch { version: PROTOCOL_VERSION, seq: hour as u64 + 1, sender: None, records: odd_hour(hour) },
            received_ms: DAY0 + (hour + 1) * HOUR,
        };
        store.commit(&(0..70).map(batch).collect::<Vec<_>>()).unwrap();
        store.fold_all().unwrap();
        store.commit(&(70..72).map(batch).collect::<Vec<_>>()).unwrap();
        let period = Period::range(DAY0 + 37_123, DAY0 + 72 * HOUR - 13 * MIN - 7_000, "UTC").unwrap();
        (dir, store, period)
    }

    /// `fw-1`'s raw samples in `period`, read whole, as the gathering did before it streamed.
    fn raw_input(store: &Store, cfg: &Config, period: &Period) -> DeviceInput {
        let mut raw = DeviceInput { device: "fw-1".into(), ..DeviceInput::default() };
        let mut latest = None;
        let names = [rules::metrics::CPU, rules::metrics::MEMORY, rules::metrics::DISK_USED, rules::metrics::CERT_EXPIRES_AT];
        for name in names.into_iter().chain(["ids.capture.kernel_drops", "ids.capture.kernel_packets"]) {
            for (labels, points) in store.metric("fw-1", name, period.start_ms, period.end_ms).unwrap() {
                latest = latest.max(points.last().map(|p| p.0));
                raw.add_series(name, &labels, points, &cfg.risk);
            }
        }
        let record = store.device("fw-1").unwrap().unwrap();
        raw.first_seen_ms = record.first_seen_ms;
        raw.last_seen_ms = record.last_seen_ms.map(|l| l.min(period.end_ms)).max(latest);
        raw
    }

    /// The rules' answers from the store, streamed a day at a time (a silence crosses a
    /// slice's edge), are those of the raw samples read whole, to the last digit.
    #[test]
    fn streamed_gathering_gives_the_findings_of_the_raw_samples() {
        let (_dir, store, period) = odd_store();
        let cfg = Config::parse(std::path::Path::new("/etc/ampel/collector.toml"), "").unwrap();
        let raw = raw_input(&store, &cfg, &period);
        let expected = rules::evaluate(&raw, &cfg.risk, &period.window());
        let got = assess(&store, &cfg, "acme", &period, FalsePositives::default()).unwrap();
        assert_eq!(got.devices[0].findings, expected);
        let mut fired: Vec<&str> = expected.iter().map(|f| f.rule.id()).collect();
        fired.dedup();
        let all = [
            "availability.certificate-expiring",
            "performance.cpu",
            "performance.disk-full-forecast",
            "performance.disk",
            "traffic.capture-drops",
            "coverage.gaps",
        ];
        assert_eq!(fired, all);
    }

    /// What the report shows per device from the rollups has the raw samples' point count,
    /// extremes, mean, coverage and chart.
    #[test]
    fn rolled_up_report_figures_are_the_raw_samples_figures() {
        let (_dir, store, period) = odd_store();
        let cfg = Config::parse(std::path::Path::new("/etc/ampel/collector.toml"), "").unwrap();
        let raw = raw_input(&store, &cfg, &period);
        let data = report_data(&store, &cfg, "acme", &period, FalsePositives::default()).unwrap();
        let d = &data.devices[0];
        assert_eq!(d.points, store.count_points("fw-1", period.start_ms, period.end_ms).unwrap());
        let close = |a: Option<Stat>, b: Option<Stat>| {
            let (a, b) = (a.unwrap(), b.unwrap());
            assert_eq!((a.min, a.max), (b.min, b.max));
            assert!((a.avg - b.avg).abs() <= 1e-9 * b.avg.abs(), "{a:?} {b:?}");
        };
        close(d.cpu_stat, Stat::of(&raw.cpu));
        close(d.memory_stat, Stat::of(&raw.memory));
        let mounts: Vec<&str> = d.disks.iter().map(|x| x.0.as_str()).collect();
        assert_eq!(mounts, vec!["/", "/boot"]);
        for (disk, (_, stat)) in raw.disks.iter().zip(&d.disks) {
            close(Some(*stat), Stat::of(&disk.points));
        }
        let start = raw.first_seen_ms.unwrap().max(period.start_ms);
        let cov = crate::risk::coverage::coverage(&raw.sample_times(), start, period.end_ms, cfg.risk.expected_interval.as_ms());
        assert_eq!(d.coverage, Some(cov.share));
        assert_eq!(d.gaps, cov.gaps.iter().map(|g| (g.start_ms, g.end_ms)).collect::<Vec<_>>());
        assert_eq!(d.gaps.len(), 3);
        // 15-minute buckets over three days (from the minute rollups), each the mean of its
        // samples.
        assert_eq!(chart_step(period.start_ms, period.end_ms, CHART_POINTS), 15 * MIN);
        let from_raw = chart_points(&raw.cpu, period.start_ms, period.end_ms);
        assert!(from_raw.len() > 200 && from_raw.len() <= CHART_POINTS, "{}", from_raw.len());
        assert_eq!(d.cpu.len(), from_raw.len());
        for (a, b) in d.cpu.iter().zip(&from_raw) {
            assert!(a.0 == b.0 && (a.1 - b.1).abs() <= 1e-9 * b.1.abs(), "{a:?} {b:?}");
        }
    }

    /// Traffic rates per bucket from the agent's per-interface deltas: a bucket cut by the
    /// period's start is divided by its part only, an empty bucket is a gap, the per-protocol
    /// shares do not add to the interface, and a negative delta (no agent sends one; a peer
    /// might) is no growth rather than a negative rate.
    #[test]
    fn traffic_charts_are_rates_of_the_interface_deltas_with_gaps_and_never_negative() {
        use crate::store::{PendingBatch, StoreOptions};
        use ampel_protocol::{Batch, DeviceId, Identity, Metric, PROTOCOL_VERSION, Record, TenantId, Traffic};
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
        let me = Identity { tenant: TenantId::new("acme").unwrap(), device: DeviceId::new("fw-1").unwrap() };
        store.register_device(&me.tenant, &me.device, DAY0).unwrap();
        let traffic = |ts: i64, category: Option<&str>, rx: u64| {
            Record::Traffic(Traffic {
                ts,
                interval_ms: 60_000,
                interface: "eth0".into(),
                category: category.map(str::to_owned),
                rx_bytes: rx,
                tx_bytes: 0,
                rx_packets: 0,
                tx_packets: 0,
                rx_errors: 0,
                tx_errors: 0,
            })
        };
        // A minute's delta of 6 kB in minutes 0..10 and 20..30 of the day; the eve share of
        // the same traffic; and one lie in minute 40.
        let mut records: Vec<Record> = (0..30).filter(|m| !(10..20).contains(m)).map(|m| traffic(DAY0 + m * MIN, None, 6_000)).collect();
        records.extend((0..30).map(|m| traffic(DAY0 + m * MIN, Some("http"), 5_000)));
        let lie = vec![("interface".to_owned(), "eth0".to_owned())];
        records.push(Record::Metric(Metric { ts: DAY0 + 40 * MIN, name: "traffic.rx_bytes".into(), labels: lie, value: -1e9 }));
        let batch = Batch { version: PROTOCOL_VERSION, seq: 1, sender: None, records };
        store.commit(&[PendingBatch { identity: me, batch, received_ms: DAY0 + HOUR }]).unwrap();
        store.fold_all().unwrap();
        // A day from minute 2: five-minute buckets (from the minute rollups).
        let period = Period::range(DAY0 + 2 * MIN, DAY0 + 2 * MIN + 24 * HOUR, "UTC").unwrap();
        let charts = device_charts(&store, "fw-1", &period).unwrap();
        assert_eq!(charts.step_ms, 5 * MIN);
        let [(interface, rx, tx)] = charts.traffic.as_slice() else { panic!("{:?}", charts.traffic) };
        assert_eq!(interface, "eth0");
        // 100 B/s everywhere: minutes 2..5 (a bucket cut to 3 minutes), 5..10, 20..25, 25..30;
        // nothing for 10..20 (a gap) and 0 for the lie.
        let at = |from: i64, to: i64| DAY0 + (from * MIN + to * MIN) / 2;
        let expected = vec![(at(2, 5), 100.0), (at(5, 10), 100.0), (at(20, 25), 100.0), (at(25, 30), 100.0), (at(40, 45), 0.0)];
        assert_eq!(rx, &expected);
        assert!(tx.iter().all(|p| p.1 == 0.0) && tx.len() == 4, "{tx:?}");
    }

    #[test]
    fn chart_points_keep_the_mean_and_the_order() {
        let pts: Vec<(i64, f64)> = (0..10_000).map(|i| (i * MIN, (i % 2) as f64 * 100.0)).collect();
        let d = chart_points(&pts, 0, 10_000 * MIN);
        assert!(d.len() <= CHART_POINTS && d.len() >= 300, "{}", d.len());
        assert!(d.windows(2).all(|w| w[0].0 < w[1].0));
        assert!(d.iter().all(|p| (p.1 - 50.0).abs() < 1.0), "{d:?}");
        // Outside the period and not finite: left out.
        assert_eq!(chart_points(&[(-1, 1.0), (5, f64::NAN), (10, 2.0)], 0, 100), vec![(50, 2.0)]);
    }
}
