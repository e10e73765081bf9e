//! Compressed blocks of one series' points.
//!
//! Timestamps are coded as delta-of-delta, values as decimal integers against a predictor or,
//! for values that are not short decimals, as Gorilla XORs ([`codec::Values`]); both with an
//! adaptive Rice code. A series sampled every 10 s whose value does not change costs two bits
//! a point; a percentage with one decimal that wanders costs about one byte. The header
//! carries the whole coder state, so the fold appends to a block without decoding it:
//!
//! | bytes  | field                                                               |
//! |--------|---------------------------------------------------------------------|
//! | 0      | format: 2 (a block of 0.1.0 starts with 0, see [`block_v1`](super::block_v1)) |
//! | 1..5   | number of points (u32 BE)                                           |
//! | 5..13  | first timestamp (i64 BE)                                            |
//! | 13..21 | last timestamp (i64 BE)                                             |
//! | 21..29 | last timestamp delta (i64 BE)                                       |
//! | 29..34 | timestamp Rice state (u32 BE sum, u8 count)                         |
//! | 34..36 | values escaped as floats in decimal mode (u16 BE)                   |
//! | 36..40 | length of the bit stream in bits (u32 BE)                           |
//! | 40..78 | value coder state ([`codec::Values`])                               |
//! | 78..   | the bit stream, most significant bit first, zero-padded             |
//!
//! The encoder starts from "previous timestamp = first timestamp, previous delta = 0", so the
//! first point is coded like every other. Timestamps within a block strictly increase. A block
//! holds at most [`MAX_BYTES`]: larger than LMDB keeps inline (about 2 000 bytes), so a full
//! block fills one 4 KiB overflow page to the last few bytes, and rewriting the open block of
//! a series copies one page.

use super::block_v1;
use super::codec::{self, BitReader, BitWriter, Plan, Rice, Values};

/// Header length in bytes.
pub const HEADER_LEN: usize = 40 + codec::VALUES_LEN;
/// Largest encoded block: one LMDB overflow page (4096 bytes less its 16-byte header).
pub const MAX_BYTES: usize = 4_080;
/// Most points in one block (a block of constant values at a fixed interval).
pub const MAX_POINTS: u32 = 1 << 15;
/// The format byte of this version's blocks.
const FORMAT: u8 = 2;

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

impl From<codec::StreamError> for BlockError {
    fn from(_: codec::StreamError) -> Self {
        BlockError::Inconsistent
    }
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
    /// Whether the block is in the format of 0.1.0 (read, never appended to).
    pub legacy: bool,
    last_delta: i64,
    ts_rice: Rice,
    floats: u16,
    bits: u32,
    values: Values,
}

fn be<const N: usize>(b: &[u8], at: usize) -> [u8; N] {
    let mut a = [0u8; N];
    a.copy_from_slice(&b[at..at + N]);
    a
}

impl Header {
    /// Reads and checks the header of a stored block, of either format.
    pub fn parse(bytes: &[u8]) -> Result<Header, BlockError> {
        match bytes.first() {
            None => Err(BlockError::Truncated),
            Some(0) => {
                let h = block_v1::Header::parse(bytes)?;
                Ok(Header {
                    count: h.count,
                    first_ts: h.first_ts,
                    last_ts: h.last_ts,
                    legacy: true,
                    last_delta: 0,
                    ts_rice: Rice::default(),
                    floats: 0,
                    bits: 0,
                    values: Values::start(0.0),
                })
            }
            Some(&FORMAT) => Header::parse_v2(bytes),
            Some(_) => Err(BlockError::Inconsistent),
        }
    }

    fn parse_v2(bytes: &[u8]) -> Result<Header, BlockError> {
        if bytes.len() < HEADER_LEN {
            return Err(BlockError::Truncated);
        }
        let values = Values::load(&bytes[40..]).ok_or(BlockError::Inconsistent)?;
        let h = Header {
            count: u32::from_be_bytes(be(bytes, 1)),
            first_ts: i64::from_be_bytes(be(bytes, 5)),
            last_ts: i64::from_be_bytes(be(bytes, 13)),
            legacy: false,
            last_delta: i64::from_be_bytes(be(bytes, 21)),
            ts_rice: Rice { a: u32::from_be_bytes(be(bytes, 29)), n: bytes[33] },
            floats: u16::from_be_bytes(be(bytes, 34)),
            bits: u32::from_be_bytes(be(bytes, 36)),
            values,
        };
        if bytes.len() - HEADER_LEN != (h.bits as usize).div_ceil(8) {
            return Err(BlockError::Truncated);
        }
        if h.count == 0 || h.count > MAX_POINTS || h.last_ts < h.first_ts || h.ts_rice.n == 0 {
            return Err(BlockError::Inconsistent);
        }
        Ok(h)
    }

    fn write(&self, out: &mut Vec<u8>) {
        out.push(FORMAT);
        out.extend_from_slice(&self.count.to_be_bytes());
        out.extend_from_slice(&self.first_ts.to_be_bytes());
        out.extend_from_slice(&self.last_ts.to_be_bytes());
        out.extend_from_slice(&self.last_delta.to_be_bytes());
        out.extend_from_slice(&self.ts_rice.a.to_be_bytes());
        out.push(self.ts_rice.n);
        out.extend_from_slice(&self.floats.to_be_bytes());
        out.extend_from_slice(&self.bits.to_be_bytes());
        self.values.store(out);
    }
}

/// Builds a block, from scratch or by resuming a stored one.
#[derive(Debug, Clone)]
pub struct Builder {
    header: Header,
    /// The bit stream (without the header).
    stream: BitWriter,
}

/// Why [`Builder::resume`] cannot continue a block.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResumeError {
    /// The block does not decode.
    #[error(transparent)]
    Damaged(#[from] BlockError),
    /// The block is in the 0.1.0 format: start a new block after it.
    #[error("block in the 0.1.0 format")]
    Legacy,
}

impl Builder {
    /// A block whose first point is `(ts, value)`.
    pub fn new(ts: i64, value: f64) -> Builder {
        let header = Header {
            count: 0,
            first_ts: ts,
            last_ts: ts,
            legacy: false,
            last_delta: 0,
            ts_rice: Rice::default(),
            floats: 0,
            bits: 0,
            values: Values::start(value),
        };
        let mut b = Builder { header, stream: BitWriter::default() };
        let pushed = b.append(ts, value);
        debug_assert!(pushed, "the first point always fits");
        b
    }

    /// Continues a stored block. The bytes are copied; the header is checked but the stream is
    /// not decoded.
    pub fn resume(bytes: &[u8]) -> Result<Builder, ResumeError> {
        let header = Header::parse(bytes)?;
        if header.legacy {
            return Err(ResumeError::Legacy);
        }
        let stream = BitWriter::resume(bytes[HEADER_LEN..].to_vec(), u64::from(header.bits));
        Ok(Builder { header, stream })
    }

    /// Points so far.
    pub fn count(&self) -> u32 {
        self.header.count
    }

    /// Timestamp of the last point.
    pub fn last_ts(&self) -> i64 {
        self.header.last_ts
    }

    /// Whether the block may take another point (it may still refuse one that is too large).
    pub fn has_room(&self) -> bool {
        self.header.count < MAX_POINTS
    }

    /// Appends a point; `false` (and nothing changed) when it is not newer than the last point
    /// or does not fit.
    pub fn push(&mut self, ts: i64, value: f64) -> bool {
        ts > self.header.last_ts && self.append(ts, value)
    }

    fn append(&mut self, ts: i64, value: f64) -> bool {
        if !self.has_room() {
            return false;
        }
        let mut h = self.header;
        let mut plan = Plan::default();
        let delta = ts.wrapping_sub(h.last_ts);
        h.ts_rice.plan(delta.wrapping_sub(h.last_delta), &mut plan);
        let float = h.values.plan(value, &mut plan);
        let bits = self.stream.bits + plan.bits();
        // A block that keeps meeting values its decimal code cannot hold ends early, so the
        // next one starts in XOR mode.
        let too_many_floats = float && h.count >= 8 && u32::from(h.floats) * 8 > h.count;
        if HEADER_LEN as u64 + bits.div_ceil(8) > MAX_BYTES as u64 || bits > u64::from(u32::MAX) || too_many_floats {
            return false;
        }
        self.stream.put(plan.pieces());
        h.floats += u16::from(float);
        h.bits = bits as u32;
        h.count += 1;
        h.last_ts = ts;
        h.last_delta = delta;
        self.header = h;
        true
    }

    /// The encoded block.
    pub fn finish(self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + self.stream.buf.len());
        self.header.write(&mut out);
        out.extend_from_slice(&self.stream.buf);
        out
    }
}

/// Decodes a stored block (of either format) into its points, calling `f` for each in time
/// order.
pub fn for_each(bytes: &[u8], f: impl FnMut(i64, f64)) -> Result<Header, BlockError> {
    for_each_before(bytes, i64::MAX, f)
}

/// Like [`for_each`], but stops at the first point at or after `end` (a whole block is checked
/// only when it is decoded to its end).
pub fn for_each_before(bytes: &[u8], end: i64, mut f: impl FnMut(i64, f64)) -> Result<Header, BlockError> {
    let h = Header::parse(bytes)?;
    if h.legacy {
        block_v1::for_each(bytes, |t, v| {
            if t < end {
                f(t, v);
            }
        })?;
        return Ok(h);
    }
    let mut r = BitReader::new(&bytes[HEADER_LEN..], u64::from(h.bits));
    let (mut ts, mut delta) = (h.first_ts, 0i64);
    let mut ts_rice = Rice::default();
    // The stored state is the one after the last point; only its mode, which never changes
    // within a block, is where decoding starts.
    let mut values = Values::start_mode(h.values.mode);
    for i in 0..h.count {
        let dod = match ts_rice.read(&mut r)? {
            codec::Coded::Number(n) => n,
            codec::Coded::Escape(_) => return Err(BlockError::Inconsistent),
        };
        delta = delta.wrapping_add(dod);
        let next = ts.wrapping_add(delta);
        if i > 0 && next <= ts {
            return Err(BlockError::Inconsistent);
        }
        ts = next;
        let v = values.read(&mut r)?;
        if ts >= end {
            return Ok(h);
        }
        f(ts, v);
    }
    if ts != h.last_ts || !r.at_end() {
        return Err(BlockError::Inconsistent);
    }
    Ok(h)
}

/// Decodes a stored block into a vector.
pub fn decode(bytes: &[u8]) -> Result<Vec<(i64, f64)>, BlockError> {
    let mut out = Vec::with_capacity(Header::parse(bytes)?.count.min(MAX_POINTS) as usize);
    for_each(bytes, |t, v| out.push((t, v)))?;
    Ok(out)
}

/// Encodes points (strictly increasing timestamps) into as many blocks as they need.
pub fn encode_all(points: &[(i64, f64)]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut cur: Option<Builder> = None;
    for &(ts, v) in points {
        let pushed = match cur.as_mut() {
            Some(b) => b.push(ts, v),
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

    fn bits(p: &[(i64, f64)]) -> Vec<(i64, u64)> {
        p.iter().map(|(t, v)| (*t, v.to_bits())).collect()
    }

    /// Values as agents send them: decimals mostly, sometimes anything at all.
    fn value_strategy() -> impl Strategy<Value = f64> {
        prop_oneof![
            4 => (-10_000i64..10_000, 0u32..3).prop_map(|(i, s)| i as f64 / 10f64.powi(s as i32)),
            1 => any::<u64>().prop_map(f64::from_bits),
            1 => prop_oneof![Just(f64::NAN), Just(-0.0), Just(f64::INFINITY), Just(f64::NEG_INFINITY), Just(5e-324), Just(1e308)],
        ]
    }

    proptest! {
        /// Whatever the timestamps and values (NaN payloads, infinities, extremes), a block
        /// gives back exactly what went in, also when built by resuming stored blocks.
        #[test]
        fn blocks_round_trip(ts in proptest::collection::vec(any::<i64>(), 1..600),
                             vals in proptest::collection::vec(value_strategy(), 600),
                             split in 0usize..600) {
            let ts = strictly_increasing(ts);
            let pts: Vec<(i64, f64)> = ts.iter().zip(&vals).map(|(t, v)| (*t, *v)).collect();
            let blocks = encode_all(&pts);
            let mut back = Vec::new();
            for b in &blocks {
                prop_assert!(b.len() <= MAX_BYTES);
                back.extend(decode(b).unwrap());
            }
            prop_assert_eq!(bits(&back), bits(&pts));

            // Resume after `split` points: same content.
            let cut = split.min(pts.len() - 1) + 1;
            let mut blocks = encode_all(&pts[..cut]);
            let mut b = Builder::resume(&blocks.pop().unwrap()).unwrap();
            for &(t, v) in &pts[cut..] {
                if !b.push(t, v) {
                    blocks.push(b.finish());
                    b = Builder::new(t, v);
                }
            }
            blocks.push(b.finish());
            let all: Vec<(i64, f64)> = blocks.iter().flat_map(|b| decode(b).unwrap()).collect();
            prop_assert_eq!(bits(&all), bits(&pts));
        }

        /// Damaged bytes give an error, never a panic.
        #[test]
        fn damaged_blocks_do_not_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200), flip in 0usize..4000) {
            let _ = decode(&bytes);
            let mut good = encode_all(&(0..300).map(|i| (i * 10_000, (i % 7) as f64 / 10.0)).collect::<Vec<_>>()).remove(0);
            let at = flip % good.len();
            good[at] ^= 0x5a;
            let _ = decode(&good);
        }
    }

    #[test]
    fn agent_like_series_take_about_a_byte_a_point_or_less() {
        let size = |pts: &[(i64, f64)]| encode_all(pts).iter().map(Vec::len).sum::<usize>() as f64 / pts.len() as f64;
        let t = |i: i64| 1_700_000_000_000 + i * 10_000;
        let constant: Vec<(i64, f64)> = (0..10_000).map(|i| (t(i), 0.0)).collect();
        assert!(size(&constant) < 0.3, "constant: {} bytes a point", size(&constant));
        let gauge: Vec<(i64, f64)> = (0..10_000).map(|i| (t(i), (300 + (i * 7919) % 41 - 20) as f64 / 10.0)).collect();
        assert!(size(&gauge) < 1.1, "one-decimal noise over 41 values: {} bytes a point", size(&gauge));
        let jitter: Vec<(i64, f64)> = (0..10_000).map(|i| (t(i) + (i * 31) % 3, 42.0)).collect();
        assert!(size(&jitter) < 0.7, "ms jitter: {} bytes a point", size(&jitter));
    }

    #[test]
    fn a_full_block_fills_one_overflow_page() {
        let pts: Vec<(i64, f64)> = (0..20_000).map(|i| (i * 1000, ((i * 7919) % 1000) as f64)).collect();
        let blocks = encode_all(&pts);
        assert!(blocks.len() > 2);
        for b in &blocks[..blocks.len() - 1] {
            assert!(b.len() <= MAX_BYTES && b.len() > MAX_BYTES - 16, "{}", b.len());
        }
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
