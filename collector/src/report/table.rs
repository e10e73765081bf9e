//! A table that never cuts a row and repeats its heading and header row on every page.
//!
//! genpdf's `TableLayout` splits rows across pages, does not repeat the header and drops words
//! wider than a cell. Here every cell is wrapped to its column with at most a few lines (the
//! last one ends in an ellipsis when shortened), so a row is always small enough for a page.
//!
//! Column widths come from the text: every column is at least as wide as its widest word (its
//! widest cell, for a one-line column), measured with the report's font, and the rest of the
//! width is shared by the columns' weights ([`distribute`]). So "Endangered" or "Mandant" is
//! never broken in a narrow column; only a token wider than [`MAX_MIN_SHARE`] of the table (a
//! 200-character signature) still breaks.

use std::cell::RefCell;

use genpdf::error::Error as PdfError;
use genpdf::fonts::FontCache;
use genpdf::render::Area;
use genpdf::style::Style;
use genpdf::{Context, Element, Mm, RenderResult, Size};

use super::elements::{self, HEADER_BG, INK, RULE, fill_rect, line, print};
use super::flow::{self, Block};
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
    /// Relative width: how the width left over after every column's widest word is shared.
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

impl Cell {
    /// The room the lamp takes before the text, in mm, and the text.
    fn parts(&self) -> (f64, &str) {
        match self {
            Cell::Text(s) => (0.0, s),
            Cell::Lamp(_, s) => (LAMP_W, s),
        }
    }
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
    next: usize,
    /// The column widths and the table width they are for, once computed.
    widths: RefCell<Option<(f64, Vec<f64>)>>,
}

const PAD_X: f64 = 1.2;
const PAD_Y: f64 = 1.1;
const LAMP_R: f64 = 1.5;
/// Room a lamp takes before a cell's text, in mm.
const LAMP_W: f64 = 2.0 * LAMP_R + 1.5;
const FONT_SIZE: u8 = 8;
/// Rows a table starts a page with at least (fewer if it has fewer): a header with one lone
/// row at the bottom of a page reads as a table that ended.
pub(crate) const START_ROWS: usize = 2;
/// The largest share of a table's width one column's widest word may claim. A longer token
/// is broken inside rather than squeezing every other column.
pub(crate) const MAX_MIN_SHARE: f64 = 0.45;
/// Added to a measured width so that rounding never breaks a word that fits exactly.
const SLACK: f64 = 0.05;

/// The styles and line heights a table is drawn with.
struct Metrics {
    body: Style,
    bold: Style,
    heading: Style,
    /// Line height of the body style, in mm.
    lh: f64,
    /// Height of the heading with its space below, in mm; 0 without a heading.
    heading_h: f64,
}

impl Metrics {
    fn new(cache: &FontCache, style: Style, heading: &str) -> Metrics {
        let body = style.and(Style::new().with_font_size(FONT_SIZE).with_color(INK));
        let bold = body.and(Style::new().bold());
        let heading_style = style.and(Style::new().bold().with_font_size(13).with_color(INK));
        let heading_h = if heading.is_empty() { 0.0 } else { elements::line_height(cache, heading_style) + 2.0 };
        Metrics { body, bold, heading: heading_style, lh: elements::line_height(cache, body), heading_h }
    }
}

/// Cells wrapped into lines, one list per column.
type Wrapped = Vec<Vec<String>>;

/// The height of a row (or the header) of wrapped cells.
fn row_height(cells: &Wrapped, lh: f64) -> f64 {
    cells.iter().map(Vec::len).max().unwrap_or(1).max(1) as f64 * lh + 2.0 * PAD_Y
}

impl Table {
    /// A table under `heading` (empty for none).
    pub(crate) fn new(heading: String, columns: Vec<Column>, rows: Vec<Vec<Cell>>) -> Table {
        Table { heading, columns, rows, next: 0, widths: RefCell::new(None) }
    }

    /// Column widths for a table `total` mm wide: every column at least its widest word (capped
    /// at [`MAX_MIN_SHARE`] of the table), the rest shared by weight. Measured once per width:
    /// every cell of every row is measured, and a table is drawn on page after page.
    pub(crate) fn widths(&self, cache: &FontCache, style: Style, total: f64) -> Vec<f64> {
        let mut memo = self.widths.borrow_mut();
        match &*memo {
            Some((w, widths)) if *w == total => widths.clone(),
            _ => {
                let widths = self.measure_widths(cache, style, total);
                *memo = Some((total, widths.clone()));
                widths
            }
        }
    }

    fn measure_widths(&self, cache: &FontCache, style: Style, total: f64) -> Vec<f64> {
        let m = Metrics::new(cache, style, "");
        let cap = total * MAX_MIN_SHARE;
        let mins: Vec<f64> = (0..self.columns.len()).map(|i| self.min_width(i, cache, &m).min(cap)).collect();
        let weights: Vec<f64> = self.columns.iter().map(|c| c.weight).collect();
        distribute(&weights, &mins, total)
    }

    /// The narrowest column `i` may be without breaking a word: its header's widest word (bold),
    /// its cells' widest word (a one-line column: its widest cell), with padding and lamp.
    fn min_width(&self, i: usize, cache: &FontCache, m: &Metrics) -> f64 {
        let Some(col) = self.columns.get(i) else { return 0.0 };
        let header = text::widest_word(cache, m.bold, &col.title);
        let cells = self
            .rows
            .iter()
            .filter_map(|row| row.get(i))
            .map(|cell| {
                let (lamp, s) = cell.parts();
                let w = if col.max_lines <= 1 { text::line_width(cache, m.body, s) } else { text::widest_word(cache, m.body, s) };
                lamp + w
            })
            .fold(0.0, f64::max);
        header.max(cells) + 2.0 * PAD_X + SLACK
    }

    /// How the table is drawn `total` mm wide: styles and column widths.
    fn frame<'c>(&self, cache: &'c FontCache, style: Style, total: f64) -> Frame<'c> {
        Frame { cache, m: Metrics::new(cache, style, &self.heading), widths: self.widths(cache, style, total) }
    }

    /// The header cells, wrapped to two lines at most.
    fn header(&self, f: &Frame<'_>) -> Wrapped {
        let wrap = |(c, w): (&Column, &f64)| text::wrap(f.cache, f.m.bold, &c.title, Mm::from((w - 2.0 * PAD_X).max(1.0)), 2);
        self.columns.iter().zip(&f.widths).map(wrap).collect()
    }

    /// Row `idx`'s cells, each wrapped to its column.
    fn row(&self, idx: usize, f: &Frame<'_>) -> Wrapped {
        let row = self.rows.get(idx);
        self.columns
            .iter()
            .zip(&f.widths)
            .enumerate()
            .map(|(i, (col, w))| {
                let (lamp, s) = row.and_then(|r| r.get(i)).map_or((0.0, ""), Cell::parts);
                text::wrap(f.cache, f.m.body, s, Mm::from((w - 2.0 * PAD_X - lamp).max(1.0)), col.max_lines)
            })
            .collect()
    }

    /// Row `idx` (`None`: the header) wrapped as a table `total` mm wide draws it.
    #[cfg(test)]
    pub(crate) fn lines(&self, idx: Option<usize>, cache: &FontCache, style: Style, total: f64) -> Wrapped {
        let f = self.frame(cache, style, total);
        match idx {
            Some(i) => self.row(i, &f),
            None => self.header(&f),
        }
    }

    /// Draws the heading and the header row; returns the height used.
    fn draw_header(&self, area: &Area<'_>, f: &Frame<'_>, header: &Wrapped) -> Result<f64, PdfError> {
        let (cache, m) = (f.cache, &f.m);
        let mut top = 0.0;
        if !self.heading.is_empty() {
            print(area, cache, 0.0, 0.0, m.heading, &self.heading)?;
            top += m.heading_h;
        }
        let header_h = row_height(header, m.lh);
        fill_rect(area, 0.0, top, f.width(), header_h, HEADER_BG);
        let mut x = 0.0;
        for ((lines, w), col) in header.iter().zip(&f.widths).zip(&self.columns) {
            for (j, l) in lines.iter().enumerate() {
                let tx = aligned(cache, m.bold, l, x, *w, col.align);
                print(area, cache, tx, top + PAD_Y + j as f64 * m.lh, m.bold, l)?;
            }
            x += w;
        }
        Ok(top + header_h)
    }

    /// Draws row `idx`, wrapped into `cells`, with its top at `top`, followed by a rule.
    fn draw_row(&self, area: &Area<'_>, f: &Frame<'_>, idx: usize, cells: &Wrapped, top: f64) -> Result<(), PdfError> {
        let (cache, m) = (f.cache, &f.m);
        let row = self.rows.get(idx);
        let mut x = 0.0;
        for (i, ((lines, w), col)) in cells.iter().zip(&f.widths).zip(&self.columns).enumerate() {
            let mut tx0 = x;
            if let Some(Cell::Lamp(light, _)) = row.and_then(|r| r.get(i)) {
                elements::lamp(area, x + PAD_X + LAMP_R, top + PAD_Y + m.lh / 2.0, LAMP_R, *light);
                tx0 += LAMP_W;
            }
            for (j, l) in lines.iter().enumerate() {
                let tx = aligned(cache, m.body, l, tx0, *w - (tx0 - x), col.align);
                print(area, cache, tx, top + PAD_Y + j as f64 * m.lh, m.body, l)?;
            }
            x += w;
        }
        let bottom = top + row_height(cells, m.lh);
        line(area, (0.0, bottom), (f.width(), bottom), RULE);
        Ok(())
    }
}

/// What drawing a table at one width needs: the font cache, the styles, the column widths.
struct Frame<'c> {
    cache: &'c FontCache,
    m: Metrics,
    widths: Vec<f64>,
}

impl Frame<'_> {
    /// The table's width, in mm.
    fn width(&self) -> f64 {
        self.widths.iter().sum()
    }
}

impl Element for Table {
    fn render(&mut self, context: &Context, area: Area<'_>, style: Style) -> Result<RenderResult, PdfError> {
        let avail = f64::from(area.size().height);
        let f = self.frame(&context.font_cache, style, f64::from(area.size().width));
        let header = self.header(&f);

        // Lay out rows until the page is full.
        let mut y = f.m.heading_h + row_height(&header, f.m.lh);
        let mut laid: Vec<Wrapped> = Vec::new();
        while self.next + laid.len() < self.rows.len() {
            let cells = self.row(self.next + laid.len(), &f);
            let h = row_height(&cells, f.m.lh);
            if y + h > avail {
                break;
            }
            y += h;
            laid.push(cells);
        }
        let left = self.rows.len() - self.next;
        if laid.len() < START_ROWS.min(left) && !flow::at_page_top(&area) {
            // The header would stand with too few rows: start the table on the next page.
            return Ok(elements::next_page());
        }

        let mut top = self.draw_header(&area, &f, &header)?;
        for (k, cells) in laid.iter().enumerate() {
            self.draw_row(&area, &f, self.next + k, cells, top)?;
            top += row_height(cells, f.m.lh);
        }
        self.next += laid.len();
        Ok(RenderResult { size: Size::new(area.size().width, Mm::from((top + 3.0).min(avail))), has_more: self.next < self.rows.len() })
    }
}

impl Block for Table {
    /// The heading, the header and the first [`START_ROWS`] rows.
    fn start_height(&self, cache: &FontCache, style: Style, width: f64) -> f64 {
        let f = self.frame(cache, style, width);
        let rows = (self.next..self.rows.len()).take(START_ROWS);
        f.m.heading_h + row_height(&self.header(&f), f.m.lh) + rows.map(|i| row_height(&self.row(i, &f), f.m.lh)).sum::<f64>()
    }
}

/// Shares `total` among columns by `weights`, each at least its entry in `mins`: a column whose
/// share would fall below its minimum gets the minimum, and what is left is shared again among
/// the others. When even the minimums do not fit, they are scaled down together (text then
/// breaks inside words, the only way left).
pub(crate) fn distribute(weights: &[f64], mins: &[f64], total: f64) -> Vec<f64> {
    let min_sum: f64 = mins.iter().sum();
    if min_sum >= total {
        let k = if min_sum > 0.0 { total / min_sum } else { 0.0 };
        return mins.iter().map(|m| m * k).collect();
    }
    let mut fixed = vec![false; mins.len()];
    loop {
        let left = total - mins.iter().zip(&fixed).filter(|(_, f)| **f).map(|(m, _)| m).sum::<f64>();
        let free = fixed.iter().filter(|f| !**f).count() as f64;
        let weight_sum: f64 = weights.iter().zip(&fixed).filter(|(_, f)| !**f).map(|(w, _)| w.max(0.0)).sum();
        let share = |i: usize| {
            let w = weights.get(i).copied().unwrap_or(0.0).max(0.0);
            if weight_sum > 0.0 { left * w / weight_sum } else { left / free }
        };
        // Fix every free column whose share is below its minimum; as the minimums fit, at least
        // one free column always keeps its share, so this ends.
        let short: Vec<usize> = (0..mins.len()).filter(|&i| !fixed[i] && share(i) < mins[i]).collect();
        if short.is_empty() {
            return (0..mins.len()).map(|i| if fixed[i] { mins[i] } else { share(i) }).collect();
        }
        for i in short {
            fixed[i] = true;
        }
    }
}

/// The x position of `s` in a cell at `x` of width `w`.
fn aligned(cache: &FontCache, style: Style, s: &str, x: f64, w: f64, align: Align) -> f64 {
    match align {
        Align::Left => x + PAD_X,
        Align::Right => x + w - PAD_X - elements::width(cache, style, s),
    }
}

#[cfg(test)]
mod tests {
    use super::distribute;

    fn close(a: &[f64], b: &[f64]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-9)
    }

    #[test]
    fn widths_share_by_weight_above_the_minimums() {
        // Nothing short: by weight.
        assert!(close(&distribute(&[1.0, 3.0], &[10.0, 10.0], 100.0), &[25.0, 75.0]));
        // The first column needs 40: it gets 40, the others share 60 by weight.
        assert!(close(&distribute(&[1.0, 1.0, 2.0], &[40.0, 0.0, 0.0], 100.0), &[40.0, 20.0, 40.0]));
        // Fixing one column can push another below its minimum.
        let w = distribute(&[1.0, 1.0, 8.0], &[30.0, 15.0, 0.0], 100.0);
        assert!(close(&w, &[30.0, 15.0, 55.0]), "{w:?}");
        // Minimums that do not fit are scaled down together; the table keeps its width.
        assert!(close(&distribute(&[1.0, 1.0], &[80.0, 120.0], 100.0), &[40.0, 60.0]));
        // Zero weights share equally.
        assert!(close(&distribute(&[0.0, 0.0], &[0.0, 0.0], 10.0), &[5.0, 5.0]));
        for w in [distribute(&[1.0, 1.0, 8.0], &[30.0, 15.0, 0.0], 100.0), distribute(&[2.0, 0.5], &[1.0, 70.0], 90.0)] {
            assert!((w.iter().sum::<f64>() - if w.len() == 3 { 100.0 } else { 90.0 }).abs() < 1e-9, "{w:?}");
        }
    }
}
