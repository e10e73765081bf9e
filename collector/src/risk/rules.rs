//! The built-in rules of the walking skeleton: device silent, CPU and memory pressure, disk
//! filling up, no data. Plain functions over gathered data — no store, no clock.

use super::{Finding, Light};
use crate::config::RiskConfig;

/// What the rules look at for one device.
#[derive(Debug, Clone, Default)]
pub struct DeviceInput {
    /// Device id.
    pub device: String,
    /// Last batch received, Unix ms; `None` if never.
    pub last_seen_ms: Option<i64>,
    /// CPU usage samples in the period.
    pub cpu: Vec<(i64, f64)>,
    /// Memory usage samples in the period.
    pub memory: Vec<(i64, f64)>,
    /// Per mount: the latest usage in percent.
    pub disks: Vec<(String, f64)>,
}

fn human(ms: i64) -> String {
    let s = ms / 1000;
    match s {
        s if s >= 2 * 86_400 => format!("{} days", s / 86_400),
        s if s >= 2 * 3600 => format!("{} hours", s / 3600),
        s if s >= 120 => format!("{} minutes", s / 60),
        s => format!("{s} seconds"),
    }
}

/// Runs every rule over one device. `now_ms` is the moment judged (the report's end).
pub fn evaluate(dev: &DeviceInput, cfg: &RiskConfig, now_ms: i64) -> Vec<Finding> {
    let mut out = Vec::new();
    let finding = |rule: &str, service: &str, level, evidence: String, recommendation: &str| Finding {
        rule: rule.into(),
        service: service.into(),
        device: Some(dev.device.clone()),
        level,
        evidence,
        recommendation: recommendation.into(),
    };

    match dev.last_seen_ms {
        None => out.push(finding(
            "availability.never-seen",
            "availability",
            Light::Grey,
            "The device is registered but has never sent data.".into(),
            "Install and start ampel-agent on the device with its certificate, then check `journalctl -u ampel-agent` for connection errors.",
        )),
        Some(last) => {
            let silent = now_ms.saturating_sub(last);
            let level = if silent >= cfg.silent_red.as_ms() {
                Some(Light::Red)
            } else if silent >= cfg.silent_yellow.as_ms() {
                Some(Light::Yellow)
            } else {
                None
            };
            if let Some(level) = level {
                out.push(finding(
                    "availability.silent",
                    "availability",
                    level,
                    format!("No data for {} (yellow after {}, red after {}).", human(silent), human(cfg.silent_yellow.as_ms()), human(cfg.silent_red.as_ms())),
                    "Check that the device is powered and reachable and that ampel-agent runs; its log names the connection error.",
                ));
            }
        }
    }

    let share = cfg.high_share_percent.0 / 100.0;
    for (rule, what, samples, limit, advice) in [
        ("performance.cpu", "CPU", &dev.cpu, cfg.cpu_high_percent.0, "Find the processes that load the CPU (IDS rule sets and antivirus scans are typical) and tune them, or size the appliance up."),
        ("performance.memory", "Memory", &dev.memory, cfg.memory_high_percent.0, "Find what uses the memory; reduce IDS or proxy caches, or add memory."),
    ] {
        if samples.is_empty() {
            continue;
        }
        let high = samples.iter().filter(|(_, v)| *v >= limit).count();
        let frac = high as f64 / samples.len() as f64;
        let level = if frac > (2.0 * share).min(1.0) && share > 0.0 {
            Some(Light::Red)
        } else if frac > share {
            Some(Light::Yellow)
        } else {
            None
        };
        if let Some(level) = level {
            out.push(finding(
                rule,
                "performance",
                level,
                format!("{what} usage at or above {limit:.0} % in {:.0} % of {} samples (limit {:.0} %).", frac * 100.0, samples.len(), share * 100.0),
                advice,
            ));
        }
    }

    for (mount, used) in &dev.disks {
        let level = if *used >= cfg.disk_red_percent.0 {
            Some(Light::Red)
        } else if *used >= cfg.disk_yellow_percent.0 {
            Some(Light::Yellow)
        } else {
            None
        };
        if let Some(level) = level {
            out.push(finding(
                "performance.disk",
                "performance",
                level,
                format!("File system {mount} is {used:.1} % full (yellow at {:.0} %, red at {:.0} %).", cfg.disk_yellow_percent.0, cfg.disk_red_percent.0),
                "Free space on the file system: rotate or ship logs, remove old quarantine files, or grow the volume.",
            ));
        }
    }

    if dev.last_seen_ms.is_some() && dev.cpu.is_empty() && dev.memory.is_empty() {
        out.push(finding(
            "coverage.no-performance-data",
            "coverage",
            Light::Grey,
            "No CPU or memory samples in the period.".into(),
            "Enable the performance source in the agent's configuration.",
        ));
    }
    out
}

/// Light of a set of findings: the worst, green when there are none.
pub fn light_of(findings: &[Finding]) -> Light {
    findings.iter().map(|f| f.level).max().unwrap_or(Light::Green)
}

/// Score of a set of findings: 100 minus 40 per red, 15 per yellow and 10 per grey finding,
/// floored at 0. Capped at 49 when red, 79 when yellow, so the score never contradicts the light.
pub fn score_of(findings: &[Finding]) -> u8 {
    let penalty: u32 = findings
        .iter()
        .map(|f| match f.level {
            Light::Red => 40,
            Light::Yellow => 15,
            Light::Grey => 10,
            Light::Green => 0,
        })
        .sum();
    let score = 100u32.saturating_sub(penalty);
    let cap = match light_of(findings) {
        Light::Red => 49,
        Light::Yellow => 79,
        Light::Grey => 89,
        Light::Green => 100,
    };
    score.min(cap) as u8
}

/// Tenant score: the mean of its device scores (100 with no devices), capped like
/// [`score_of`] by the tenant's light.
pub fn tenant_score(device_scores: &[u8], light: Light) -> u8 {
    if device_scores.is_empty() {
        return 100;
    }
    let mean = device_scores.iter().map(|s| u32::from(*s)).sum::<u32>() / device_scores.len() as u32;
    let cap = match light {
        Light::Red => 49,
        Light::Yellow => 79,
        Light::Grey => 89,
        Light::Green => 100,
    };
    mean.min(cap) as u8
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;

    fn dev() -> DeviceInput {
        DeviceInput { device: "fw-1".into(), last_seen_ms: Some(1_000 * MIN), cpu: vec![(0, 10.0); 100], memory: vec![(0, 40.0); 100], disks: vec![("/".into(), 50.0)] }
    }

    fn levels(f: &[Finding]) -> Vec<(&str, Light)> {
        f.iter().map(|f| (f.rule.as_str(), f.level)).collect()
    }

    #[test]
    fn a_healthy_device_is_green_with_full_score() {
        let f = evaluate(&dev(), &RiskConfig::default(), 1_000 * MIN + 1);
        assert!(f.is_empty(), "{f:?}");
        assert_eq!((light_of(&f), score_of(&f)), (Light::Green, 100));
    }

    #[test]
    fn silence_turns_yellow_at_15_minutes_and_red_at_24_hours() {
        let cfg = RiskConfig::default();
        let d = dev();
        let last = d.last_seen_ms.unwrap();
        assert!(evaluate(&d, &cfg, last + 15 * MIN - 1).is_empty());
        assert_eq!(levels(&evaluate(&d, &cfg, last + 15 * MIN)), vec![("availability.silent", Light::Yellow)]);
        assert_eq!(levels(&evaluate(&d, &cfg, last + 24 * 60 * MIN - 1)), vec![("availability.silent", Light::Yellow)]);
        let red = evaluate(&d, &cfg, last + 24 * 60 * MIN);
        assert_eq!(levels(&red), vec![("availability.silent", Light::Red)]);
        assert!(red[0].evidence.contains("24 hours"), "{}", red[0].evidence);
        assert!(score_of(&red) <= 49);
    }

    #[test]
    fn cpu_high_for_a_quarter_is_fine_more_is_yellow_more_than_half_is_red() {
        let cfg = RiskConfig::default();
        let now = 1_000 * MIN;
        let with_high = |n: usize| {
            let mut d = dev();
            for s in d.cpu.iter_mut().take(n) {
                s.1 = 90.0;
            }
            evaluate(&d, &cfg, now)
        };
        assert!(with_high(25).is_empty());
        assert_eq!(levels(&with_high(26)), vec![("performance.cpu", Light::Yellow)]);
        assert_eq!(levels(&with_high(50)), vec![("performance.cpu", Light::Yellow)]);
        assert_eq!(levels(&with_high(51)), vec![("performance.cpu", Light::Red)]);
    }

    #[test]
    fn disk_thresholds() {
        let cfg = RiskConfig::default();
        let at = |pct: f64| {
            let mut d = dev();
            d.disks = vec![("/var".into(), pct)];
            levels(&evaluate(&d, &cfg, 1_000 * MIN)).into_iter().map(|(_, l)| l).collect::<Vec<_>>()
        };
        assert_eq!(at(84.9), vec![]);
        assert_eq!(at(85.0), vec![Light::Yellow]);
        assert_eq!(at(95.0), vec![Light::Red]);
    }

    #[test]
    fn a_device_without_data_is_grey_never_green() {
        let d = DeviceInput { device: "fw-2".into(), ..DeviceInput::default() };
        let f = evaluate(&d, &RiskConfig::default(), 0);
        assert_eq!(light_of(&f), Light::Grey);
        assert!(score_of(&f) < 100);
        assert!(Light::Grey > Light::Green && Light::Yellow > Light::Grey);
    }

    #[test]
    fn tenant_score_is_the_capped_mean() {
        assert_eq!(tenant_score(&[100, 100], Light::Green), 100);
        assert_eq!(tenant_score(&[100, 60], Light::Yellow), 79);
        assert_eq!(tenant_score(&[], Light::Green), 100);
    }
}
