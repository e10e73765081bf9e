//! Drawing primitives and the simple report elements.
//!
//! genpdf 0.2 strokes 1 pt lines and fills nothing, so filled shapes (lamps, bands) are dense
//! horizontal strokes [`FILL_STEP`] apart: the 0.35 mm pen overlaps its neighbours and the
//! shape comes out solid on screen and in print.
//!
//! Every element here has a bounded height and moves whole to the next page when it does not
//! fit, except [`Para`], which continues line by line. Each says how much room it needs to
//! start ([`Block`]), so headings can be kept with it (`flow`).

use genpdf::error::Error as PdfError;
use genpdf::fonts::FontCache;
use genpdf::render::Area;
use genpdf::style::{Color, Style};
use genpdf::{Context, Element, Margins, Mm, PageDecorator, Position, RenderResult, Size};
use image::GenericImageView as _;

use super::flow::Block;
use super::text;
use crate::risk::Light;

/// Distance between the strokes of a filled shape, in mm.
pub(crate) const FILL_STEP: f64 = 0.25;
/// Half the pen width (1 pt), in mm: strokes are inset by this so fills keep their size.
const HALF_PEN: f64 = 0.176;

/// Body text.
pub(crate) const INK: Color = Color::Rgb(33, 37, 41);
/// Secondary text: labels, captions, axis ticks.
pub(crate) const MUTED: Color = Color::Rgb(108, 117, 125);
/// Chart grid and table rules.
pub(crate) const RULE: Color = Color::Rgb(206, 212, 218);
/// Table header background.
pub(crate) const HEADER_BG: Color = Color::Rgb(233, 236, 239);
/// White text on the band.
pub(crate) const WHITE: Color = Color::Rgb(255, 255, 255);

/// The colour of a light's lamp.
pub(crate) fn light_color(light: Light) -> Color {
    match light {
        Light::Red => Color::Rgb(220, 38, 38),
        Light::Yellow => Color::Rgb(234, 179, 8),
        Light::Green => Color::Rgb(22, 163, 74),
        Light::Grey => Color::Rgb(156, 163, 175),
    }
}

/// A darker edge for a lamp, so yellow and grey stand out on white.
fn edge_color(light: Light) -> Color {
    match light {
        Light::Red => Color::Rgb(153, 27, 27),
        Light::Yellow => Color::Rgb(161, 98, 7),
        Light::Green => Color::Rgb(21, 128, 61),
        Light::Grey => Color::Rgb(107, 114, 128),
    }
}

fn mm(v: f64) -> Mm {
    Mm::from(v)
}

fn pos(x: f64, y: f64) -> Position {
    Position::new(mm(x), mm(y))
}

/// A straight line from (x1, y1) to (x2, y2), in mm from the area's top left corner.
pub(crate) fn line(area: &Area<'_>, (x1, y1): (f64, f64), (x2, y2): (f64, f64), color: Color) {
    area.draw_line(vec![pos(x1, y1), pos(x2, y2)], Style::new().with_color(color));
}

/// A solid rectangle.
pub(crate) fn fill_rect(area: &Area<'_>, x: f64, y: f64, w: f64, h: f64, color: Color) {
    let (x1, x2) = (x + HALF_PEN, x + w - HALF_PEN);
    let (top, bottom) = (y + HALF_PEN, y + h - HALF_PEN);
    if x2 <= x1 || bottom <= top {
        line(area, (x, y + h / 2.0), (x + w, y + h / 2.0), color);
        return;
    }
    let mut yy = top;
    while yy < bottom {
        line(area, (x1, yy), (x2, yy), color);
        yy += FILL_STEP;
    }
    line(area, (x1, bottom), (x2, bottom), color);
}

/// A traffic-light lamp: a filled disc with a darker rim, centred on (cx, cy).
pub(crate) fn lamp(area: &Area<'_>, cx: f64, cy: f64, r: f64, light: Light) {
    let fill = light_color(light);
    let inner = (r - HALF_PEN).max(0.0);
    let mut dy = -inner;
    while dy <= inner {
        let half = (inner * inner - dy * dy).max(0.0).sqrt();
        line(area, (cx - half, cy + dy), (cx + half, cy + dy), fill);
        dy += FILL_STEP;
    }
    let rim = (r - HALF_PEN).max(0.0);
    let steps = 48;
    let ring: Vec<Position> = (0..=steps)
        .map(|i| {
            let a = f64::from(i) / f64::from(steps) * std::f64::consts::TAU;
            pos(cx + rim * a.cos(), cy + rim * a.sin())
        })
        .collect();
    area.draw_line(ring, Style::new().with_color(edge_color(light)));
}

/// Prints one line of text whose top is at (x, y). Returns false if it did not fit.
pub(crate) fn print(area: &Area<'_>, cache: &FontCache, x: f64, y: f64, style: Style, s: &str) -> Result<bool, PdfError> {
    if s.is_empty() {
        return Ok(true);
    }
    area.print_str(cache, pos(x, y), style, s)
}

/// Width of `s` in mm.
pub(crate) fn width(cache: &FontCache, style: Style, s: &str) -> f64 {
    f64::from(style.str_width(cache, s))
}

/// Line height of `style` in mm.
pub(crate) fn line_height(cache: &FontCache, style: Style) -> f64 {
    f64::from(style.line_height(cache))
}

/// The result of an element that was not drawn because it needs a fresh page.
pub(crate) fn next_page() -> RenderResult {
    RenderResult { size: Size::new(0, 0), has_more: true }
}

/// The result of an element that drew `h` mm of the area.
pub(crate) fn done(area: &Area<'_>, h: f64) -> RenderResult {
    RenderResult { size: Size::new(area.size().width, mm(h)), has_more: false }
}

/// Wrapped text that continues on the next page if it must.
pub(crate) struct Para {
    text: String,
    style: Style,
    max_lines: usize,
    space_after: f64,
    /// Whether it is a heading or an intro line, kept with what follows.
    kept: bool,
    lines: Option<Vec<String>>,
    next: usize,
}

impl Para {
    /// A paragraph of `text` (already sanitized) in `style`, at most `max_lines` lines, followed
    /// by `space_after` mm.
    pub(crate) fn new(text: String, style: Style, max_lines: usize, space_after: f64) -> Para {
        Para { text, style, max_lines, space_after, kept: false, lines: None, next: 0 }
    }

    /// The same paragraph, kept on the page of what follows it (a heading, an intro line).
    pub(crate) fn kept_with_next(self) -> Para {
        Para { kept: true, ..self }
    }
}

impl Block for Para {
    /// All of its lines: a heading or intro line is not split from its block.
    fn start_height(&self, cache: &FontCache, style: Style, width: f64) -> f64 {
        let style = style.and(self.style);
        let lines = text::wrap(cache, style, &self.text, mm(width), self.max_lines).len();
        lines as f64 * line_height(cache, style) + self.space_after
    }

    fn keep_with_next(&self) -> bool {
        self.kept
    }
}

impl Element for Para {
    fn render(&mut self, context: &Context, area: Area<'_>, style: Style) -> Result<RenderResult, PdfError> {
        let cache = &context.font_cache;
        let style = style.and(self.style);
        let lines = self.lines.get_or_insert_with(|| text::wrap(cache, style, &self.text, area.size().width, self.max_lines));
        let lh = line_height(cache, style);
        let mut y = 0.0;
        while let Some(l) = lines.get(self.next) {
            if y + lh > f64::from(area.size().height) || !print(&area, cache, 0.0, y, style, l)? {
                return Ok(RenderResult { size: Size::new(area.size().width, mm(y)), has_more: true });
            }
            y += lh;
            self.next += 1;
        }
        let h = (y + self.space_after).min(f64::from(area.size().height));
        Ok(done(&area, h))
    }
}

/// Vertical space; at the bottom of a page it takes what is left and no more, at the top of a
/// page nothing (so that a page never starts with a gap, or stays blank before a break).
pub(crate) struct Gap(pub(crate) f64);

impl Element for Gap {
    fn render(&mut self, _context: &Context, area: Area<'_>, _style: Style) -> Result<RenderResult, PdfError> {
        let avail = f64::from(area.size().height);
        let h = if avail >= body_height() - 0.5 { 0.0 } else { self.0.min(avail) };
        Ok(done(&area, h))
    }
}

impl Block for Gap {
    fn start_height(&self, _cache: &FontCache, _style: Style, _width: f64) -> f64 {
        self.0
    }

    /// A gap between a heading and its block stays with the block.
    fn keep_with_next(&self) -> bool {
        true
    }
}

/// Height of the body area of an A4 page under [`Footer`], in mm.
pub(crate) fn body_height() -> f64 {
    let (t, _, b, _) = MARGINS;
    297.0 - t - b - FOOTER_H - 4.0
}

/// The height of a block heading, drawn by [`heading`].
pub(crate) fn heading_height(cache: &FontCache, style: Style, title: &str) -> f64 {
    if title.is_empty() { 0.0 } else { line_height(cache, style.and(heading_style())) + 2.0 }
}

fn heading_style() -> Style {
    Style::new().bold().with_font_size(13).with_color(INK)
}

/// Draws a block heading; elements draw their own so that a heading never stays behind at the
/// bottom of a page while its block moves on.
pub(crate) fn heading(area: &Area<'_>, cache: &FontCache, style: Style, title: &str) -> Result<f64, PdfError> {
    if title.is_empty() {
        return Ok(0.0);
    }
    let st = style.and(heading_style());
    let w = mm(f64::from(area.size().width));
    print(area, cache, 0.0, 0.0, st, &text::fit(cache, st, title, w))?;
    Ok(heading_height(cache, style, title))
}

/// The cover's header bar: a filled bar in the theme's colour with the product name, and the
/// logo at its right end.
pub(crate) struct Band {
    /// Text on the band.
    pub(crate) label: String,
    /// Bar colour.
    pub(crate) color: Color,
    /// Whether the label is white (on a dark bar) or dark.
    pub(crate) dark: bool,
    /// Logo, RGB, drawn inside the bar on its right.
    pub(crate) logo: Option<image::DynamicImage>,
}

/// Height of the cover band in mm.
const BAND_H: f64 = 22.0;

impl Element for Band {
    fn render(&mut self, context: &Context, area: Area<'_>, style: Style) -> Result<RenderResult, PdfError> {
        let h = BAND_H;
        if f64::from(area.size().height) < h {
            return Ok(next_page());
        }
        let w = f64::from(area.size().width);
        fill_rect(&area, 0.0, 0.0, w, h, self.color);
        let ink = if self.dark { WHITE } else { INK };
        let st = style.and(Style::new().bold().with_font_size(18).with_color(ink));
        let lh = line_height(&context.font_cache, st);
        print(&area, &context.font_cache, 6.0, (h - lh) / 2.0, st, &self.label)?;
        if let Some(logo) = &self.logo {
            // The logo fits a box of (h - 6) mm height and half the bar's width, keeping its
            // aspect ratio. printpdf places an image by its lower left corner at `dpi`.
            let (pw, ph) = (f64::from(logo.width()), f64::from(logo.height()));
            let (box_w, box_h) = (w / 2.0, h - 6.0);
            let scale = (box_w / pw).min(box_h / ph);
            let (iw, ih) = (pw * scale, ph * scale);
            let dpi = 25.4 / scale;
            let x = w - 4.0 - iw;
            let y = (h - ih) / 2.0 + ih;
            area.add_image(logo, pos(x, y), genpdf::Scale::new(1.0, 1.0), genpdf::Rotation::default(), Some(dpi));
        }
        Ok(done(&area, h))
    }
}

/// A row of big numbers with a caption under each, in boxes.
pub(crate) struct Tiles {
    /// Heading above the tiles (sanitized); empty for none.
    pub(crate) title: String,
    /// (number, caption) pairs, sanitized.
    pub(crate) tiles: Vec<(String, String)>,
    /// An optional lamp colour per tile (drawn as a bar on the tile's left).
    pub(crate) accents: Vec<Option<Color>>,
}

/// Height of a tile, in mm.
const TILE_H: f64 = 20.0;

impl Block for Tiles {
    fn start_height(&self, cache: &FontCache, style: Style, _width: f64) -> f64 {
        heading_height(cache, style, &self.title) + TILE_H + 3.0
    }
}

impl Element for Tiles {
    fn render(&mut self, context: &Context, area: Area<'_>, style: Style) -> Result<RenderResult, PdfError> {
        let cache = &context.font_cache;
        let top = heading_height(cache, style, &self.title);
        let h = TILE_H;
        if f64::from(area.size().height) < top + h + 3.0 {
            return Ok(next_page());
        }
        heading(&area, cache, style, &self.title)?;
        let mut area = area;
        area.add_offset(pos(0.0, top));
        let n = self.tiles.len().max(1) as f64;
        let gap = 4.0;
        let tw = (f64::from(area.size().width) - gap * (n - 1.0)) / n;
        let big = style.and(Style::new().bold().with_font_size(18).with_color(INK));
        let cap = style.and(Style::new().with_font_size(9).with_color(MUTED));
        for (i, (num, caption)) in self.tiles.iter().enumerate() {
            let x = i as f64 * (tw + gap);
            fill_rect(&area, x, 0.0, tw, h, HEADER_BG);
            if let Some(Some(c)) = self.accents.get(i) {
                fill_rect(&area, x, 0.0, 1.5, h, *c);
            }
            let num = text::fit(cache, big, num, mm(tw - 6.0));
            print(&area, cache, x + 4.0, 2.5, big, &num)?;
            let caption = text::fit(cache, cap, caption, mm(tw - 6.0));
            print(&area, cache, x + 4.0, 12.5, cap, &caption)?;
        }
        Ok(done(&area, top + h + 3.0))
    }
}

/// A grid of small lamps with a label each, e.g. the lights per service.
pub(crate) struct LampGrid {
    /// Heading above the grid (sanitized); empty for none.
    pub(crate) title: String,
    /// (light, label) per cell, sanitized.
    pub(crate) items: Vec<(Light, String)>,
    /// Cells per row.
    pub(crate) columns: usize,
}

/// Height of a row of a [`LampGrid`], in mm.
const GRID_ROW_H: f64 = 8.0;

impl LampGrid {
    /// Height of the grid under its heading, in mm.
    fn grid_height(&self) -> f64 {
        self.items.len().div_ceil(self.columns.max(1)) as f64 * GRID_ROW_H + 2.0
    }
}

impl Block for LampGrid {
    fn start_height(&self, cache: &FontCache, style: Style, _width: f64) -> f64 {
        heading_height(cache, style, &self.title) + self.grid_height()
    }
}

impl Element for LampGrid {
    fn render(&mut self, context: &Context, area: Area<'_>, style: Style) -> Result<RenderResult, PdfError> {
        let cache = &context.font_cache;
        let cols = self.columns.max(1);
        let row_h = GRID_ROW_H;
        let top = heading_height(cache, style, &self.title);
        let h = self.grid_height();
        if f64::from(area.size().height) < top + h {
            return Ok(next_page());
        }
        heading(&area, cache, style, &self.title)?;
        let mut area = area;
        area.add_offset(pos(0.0, top));
        let cw = f64::from(area.size().width) / cols as f64;
        let st = style.and(Style::new().with_font_size(9).with_color(INK));
        let lh = line_height(cache, st);
        for (i, (light, label)) in self.items.iter().enumerate() {
            let (x, y) = ((i % cols) as f64 * cw, (i / cols) as f64 * row_h);
            lamp(&area, x + 2.5, y + row_h / 2.0, 2.5, *light);
            let label = text::fit(cache, st, label, mm(cw - 8.0));
            print(&area, cache, x + 7.0, y + (row_h - lh) / 2.0, st, &label)?;
        }
        Ok(done(&area, top + h))
    }
}

/// A bar chart of counts, e.g. alerts per day, with the largest value labelled.
pub(crate) struct Bars {
    /// Heading above the chart (sanitized); empty for none.
    pub(crate) title: String,
    /// (label under the bar, value) per bar, in order.
    pub(crate) bars: Vec<(String, u64)>,
    /// Bar colour.
    pub(crate) color: Color,
    /// How the largest value is written.
    pub(crate) max_label: String,
}

/// Height of a bar chart under its heading, in mm.
const BARS_H: f64 = 42.0;

impl Block for Bars {
    fn start_height(&self, cache: &FontCache, style: Style, _width: f64) -> f64 {
        heading_height(cache, style, &self.title) + BARS_H + 2.0
    }
}

impl Element for Bars {
    fn render(&mut self, context: &Context, area: Area<'_>, style: Style) -> Result<RenderResult, PdfError> {
        let cache = &context.font_cache;
        let top = heading_height(cache, style, &self.title);
        let h = BARS_H;
        if f64::from(area.size().height) < top + h + 2.0 {
            return Ok(next_page());
        }
        heading(&area, cache, style, &self.title)?;
        let mut area = area;
        area.add_offset(pos(0.0, top));
        let tick = style.and(Style::new().with_font_size(7).with_color(MUTED));
        let th = line_height(cache, tick);
        let (px, py) = (0.0, th + 1.0);
        let pw = f64::from(area.size().width);
        let ph = h - py - th - 3.0;
        let max = self.bars.iter().map(|b| b.1).max().unwrap_or(0).max(1) as f64;
        print(&area, cache, px, 0.0, tick, &self.max_label)?;
        line(&area, (px, py), (px + pw, py), RULE);
        line(&area, (px, py + ph), (px + pw, py + ph), RULE);
        let n = self.bars.len().max(1) as f64;
        let slot = pw / n;
        let bw = (slot * 0.7).max(0.3);
        // Label every k-th bar so that labels do not overlap.
        let widest = self.bars.iter().map(|(l, _)| width(cache, tick, l)).fold(0.0, f64::max);
        let every = ((widest + 2.0) / slot).ceil().max(1.0) as usize;
        for (i, (label, v)) in self.bars.iter().enumerate() {
            let x = px + i as f64 * slot + (slot - bw) / 2.0;
            let bh = ph * (*v as f64) / max;
            if *v > 0 {
                fill_rect(&area, x, py + ph - bh, bw, bh.max(0.4), self.color);
            }
            if i % every == 0 {
                let lw = width(cache, tick, label);
                let lx = (x + bw / 2.0 - lw / 2.0).max(0.0).min(pw - lw);
                print(&area, cache, lx, py + ph + 1.0, tick, label)?;
            }
        }
        Ok(done(&area, top + h + 2.0))
    }
}

/// A big lamp with its light name, score and a caption next to it.
pub(crate) struct LampBlock {
    /// The light shown.
    pub(crate) light: Light,
    /// Lamp radius in mm.
    pub(crate) radius: f64,
    /// Lines to the right of the lamp: heading (bold), then normal lines.
    pub(crate) lines: Vec<String>,
}

impl Element for LampBlock {
    fn render(&mut self, context: &Context, area: Area<'_>, style: Style) -> Result<RenderResult, PdfError> {
        let cache = &context.font_cache;
        let r = self.radius;
        let head = style.and(Style::new().bold().with_font_size(16));
        let body = style.and(Style::new().with_font_size(11).with_color(MUTED));
        let text_h = line_height(cache, head) + line_height(cache, body) * self.lines.len().saturating_sub(1) as f64;
        let h = (2.0 * r).max(text_h) + 2.0;
        if f64::from(area.size().height) < h {
            return Ok(next_page());
        }
        lamp(&area, r + 0.5, h / 2.0, r, self.light);
        let x = 2.0 * r + 6.0;
        let w = Mm::from((f64::from(area.size().width) - x).max(1.0));
        let mut y = (h - text_h) / 2.0;
        for (i, l) in self.lines.iter().enumerate() {
            let st = if i == 0 { head } else { body };
            print(&area, cache, x, y, st, &text::fit(cache, st, l, w))?;
            y += line_height(cache, st);
        }
        Ok(done(&area, h))
    }
}

/// Label/value lines, as on the cover: labels in a fixed column, values wrapped beside them.
pub(crate) struct Facts {
    /// (label, value) pairs, both sanitized.
    pub(crate) rows: Vec<(String, String)>,
    /// Width of the label column in mm.
    pub(crate) label_width: f64,
}

/// Facts' rows as (label lines, value lines).
type FactLines = Vec<(Vec<String>, Vec<String>)>;

impl Facts {
    /// The rows wrapped to `width` mm, with the line height, in the label and value styles.
    fn wrapped(&self, cache: &FontCache, style: Style, width: f64) -> (FactLines, f64) {
        let (label, value) = Facts::styles(style);
        let vw = Mm::from((width - self.label_width).max(1.0));
        let lw = mm((self.label_width - 2.0).max(1.0));
        // Labels and values both wrap; a row is as tall as the taller of the two.
        let wrapped = self.rows.iter().map(|(l, v)| (text::wrap(cache, label, l, lw, 3), text::wrap(cache, value, v, vw, 5))).collect();
        (wrapped, line_height(cache, value))
    }

    fn styles(style: Style) -> (Style, Style) {
        (style.and(Style::new().with_color(MUTED)), style.and(Style::new().with_color(INK)))
    }
}

fn fact_row_height((l, v): &(Vec<String>, Vec<String>), lh: f64) -> f64 {
    l.len().max(v.len()) as f64 * lh + 1.5
}

impl Block for Facts {
    fn start_height(&self, cache: &FontCache, style: Style, width: f64) -> f64 {
        let (wrapped, lh) = self.wrapped(cache, style, width);
        wrapped.iter().map(|r| fact_row_height(r, lh)).sum()
    }
}

impl Element for Facts {
    fn render(&mut self, context: &Context, area: Area<'_>, style: Style) -> Result<RenderResult, PdfError> {
        let cache = &context.font_cache;
        let (label, value) = Facts::styles(style);
        let (wrapped, lh) = self.wrapped(cache, style, f64::from(area.size().width));
        let row_h = |row: &(Vec<String>, Vec<String>)| fact_row_height(row, lh);
        let h = wrapped.iter().map(row_h).sum::<f64>();
        if f64::from(area.size().height) < h {
            return Ok(next_page());
        }
        let mut y = 0.0;
        for row in &wrapped {
            for (i, l) in row.0.iter().enumerate() {
                print(&area, cache, 0.0, y + i as f64 * lh, label, l)?;
            }
            for (i, v) in row.1.iter().enumerate() {
                print(&area, cache, self.label_width, y + i as f64 * lh, value, v)?;
            }
            y += row_h(row);
        }
        Ok(done(&area, h))
    }
}

/// Page margins and the footer on every page: a bar in the theme's colour with a label on the
/// left and the page number on the right.
pub(crate) struct Footer {
    /// Left footer text (sanitized).
    pub(crate) label: String,
    /// Page number text for page n.
    pub(crate) page_label: Box<dyn Fn(usize) -> String>,
    /// Pages decorated so far.
    pub(crate) page: usize,
    /// Bar colour.
    pub(crate) color: Color,
    /// Whether the bar is dark (white text) or light (dark text).
    pub(crate) dark: bool,
}

/// Page margins in mm: top, right, bottom, left.
const MARGINS: (f64, f64, f64, f64) = (15.0, 18.0, 10.0, 18.0);
/// Height of the footer bar, in mm.
const FOOTER_H: f64 = 7.0;

impl PageDecorator for Footer {
    fn decorate_page<'a>(&mut self, context: &Context, mut area: Area<'a>, style: Style) -> Result<Area<'a>, PdfError> {
        self.page += 1;
        let (t, r, b, l) = MARGINS;
        area.add_margins(Margins::trbl(mm(t), mm(r), mm(b), mm(l)));
        let cache = &context.font_cache;
        let w = f64::from(area.size().width);
        let h = f64::from(area.size().height);
        let ink = if self.dark { WHITE } else { INK };
        let st = style.and(Style::new().with_font_size(8).with_color(ink));
        let y = h - FOOTER_H;
        fill_rect(&area, 0.0, y, w, FOOTER_H, self.color);
        let ty = y + (FOOTER_H - line_height(cache, st)) / 2.0;
        let page = (self.page_label)(self.page);
        let pw = width(cache, st, &page);
        print(&area, cache, w - pw - 3.0, ty, st, &page)?;
        let label = text::fit(cache, st, &self.label, mm((w - pw - 12.0).max(1.0)));
        print(&area, cache, 3.0, ty, st, &label)?;
        area.set_height(mm((h - FOOTER_H - 4.0).max(1.0)));
        Ok(area)
    }
}
