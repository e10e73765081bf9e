//! Rollups: per series and time bucket, the min, max, sum, count and last value.
//!
//! Buckets of one [`Level`] (1 min, 1 h, 1 day) are stored packed, many to an entry
//! ([`chunk`](super::chunk)). 0.1.0 kept one entry per bucket, keyed by
//! [`keys::rollup_key`](super::keys::rollup_key) (bucket first, then series), 48 bytes: min,
//! max, sum, last (f64 bits BE), count (u64 BE), time of the last value (i64 BE); the upgrade
//! reads those with [`Aggregate::decode`].

/// A rollup resolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Level {
    /// One-minute buckets.
    Minute,
    /// One-hour buckets.
    Hour,
    /// One-day buckets (UTC days).
    Day,
}

impl Level {
    /// Every level, finest first.
    pub const ALL: [Level; 3] = [Level::Minute, Level::Hour, Level::Day];
    /// The levels the fold writes; minutes are computed from raw points while those are kept.
    pub const FOLDED: [Level; 2] = [Level::Hour, Level::Day];

    /// Bucket width in milliseconds.
    pub fn ms(self) -> i64 {
        match self {
            Level::Minute => 60_000,
            Level::Hour => 3_600_000,
            Level::Day => 86_400_000,
        }
    }

    /// Index into per-level arrays.
    pub fn index(self) -> usize {
        self as usize
    }

    /// Start of the bucket holding `ts`.
    pub fn bucket(self, ts: i64) -> i64 {
        floor_to(ts, self.ms())
    }

    /// The coarsest level whose buckets tile buckets of `step` ms exactly, if any.
    pub fn for_step(step: i64) -> Option<Level> {
        Level::ALL.into_iter().rev().find(|l| step >= l.ms() && step % l.ms() == 0)
    }
}

/// `ts` rounded down to a multiple of `width` (towards minus infinity).
pub fn floor_to(ts: i64, width: i64) -> i64 {
    ts.div_euclid(width).saturating_mul(width)
}

/// `ts` rounded up to a multiple of `width`, saturating.
pub fn ceil_to(ts: i64, width: i64) -> i64 {
    let f = floor_to(ts, width);
    if f == ts { f } else { f.saturating_add(width) }
}

/// Summary of the points in one bucket.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Aggregate {
    /// Start of the bucket, Unix ms.
    pub ts: i64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
    /// Sum of the values.
    pub sum: f64,
    /// Number of points.
    pub count: u64,
    /// Value of the latest point.
    pub last: f64,
    /// Time of the latest point.
    pub last_ts: i64,
}

/// Encoded size of an [`Aggregate`] (without its bucket, which is in the key).
pub const ENCODED_LEN: usize = 48;

impl Aggregate {
    /// A bucket holding one point.
    pub fn of(bucket: i64, ts: i64, v: f64) -> Aggregate {
        Aggregate { ts: bucket, min: v, max: v, sum: v, count: 1, last: v, last_ts: ts }
    }

    /// Adds one point.
    pub fn add(&mut self, ts: i64, v: f64) {
        self.min = self.min.min(v);
        self.max = self.max.max(v);
        self.sum += v;
        self.count += 1;
        if ts > self.last_ts {
            self.last = v;
            self.last_ts = ts;
        }
    }

    /// Adds the points of another bucket (of the same or a finer level inside this one).
    pub fn merge(&mut self, o: &Aggregate) {
        self.min = self.min.min(o.min);
        self.max = self.max.max(o.max);
        self.sum += o.sum;
        self.count += o.count;
        if o.last_ts > self.last_ts {
            self.last = o.last;
            self.last_ts = o.last_ts;
        }
    }

    /// Mean of the values.
    pub fn mean(&self) -> f64 {
        if self.count == 0 { f64::NAN } else { self.sum / self.count as f64 }
    }

    /// The stored form.
    pub fn encode(&self) -> [u8; ENCODED_LEN] {
        let mut out = [0u8; ENCODED_LEN];
        out[0..8].copy_from_slice(&self.min.to_bits().to_be_bytes());
        out[8..16].copy_from_slice(&self.max.to_bits().to_be_bytes());
        out[16..24].copy_from_slice(&self.sum.to_bits().to_be_bytes());
        out[24..32].copy_from_slice(&self.last.to_bits().to_be_bytes());
        out[32..40].copy_from_slice(&self.count.to_be_bytes());
        out[40..48].copy_from_slice(&self.last_ts.to_be_bytes());
        out
    }

    /// Reads the stored form; `None` if the length is wrong.
    pub fn decode(bucket: i64, b: &[u8]) -> Option<Aggregate> {
        if b.len() != ENCODED_LEN {
            return None;
        }
        let w = |i: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&b[i..i + 8]);
            u64::from_be_bytes(a)
        };
        Some(Aggregate {
            ts: bucket,
            min: f64::from_bits(w(0)),
            max: f64::from_bits(w(8)),
            sum: f64::from_bits(w(16)),
            last: f64::from_bits(w(24)),
            count: w(32),
            last_ts: w(40) as i64,
        })
    }
}

/// Groups time-ordered points into buckets of `step` ms.
pub fn bucketize(points: &[(i64, f64)], step: i64) -> Vec<Aggregate> {
    let mut out: Vec<Aggregate> = Vec::new();
    for &(ts, v) in points {
        let b = floor_to(ts, step);
        match out.last_mut() {
            Some(a) if a.ts == b => a.add(ts, v),
            _ => out.push(Aggregate::of(b, ts, v)),
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn levels_for_steps() {
        assert_eq!(Level::for_step(3_600_000), Some(Level::Hour));
        assert_eq!(Level::for_step(7 * 86_400_000), Some(Level::Day));
        assert_eq!(Level::for_step(5 * 60_000), Some(Level::Minute));
        assert_eq!(Level::for_step(90_000), None);
        assert_eq!(Level::for_step(1_000), None);
        assert_eq!(floor_to(-1, 60_000), -60_000);
        assert_eq!(ceil_to(1, 60_000), 60_000);
        assert_eq!(ceil_to(60_000, 60_000), 60_000);
    }

    #[test]
    fn aggregates_merge_and_round_trip() {
        let mut a = Aggregate::of(0, 10, 5.0);
        a.add(5, 1.0);
        a.add(20, 3.0);
        let mut b = Aggregate::of(0, 15, 9.0);
        b.merge(&a);
        assert_eq!((b.min, b.max, b.sum, b.count, b.last, b.last_ts), (1.0, 9.0, 18.0, 4, 3.0, 20));
        assert_eq!(Aggregate::decode(0, &b.encode()), Some(b));
        assert_eq!(Aggregate::decode(0, &[0; 3]), None);
    }
}
