//! How the report's elements flow from page to page: headings stay with what follows them, and
//! a section moves to a new page only when little of the current one is left.
//!
//! genpdf lays elements out one after the other and knows nothing of what comes next, so a
//! heading could end a page while its table starts the next one. Here a heading, with the
//! intro lines and gaps after it, forms a [`Keep`] group with the first block that follows
//! (tiles, a chart, the start of a table): the group starts on a page only when all of it fits
//! there, measured with [`Block::start_height`]. A [`SectionBreak`] goes to a new page only when
//! less than a third of a page is left, so a section whose start fits never leaves more than
//! that empty behind it.

use genpdf::elements::LinearLayout;
use genpdf::error::Error as PdfError;
use genpdf::fonts::FontCache;
use genpdf::render::Area;
use genpdf::style::Style;
use genpdf::{Context, Element, Mm, Position, RenderResult, Size};

use super::elements::{self, body_height};

/// Share of the page body below which a new section starts on the next page.
const SECTION_MIN_SHARE: f64 = 1.0 / 3.0;
/// Space above a section that starts on the current page, in mm.
const SECTION_GAP: f64 = 8.0;

/// An element whose height the flow can know before it is drawn.
pub(crate) trait Block: Element {
    /// The height in mm this needs on a page to start there, in `style` and `width` mm: all of
    /// it for what cannot continue on the next page, the first lines or rows for what can.
    fn start_height(&self, cache: &FontCache, style: Style, width: f64) -> f64;

    /// Whether this belongs with what follows it (headings, intro lines, gaps), so that a page
    /// never ends with it.
    fn keep_with_next(&self) -> bool {
        false
    }
}

/// Whether `area` is a whole page body, i.e. nothing was drawn on the page yet.
pub(crate) fn at_page_top(area: &Area<'_>) -> bool {
    f64::from(area.size().height) >= body_height() - 0.5
}

/// Elements that start on the same page: the parts kept with the next, then the one part they
/// are kept with. Once started, the group flows on like a vertical layout.
pub(crate) struct Keep {
    parts: Vec<Box<dyn Block>>,
    /// Index of the part being drawn.
    next: usize,
}

impl Keep {
    /// The height the group needs to start on a page.
    fn start_height(&self, cache: &FontCache, style: Style, width: f64) -> f64 {
        self.parts.iter().map(|p| p.start_height(cache, style, width)).sum()
    }
}

impl Element for Keep {
    fn render(&mut self, context: &Context, area: Area<'_>, style: Style) -> Result<RenderResult, PdfError> {
        let width = f64::from(area.size().width);
        if self.next == 0 && !at_page_top(&area) && self.start_height(&context.font_cache, style, width) > f64::from(area.size().height) {
            return Ok(elements::next_page());
        }
        let mut area = area;
        let mut used = 0.0;
        while let Some(part) = self.parts.get_mut(self.next) {
            let result = part.render(context, area.clone(), style)?;
            let h = f64::from(result.size.height);
            used += h;
            if result.has_more {
                return Ok(RenderResult { size: Size::new(width, Mm::from(used)), has_more: true });
            }
            area.add_offset(Position::new(0, Mm::from(h)));
            self.next += 1;
        }
        Ok(RenderResult { size: Size::new(width, Mm::from(used)), has_more: false })
    }
}

/// The report's body: elements in order, with the parts kept with the next gathered into a
/// [`Keep`] group until the part they are kept with arrives.
pub(crate) struct Body {
    layout: LinearLayout,
    group: Vec<Box<dyn Block>>,
}

impl Body {
    /// An empty body.
    pub(crate) fn new() -> Body {
        Body { layout: LinearLayout::vertical(), group: Vec::new() }
    }

    /// Appends `block`: to the open group if it is kept with the next part or closes the group,
    /// on its own otherwise.
    pub(crate) fn keep<B: Block + 'static>(&mut self, block: B) {
        let kept = block.keep_with_next();
        if kept || !self.group.is_empty() {
            self.group.push(Box::new(block));
            if !kept {
                self.close();
            }
        } else {
            self.layout.push(block);
        }
    }

    /// Appends any element on its own, after the open group (which then keeps nothing).
    pub(crate) fn push<E: Element + 'static>(&mut self, element: E) {
        self.close();
        self.layout.push(element);
    }

    fn close(&mut self) {
        if !self.group.is_empty() {
            let parts = std::mem::take(&mut self.group);
            self.layout.push(Keep { parts, next: 0 });
        }
    }

    /// The finished layout.
    pub(crate) fn finish(mut self) -> LinearLayout {
        self.close();
        self.layout
    }
}

/// The start of a section: a new page when less than [`SECTION_MIN_SHARE`] of this one is left,
/// else some space; nothing at the top of a page.
pub(crate) struct SectionBreak {
    broke: bool,
}

/// A section break (see [`SectionBreak`]).
pub(crate) fn section_break() -> SectionBreak {
    SectionBreak { broke: false }
}

impl Element for SectionBreak {
    fn render(&mut self, _context: &Context, area: Area<'_>, _style: Style) -> Result<RenderResult, PdfError> {
        let avail = f64::from(area.size().height);
        if self.broke || at_page_top(&area) {
            return Ok(RenderResult::default());
        }
        if avail < body_height() * SECTION_MIN_SHARE {
            self.broke = true;
            // Not (0, 0): genpdf takes that on a fresh page for an element that can never fit.
            return Ok(RenderResult { size: Size::new(1, 0), has_more: true });
        }
        Ok(elements::done(&area, SECTION_GAP))
    }
}
