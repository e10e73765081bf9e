//! Reading one device's period from the store without holding its raw samples.
//!
//! - The rules' samples (CPU, memory, disks, capture counters, certificate) are read a day at
//!   a time and streamed through a [`SampleReducer`], which keeps only what the rules read of
//!   them (counts, sums, first and last samples, the disk trend, the coverage gaps). The rules
//!   need the raw samples — a gap is measured between two samples, the forecast fits every
//!   one — so these are raw reads, but never more than a day of them is held, and a block per
//!   series read ahead: each series is read through a [`PointCursor`], which decodes a block
//!   once however many days it spans.
//! - What the report shows per device — min / avg / max, the CPU and memory charts, the point
//!   count — comes from the rollups: whole buckets from the coarsest level that tiles them,
//!   the ragged ends of the period from finer levels and, below a minute, raw points, so
//!   that exactly the points of the period count.
//!
//! Only the store's read API is used: [`Store::points`] and [`Store::points_step`], whose
//! steps that are multiples of a minute, an hour or a day read that rollup level.

use std::collections::BTreeMap;

use crate::config::RiskConfig;
use crate::report::Stat;
use crate::risk::rules::{DeviceInput, Window, metrics, mount_of};
use crate::risk::samples::{SampleFacts, SampleReducer};
use crate::store::rollup::{ceil_to, floor_to};
use crate::store::{Aggregate, Labels, PointCursor, Store, StoreError};

const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 86_400_000;

/// How much time of raw samples is read and held at once.
const SLICE_MS: i64 = DAY_MS;

/// How often the two passes of the disk forecast are tried before a disagreement between them
/// (samples arriving late in between) is left standing, without a forecast.
const ATTEMPTS: usize = 3;

/// A series of the store: (name, labels, id).
type Series = (String, Labels, u64);

/// The series the rules read, metric by metric in the order the rules' input used to be
/// filled, each metric's series in the store's order: so that series of one metric merge
/// exactly as they did when the whole period was read at once.
fn rule_series(store: &Store, device: &str, cfg: &RiskConfig) -> Result<Vec<Series>, StoreError> {
    let all = store.series_of(device)?;
    let names = [
        metrics::CPU,
        metrics::MEMORY,
        metrics::DISK_USED,
        metrics::CERT_EXPIRES_AT,
        cfg.capture_drops_metric.0.as_str(),
        cfg.capture_packets_metric.0.as_str(),
    ];
    Ok(names.iter().flat_map(|name| all.iter().filter(move |s| s.0 == *name).cloned()).collect())
}

/// The raw samples of `series` up to `to`, filed as the rules' input files them: what each
/// series' cursor holds before `to`.
fn slice(store: &Store, series: &[Series], cursors: &mut [PointCursor], to: i64, cfg: &RiskConfig) -> Result<DeviceInput, StoreError> {
    let mut input = DeviceInput::default();
    for ((name, labels, _), cursor) in series.iter().zip(cursors.iter_mut()) {
        input.add_series(name, labels, cursor.take_before(store, to)?, cfg);
    }
    Ok(input)
}

/// A cursor per series over the window: each block is decoded once however many slices it
/// spans.
fn cursors(store: &Store, series: &[Series], win: &Window) -> Vec<PointCursor> {
    series.iter().map(|s| store.point_cursor(s.2, win.start_ms, win.end_ms)).collect()
}

/// `[start, end)` cut into slices of [`SLICE_MS`], earliest first.
fn slices(start: i64, end: i64) -> impl Iterator<Item = (i64, i64)> {
    let mut at = start;
    std::iter::from_fn(move || {
        (at < end).then(|| {
            let from = at;
            at = at.saturating_add(SLICE_MS).min(end);
            (from, at)
        })
    })
}

/// What the rules read of a device's samples in `win`, read from the store a day at a time.
pub(super) fn sample_facts(
    store: &Store,
    device: &str,
    first_seen_ms: Option<i64>,
    cfg: &RiskConfig,
    win: &Window,
) -> Result<SampleFacts, StoreError> {
    let series = rule_series(store, device, cfg)?;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut r = SampleReducer::new(cfg, win, first_seen_ms);
        let mut read = cursors(store, &series, win);
        for (_, to) in slices(win.start_ms, win.end_ms) {
            r.feed(&slice(store, &series, &mut read, to, cfg)?);
        }
        let mounts = r.forecast_mounts();
        if mounts.is_empty() {
            return Ok(r.finish());
        }
        let disks: Vec<Series> =
            series.iter().filter(|s| s.0 == metrics::DISK_USED && mounts.iter().any(|m| m == mount_of(&s.1))).cloned().collect();
        let mut read = cursors(store, &disks, win);
        for (_, to) in slices(win.start_ms, win.end_ms) {
            r.feed_forecast(&slice(store, &disks, &mut read, to, cfg)?);
        }
        if r.consistent() || attempt == ATTEMPTS {
            if !r.consistent() {
                tracing::warn!(device = %device, "disk samples changed while they were read twice for the forecast; no forecast this time");
            }
            return Ok(r.finish());
        }
    }
}

/// A stretch of one series as the store can give it: a rollup bucket of `width` ms lying
/// wholly inside the stretch, or raw points.
enum Piece {
    Bucket(Aggregate, i64),
    Raw(Vec<(i64, f64)>),
}

/// Visits exactly the points of `series` in `[from, to)`, in time order: as rollup buckets of
/// the first (coarsest) of `widths` where whole buckets fit, the rest recursively with the finer
/// widths, and raw points where no bucket fits.
fn pieces(
    store: &Store,
    series: u64,
    (from, to): (i64, i64),
    widths: &[i64],
    f: &mut dyn FnMut(Piece) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    if from >= to {
        return Ok(());
    }
    let Some((&width, finer)) = widths.split_first() else {
        return f(Piece::Raw(store.points(series, from, to)?));
    };
    let (a, b) = (ceil_to(from, width), floor_to(to, width));
    if a >= b {
        return pieces(store, series, (from, to), finer, f);
    }
    pieces(store, series, (from, a), finer, f)?;
    for agg in store.points_step(series, a, b, width)? {
        f(Piece::Bucket(agg, width))?;
    }
    pieces(store, series, (b, to), finer, f)
}

/// The rollup widths that tile buckets of `step`, coarsest first.
fn widths_for(step: i64) -> Vec<i64> {
    [DAY_MS, HOUR_MS, MINUTE_MS].into_iter().filter(|w| step >= *w && step % w == 0).collect()
}

/// Points of `device` in `[from, to)`, over all its series, from the rollups.
pub(super) fn count_points(store: &Store, device: &str, from: i64, to: i64) -> Result<u64, StoreError> {
    let mut n = 0u64;
    for (_, _, id) in store.series_of(device)? {
        pieces(store, id, (from, to), &widths_for(DAY_MS), &mut |p| {
            n += match p {
                Piece::Bucket(agg, _) => agg.count,
                Piece::Raw(points) => points.len() as u64,
            };
            Ok(())
        })?;
    }
    Ok(n)
}

/// The finite values of a stretch: what [`Stat::of`] takes from raw samples.
#[derive(Debug, Clone, Copy)]
struct Finite {
    n: u64,
    min: f64,
    max: f64,
    sum: f64,
}

impl Finite {
    const EMPTY: Finite = Finite { n: 0, min: f64::INFINITY, max: f64::NEG_INFINITY, sum: 0.0 };

    fn of_points(points: &[(i64, f64)]) -> Finite {
        let mut f = Finite::EMPTY;
        for &(_, v) in points.iter().filter(|p| p.1.is_finite()) {
            f.merge(&Finite { n: 1, min: v, max: v, sum: v });
        }
        f
    }

    fn merge(&mut self, o: &Finite) {
        self.n += o.n;
        self.min = self.min.min(o.min);
        self.max = self.max.max(o.max);
        self.sum += o.sum;
    }

    fn mean(&self) -> Option<f64> {
        (self.n > 0).then(|| self.sum / self.n as f64)
    }

    fn stat(&self) -> Option<Stat> {
        self.mean().map(|avg| Stat { min: self.min, avg, max: self.max })
    }
}

/// The finite values of one piece. A bucket whose sum is finite holds only finite values and
/// is taken as it is; one that holds NaN or an infinity is read raw, so that those are
/// skipped as [`Stat::of`] skips them.
fn finite_of(store: &Store, series: u64, piece: Piece) -> Result<Finite, StoreError> {
    Ok(match piece {
        Piece::Bucket(agg, _) if agg.sum.is_finite() => Finite { n: agg.count, min: agg.min, max: agg.max, sum: agg.sum },
        Piece::Bucket(agg, width) => Finite::of_points(&store.points(series, agg.ts, agg.ts.saturating_add(width))?),
        Piece::Raw(points) => Finite::of_points(&points),
    })
}

/// What the report shows of one metric of a device over a period.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Shown {
    /// One point per `step` bucket with data: (middle of the bucket's part of the period, mean).
    pub chart: Vec<(i64, f64)>,
    /// Min / avg / max of every finite value in the period.
    pub stat: Option<Stat>,
}

/// The finite values of the series `ids` (one metric, merged) in `[from, to)` per bucket of
/// `step` (aligned to multiples of it), read from the rollups that tile the buckets.
fn buckets(store: &Store, ids: &[u64], (from, to): (i64, i64), step: i64) -> Result<BTreeMap<i64, Finite>, StoreError> {
    let widths = widths_for(step);
    let mut buckets: BTreeMap<i64, Finite> = BTreeMap::new();
    for &id in ids {
        let mut add = |p: Piece| {
            let at = match &p {
                Piece::Bucket(agg, _) => agg.ts,
                Piece::Raw(points) => match points.first() {
                    Some(first) => first.0,
                    None => return Ok(()),
                },
            };
            let f = finite_of(store, id, p)?;
            buckets.entry(floor_to(at, step)).or_insert(Finite::EMPTY).merge(&f);
            Ok(())
        };
        pieces(store, id, (from, to), &widths, &mut add)?;
    }
    Ok(buckets)
}

/// A bucket's part of `[from, to)`: its middle and its length in ms.
fn part(bucket: i64, step: i64, (from, to): (i64, i64)) -> (i64, i64) {
    let (a, b) = (bucket.max(from), bucket.saturating_add(step).min(to));
    (a + (b - a) / 2, b - a)
}

/// The chart and min / avg / max of the series `ids` (one metric, merged) in `[from, to)`,
/// in buckets of `step` (see [`chart_step`]).
pub(super) fn shown(store: &Store, ids: &[u64], range: (i64, i64), step: i64) -> Result<Shown, StoreError> {
    let buckets = buckets(store, ids, range, step)?;
    let mut all = Finite::EMPTY;
    let mut chart = Vec::with_capacity(buckets.len());
    for (bucket, f) in &buckets {
        all.merge(f);
        if let Some(mean) = f.mean() {
            chart.push((part(*bucket, step, range).0, mean));
        }
    }
    Ok(Shown { chart, stat: all.stat() })
}

/// The rate per second of the series `ids` in `[from, to)`, per bucket of `step`: the sum of
/// the bucket's values over the length of the bucket's part of the period. For series of
/// deltas — what a counter grew by since the previous sample, as the agent sends traffic
/// (its counter wraps and resets are taken care of there, `netdev::delta`) — this is the
/// counter's mean rate over the bucket. A bucket without samples has no rate (a gap, not a
/// zero); a negative sum, which no agent sends, counts as no growth.
pub(super) fn rates(store: &Store, ids: &[u64], range: (i64, i64), step: i64) -> Result<Vec<(i64, f64)>, StoreError> {
    let buckets = buckets(store, ids, range, step)?;
    Ok(buckets
        .iter()
        .filter(|(_, f)| f.n > 0)
        .map(|(bucket, f)| {
            let (mid, len) = part(*bucket, step, range);
            (mid, f.sum.max(0.0) / (len.max(1) as f64 / 1000.0))
        })
        .collect())
}

/// Steps a chart may have: each a multiple of a rollup level, so the store answers from it.
const CHART_STEPS: [i64; 19] = [
    MINUTE_MS,
    2 * MINUTE_MS,
    5 * MINUTE_MS,
    10 * MINUTE_MS,
    15 * MINUTE_MS,
    30 * MINUTE_MS,
    HOUR_MS,
    2 * HOUR_MS,
    3 * HOUR_MS,
    4 * HOUR_MS,
    6 * HOUR_MS,
    8 * HOUR_MS,
    12 * HOUR_MS,
    DAY_MS,
    2 * DAY_MS,
    4 * DAY_MS,
    7 * DAY_MS,
    14 * DAY_MS,
    28 * DAY_MS,
];

/// The finest of [`CHART_STEPS`] that gives a chart over `[from, to)` at most `max_points`
/// buckets (a 30-day period: 2 h, from the hour rollups; a week: 30 min; a day: 5 min); for
/// longer periods whole days.
pub fn chart_step(from: i64, to: i64, max_points: usize) -> i64 {
    let len = to.saturating_sub(from).max(1);
    let max = i64::try_from(max_points).unwrap_or(i64::MAX).max(2);
    // Both positive here.
    let div_ceil = |a: i64, b: i64| a / b + i64::from(a % b != 0);
    // A period not aligned to the step touches one bucket more than it spans.
    let buckets = |step: i64| div_ceil(len, step).saturating_add(1);
    CHART_STEPS.into_iter().find(|s| buckets(*s) <= max).unwrap_or_else(|| ceil_to(div_ceil(len, max - 1), DAY_MS))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chart_steps_read_the_coarsest_rollup_that_fits() {
        assert_eq!(chart_step(0, 30 * DAY_MS, 400), 2 * HOUR_MS);
        assert_eq!(chart_step(MINUTE_MS / 2, 30 * DAY_MS + MINUTE_MS / 2, 400), 2 * HOUR_MS);
        assert_eq!(chart_step(0, 7 * DAY_MS, 400), 30 * MINUTE_MS);
        assert_eq!(chart_step(0, DAY_MS, 400), 5 * MINUTE_MS);
        assert_eq!(chart_step(0, HOUR_MS, 400), MINUTE_MS);
        assert_eq!(chart_step(0, 5 * 365 * DAY_MS, 400), 7 * DAY_MS);
        assert_eq!(chart_step(0, 40 * 365 * DAY_MS, 400), 37 * DAY_MS);
        assert_eq!(widths_for(2 * HOUR_MS), vec![HOUR_MS, MINUTE_MS]);
        assert_eq!(widths_for(30 * MINUTE_MS), vec![MINUTE_MS]);
        assert_eq!(widths_for(DAY_MS), vec![DAY_MS, HOUR_MS, MINUTE_MS]);
        let s: Vec<(i64, i64)> = slices(10, 10 + 2 * DAY_MS + 5).collect();
        assert_eq!(s, vec![(10, 10 + DAY_MS), (10 + DAY_MS, 10 + 2 * DAY_MS), (10 + 2 * DAY_MS, 10 + 2 * DAY_MS + 5)]);
    }
}
