//! Gathers a tenant's data from the store, runs the risk rules over it and builds what the
//! report shows. The one place where store, risk and report meet.

use crate::config::Config;
use crate::report::{DeviceReport, ReportData};
use crate::risk::rules::{self, DeviceInput};
use crate::risk::{Finding, Light};
use crate::store::{Store, StoreError};

/// A reporting period: `[start_ms, end_ms)` with the label it was asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Period {
    /// Start, Unix ms (inclusive).
    pub start_ms: i64,
    /// End, Unix ms (exclusive).
    pub end_ms: i64,
    /// How it was asked for, e.g. `last-7d`.
    pub label: String,
}

impl Period {
    /// Parses `last-<duration>` (e.g. `last-24h`, `last-7d`, `last-30d`) ending at `now_ms`.
    pub fn parse(s: &str, now_ms: i64) -> Result<Period, String> {
        let rest = s
            .strip_prefix("last-")
            .ok_or_else(|| format!("period {s:?} is not of the form last-<duration>, e.g. last-24h, last-7d, last-30d"))?;
        let d: crate::config::Duration = rest.parse().map_err(|e| format!("period {s:?}: {e}"))?;
        if d.as_ms() <= 0 {
            return Err(format!("period {s:?} is empty"));
        }
        Ok(Period { start_ms: now_ms.saturating_sub(d.as_ms()), end_ms: now_ms, label: s.to_owned() })
    }
}

/// One device's verdict.
#[derive(Debug, Clone)]
pub struct DeviceAssessment {
    /// Device id.
    pub device: String,
    /// The device's light.
    pub light: Light,
    /// The device's score.
    pub score: u8,
    /// Its findings.
    pub findings: Vec<Finding>,
}

/// A tenant's verdict.
#[derive(Debug, Clone)]
pub struct TenantAssessment {
    /// Tenant id.
    pub tenant: String,
    /// Worst of its devices.
    pub light: Light,
    /// Capped mean of its device scores.
    pub score: u8,
    /// Per device, sorted by id.
    pub devices: Vec<DeviceAssessment>,
}

/// Most points a chart series is reduced to.
const CHART_POINTS: usize = 400;

/// Reduces a series to at most `max` points by averaging equal time buckets.
pub fn downsample(points: &[(i64, f64)], max: usize) -> Vec<(i64, f64)> {
    if points.len() <= max || max == 0 {
        return points.to_vec();
    }
    let (first, last) = (points[0].0, points[points.len() - 1].0);
    let width = ((last - first) / max as i64 + 1).max(1);
    let mut out: Vec<(i64, f64)> = Vec::with_capacity(max + 1);
    let (mut bucket, mut sum, mut n, mut ts_sum) = (0i64, 0.0, 0u32, 0i128);
    for (i, (ts, v)) in points.iter().enumerate() {
        let b = (ts - first) / width;
        if i > 0 && b != bucket && n > 0 {
            out.push(((ts_sum / i128::from(n)) as i64, sum / f64::from(n)));
            (sum, n, ts_sum) = (0.0, 0, 0);
        }
        bucket = b;
        sum += v;
        n += 1;
        ts_sum += i128::from(*ts);
    }
    if n > 0 {
        out.push(((ts_sum / i128::from(n)) as i64, sum / f64::from(n)));
    }
    out
}

struct Gathered {
    input: DeviceInput,
    record: crate::store::DeviceRecord,
    points: u64,
}

fn gather(store: &Store, tenant: &str, period: &Period) -> Result<Vec<Gathered>, StoreError> {
    let mut out = Vec::new();
    for (device, record) in store.devices(Some(tenant))? {
        let series = |name: &str| -> Result<Vec<(i64, f64)>, StoreError> {
            let mut all: Vec<(i64, f64)> = store.metric(&device, name, period.start_ms, period.end_ms)?.into_iter().flat_map(|(_, p)| p).collect();
            all.sort_by_key(|p| p.0);
            Ok(all)
        };
        let cpu = series("cpu.usage_percent")?;
        let memory = series("memory.used_percent")?;
        let disks = store
            .metric(&device, "disk.used_percent", period.start_ms, period.end_ms)?
            .into_iter()
            .filter_map(|(labels, pts)| {
                let mount = labels.iter().find(|(k, _)| k == "mount").map(|(_, v)| v.clone()).unwrap_or_else(|| "?".into());
                pts.last().map(|p| (mount, p.1))
            })
            .collect();
        let points = store.count_points(&device, period.start_ms, period.end_ms)?;
        // A device is judged on what it had sent by the end of the period.
        let last_seen_ms = record.last_seen_ms.map(|l| l.min(period.end_ms));
        out.push(Gathered { input: DeviceInput { device, last_seen_ms, cpu, memory, disks }, record, points });
    }
    Ok(out)
}

fn assess_gathered(tenant: &str, gathered: &[Gathered], cfg: &Config, period: &Period) -> TenantAssessment {
    let mut devices: Vec<DeviceAssessment> = gathered
        .iter()
        .map(|g| {
            let findings = rules::evaluate(&g.input, &cfg.risk, period.end_ms);
            DeviceAssessment { device: g.input.device.clone(), light: rules::light_of(&findings), score: rules::score_of(&findings), findings }
        })
        .collect();
    devices.sort_by(|a, b| a.device.cmp(&b.device));
    let light = devices.iter().map(|d| d.light).max().unwrap_or(Light::Grey);
    let scores: Vec<u8> = devices.iter().map(|d| d.score).collect();
    let score = if devices.is_empty() { 0 } else { rules::tenant_score(&scores, light) };
    TenantAssessment { tenant: tenant.to_owned(), light, score, devices }
}

/// Runs the rules over a tenant's devices for a period.
pub fn assess(store: &Store, cfg: &Config, tenant: &str, period: &Period) -> Result<TenantAssessment, StoreError> {
    let gathered = gather(store, tenant, period)?;
    Ok(assess_gathered(tenant, &gathered, cfg, period))
}

/// Everything the report of a tenant shows for a period.
pub fn report_data(store: &Store, cfg: &Config, tenant: &str, period: &Period) -> Result<ReportData, StoreError> {
    let gathered = gather(store, tenant, period)?;
    let assessment = assess_gathered(tenant, &gathered, cfg, period);
    let mut findings: Vec<Finding> = assessment.devices.iter().flat_map(|d| d.findings.clone()).collect();
    findings.sort_by(|a, b| b.level.cmp(&a.level).then_with(|| a.device.cmp(&b.device)).then_with(|| a.rule.cmp(&b.rule)));
    let devices = gathered
        .iter()
        .zip(&assessment.devices)
        .map(|(g, a)| {
            let inv = g.record.inventory.clone();
            DeviceReport {
                device: g.input.device.clone(),
                hostname: inv.as_ref().map(|i| i.hostname.clone()).unwrap_or_default(),
                model: inv.as_ref().map(|i| i.model.clone()).unwrap_or_default(),
                os: inv.as_ref().map(|i| i.os.clone()).unwrap_or_default(),
                agent_version: inv.as_ref().map(|i| i.agent_version.clone()).unwrap_or_default(),
                first_seen_ms: g.record.first_seen_ms,
                last_seen_ms: g.record.last_seen_ms,
                points: g.points,
                light: a.light,
                score: a.score,
                cpu: downsample(&g.input.cpu, CHART_POINTS),
                memory: downsample(&g.input.memory, CHART_POINTS),
            }
        })
        .collect();
    Ok(ReportData {
        tenant: tenant.to_owned(),
        period_start_ms: period.start_ms,
        period_end_ms: period.end_ms,
        period_label: period.label.clone(),
        time_zone: cfg.report.time_zone.0.clone(),
        generated_at_ms: period.end_ms,
        light: assessment.light,
        score: assessment.score,
        findings,
        devices,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn periods_parse() {
        let p = Period::parse("last-7d", 10 * 86_400_000).unwrap();
        assert_eq!((p.start_ms, p.end_ms), (3 * 86_400_000, 10 * 86_400_000));
        assert!(Period::parse("7d", 0).is_err());
        assert!(Period::parse("last-0d", 0).is_err());
    }

    #[test]
    fn downsampling_keeps_the_mean_and_the_order() {
        let pts: Vec<(i64, f64)> = (0..10_000).map(|i| (i, (i % 2) as f64 * 100.0)).collect();
        let d = downsample(&pts, 100);
        assert!(d.len() <= 101 && d.len() >= 90, "{}", d.len());
        assert!(d.windows(2).all(|w| w[0].0 < w[1].0));
        assert!(d.iter().all(|p| (p.1 - 50.0).abs() < 1.0));
        assert_eq!(downsample(&pts[..5], 100).len(), 5);
    }
}
