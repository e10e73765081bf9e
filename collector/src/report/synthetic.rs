//! Synthetic report data: the tests' and the benchmark's tenant, with every section filled.
//!
//! Deterministic (no clock, no randomness), so renders of it can be compared byte for byte.

use super::stats::{self, Stat, TrafficRow};
use super::{AlertStats, DeviceReport, ReportData};
use crate::risk::{Facts, Finding, Light, Rule};

const DAY: i64 = 86_400_000;
/// 2024-06-03 00:00 Europe/Berlin (CEST, UTC+2): the start of every synthetic period.
pub const START: i64 = 1_717_365_600_000;

/// One synthetic device with `step`-spaced CPU and memory samples.
pub fn device(i: usize, start: i64, end: i64, step: i64) -> DeviceReport {
    let n = if step > 0 { (end - start) / step } else { 0 };
    let series = |phase: f64| -> Vec<(i64, f64)> {
        (0..n)
            .map(|k| {
                let t = start + k * step;
                let v = 40.0 + 30.0 * ((k as f64) / 180.0 + phase).sin() + ((k * 7919) % 13) as f64;
                (t, v)
            })
            .collect()
    };
    DeviceReport {
        device: format!("fw-{i:04}"),
        hostname: format!("gw{i}.example.net"),
        model: "UTM 320".into(),
        os: "Linux 6.1".into(),
        agent_version: "0.1.0".into(),
        first_seen_ms: Some(start),
        last_seen_ms: Some(end - step.max(1)),
        points: u64::try_from(2 * n).unwrap_or_default(),
        light: [Light::Green, Light::Yellow, Light::Red, Light::Grey][i % 4],
        score: [100, 70, 20, 50][i % 4],
        cpu: series(i as f64),
        memory: series(i as f64 + 2.0).into_iter().map(|(t, v)| (t, v * 0.8)).collect(),
        cpu_stat: None,
        memory_stat: None,
        disks: Vec::new(),
        license: None,
        coverage: Some(1.0),
        gaps: Vec::new(),
    }
    .with_stats()
    .charted(start, end)
}

impl DeviceReport {
    /// The chart series reduced to what [`crate::assess::report_data`] reads from the rollups
    /// for the period `[start_ms, end_ms)`, so the synthetic tenant is what the renderer gets
    /// from the store (and is small).
    pub fn charted(mut self, start_ms: i64, end_ms: i64) -> DeviceReport {
        self.cpu = crate::assess::chart_points(&self.cpu, start_ms, end_ms);
        self.memory = crate::assess::chart_points(&self.memory, start_ms, end_ms);
        self
    }

    /// Sets the min / avg / max from the samples.
    pub fn with_stats(mut self) -> DeviceReport {
        self.cpu_stat = Stat::of(&self.cpu);
        self.memory_stat = Stat::of(&self.memory);
        self
    }
}

/// The three findings of the synthetic tenant: a silent device, a busy CPU and a license
/// expiring tenant-wide.
fn findings(end: i64) -> Vec<Finding> {
    const HOUR: i64 = 3_600_000;
    let finding = |rule: Rule, device: Option<&str>, level: Light, facts: Facts| Finding {
        rule,
        device: device.map(Into::into),
        level,
        id: String::new(),
        subject: None,
        facts,
        window_ms: [START, end],
        change: None,
    };
    vec![
        finding(
            Rule::Silent,
            Some("fw-0002"),
            Light::Red,
            Facts::Silent { last_seen_ms: end - 26 * HOUR, silent_ms: 26 * HOUR, yellow_ms: HOUR / 4, red_ms: 24 * HOUR },
        ),
        finding(
            Rule::Cpu,
            Some("fw-0001"),
            Light::Yellow,
            Facts::Usage {
                limit_percent: 90.0,
                high_share_percent: 41.0,
                samples: 1440,
                yellow_share_percent: 25.0,
                red_share_percent: 50.0,
            },
        ),
        finding(
            Rule::LicenseExpiring,
            None,
            Light::Yellow,
            Facts::LicenseExpiry { product: "UTM".into(), expires_ms: end + 10 * DAY, left_ms: 10 * DAY, horizon_ms: 30 * DAY },
        ),
    ]
}

/// A tenant of `devices` devices over `days` days, CPU and memory every `step` ms, three findings.
pub fn sample(devices: usize, days: i64, step: i64) -> ReportData {
    let end = START + days * DAY;
    ReportData {
        tenant: "acme-gmbh".into(),
        period_start_ms: START,
        period_end_ms: end,
        period_label: format!("last-{days}d"),
        time_zone: "Europe/Berlin".into(),
        generated_at_ms: end + 8 * 3_600_000,
        light: Light::Red,
        score: 35,
        findings: findings(end),
        devices: (0..devices).map(|i| device(i, START, end, step)).collect(),
        services: Vec::new(),
        changes: Vec::new(),
        previous_ms: None,
        threats: AlertStats::default(),
        malware: AlertStats::default(),
        mail: AlertStats::default(),
        traffic: Vec::new(),
        rule_version: "test".into(),
        file_hashes: Vec::new(),
        false_positives: Default::default(),
    }
}

/// Two suppressions that applied and one that expired, as the appendix lists them.
fn false_positives_sample(end: i64) -> crate::assess::suppress::Suppressed {
    use crate::assess::suppress::{Applied, Expired, FalsePositives, Suppressed};
    Suppressed {
        mode: FalsePositives::Appendix,
        applied: vec![
            Applied {
                index: 1,
                what: "signature-id = 2010935, source = 10.20.0.0/16".into(),
                reason: "Vulnerability scanner of the IT department, weekly scan".into(),
                alerts: 1_204,
                findings: 0,
                devices: vec!["fw-0000".into(), "fw-0001".into()],
                signatures: vec![("ET SCAN Nmap Scripting Engine User-Agent Detected".into(), 1_204)],
            },
            Applied {
                index: 3,
                what: "device = fw-0002, rule = performance.cpu".into(),
                reason: "Backup window, accepted by the customer".into(),
                alerts: 0,
                findings: 1,
                devices: vec!["fw-0002".into()],
                signatures: vec![("performance.cpu".into(), 1)],
            },
        ],
        expired: vec![Expired {
            index: 2,
            what: "antivirus = Win.Test.EICAR_HDB-1".into(),
            reason: "EICAR test of the mail relay".into(),
            until_ms: end - 3 * DAY,
        }],
        ignored: 0,
    }
}

/// [`sample`] with every section filled: alerts of all kinds, traffic, disks, licenses, gaps,
/// lights per service and changes since the last report.
pub fn rich(devices: usize, days: i64, step: i64) -> ReportData {
    use ampel_protocol::{AlertAction, AlertSource};
    let mut data = sample(devices, days, step);
    let end = data.period_end_ms;
    for f in &mut data.findings {
        f.id = crate::risk::finding_id(f.rule, f.device.as_deref(), None);
    }
    data.findings[0].change = Some(crate::risk::Change::New);
    data.findings[1].change = Some(crate::risk::Change::StillOpen);
    data.services = crate::risk::service_lights(&data.findings);
    let mut changes = crate::risk::change::compare(&[], &data.findings);
    changes.push(crate::risk::FindingChange {
        id: "x".into(),
        change: crate::risk::Change::Fixed,
        rule: Rule::Disk,
        device: Some("fw-0000".into()),
        subject: Some("/var".into()),
        previous: Some(Light::Red),
        current: None,
    });
    data.changes = changes;
    data.previous_ms = Some((2 * START - data.period_end_ms, START));
    let days_ms: Vec<i64> = (0..days).map(|d| START + d * DAY).collect();
    let mut alerts = Vec::new();
    for k in 0..(days * 40) {
        let ts = START + k * DAY / 40 + (k * 7919) % 3_600_000;
        let (source, sig, action) = match k % 10 {
            0 => (AlertSource::Antivirus, format!("Win.Trojan.Agent-{}", k % 3), AlertAction::Quarantined),
            1 => (AlertSource::Mail, format!("Spam score {}", 5 + k % 4), AlertAction::Rejected),
            _ => (
                AlertSource::Ids,
                format!("ET SCAN Suspicious inbound to port {}", 20 + k % 13),
                if k % 3 == 0 { AlertAction::Blocked } else { AlertAction::Allowed },
            ),
        };
        let mut a = ampel_protocol::Alert::new(ts, source, (k % 3 + 1) as u8, sig, action);
        a.src = Some(format!("203.0.113.{}", k % 17));
        a.dst = Some(format!("10.0.0.{}", k % 5));
        a.category = Some(["Attempted Information Leak", "Misc activity", "Potentially Bad Traffic"][(k % 3) as usize].into());
        if source == AlertSource::Antivirus {
            a.detail = Some(format!("/srv/share/invoices/Invoice-{}.pdf.exe", k % 3));
            let digest = ring::digest::digest(&ring::digest::SHA256, a.signature.as_bytes());
            a.sha256 = Some(digest.as_ref().iter().map(|b| format!("{b:02x}")).collect());
        }
        alerts.push((format!("fw-{:04}", k as usize % devices.max(1)), a));
    }
    // Two files the IDS saw: one hashed with SHA-1 only that a signature matched, one sent
    // without a hash.
    for (name, sha1, sid) in
        [("/wp-content/update.docm", Some("a94a8fe5ccb19ba61c4c0873d391e987982fbbd3"), Some(2_100_498)), ("report.zip", None, None)]
    {
        let mut a = ampel_protocol::Alert::new(START + DAY / 2, AlertSource::Ids, 2, "fileinfo".into(), AlertAction::Allowed);
        (a.category, a.detail, a.sha1, a.signature_id) = (Some("file".into()), Some(name.into()), sha1.map(str::to_owned), sid);
        alerts.push(("fw-0000".to_owned(), a));
    }
    data.file_hashes = stats::file_hashes(alerts.iter().map(|(d, a)| (d.as_str(), a)));
    data.false_positives = false_positives_sample(end);
    let of = |s: stats::AlertSection| {
        stats::alert_stats(alerts.iter().filter(|(_, a)| stats::AlertSection::of(a.source) == s).map(|(d, a)| (d.as_str(), a)), &days_ms)
    };
    data.threats = of(stats::AlertSection::Threats);
    data.malware = of(stats::AlertSection::Malware);
    data.mail = of(stats::AlertSection::Mail);
    for (i, d) in data.devices.iter_mut().enumerate() {
        d.disks = vec![
            ("/".into(), Stat { min: 40.0, avg: 45.5, max: 51.0 }),
            ("/var".into(), Stat { min: 70.0, avg: 80.0, max: 91.0 + (i % 5) as f64 }),
        ];
        d.license = Some(ampel_protocol::License {
            ts: end,
            product: "UTM".into(),
            model: "UTM 320".into(),
            serial: format!("S{i:06}"),
            licensed: i % 5 != 3,
            expires: Some(end + (i as i64 % 400) * DAY),
            features: Vec::new(),
            unknown_reason: None,
        });
        if i % 4 == 3 {
            d.coverage = Some(0.93);
            d.gaps = vec![(START + DAY, START + DAY + 5 * 3_600_000), (START + 2 * DAY, START + 2 * DAY + 600_000)];
        }
        for (iface, rx) in [("eth0", 5_000_000_000u64), ("eth1", 120_000_000)] {
            data.traffic.push(TrafficRow {
                device: d.device.clone(),
                interface: iface.into(),
                category: None,
                rx_bytes: rx + i as u64,
                tx_bytes: rx / 3,
            });
        }
        for (cat, rx) in [("https", 3_000_000_000u64), ("dns", 20_000_000), ("smtp", 400_000_000)] {
            data.traffic.push(TrafficRow {
                device: d.device.clone(),
                interface: "eth0".into(),
                category: Some(cat.into()),
                rx_bytes: rx,
                tx_bytes: rx / 10,
            });
        }
    }
    data
}
