//! Drawing primitives and the simple report elements.
//!
//! genpdf 0.2 strokes 1 pt lines and fills nothing, so filled shapes (lamps, bands) are dense
//! horizontal strokes [`FILL_STEP`] apart: the 0.35 mm pen overlaps its neighbours and the
//! shape comes out solid on screen and in print.
//!
//! Every element here has a bounded height and moves whole to the next page when it does not
//! fit, except [`Para`], which continues line by line.

use genpdf::elements::PageBreak;
use genpdf::error::Error as PdfError;
use genpdf::fonts::FontCache;
use genpdf::render::Area;
use genpdf::style::{Color, Style};
use genpdf::{Context, Element, Margins, Mm, PageDecorator, Position, RenderResult, Size};

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
/// Brand band on the cover.
pub(crate) const BRAND: Color = Color::Rgb(30, 41, 59);
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
    lines: Option<Vec<String>>,
    next: usize,
}

impl Para {
    /// A paragraph of `text` (already sanitized) in `style`, at most `max_lines` lines, followed
    /// by `space_after` mm.
    pub(crate) fn new(text: String, style: Style, max_lines: usize, space_after: f64) -> Para {
        Para { text, style, max_lines, space_after, lines: None, next: 0 }
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

/// Vertical space; at the bottom of a page it takes what is left and no more.
pub(crate) struct Gap(pub(crate) f64);

impl Element for Gap {
    fn render(&mut self, _context: &Context, area: Area<'_>, _style: Style) -> Result<RenderResult, PdfError> {
        let h = self.0.min(f64::from(area.size().height));
        Ok(done(&area, h))
    }
}

/// A page break.
pub(crate) fn page_break() -> PageBreak {
    PageBreak::new()
}

/// The cover's brand band: a dark bar with the product name.
pub(crate) struct Band {
    /// Text on the band.
    pub(crate) label: String,
}

impl Element for Band {
    fn render(&mut self, context: &Context, area: Area<'_>, style: Style) -> Result<RenderResult, PdfError> {
        let h = 16.0;
        if f64::from(area.size().height) < h {
            return Ok(next_page());
        }
        let w = f64::from(area.size().width);
        fill_rect(&area, 0.0, 0.0, w, h, BRAND);
        let st = style.and(Style::new().bold().with_font_size(16).with_color(WHITE));
        let lh = line_height(&context.font_cache, st);
        print(&area, &context.font_cache, 6.0, (h - lh) / 2.0, st, &self.label)?;
        Ok(done(&area, h))
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

impl Element for Facts {
    fn render(&mut self, context: &Context, area: Area<'_>, style: Style) -> Result<RenderResult, PdfError> {
        let cache = &context.font_cache;
        let label = style.and(Style::new().with_color(MUTED));
        let value = style.and(Style::new().with_color(INK));
        let lh = line_height(cache, value);
        let vw = Mm::from((f64::from(area.size().width) - self.label_width).max(1.0));
        let wrapped: Vec<Vec<String>> = self.rows.iter().map(|(_, v)| text::wrap(cache, value, v, vw, 3)).collect();
        let h = wrapped.iter().map(|l| l.len() as f64 * lh + 1.5).sum::<f64>();
        if f64::from(area.size().height) < h {
            return Ok(next_page());
        }
        let mut y = 0.0;
        for ((l, _), lines) in self.rows.iter().zip(&wrapped) {
            let l = text::fit(cache, label, l, mm(self.label_width - 2.0));
            print(&area, cache, 0.0, y, label, &l)?;
            for v in lines {
                print(&area, cache, self.label_width, y, value, v)?;
                y += lh;
            }
            y += 1.5;
        }
        Ok(done(&area, h))
    }
}

/// Page margins and the footer on every page: a rule, a left label and the page number.
pub(crate) struct Footer {
    /// Left footer text (sanitized).
    pub(crate) label: String,
    /// Page number text for page n.
    pub(crate) page_label: Box<dyn Fn(usize) -> String>,
    /// Pages decorated so far.
    pub(crate) page: usize,
}

/// Page margins in mm: top, right, bottom, left.
const MARGINS: (f64, f64, f64, f64) = (15.0, 18.0, 12.0, 18.0);
/// Height reserved for the footer above the bottom margin, in mm.
const FOOTER_H: f64 = 9.0;

impl PageDecorator for Footer {
    fn decorate_page<'a>(&mut self, context: &Context, mut area: Area<'a>, style: Style) -> Result<Area<'a>, PdfError> {
        self.page += 1;
        let (t, r, b, l) = MARGINS;
        area.add_margins(Margins::trbl(mm(t), mm(r), mm(b), mm(l)));
        let cache = &context.font_cache;
        let w = f64::from(area.size().width);
        let h = f64::from(area.size().height);
        let st = style.and(Style::new().with_font_size(8).with_color(MUTED));
        let y = h - FOOTER_H + 3.0;
        line(&area, (0.0, y - 1.5), (w, y - 1.5), RULE);
        let page = (self.page_label)(self.page);
        let pw = width(cache, st, &page);
        print(&area, cache, w - pw, y, st, &page)?;
        let label = text::fit(cache, st, &self.label, mm((w - pw - 8.0).max(1.0)));
        print(&area, cache, 0.0, y, st, &label)?;
        area.set_height(mm((h - FOOTER_H - 3.0).max(1.0)));
        Ok(area)
    }
}
