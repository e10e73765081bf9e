//! Making any input text drawable, and fitting it into a width.
//!
//! Report text comes from devices: names and signatures can hold any Unicode, control
//! characters or 10,000 characters without a space. [`Sanitizer::clean`] turns that into text
//! the embedded font can draw, with a visible mark for what it cannot, and records every
//! character used so the font subset holds it. [`fit`] and [`wrap`] then measure with the real
//! glyph widths; genpdf's own wrapper silently drops a word wider than its line, so report code
//! never hands it text that does not already fit.

use std::collections::BTreeSet;

use genpdf::Mm;
use genpdf::fonts::FontCache;
use genpdf::style::Style;

use super::fonts::Coverage;

/// The ellipsis that marks shortened text.
pub(crate) const ELLIPSIS: char = '\u{2026}';

/// Longest text kept from one input field, in characters. Nothing in the report shows more; the
/// cap keeps measuring and wrapping cheap whatever a device sends.
pub(crate) const MAX_CHARS: usize = 2000;

/// Cleans input text and remembers every character the report will draw.
pub(crate) struct Sanitizer<'a> {
    coverage: &'a Coverage,
    fallback: char,
    used: BTreeSet<char>,
}

impl<'a> Sanitizer<'a> {
    /// A sanitizer for the fonts in `coverage`. The fallback mark is U+FFFD if the fonts have it.
    pub(crate) fn new(coverage: &'a Coverage) -> Sanitizer<'a> {
        let fallback = if coverage.has('\u{FFFD}') { '\u{FFFD}' } else { '?' };
        let mut s = Sanitizer { coverage, fallback, used: BTreeSet::new() };
        // Characters the layout code adds itself: digits, punctuation of dates and numbers,
        // the ellipsis and the fallback mark. All of printable ASCII, so nothing is forgotten.
        s.used.extend((' '..='~').chain([ELLIPSIS, fallback, '\u{2013}', '\u{00B7}']));
        s
    }

    /// Records fixed text (from the [`super::strings::Strings`] table), however long: unlike
    /// [`Sanitizer::clean`] this does not stop at [`MAX_CHARS`], so no character of a language's
    /// table is left out of the font subset.
    pub(crate) fn note(&mut self, text: &str) {
        for c in text.chars() {
            let c = self.map(c);
            self.used.insert(c);
        }
    }

    /// The character drawn for `c`.
    fn map(&self, c: char) -> char {
        match c {
            '\t' | '\n' | '\r' | '\u{2028}' | '\u{2029}' => ' ',
            // Invisible format characters (zero width, bidi overrides, BOM): drawn as the
            // mark, so a spoofed name shows that something is hidden in it.
            '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{206F}' | '\u{FEFF}' | '\u{FFF9}'..='\u{FFFB}' => {
                self.fallback
            }
            c if c.is_control() => self.fallback,
            c if self.coverage.has(c) => c,
            _ => self.fallback,
        }
    }

    /// `text` with every character the fonts cannot draw replaced by the fallback mark, line
    /// breaks and tabs turned into spaces, and at most [`MAX_CHARS`] characters (then an
    /// ellipsis).
    pub(crate) fn clean(&mut self, text: &str) -> String {
        let mut out = String::with_capacity(text.len().min(MAX_CHARS * 4));
        for (i, c) in text.chars().enumerate() {
            if i == MAX_CHARS {
                out.push(ELLIPSIS);
                break;
            }
            let c = self.map(c);
            self.used.insert(c);
            out.push(c);
        }
        out
    }

    /// Every character cleaned or noted so far.
    pub(crate) fn used(&self) -> &BTreeSet<char> {
        &self.used
    }
}

/// Width of `c` in `style`.
fn char_width(cache: &FontCache, style: Style, c: char) -> Mm {
    style.char_width(cache, c)
}

/// `text` shortened with an ellipsis so that it fits into `width`; empty if not even the
/// ellipsis fits.
pub(crate) fn fit(cache: &FontCache, style: Style, text: &str, width: Mm) -> String {
    if style.str_width(cache, text) <= width {
        return text.to_owned();
    }
    force_ellipsis(cache, style, text, width)
}

/// Width in mm of `text` on one line as [`wrap`] measures it: glyph by glyph (genpdf's
/// `str_width` can come out a little narrower, and a word measured so would not fit).
pub(crate) fn line_width(cache: &FontCache, style: Style, text: &str) -> f64 {
    text.chars().map(|c| f64::from(char_width(cache, style, c))).sum()
}

/// Width in mm of the widest space-separated word of `text` in `style`: the narrowest a line
/// can be without breaking a word.
pub(crate) fn widest_word(cache: &FontCache, style: Style, text: &str) -> f64 {
    text.split(' ').map(|w| line_width(cache, style, w)).fold(0.0, f64::max)
}

/// The longest prefix of `text` followed by an ellipsis that fits into `width`.
fn force_ellipsis(cache: &FontCache, style: Style, text: &str, width: Mm) -> String {
    let room = width - char_width(cache, style, ELLIPSIS);
    let mut used = Mm::from(0.0);
    let mut out = String::new();
    if room < Mm::from(0.0) {
        return out;
    }
    for c in text.chars() {
        used += char_width(cache, style, c);
        if used > room {
            break;
        }
        out.push(c);
    }
    let trimmed = out.trim_end().len();
    out.truncate(trimmed);
    out.push(ELLIPSIS);
    out
}

/// Characters after which a word may break when it does not fit: host names, paths, versions,
/// rule ids and hyphenated words break there (not at ':', which would split times) before they break between arbitrary letters.
const BREAK_AFTER: [char; 7] = ['-', '.', '/', '_', ',', ';', '\\'];

/// The pieces of `text` that wrapping keeps together, each with whether a space precedes it.
fn pieces(text: &str) -> impl Iterator<Item = (&str, bool)> {
    text.split(' ')
        .filter(|w| !w.is_empty())
        .flat_map(|word| word.split_inclusive(BREAK_AFTER).enumerate().map(|(i, piece)| (piece, i == 0)))
}

/// `text` broken into lines no wider than `width`: at spaces where possible, then after
/// punctuation, inside a word only where it has to be. With more than `max_lines` lines, the
/// last kept line ends in an ellipsis. Always at least one line (possibly empty).
pub(crate) fn wrap(cache: &FontCache, style: Style, text: &str, width: Mm, max_lines: usize) -> Vec<String> {
    let max_lines = max_lines.max(1);
    let space = char_width(cache, style, ' ');
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    let mut line_w = Mm::from(0.0);
    let mut truncated = false;
    'pieces: for (piece, spaced) in pieces(text) {
        let piece_w: Mm = piece.chars().map(|c| char_width(cache, style, c)).sum();
        let sep = if spaced && !line.is_empty() { space } else { Mm::from(0.0) };
        if !line.is_empty() && line_w + sep + piece_w <= width {
            if spaced {
                line.push(' ');
            }
            line.push_str(piece);
            line_w += sep + piece_w;
            continue;
        }
        if !line.is_empty() {
            lines.push(std::mem::take(&mut line));
            line_w = Mm::from(0.0);
            if lines.len() == max_lines {
                truncated = true;
                break;
            }
        }
        if piece_w <= width {
            line.push_str(piece);
            line_w = piece_w;
            continue;
        }
        // A piece wider than the line: break it between characters.
        for c in piece.chars() {
            let w = char_width(cache, style, c);
            if !line.is_empty() && line_w + w > width {
                lines.push(std::mem::take(&mut line));
                line_w = Mm::from(0.0);
                if lines.len() == max_lines {
                    truncated = true;
                    break 'pieces;
                }
            }
            line.push(c);
            line_w += w;
        }
    }
    if !truncated && (!line.is_empty() || lines.is_empty()) {
        if lines.len() == max_lines {
            truncated = true;
        } else {
            lines.push(line);
        }
    }
    if truncated && let Some(last) = lines.last_mut() {
        *last = force_ellipsis(cache, style, last, width);
    }
    lines
}
