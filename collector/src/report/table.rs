//! A table that never cuts a row and repeats its heading and header row on every page.
//!
//! genpdf's `TableLayout` splits rows across pages, does not repeat the header and drops words
//! wider than a cell. Here every cell is wrapped to its column with at most a few lines (the
//! last one ends in an ellipsis when shortened), so a row is always small enough for a page.

use genpdf::error::Error as PdfError;
use genpdf::render::Area;
use genpdf::style::Style;
use genpdf::{Context, Element, Mm, RenderResult, Size};

use super::elements::{self, HEADER_BG, INK, RULE, fill_rect, line, print};
use super::text;
use crate::risk::Light;

/// Horizontal alignment of a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Align {
    /// Left aligned (text).
    Left,
    /// Right aligned (numbers).
    Right,
}

/// A column: header text, relative width, alignment and most lines per cell.
pub(crate) struct Column {
    /// Header text (sanitized).
    pub(crate) title: String,
    /// Relative width.
    pub(crate) weight: f64,
    /// Alignment.
    pub(crate) align: Align,
    /// Most lines a cell of this column may take.
    pub(crate) max_lines: usize,
}

/// One cell.
pub(crate) enum Cell {
    /// Text (sanitized).
    Text(String),
    /// A small lamp followed by text.
    Lamp(Light, String),
}

/// The table element.
pub(crate) struct Table {
    /// Heading above the table (sanitized), repeated on continuation pages.
    pub(crate) heading: String,
    /// The columns.
    pub(crate) columns: Vec<Column>,
    /// The rows; each has one cell per column (missing cells stay empty, extra are ignored).
    pub(crate) rows: Vec<Vec<Cell>>,
    /// Index of the first row not yet drawn.
    pub(crate) next: usize,
}

const PAD_X: f64 = 1.2;
const PAD_Y: f64 = 1.1;
const LAMP_R: f64 = 1.5;
const FONT_SIZE: u8 = 8;

impl Table {
    fn widths(&self, total: f64) -> Vec<f64> {
        let sum: f64 = self.columns.iter().map(|c| c.weight.max(0.0)).sum();
        let sum = if sum > 0.0 { sum } else { 1.0 };
        self.columns.iter().map(|c| total * c.weight.max(0.0) / sum).collect()
    }
}

impl Element for Table {
    fn render(&mut self, context: &Context, area: Area<'_>, style: Style) -> Result<RenderResult, PdfError> {
        let cache = &context.font_cache;
        let total_w = f64::from(area.size().width);
        let avail = f64::from(area.size().height);
        let widths = self.widths(total_w);
        let body = style.and(Style::new().with_font_size(FONT_SIZE).with_color(INK));
        let bold = body.and(Style::new().bold());
        let heading = style.and(Style::new().bold().with_font_size(13).with_color(INK));
        let lh = elements::line_height(cache, body);

        let heading_h = if self.heading.is_empty() { 0.0 } else { elements::line_height(cache, heading) + 2.0 };
        // Header cells wrap to two lines at most.
        let header: Vec<Vec<String>> = self
            .columns
            .iter()
            .zip(&widths)
            .map(|(c, w)| text::wrap(cache, bold, &c.title, Mm::from((w - 2.0 * PAD_X).max(1.0)), 2))
            .collect();
        let header_lines = header.iter().map(Vec::len).max().unwrap_or(1);
        let header_h = header_lines as f64 * lh + 2.0 * PAD_Y;

        // Lay out rows until the page is full.
        let mut y = heading_h + header_h;
        let mut laid: Vec<(Vec<Vec<String>>, f64)> = Vec::new();
        let mut idx = self.next;
        while let Some(row) = self.rows.get(idx) {
            let cells: Vec<Vec<String>> = self
                .columns
                .iter()
                .zip(&widths)
                .enumerate()
                .map(|(i, (col, w))| {
                    let (lamp_w, s) = match row.get(i) {
                        Some(Cell::Text(s)) => (0.0, s.as_str()),
                        Some(Cell::Lamp(_, s)) => (2.0 * LAMP_R + 1.5, s.as_str()),
                        None => (0.0, ""),
                    };
                    let cw = Mm::from((w - 2.0 * PAD_X - lamp_w).max(1.0));
                    text::wrap(cache, body, s, cw, col.max_lines)
                })
                .collect();
            let lines = cells.iter().map(Vec::len).max().unwrap_or(1).max(1);
            let h = lines as f64 * lh + 2.0 * PAD_Y;
            if y + h > avail {
                break;
            }
            y += h;
            laid.push((cells, h));
            idx += 1;
        }
        if laid.is_empty() && idx < self.rows.len() {
            // Not even one row fits under the header: start the table on the next page.
            return Ok(elements::next_page());
        }

        // Draw.
        let mut top = 0.0;
        if !self.heading.is_empty() {
            print(&area, cache, 0.0, 0.0, heading, &self.heading)?;
            top += heading_h;
        }
        fill_rect(&area, 0.0, top, total_w, header_h, HEADER_BG);
        let mut x = 0.0;
        for ((lines, w), col) in header.iter().zip(&widths).zip(&self.columns) {
            for (j, l) in lines.iter().enumerate() {
                let tx = aligned(cache, bold, l, x, *w, col.align);
                print(&area, cache, tx, top + PAD_Y + j as f64 * lh, bold, l)?;
            }
            x += w;
        }
        top += header_h;
        for (k, (cells, h)) in laid.iter().enumerate() {
            let row = self.rows.get(self.next + k);
            let mut x = 0.0;
            for (i, ((lines, w), col)) in cells.iter().zip(&widths).zip(&self.columns).enumerate() {
                let mut tx0 = x;
                if let Some(Some(Cell::Lamp(light, _))) = row.map(|r| r.get(i)) {
                    elements::lamp(&area, x + PAD_X + LAMP_R, top + PAD_Y + lh / 2.0, LAMP_R, *light);
                    tx0 += 2.0 * LAMP_R + 1.5;
                }
                for (j, l) in lines.iter().enumerate() {
                    let tx = aligned(cache, body, l, tx0, *w - (tx0 - x), col.align);
                    print(&area, cache, tx, top + PAD_Y + j as f64 * lh, body, l)?;
                }
                x += w;
            }
            top += h;
            line(&area, (0.0, top), (total_w, top), RULE);
        }
        self.next = idx;
        Ok(RenderResult { size: Size::new(area.size().width, Mm::from((top + 3.0).min(avail))), has_more: self.next < self.rows.len() })
    }
}

/// The x position of `s` in a cell at `x` of width `w`.
fn aligned(cache: &genpdf::fonts::FontCache, style: Style, s: &str, x: f64, w: f64, align: Align) -> f64 {
    match align {
        Align::Left => x + PAD_X,
        Align::Right => x + w - PAD_X - elements::width(cache, style, s),
    }
}
