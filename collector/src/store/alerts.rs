//! Alert summaries: totals, top-N per dimension and counts per day, from hourly and daily
//! aggregates the fold maintains, so a month of a million alerts is summed from some ten
//! thousand counters instead of decoded one by one.
//!
//! Aggregates live in `alert-aggs` under [`keys::agg_key`]: per tenant, level (hour, day),
//! [`AlertDim`] and bucket, the number of alerts with that value. A summary of `[from, to)`
//! splits the range into whole days, whole hours at the edges and raw alerts for what is left
//! of an hour at either end, and adds the unfolded alerts of the log.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;

use ampel_protocol::{Alert, AlertSource};

use super::rollup::{ceil_to, floor_to};
use super::{Snapshot, Store, StoreError, StoredAlert, keys, names, u64_from};

const HOUR: i64 = 3_600_000;
const DAY: i64 = 86_400_000;
/// Aggregate levels: (code in the key, bucket width).
const LEVEL_HOUR: u8 = 1;
const LEVEL_DAY: u8 = 2;
/// Aggregate levels and their widths, for retention.
pub(crate) const LEVELS: [(u8, i64); 2] = [(LEVEL_HOUR, HOUR), (LEVEL_DAY, DAY)];
/// Values longer than this are cut (at a character boundary) in aggregate keys: LMDB keys are
/// at most 511 bytes.
pub const MAX_VALUE_LEN: usize = 200;

/// What alerts are counted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum AlertDim {
    /// All alerts (one counter per bucket).
    Total = 0,
    /// Signature or detection name.
    Signature = 1,
    /// The subsystem that raised it (`ids`, `antivirus`, ...).
    Source = 2,
    /// Source address.
    SrcAddr = 3,
    /// Destination address.
    DstAddr = 4,
    /// Category.
    Category = 5,
    /// Severity (one byte).
    Severity = 6,
    /// The device that reported it.
    Device = 7,
}

impl AlertDim {
    /// Every dimension.
    pub const ALL: [AlertDim; 8] = [
        AlertDim::Total,
        AlertDim::Signature,
        AlertDim::Source,
        AlertDim::SrcAddr,
        AlertDim::DstAddr,
        AlertDim::Category,
        AlertDim::Severity,
        AlertDim::Device,
    ];
}

/// The name of an alert source as on the wire.
pub fn source_name(s: AlertSource) -> &'static str {
    match s {
        AlertSource::Ids => "ids",
        AlertSource::Antivirus => "antivirus",
        AlertSource::Mail => "mail",
        AlertSource::Auth => "auth",
        AlertSource::Firewall => "firewall",
        AlertSource::Other => "other",
    }
}

/// `s` cut to at most [`MAX_VALUE_LEN`] bytes at a character boundary.
pub fn cut(s: &str) -> &str {
    if s.len() <= MAX_VALUE_LEN {
        return s;
    }
    let mut end = MAX_VALUE_LEN;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Calls `f` with every (dimension, value) an alert counts under.
pub fn dims_of(device: &str, a: &Alert, mut f: impl FnMut(AlertDim, &[u8])) {
    f(AlertDim::Total, b"");
    f(AlertDim::Signature, cut(&a.signature).as_bytes());
    f(AlertDim::Source, source_name(a.source).as_bytes());
    if let Some(v) = &a.src {
        f(AlertDim::SrcAddr, cut(v).as_bytes());
    }
    if let Some(v) = &a.dst {
        f(AlertDim::DstAddr, cut(v).as_bytes());
    }
    if let Some(v) = &a.category {
        f(AlertDim::Category, cut(v).as_bytes());
    }
    f(AlertDim::Severity, &[a.severity]);
    f(AlertDim::Device, device.as_bytes());
}

/// Adds one alert to pending aggregate increments.
pub(crate) fn count_into(aggs: &mut BTreeMap<Vec<u8>, u64>, tenant: &str, device: &str, a: &Alert) {
    for (level, width) in LEVELS {
        let bucket = floor_to(a.ts, width);
        dims_of(device, a, |dim, v| *aggs.entry(keys::agg_key(tenant, level, dim as u8, bucket, v)).or_default() += 1);
    }
}

/// A tenant's alerts over a period.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlertSummary {
    /// Start of the period actually covered (later than asked when retention cut it).
    pub from: i64,
    /// End of the period (exclusive).
    pub to: i64,
    /// Alerts in the period.
    pub total: u64,
    /// Most frequent signatures, most frequent first (ties by name).
    pub by_signature: Vec<(String, u64)>,
    /// Most frequent sources (`ids`, `antivirus`, ...).
    pub by_source: Vec<(String, u64)>,
    /// Most frequent source addresses.
    pub by_src_addr: Vec<(String, u64)>,
    /// Most frequent destination addresses.
    pub by_dst_addr: Vec<(String, u64)>,
    /// Most frequent categories.
    pub by_category: Vec<(String, u64)>,
    /// Alerts per severity, most frequent first.
    pub by_severity: Vec<(u8, u64)>,
    /// Devices with the most alerts.
    pub by_device: Vec<(String, u64)>,
    /// Alerts per day: (start of the day, count) for days with alerts. Days are 24 h long and
    /// start at the `from` asked for, so a period starting at local midnight gives local days.
    pub per_day: Vec<(i64, u64)>,
}

/// Counts being gathered.
struct Tally {
    day0: i64,
    counts: [HashMap<Vec<u8>, u64>; 8],
    per_day: BTreeMap<i64, u64>,
}

impl Tally {
    fn day_of(&self, ts: i64) -> i64 {
        let k = (i128::from(ts) - i128::from(self.day0)).div_euclid(i128::from(DAY));
        (i128::from(self.day0) + k * i128::from(DAY)) as i64
    }

    fn alert(&mut self, device: &str, a: &Alert) {
        dims_of(device, a, |dim, v| *self.counts[dim as usize].entry(v.to_vec()).or_default() += 1);
        let d = self.day_of(a.ts);
        *self.per_day.entry(d).or_default() += 1;
    }

    fn top(&self, dim: AlertDim, n: usize) -> Vec<(Vec<u8>, u64)> {
        let mut v: Vec<(Vec<u8>, u64)> = self.counts[dim as usize].iter().map(|(k, c)| (k.clone(), *c)).collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        v.truncate(n);
        v
    }

    fn top_text(&self, dim: AlertDim, n: usize) -> Vec<(String, u64)> {
        self.top(dim, n).into_iter().map(|(k, c)| (String::from_utf8_lossy(&k).into_owned(), c)).collect()
    }
}

/// How a piece of the period is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Piece {
    /// Decode the alerts.
    Raw(i64, i64),
    /// Hourly aggregates.
    Hours(i64, i64),
    /// Daily aggregates (per-day counts from the hourly totals).
    Days(i64, i64),
}

/// Splits `[lo, hi)` into raw edges, whole hours and whole days.
fn plan(lo: i64, hi: i64) -> Vec<Piece> {
    let (h1, h2) = (ceil_to(lo, HOUR), floor_to(hi, HOUR));
    if h1 >= h2 || lo < i64::MIN + DAY || hi > i64::MAX - DAY {
        return vec![Piece::Raw(lo, hi)];
    }
    let mut v = Vec::new();
    if lo < h1 {
        v.push(Piece::Raw(lo, h1));
    }
    let (d1, d2) = (ceil_to(h1, DAY), floor_to(h2, DAY));
    if d1 < d2 {
        if h1 < d1 {
            v.push(Piece::Hours(h1, d1));
        }
        v.push(Piece::Days(d1, d2));
        if d2 < h2 {
            v.push(Piece::Hours(d2, h2));
        }
    } else {
        v.push(Piece::Hours(h1, h2));
    }
    if h2 < hi {
        v.push(Piece::Raw(h2, hi));
    }
    v
}

impl Store {
    /// A tenant's alerts in `[from, to)`: total, the `top_n` most frequent values of each
    /// dimension, and counts per day. Values longer than [`MAX_VALUE_LEN`] bytes are counted
    /// by their first [`MAX_VALUE_LEN`] bytes. Nothing older than the alert retention horizon
    /// is counted.
    pub fn alert_summary(&self, tenant: &str, from: i64, to: i64, top_n: usize) -> Result<AlertSummary, StoreError> {
        let lo = from.max(self.horizons()?.alerts);
        let mut tally = Tally { day0: from, counts: Default::default(), per_day: BTreeMap::new() };
        if lo < to {
            for piece in plan(lo, to) {
                // One snapshot per piece: the piece's folded data and its tail agree.
                let snap = self.read()?;
                let (a, b) = match piece {
                    Piece::Raw(a, b) => {
                        self.raw_alerts(&snap, tenant, a, b, |al| tally.alert(&al.device, &al.alert))?;
                        (a, b)
                    }
                    Piece::Hours(a, b) | Piece::Days(a, b) => {
                        let level = if matches!(piece, Piece::Days(..)) { LEVEL_DAY } else { LEVEL_HOUR };
                        for dim in AlertDim::ALL {
                            let counts = &mut tally.counts[dim as usize];
                            self.scan_aggs(&snap, tenant, level, dim, a, b, |_, v, n| *counts.entry(v.to_vec()).or_default() += n)?;
                        }
                        // Per day from the hourly totals; an hour that straddles two of the
                        // caller's days is counted from the alerts' keys.
                        let mut hours = Vec::new();
                        self.scan_aggs(&snap, tenant, LEVEL_HOUR, AlertDim::Total, a, b, |bucket, _, n| hours.push((bucket, n)))?;
                        for (bucket, n) in hours {
                            let d = tally.day_of(bucket);
                            if d == tally.day_of(bucket + HOUR - 1) {
                                *tally.per_day.entry(d).or_default() += n;
                            } else {
                                let mut days = Vec::new();
                                self.alert_times(&snap, tenant, bucket, bucket + HOUR, |ts| days.push(tally.day_of(ts)))?;
                                for d in days {
                                    *tally.per_day.entry(d).or_default() += 1;
                                }
                            }
                        }
                        (a, b)
                    }
                };
                for (_, al) in self.tail_alerts(&snap, tenant, a, b)? {
                    tally.alert(&al.device, &al.alert);
                }
            }
        }
        let total = tally.counts[AlertDim::Total as usize].values().sum();
        let mut by_severity: Vec<(u8, u64)> =
            tally.top(AlertDim::Severity, top_n).into_iter().map(|(k, c)| (k.first().copied().unwrap_or(0), c)).collect();
        by_severity.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        Ok(AlertSummary {
            from: lo.min(to),
            to,
            total,
            by_signature: tally.top_text(AlertDim::Signature, top_n),
            by_source: tally.top_text(AlertDim::Source, top_n),
            by_src_addr: tally.top_text(AlertDim::SrcAddr, top_n),
            by_dst_addr: tally.top_text(AlertDim::DstAddr, top_n),
            by_category: tally.top_text(AlertDim::Category, top_n),
            by_severity,
            by_device: tally.top_text(AlertDim::Device, top_n),
            per_day: tally.per_day.into_iter().collect(),
        })
    }

    /// Calls `f` with every folded alert of `tenant` in `[a, b)`.
    fn raw_alerts(&self, snap: &Snapshot<'_>, tenant: &str, a: i64, b: i64, mut f: impl FnMut(StoredAlert)) -> Result<(), StoreError> {
        let (lo, hi) = (keys::alert_key(tenant, a, 0, 0), keys::alert_key(tenant, b, 0, 0));
        let range = (Bound::Included(&lo[..]), Bound::Excluded(&hi[..]));
        for item in self.alerts.range(snap, &range).map_err(self.lmdb())? {
            let (_, v) = item.map_err(self.lmdb())?;
            f(serde_cbor::from_slice(v).map_err(|e| self.corrupt(names::ALERTS, e))?);
        }
        Ok(())
    }

    /// Calls `f` with the time of every folded alert of `tenant` in `[a, b)`, from the keys.
    fn alert_times(&self, snap: &Snapshot<'_>, tenant: &str, a: i64, b: i64, mut f: impl FnMut(i64)) -> Result<(), StoreError> {
        let (lo, hi) = (keys::alert_key(tenant, a, 0, 0), keys::alert_key(tenant, b, 0, 0));
        let range = (Bound::Included(&lo[..]), Bound::Excluded(&hi[..]));
        for item in self.alerts.range(snap, &range).map_err(self.lmdb())? {
            let (k, _) = item.map_err(self.lmdb())?;
            f(keys::split_alert_key(k).ok_or_else(|| self.corrupt(names::ALERTS, "bad key"))?.0);
        }
        Ok(())
    }

    /// Calls `f(bucket, value, count)` for the aggregates of one dimension in `[a, b)`.
    #[allow(clippy::too_many_arguments)]
    fn scan_aggs(
        &self,
        snap: &Snapshot<'_>,
        tenant: &str,
        level: u8,
        dim: AlertDim,
        a: i64,
        b: i64,
        mut f: impl FnMut(i64, &[u8], u64),
    ) -> Result<(), StoreError> {
        let prefix_len = keys::agg_prefix(tenant, level, dim as u8).len();
        let (lo, hi) = (keys::agg_key(tenant, level, dim as u8, a, b""), keys::agg_key(tenant, level, dim as u8, b, b""));
        let range = (Bound::Included(&lo[..]), Bound::Excluded(&hi[..]));
        for item in self.alert_aggs.range(snap, &range).map_err(self.lmdb())? {
            let (k, v) = item.map_err(self.lmdb())?;
            let (bucket, value) = keys::split_agg_key(k, prefix_len).ok_or_else(|| self.corrupt(names::ALERT_AGGS, "bad key"))?;
            f(bucket, value, u64_from(v));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_split_into_raw_edges_hours_and_days() {
        let t = 1_700_000_000_000i64; // 2023-11-14 22:13:20 UTC
        let p = plan(t, t + 3 * DAY);
        assert_eq!(p.first(), Some(&Piece::Raw(t, ceil_to(t, HOUR))));
        assert!(p.iter().any(|x| matches!(x, Piece::Days(..))));
        let mut at = t;
        for piece in &p {
            let (Piece::Raw(a, b) | Piece::Hours(a, b) | Piece::Days(a, b)) = *piece;
            assert_eq!(a, at);
            at = b;
        }
        assert_eq!(at, t + 3 * DAY);
        assert_eq!(plan(t, t + 10), vec![Piece::Raw(t, t + 10)]);
        assert_eq!(plan(i64::MIN, i64::MAX), vec![Piece::Raw(i64::MIN, i64::MAX)]);
    }

    #[test]
    fn long_values_are_cut_at_a_character_boundary() {
        let s = "ä".repeat(150);
        assert!(cut(&s).len() <= MAX_VALUE_LEN);
        assert!(s.starts_with(cut(&s)));
    }
}
