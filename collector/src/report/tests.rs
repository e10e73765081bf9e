//! Report tests. The end-to-end ones check the PDF with real tools (`qpdf`, `pdftotext` from
//! poppler-utils) and fail with a clear message when a tool is missing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use super::chart::downsample;
use super::fonts::{self, Coverage};
use super::strings::{Lang, Strings};
use super::text::{self, Sanitizer};
use super::zone::ReportZone;
use super::*;

const MIN: i64 = 60_000;
const DAY: i64 = 86_400_000;
/// 2024-06-03 00:00 Europe/Berlin (CEST, UTC+2).
const START: i64 = 1_717_365_600_000;

use super::synthetic::{rich, sample};

/// Runs a tool, failing the test with a clear message if it is not installed.
fn run(tool: &str, args: &[&str]) -> std::process::Output {
    match Command::new(tool).args(args).output() {
        Ok(out) => out,
        Err(e) => {
            panic!("this test needs `{tool}` (Debian: apt-get install qpdf poppler-utils): {e}")
        }
    }
}

fn write(dir: &Path, name: &str, pdf: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, pdf).unwrap();
    path.to_str().unwrap().to_owned()
}

/// `qpdf --check` must pass without warnings.
fn assert_valid(path: &str) {
    let out = run("qpdf", &["--check", path]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("No syntax or stream encoding errors"),
        "qpdf --check failed for {path}:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn pdf_text(path: &str) -> String {
    let out = run("pdftotext", &["-enc", "UTF-8", path, "-"]);
    assert!(out.status.success(), "pdftotext failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn pages(path: &str) -> usize {
    let out = run("qpdf", &["--show-npages", path]);
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

#[test]
fn report_is_valid_and_has_its_content() {
    let data = sample(3, 7, 15 * MIN);
    let pdf = render(&data).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "r.pdf", &pdf);
    assert_valid(&path);
    let text = pdf_text(&path);
    for needle in [
        "Security report",
        "acme-gmbh",
        "fw-0000",
        "fw-0001",
        "fw-0002",
        "3 Jun 2024",
        "9 Jun 2024",
        "Europe/Berlin",
        "No data for 26 h",
        "Order the license renewal",
        "Page 1",
        "Page 3",
    ] {
        assert!(text.contains(needle), "{needle:?} missing from the text:\n{text}");
    }
    // 8 hours after the end of the period, in CEST.
    assert!(text.contains("10 Jun 2024 08:00 CEST"), "{text}");
}

#[test]
fn same_data_gives_same_bytes() {
    let data = sample(2, 2, 5 * MIN);
    let a = render(&data).unwrap();
    let b = render(&data).unwrap();
    assert!(a == b, "two renders differ");
    let mut other = data.clone();
    other.generated_at_ms += 1000;
    assert!(render(&other).unwrap() != a, "generation time does not reach the PDF");
}

#[test]
fn hostile_text_renders() {
    let mut data = sample(3, 1, 10 * MIN);
    let long: String = "x".repeat(10_000);
    data.tenant = "Ümlaut-Tenant 😀 数据 שלום مرحبا \u{0007}\u{202E}evil\u{200B}".into();
    data.devices[0].device = long.clone();
    data.devices[0].hostname = "😀🔥🇩🇪 flags and ZWJ 👨\u{200D}👩\u{200D}👧".into();
    data.devices[1].device = "设备-一号 / デバイス / 장치".into();
    data.devices[1].model = "שלום עולם RTL".into();
    data.devices[2].device = "ctl\u{0}\u{1}\u{7f}\n\t\r\u{FEFF}end".into();
    data.devices[2].os = "\u{10FFFF}\u{E000}\u{FFFF}".into();
    data.findings[0].device = Some(long.clone());
    data.findings[0].rule = crate::risk::Rule::LicenseUnknown;
    data.findings[0].facts = crate::risk::Facts::LicenseUnknown { product: long.clone(), reason: long.clone() };
    // A mount named like that goes into the recommendation too.
    data.findings[1].rule = crate::risk::Rule::Disk;
    data.findings[1].subject = Some("a ".repeat(3000));
    data.findings[1].facts = crate::risk::Facts::DiskUsage { used_percent: 99.0, at_ms: START, yellow_percent: 85.0, red_percent: 95.0 };
    data.time_zone = "Not/AZone".into();
    data.period_label = long;
    let pdf = render(&data).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "u.pdf", &pdf);
    assert_valid(&path);
    let text = pdf_text(&path);
    assert!(text.contains("Ümlaut-Tenant"), "{text}");
    assert!(text.contains("\u{FFFD}"), "no fallback mark in the text");
    assert!(text.contains("Unknown time zone"), "no note about the unknown zone");
    assert!(text.contains("xxxxxxxx\u{2026}"), "long name not shortened with an ellipsis");
}

#[test]
fn no_devices() {
    let mut data = sample(0, 7, MIN);
    data.findings.clear();
    data.light = Light::Grey;
    let pdf = render(&data).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "e.pdf", &pdf);
    assert_valid(&path);
    let text = pdf_text(&path);
    assert!(text.contains("No devices reported"), "{text}");
    assert!(text.contains("All is well"), "{text}");
}

#[test]
fn devices_without_data_and_single_points() {
    let mut data = sample(3, 7, 30 * MIN);
    data.devices[0].cpu.clear();
    data.devices[0].memory.clear();
    data.devices[0].last_seen_ms = None;
    data.devices[0].hostname.clear();
    data.devices[1].cpu = vec![(START + DAY, 55.0)];
    data.devices[1].memory = vec![(START + DAY, f64::NAN), (START - DAY, 20.0)];
    data.devices[2].cpu = vec![(START, 150.0), (START + 3 * DAY, -20.0), (i64::MAX, 1.0)];
    let pdf = render(&data).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "n.pdf", &pdf);
    assert_valid(&path);
    assert!(pdf_text(&path).contains("no data"));
}

/// A 1,000-device tenant renders; every device is listed, tables continue across pages with
/// their header repeated, the charts stay limited, and the page count stays within bounds.
#[test]
fn a_thousand_devices_render_within_bounds() {
    let data = rich(1000, 1, 60 * MIN);
    let pdf = render(&data).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "m.pdf", &pdf);
    assert_valid(&path);
    let text = pdf_text(&path);
    for i in 0..1000 {
        let id = format!("fw-{i:04}");
        assert!(text.contains(&id), "{id} missing");
    }
    let n = pages(&path);
    assert!((40..=100).contains(&n), "{n} pages for 1,000 devices");
    // The device table's header row is on every page it spans.
    let header_pages = (1..=n)
        .filter(|p| {
            let page = run("pdftotext", &["-f", &p.to_string(), "-l", &p.to_string(), &path, "-"]);
            let t = String::from_utf8_lossy(&page.stdout).into_owned();
            t.contains("Licensed") && t.contains("Expiry")
        })
        .count();
    assert!(header_pages >= 15, "header repeated on {header_pages} pages");
    let charts = text.matches("12 busiest of 1,000 devices").count();
    assert_eq!(charts, 1, "the chart limit is not stated");
}

/// One device: a short report, no page of its own for empty sections, and sections share
/// pages (before they started a page each: 6 pages).
#[test]
fn one_device_is_a_short_report() {
    let data = sample(1, 7, 15 * MIN);
    let pdf = render(&data).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "one.pdf", &pdf);
    assert_valid(&path);
    let n = pages(&path);
    assert!((3..=5).contains(&n), "{n} pages for one device");
}

#[test]
fn odd_periods_do_not_fail() {
    for (start, end) in [(0, 0), (START, START - DAY), (i64::MIN, i64::MAX), (START, START + 1)] {
        let mut data = sample(1, 1, 60 * MIN);
        data.period_start_ms = start;
        data.period_end_ms = end;
        data.generated_at_ms = i64::MIN;
        data.devices[0].last_seen_ms = Some(i64::MAX);
        render(&data).unwrap();
    }
}

#[test]
fn downsample_keeps_extremes_and_breaks_gaps() {
    assert!(downsample(&[], 0, 1000, 10).is_empty());
    assert!(downsample(&[(5, 1.0)], 10, 10, 10).is_empty());
    let one = downsample(&[(500, 42.0)], 0, 1000, 10);
    assert_eq!(one, vec![vec![(0.5, 42.0)]]);
    // A spike inside one column survives.
    let pts: Vec<(i64, f64)> = (0..1000).map(|t| (t, if t == 333 { 99.0 } else { 10.0 })).collect();
    let segs = downsample(&pts, 0, 1000, 10);
    assert_eq!(segs.len(), 1);
    assert!(segs[0].iter().any(|&(_, v)| v == 99.0));
    assert!(segs[0].len() <= 20);
    // A hole of 40 % of the period splits the line.
    let holed: Vec<(i64, f64)> = (0..1000).filter(|t| !(300..700).contains(t)).map(|t| (t, 5.0)).collect();
    assert_eq!(downsample(&holed, 0, 1000, 100).len(), 2);
    // Out of range, not finite and out of scale values.
    let odd = [(-5, 1.0), (10, f64::NAN), (20, 500.0), (30, -3.0), (2000, 1.0)];
    let segs = downsample(&odd, 0, 1000, 100);
    let ys: Vec<f64> = segs.iter().flatten().map(|p| p.1).collect();
    assert_eq!(ys, vec![100.0, 0.0]);
    // Extreme times do not overflow.
    let segs = downsample(&[(i64::MIN, 1.0), (0, 2.0), (i64::MAX - 1, 3.0)], i64::MIN, i64::MAX, 50);
    assert_eq!(segs.iter().flatten().count(), 3);
}

#[test]
fn wrap_and_fit_stay_inside_the_width() {
    let cov = Coverage::new().unwrap();
    let cache = cov.cache_for_tests();
    let style = genpdf::style::Style::new().with_font_size(8);
    let w = genpdf::Mm::from(30.0);
    let long = "y".repeat(10_000);
    let fitted = text::fit(cache, style, &long, w);
    assert!(fitted.ends_with(text::ELLIPSIS));
    assert!(style.str_width(cache, &fitted) <= w);
    let lines = text::wrap(cache, style, &format!("short {long} tail"), w, 3);
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0], "short");
    assert!(lines[2].ends_with(text::ELLIPSIS));
    assert!(lines.iter().all(|l| style.str_width(cache, l) <= w));
    assert_eq!(text::wrap(cache, style, "", w, 3), vec![String::new()]);
    assert_eq!(text::wrap(cache, style, "a b", w, 3), vec!["a b".to_owned()]);
}

#[test]
fn sanitizer_marks_what_the_font_lacks() {
    let cov = Coverage::new().unwrap();
    let mut san = Sanitizer::new(&cov);
    assert_eq!(san.clean("a\tb\nc"), "a b c");
    assert_eq!(san.clean("x\u{0}y\u{202E}z"), "x\u{FFFD}y\u{FFFD}z");
    assert_eq!(san.clean("数"), "\u{FFFD}");
    assert_eq!(san.clean("Grüße Ωμέγα Привет"), "Grüße Ωμέγα Привет");
    let long = san.clean(&"z".repeat(10_000));
    assert_eq!(long.chars().count(), text::MAX_CHARS + 1);
    assert!(san.used().contains(&'Ω'));
}

#[test]
fn subset_keeps_metrics_and_shrinks() {
    let cov = Coverage::new().unwrap();
    let text = "AVATAR Grüße 0123 Ωμέγα";
    let chars: BTreeSet<char> = text.chars().collect();
    let family = cov.family(&chars).unwrap();
    let small = genpdf::fonts::FontCache::new(family);
    let full = cov.cache_for_tests();
    for style in [genpdf::style::Style::new(), genpdf::style::Style::new().bold()] {
        for s in text.split(' ') {
            assert_eq!(style.str_width(&small, s), style.str_width(full, s), "{s}");
        }
        // Characters outside the subset are no longer mapped.
        let font = style.font(&small);
        assert_eq!(small.get_rt_font(font).glyph('Z').id().0, 0);
        assert_ne!(small.get_rt_font(font).glyph('Ω').id().0, 0);
    }
    let map = [('A', 36u16)].into_iter().collect();
    let tiny = fonts::subset(fonts::REGULAR, &map).unwrap();
    assert!(tiny.len() < fonts::REGULAR.len() / 5, "subset is {} bytes", tiny.len());
}

#[test]
fn ticks_are_local_midnights() {
    let s = Strings::get(Lang::En);
    let zone = ReportZone::new("Europe/Berlin");
    let ticks = zone.ticks(s, START, START + 7 * DAY);
    assert_eq!(ticks.len(), 7);
    assert_eq!(ticks[0], (START, "3 Jun".to_owned()));
    assert_eq!(ticks[6].1, "9 Jun");
    let month = zone.ticks(s, START, START + 30 * DAY);
    assert!(month.len() <= 9 && month.len() >= 6, "{month:?}");
    let day = zone.ticks(s, START, START + DAY);
    assert_eq!(day.first().map(|t| t.1.as_str()), Some("00:00"));
    assert!(zone.ticks(s, i64::MIN, i64::MAX).len() <= 17);
    // A 15 s demo period: every 2 s, with seconds; an hour: every 10 minutes.
    let short = zone.ticks(s, START + 500, START + 15_500);
    assert_eq!(short.len(), 7, "{short:?}");
    assert_eq!(short[0], (START + 2_000, "00:00:02".to_owned()));
    let hour = zone.ticks(s, START, START + 3_600_000);
    assert_eq!(hour.iter().map(|t| t.1.as_str()).collect::<Vec<_>>(), ["00:00", "00:10", "00:20", "00:30", "00:40", "00:50"]);
    assert!(ReportZone::new("Not/AZone").fallback);
    assert_eq!(zone.fmt_period(s, START, START + 7 * DAY), "3 Jun 2024 \u{2013} 9 Jun 2024");
}

/// Figures for the report: `cargo test -p ampel-collector --lib report::tests::figures --
/// --ignored --nocapture` (add `--release` for release timings).
#[test]
#[ignore = "prints timings and sizes; run by hand"]
fn figures() {
    let data = sample(3, 7, MIN);
    let points: usize = data.devices.iter().map(|d| d.cpu.len() + d.memory.len()).sum();
    let t = std::time::Instant::now();
    let pdf = render(&data).unwrap();
    let first = t.elapsed();
    let t = std::time::Instant::now();
    let again = render(&data).unwrap();
    let second = t.elapsed();
    assert_eq!(pdf, again);
    println!("7 days, 3 devices, 1-min samples ({points} points): {} bytes, render {first:?} (again {second:?})", pdf.len());
    let month = rich(50, 30, MIN);
    let t = std::time::Instant::now();
    let big = render(&month).unwrap();
    println!("30 days, 50 devices, 1-min samples: {} bytes, render {:?}", big.len(), t.elapsed());
    if let Ok(dir) = std::env::var("AMPEL_REPORT_OUT") {
        std::fs::write(Path::new(&dir).join("sample-7d.pdf"), &pdf).unwrap();
        std::fs::write(Path::new(&dir).join("sample-30d.pdf"), &big).unwrap();
        let rich7 = rich(5, 7, 5 * MIN);
        std::fs::write(Path::new(&dir).join("rich-en.pdf"), render(&rich7).unwrap()).unwrap();
        std::fs::write(Path::new(&dir).join("rich-de.pdf"), render_in(&rich7, Lang::De).unwrap()).unwrap();
        let fifty = rich(50, 7, 30 * MIN);
        std::fs::write(Path::new(&dir).join("rich-de-50.pdf"), render_with(&fifty, &branded_de()).unwrap()).unwrap();
        let mut hostile = sample(3, 1, 10 * MIN);
        hostile.devices[0].device = "x".repeat(10_000);
        hostile.devices[1].device = "设备-一号 😀 שלום \u{202E}evil".into();
        hostile.findings[0].rule = crate::risk::Rule::LicenseUnknown;
        hostile.findings[0].facts =
            crate::risk::Facts::LicenseUnknown { product: "UTM".into(), reason: format!("{} end", "long-evidence-".repeat(80)) };
        hostile.tenant = format!("Ümlaut 😀 数据 שלום \u{202E}evil {}", "t".repeat(400));
        hostile.time_zone = "Mars/Olympus_Mons".into();
        let mut sparse = sample(3, 7, 30 * MIN);
        sparse.devices[0].cpu.clear();
        sparse.devices[0].memory.clear();
        sparse.devices[1].cpu = vec![(START + DAY, 55.0)];
        sparse.devices[1].memory.retain(|&(t, _)| !(START + 2 * DAY..START + 4 * DAY).contains(&t));
        std::fs::write(Path::new(&dir).join("sample-sparse.pdf"), render(&sparse).unwrap()).unwrap();
        std::fs::write(Path::new(&dir).join("sample-hostile.pdf"), render(&hostile).unwrap()).unwrap();
    }
}

/// A branded German report of the rich tenant.
fn branded_de() -> ReportOptions {
    let logo = branding::decode_logo(&branding::tests::png(300, 100)).unwrap();
    ReportOptions {
        lang: Lang::De,
        widgets: Widgets::default(),
        theme: Theme {
            header: branding::Colour(180, 20, 60),
            footer: branding::Colour(240, 240, 240),
            logo: Some(logo),
            cover_text: Some("Betreut von Beispiel IT \u{2013} Ihr Partner für Sicherheit".into()),
        },
    }
}

#[test]
fn branded_german_renders_are_deterministic() {
    let rich = rich(4, 7, 30 * MIN);
    let options = branded_de();
    assert!(render_with(&rich, &options).unwrap() == render_with(&rich, &options).unwrap(), "two branded German renders differ");
}

/// Every section's heading and its expected content, in English and in German, with the
/// language's dates and numbers.
#[test]
fn every_section_in_english_and_german() {
    let data = rich(5, 7, 5 * MIN);
    let dir = tempfile::tempdir().unwrap();
    let en = write(dir.path(), "en.pdf", &render(&data).unwrap());
    let de = write(dir.path(), "de.pdf", &render_in(&data, Lang::De).unwrap());
    assert_valid(&en);
    assert_valid(&de);
    let (en_pages, de_pages) = (pages(&en), pages(&de));
    let (en, de) = (pdf_text(&en), pdf_text(&de));
    // Every page says which of how many it is.
    for n in [1, en_pages] {
        assert!(en.contains(&format!("Page {n} of {en_pages}")), "English page {n} of {en_pages}:\n{en}");
    }
    for n in [1, de_pages] {
        assert!(de.contains(&format!("Seite {n} von {de_pages}")), "German page {n} of {de_pages}:\n{de}");
    }
    assert_eq!(en.matches(&format!(" of {en_pages}")).count(), en_pages, "one page number per page");
    for needle in [
        "Security report",
        "Executive summary",
        "Statistics overview",
        "Events",
        "Detections",
        "Indicators",
        "Lights per service",
        "The three most important things to do",
        "Since the last report",
        "Compared with: 27 May 2024 \u{2013} 2 Jun 2024",
        "Overview of all services",
        "Threats",
        "Alerts per day",
        "Top 10 signatures",
        "Top 10 sources",
        "Top 10 destinations",
        "Top 10 categories",
        "By severity",
        "Allowed versus blocked",
        "Malware",
        "Top 10 detections",
        "Win.Trojan.Agent-0",
        "Mail quarantine",
        "Top 10 reasons",
        "Traffic",
        "Per interface",
        "Per category",
        "https",
        "5.0 GB",
        "Performance",
        "CPU and memory over time",
        "70 / 80 / 91 (/var)",
        "Devices and licenses",
        "Licensed",
        "Expiry",
        "UTM 320",
        "Availability and coverage",
        "93.0 %",
        "5 h 0 min",
        "All recommendations",
        "silent for a day or more",
        "No data for 26 hours",
        "Appendix",
        "Definitions",
        "Data manifest",
        "Data hash (SHA-256)",
        "Rule version",
        "English (en)",
        "3 Jun 2024",
        "File hashes",
        "Verdict",
        "SHA-256",
        "Invoice-0.pdf.exe",
        "SHA-1",
        "sid 2100498",
        "no hash",
        "not flagged",
        "False positives",
        "Vulnerability scanner",
        "Suppression #2 (EICAR test of the mail relay) expired on",
    ] {
        assert!(en.contains(needle), "English: {needle:?} missing:\n{en}");
    }
    for needle in [
        "Sicherheitsbericht",
        "Zusammenfassung",
        "Statistik-Überblick",
        "Ereignisse",
        "Erkennungen",
        "Indikatoren",
        "Ampeln je Dienst",
        "Die drei wichtigsten Maßnahmen",
        "Seit dem letzten Bericht",
        "Verglichen mit: 27.05.2024 \u{2013} 02.06.2024",
        "Überblick über alle Dienste",
        "Bedrohungen",
        "Meldungen pro Tag",
        "Top 10 Signaturen",
        "Top 10 Quellen",
        "Top 10 Ziele",
        "Top 10 Kategorien",
        "Nach Schweregrad",
        "Erlaubt und blockiert",
        "Schadsoftware",
        "Top 10 Funde",
        "Mail-Quarantäne",
        "Datenverkehr",
        "Je Schnittstelle",
        "Je Kategorie",
        "5,0 GB",
        "Leistung",
        "CPU und Speicher im Verlauf",
        "Geräte und Lizenzen",
        "Lizenziert",
        "Erreichbarkeit und Abdeckung",
        "93,0 %",
        "Alle Empfehlungen",
        "Änderung",
        "Erreichbarkeit",
        "Ereignisse, Erkennungen,",
        "Das Gerät schweigt seit einem Tag",
        "Seit 26 Stunden",
        "Anhang",
        "Begriffe",
        "Datennachweis",
        "Regelversion",
        "Deutsch (de)",
        "03.06.2024",
        "Datei-Hashes",
        "kein Hash",
        "ohne Befund",
        "Befund",
        "Fehlalarme",
        "Begründung",
        "Unterdrückung Nr. 2 (EICAR test of the mail relay) ist am",
    ] {
        assert!(de.contains(needle), "German: {needle:?} missing:\n{de}");
    }
    // Findings in German words, dates and grammar (table cells wrap: compare without breaks).
    let flat_de = de.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(flat_de.contains("läuft am 20.06.2024 ab, in 10 Tagen (Warnung 30 Tage vorher)."), "{flat_de}");
    // No English heading or label is left in the German report.
    for english in ["Executive summary", "Threats", "Page 1", "Licensed", "Overall risk", "3 Jun 2024"] {
        assert!(!de.contains(english), "German report contains {english:?}");
    }
    // The data manifest's hash is the data's.
    assert!(en.contains(&data_hash(&data)) && de.contains(&data_hash(&data)));
}

/// A report definition with a few widgets shows those sections and no others.
#[test]
fn widgets_select_the_sections() {
    let data = rich(3, 7, 30 * MIN);
    let options = ReportOptions { widgets: Widgets::from_list(&[Widget::Threats, Widget::Devices]), ..ReportOptions::default() };
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "w.pdf", &render_with(&data, &options).unwrap());
    assert_valid(&path);
    let text = pdf_text(&path);
    for present in ["Security report", "Threats", "Alerts per day", "Devices and licenses"] {
        assert!(text.contains(present), "{present:?} missing:\n{text}");
    }
    for absent in [
        "Executive summary",
        "Top 10 signatures",
        "Malware",
        "Performance",
        "All recommendations",
        "Data manifest",
        "Availability and coverage",
    ] {
        assert!(!text.contains(absent), "{absent:?} shown though not selected");
    }
    // The threats follow the cover's lamp, the devices the threats: no page is left two
    // thirds empty (each section started a page before: 3 pages).
    assert_eq!(pages(&path), 2, "cover with threats, devices");
}

/// Branding: the logo is in the PDF, the cover text on the cover; an unbranded report has no
/// image.
#[test]
fn branding_puts_logo_and_cover_text_on_the_cover() {
    let data = rich(2, 7, 30 * MIN);
    let dir = tempfile::tempdir().unwrap();
    let branded = write(dir.path(), "b.pdf", &render_with(&data, &branded_de()).unwrap());
    let plain = write(dir.path(), "p.pdf", &render(&data).unwrap());
    assert_valid(&branded);
    let images = |path: &str| {
        let out = run("pdfimages", &["-list", path]);
        String::from_utf8_lossy(&out.stdout).lines().skip(2).count()
    };
    assert_eq!(images(&branded), 1, "the logo is not in the branded report");
    assert_eq!(images(&plain), 0);
    let cover = run("pdftotext", &["-f", "1", "-l", "1", &branded, "-"]);
    let cover = String::from_utf8_lossy(&cover.stdout);
    assert!(cover.contains("Betreut von Beispiel IT"), "{cover}");
}

/// A tenant that sends only performance data gets one line per empty section, no empty
/// tables.
#[test]
fn sections_without_data_say_so_in_one_line() {
    let data = sample(2, 7, 30 * MIN);
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "s.pdf", &render(&data).unwrap());
    let text = pdf_text(&path);
    for line in [
        "No alerts in this period.",
        "No malware was found in this period.",
        "No mail was quarantined or rejected in this period.",
        "No files with a hash or a detection in this period.",
        "No traffic counters were reported in this period.",
        "Every device sent data throughout the period.",
        "There is no earlier period to compare with.",
    ] {
        assert!(text.contains(line), "{line:?} missing:\n{text}");
    }
    assert!(!text.contains("Top 10"), "an empty top-10 table is shown");
}

/// A 30-day report of a 50-device tenant stays under 1 MB.
#[test]
fn thirty_days_of_fifty_devices_fit_in_a_megabyte() {
    let pdf = render(&rich(50, 30, MIN)).unwrap();
    assert!(pdf.len() <= 1_000_000, "{} bytes", pdf.len());
    let dir = tempfile::tempdir().unwrap();
    assert_valid(&write(dir.path(), "big.pdf", &pdf));
}

/// Any Unicode in signatures, addresses and interfaces renders; long ones are shortened.
#[test]
fn hostile_signatures_render_in_the_top_tables() {
    let mut data = rich(2, 2, 30 * MIN);
    data.threats.signatures[0].0 = "ET 😀 数据 שלום مرحبا \u{202E}evil\u{0}".into();
    data.threats.signatures[1].0 = "s".repeat(10_000);
    data.threats.sources[0].0 = "\u{FEFF}\u{200B}".into();
    data.traffic[0].interface = "eth-Ω-😀".into();
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "h.pdf", &render_in(&data, Lang::De).unwrap());
    assert_valid(&path);
    let text = pdf_text(&path);
    // The bidi override and the NUL show as the mark; CJK (not in DejaVu Sans) too. (Emoji
    // DejaVu has are drawn, but poppler reads non-BMP characters back wrongly, so the text
    // layer is not checked for them.)
    let line = text.lines().find(|l| l.starts_with("ET ") && l.contains("evil")).unwrap_or("");
    assert!(line.ends_with("evil\u{FFFD}"), "NUL not marked: {line:?}");
    assert!(line.matches('\u{FFFD}').count() >= 4, "CJK and override not marked: {line:?}");
    assert!(text.contains("sssss\u{2026}"), "long signature not shortened");
    assert!(text.contains("eth-Ω-"), "{text}");
}

/// Every character of the fixed texts of every language can be drawn in both styles, so no
/// heading or label ever shows a missing glyph.
#[test]
fn fixed_texts_are_fully_covered_by_the_fonts() {
    let cov = Coverage::new().unwrap();
    for lang in [Lang::En, Lang::De] {
        let missing: Vec<char> = Strings::get(lang).all_text().chars().filter(|c| !cov.has(*c)).collect();
        assert!(missing.is_empty(), "{lang:?}: {missing:?}");
    }
}

/// A German report of findings from every rule, and every advice, holds none of the English
/// evidence phrases; the English one does.
#[test]
fn german_report_with_every_rule_firing_has_no_english_findings() {
    let mut data = sample(3, 1, 10 * MIN);
    data.findings = super::catalogue::tests::shipped_findings();
    data.services = crate::risk::service_lights(&data.findings);
    let dir = tempfile::tempdir().unwrap();
    let de = write(dir.path(), "de.pdf", &render_in(&data, Lang::De).unwrap());
    let en = write(dir.path(), "en.pdf", &render(&data).unwrap());
    // Table cells wrap: join the lines so that a phrase across a break is still found.
    let flat = |path: &str| pdf_text(path).split_whitespace().collect::<Vec<_>>().join(" ");
    let (de, en) = (flat(&de), flat(&en));
    let found_in_en = super::catalogue::tests::ENGLISH_PHRASES.iter().filter(|p| en.contains(p.trim())).count();
    assert!(found_in_en >= 10, "the English report shows the phrases the German one must not: {found_in_en}");
    for phrase in super::catalogue::tests::ENGLISH_PHRASES {
        assert!(!de.contains(phrase.trim()), "German report contains {phrase:?}");
    }
    assert!(de.contains("durchgelassen") && de.contains("Lücke"), "{de}");
}

/// A device enrolled minutes before the period's end shows its coverage with a "new since" mark
/// (issue 19): 100 % of three minutes is not 100 % of the day.
#[test]
fn a_device_new_in_the_period_is_marked_in_both_languages() {
    let mut data = sample(2, 1, 10 * MIN);
    let dir = tempfile::tempdir().unwrap();
    let flat = |path: &str| pdf_text(path).split_whitespace().collect::<Vec<_>>().join(" ");
    let old = flat(&write(dir.path(), "old.pdf", &render(&data).unwrap()));
    assert!(!old.contains("new since"), "{old}");
    data.devices[1].first_seen_ms = Some(data.period_end_ms - 3 * MIN);
    let en = flat(&write(dir.path(), "en.pdf", &render(&data).unwrap()));
    let de = flat(&write(dir.path(), "de.pdf", &render_in(&data, Lang::De).unwrap()));
    assert!(en.contains("100.0 % (new since 2024-06-03 23:57)"), "{en}");
    assert!(de.contains("100,0 % (neu seit 03.06.2024 23:57)"), "{de}");
}

/// The appendix follows the job's `false-positives`: listed, only counted, or included.
#[test]
fn false_positives_are_listed_counted_or_included_as_the_job_says() {
    use crate::assess::suppress::FalsePositives;
    let dir = tempfile::tempdir().unwrap();
    let mut data = sample(1, 1, 30 * MIN);
    data.false_positives = rich(1, 1, 30 * MIN).false_positives;
    let text_of = |data: &ReportData| pdf_text(&write(dir.path(), "fp.pdf", &render(data).unwrap()));
    let listed = text_of(&data);
    assert!(listed.contains("Vulnerability scanner") && listed.contains("performance.cpu (1)"), "{listed}");
    data.false_positives.mode = FalsePositives::Exclude;
    let counted = text_of(&data);
    assert!(counted.contains("Suppressed as false positives: 1,204 alerts and 1 rule findings."), "{counted}");
    assert!(!counted.contains("Vulnerability scanner"), "excluded entries are not listed:\n{counted}");
    assert!(counted.contains("Suppression #2 (EICAR test of the mail relay) expired on"), "{counted}");
    data.false_positives = crate::assess::suppress::Suppressed { mode: FalsePositives::Include, ignored: 3, ..Default::default() };
    let included = text_of(&data);
    assert!(included.contains("False positives are included in this report: 3 suppression entries were not applied"), "{included}");
    data.false_positives = Default::default();
    assert!(!text_of(&data).contains("False positives"), "no entries, no section");
}

/// Width of the page body of the report's A4 pages, in mm (210 less 18 mm margins each side).
const BODY_W: f64 = 174.0;

/// Every word of `label`, as the cell's lines hold them: none broken.
fn whole_words(lines: &[String], label: &str) -> bool {
    let got: Vec<&str> = lines.iter().flat_map(|l| l.split(' ')).filter(|w| !w.is_empty()).collect();
    got == label.split(' ').collect::<Vec<_>>()
}

/// The Level column of the recommendations holds every light's name, in both languages,
/// without breaking a word ("Endanger ed" was the bug), and so does every header.
#[test]
fn level_column_fits_every_light_in_both_languages() {
    use super::table::{Cell, Table};
    let cov = Coverage::new().unwrap();
    let cache = cov.cache_for_tests();
    let style = genpdf::style::Style::new().with_font_size(10);
    let lights = [Light::Red, Light::Yellow, Light::Green, Light::Grey];
    for lang in [Lang::En, Lang::De] {
        let s = Strings::get(lang);
        let evidence = "CPU above 90 % for 41 minutes in the last 24 h, on every core of the appliance.";
        let rows = lights
            .iter()
            .map(|l| {
                let text = |t: &str| Cell::Text(t.to_owned());
                vec![
                    Cell::Lamp(*l, s.light(*l).to_owned()),
                    text("fw-0001"),
                    text(s.service("performance")),
                    text(evidence),
                    text(evidence),
                    text(s.change_open),
                ]
            })
            .collect();
        let table = Table::new(String::new(), super::layout::recommendation_columns(s), rows);
        for (i, light) in lights.iter().enumerate() {
            let cells = table.lines(Some(i), cache, style, BODY_W);
            assert!(whole_words(&cells[0], s.light(*light)), "{lang:?}: {:?} drawn as {:?}", s.light(*light), cells[0]);
            assert!(whole_words(&cells[5], s.change_open), "{lang:?}: {:?}", cells[5]);
        }
        let header = table.lines(None, cache, style, BODY_W);
        for (lines, col) in header.iter().zip(super::layout::recommendation_columns(s)) {
            assert!(whole_words(lines, &col.title), "{lang:?}: header {:?} drawn as {lines:?}", col.title);
        }
    }
}

/// Only a token wider than any column can be broken; the table keeps its width.
#[test]
fn only_a_token_wider_than_a_column_is_broken() {
    use super::table::{Align, Cell, Column, MAX_MIN_SHARE, Table};
    let cov = Coverage::new().unwrap();
    let cache = cov.cache_for_tests();
    let style = genpdf::style::Style::new();
    let column = |title: &str, weight: f64| Column { title: title.to_owned(), weight, align: Align::Left, max_lines: 3 };
    let long = "x".repeat(200);
    let rows = vec![vec![Cell::Text("Endangered".into()), Cell::Text(long.clone())]];
    let table = Table::new(String::new(), vec![column("Level", 0.1), column("Signature", 10.0)], rows);
    let widths = table.widths(cache, style, BODY_W);
    assert!((widths.iter().sum::<f64>() - BODY_W).abs() < 1e-6, "{widths:?}");
    assert!(widths[1] >= BODY_W * MAX_MIN_SHARE - 1e-6, "{widths:?}");
    let cells = table.lines(Some(0), cache, style, BODY_W);
    assert_eq!(cells[0], vec!["Endangered".to_owned()], "a weight of 0.1 still holds the word");
    assert!(cells[1].len() > 1, "the 200-character token is broken: {:?}", cells[1]);
}

/// Lays out `build`'s body on report pages (with the report's footer) and returns the text of
/// each page.
fn flow_pages(build: impl FnOnce(&mut super::flow::Body)) -> Vec<String> {
    let cov = Coverage::new().unwrap();
    let family = cov.family(&(' '..='~').collect()).unwrap();
    let mut doc = genpdf::Document::new(family);
    doc.set_font_size(10);
    doc.set_page_decorator(super::elements::Footer {
        label: String::new(),
        page_label: Box::new(|n| format!("p{n}")),
        page: 0,
        color: genpdf::style::Color::Rgb(0, 0, 0),
        dark: true,
    });
    let mut body = super::flow::Body::new();
    build(&mut body);
    doc.push(body.finish());
    let mut raw = Vec::new();
    doc.render(&mut raw).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "flow.pdf", &raw);
    (1..=pages(&path))
        .map(|p| {
            let out = run("pdftotext", &["-f", &p.to_string(), "-l", &p.to_string(), &path, "-"]);
            String::from_utf8_lossy(&out.stdout).into_owned()
        })
        .collect()
}

/// A heading, its intro and a table of 30 rows after `filled` mm of a page.
fn section_after(body: &mut super::flow::Body, filled: f64) {
    use super::elements::{Gap, Para};
    use super::table::{Align, Cell, Column, Table};
    body.keep(Para::new("first".into(), genpdf::style::Style::new(), 1, 0.0));
    body.keep(Gap(filled));
    body.push(super::flow::section_break());
    body.keep(Para::new("Heading".into(), genpdf::style::Style::new().bold().with_font_size(18), 2, 4.0).kept_with_next());
    body.keep(Para::new("Intro line.".into(), genpdf::style::Style::new().with_font_size(9), 2, 4.0).kept_with_next());
    let columns = vec![Column { title: "Name".into(), weight: 1.0, align: Align::Left, max_lines: 1 }];
    let rows = (0..30).map(|i| vec![Cell::Text(format!("row{i:02}"))]).collect();
    body.keep(Table::new("Table".into(), columns, rows));
}

/// A section whose heading, intro, table heading, header and first rows fit starts on the
/// page where the previous one ended (more than a third of a page was left); with less than a
/// third left it starts the next page; and a heading never stays behind without its table.
#[test]
fn sections_start_where_they_fit_and_headings_stay_with_their_tables() {
    // ~110 mm of 261 left: the section starts on page 1 with its first rows.
    let pages = flow_pages(|b| section_after(b, 145.0));
    assert!(pages[0].contains("Heading") && pages[0].contains("row00") && pages[0].contains("row01"), "{pages:?}");
    assert!(pages[1].contains("Name") && pages[1].contains("Table"), "the header is repeated: {pages:?}");
    // ~70 mm left, less than a third: the section starts page 2, page 1 holds only the filler.
    let pages = flow_pages(|b| section_after(b, 185.0));
    assert!(!pages[0].contains("Heading") && pages[1].contains("Heading") && pages[1].contains("row00"), "{pages:?}");
    // Without the section break and ~26 mm left: heading, intro, table heading and header
    // would fit, two rows would not; all of it moves together.
    let pages = flow_pages(|b| {
        b.keep(super::elements::Para::new("first".into(), genpdf::style::Style::new(), 1, 0.0));
        b.keep(super::elements::Gap(229.0));
        section_after(b, 0.0);
    });
    assert!(!pages[0].contains("Heading") && !pages[0].contains("Intro"), "a heading stayed behind: {:?}", pages[0]);
    assert!(pages[1].contains("Heading") && pages[1].contains("row00") && pages[1].contains("row01"), "{pages:?}");
}

/// Short sections no longer start a page each, leaving most of the page before empty: the
/// performance table follows the cover's lamp, devices and recommendations share the next
/// page (before: cover, performance, devices, recommendations on four pages).
#[test]
fn short_sections_share_a_page() {
    let data = sample(3, 7, 30 * MIN);
    let widgets = Widgets::from_list(&[Widget::Performance, Widget::Devices, Widget::Recommendations]);
    let options = ReportOptions { widgets, ..ReportOptions::default() };
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "short.pdf", &render_with(&data, &options).unwrap());
    let n = pages(&path);
    let page = |p: usize| {
        String::from_utf8_lossy(&run("pdftotext", &["-f", &p.to_string(), "-l", &p.to_string(), &path, "-"]).stdout).into_owned()
    };
    let on = |heading: &str| (1..=n).find(|p| page(*p).contains(heading)).unwrap_or(0);
    let (performance, devices, recommendations) = (on("Performance"), on("Devices and licenses"), on("All recommendations"));
    assert_eq!((n, performance, devices, recommendations), (2, 1, 2, 2), "pages, then the page of each section");
}
