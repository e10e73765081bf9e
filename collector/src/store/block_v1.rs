//! Blocks as 0.1.0 wrote them (Gorilla: delta-of-delta timestamps, XOR values), read in place.
//!
//! | bytes  | field                                                               |
//! |--------|---------------------------------------------------------------------|
//! | 0..4   | number of points (u32 BE, 1..=1024, so byte 0 is always 0)          |
//! | 4..12  | first timestamp (i64 BE)                                            |
//! | 12..20 | last timestamp (i64 BE)                                             |
//! | 20..28 | last delta (i64 BE)                                                 |
//! | 28..36 | last value (f64 bits BE)                                            |
//! | 36     | leading zeros of the current XOR window, 0xff before the first      |
//! | 37     | trailing zeros of the current XOR window                            |
//! | 38..42 | length of the bit stream in bits (u32 BE)                           |
//! | 42..   | the bit stream, most significant bit first, zero-padded             |
//!
//! New blocks are written in the format of [`super::block`]; a legacy block is never appended
//! to, only read, or decoded and re-encoded when a late point lands inside it.

use super::block::BlockError;
use super::codec::BitReader;

/// Header length in bytes.
const HEADER_LEN: usize = 42;
/// Most points in one block.
const MAX_POINTS: u32 = 1024;
/// Marks "no XOR window yet" in the header.
const NO_WINDOW: u8 = 0xff;

/// The fixed part of a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Header {
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
    pub(super) fn parse(bytes: &[u8]) -> Result<Header, BlockError> {
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
        if h.count == 0 || h.count > MAX_POINTS || h.last_ts < h.first_ts {
            return Err(BlockError::Inconsistent);
        }
        Ok(h)
    }
}

/// Decodes a stored block into its points, calling `f` for each in time order.
pub(super) fn for_each(bytes: &[u8], mut f: impl FnMut(i64, f64)) -> Result<Header, BlockError> {
    let h = Header::parse(bytes)?;
    let mut r = BitReader::new(&bytes[HEADER_LEN..], u64::from(h.bits));
    let (mut ts, mut delta, mut value) = (h.first_ts, 0i64, 0u64);
    let (mut lead, mut trail) = (NO_WINDOW, 0u8);
    for i in 0..h.count {
        let dod = if r.read(1)? == 0 {
            0
        } else if r.read(1)? == 0 {
            r.signed(7)?
        } else if r.read(1)? == 0 {
            r.signed(12)?
        } else if r.read(1)? == 0 {
            r.signed(20)?
        } else if r.read(1)? == 0 {
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
        if r.read(1)? == 1 {
            let xor = if r.read(1)? == 0 {
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
    if ts != h.last_ts || value != h.last_value || !r.at_end() {
        return Err(BlockError::Inconsistent);
    }
    Ok(h)
}
