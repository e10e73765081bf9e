//! Packed rollups: the buckets of one series and one stretch of time in one entry.
//!
//! A chunk holds up to [`Level::per_chunk`] buckets of one level (2 hours of minutes, 4 days of
//! hours, 128 days of days), keyed like a block by (series, chunk start). Its buckets are
//! coded column by column in one bit stream, each column with the codes of
//! [`codec`](super::codec): the bucket's position, its count and the offset of its last point
//! as Rice-coded differences, min, max, sum and last as value streams, each column with the
//! coder that makes it smallest (decimal, XOR, or near-decimal for sums, which f64 addition
//! leaves a few ulps off a decimal). An hour of a gauge sampled every 10 s then costs about a dozen bytes where
//! 0.1.0 spent 48 bytes plus a key and LMDB's per-entry overhead on every bucket.
//!
//! | bytes | field                                                        |
//! |-------|--------------------------------------------------------------|
//! | 0     | format: 1                                                    |
//! | 1..3  | number of buckets (u16 BE)                                   |
//! | 3..7  | coder of min, max, sum, last: [`codec::MODE_DECIMAL`], [`codec::MODE_XOR`] or [`codec::MODE_NEAR`] |
//! | 7..11 | the scale of each column coded [`codec::MODE_NEAR`]          |
//! | 11..15 | length of the bit stream in bits (u32 BE)                   |
//! | 15..  | per bucket: position, count, last offset; then the column of mins, of maxes, of sums, of lasts |
//!
//! Chunks are rewritten whole: the fold decodes the chunk a point lands in, adds the point to
//! its bucket and encodes the chunk again.

use std::ops::Bound;

use heed::RwTxn;

use super::codec::{self, BitReader, BitWriter, Coded, Plan, Rice, Values};
use super::rollup::{Aggregate, Level, floor_to};
use super::{Snapshot, Store, StoreError, keys, names};

const FORMAT: u8 = 1;
const HEADER_LEN: usize = 15;

/// Why a stored chunk does not decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("packed rollup does not decode")]
pub struct ChunkError;

impl From<codec::StreamError> for ChunkError {
    fn from(_: codec::StreamError) -> Self {
        ChunkError
    }
}

impl Level {
    /// Buckets in one chunk.
    pub fn per_chunk(self) -> i64 {
        match self {
            Level::Minute => 120,
            Level::Hour => 96,
            Level::Day => 128,
        }
    }

    /// Width of a chunk in ms.
    pub fn chunk_ms(self) -> i64 {
        self.ms() * self.per_chunk()
    }

    /// Start of the chunk holding `ts`.
    pub fn chunk(self, ts: i64) -> i64 {
        floor_to(ts, self.chunk_ms())
    }
}

fn columns(a: &Aggregate) -> [f64; 4] {
    [a.min, a.max, a.sum, a.last]
}

/// The coders a value column may use: decimals, XOR, or near-decimals at a few scales (sums).
fn candidates() -> impl Iterator<Item = Values> {
    [Values::start_mode(codec::MODE_DECIMAL), Values::start_mode(codec::MODE_XOR)]
        .into_iter()
        .chain([0, 1, 2, 3, 4].map(Values::start_near))
}

/// Codes one column with `start`.
fn code_column(start: Values, values: impl Iterator<Item = f64>) -> BitWriter {
    let mut v = start;
    let mut w = BitWriter::default();
    for x in values {
        let mut plan = Plan::default();
        v.plan(x, &mut plan);
        w.put(plan.pieces());
    }
    w
}

fn number(r: &mut BitReader<'_>, rice: &mut Rice) -> Result<i64, ChunkError> {
    match rice.read(r)? {
        Coded::Number(n) => Ok(n),
        Coded::Escape(_) => Err(ChunkError),
    }
}

/// Encodes the buckets of one chunk (sorted by bucket, all inside the chunk starting at `start`).
pub fn encode(level: Level, start: i64, buckets: &[Aggregate]) -> Vec<u8> {
    let (mut pos_rice, mut count_rice, mut off_rice) = (Rice::default(), Rice::default(), Rice::default());
    let (mut prev_pos, mut prev_count, mut prev_off) = (-1i64, 0i64, 0i64);
    let mut w = BitWriter::default();
    for a in buckets {
        let mut plan = Plan::default();
        let pos = (a.ts - start) / level.ms();
        pos_rice.plan(pos - prev_pos - 1, &mut plan);
        count_rice.plan((a.count as i64).wrapping_sub(prev_count), &mut plan);
        let off = a.last_ts.wrapping_sub(a.ts);
        off_rice.plan(off.wrapping_sub(prev_off), &mut plan);
        w.put(plan.pieces());
        (prev_pos, prev_count, prev_off) = (pos, a.count as i64, off);
    }
    // Each value column with whichever coder makes it smallest.
    let mut modes = [0u8; 4];
    let mut scales = [0u8; 4];
    for col in 0..4 {
        let values = || buckets.iter().map(move |a| columns(a)[col]);
        let (start, best) = candidates()
            .map(|c| (c, code_column(c, values())))
            .min_by_key(|(_, w)| w.bits)
            .unwrap_or_else(|| (Values::start_mode(codec::MODE_XOR), BitWriter::default()));
        (modes[col], scales[col]) = (start.mode, start.scale);
        w.append(&best);
    }
    let mut out = Vec::with_capacity(HEADER_LEN + w.buf.len());
    out.push(FORMAT);
    out.extend_from_slice(&(buckets.len() as u16).to_be_bytes());
    out.extend_from_slice(&modes);
    out.extend_from_slice(&scales);
    out.extend_from_slice(&(w.bits as u32).to_be_bytes());
    out.extend_from_slice(&w.buf);
    out
}

/// The coder a stored column starts with.
fn column_start(mode: u8, scale: u8) -> Result<Values, ChunkError> {
    match mode {
        codec::MODE_DECIMAL | codec::MODE_XOR => Ok(Values::start_mode(mode)),
        codec::MODE_NEAR if scale <= codec::MAX_SCALE => Ok(Values::start_near(scale)),
        _ => Err(ChunkError),
    }
}

/// Decodes a chunk of `level` starting at `start`.
pub fn decode(level: Level, start: i64, bytes: &[u8]) -> Result<Vec<Aggregate>, ChunkError> {
    if bytes.len() < HEADER_LEN || bytes[0] != FORMAT {
        return Err(ChunkError);
    }
    let n = u16::from_be_bytes([bytes[1], bytes[2]]);
    if i64::from(n) > level.per_chunk() {
        return Err(ChunkError);
    }
    let mut vals = [0, 1, 2, 3].map(|c| column_start(bytes[3 + c], bytes[7 + c]));
    let bits = u32::from_be_bytes([bytes[11], bytes[12], bytes[13], bytes[14]]);
    if (bits as usize).div_ceil(8) != bytes.len() - HEADER_LEN {
        return Err(ChunkError);
    }
    let mut r = BitReader::new(&bytes[HEADER_LEN..], u64::from(bits));
    let (mut pos_rice, mut count_rice, mut off_rice) = (Rice::default(), Rice::default(), Rice::default());
    let (mut pos, mut count, mut off) = (-1i64, 0i64, 0i64);
    let mut out = Vec::with_capacity(usize::from(n));
    for _ in 0..n {
        pos = pos.checked_add(number(&mut r, &mut pos_rice)?).and_then(|p| p.checked_add(1)).ok_or(ChunkError)?;
        count = count.wrapping_add(number(&mut r, &mut count_rice)?);
        off = off.wrapping_add(number(&mut r, &mut off_rice)?);
        if !(0..level.per_chunk()).contains(&pos) || count <= 0 || !(0..level.ms()).contains(&off) {
            return Err(ChunkError);
        }
        let ts = start + pos * level.ms();
        out.push(Aggregate { ts, min: 0.0, max: 0.0, sum: 0.0, count: count as u64, last: 0.0, last_ts: ts + off });
    }
    for (col, v) in vals.iter_mut().enumerate() {
        let v = v.as_mut().map_err(|e| *e)?;
        for a in &mut out {
            let x = v.read(&mut r)?;
            match col {
                0 => a.min = x,
                1 => a.max = x,
                2 => a.sum = x,
                _ => a.last = x,
            }
        }
    }
    if !r.at_end() {
        return Err(ChunkError);
    }
    Ok(out)
}

/// Adds time-ordered points to the buckets of a decoded chunk (sorted by bucket), point by
/// point, as 0.1.0's fold and readers added them.
pub fn add_points(level: Level, buckets: &mut Vec<Aggregate>, points: &[(i64, f64)]) {
    for &(ts, v) in points {
        let b = level.bucket(ts);
        match buckets.binary_search_by_key(&b, |a| a.ts) {
            Ok(i) => buckets[i].add(ts, v),
            Err(i) => buckets.insert(i, Aggregate::of(b, ts, v)),
        }
    }
}

/// Merges whole buckets into a decoded chunk.
pub fn merge_buckets(buckets: &mut Vec<Aggregate>, more: &[Aggregate]) {
    for a in more {
        match buckets.binary_search_by_key(&a.ts, |x| x.ts) {
            Ok(i) => buckets[i].merge(a),
            Err(i) => buckets.insert(i, *a),
        }
    }
}

impl Store {
    /// The decoded chunk of `level` for `series` starting at `start` (empty if none).
    fn chunk_in(&self, txn: &heed::RoTxn<'_>, level: Level, series: u64, start: i64) -> Result<Vec<Aggregate>, StoreError> {
        match self.packed[level.index()].get(txn, &keys::block_key(series, start)).map_err(self.lmdb())? {
            None => Ok(Vec::new()),
            Some(bytes) => decode(level, start, bytes).map_err(|e| self.corrupt(names::PACKED[level.index()], e)),
        }
    }

    /// Rewrites chunks of `level` for `series`: `f` changes the buckets of each chunk whose
    /// start `starts` yields.
    pub(super) fn update_chunks(
        &self,
        wtxn: &mut RwTxn<'_>,
        level: Level,
        series: u64,
        starts: impl IntoIterator<Item = i64>,
        mut f: impl FnMut(i64, &mut Vec<Aggregate>),
    ) -> Result<usize, StoreError> {
        let mut n = 0;
        for start in starts {
            let mut buckets = self.chunk_in(wtxn, level, series, start)?;
            f(start, &mut buckets);
            let bytes = encode(level, start, &buckets);
            self.packed[level.index()].put(wtxn, &keys::block_key(series, start), &bytes).map_err(self.lmdb())?;
            n += 1;
        }
        Ok(n)
    }

    /// Adds time-ordered points of `series` to its buckets of `level`. Returns the chunks
    /// written.
    pub(crate) fn add_to_chunks(
        &self,
        wtxn: &mut RwTxn<'_>,
        level: Level,
        series: u64,
        points: &[(i64, f64)],
    ) -> Result<usize, StoreError> {
        let mut starts: Vec<i64> = points.iter().map(|p| level.chunk(p.0)).collect();
        starts.dedup();
        self.update_chunks(wtxn, level, series, starts, |start, buckets| {
            let lo = points.partition_point(|p| p.0 < start);
            let hi = points.partition_point(|p| p.0 < start.saturating_add(level.chunk_ms()));
            add_points(level, buckets, &points[lo..hi]);
        })
    }

    /// Merges whole buckets (sorted) of `series` into its chunks of `level`.
    pub(crate) fn merge_into_chunks(
        &self,
        wtxn: &mut RwTxn<'_>,
        level: Level,
        series: u64,
        aggs: &[Aggregate],
    ) -> Result<usize, StoreError> {
        let mut starts: Vec<i64> = aggs.iter().map(|a| level.chunk(a.ts)).collect();
        starts.dedup();
        self.update_chunks(wtxn, level, series, starts, |start, buckets| {
            let lo = aggs.partition_point(|a| a.ts < start);
            let hi = aggs.partition_point(|a| a.ts < start.saturating_add(level.chunk_ms()));
            merge_buckets(buckets, &aggs[lo..hi]);
        })
    }

    /// Calls `f` with each stored bucket of `level` for `series` in `[a, b)` that ends after
    /// `horizon`, in time order.
    pub(crate) fn read_chunks(
        &self,
        snap: &Snapshot<'_>,
        level: Level,
        series: u64,
        (a, b): (i64, i64),
        horizon: i64,
        mut f: impl FnMut(Aggregate),
    ) -> Result<(), StoreError> {
        let (lo, hi) = (keys::block_key(series, level.chunk(a)), keys::block_key(series, b));
        let range = (Bound::Included(&lo[..]), Bound::Excluded(&hi[..]));
        for item in self.packed[level.index()].range(snap, &range).map_err(self.lmdb())? {
            let (k, v) = item.map_err(self.lmdb())?;
            let (_, start) = keys::split_point_key(k).ok_or_else(|| self.corrupt(names::PACKED[level.index()], "bad key"))?;
            let buckets = decode(level, start, v).map_err(|e| self.corrupt(names::PACKED[level.index()], e))?;
            for agg in buckets {
                if agg.ts >= a && agg.ts < b && agg.ts.saturating_add(level.ms()) > horizon {
                    f(agg);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn agg_bits(a: &Aggregate) -> (i64, u64, u64, u64, u64, u64, i64) {
        (a.ts, a.min.to_bits(), a.max.to_bits(), a.sum.to_bits(), a.count, a.last.to_bits(), a.last_ts)
    }

    proptest! {
        #[test]
        fn chunks_round_trip(points in proptest::collection::vec((0i64..96 * 3_600_000, -5000i64..5000, any::<u64>(), 0u8..8), 1..400)) {
            let mut pts: Vec<(i64, f64)> = points.iter()
                .map(|(t, i, bits, k)| (*t, if *k == 0 { f64::from_bits(*bits) } else { *i as f64 / 10.0 }))
                .collect();
            pts.sort_by_key(|p| p.0);
            let mut buckets = Vec::new();
            add_points(Level::Hour, &mut buckets, &pts);
            let back = decode(Level::Hour, 0, &encode(Level::Hour, 0, &buckets)).unwrap();
            prop_assert_eq!(back.iter().map(agg_bits).collect::<Vec<_>>(), buckets.iter().map(agg_bits).collect::<Vec<_>>());
        }

        #[test]
        fn damaged_chunks_do_not_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode(Level::Minute, 0, &bytes);
        }
    }

    #[test]
    fn an_hour_bucket_of_a_gauge_takes_a_few_bytes() {
        let pts: Vec<(i64, f64)> = (0..96 * 360).map(|i| (i * 10_000, f64::from((i * 7919 % 400) as i32) / 10.0)).collect();
        let mut buckets = Vec::new();
        add_points(Level::Hour, &mut buckets, &pts);
        let bytes = encode(Level::Hour, 0, &buckets).len();
        assert!(bytes < 96 * 20, "{bytes} bytes for 96 hour buckets");
    }
}
