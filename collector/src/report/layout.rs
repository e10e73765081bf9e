//! The report's pages: cover, summary with findings, device table, one chart per device.
//!
//! All input text passes through the [`Sanitizer`] while the elements are built, so by the time
//! the fonts are cut down to the characters in use, every character is known.

use genpdf::Document;
use genpdf::elements::LinearLayout;
use genpdf::style::Style;

use super::chart::DeviceChart;
use super::elements::{self, Band, Facts, Footer, Gap, LampBlock, MUTED, Para};
use super::fonts::Coverage;
use super::strings::{Lang, Strings};
use super::table::{Align, Cell, Column, Table};
use super::text::Sanitizer;
use super::zone::ReportZone;
use super::{ReportData, ReportError, pdf};

/// Body font size in pt.
const BODY_SIZE: u8 = 10;

fn col(title: &str, weight: f64, align: Align, max_lines: usize) -> Column {
    Column { title: title.to_owned(), weight, align, max_lines }
}

/// Renders `data` in `lang` to PDF bytes.
pub(crate) fn render(data: &ReportData, lang: Lang) -> Result<Vec<u8>, ReportError> {
    let s = Strings::get(lang);
    let coverage = Coverage::new()?;
    let mut san = Sanitizer::new(&coverage);
    san.note(&s.all_text());
    let zone = ReportZone::new(&data.time_zone);
    let score = data.score.min(100);

    let tenant = san.clean(&data.tenant);
    let period = {
        let dates = zone.fmt_period(s, data.period_start_ms, data.period_end_ms);
        let label = san.clean(&data.period_label);
        if label.trim().is_empty() { dates } else { format!("{dates} ({label})") }
    };
    let zone_name = san.clean(&data.time_zone);
    let mut body = LinearLayout::vertical();

    // Cover.
    body.push(Band { label: s.product.to_owned() });
    body.push(Gap(22.0));
    body.push(Para::new(s.title.to_owned(), Style::new().bold().with_font_size(28), 2, 4.0));
    body.push(Para::new(tenant.clone(), Style::new().with_font_size(16).with_color(MUTED), 3, 12.0));
    let mut facts = vec![
        (s.tenant.to_owned(), tenant.clone()),
        (s.period.to_owned(), period),
        (s.time_zone.to_owned(), zone_name.clone()),
        (s.generated_at.to_owned(), zone.fmt_datetime(s, data.generated_at_ms)),
    ];
    if zone.fallback {
        facts.push((String::new(), san.clean(&s.unknown_zone_note(&data.time_zone))));
    }
    body.push(Facts { rows: facts, label_width: 32.0 });
    body.push(Gap(16.0));
    body.push(LampBlock {
        light: data.light,
        radius: 16.0,
        lines: vec![s.light(data.light).to_owned(), s.overall.to_owned(), format!("{} {score} / 100", s.score)],
    });
    body.push(elements::page_break());

    // Summary.
    body.push(Para::new(s.summary.to_owned(), Style::new().bold().with_font_size(18), 1, 4.0));
    body.push(LampBlock {
        light: data.light,
        radius: 7.0,
        lines: vec![
            s.light(data.light).to_owned(),
            format!("{} {score} / 100", s.score),
            s.counts(data.devices.len(), data.findings.len()),
        ],
    });
    body.push(Gap(6.0));
    if data.findings.is_empty() {
        body.push(Para::new(s.findings.to_owned(), Style::new().bold().with_font_size(13), 1, 2.0));
        body.push(Para::new(s.no_findings.to_owned(), Style::new(), 3, 8.0));
    } else {
        let rows = data
            .findings
            .iter()
            .map(|f| {
                vec![
                    Cell::Lamp(f.level, s.light(f.level).to_owned()),
                    Cell::Text(match &f.device {
                        Some(d) => san.clean(d),
                        None => s.tenant_wide.to_owned(),
                    }),
                    Cell::Text(san.clean(&f.service)),
                    Cell::Text(san.clean(&f.evidence)),
                    Cell::Text(san.clean(&f.recommendation)),
                ]
            })
            .collect();
        body.push(Table {
            heading: s.findings.to_owned(),
            columns: vec![
                col(s.col_level, 1.5, Align::Left, 2),
                col(s.col_device, 1.6, Align::Left, 3),
                col(s.col_service, 1.5, Align::Left, 2),
                col(s.col_evidence, 3.2, Align::Left, 8),
                col(s.col_recommendation, 3.0, Align::Left, 8),
            ],
            rows,
            next: 0,
        });
        body.push(Gap(8.0));
    }

    // Device table.
    if data.devices.is_empty() {
        body.push(Para::new(s.devices.to_owned(), Style::new().bold().with_font_size(13), 1, 2.0));
        body.push(Para::new(s.no_devices.to_owned(), Style::new(), 2, 4.0));
    } else {
        let rows = data
            .devices
            .iter()
            .map(|d| {
                let last_seen = match d.last_seen_ms {
                    Some(ms) => zone.fmt_datetime_short(s, ms),
                    None => s.none.to_owned(),
                };
                let or_none = |v: String| {
                    if v.trim().is_empty() { s.none.to_owned() } else { v }
                };
                vec![
                    Cell::Text(san.clean(&d.device)),
                    Cell::Text(or_none(san.clean(&d.hostname))),
                    Cell::Text(or_none(san.clean(&d.model))),
                    Cell::Text(or_none(san.clean(&d.os))),
                    Cell::Text(or_none(san.clean(&d.agent_version))),
                    Cell::Text(last_seen),
                    Cell::Text(d.points.to_string()),
                    Cell::Lamp(d.light, format!("{} ({})", s.light(d.light), d.score.min(100))),
                ]
            })
            .collect();
        body.push(Table {
            heading: s.devices.to_owned(),
            columns: vec![
                col(s.col_device, 1.5, Align::Left, 2),
                col(s.col_hostname, 1.9, Align::Left, 2),
                col(s.col_model, 1.1, Align::Left, 2),
                col(s.col_os, 1.1, Align::Left, 2),
                col(s.col_agent, 0.8, Align::Left, 1),
                col(s.col_last_seen, 1.8, Align::Left, 2),
                col(s.col_points, 0.9, Align::Right, 1),
                col(s.col_light, 2.2, Align::Left, 2),
            ],
            rows,
            next: 0,
        });

        // One chart per device.
        body.push(elements::page_break());
        body.push(Para::new(s.performance.to_owned(), Style::new().bold().with_font_size(18), 1, 4.0));
        let ticks = zone.ticks(s, data.period_start_ms, data.period_end_ms);
        for d in &data.devices {
            let subtitle = [&d.hostname, &d.model, &d.os]
                .into_iter()
                .map(|v| san.clean(v))
                .filter(|v| !v.trim().is_empty())
                .collect::<Vec<_>>()
                .join(" \u{00B7} ");
            body.push(DeviceChart {
                title: san.clean(&d.device),
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
            body.push(Gap(5.0));
        }
    }

    let family = coverage.family(san.used())?;
    let mut doc = Document::new(family);
    doc.set_title(s.title);
    // No ICC profile and no XMP packet: both are large, and XMP carries its own random id
    // and clock-based dates.
    doc.set_minimal_conformance();
    doc.set_font_size(BODY_SIZE);
    doc.set_page_decorator(Footer {
        label: format!("{} \u{00B7} {} \u{00B7} {}", s.product, s.title, tenant),
        page_label: Box::new(move |n| s.page_no(n)),
        page: 0,
    });
    doc.push(body);
    let mut raw = Vec::new();
    doc.render(&mut raw).map_err(|e| ReportError::Render(error_chain(&e)))?;
    pdf::finalize(&raw, data.generated_at_ms)
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
