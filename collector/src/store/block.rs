//! Compressed blocks of one series' points, Gorilla style (Pelkonen et al., VLDB 2015).
//!
//! Timestamps are stored as delta-of-delta, values as the XOR with the previous value, both in
//! a bit stream. The header carries the encoder's state, so the fold appends to a block without
//! decoding it:
//!
//! | bytes  | field                                                               |
//! |--------|---------------------------------------------------------------------|
//! | 0..4   | number of points (u32 BE)                                           |
//! | 4..12  | first timestamp (i64 BE)                                            |
//! | 12..20 | last timestamp (i64 BE)                                             |
//! | 20..28 | last delta (i64 BE)                                                 |
//! | 28..36 | last value (f64 bits BE)                                            |
//! | 36     | leading zeros of the current XOR window, [`NO_WINDOW`] before the first |
//! | 37     | trailing zeros of the current XOR window                            |
//! | 38..42 | length of the bit stream in bits (u32 BE)                           |
//! | 42..   | the bit stream, most significant bit first, zero-padded             |
//!
//! The encoder starts from "previous timestamp = first timestamp, previous delta = 0, previous
//! value = 0", so the first point is coded like every other. Timestamps within a block strictly
//! increase. A block is full at [`MAX_POINTS`] points or when one more point might push it past
//! [`MAX_BYTES`]: that keeps every block inside one LMDB leaf page, so rewriting the open block
//! of a series never allocates runs of overflow pages.

/// Header length in bytes.
pub const HEADER_LEN: usize = 42;
/// Most points in one block.
pub const MAX_POINTS: u32 = 1024;
/// Largest encoded block. LMDB keeps values up to about 2 000 bytes inline in a 4 KiB page.
pub const MAX_BYTES: usize = 1_900;
/// Largest encoding of one point: timestamp 5 + 64 bits, value 2 + 6 + 6 + 64 bits.
const MAX_POINT_BYTES: usize = 19;
/// Marks "no XOR window yet" in the header.
pub const NO_WINDOW: u8 = 0xff;

/// Why a stored block does not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    /// Shorter than its header says.
    #[error("block truncated")]
    Truncated,
    /// The bit stream does not hold the number of points the header announces, or its
    /// timestamps do not increase.
    #[error("block bit stream inconsistent with its header")]
    Inconsistent,
}

/// The fixed part of a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Points in the block.
    pub count: u32,
    /// Timestamp of the first point (the block's key).
    pub first_ts: i64,
    /// Timestamp of the last point.
    pub last_ts: i64,
    last_delta: i64,
    last_value: u64,
    lead: u8,
    trail: u8,
    bits: u32,
}

fn be_u64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_be_bytes(a)
}

fn be_u32(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_be_bytes(a)
}

impl Header {
    /// Reads and checks the header of a stored block.
    pub fn parse(bytes: &[u8]) -> Result<Header, BlockError> {
        if bytes.len() < HEADER_LEN {
            return Err(BlockError::Truncated);
        }
        let h = Header {
            count: be_u32(bytes, 0),
            first_ts: be_u64(bytes, 4) as i64,
            last_ts: be_u64(bytes, 12) as i64,
            last_delta: be_u64(bytes, 20) as i64,
            last_value: be_u64(bytes, 28),
            lead: bytes[36],
            trail: bytes[37],
            bits: be_u32(bytes, 38),
        };
        if bytes.len() - HEADER_LEN != (h.bits as usize).div_ceil(8) {
            return Err(BlockError::Truncated);
        }
        if h.count == 0 || h.last_ts < h.first_ts {
            return Err(BlockError::Inconsistent);
        }
        Ok(h)
    }

    fn write(&self, out: &mut [u8]) {
        out[0..4].copy_from_slice(&self.count.to_be_bytes());
        out[4..12].copy_from_slice(&self.first_ts.to_be_bytes());
        out[12..20].copy_from_slice(&self.last_ts.to_be_bytes());
        out[20..28].copy_from_slice(&self.last_delta.to_be_bytes());
        out[28..36].copy_from_slice(&self.last_value.to_be_bytes());
        out[36] = self.lead;
        out[37] = self.trail;
        out[38..42].copy_from_slice(&self.bits.to_be_bytes());
    }
}

/// Builds a block, from scratch or by resuming a stored one.
#[derive(Debug, Clone)]
pub struct Builder {
    header: Header,
    /// Header placeholder followed by the bit stream.
    buf: Vec<u8>,
}

impl Builder {
    /// A block whose first point is `(ts, value)`.
    pub fn new(ts: i64, value: f64) -> Builder {
        let header = Header { count: 0, first_ts: ts, last_ts: ts, last_delta: 0, last_value: 0, lead: NO_WINDOW, trail: 0, bits: 0 };
        let mut b = Builder { header, buf: Vec::with_capacity(256) };
        b.buf.resize(HEADER_LEN, 0);
        b.encode(ts, value.to_bits());
        b
    }

    /// Continues a stored block. The bytes are copied; the header is checked but the stream is
    /// not decoded.
    pub fn resume(bytes: &[u8]) -> Result<Builder, BlockError> {
        let header = Header::parse(bytes)?;
        let mut buf = Vec::with_capacity(bytes.len() + 64);
        buf.extend_from_slice(bytes);
        Ok(Builder { header, buf })
    }

    /// Points so far.
    pub fn count(&self) -> u32 {
        self.header.count
    }

    /// Timestamp of the last point.
    pub fn last_ts(&self) -> i64 {
        self.header.last_ts
    }

    /// Whether one more point is guaranteed to fit.
    pub fn has_room(&self) -> bool {
        self.header.count < MAX_POINTS && self.buf.len() + MAX_POINT_BYTES <= MAX_BYTES
    }

    /// Appends a point. The caller keeps timestamps strictly increasing and checks
    /// [`has_room`](Self::has_room); a point that breaks the order is refused with `false`.
    pub fn push(&mut self, ts: i64, value: f64) -> bool {
        if ts <= self.header.last_ts {
            return false;
        }
        self.encode(ts, value.to_bits());
        true
    }

    fn encode(&mut self, ts: i64, bits: u64) {
        let h = &mut self.header;
        let delta = ts.wrapping_sub(h.last_ts);
        let dod = delta.wrapping_sub(h.last_delta);
        let mut w = BitWriter { buf: &mut self.buf, bits: h.bits as u64 };
        if dod == 0 {
            w.write(0, 1);
        } else if fits(dod, 7) {
            w.write(0b10, 2);
            w.write(dod as u64, 7);
        } else if fits(dod, 12) {
            w.write(0b110, 3);
            w.write(dod as u64, 12);
        } else if fits(dod, 20) {
            w.write(0b1110, 4);
            w.write(dod as u64, 20);
        } else if fits(dod, 32) {
            w.write(0b11110, 5);
            w.write(dod as u64, 32);
        } else {
            w.write(0b11111, 5);
            w.write(dod as u64, 64);
        }
        let xor = bits ^ h.last_value;
        if xor == 0 {
            w.write(0, 1);
        } else {
            let lead = xor.leading_zeros().min(63) as u8;
            let trail = xor.trailing_zeros() as u8;
            if h.lead != NO_WINDOW && lead >= h.lead && trail >= h.trail {
                let len = 64 - u32::from(h.lead) - u32::from(h.trail);
                w.write(0b10, 2);
                w.write(xor >> h.trail, len);
            } else {
                let len = 64 - u32::from(lead) - u32::from(trail);
                w.write(0b11, 2);
                w.write(u64::from(lead), 6);
                w.write(u64::from(len - 1), 6);
                w.write(xor >> trail, len);
                h.lead = lead;
                h.trail = trail;
            }
        }
        h.bits = w.bits as u32;
        h.count += 1;
        h.last_ts = ts;
        h.last_delta = delta;
        h.last_value = bits;
    }

    /// The encoded block.
    pub fn finish(mut self) -> Vec<u8> {
        let header = self.header;
        header.write(&mut self.buf[..HEADER_LEN]);
        self.buf
    }
}

/// Whether `v` fits in a two's-complement field of `n` bits.
fn fits(v: i64, n: u32) -> bool {
    let half = 1i64 << (n - 1);
    (-half..half).contains(&v)
}

struct BitWriter<'a> {
    buf: &'a mut Vec<u8>,
    /// Bits written to the stream (after the header).
    bits: u64,
}

impl BitWriter<'_> {
    /// Writes the low `n` bits of `v`, most significant first.
    fn write(&mut self, v: u64, n: u32) {
        let mut left = n;
        while left > 0 {
            let used = (self.bits % 8) as u32;
            if used == 0 {
                self.buf.push(0);
            }
            let free = 8 - used;
            let take = free.min(left);
            let chunk = ((v >> (left - take)) & ((1u64 << take) - 1)) as u8;
            if let Some(last) = self.buf.last_mut() {
                *last |= chunk << (free - take);
            }
            left -= take;
            self.bits += u64::from(take);
        }
    }
}

struct BitReader<'a> {
    stream: &'a [u8],
    pos: u64,
    end: u64,
}

impl BitReader<'_> {
    fn read(&mut self, n: u32) -> Result<u64, BlockError> {
        if self.pos + u64::from(n) > self.end {
            return Err(BlockError::Inconsistent);
        }
        let mut v = 0u64;
        let mut left = n;
        while left > 0 {
            let byte = self.stream[(self.pos / 8) as usize];
            let used = (self.pos % 8) as u32;
            let avail = 8 - used;
            let take = avail.min(left);
            let chunk = (byte >> (avail - take)) & (((1u16 << take) - 1) as u8);
            v = (v << take) | u64::from(chunk);
            left -= take;
            self.pos += u64::from(take);
        }
        Ok(v)
    }

    fn bit(&mut self) -> Result<bool, BlockError> {
        Ok(self.read(1)? == 1)
    }

    fn signed(&mut self, n: u32) -> Result<i64, BlockError> {
        let v = self.read(n)?;
        Ok(if n == 64 { v as i64 } else { ((v << (64 - n)) as i64) >> (64 - n) })
    }
}

/// Decodes a stored block into its points, calling `f` for each in time order.
pub fn for_each(bytes: &[u8], mut f: impl FnMut(i64, f64)) -> Result<Header, BlockError> {
    let h = Header::parse(bytes)?;
    let mut r = BitReader { stream: &bytes[HEADER_LEN..], pos: 0, end: u64::from(h.bits) };
    let (mut ts, mut delta, mut value) = (h.first_ts, 0i64, 0u64);
    let (mut lead, mut trail) = (NO_WINDOW, 0u8);
    for i in 0..h.count {
        let dod = if !r.bit()? {
            0
        } else if !r.bit()? {
            r.signed(7)?
        } else if !r.bit()? {
            r.signed(12)?
        } else if !r.bit()? {
            r.signed(20)?
        } else if !r.bit()? {
            r.signed(32)?
        } else {
            r.signed(64)?
        };
        delta = delta.wrapping_add(dod);
        let next = ts.wrapping_add(delta);
        if i > 0 && next <= ts {
            return Err(BlockError::Inconsistent);
        }
        ts = next;
        if r.bit()? {
            let xor = if !r.bit()? {
                if lead == NO_WINDOW {
                    return Err(BlockError::Inconsistent);
                }
                let len = 64 - u32::from(lead) - u32::from(trail);
                r.read(len)? << trail
            } else {
                lead = r.read(6)? as u8;
                let len = r.read(6)? as u32 + 1;
                if u32::from(lead) + len > 64 {
                    return Err(BlockError::Inconsistent);
                }
                trail = (64 - u32::from(lead) - len) as u8;
                r.read(len)? << trail
            };
            value ^= xor;
        }
        f(ts, f64::from_bits(value));
    }
    if ts != h.last_ts || value != h.last_value || r.pos != r.end {
        return Err(BlockError::Inconsistent);
    }
    Ok(h)
}

/// Decodes a stored block into a vector.
pub fn decode(bytes: &[u8]) -> Result<Vec<(i64, f64)>, BlockError> {
    let mut out = Vec::with_capacity(Header::parse(bytes)?.count as usize);
    for_each(bytes, |t, v| out.push((t, v)))?;
    Ok(out)
}

/// Encodes points (strictly increasing timestamps) into as many blocks as they need.
pub fn encode_all(points: &[(i64, f64)]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut cur: Option<Builder> = None;
    for &(ts, v) in points {
        let pushed = match cur.as_mut() {
            Some(b) => b.has_room() && b.push(ts, v),
            None => false,
        };
        if !pushed {
            if let Some(b) = cur.take() {
                out.push(b.finish());
            }
            cur = Some(Builder::new(ts, v));
        }
    }
    if let Some(b) = cur {
        out.push(b.finish());
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn strictly_increasing(mut ts: Vec<i64>) -> Vec<i64> {
        ts.sort_unstable();
        ts.dedup();
        ts
    }

    proptest! {
        /// Whatever the timestamps and values (NaN payloads, infinities, extremes), a block
        /// gives back exactly what went in, also when built by resuming stored blocks.
        #[test]
        fn blocks_round_trip(ts in proptest::collection::vec(any::<i64>(), 1..600),
                             vals in proptest::collection::vec(any::<u64>(), 600),
                             split in 0usize..600) {
            let ts = strictly_increasing(ts);
            let pts: Vec<(i64, f64)> = ts.iter().zip(&vals).map(|(t, v)| (*t, f64::from_bits(*v))).collect();
            let blocks = encode_all(&pts);
            let mut back = Vec::new();
            for b in &blocks {
                prop_assert!(b.len() <= MAX_BYTES);
                back.extend(decode(b).unwrap());
            }
            let bits = |p: &[(i64, f64)]| p.iter().map(|(t, v)| (*t, v.to_bits())).collect::<Vec<_>>();
            prop_assert_eq!(bits(&back), bits(&pts));

            // Resume after `split` points: same content.
            let cut = split.min(pts.len() - 1) + 1;
            let first = encode_all(&pts[..cut]);
            let mut b = Builder::resume(first.last().unwrap()).unwrap();
            let mut ok = true;
            for &(t, v) in &pts[cut..] {
                if !b.has_room() { ok = false; break; }
                prop_assert!(b.push(t, v));
            }
            if ok {
                let resumed = b.finish();
                let mut all: Vec<(i64, f64)> = first[..first.len() - 1].iter().flat_map(|b| decode(b).unwrap()).collect();
                all.extend(decode(&resumed).unwrap());
                prop_assert_eq!(bits(&all), bits(&pts));
            }
        }

        /// Damaged bytes give an error, never a panic.
        #[test]
        fn damaged_blocks_do_not_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode(&bytes);
        }
    }

    #[test]
    fn regular_series_compress_well() {
        // A counter-like gauge sampled every 10 s: far below 16 bytes per raw point.
        let pts: Vec<(i64, f64)> = (0..1000).map(|i| (1_700_000_000_000 + i * 10_000, (1000 + i % 50) as f64)).collect();
        let blocks = encode_all(&pts);
        let bytes: usize = blocks.iter().map(Vec::len).sum();
        assert!(bytes < 1000 * 3, "{bytes} bytes for 1000 points");
        let constant: Vec<(i64, f64)> = (0..1000).map(|i| (i * 1000, 42.0)).collect();
        let bytes: usize = encode_all(&constant).iter().map(Vec::len).sum();
        assert!(bytes < 400, "{bytes} bytes for 1000 constant points");
    }

    #[test]
    fn out_of_order_pushes_are_refused() {
        let mut b = Builder::new(10, 1.0);
        assert!(!b.push(10, 2.0));
        assert!(!b.push(5, 2.0));
        assert!(b.push(11, 2.0));
        assert_eq!(decode(&b.finish()).unwrap(), vec![(10, 1.0), (11, 2.0)]);
    }
}
