#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::Path;

use super::*;
use crate::risk::{Advice, Facts, GapFacts, Light, Rule, finding_id};

/// Every finding the shipped scenarios produce: together they fire every rule and reach every
/// advice (`risk::scenario` tests that).
pub(crate) fn shipped_findings() -> Vec<Finding> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("risk-scenarios");
    crate::risk::scenario::run_dir(&dir).unwrap().into_iter().flat_map(|o| o.findings).collect()
}

/// Runs of three lowercase English words in `text`, skipping anything with digits or marks
/// (names, paths, commands), so that what is left is sentence, not data.
fn english_trigrams(text: &str) -> BTreeSet<String> {
    let words: Vec<Option<String>> = text
        .split(|c: char| c.is_whitespace() || ",.;:()".contains(c))
        .filter(|w| !w.is_empty())
        .map(|w| (w.len() > 1 && w.chars().all(|c| c.is_ascii_lowercase())).then(|| w.to_owned()))
        .collect();
    words
        .windows(3)
        .filter_map(|w| match w {
            [Some(a), Some(b), Some(c)] => Some(format!("{a} {b} {c}")),
            _ => None,
        })
        .collect()
}

/// `text` without the strings a device reported, which no catalogue translates.
fn without_data(f: &Finding, text: &str) -> String {
    let mut data: Vec<String> = f.subject.iter().chain(&f.device).cloned().collect();
    match &f.facts {
        Facts::LicenseUnknown { product, reason } => data.extend([product.clone(), reason.clone()]),
        Facts::NotLicensed { product, .. } | Facts::LicenseExpiry { product, .. } => data.push(product.clone()),
        Facts::IdsAlerts { top, .. } | Facts::Malware { top, .. } => data.extend(top.iter().map(|s| s.name.clone())),
        _ => {}
    }
    data.iter().filter(|d| !d.is_empty()).fold(text.to_owned(), |t, d| t.replace(d.as_str(), " "))
}

/// Phrases of the English evidence that scenario files match, and more of its sentences.
pub(crate) const ENGLISH_PHRASES: &[&str] = &[
    "allowed through",
    "blocked.",
    "not quarantined",
    "expired on",
    "expires on",
    "% full",
    "percentage points a day",
    "before the next report",
    "not licensed",
    "mails quarantined",
    "IDS alerts of severity",
    "captured packets",
    "Samples cover",
    "No data for",
    "missing in",
    " hours",
    " days",
    " minutes",
    "Top signatures",
    "File system",
    "never sent data",
    "new since",
];

#[test]
fn every_finding_of_the_shipped_scenarios_reads_in_both_languages() {
    let findings = shipped_findings();
    let reached: BTreeSet<Advice> = findings.iter().map(Finding::advice).collect();
    assert_eq!(reached, Advice::ALL.into_iter().collect(), "every advice is rendered below");
    let tz = TimeZone::get("Europe/Berlin").unwrap();
    for f in &findings {
        let (en_e, en_r) = (evidence(f, Lang::En, &tz), recommendation(f, Lang::En));
        let (de_e, de_r) = (evidence(f, Lang::De, &tz), recommendation(f, Lang::De));
        for t in [&en_e, &en_r, &de_e, &de_r] {
            assert!(t.trim().len() > 10, "{} {:?}: {t:?}", f.rule, f.advice());
        }
        // What the device reported (a reason, product or signature names) stays as it was sent.
        let german = without_data(f, &format!("{de_e} {de_r}"));
        let english = without_data(f, &format!("{en_e} {en_r}"));
        for phrase in ENGLISH_PHRASES {
            assert!(!german.contains(phrase), "{}: English {phrase:?} in {german:?}", f.rule);
        }
        for tri in english_trigrams(&english) {
            assert!(!german.contains(&tri), "{}: English {tri:?} in {german:?}", f.rule);
        }
    }
}

fn finding(rule: Rule, subject: Option<&str>, level: Light, facts: Facts) -> Finding {
    Finding {
        rule,
        device: Some("fw-1".into()),
        level,
        id: finding_id(rule, Some("fw-1"), subject),
        subject: subject.map(Into::into),
        facts,
        // 2026-12-05T00:00Z to 2026-12-06T00:00Z.
        window_ms: [1_796_428_800_000, 1_796_515_200_000],
        change: None,
    }
}

#[test]
fn german_uses_german_dates_numbers_and_plurals() {
    let tz = TimeZone::get("Europe/Berlin").unwrap();
    let ids = finding(
        Rule::IdsSevere,
        None,
        Light::Yellow,
        Facts::IdsAlerts {
            severity: 1,
            alerts: 1234,
            allowed: 0,
            blocked: 1234,
            top: vec![SignatureCount { name: "ET EXPLOIT x".into(), count: 1234 }],
        },
    );
    let de = evidence(&ids, Lang::De, &tz);
    assert!(de.starts_with("1.234 IDS-Alarme") && de.contains("05.12.2026 01:00 bis 06.12.2026 01:00 (Europe/Berlin)"), "{de}");
    assert!(de.contains("0 durchgelassen, 1.234 blockiert") && de.contains("ET EXPLOIT x (1.234)"), "{de}");
    // English keeps the wording scenario files match.
    let en = evidence(&ids, Lang::En, &tz);
    assert!(en.contains("0 allowed through, 1234 blocked") && en.contains("2026-12-05 01:00 to 2026-12-06 01:00"), "{en}");

    let disk = finding(
        Rule::Disk,
        Some("/var"),
        Light::Red,
        Facts::DiskUsage { used_percent: 1234.5, at_ms: 1_796_515_140_000, yellow_percent: 85.0, red_percent: 95.0 },
    );
    assert!(evidence(&disk, Lang::De, &tz).contains("am 06.12.2026 00:59 zu 1.234,5 % belegt"), "{}", evidence(&disk, Lang::De, &tz));
    assert!(evidence(&disk, Lang::En, &tz).contains("is 1234.5 % full"));
    assert!(recommendation(&disk, Lang::De).contains("Jetzt Platz auf /var schaffen"), "{}", recommendation(&disk, Lang::De));

    let x = Fmt { lang: Lang::De, tz: &tz };
    let e = Fmt { lang: Lang::En, tz: &tz };
    assert_eq!((x.duration(1000), e.duration(1000)), ("1 Sekunde".to_owned(), "1 second".to_owned()));
    assert_eq!((x.duration(26 * 3_600_000), e.duration(26 * 3_600_000)), ("26 Stunden".to_owned(), "26 hours".to_owned()));
    assert_eq!((x.duration(3 * 86_400_000), e.duration(119_999)), ("3 Tage".to_owned(), "119 seconds".to_owned()));
    // After "in", "vor", "seit", "nach" German takes the dative.
    assert_eq!((x.duration_dative(3 * 86_400_000), e.duration_dative(3 * 86_400_000)), ("3 Tagen".to_owned(), "3 days".to_owned()));
}

#[test]
fn gap_counts_and_durations_agree_and_a_new_device_says_so() {
    let tz = TimeZone::UTC;
    let [start, end] = finding(Rule::CoverageGaps, None, Light::Grey, Facts::NoPerformanceData).window_ms;
    let first = end - 30 * 60_000;
    let gap = GapFacts { start_ms: end - 10 * 60_000, end_ms: end - 3 * 60_000, missing_ms: 6 * 60_000 + 30_000 };
    let facts = Facts::CoverageGaps {
        coverage_percent: 78.3,
        from_ms: first,
        new_since_ms: Some(first),
        min_percent: 90.0,
        interval_ms: 60_000,
        missing_ms: gap.missing_ms,
        gap_count: 1,
        gaps: vec![gap],
    };
    let f = finding(Rule::CoverageGaps, None, Light::Grey, facts);
    assert!(start < first);
    let en = evidence(&f, Lang::En, &tz);
    assert!(en.contains("; 6 minutes missing in 1 gap: 2026-12-05 23:50 to 2026-12-05 23:57 (6 minutes missing)."), "{en}");
    assert!(en.contains("The device is new since 2026-12-05 23:30"), "{en}");
    let de = evidence(&f, Lang::De, &tz);
    assert!(de.contains("6 Minuten fehlen in 1 Lücke: 05.12.2026 23:50 bis 05.12.2026 23:57 (6 Minuten fehlen)."), "{de}");
    assert!(de.contains("neu seit 05.12.2026 23:30"), "{de}");
    assert_eq!(f.advice(), Advice::CoverageGapsNewDevice);
    assert_eq!(new_since(first, Lang::De, &tz), "neu seit 05.12.2026 23:30");
}

#[test]
fn a_mail_spike_after_quiet_days_reads_right() {
    let tz = TimeZone::UTC;
    let spike = |daily_mean: f64, days: u64| {
        let facts = Facts::MailSpike { day_ms: 1_796_515_140_000, today: 15, daily_mean, days, factor: 3.0, min_count: 10 };
        let f = finding(Rule::MailQuarantineSpike, None, Light::Yellow, facts);
        (evidence(&f, Lang::En, &tz), evidence(&f, Lang::De, &tz))
    };
    let (en, de) = spike(5.0, 3);
    assert!(en.starts_with("15 mails quarantined on 2026-12-05, 3.0 times the daily mean of 5.0 over the 3 days before"), "{en}");
    assert!(de.starts_with("15 Mails am 05.12.2026 in Quarantäne, das 3,0-Fache des Tagesmittels von 5,0 an den 3 Tagen davor"), "{de}");
    let (en, de) = spike(0.0, 1);
    assert!(en.contains("none on the 1 day before") && !en.contains("inf"), "{en}");
    assert!(de.contains("am Vortag keine"), "{de}");
}
