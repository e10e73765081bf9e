//! The embedded DejaVu Sans family and the subsetting that keeps reports small.
//!
//! genpdf 0.2 hands every font of a family to printpdf, which embeds each one whole and
//! uncompressed, under its own name (`F0`..`F3`), used or not. Passing the same `FontData` for
//! several styles shares nothing: it embeds the same file again. Measured with a one-line
//! document (release, DejaVu Sans): four styles 2.95 MB; regular in all four slots 3.25 MB;
//! regular and bold with built-in italic slots 1.57 MB. So:
//!
//! - Only regular and bold are embedded. The italic slots point at the built-in Helvetica
//!   (metrics from DejaVu, nothing embedded); report code never asks for italic. If it ever did,
//!   genpdf would return an error for non-Windows-1252 text, not panic.
//! - Before a render, [`subset`] empties the outlines and metrics of every glyph the report does
//!   not use, maps only the characters it uses, and drops the tables nothing here reads
//!   (OpenType layout, glyph names). Glyph ids stay as they are, so layout measured with the
//!   subset is the layout of the full font. A report's pair is ~90 KB each before and ~20 KB
//!   each after deflate (plus ~1 KB of widths and ToUnicode, which printpdf writes per mapped
//!   character: ~50 KB per font with the full `cmap`).
//!
//! DejaVu (Bitstream Vera licence, DejaVu changes public domain; see `collector/fonts/`) is used
//! rather than Debian's Liberation 1.07, which is GPL-2 with a font exception plus a Red Hat
//! EULA — not something to link into an Apache-2.0 binary — and covers fewer scripts.

use std::collections::{BTreeMap, BTreeSet};

use genpdf::fonts::{Font, FontCache, FontData, FontFamily};

use super::ReportError;

/// DejaVu Sans 2.37, regular.
pub(crate) const REGULAR: &[u8] = include_bytes!("../../fonts/DejaVuSans.ttf");
/// DejaVu Sans 2.37, bold.
pub(crate) const BOLD: &[u8] = include_bytes!("../../fonts/DejaVuSans-Bold.ttf");

/// Tables a subset keeps. Everything else (GPOS, GSUB, GDEF, MATH, FFTM) is only read by text
/// shapers; neither rusttype 0.8 (it kerns from `kern`) nor a PDF viewer looks at it.
const KEEP_TABLES: [&[u8; 4]; 15] =
    [b"OS/2", b"cmap", b"cvt ", b"fpgm", b"gasp", b"glyf", b"head", b"hhea", b"hmtx", b"kern", b"loca", b"maxp", b"name", b"post", b"prep"];

/// Glyph coverage of the full family: which characters can be drawn, and their glyph ids.
pub(crate) struct Coverage {
    cache: FontCache,
    family: FontFamily<Font>,
}

impl Coverage {
    /// Loads the full embedded fonts for glyph look-ups.
    pub(crate) fn new() -> Result<Coverage, ReportError> {
        let regular = font_data(REGULAR.to_vec())?;
        let bold = font_data(BOLD.to_vec())?;
        let cache = FontCache::new(FontFamily { italic: regular.clone(), bold_italic: bold.clone(), regular, bold });
        let family = cache.default_font_family();
        Ok(Coverage { cache, family })
    }

    /// The glyph id of `c` in the regular and the bold font; `None` if either lacks it.
    fn glyphs(&self, c: char) -> Option<(u16, u16)> {
        let id = |font: Font| {
            let id = self.cache.get_rt_font(font).glyph(c).id().0;
            u16::try_from(id).ok().filter(|&id| id != 0)
        };
        Some((id(self.family.regular)?, id(self.family.bold)?))
    }

    /// Whether both embedded styles can draw `c`.
    pub(crate) fn has(&self, c: char) -> bool {
        self.glyphs(c).is_some()
    }

    /// The report's font family, each embedded style cut down to the glyphs of `chars`.
    pub(crate) fn family(&self, chars: &BTreeSet<char>) -> Result<FontFamily<FontData>, ReportError> {
        // Characters the fonts lack are left out: the sanitizer has replaced them already.
        let (mut regular, mut bold) = (BTreeMap::new(), BTreeMap::new());
        for &c in chars {
            if let Some((r, b)) = self.glyphs(c) {
                regular.insert(c, r);
                bold.insert(c, b);
            }
        }
        let regular = subset(REGULAR, &regular)?;
        let bold = subset(BOLD, &bold)?;
        let italic =
            FontData::new(regular.clone(), Some(printpdf::BuiltinFont::HelveticaOblique)).map_err(|e| ReportError::Font(e.to_string()))?;
        let bold_italic =
            FontData::new(bold.clone(), Some(printpdf::BuiltinFont::HelveticaBoldOblique)).map_err(|e| ReportError::Font(e.to_string()))?;
        Ok(FontFamily { regular: font_data(regular)?, bold: font_data(bold)?, italic, bold_italic })
    }
}

fn font_data(bytes: Vec<u8>) -> Result<FontData, ReportError> {
    FontData::new(bytes, None).map_err(|e| ReportError::Font(e.to_string()))
}

fn bad(what: &str) -> ReportError {
    ReportError::Font(format!("cannot subset font: {what}"))
}

fn u16_at(b: &[u8], at: usize) -> Result<u16, ReportError> {
    b.get(at..at + 2).map(|s| u16::from_be_bytes([s[0], s[1]])).ok_or_else(|| bad("truncated"))
}

fn u32_at(b: &[u8], at: usize) -> Result<u32, ReportError> {
    b.get(at..at + 4).map(|s| u32::from_be_bytes([s[0], s[1], s[2], s[3]])).ok_or_else(|| bad("truncated"))
}

fn checksum(data: &[u8]) -> u32 {
    data.chunks(4).fold(0u32, |sum, c| {
        let mut w = [0u8; 4];
        w[..c.len()].copy_from_slice(c);
        sum.wrapping_add(u32::from_be_bytes(w))
    })
}

/// A TrueType font that maps only the characters of `chars` (character to glyph id, as in
/// `font`) and has only their outlines (plus `.notdef` and the components of composite glyphs).
/// All other glyphs stay addressable but empty and zero-width.
///
/// The `cmap` shrinks too because printpdf writes a width and a ToUnicode entry for every
/// character the font maps: ~50 KB per font for the full DejaVu `cmap`.
pub(crate) fn subset(font: &[u8], chars: &BTreeMap<char, u16>) -> Result<Vec<u8>, ReportError> {
    let keep: BTreeSet<u16> = chars.values().copied().collect();
    let num_tables = usize::from(u16_at(font, 4)?);
    let mut tables: Vec<([u8; 4], &[u8])> = Vec::with_capacity(num_tables);
    for i in 0..num_tables {
        let rec = 12 + 16 * i;
        let tag: [u8; 4] = font.get(rec..rec + 4).and_then(|t| t.try_into().ok()).ok_or_else(|| bad("truncated table directory"))?;
        let offset = usize::try_from(u32_at(font, rec + 8)?).map_err(|_| bad("offset"))?;
        let len = usize::try_from(u32_at(font, rec + 12)?).map_err(|_| bad("length"))?;
        let data = font.get(offset..offset.saturating_add(len)).ok_or_else(|| bad("table out of bounds"))?;
        tables.push((tag, data));
    }
    let table = |tag: &[u8; 4]| tables.iter().find(|(t, _)| t == tag).map(|(_, d)| *d).ok_or_else(|| bad("missing table"));
    let head = table(b"head")?;
    let long_loca = u16_at(head, 50)? != 0;
    let num_glyphs = usize::from(u16_at(table(b"maxp")?, 4)?);
    let loca = table(b"loca")?;
    let glyf = table(b"glyf")?;
    let offsets = (0..=num_glyphs)
        .map(|g| {
            if long_loca {
                u32_at(loca, 4 * g).and_then(|o| usize::try_from(o).map_err(|_| bad("loca")))
            } else {
                u16_at(loca, 2 * g).map(|o| 2 * usize::from(o))
            }
        })
        .collect::<Result<Vec<usize>, _>>()?;
    let glyph = |g: usize| -> &[u8] {
        match (offsets.get(g), offsets.get(g + 1)) {
            (Some(&a), Some(&b)) if a <= b => glyf.get(a..b).unwrap_or(&[]),
            _ => &[],
        }
    };

    // Close `keep` over composite glyph components.
    let mut kept = vec![false; num_glyphs];
    let mut todo: Vec<usize> = std::iter::once(0).chain(keep.iter().map(|&g| usize::from(g))).collect();
    while let Some(g) = todo.pop() {
        match kept.get_mut(g) {
            Some(k) if !*k => *k = true,
            _ => continue,
        }
        let data = glyph(g);
        if data.len() < 10 || u16_at(data, 0)? & 0x8000 == 0 {
            continue; // simple glyph or empty
        }
        let mut at = 10;
        loop {
            let flags = u16_at(data, at)?;
            todo.push(usize::from(u16_at(data, at + 2)?));
            at += 4 + if flags & 0x0001 != 0 { 4 } else { 2 };
            at += match flags {
                f if f & 0x0008 != 0 => 2,
                f if f & 0x0040 != 0 => 4,
                f if f & 0x0080 != 0 => 8,
                _ => 0,
            };
            if flags & 0x0020 == 0 {
                break;
            }
        }
    }

    let mut new_glyf = Vec::new();
    let mut new_loca = Vec::with_capacity((num_glyphs + 1) * 4);
    let push_offset = |loca: &mut Vec<u8>, at: usize| -> Result<(), ReportError> {
        if long_loca {
            let at = u32::try_from(at).map_err(|_| bad("glyf too large"))?;
            loca.extend_from_slice(&at.to_be_bytes());
        } else {
            let at = u16::try_from(at / 2).map_err(|_| bad("glyf too large"))?;
            loca.extend_from_slice(&at.to_be_bytes());
        }
        Ok(())
    };
    for (g, &k) in kept.iter().enumerate() {
        push_offset(&mut new_loca, new_glyf.len())?;
        if k {
            new_glyf.extend_from_slice(glyph(g));
            new_glyf.resize(new_glyf.len().next_multiple_of(4), 0);
        }
    }
    push_offset(&mut new_loca, new_glyf.len())?;

    let hmtx = subset_hmtx(table(b"hmtx")?, usize::from(u16_at(table(b"hhea")?, 34)?), &kept)?;
    let kern = match tables.iter().find(|(t, _)| t == b"kern") {
        Some((_, k)) => subset_kern(k, &kept).unwrap_or_else(|| k.to_vec()),
        None => Vec::new(),
    };

    // A version 3 `post` table: same metrics, no glyph names (62 KB in DejaVu Sans).
    let mut post = table(b"post")?.get(..32).ok_or_else(|| bad("post"))?.to_vec();
    post[..4].copy_from_slice(&0x0003_0000u32.to_be_bytes());
    post[16..].fill(0);

    let mut out_tables: Vec<([u8; 4], Vec<u8>)> = Vec::new();
    for (tag, data) in &tables {
        if !KEEP_TABLES.contains(&tag) {
            continue;
        }
        let data = match tag {
            b"glyf" => std::mem::take(&mut new_glyf),
            b"loca" => std::mem::take(&mut new_loca),
            b"post" => std::mem::take(&mut post),
            b"cmap" => build_cmap(chars)?,
            b"hmtx" => hmtx.clone(),
            b"kern" => kern.clone(),
            b"head" => {
                let mut h = data.to_vec();
                h.get_mut(8..12).ok_or_else(|| bad("head"))?.fill(0);
                h
            }
            _ => data.to_vec(),
        };
        out_tables.push((*tag, data));
    }
    out_tables.sort_by_key(|t| t.0);

    let n = out_tables.len();
    let n16 = u16::try_from(n).map_err(|_| bad("tables"))?;
    let entry_selector = u16::try_from(n.max(1).ilog2()).map_err(|_| bad("tables"))?;
    let search_range = 16u16 << entry_selector;
    let mut out = Vec::new();
    out.extend_from_slice(&u32_at(font, 0)?.to_be_bytes());
    out.extend_from_slice(&n16.to_be_bytes());
    out.extend_from_slice(&search_range.to_be_bytes());
    out.extend_from_slice(&entry_selector.to_be_bytes());
    out.extend_from_slice(&(n16 * 16).saturating_sub(search_range).to_be_bytes());
    let mut offset = 12 + 16 * n;
    let mut head_at = None;
    for (tag, data) in &out_tables {
        if tag == b"head" {
            head_at = Some(offset);
        }
        out.extend_from_slice(tag);
        out.extend_from_slice(&checksum(data).to_be_bytes());
        let at = u32::try_from(offset).map_err(|_| bad("font too large"))?;
        let len = u32::try_from(data.len()).map_err(|_| bad("font too large"))?;
        out.extend_from_slice(&at.to_be_bytes());
        out.extend_from_slice(&len.to_be_bytes());
        offset += data.len().next_multiple_of(4);
    }
    for (_, data) in &out_tables {
        out.extend_from_slice(data);
        out.resize(out.len().next_multiple_of(4), 0);
    }
    let head_at = head_at.ok_or_else(|| bad("head"))?;
    let adjust = 0xB1B0_AFBAu32.wrapping_sub(checksum(&out));
    out.get_mut(head_at + 8..head_at + 12).ok_or_else(|| bad("head"))?.copy_from_slice(&adjust.to_be_bytes());
    Ok(out)
}

/// `hmtx` with the metrics of dropped glyphs zeroed (they compress to nothing).
fn subset_hmtx(hmtx: &[u8], long: usize, kept: &[bool]) -> Result<Vec<u8>, ReportError> {
    let mut out = hmtx.to_vec();
    for (g, &k) in kept.iter().enumerate() {
        if k {
            continue;
        }
        let (at, len) = if g < long { (4 * g, 4) } else { (4 * long + 2 * (g - long), 2) };
        if let Some(entry) = out.get_mut(at..at + len) {
            entry.fill(0);
        }
    }
    if out.len() < 4 * long {
        return Err(bad("hmtx"));
    }
    Ok(out)
}

/// The first (format 0) `kern` subtable with only pairs of kept glyphs; `None` if the table is
/// not the plain layout rusttype reads, in which case it is kept whole.
fn subset_kern(kern: &[u8], kept: &[bool]) -> Option<Vec<u8>> {
    let r16 = |at: usize| u16_at(kern, at).ok();
    if r16(0)? != 0 || r16(2)? == 0 || r16(8)? >> 8 != 0 {
        return None;
    }
    let n = usize::from(r16(10)?);
    let is_kept = |g: u16| kept.get(usize::from(g)).copied().unwrap_or(false);
    let mut pairs = Vec::new();
    for i in 0..n {
        let at = 18 + 6 * i;
        let pair = kern.get(at..at + 6)?;
        if is_kept(u16::from_be_bytes([pair[0], pair[1]])) && is_kept(u16::from_be_bytes([pair[2], pair[3]])) {
            pairs.extend_from_slice(pair);
        }
    }
    let n = u16::try_from(pairs.len() / 6).ok()?;
    let sel = if n == 0 { 0 } else { n.ilog2() };
    let range = 6u16.checked_mul(1 << sel)?;
    let sub_len = u16::try_from(14 + pairs.len()).ok()?;
    let mut out = Vec::with_capacity(18 + pairs.len());
    for v in [0u16, 1, 0, sub_len, r16(8)?, n, range, u16::try_from(sel).ok()?] {
        out.extend_from_slice(&v.to_be_bytes());
    }
    out.extend_from_slice(&(n.checked_mul(6)?).saturating_sub(range).to_be_bytes());
    out.extend_from_slice(&pairs);
    Some(out)
}

/// A `cmap` for exactly `chars`: a format 4 subtable (Windows, BMP), and a format 12 subtable
/// (Windows, full Unicode) only if a character lies beyond the BMP; one segment per character.
///
/// Format 4 alone matters for speed: printpdf asks the font for a glyph for every one of the
/// 1.1 million code points, and a format 4 table answers "none" for the million beyond U+FFFF
/// at once, where format 12 binary-searches each time.
fn build_cmap(chars: &BTreeMap<char, u16>) -> Result<Vec<u8>, ReportError> {
    let too_big = || bad("cmap too large");
    // Format 4: BMP characters, plus the mandatory final 0xFFFF segment.
    let bmp: Vec<(u16, u16)> =
        chars.iter().filter_map(|(&c, &g)| u16::try_from(u32::from(c)).ok().filter(|&c| c != 0xFFFF).map(|c| (c, g))).collect();
    let seg_count = u16::try_from(bmp.len() + 1).map_err(|_| too_big())?;
    let sel = seg_count.ilog2();
    let search = 2u16.checked_mul(1 << sel).ok_or_else(too_big)?;
    let f4_len = u16::try_from(16 + 8 * usize::from(seg_count)).map_err(|_| too_big())?;
    let mut f4 = Vec::new();
    let sel = u16::try_from(sel).map_err(|_| too_big())?;
    for v in [4u16, f4_len, 0, seg_count * 2, search, sel, seg_count * 2 - search] {
        f4.extend_from_slice(&v.to_be_bytes());
    }
    for &(c, _) in &bmp {
        f4.extend_from_slice(&c.to_be_bytes()); // endCode
    }
    f4.extend_from_slice(&[0xFF, 0xFF, 0, 0]); // last endCode, reservedPad
    for &(c, _) in &bmp {
        f4.extend_from_slice(&c.to_be_bytes()); // startCode
    }
    f4.extend_from_slice(&[0xFF, 0xFF]);
    for &(c, g) in &bmp {
        f4.extend_from_slice(&g.wrapping_sub(c).to_be_bytes()); // idDelta
    }
    f4.extend_from_slice(&1u16.to_be_bytes());
    f4.resize(f4.len() + 2 * usize::from(seg_count), 0); // idRangeOffset: all 0

    let mut out = Vec::new();
    let f4_at = 4u32 + 8;
    let astral = chars.len() > bmp.len();
    out.extend_from_slice(&0u16.to_be_bytes());
    out.extend_from_slice(&(if astral { 2u16 } else { 1 }).to_be_bytes());
    let f4_at = if astral { f4_at + 8 } else { f4_at };
    out.extend_from_slice(&[0, 3, 0, 1]);
    out.extend_from_slice(&f4_at.to_be_bytes());
    if astral {
        // Format 12 for characters beyond the BMP. rusttype uses the last Windows Unicode
        // subtable it finds, so this one, listed last, is the one it reads.
        let groups = u32::try_from(chars.len()).map_err(|_| too_big())?;
        out.extend_from_slice(&[0, 3, 0, 10]);
        out.extend_from_slice(&(f4_at + u32::from(f4_len)).to_be_bytes());
        out.extend_from_slice(&f4);
        out.extend_from_slice(&12u16.to_be_bytes());
        out.extend_from_slice(&0u16.to_be_bytes());
        for v in [16 + 12 * groups, 0, groups] {
            out.extend_from_slice(&v.to_be_bytes());
        }
        for (&c, &g) in chars {
            let c = u32::from(c);
            for v in [c, c, u32::from(g)] {
                out.extend_from_slice(&v.to_be_bytes());
            }
        }
    } else {
        out.extend_from_slice(&f4);
    }
    Ok(out)
}

#[cfg(test)]
impl Coverage {
    /// The font cache of the full fonts, for measuring in tests.
    pub(crate) fn cache_for_tests(&self) -> &FontCache {
        &self.cache
    }
}
