//! What a finding says, as data: the [`Rule`] that fired, the [`Facts`] it saw and the
//! [`Advice`] that fits them. No words here: `report::catalogue` renders facts and advice in
//! each language.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A built-in rule. Its [`Rule::id`] is stable: scenario files, `risk show --json` and finding
/// ids use it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "&'static str")]
pub enum Rule {
    /// `license.expired`: not licensed, or the license or a feature's license expired.
    LicenseExpired,
    /// `license.expiring`: expires within `license-warning`.
    LicenseExpiring,
    /// `license.expiry-forecast`: expires before the next report of this period length.
    LicenseExpiryForecast,
    /// `license.unknown`: the agent could not read the license state.
    LicenseUnknown,
    /// `license.missing`: the device never reported a license state.
    LicenseMissing,
    /// `threats.ids-severe`: severe IDS alerts.
    IdsSevere,
    /// `malware.found`: antivirus detections.
    MalwareFound,
    /// `mail.quarantine-spike`: far more quarantined mail than on the days before.
    MailQuarantineSpike,
    /// `availability.never-seen`: registered, never sent data.
    NeverSeen,
    /// `availability.silent`: no data for a while.
    Silent,
    /// `availability.certificate-expiring`: renewal of the device certificate is failing.
    CertificateExpiring,
    /// `availability.certificate-expired`: the collector refuses the device.
    CertificateExpired,
    /// `performance.cpu`: CPU usage high for too much of the period.
    Cpu,
    /// `performance.memory`: memory usage high for too much of the period.
    Memory,
    /// `performance.disk`: a file system above the thresholds.
    Disk,
    /// `performance.disk-full-forecast`: a file system filling up.
    DiskFullForecast,
    /// `traffic.capture-drops`: the IDS drops packets.
    CaptureDrops,
    /// `coverage.gaps`: the samples cover too little of the period.
    CoverageGaps,
    /// `coverage.no-performance-data`: no CPU or memory samples.
    NoPerformanceData,
}

impl Rule {
    /// Every rule, in the order of the rule table.
    pub const ALL: [Rule; 19] = [
        Rule::LicenseExpired,
        Rule::LicenseExpiring,
        Rule::LicenseExpiryForecast,
        Rule::LicenseUnknown,
        Rule::LicenseMissing,
        Rule::IdsSevere,
        Rule::MalwareFound,
        Rule::MailQuarantineSpike,
        Rule::NeverSeen,
        Rule::Silent,
        Rule::CertificateExpiring,
        Rule::CertificateExpired,
        Rule::Cpu,
        Rule::Memory,
        Rule::Disk,
        Rule::DiskFullForecast,
        Rule::CaptureDrops,
        Rule::CoverageGaps,
        Rule::NoPerformanceData,
    ];

    /// The stable id, e.g. `availability.silent`; it starts with the rule's service.
    pub fn id(self) -> &'static str {
        match self {
            Rule::LicenseExpired => "license.expired",
            Rule::LicenseExpiring => "license.expiring",
            Rule::LicenseExpiryForecast => "license.expiry-forecast",
            Rule::LicenseUnknown => "license.unknown",
            Rule::LicenseMissing => "license.missing",
            Rule::IdsSevere => "threats.ids-severe",
            Rule::MalwareFound => "malware.found",
            Rule::MailQuarantineSpike => "mail.quarantine-spike",
            Rule::NeverSeen => "availability.never-seen",
            Rule::Silent => "availability.silent",
            Rule::CertificateExpiring => "availability.certificate-expiring",
            Rule::CertificateExpired => "availability.certificate-expired",
            Rule::Cpu => "performance.cpu",
            Rule::Memory => "performance.memory",
            Rule::Disk => "performance.disk",
            Rule::DiskFullForecast => "performance.disk-full-forecast",
            Rule::CaptureDrops => "traffic.capture-drops",
            Rule::CoverageGaps => "coverage.gaps",
            Rule::NoPerformanceData => "coverage.no-performance-data",
        }
    }

    /// The service the rule belongs to, one of [`super::SERVICES`].
    pub fn service(self) -> &'static str {
        let id = self.id();
        id.split_once('.').map_or(id, |(service, _)| service)
    }

    /// The rule with id `id`.
    pub fn from_id(id: &str) -> Option<Rule> {
        Rule::ALL.into_iter().find(|r| r.id() == id)
    }
}

/// Rules sort by their id, as they did when they were strings.
impl Ord for Rule {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.id().cmp(other.id())
    }
}

impl PartialOrd for Rule {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

impl From<Rule> for &'static str {
    fn from(r: Rule) -> &'static str {
        r.id()
    }
}

/// A rule id that no built-in rule has.
#[derive(Debug, thiserror::Error)]
#[error("unknown rule {0:?}")]
pub struct UnknownRule(pub String);

impl TryFrom<String> for Rule {
    type Error = UnknownRule;

    fn try_from(id: String) -> Result<Rule, UnknownRule> {
        Rule::from_id(&id).ok_or(UnknownRule(id))
    }
}

/// A signature (or detection name) and how often it fired.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignatureCount {
    /// The signature as the device named it.
    pub name: String,
    /// Alerts with it in the window.
    pub count: u64,
}

/// A stretch without samples as a finding lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct GapFacts {
    /// Last sample before the gap (or the start judged), Unix ms.
    pub start_ms: i64,
    /// First sample after the gap (or the window end), Unix ms.
    pub end_ms: i64,
    /// Time the gap misses: its length less the interval the earlier sample covers, ms.
    pub missing_ms: i64,
}

/// The numbers a rule saw, per kind of finding. Times are Unix ms, durations ms, shares and
/// usages percent. The window and the subject (mount, feature) are on the [`super::Finding`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Facts {
    /// The device never reported a license state.
    LicenseMissing,
    /// The license state could not be read.
    LicenseUnknown {
        /// Product as reported.
        product: String,
        /// Why, as the agent said.
        reason: String,
    },
    /// The appliance says it is not licensed.
    NotLicensed {
        /// Product as reported.
        product: String,
        /// When the state was reported.
        state_ms: i64,
    },
    /// A license (or a feature's license, named by the finding's subject) expiring or expired.
    LicenseExpiry {
        /// Product as reported.
        product: String,
        /// Expiry.
        expires_ms: i64,
        /// Time from the end of the window to the expiry; negative once expired.
        left_ms: i64,
        /// How far ahead the rule looks: the warning time, or for the forecast the period length.
        horizon_ms: i64,
    },
    /// Severe IDS alerts.
    IdsAlerts {
        /// Severity threshold (1 = most severe).
        severity: u8,
        /// Alerts at or above it.
        alerts: u64,
        /// Let through (or not known to be stopped).
        allowed: u64,
        /// Blocked, rejected or quarantined.
        blocked: u64,
        /// The most frequent signatures, at most three.
        top: Vec<SignatureCount>,
    },
    /// Antivirus detections.
    Malware {
        /// Detections.
        detections: u64,
        /// Not quarantined.
        not_quarantined: u64,
        /// Quarantined.
        quarantined: u64,
        /// The most frequent detection names, at most three.
        top: Vec<SignatureCount>,
    },
    /// Quarantined mails on the last local day against the days before.
    MailSpike {
        /// Start of the last local day, Unix ms.
        day_ms: i64,
        /// Mails quarantined on it.
        today: u64,
        /// Daily mean over the days before.
        daily_mean: f64,
        /// Days before.
        days: u64,
        /// Spike factor configured.
        factor: f64,
        /// Least count that can be a spike.
        min_count: u64,
    },
    /// Registered, never sent data.
    NeverSeen,
    /// No data since `last_seen_ms`.
    Silent {
        /// Last batch received.
        last_seen_ms: i64,
        /// Silent for, up to the window end.
        silent_ms: i64,
        /// Yellow after.
        yellow_ms: i64,
        /// Red after.
        red_ms: i64,
    },
    /// The device certificate expiring or expired.
    Certificate {
        /// notAfter.
        expires_ms: i64,
        /// Time from the end of the window to notAfter; negative once expired.
        left_ms: i64,
        /// Warning time configured.
        warning_ms: i64,
    },
    /// CPU or memory (by the rule) high in too many samples.
    Usage {
        /// A sample at or above this percentage counts as high.
        limit_percent: f64,
        /// Share of high samples.
        high_share_percent: f64,
        /// Samples in the window.
        samples: u64,
        /// Yellow above this share.
        yellow_share_percent: f64,
        /// Red above this share.
        red_share_percent: f64,
    },
    /// A file system's fill level.
    DiskUsage {
        /// Used at the last sample.
        used_percent: f64,
        /// Time of the last sample.
        at_ms: i64,
        /// Yellow at.
        yellow_percent: f64,
        /// Red at.
        red_percent: f64,
    },
    /// A file system filling up.
    DiskForecast {
        /// Used at the last sample.
        used_percent: f64,
        /// Growth, percentage points a day (least-squares fit).
        growth_per_day: f64,
        /// Samples fitted.
        samples: u64,
        /// First sample fitted.
        first_ms: i64,
        /// Last sample fitted.
        last_ms: i64,
        /// When the fit reaches 100 %.
        full_ms: i64,
        /// Time from the window end to then.
        left_ms: i64,
        /// Warning time configured.
        warning_ms: i64,
    },
    /// The IDS dropping captured packets.
    CaptureDrops {
        /// Packets dropped.
        dropped: f64,
        /// Packets captured.
        packets: f64,
        /// Dropped share.
        drop_percent: f64,
        /// Yellow above this share.
        threshold_percent: f64,
    },
    /// No CPU or memory samples in the window.
    NoPerformanceData,
    /// The samples cover too little of the time judged.
    CoverageGaps {
        /// Share covered.
        coverage_percent: f64,
        /// Start of the time judged: the window start, or the first contact when later.
        from_ms: i64,
        /// Set when the device was first seen inside the window: that first contact.
        new_since_ms: Option<i64>,
        /// Grey below this share.
        min_percent: f64,
        /// Expected sample interval.
        interval_ms: i64,
        /// Time missing in all gaps together.
        missing_ms: i64,
        /// Gaps in all.
        gap_count: u64,
        /// The first gaps, at most [`MAX_LISTED_GAPS`].
        gaps: Vec<GapFacts>,
    },
}

/// Most gaps a coverage finding lists; the rest are counted.
pub const MAX_LISTED_GAPS: usize = 5;

/// What to do about a finding, chosen by its facts. Each rule has one or more; the catalogue
/// words each one in every language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "&'static str")]
pub enum Advice {
    /// The appliance says it is not licensed.
    LicenseNotLicensed,
    /// The license itself expired.
    LicenseExpired,
    /// A licensed feature expired; the rest still runs.
    LicenseFeatureExpired,
    /// The license expires soon.
    LicenseExpiring,
    /// A licensed feature expires soon.
    LicenseFeatureExpiring,
    /// The license expires before the next report.
    LicenseExpiryForecast,
    /// The license state could not be read.
    LicenseUnknown,
    /// No license state ever.
    LicenseMissing,
    /// Severe IDS alerts, every one blocked.
    IdsAllBlocked,
    /// Severe IDS alerts, some let through.
    IdsAllowedThrough,
    /// Malware found, all quarantined.
    MalwareAllQuarantined,
    /// Malware found, some not quarantined.
    MalwareNotQuarantined,
    /// Quarantine spike.
    MailSpike,
    /// Never sent data.
    NeverSeen,
    /// Silent for less than a day.
    SilentBriefly,
    /// Silent for a day or more.
    SilentLong,
    /// Certificate renewal failing.
    CertificateExpiring,
    /// Certificate expired.
    CertificateExpired,
    /// CPU high.
    CpuHigh,
    /// Memory high.
    MemoryHigh,
    /// A file system at the red threshold: act now.
    DiskFull,
    /// A file system at the yellow threshold: plan.
    DiskFilling,
    /// A file system will be full within the warning time.
    DiskFullForecast,
    /// The IDS drops packets.
    CaptureDrops,
    /// Gaps in the data.
    CoverageGaps,
    /// Gaps in the data of a device that is new in the period.
    CoverageGapsNewDevice,
    /// No performance data.
    NoPerformanceData,
}

/// Silence this long or longer is an outage, not a hiccup.
const LONG_SILENCE_MS: i64 = 86_400_000;

impl Advice {
    /// Every advice, in rule order.
    pub const ALL: [Advice; 27] = [
        Advice::LicenseNotLicensed,
        Advice::LicenseExpired,
        Advice::LicenseFeatureExpired,
        Advice::LicenseExpiring,
        Advice::LicenseFeatureExpiring,
        Advice::LicenseExpiryForecast,
        Advice::LicenseUnknown,
        Advice::LicenseMissing,
        Advice::IdsAllBlocked,
        Advice::IdsAllowedThrough,
        Advice::MalwareAllQuarantined,
        Advice::MalwareNotQuarantined,
        Advice::MailSpike,
        Advice::NeverSeen,
        Advice::SilentBriefly,
        Advice::SilentLong,
        Advice::CertificateExpiring,
        Advice::CertificateExpired,
        Advice::CpuHigh,
        Advice::MemoryHigh,
        Advice::DiskFull,
        Advice::DiskFilling,
        Advice::DiskFullForecast,
        Advice::CaptureDrops,
        Advice::CoverageGaps,
        Advice::CoverageGapsNewDevice,
        Advice::NoPerformanceData,
    ];

    /// The stable name scenario files expect it by (`advice = "ids-all-blocked"`).
    pub fn name(self) -> &'static str {
        match self {
            Advice::LicenseNotLicensed => "license-not-licensed",
            Advice::LicenseExpired => "license-expired",
            Advice::LicenseFeatureExpired => "license-feature-expired",
            Advice::LicenseExpiring => "license-expiring",
            Advice::LicenseFeatureExpiring => "license-feature-expiring",
            Advice::LicenseExpiryForecast => "license-expiry-forecast",
            Advice::LicenseUnknown => "license-unknown",
            Advice::LicenseMissing => "license-missing",
            Advice::IdsAllBlocked => "ids-all-blocked",
            Advice::IdsAllowedThrough => "ids-allowed-through",
            Advice::MalwareAllQuarantined => "malware-all-quarantined",
            Advice::MalwareNotQuarantined => "malware-not-quarantined",
            Advice::MailSpike => "mail-spike",
            Advice::NeverSeen => "never-seen",
            Advice::SilentBriefly => "silent-briefly",
            Advice::SilentLong => "silent-long",
            Advice::CertificateExpiring => "certificate-expiring",
            Advice::CertificateExpired => "certificate-expired",
            Advice::CpuHigh => "cpu-high",
            Advice::MemoryHigh => "memory-high",
            Advice::DiskFull => "disk-full",
            Advice::DiskFilling => "disk-filling",
            Advice::DiskFullForecast => "disk-full-forecast",
            Advice::CaptureDrops => "capture-drops",
            Advice::CoverageGaps => "coverage-gaps",
            Advice::CoverageGapsNewDevice => "coverage-gaps-new-device",
            Advice::NoPerformanceData => "no-performance-data",
        }
    }

    /// The advice named `name`.
    pub fn from_name(name: &str) -> Option<Advice> {
        Advice::ALL.into_iter().find(|a| a.name() == name)
    }

    /// The advice that fits a finding of `rule` with `facts` about `subject` at `level`.
    pub fn choose(rule: Rule, facts: &Facts, subject: Option<&str>, level: super::Light) -> Advice {
        let feature = subject.is_some();
        match (rule, facts) {
            (_, Facts::NotLicensed { .. }) => Advice::LicenseNotLicensed,
            (Rule::LicenseExpired, _) if feature => Advice::LicenseFeatureExpired,
            (Rule::LicenseExpired, _) => Advice::LicenseExpired,
            (Rule::LicenseExpiring, _) if feature => Advice::LicenseFeatureExpiring,
            (Rule::LicenseExpiring, _) => Advice::LicenseExpiring,
            (Rule::LicenseExpiryForecast, _) => Advice::LicenseExpiryForecast,
            (Rule::LicenseUnknown, _) => Advice::LicenseUnknown,
            (Rule::LicenseMissing, _) => Advice::LicenseMissing,
            (Rule::IdsSevere, Facts::IdsAlerts { allowed: 0, .. }) => Advice::IdsAllBlocked,
            (Rule::IdsSevere, _) => Advice::IdsAllowedThrough,
            (Rule::MalwareFound, Facts::Malware { not_quarantined: 0, .. }) => Advice::MalwareAllQuarantined,
            (Rule::MalwareFound, _) => Advice::MalwareNotQuarantined,
            (Rule::MailQuarantineSpike, _) => Advice::MailSpike,
            (Rule::NeverSeen, _) => Advice::NeverSeen,
            (Rule::Silent, Facts::Silent { silent_ms, .. }) if *silent_ms < LONG_SILENCE_MS => Advice::SilentBriefly,
            (Rule::Silent, _) => Advice::SilentLong,
            (Rule::CertificateExpiring, _) => Advice::CertificateExpiring,
            (Rule::CertificateExpired, _) => Advice::CertificateExpired,
            (Rule::Cpu, _) => Advice::CpuHigh,
            (Rule::Memory, _) => Advice::MemoryHigh,
            (Rule::Disk, _) if level == super::Light::Red => Advice::DiskFull,
            (Rule::Disk, _) => Advice::DiskFilling,
            (Rule::DiskFullForecast, _) => Advice::DiskFullForecast,
            (Rule::CaptureDrops, _) => Advice::CaptureDrops,
            (Rule::CoverageGaps, Facts::CoverageGaps { new_since_ms: Some(_), .. }) => Advice::CoverageGapsNewDevice,
            (Rule::CoverageGaps, _) => Advice::CoverageGaps,
            (Rule::NoPerformanceData, _) => Advice::NoPerformanceData,
        }
    }

    /// The rule this advice answers.
    pub fn rule(self) -> Rule {
        match self {
            Advice::LicenseNotLicensed | Advice::LicenseExpired | Advice::LicenseFeatureExpired => Rule::LicenseExpired,
            Advice::LicenseExpiring | Advice::LicenseFeatureExpiring => Rule::LicenseExpiring,
            Advice::LicenseExpiryForecast => Rule::LicenseExpiryForecast,
            Advice::LicenseUnknown => Rule::LicenseUnknown,
            Advice::LicenseMissing => Rule::LicenseMissing,
            Advice::IdsAllBlocked | Advice::IdsAllowedThrough => Rule::IdsSevere,
            Advice::MalwareAllQuarantined | Advice::MalwareNotQuarantined => Rule::MalwareFound,
            Advice::MailSpike => Rule::MailQuarantineSpike,
            Advice::NeverSeen => Rule::NeverSeen,
            Advice::SilentBriefly | Advice::SilentLong => Rule::Silent,
            Advice::CertificateExpiring => Rule::CertificateExpiring,
            Advice::CertificateExpired => Rule::CertificateExpired,
            Advice::CpuHigh => Rule::Cpu,
            Advice::MemoryHigh => Rule::Memory,
            Advice::DiskFull | Advice::DiskFilling => Rule::Disk,
            Advice::DiskFullForecast => Rule::DiskFullForecast,
            Advice::CaptureDrops => Rule::CaptureDrops,
            Advice::CoverageGaps | Advice::CoverageGapsNewDevice => Rule::CoverageGaps,
            Advice::NoPerformanceData => Rule::NoPerformanceData,
        }
    }
}

impl fmt::Display for Advice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl From<Advice> for &'static str {
    fn from(a: Advice) -> &'static str {
        a.name()
    }
}

/// An advice name that no advice has.
#[derive(Debug, thiserror::Error)]
#[error("unknown advice {0:?}")]
pub struct UnknownAdvice(pub String);

impl TryFrom<String> for Advice {
    type Error = UnknownAdvice;

    fn try_from(name: String) -> Result<Advice, UnknownAdvice> {
        Advice::from_name(&name).ok_or(UnknownAdvice(name))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn rule_ids_round_trip_and_name_their_service() {
        for r in Rule::ALL {
            assert_eq!(Rule::from_id(r.id()), Some(r));
            assert!(super::super::SERVICES.contains(&r.service()), "{r}");
            let json = serde_json::to_string(&r).unwrap();
            assert_eq!(json, format!("\"{}\"", r.id()));
            assert_eq!(serde_json::from_str::<Rule>(&json).unwrap(), r);
        }
        assert!(serde_json::from_str::<Rule>("\"license.nope\"").is_err());
    }

    #[test]
    fn every_rule_has_advice_and_every_advice_a_rule_in_the_list() {
        for r in Rule::ALL {
            assert!(Advice::ALL.iter().any(|a| a.rule() == r), "{r} has no advice");
        }
        let mut sorted = Advice::ALL.to_vec();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), Advice::ALL.len());
        for a in Advice::ALL {
            assert_eq!(Advice::from_name(a.name()), Some(a));
            assert_eq!(serde_json::to_string(&a).unwrap(), format!("\"{a}\""));
        }
    }
}
