//! Peer-supplied text made safe for one log line.
//!
//! Anything a peer chose — an enrollment request's tenant, a payload's sender, an MQTT topic,
//! a decode error quoting the peer's bytes, a QUIC close reason, a collector's refusal read by
//! the agent — goes into a log field through [`esc`]. A newline there would start a forged log
//! entry; ESC, BEL or CR would rewrite what a terminal shows. [`Escaped`] writes control
//! characters, the backslash itself, Unicode line separators and bidirectional overrides as
//! Rust-style escapes (`\n`, `\u{1b}`, `\\`), and cuts the text at [`MAX_CHARS`] characters so one
//! field cannot flood the journal. It escapes while writing and allocates nothing.
//!
//! Strings the protocol has validated already ([`crate::TenantId`], [`crate::DeviceId`]) are
//! safe as they are and need no escaping.

use std::fmt::{self, Display, Write};

/// Characters of a peer's text written at most; the rest is replaced by a note of how much was
/// left out.
pub const MAX_CHARS: usize = 256;

/// A value whose `Display` output is escaped for a log line; made by [`esc`].
#[derive(Clone, Copy)]
pub struct Escaped<T>(T);

/// Wraps a peer-supplied value (a string, an error, anything `Display`) for logging:
/// `tracing::warn!(tenant = %esc(&tenant), "…")`.
pub fn esc<T: Display>(value: T) -> Escaped<T> {
    Escaped(value)
}

/// Whether `c` must not reach a log line as it is.
fn unsafe_char(c: char) -> bool {
    c.is_control()
        || c == '\\'
        // Line and paragraph separators; bidirectional embeddings, overrides and isolates
        // (they reorder what a reader sees); the byte-order mark.
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}' | '\u{feff}')
}

/// Escapes what it is given and counts characters, stopping at [`MAX_CHARS`].
struct EscapingWriter<'a, 'b> {
    out: &'a mut fmt::Formatter<'b>,
    written: usize,
    dropped: usize,
}

impl Write for EscapingWriter<'_, '_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for c in s.chars() {
            if self.written >= MAX_CHARS {
                self.dropped += 1;
                continue;
            }
            self.written += 1;
            match c {
                '\n' => self.out.write_str("\\n")?,
                '\r' => self.out.write_str("\\r")?,
                '\t' => self.out.write_str("\\t")?,
                '\\' => self.out.write_str("\\\\")?,
                c if unsafe_char(c) => write!(self.out, "\\u{{{:x}}}", u32::from(c))?,
                c => self.out.write_char(c)?,
            }
        }
        Ok(())
    }
}

impl<T: Display> Display for Escaped<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut w = EscapingWriter { out: f, written: 0, dropped: 0 };
        write!(w, "{}", self.0)?;
        let dropped = w.dropped;
        if dropped > 0 {
            write!(f, "…[{dropped} more characters]")?;
        }
        Ok(())
    }
}

impl<T: Display> fmt::Debug for Escaped<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_separators_and_backslashes_are_escaped() {
        let forged = "acme\n2026-01-01T00:00:00Z ERROR forged\r\x1b[31m\x07\\n\u{202e}tab\there";
        let out = esc(forged).to_string();
        assert_eq!(out, "acme\\n2026-01-01T00:00:00Z ERROR forged\\r\\u{1b}[31m\\u{7}\\\\n\\u{202e}tab\\there");
        assert!(!out.chars().any(|c| c.is_control()));
        assert_eq!(esc("fw-1.acme_2").to_string(), "fw-1.acme_2", "ordinary ids pass unchanged");
        assert_eq!(esc("Zürich").to_string(), "Zürich");
    }

    #[test]
    fn long_text_is_cut_with_a_note() {
        let out = esc("x".repeat(MAX_CHARS + 10)).to_string();
        assert!(out.starts_with(&"x".repeat(MAX_CHARS)));
        assert!(out.ends_with("…[10 more characters]"), "{out}");
    }

    #[test]
    fn errors_and_other_display_values_are_escaped_too() {
        let e = std::io::Error::other("closed by peer: bye\nERROR forged");
        assert_eq!(esc(&e).to_string(), "closed by peer: bye\\nERROR forged");
        assert_eq!(format!("{:?}", esc("a\nb")), "a\\nb");
    }
}
