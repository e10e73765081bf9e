//! The report's pages: cover, executive summary, overview of all services, the sections
//! (threats, malware, mail quarantine, traffic, performance, devices and licenses,
//! availability), all recommendations and the appendix.
//!
//! All input text passes through the [`Sanitizer`] while the elements are built, so by the time
//! the fonts are cut down to the characters in use, every character is known. A section
//! without data says so in one line instead of showing empty tables.

use std::collections::BTreeMap;

use genpdf::Document;
use genpdf::style::Style;

use super::catalogue;
use super::chart::{CPU_COLOR, DeviceChart};
use super::elements::{Band, Bars, Facts, Footer, Gap, LampBlock, LampGrid, MUTED, Para, Tiles, light_color};
use super::flow::{self, Body};
use super::fonts::Coverage;
use super::stats::{AlertStats, Stat};
use super::strings::{Lang, Strings};
use super::table::{Align, Cell, Column, Table};
use super::text::Sanitizer;
use super::widgets::Widget;
use super::zone::ReportZone;
use super::{DeviceReport, ReportData, ReportError, ReportOptions, pdf};
use crate::risk::{Finding, Light};

mod false_positives;
mod files;

/// Body font size in pt.
const BODY_SIZE: u8 = 10;
/// Most devices that get a CPU and memory chart: the busiest ones. Every device is in the
/// performance table; 1,000 charts would be 250 pages nobody reads.
pub(crate) const MAX_CHARTS: usize = 12;
/// Most interfaces in the traffic table: the busiest.
const MAX_INTERFACES: usize = 20;
/// Most changes listed on the summary page; the recommendations table marks every finding.
const MAX_SUMMARY_CHANGES: usize = 10;
/// Colour of alert bars.
const ALERT_COLOR: genpdf::style::Color = genpdf::style::Color::Rgb(220, 38, 38);

fn col(title: &str, weight: f64, align: Align, max_lines: usize) -> Column {
    Column { title: title.to_owned(), weight, align, max_lines }
}

/// What every section builder needs.
struct Ctx<'a> {
    s: &'static Strings,
    zone: ReportZone,
    san: Sanitizer<'a>,
    body: Body,
}

impl Ctx<'_> {
    /// A section heading, kept on the page of what follows it.
    fn h1(&mut self, text: &str) {
        self.body.keep(Para::new(text.to_owned(), Style::new().bold().with_font_size(18), 2, 4.0).kept_with_next());
    }

    /// A sub-heading, kept on the page of what follows it.
    fn h2(&mut self, text: &str) {
        self.body.keep(Para::new(text.to_owned(), Style::new().bold().with_font_size(13), 2, 2.0).kept_with_next());
    }

    /// A line of body text that stands on its own (e.g. "no alerts").
    fn line(&mut self, text: String) {
        self.body.keep(Para::new(text, Style::new(), 6, 5.0));
    }

    /// A muted intro or note, kept on the page of what follows it.
    fn muted(&mut self, text: String) {
        self.body.keep(Para::new(text, Style::new().with_font_size(9).with_color(MUTED), 6, 4.0).kept_with_next());
    }

    /// The start of a section: a new page only when little of this one is left.
    fn section_break(&mut self) {
        self.body.push(flow::section_break());
    }

    fn table(&mut self, heading: &str, columns: Vec<Column>, rows: Vec<Vec<Cell>>) {
        self.body.keep(Table::new(heading.to_owned(), columns, rows));
        self.body.keep(Gap(5.0));
    }

    fn clean(&mut self, s: &str) -> String {
        self.san.clean(s)
    }

    fn or_none(&mut self, s: &str) -> String {
        let v = self.san.clean(s);
        if v.trim().is_empty() { self.s.none.to_owned() } else { v }
    }

    fn when(&self, ms: Option<i64>) -> String {
        match ms {
            Some(ms) => self.zone.fmt_datetime_short(self.s, ms),
            None => self.s.none.to_owned(),
        }
    }

    /// A top-N table of (value, count) with the share of `total`.
    fn top_table(&mut self, heading: &str, value_col: &str, rows: &[(String, u64)], total: u64) {
        if rows.is_empty() {
            return;
        }
        let s = self.s;
        let rows = rows
            .iter()
            .map(|(v, n)| {
                vec![Cell::Text(self.or_none(v)), Cell::Text(s.int(*n)), Cell::Text(s.pct(*n as f64 * 100.0 / total.max(1) as f64))]
            })
            .collect();
        self.table(
            heading,
            vec![col(value_col, 6.0, Align::Left, 3), col(s.col_count, 1.2, Align::Right, 1), col(s.col_share, 1.2, Align::Right, 1)],
            rows,
        );
    }
}

/// Renders `data` as `options` say, to PDF bytes, in two passes: the first counts the pages,
/// the second prints "Page n of N". The footer has a fixed height, so the count cannot change
/// between the passes.
pub(crate) fn render(data: &ReportData, options: &ReportOptions) -> Result<Vec<u8>, ReportError> {
    let coverage = Coverage::new()?;
    let (_, pages) = pass(data, options, &coverage, None)?;
    let (raw, _) = pass(data, options, &coverage, Some(pages))?;
    pdf::finalize(&raw, data.generated_at_ms)
}

/// Lays out and renders once; returns the raw PDF and its page count.
fn pass(data: &ReportData, options: &ReportOptions, coverage: &Coverage, pages: Option<usize>) -> Result<(Vec<u8>, usize), ReportError> {
    let s = Strings::get(options.lang);
    let w = &options.widgets;
    let mut san = Sanitizer::new(coverage);
    san.note(&s.all_text());
    let mut cx = Ctx { s, zone: ReportZone::new(&data.time_zone), san, body: Body::new() };
    let tenant = cx.clean(&data.tenant);

    cover(&mut cx, data, options, &tenant);
    if w.has(Widget::Summary) || w.has(Widget::Statistics) {
        summary(&mut cx, data, options);
    }
    if w.has(Widget::Overview) {
        cx.body.keep(Gap(4.0));
        overview(&mut cx, data);
    }
    let top = w.has(Widget::TopTables);
    let alert_sections = [
        (Widget::Threats, &data.threats, s.threats, s.no_alerts),
        (Widget::Malware, &data.malware, s.malware, s.no_malware),
        (Widget::Mail, &data.mail, s.mail, s.no_mail),
    ];
    let mut first = true;
    for (widget, stats, heading, empty) in alert_sections {
        if !w.has(widget) {
            continue;
        }
        if first {
            cx.section_break();
            first = false;
        } else {
            cx.body.keep(Gap(4.0));
        }
        alerts(&mut cx, widget, stats, heading, empty, top);
    }
    if w.has(Widget::FileHashes) {
        if first {
            cx.section_break();
            first = false;
        } else {
            cx.body.keep(Gap(4.0));
        }
        files::section(&mut cx, &data.file_hashes);
    }
    if w.has(Widget::Traffic) {
        if first {
            cx.section_break();
        }
        traffic(&mut cx, data);
    }
    if w.has(Widget::Performance) || w.has(Widget::Charts) {
        cx.section_break();
        performance(&mut cx, data, w.has(Widget::Performance), w.has(Widget::Charts));
    }
    if w.has(Widget::Devices) {
        cx.section_break();
        devices(&mut cx, data);
    }
    if w.has(Widget::Availability) {
        if !w.has(Widget::Devices) {
            cx.section_break();
        }
        availability(&mut cx, data);
    }
    if w.has(Widget::Recommendations) {
        cx.section_break();
        recommendations(&mut cx, data, options);
    }
    if w.has(Widget::Appendix) {
        cx.section_break();
        appendix(&mut cx, data, options);
        false_positives::section(&mut cx, &data.false_positives);
    }

    let Ctx { san, body, .. } = cx;
    let family = coverage.family(san.used())?;
    let mut doc = Document::new(family);
    doc.set_title(s.title);
    // No ICC profile and no XMP packet: both are large, and XMP carries its own random id
    // and clock-based dates.
    doc.set_minimal_conformance();
    doc.set_font_size(BODY_SIZE);
    let counted = std::rc::Rc::new(std::cell::Cell::new(0usize));
    let seen = counted.clone();
    doc.set_page_decorator(Footer {
        label: format!("{} \u{00B7} {} \u{00B7} {}", s.product, s.title, tenant),
        page_label: Box::new(move |n| {
            seen.set(n);
            s.page_no(n, pages)
        }),
        page: 0,
        color: options.theme.footer.color(),
        dark: options.theme.footer.is_dark(),
    });
    doc.push(body.finish());
    let mut raw = Vec::new();
    doc.render(&mut raw).map_err(|e| ReportError::Render(error_chain(&e)))?;
    Ok((raw, counted.get()))
}

fn cover(cx: &mut Ctx<'_>, data: &ReportData, options: &ReportOptions, tenant: &str) {
    let s = cx.s;
    let theme = &options.theme;
    cx.body.push(Band { label: s.product.to_owned(), color: theme.header.color(), dark: theme.header.is_dark(), logo: theme.logo.clone() });
    cx.body.push(Gap(12.0));
    cx.body.push(Para::new(s.title.to_owned(), Style::new().bold().with_font_size(28), 2, 4.0));
    cx.body.push(Para::new(tenant.to_owned(), Style::new().with_font_size(16).with_color(MUTED), 3, 10.0));
    if let Some(text) = &theme.cover_text {
        let text = cx.clean(text);
        cx.body.push(Para::new(text, Style::new().with_font_size(12), 4, 10.0));
    }
    let period = {
        let dates = cx.zone.fmt_period(s, data.period_start_ms, data.period_end_ms);
        let label = cx.clean(&data.period_label);
        // A calendar day's name is its date: said once.
        if label.trim().is_empty() || label == dates { dates } else { format!("{dates} ({label})") }
    };
    let mut facts = vec![
        (s.tenant.to_owned(), tenant.to_owned()),
        (s.period.to_owned(), period),
        (s.time_zone.to_owned(), cx.clean(&data.time_zone)),
        (s.generated_at.to_owned(), cx.zone.fmt_datetime(s, data.generated_at_ms)),
    ];
    if cx.zone.fallback {
        let note = cx.clean(&s.unknown_zone_note(&data.time_zone));
        facts.push((String::new(), note));
    }
    cx.body.push(Facts { rows: facts, label_width: 34.0 });
    cx.body.push(Gap(14.0));
    let score = data.score.min(100);
    cx.body.push(LampBlock {
        light: data.light,
        radius: 14.0,
        lines: vec![
            s.light(data.light).to_owned(),
            s.overall.to_owned(),
            format!("{} {score} / 100", s.score),
            s.counts(data.devices.len(), data.findings.len()),
        ],
    });
}

/// Events, detections and indicators over all alert sections.
fn statistics(data: &ReportData) -> (u64, u64, u64) {
    let all = [&data.threats, &data.malware, &data.mail];
    let events = all.iter().map(|a| a.total).sum();
    // Every malware alert is a detection, acted on or not.
    let detections = data.threats.blocked + data.mail.blocked + data.malware.total;
    let indicators = all.iter().map(|a| a.indicators).sum();
    (events, detections, indicators)
}

/// The three most important recommendations: the worst findings' distinct recommendations,
/// each with the devices it concerns.
fn top_recommendations(data: &ReportData, lang: Lang) -> Vec<(Light, String, Vec<String>)> {
    let mut out: Vec<(Light, String, Vec<String>)> = Vec::new();
    for f in data.findings.iter().filter(|f| f.level != Light::Green) {
        let rec = catalogue::recommendation(f, lang);
        if let Some(entry) = out.iter_mut().find(|e| e.1 == rec) {
            if let Some(d) = &f.device {
                entry.2.push(d.clone());
            }
            continue;
        }
        if out.len() == 3 {
            continue;
        }
        out.push((f.level, rec, f.device.iter().cloned().collect()));
    }
    out
}

fn summary(cx: &mut Ctx<'_>, data: &ReportData, options: &ReportOptions) {
    let s = cx.s;
    let w = &options.widgets;
    // The summary follows the cover's lamp on page 1: what a manager reads first.
    cx.body.keep(Gap(6.0));
    cx.h1(s.summary);
    if w.has(Widget::Summary) {
        services_and_top_three(cx, data, options);
    }
    if w.has(Widget::Statistics) {
        let (events, detections, indicators) = statistics(data);
        cx.body.keep(Tiles {
            title: s.statistics.to_owned(),
            tiles: vec![
                (s.int(events), s.events.to_owned()),
                (s.int(detections), s.detections.to_owned()),
                (s.int(indicators), s.indicators.to_owned()),
            ],
            accents: vec![None, None, None],
        });
    }
    if w.has(Widget::Summary) {
        changes(cx, data);
    }
}

/// Lights per service and the three most important things to do.
fn services_and_top_three(cx: &mut Ctx<'_>, data: &ReportData, options: &ReportOptions) {
    let s = cx.s;
    if !data.services.is_empty() {
        let items = data.services.iter().map(|sl| (sl.light, format!("{} ({})", s.service(sl.service), sl.score.min(100)))).collect();
        cx.body.keep(LampGrid { title: s.service_lights.to_owned(), items, columns: 4 });
        cx.body.keep(Gap(3.0));
    }

    let top = top_recommendations(data, options.lang);
    if top.is_empty() {
        cx.h2(s.top_recommendations);
        cx.line(s.no_recommendations.to_owned());
    } else {
        let rows = top
            .into_iter()
            .enumerate()
            .map(|(i, (level, rec, devices))| {
                let shown: Vec<String> = devices.iter().take(3).map(|d| cx.clean(d)).collect();
                let mut who = if shown.is_empty() { s.tenant_wide.to_owned() } else { shown.join(", ") };
                if devices.len() > 3 {
                    who.push_str(&format!(" +{}", devices.len() - 3));
                }
                vec![Cell::Text(format!("{}.", i + 1)), Cell::Lamp(level, cx.clean(&rec)), Cell::Text(who)]
            })
            .collect();
        cx.table(
            s.top_recommendations,
            vec![col("#", 0.4, Align::Left, 1), col(s.col_recommendation, 7.0, Align::Left, 4), col(s.col_device, 2.6, Align::Left, 3)],
            rows,
        );
    }
}

/// Fixed, new and still open since the last report.
fn changes(cx: &mut Ctx<'_>, data: &ReportData) {
    let s = cx.s;
    let Some((prev_start, prev_end)) = data.previous_ms else {
        cx.h2(s.changes);
        cx.line(s.no_previous.to_owned());
        return;
    };
    let count = |c: crate::risk::Change| data.changes.iter().filter(|x| x.change == c).count() as u64;
    use crate::risk::Change;
    cx.body.keep(Tiles {
        title: s.changes.to_owned(),
        tiles: vec![
            (s.int(count(Change::Fixed)), s.change_fixed.to_owned()),
            (s.int(count(Change::New)), s.change_new.to_owned()),
            (s.int(count(Change::StillOpen)), s.change_open.to_owned()),
        ],
        accents: vec![Some(light_color(Light::Green)), Some(light_color(Light::Red)), Some(light_color(Light::Yellow))],
    });
    // The previous period's dates in the report's zone and language (its label is English).
    let prev = cx.zone.fmt_period(s, prev_start, prev_end);
    cx.muted(format!("{}: {prev}", s.compared_with));
    if !data.changes.is_empty() {
        let rows = data
            .changes
            .iter()
            .take(MAX_SUMMARY_CHANGES)
            .map(|c| {
                let level = c.current.or(c.previous).unwrap_or(Light::Grey);
                let device = match &c.device {
                    Some(d) => cx.clean(d),
                    None => s.tenant_wide.to_owned(),
                };
                let mut what = c.rule.id().to_owned();
                if let Some(sub) = &c.subject {
                    what.push_str(&format!(" ({})", cx.clean(sub)));
                }
                vec![Cell::Lamp(level, s.change(c.change).to_owned()), Cell::Text(device), Cell::Text(what)]
            })
            .collect();
        cx.table(
            "",
            vec![col(s.col_change, 1.6, Align::Left, 1), col(s.col_device, 2.5, Align::Left, 2), col(s.col_findings, 4.0, Align::Left, 2)],
            rows,
        );
        if data.changes.len() > MAX_SUMMARY_CHANGES {
            cx.muted(format!("+{} \u{2192} {}", s.int((data.changes.len() - MAX_SUMMARY_CHANGES) as u64), s.recommendations));
        }
    }
}

fn overview(cx: &mut Ctx<'_>, data: &ReportData) {
    let s = cx.s;
    let rows = data
        .services
        .iter()
        .map(|sl| {
            let idx = crate::risk::SERVICES.iter().position(|x| *x == sl.service).unwrap_or(0);
            vec![
                Cell::Text(s.service(sl.service).to_owned()),
                Cell::Lamp(sl.light, s.light(sl.light).to_owned()),
                Cell::Text(sl.score.min(100).to_string()),
                Cell::Text(s.int(sl.findings as u64)),
                Cell::Text(s.service_about.get(idx).copied().unwrap_or("").to_owned()),
            ]
        })
        .collect();
    cx.table(
        s.overview,
        vec![
            col(s.col_service, 2.0, Align::Left, 1),
            col(s.col_light, 2.2, Align::Left, 1),
            col(s.col_score, 1.0, Align::Right, 1),
            col(s.col_findings, 1.2, Align::Right, 1),
            col(s.col_about, 5.0, Align::Left, 2),
        ],
        rows,
    );
}

fn alerts(cx: &mut Ctx<'_>, widget: Widget, a: &AlertStats, heading: &str, empty: &str, top: bool) {
    let s = cx.s;
    cx.h1(heading);
    if a.total == 0 {
        cx.line(empty.to_owned());
        return;
    }
    if widget == Widget::Threats {
        cx.muted(s.threats_intro.to_owned());
    }
    let mut tiles =
        vec![(s.int(a.total), s.events.to_owned()), (s.int(a.allowed), s.allowed.to_owned()), (s.int(a.blocked), s.blocked.to_owned())];
    let mut accents = vec![None, Some(light_color(Light::Yellow)), Some(light_color(Light::Green))];
    if a.unknown_action > 0 {
        tiles.push((s.int(a.unknown_action), s.action_unknown.to_owned()));
        accents.push(Some(light_color(Light::Grey)));
    }
    cx.body.keep(Tiles { title: s.allowed_blocked.to_owned(), tiles, accents });
    if a.per_day.len() > 1 {
        let bars = a
            .per_day
            .iter()
            .map(|(day, n)| {
                let label = cx.zone.date(*day).map(|d| s.short_date(d)).unwrap_or_default();
                (label, *n)
            })
            .collect();
        let max = a.per_day.iter().map(|d| d.1).max().unwrap_or(0);
        cx.body.keep(Bars {
            title: s.per_day.to_owned(),
            bars,
            color: if widget == Widget::Threats { ALERT_COLOR } else { CPU_COLOR },
            max_label: s.int(max),
        });
    }
    if top {
        let (sig_heading, sig_col) = match widget {
            Widget::Threats => (s.top_signatures, s.col_signature),
            Widget::Malware => (s.top_detections, s.col_signature),
            _ => (s.top_reasons, s.col_signature),
        };
        cx.top_table(sig_heading, sig_col, &a.signatures, a.total);
        cx.top_table(s.top_sources, s.col_address, &a.sources, a.total);
        cx.top_table(s.top_destinations, s.col_address, &a.destinations, a.total);
        cx.top_table(s.top_categories, s.col_category, &a.categories, a.total);
    }
    if widget == Widget::Threats && !a.severities.is_empty() {
        let sev: Vec<(String, u64)> = a.severities.iter().map(|(sev, n)| (sev.to_string(), *n)).collect();
        cx.top_table(s.by_severity, s.col_severity, &sev, a.total);
    }
    cx.top_table(s.by_device, s.col_device, &a.devices, a.total);
}

fn traffic(cx: &mut Ctx<'_>, data: &ReportData) {
    let s = cx.s;
    cx.body.keep(Gap(4.0));
    cx.h1(s.traffic);
    if data.traffic.is_empty() {
        cx.line(s.no_traffic.to_owned());
        return;
    }
    let mut interfaces: Vec<_> = data.traffic.iter().filter(|t| t.category.is_none()).collect();
    // The busiest interfaces; ties in device and interface order (the input order).
    interfaces.sort_by_key(|t| std::cmp::Reverse(t.rx_bytes.saturating_add(t.tx_bytes)));
    let all_interfaces = interfaces.len();
    interfaces.truncate(MAX_INTERFACES);
    if !interfaces.is_empty() {
        let rows = interfaces
            .iter()
            .map(|t| {
                vec![
                    Cell::Text(cx.clean(&t.device)),
                    Cell::Text(cx.or_none(&t.interface)),
                    Cell::Text(s.bytes(t.rx_bytes)),
                    Cell::Text(s.bytes(t.tx_bytes)),
                ]
            })
            .collect();
        if all_interfaces > MAX_INTERFACES {
            cx.muted(
                s.interfaces_limited.replace("{shown}", &s.int(MAX_INTERFACES as u64)).replace("{total}", &s.int(all_interfaces as u64)),
            );
        }
        cx.table(
            s.per_interface,
            vec![
                col(s.col_device, 3.0, Align::Left, 2),
                col(s.col_interface, 2.0, Align::Left, 2),
                col(s.col_received, 1.5, Align::Right, 1),
                col(s.col_sent, 1.5, Align::Right, 1),
            ],
            rows,
        );
    }
    let mut categories: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    for t in &data.traffic {
        if let Some(c) = &t.category {
            let e = categories.entry(c.as_str()).or_default();
            e.0 = e.0.saturating_add(t.rx_bytes);
            e.1 = e.1.saturating_add(t.tx_bytes);
        }
    }
    if !categories.is_empty() {
        let mut cats: Vec<(&str, (u64, u64))> = categories.into_iter().collect();
        cats.sort_by(|a, b| (b.1.0.saturating_add(b.1.1)).cmp(&a.1.0.saturating_add(a.1.1)).then_with(|| a.0.cmp(b.0)));
        let rows =
            cats.iter().map(|(c, (rx, tx))| vec![Cell::Text(cx.or_none(c)), Cell::Text(s.bytes(*rx)), Cell::Text(s.bytes(*tx))]).collect();
        cx.table(
            s.per_category,
            vec![
                col(s.col_category, 5.0, Align::Left, 2),
                col(s.col_received, 1.5, Align::Right, 1),
                col(s.col_sent, 1.5, Align::Right, 1),
            ],
            rows,
        );
    }
}

fn mma(s: &Strings, stat: Option<Stat>) -> String {
    match stat {
        Some(st) => format!("{} / {} / {}", s.num(st.min, 0), s.num(st.avg, 0), s.num(st.max, 0)),
        None => s.none.to_owned(),
    }
}

/// The fullest mount of a device (by its highest value) and its figures.
fn fullest_disk(d: &DeviceReport) -> Option<&(String, Stat)> {
    d.disks.iter().max_by(|a, b| a.1.max.total_cmp(&b.1.max).then_with(|| b.0.cmp(&a.0)))
}

fn performance(cx: &mut Ctx<'_>, data: &ReportData, table: bool, charts: bool) {
    let s = cx.s;
    cx.h1(s.performance);
    if data.devices.is_empty() {
        cx.line(s.no_devices.to_owned());
        return;
    }
    if table {
        cx.muted(s.performance_intro.to_owned());
        let rows = data
            .devices
            .iter()
            .map(|d| {
                let disk = match fullest_disk(d) {
                    Some((mount, st)) => {
                        format!("{} ({})", mma(s, Some(*st)), cx.clean(mount))
                    }
                    None => s.none.to_owned(),
                };
                vec![
                    Cell::Lamp(d.light, cx.clean(&d.device)),
                    Cell::Text(mma(s, d.cpu_stat)),
                    Cell::Text(mma(s, d.memory_stat)),
                    Cell::Text(disk),
                ]
            })
            .collect();
        cx.table(
            "",
            vec![
                col(s.col_device, 3.2, Align::Left, 2),
                col(s.col_cpu, 1.6, Align::Left, 1),
                col(s.col_memory, 1.6, Align::Left, 1),
                col(s.col_disk, 2.6, Align::Left, 2),
            ],
            rows,
        );
    }
    if !charts {
        return;
    }
    // The busiest devices by peak CPU, then peak memory; ties by id (the input order).
    let mut order: Vec<&DeviceReport> = data.devices.iter().collect();
    let load = |d: &DeviceReport| {
        let c = d.cpu_stat.map_or(-1.0, |x| x.max);
        let m = d.memory_stat.map_or(-1.0, |x| x.max);
        (c, m)
    };
    order.sort_by(|a, b| {
        let (la, lb) = (load(a), load(b));
        lb.0.total_cmp(&la.0).then(lb.1.total_cmp(&la.1))
    });
    order.truncate(MAX_CHARTS);
    cx.body.keep(Gap(3.0));
    cx.h2(s.charts);
    if data.devices.len() > MAX_CHARTS {
        cx.muted(s.charts_limited.replace("{shown}", &s.int(MAX_CHARTS as u64)).replace("{total}", &s.int(data.devices.len() as u64)));
    }
    let ticks = cx.zone.ticks(s, data.period_start_ms, data.period_end_ms);
    for d in order {
        let subtitle = [&d.hostname, &d.model, &d.os]
            .into_iter()
            .map(|v| cx.clean(v))
            .filter(|v| !v.trim().is_empty())
            .collect::<Vec<_>>()
            .join(" \u{00B7} ");
        let title = cx.clean(&d.device);
        cx.body.keep(DeviceChart {
            title,
            subtitle,
            light: d.light,
            cpu: d.cpu.clone(),
            memory: d.memory.clone(),
            start_ms: data.period_start_ms,
            end_ms: data.period_end_ms,
            ticks: ticks.clone(),
            names: [s.cpu.to_owned(), s.memory.to_owned()],
            no_data: s.no_data.to_owned(),
        });
        cx.body.keep(Gap(5.0));
    }
}

fn devices(cx: &mut Ctx<'_>, data: &ReportData) {
    let s = cx.s;
    cx.h1(s.devices);
    if data.devices.is_empty() {
        cx.line(s.no_devices.to_owned());
        return;
    }
    let tenant = cx.clean(&data.tenant);
    let rows = data
        .devices
        .iter()
        .map(|d| {
            let model = match d.license.as_ref().map(|l| l.model.as_str()) {
                Some(m) if !m.trim().is_empty() && d.model.trim().is_empty() => cx.clean(m),
                _ => cx.or_none(&d.model),
            };
            let (licensed, expiry) = match &d.license {
                Some(l) if l.unknown_reason.is_some() => (s.none.to_owned(), s.none.to_owned()),
                Some(l) => (
                    if l.licensed { s.yes } else { s.no }.to_owned(),
                    l.expires.map(|e| cx.zone.fmt_date(s, e)).unwrap_or_else(|| s.none.to_owned()),
                ),
                None => (s.none.to_owned(), s.none.to_owned()),
            };
            let host = cx.or_none(&d.hostname);
            vec![
                Cell::Lamp(d.light, cx.clean(&d.device)),
                Cell::Text(host),
                Cell::Text(model),
                Cell::Text(tenant.clone()),
                Cell::Text(licensed),
                Cell::Text(expiry),
                Cell::Text(cx.when(d.last_seen_ms)),
                Cell::Text(cx.or_none(&d.agent_version)),
            ]
        })
        .collect();
    cx.table(
        "",
        vec![
            col(s.col_device, 2.2, Align::Left, 2),
            col(s.col_hostname, 2.0, Align::Left, 2),
            col(s.col_model, 1.2, Align::Left, 2),
            col(s.col_tenant, 1.2, Align::Left, 2),
            col(s.col_licensed, 1.4, Align::Left, 1),
            col(s.col_expiry, 1.7, Align::Left, 1),
            col(s.col_last_seen, 2.3, Align::Left, 2),
            col(s.col_agent, 1.0, Align::Left, 1),
        ],
        rows,
    );
}

fn availability(cx: &mut Ctx<'_>, data: &ReportData) {
    let s = cx.s;
    cx.body.keep(Gap(4.0));
    cx.h1(s.availability);
    if data.devices.is_empty() {
        cx.line(s.no_devices.to_owned());
        return;
    }
    // A device new in the period is listed even when fully covered: its coverage counts only
    // from its first contact, which the coverage column says.
    let with_gaps: Vec<&DeviceReport> =
        data.devices.iter().filter(|d| !d.gaps.is_empty() || d.coverage.is_none_or(|c| c < 1.0) || data.new_since(d).is_some()).collect();
    if with_gaps.is_empty() {
        cx.line(s.all_covered.to_owned());
        return;
    }
    cx.line(s.gaps_counts.replace("{gaps}", &s.int(with_gaps.len() as u64)).replace("{total}", &s.int(data.devices.len() as u64)));
    let rows = with_gaps
        .iter()
        .map(|d| {
            let longest = d.gaps.iter().map(|g| g.1.saturating_sub(g.0)).max();
            vec![
                Cell::Lamp(d.light, cx.clean(&d.device)),
                Cell::Text(coverage_cell(cx, data, d)),
                Cell::Text(s.int(d.gaps.len() as u64)),
                Cell::Text(longest.map(|l| s.duration(l)).unwrap_or_else(|| s.none.to_owned())),
                Cell::Text(cx.when(d.last_seen_ms)),
            ]
        })
        .collect();
    cx.table(
        "",
        vec![
            col(s.col_device, 3.0, Align::Left, 2),
            col(s.col_coverage, 1.6, Align::Right, 3),
            col(s.col_gaps, 1.0, Align::Right, 1),
            col(s.col_longest_gap, 1.5, Align::Right, 1),
            col(s.col_last_seen, 2.0, Align::Left, 2),
        ],
        rows,
    );
}

/// A device's coverage, with the mark of a device new in the period: `100.0 % (new since …)`.
fn coverage_cell(cx: &Ctx<'_>, data: &ReportData, d: &DeviceReport) -> String {
    let s = cx.s;
    let pct = d.coverage.map(|c| s.pct(c * 100.0)).unwrap_or_else(|| s.none.to_owned());
    match data.new_since(d) {
        Some(first) => format!("{pct} ({})", catalogue::new_since(first, s.lang, cx.zone.tz())),
        None => pct,
    }
}

fn recommendations(cx: &mut Ctx<'_>, data: &ReportData, options: &ReportOptions) {
    let s = cx.s;
    cx.h1(s.recommendations);
    if data.findings.is_empty() {
        cx.line(s.no_findings.to_owned());
        return;
    }
    let lang = options.lang;
    let rows = data
        .findings
        .iter()
        .map(|f: &Finding| {
            let evidence = catalogue::evidence(f, lang, cx.zone.tz());
            vec![
                Cell::Lamp(f.level, s.light(f.level).to_owned()),
                Cell::Text(match &f.device {
                    Some(d) => cx.clean(d),
                    None => s.tenant_wide.to_owned(),
                }),
                Cell::Text(s.service(f.service()).to_owned()),
                Cell::Text(cx.clean(&evidence)),
                Cell::Text(cx.clean(&catalogue::recommendation(f, lang))),
                Cell::Text(f.change.map_or(s.none, |c| s.change(c)).to_owned()),
            ]
        })
        .collect();
    cx.table("", recommendation_columns(s), rows);
}

/// The columns of the table of all recommendations.
pub(crate) fn recommendation_columns(s: &Strings) -> Vec<Column> {
    vec![
        col(s.col_level, 1.5, Align::Left, 2),
        col(s.col_device, 1.5, Align::Left, 3),
        col(s.col_service, 1.7, Align::Left, 2),
        col(s.col_evidence, 2.9, Align::Left, 8),
        col(s.col_recommendation, 2.9, Align::Left, 8),
        col(s.col_change, 1.4, Align::Left, 2),
    ]
}

fn appendix(cx: &mut Ctx<'_>, data: &ReportData, options: &ReportOptions) {
    let s = cx.s;
    cx.h1(s.appendix);
    cx.h2(s.definitions);
    cx.body.keep(Facts { rows: s.defs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(), label_width: 52.0 });
    cx.body.keep(Gap(6.0));
    cx.h2(s.manifest);
    let period = format!("{} \u{2013} {}", cx.zone.fmt_datetime(s, data.period_start_ms), cx.zone.fmt_datetime(s, data.period_end_ms));
    let rows = vec![
        (s.data_hash.to_owned(), super::data_hash(data)),
        (s.rule_version.to_owned(), cx.clean(&data.rule_version)),
        (s.period.to_owned(), period),
        (s.time_zone.to_owned(), cx.clean(&data.time_zone)),
        (s.language.to_owned(), format!("{} ({})", s.language_name, options.lang.code())),
        (s.sections.to_owned(), options.widgets.names()),
        (s.generated_at.to_owned(), cx.zone.fmt_datetime(s, data.generated_at_ms)),
    ];
    cx.body.keep(Facts { rows, label_width: 52.0 });
}

/// An error and its sources, as one line.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        source = inner.source();
    }
    s
}
