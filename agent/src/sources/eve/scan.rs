//! The fast path for EVE lines: one pass over the top-level object that picks out the fields
//! [`Event`] names and skips everything else without building anything.
//!
//! serde_json's derived reader spends most of an alert line in its generic visitor layers, which
//! the agent's size-optimised build does not inline; this walks the bytes directly. It is only
//! an accelerator: it either returns exactly the [`Event`] serde_json would have produced, or
//! gives up (`None`) and the line goes through serde_json as before. It gives up on anything it
//! does not handle itself — an escaped or non-UTF-8 key, an escaped string value, a duplicated
//! field, a number that is not a plain unsigned integer, a top level that is not an object — so
//! it never has to reproduce serde_json's handling of those. What it skips it validates as
//! strictly as serde_json's `IgnoredAny` does, so a line it accepts is one serde_json accepts:
//! malformed lines are still counted as before. The sections kept whole (`alert`, `stats`, ...)
//! are handed to serde_json on their own bytes.

use std::borrow::Cow;

use super::Event;

/// Deeper nesting than this gives up (serde_json then decides); EVE nests four or five levels.
const MAX_DEPTH: u32 = 64;

/// Reads `line` into an [`Event`], or `None` when serde_json has to decide.
pub(super) fn event(line: &[u8]) -> Option<Event<'_>> {
    let mut s = Scanner { b: line, i: 0 };
    s.ws();
    if s.peek()? != b'{' {
        return None;
    }
    s.i += 1;
    let mut ev = Event {
        timestamp: None,
        event_type: Cow::Borrowed(""),
        in_iface: None,
        src_ip: None,
        src_port: None,
        dest_ip: None,
        dest_port: None,
        proto: None,
        app_proto: None,
        alert: None,
        anomaly: None,
        drop: None,
        fileinfo: None,
        stats: None,
        flow: None,
    };
    let mut seen = 0u32;
    s.ws();
    if s.peek()? == b'}' {
        // `{}` lacks `event_type`: serde_json's error path counts it.
        return None;
    }
    loop {
        s.ws();
        let key = s.plain_str()?;
        s.ws();
        if s.peek()? != b':' {
            return None;
        }
        s.i += 1;
        s.ws();
        let field = match key {
            b"timestamp" => 0,
            b"event_type" => 1,
            b"in_iface" => 2,
            b"src_ip" => 3,
            b"src_port" => 4,
            b"dest_ip" => 5,
            b"dest_port" => 6,
            b"proto" => 7,
            b"app_proto" => 8,
            b"alert" => 9,
            b"anomaly" => 10,
            b"drop" => 11,
            b"fileinfo" => 12,
            b"stats" => 13,
            b"flow" => 14,
            _ => {
                // serde_json checks the UTF-8 of every top-level key (the known ones are ASCII).
                if !key.iter().all(u8::is_ascii) {
                    std::str::from_utf8(key).ok()?;
                }
                s.skip_value(0)?;
                u32::MAX
            }
        };
        if field != u32::MAX {
            // serde's derived reader refuses a duplicated field; its fallback decides.
            if seen & (1 << field) != 0 {
                return None;
            }
            seen |= 1 << field;
            match field {
                0 => ev.timestamp = s.opt_str()?,
                1 => ev.event_type = s.opt_str()??,
                2 => ev.in_iface = s.opt_str()?,
                3 => ev.src_ip = s.opt_str()?,
                4 => ev.src_port = s.opt_u16()?,
                5 => ev.dest_ip = s.opt_str()?,
                6 => ev.dest_port = s.opt_u16()?,
                7 => ev.proto = s.opt_str()?,
                8 => ev.app_proto = s.opt_str()?,
                9 => ev.alert = s.section()?,
                10 => ev.anomaly = s.section()?,
                11 => ev.drop = s.section()?,
                12 => ev.fileinfo = s.section()?,
                13 => ev.stats = s.section()?,
                _ => ev.flow = s.section()?,
            }
        }
        s.ws();
        match s.peek()? {
            b',' => s.i += 1,
            b'}' => {
                s.i += 1;
                break;
            }
            _ => return None,
        }
    }
    s.ws();
    // Trailing bytes, or no `event_type`: serde_json's error path decides.
    (s.i == line.len() && seen & 2 != 0).then_some(ev)
}

struct Scanner<'a> {
    b: &'a [u8],
    i: usize,
}

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

impl<'a> Scanner<'a> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    /// Skips JSON whitespace (the four bytes serde_json accepts).
    fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\t' | b'\r') = self.peek() {
            self.i += 1;
        }
    }

    /// From inside a string: advances to the first `"`, `\` or control byte and returns it.
    fn skip_to_special(&mut self) -> Option<u8> {
        while let Some(chunk) = self.b.get(self.i..self.i + 8) {
            let mut w = [0u8; 8];
            w.copy_from_slice(chunk);
            let x = u64::from_le_bytes(w);
            let q = x ^ (LO * u64::from(b'"'));
            let bs = x ^ (LO * u64::from(b'\\'));
            // Lowest flagged byte of each term is exact (borrows only run upwards), so the lowest
            // of their union is the first special byte.
            let t = (q.wrapping_sub(LO) & !q) | (bs.wrapping_sub(LO) & !bs) | (x.wrapping_sub(LO * 0x20) & !x);
            let t = t & HI;
            if t != 0 {
                self.i += (t.trailing_zeros() / 8) as usize;
                return self.peek();
            }
            self.i += 8;
        }
        while let Some(c) = self.peek() {
            if c == b'"' || c == b'\\' || c < 0x20 {
                return Some(c);
            }
            self.i += 1;
        }
        None
    }

    /// A string without escapes, as its bytes (the opening quote is next).
    fn plain_str(&mut self) -> Option<&'a [u8]> {
        if self.peek()? != b'"' {
            return None;
        }
        self.i += 1;
        let start = self.i;
        if self.skip_to_special()? != b'"' {
            return None;
        }
        let s = &self.b[start..self.i];
        self.i += 1;
        Some(s)
    }

    /// `null` or a plain string. Outer `None`: give up.
    fn opt_str(&mut self) -> Option<Option<Cow<'a, str>>> {
        if self.peek()? == b'n' {
            return self.literal(b"null").map(|()| None);
        }
        let s = std::str::from_utf8(self.plain_str()?).ok()?;
        Some(Some(Cow::Borrowed(s)))
    }

    /// `null` or an unsigned integer that fits a port. Outer `None`: give up.
    fn opt_u16(&mut self) -> Option<Option<u16>> {
        if self.peek()? == b'n' {
            return self.literal(b"null").map(|()| None);
        }
        let start = self.i;
        while let Some(b'0'..=b'9') = self.peek() {
            self.i += 1;
        }
        let digits = &self.b[start..self.i];
        // Leading zeros, fractions, exponents and empty numbers are left to serde_json.
        if digits.is_empty() || digits.len() > 5 || (digits.len() > 1 && digits[0] == b'0') {
            return None;
        }
        if let Some(b'.' | b'e' | b'E') = self.peek() {
            return None;
        }
        let v = digits.iter().fold(0u32, |v, d| v * 10 + u32::from(d - b'0'));
        Some(Some(u16::try_from(v).ok()?))
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        if self.b.get(self.i..self.i + word.len())? != word {
            return None;
        }
        self.i += word.len();
        Some(())
    }

    /// A section kept whole, read by serde_json where it starts (borrowing from the line); the
    /// scan goes on where serde_json stopped.
    fn section<T: serde::Deserialize<'a>>(&mut self) -> Option<Option<T>> {
        let mut stream = serde_json::Deserializer::from_slice(&self.b[self.i..]).into_iter::<Option<T>>();
        let value = stream.next()?.ok()?;
        self.i += stream.byte_offset();
        Some(value)
    }

    /// Skips one value, validating it as serde_json's `IgnoredAny` does (or more strictly).
    fn skip_value(&mut self, depth: u32) -> Option<()> {
        match self.peek()? {
            b'"' => {
                self.i += 1;
                loop {
                    match self.skip_to_special()? {
                        b'"' => {
                            self.i += 1;
                            return Some(());
                        }
                        b'\\' => {
                            self.i += 1;
                            match self.peek()? {
                                b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => self.i += 1,
                                b'u' => {
                                    let hex = self.b.get(self.i + 1..self.i + 5)?;
                                    if !hex.iter().all(u8::is_ascii_hexdigit) {
                                        return None;
                                    }
                                    self.i += 5;
                                }
                                _ => return None,
                            }
                        }
                        // A control byte inside a string.
                        _ => return None,
                    }
                }
            }
            b'{' | b'[' if depth >= MAX_DEPTH => None,
            b'{' => {
                self.i += 1;
                self.ws();
                if self.peek()? == b'}' {
                    self.i += 1;
                    return Some(());
                }
                loop {
                    self.ws();
                    if self.peek()? != b'"' {
                        return None;
                    }
                    self.skip_value(depth + 1)?;
                    self.ws();
                    if self.peek()? != b':' {
                        return None;
                    }
                    self.i += 1;
                    self.ws();
                    self.skip_value(depth + 1)?;
                    self.ws();
                    match self.peek()? {
                        b',' => self.i += 1,
                        b'}' => {
                            self.i += 1;
                            return Some(());
                        }
                        _ => return None,
                    }
                }
            }
            b'[' => {
                self.i += 1;
                self.ws();
                if self.peek()? == b']' {
                    self.i += 1;
                    return Some(());
                }
                loop {
                    self.ws();
                    self.skip_value(depth + 1)?;
                    self.ws();
                    match self.peek()? {
                        b',' => self.i += 1,
                        b']' => {
                            self.i += 1;
                            return Some(());
                        }
                        _ => return None,
                    }
                }
            }
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            b'-' | b'0'..=b'9' => self.skip_number(),
            _ => None,
        }
    }

    /// JSON's number grammar: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
    fn skip_number(&mut self) -> Option<()> {
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        match self.peek()? {
            b'0' => {
                self.i += 1;
                if let Some(b'0'..=b'9') = self.peek() {
                    return None;
                }
            }
            b'1'..=b'9' => self.digits(),
            _ => return None,
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return None;
            }
            self.digits();
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.i += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.i += 1;
            }
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return None;
            }
            self.digits();
        }
        Some(())
    }

    fn digits(&mut self) {
        while let Some(b'0'..=b'9') = self.peek() {
            self.i += 1;
        }
    }
}
