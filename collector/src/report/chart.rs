//! The per-device CPU and memory line chart, a custom genpdf element drawn with
//! `Area::draw_line`.
//!
//! A week of 1-minute samples is 10,080 points per series, far more than the ~350 columns
//! the chart has at print resolution. [`downsample`] keeps the minimum and the maximum of each
//! column, so spikes survive, and breaks the line where the device sent nothing for a while.

use genpdf::error::Error as PdfError;
use genpdf::render::Area;
use genpdf::style::{Color, Style};
use genpdf::{Context, Element, Mm, Position, RenderResult};

use super::elements::{self, INK, MUTED, RULE, done, line, next_page, print, width};
use super::flow::Block;
use super::text;
use crate::risk::Light;

/// CPU series colour.
pub(crate) const CPU_COLOR: Color = Color::Rgb(37, 99, 235);
/// Memory series colour.
pub(crate) const MEMORY_COLOR: Color = Color::Rgb(217, 119, 6);

/// Columns per mm of plot width: one column every 0.5 mm.
const COLUMNS_PER_MM: f64 = 2.0;

/// One continuous run of a series, as (x in 0..=1 across the period, y in 0..=100).
pub(crate) type Segment = Vec<(f64, f64)>;

/// Reduces `points` to at most two per column over `[start_ms, end_ms)`, split into segments
/// wherever the data has a gap. Points outside the period and values that are not finite are
/// skipped; values are clamped to 0–100. Order of the input does not matter for the result's
/// shape, only for gap detection.
pub(crate) fn downsample(points: &[(i64, f64)], start_ms: i64, end_ms: i64, columns: usize) -> Vec<Segment> {
    if end_ms <= start_ms || columns == 0 {
        return Vec::new();
    }
    let span = i128::from(end_ms) - i128::from(start_ms);
    let cols = i128::try_from(columns).unwrap_or(i128::MAX);
    #[derive(Clone, Copy)]
    struct Col {
        min: (i64, f64),
        max: (i64, f64),
        first: i64,
        last: i64,
    }
    let mut col: Vec<Option<Col>> = vec![None; columns];
    let mut deltas = Vec::new();
    let mut prev: Option<i64> = None;
    for &(t, v) in points {
        if t < start_ms || t >= end_ms || !v.is_finite() {
            continue;
        }
        if let Some(p) = prev
            && t > p
        {
            deltas.push(i128::from(t) - i128::from(p));
        }
        prev = Some(t);
        let v = v.clamp(0.0, 100.0);
        let idx = ((i128::from(t) - i128::from(start_ms)) * cols / span).clamp(0, cols - 1);
        let Some(slot) = usize::try_from(idx).ok().and_then(|i| col.get_mut(i)) else {
            continue;
        };
        let c = slot.get_or_insert(Col { min: (t, v), max: (t, v), first: t, last: t });
        if v < c.min.1 {
            c.min = (t, v);
        }
        if v > c.max.1 {
            c.max = (t, v);
        }
        c.first = c.first.min(t);
        c.last = c.last.max(t);
    }
    // A gap is more than five typical sample intervals, and never less than 2.5 columns: at
    // this resolution a shorter gap cannot be seen anyway.
    let typical = if deltas.is_empty() {
        0
    } else {
        let mid = deltas.len() / 2;
        *deltas.select_nth_unstable(mid).1
    };
    let gap = (typical * 5).max(span * 5 / (cols * 2));
    let x = |t: i64| ((i128::from(t) - i128::from(start_ms)) as f64 / span as f64).clamp(0.0, 1.0);

    let mut segments: Vec<Segment> = Vec::new();
    let mut current: Segment = Vec::new();
    let mut last_t: Option<i64> = None;
    for c in col.iter().flatten() {
        if let Some(l) = last_t
            && i128::from(c.first) - i128::from(l) > gap
            && !current.is_empty()
        {
            segments.push(std::mem::take(&mut current));
        }
        let (a, b) = if c.min.0 <= c.max.0 { (c.min, c.max) } else { (c.max, c.min) };
        current.push((x(a.0), a.1));
        if b.0 != a.0 || b.1 != a.1 {
            current.push((x(b.0), b.1));
        }
        last_t = Some(c.last);
    }
    if !current.is_empty() {
        segments.push(current);
    }
    segments
}

/// One device's chart: a heading with its lamp, then CPU and memory over the period.
pub(crate) struct DeviceChart {
    /// Device id (sanitized).
    pub(crate) title: String,
    /// Host name, model and OS (sanitized), shown after the id.
    pub(crate) subtitle: String,
    /// The device's light.
    pub(crate) light: Light,
    /// CPU samples as stored.
    pub(crate) cpu: Vec<(i64, f64)>,
    /// Memory samples as stored.
    pub(crate) memory: Vec<(i64, f64)>,
    /// Period start, Unix ms.
    pub(crate) start_ms: i64,
    /// Period end (exclusive), Unix ms.
    pub(crate) end_ms: i64,
    /// X axis ticks: (Unix ms, label).
    pub(crate) ticks: Vec<(i64, String)>,
    /// Legend names: CPU, memory.
    pub(crate) names: [String; 2],
    /// Text for an empty chart or series.
    pub(crate) no_data: String,
}

/// Total height of a [`DeviceChart`] in mm.
const CHART_H: f64 = 62.0;
/// Heading line height in mm.
const HEAD_H: f64 = 8.0;
/// Left room for y labels, bottom room for x labels, in mm.
const Y_LABELS: f64 = 11.0;
const X_LABELS: f64 = 6.0;
/// Room above the plot for the legend, in mm.
const LEGEND_H: f64 = 6.0;

impl Block for DeviceChart {
    fn start_height(&self, _cache: &genpdf::fonts::FontCache, _style: Style, _width: f64) -> f64 {
        CHART_H
    }
}

impl Element for DeviceChart {
    fn render(&mut self, context: &Context, area: Area<'_>, style: Style) -> Result<RenderResult, PdfError> {
        if f64::from(area.size().height) < CHART_H {
            return Ok(next_page());
        }
        let cache = &context.font_cache;
        let w = f64::from(area.size().width);

        // Heading: lamp, id in bold, the rest muted, all on one line.
        let head = style.and(Style::new().bold().with_font_size(11).with_color(INK));
        let sub = style.and(Style::new().with_font_size(9).with_color(MUTED));
        elements::lamp(&area, 2.2, 3.2, 2.2, self.light);
        let title = text::fit(cache, head, &self.title, Mm::from((w - 8.0) * 0.6));
        print(&area, cache, 7.0, 0.5, head, &title)?;
        let tw = width(cache, head, &title);
        let sx = 7.0 + tw + 3.0;
        let subtitle = text::fit(cache, sub, &self.subtitle, Mm::from((w - sx).max(0.0)));
        print(&area, cache, sx, 1.4, sub, &subtitle)?;

        // Plot rectangle.
        let (px, py) = (Y_LABELS, HEAD_H + LEGEND_H);
        let pw = w - Y_LABELS - 2.0;
        let ph = CHART_H - HEAD_H - LEGEND_H - X_LABELS - 2.0;
        let tick = style.and(Style::new().with_font_size(7).with_color(MUTED));
        let th = elements::line_height(cache, tick);
        for pct in [0.0, 25.0, 50.0, 75.0, 100.0] {
            let y = py + ph * (1.0 - pct / 100.0);
            line(&area, (px, y), (px + pw, y), RULE);
            let label = format!("{pct:.0} %");
            let lw = width(cache, tick, &label);
            print(&area, cache, px - 1.5 - lw, y - th / 2.0, tick, &label)?;
        }
        let span = (i128::from(self.end_ms) - i128::from(self.start_ms)).max(1) as f64;
        let mut free_from = f64::MIN;
        for (t, label) in &self.ticks {
            let x = px + pw * ((i128::from(*t) - i128::from(self.start_ms)) as f64 / span);
            if !(px..=px + pw).contains(&x) {
                continue;
            }
            line(&area, (x, py), (x, py + ph + 1.0), RULE);
            let lw = width(cache, tick, label);
            let lx = (x - lw / 2.0).max(px - 2.0);
            if lx >= free_from && lx + lw <= px + pw + 2.0 {
                print(&area, cache, lx, py + ph + 1.5, tick, label)?;
                free_from = lx + lw + 2.0;
            }
        }
        line(&area, (px, py), (px, py + ph), RULE);

        // Series and legend.
        let columns = (pw * COLUMNS_PER_MM).max(1.0) as usize;
        let series = [
            (CPU_COLOR, downsample(&self.cpu, self.start_ms, self.end_ms, columns)),
            (MEMORY_COLOR, downsample(&self.memory, self.start_ms, self.end_ms, columns)),
        ];
        let legend = style.and(Style::new().with_font_size(8).with_color(INK));
        let mut lx = px;
        for ((color, segs), name) in series.iter().zip(&self.names) {
            let label = if segs.is_empty() { format!("{name} ({})", self.no_data) } else { name.clone() };
            let ly = HEAD_H + LEGEND_H / 2.0 - 0.5;
            elements::fill_rect(&area, lx, ly - 0.6, 5.0, 1.2, *color);
            print(&area, cache, lx + 6.5, ly - elements::line_height(cache, legend) / 2.0, legend, &label)?;
            lx += 6.5 + width(cache, legend, &label) + 6.0;
        }
        let to_pos = |(x, y): (f64, f64)| Position::new(Mm::from(px + pw * x), Mm::from(py + ph * (1.0 - y / 100.0)));
        for (color, segs) in &series {
            for seg in segs {
                if let [only] = seg.as_slice() {
                    let p = to_pos(*only);
                    dot(&area, f64::from(p.x), f64::from(p.y), *color);
                } else {
                    area.draw_line(seg.iter().copied().map(to_pos).collect(), Style::new().with_color(*color));
                }
            }
        }
        if series.iter().all(|(_, s)| s.is_empty()) {
            let st = style.and(Style::new().with_font_size(10).with_color(MUTED));
            let nw = width(cache, st, &self.no_data);
            let lh = elements::line_height(cache, st);
            print(&area, cache, px + (pw - nw) / 2.0, py + (ph - lh) / 2.0, st, &self.no_data)?;
        }
        Ok(done(&area, CHART_H))
    }
}

/// A small disc for a lone sample that has no neighbour to draw a line to.
fn dot(area: &Area<'_>, x: f64, y: f64, color: Color) {
    let r: f64 = 0.6;
    let mut dy = -r;
    while dy <= r {
        let half = (r * r - dy * dy).max(0.0).sqrt();
        line(area, (x - half, y + dy), (x + half.max(0.05), y + dy), color);
        dy += elements::FILL_STEP;
    }
}
