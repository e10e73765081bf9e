//! English.

use super::Fmt;
use crate::risk::{Advice, Facts, Finding, GapFacts, Rule};

/// The evidence of `f`.
pub(super) fn evidence(f: &Finding, x: &Fmt<'_>) -> String {
    let [start, end] = f.window_ms;
    let span = format!("{} to {}{}", x.time(start), x.time(end), x.zone());
    let subject = f.subject.as_deref().unwrap_or("?");
    match &f.facts {
        Facts::LicenseMissing => "The device has never reported its license state.".into(),
        Facts::LicenseUnknown { product, reason } => format!("The license state of {product} could not be read: {reason}."),
        Facts::NotLicensed { product, state_ms } => {
            format!("The appliance reports {product} as not licensed (state of {}).", x.time(*state_ms))
        }
        Facts::LicenseExpiry { product, expires_ms, left_ms, horizon_ms } => {
            let what = match &f.subject {
                Some(feature) => format!("feature {feature} of {product}"),
                None => product.clone(),
            };
            let (date, left, horizon) = (x.date(*expires_ms), x.duration(*left_ms), x.duration(*horizon_ms));
            if *left_ms <= 0 {
                format!("The license of {what} expired on {date} ({} ago).", x.duration(-left_ms))
            } else if f.rule == Rule::LicenseExpiryForecast {
                format!("The license of {what} expires on {date}, in {left}: before the next report of this period length ({horizon}).")
            } else {
                format!("The license of {what} expires on {date}, in {left} (warning {horizon} ahead).")
            }
        }
        Facts::IdsAlerts { severity, alerts, allowed, blocked, top } => format!(
            "{alerts} IDS alerts of severity {severity} or worse from {span}: {allowed} allowed through, {blocked} blocked. Top signatures: {}.",
            x.signatures(top)
        ),
        Facts::Malware { detections, not_quarantined, quarantined, top } => format!(
            "{detections} malware detections from {span}: {not_quarantined} not quarantined, {quarantined} quarantined. Found: {}.",
            x.signatures(top)
        ),
        Facts::MailSpike { day_ms, today, daily_mean, days, factor, min_count } => {
            let day_s = if *days == 1 { "day" } else { "days" };
            let before = if *daily_mean > 0.0 {
                format!("{:.1} times the daily mean of {daily_mean:.1} over the {days} {day_s} before", *today as f64 / daily_mean)
            } else {
                format!("none on the {days} {day_s} before")
            };
            format!("{today} mails quarantined on {}, {before} (spike at {factor} times and at least {min_count}).", x.date(*day_ms))
        }
        Facts::NeverSeen => "The device is registered but has never sent data.".into(),
        Facts::Silent { last_seen_ms, silent_ms, yellow_ms, red_ms } => format!(
            "No data for {} since {} (yellow after {}, red after {}).",
            x.duration(*silent_ms),
            x.time(*last_seen_ms),
            x.duration(*yellow_ms),
            x.duration(*red_ms)
        ),
        Facts::Certificate { expires_ms, left_ms, warning_ms } => {
            if *left_ms <= 0 {
                format!(
                    "The device certificate expired on {} ({} ago); the collector refuses the device.",
                    x.date(*expires_ms),
                    x.duration(-left_ms)
                )
            } else {
                format!(
                    "The device certificate expires on {}, in {} (warning {} ahead): its renewal has not succeeded.",
                    x.date(*expires_ms),
                    x.duration(*left_ms),
                    x.duration(*warning_ms)
                )
            }
        }
        Facts::Usage { limit_percent, high_share_percent, samples, yellow_share_percent, red_share_percent } => format!(
            "{} usage at or above {limit_percent:.0} % in {high_share_percent:.0} % of {samples} samples from {span} (yellow above {yellow_share_percent:.0} %, red above {red_share_percent:.0} %).",
            if f.rule == Rule::Memory { "Memory" } else { "CPU" }
        ),
        Facts::DiskUsage { used_percent, at_ms, yellow_percent, red_percent } => format!(
            "File system {subject} is {used_percent:.1} % full at {} (yellow at {yellow_percent:.0} %, red at {red_percent:.0} %).",
            x.time(*at_ms)
        ),
        Facts::DiskForecast { used_percent, growth_per_day, samples, first_ms, last_ms, full_ms, left_ms, warning_ms } => format!(
            "File system {subject} ({used_percent:.1} % now) grows by {growth_per_day:.2} percentage points a day (least-squares fit over {samples} samples from {} to {}); at that rate it is full on {}, in {} (warning {} ahead).",
            x.time(*first_ms),
            x.time(*last_ms),
            x.date(*full_ms),
            x.duration(*left_ms),
            x.duration(*warning_ms)
        ),
        Facts::CaptureDrops { dropped, packets, drop_percent, threshold_percent } => format!(
            "The IDS dropped {dropped:.0} of {packets:.0} captured packets ({drop_percent:.2} %) from {span} (yellow above {threshold_percent} %)."
        ),
        Facts::NoPerformanceData => format!("No CPU or memory samples from {span}."),
        Facts::CoverageGaps { coverage_percent, from_ms, new_since_ms, min_percent, interval_ms, missing_ms, gap_count, gaps } => {
            // The mark of a new device goes first, where a table cell cut short still shows it.
            let mut s = match new_since_ms {
                Some(first) => format!("The device is new since {} and judged from then on. ", x.time(*first)),
                None => String::new(),
            };
            s.push_str(&format!(
                "Samples cover {coverage_percent:.1} % of {} to {}{} (grey below {min_percent:.0} %, expected every {}); {} missing in {gap_count} {}: {}.",
                x.time(*from_ms),
                x.time(end),
                x.zone(),
                x.duration(*interval_ms),
                x.duration(*missing_ms),
                if *gap_count == 1 { "gap" } else { "gaps" },
                gap_list(x, gaps, *gap_count)
            ));
            s
        }
    }
}

/// `05:59 to 09:00 (3 hours missing); …; and 2 more`.
fn gap_list(x: &Fmt<'_>, gaps: &[GapFacts], count: u64) -> String {
    let mut parts: Vec<String> =
        gaps.iter().map(|g| format!("{} to {} ({} missing)", x.time(g.start_ms), x.time(g.end_ms), x.duration(g.missing_ms))).collect();
    let more = count.saturating_sub(gaps.len() as u64);
    if more > 0 {
        parts.push(format!("and {more} more"));
    }
    parts.join("; ")
}

/// The recommendation `a`; `subject` is the mount or feature it concerns.
pub(super) fn advice(a: Advice, subject: &str) -> String {
    match a {
        Advice::LicenseNotLicensed => "The appliance runs without a valid license: enter or activate the license now; without one it gets no signature updates and may stop filtering.".into(),
        Advice::LicenseExpired => "Renew the license now: with an expired license the appliance stops updating signatures and may stop filtering.".into(),
        Advice::LicenseFeatureExpired => format!("Renew the license of the feature {subject}: the appliance itself stays licensed, but this feature gets no updates and may stop working."),
        Advice::LicenseExpiring => "Order the license renewal now so that it is in place before the expiry date.".into(),
        Advice::LicenseFeatureExpiring => format!("Order the renewal of the feature {subject} now so that it is in place before its expiry date."),
        Advice::LicenseExpiryForecast => "The license expires before the next report: plan the renewal with the customer.".into(),
        Advice::LicenseUnknown => "The agent could not read the license state; check the license source in the agent's configuration and its log.".into(),
        Advice::LicenseMissing => "The device never reported its license; enable the license source in the agent's configuration.".into(),
        Advice::IdsAllBlocked => "Every severe IDS alert was blocked, so the IPS did its job: check that the targeted hosts and services are patched and watch whether the sources keep trying.".into(),
        Advice::IdsAllowedThrough => "Investigate the hosts behind the severe IDS alerts that were let through; switch the matching signatures to drop (IPS mode) and patch the targeted services.".into(),
        Advice::MalwareAllQuarantined => "Every detection was quarantined: find where the files came from (mail, downloads, shares) and tighten that path; release nothing from quarantine unchecked.".into(),
        Advice::MalwareNotQuarantined => "Clean or isolate the affected hosts, find how the malware got in, and make sure the antivirus quarantines instead of only reporting.".into(),
        Advice::MailSpike => "Look at the quarantined mails of the last day: a wave of spam or phishing may target the tenant; warn the users and check the sender reputation filters.".into(),
        Advice::NeverSeen => "Install and start ampel-agent on the device with its certificate, then check `journalctl -u ampel-agent` for connection errors.".into(),
        Advice::SilentBriefly => "The device has been silent for less than a day: check that ampel-agent runs and reaches the collector; after a short outage the agent sends its spooled data by itself.".into(),
        Advice::SilentLong => "The device has been silent for a day or more: check that it is powered and reachable and that ampel-agent runs; its log names the connection error.".into(),
        Advice::CertificateExpiring => "The agent's certificate renewal is failing: check the agent's log for the renewal error and that the collector's enrollment service is reachable; if needed, enroll the device again with a new token (ampel-collector pki token).".into(),
        Advice::CertificateExpired => "The device certificate has expired and the collector refuses the device: make a token with ampel-collector pki token and run ampel-agent enroll on the device.".into(),
        Advice::CpuHigh => "Find the processes that load the CPU (IDS rule sets and antivirus scans are typical) and tune them, or size the appliance up.".into(),
        Advice::MemoryHigh => "Find what uses the memory; reduce IDS or proxy caches, or add memory.".into(),
        Advice::DiskFull => format!("Free space on {subject} now: rotate or ship logs, remove old quarantine files, or grow the volume."),
        Advice::DiskFilling => format!("Make room on {subject} before it reaches the red threshold: rotate or ship logs, remove old quarantine files, or grow the volume."),
        Advice::DiskFullForecast => format!("{subject} fills up steadily: find what grows (logs, quarantine, captures) and rotate it, or grow the volume before it is full."),
        Advice::CaptureDrops => "The IDS misses packets: give it more CPU cores or capture threads, raise the ring buffer, or exclude bulk traffic from inspection.".into(),
        Advice::CoverageGaps => "The device's data has gaps: check its network link and the agent's log for the times listed; the lights of this period rest on partial data.".into(),
        Advice::CoverageGapsNewDevice => "The device is new in this period and its data has gaps since it was first seen: check its network link and the agent's log for the times listed; its lights rest on partial data.".into(),
        Advice::NoPerformanceData => "Enable the performance source in the agent's configuration.".into(),
    }
}
