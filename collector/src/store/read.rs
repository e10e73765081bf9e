//! Queries: blocks and rollups merged with the unfolded tail of the ingest log.
//!
//! Every answer is assembled from chunks, each read in its own short read transaction and
//! self-consistent: a chunk covers a time range and takes both the folded data and the log's
//! tail for exactly that range from one snapshot, so a fold running between chunks can neither
//! hide a point nor show it twice.

use std::collections::BTreeMap;
use std::ops::Bound;

use super::block::{self, Header};
use super::keys::Labels;
use super::log::{self, Entry};
use super::rollup::{self, Aggregate, Level, bucketize};
use super::{Snapshot, Store, StoreError, StoredAlert, keys, meta, names, u64_from};

/// Blocks decoded per read transaction (about a million points at most).
const CHUNK_BLOCKS: usize = 1024;
/// Packed rollup chunks read per read transaction.
const CHUNK_PACKED: i64 = 64;
/// Most rollup buckets one stepped query may visit.
const MAX_BUCKETS: i128 = 10_000_000;
/// Alerts read per read transaction.
const CHUNK_ALERTS: usize = 10_000;

/// Time-ordered (timestamp, value) pairs.
pub type Points = Vec<(i64, f64)>;

/// Where an alert sits: (time, log key, position in its log entry).
pub(crate) type AlertId = (i64, u64, u32);

/// See [`Store::point_cursor`].
#[derive(Debug)]
pub struct PointCursor {
    series: u64,
    /// Where the next read starts: the start of a block, or `to` when all is read.
    lo: i64,
    to: i64,
    /// Points read and not yet taken, time-ordered.
    read: std::collections::VecDeque<(i64, f64)>,
}

impl PointCursor {
    /// The points before `end` not taken yet, time-ordered: the same points as
    /// [`Store::points`] of the range from the previous `end` (or `from`) to this one. Each
    /// read takes one block with the log's tail for that block's time range from one
    /// snapshot, as [`Store::points`] does.
    pub fn take_before(&mut self, store: &Store, end: i64) -> Result<Points, StoreError> {
        let end = end.min(self.to);
        while self.lo < end && self.read.back().is_none_or(|p| p.0 < end) {
            let snap = store.read()?;
            let (points, resume) = store.points_chunk(&snap, self.series, (self.lo, self.to), 1)?;
            self.read.extend(points);
            self.lo = resume.unwrap_or(self.to);
        }
        let n = self.read.partition_point(|p| p.0 < end);
        Ok(self.read.drain(..n).collect())
    }
}

/// Merges sorted points of the blocks with sorted tail points; stored points win.
fn merge(stored: Vec<(i64, f64)>, tail: Vec<(i64, f64)>) -> Vec<(i64, f64)> {
    if tail.is_empty() {
        return stored;
    }
    let mut out = Vec::with_capacity(stored.len() + tail.len());
    let mut s = stored.into_iter().peekable();
    for t in tail {
        while let Some(x) = s.next_if(|x| x.0 < t.0) {
            out.push(x);
        }
        if s.peek().is_none_or(|x| x.0 != t.0) {
            out.push(t);
        }
    }
    out.extend(s);
    out
}

impl Store {
    /// Where the tail starts for `series`: the log key after which its points are not folded.
    fn tail_start(&self, snap: &Snapshot<'_>, series: u64) -> Result<u64, StoreError> {
        let folded = self.meta_u64(snap, meta::FOLDED)?;
        let mark = self.marks.get(snap, &series.to_be_bytes()).map_err(self.lmdb())?.map(u64_from).unwrap_or(0);
        Ok(folded.max(mark))
    }

    /// Unfolded points of `series` in `[lo, hi)` at or after `horizon`: sorted, the first of
    /// equal timestamps kept. Not yet checked against the blocks.
    pub(super) fn tail_points(
        &self,
        snap: &Snapshot<'_>,
        series: u64,
        lo: i64,
        hi: i64,
        horizon: i64,
    ) -> Result<Vec<(i64, f64)>, StoreError> {
        let start = keys::log_key(self.tail_start(snap, series)?);
        let range = (Bound::Excluded(&start[..]), Bound::Unbounded);
        let mut out = Vec::new();
        let lo = lo.max(horizon);
        for item in self.log.range(snap, &range).map_err(self.lmdb())? {
            let (_, v) = item.map_err(self.lmdb())?;
            // A damaged entry is reported by the fold; readers skip it.
            if let Ok(Some(section)) = log::find_section(v, series) {
                let _ = section.for_each(|t, x| {
                    if t >= lo && t < hi {
                        out.push((t, x));
                    }
                });
            }
        }
        out.sort_by_key(|p| p.0);
        out.dedup_by_key(|p| p.0);
        Ok(out)
    }

    /// The block of `series` that holds (or would hold) `ts`, if any: its key and bytes.
    fn block_at<'t>(&self, snap: &'t Snapshot<'_>, series: u64, ts: i64) -> Result<Option<(i64, &'t [u8])>, StoreError> {
        match self.blocks.get_lower_than_or_equal_to(snap, &keys::block_key(series, ts)).map_err(self.lmdb())? {
            Some((k, v)) => match keys::split_point_key(k) {
                Some((s, start)) if s == series => Ok(Some((start, v))),
                Some(_) => Ok(None),
                None => Err(self.corrupt(names::BLOCKS, "bad key")),
            },
            None => Ok(None),
        }
    }

    /// Drops tail points whose timestamp the blocks hold already (the first write wins).
    pub(super) fn drop_stored(&self, snap: &Snapshot<'_>, series: u64, tail: Vec<(i64, f64)>) -> Result<Vec<(i64, f64)>, StoreError> {
        let mut out = Vec::with_capacity(tail.len());
        let mut cached: Option<(i64, Vec<i64>)> = None;
        for p in tail {
            let Some((start, bytes)) = self.block_at(snap, series, p.0)? else {
                out.push(p);
                continue;
            };
            if Header::parse(bytes).map_err(|e| self.corrupt(names::BLOCKS, e))?.last_ts < p.0 {
                out.push(p);
                continue;
            }
            if cached.as_ref().is_none_or(|c| c.0 != start) {
                let mut ts = Vec::new();
                block::for_each(bytes, |t, _| ts.push(t)).map_err(|e| self.corrupt(names::BLOCKS, e))?;
                cached = Some((start, ts));
            }
            if cached.as_ref().is_some_and(|c| c.1.binary_search(&p.0).is_err()) {
                out.push(p);
            }
        }
        Ok(out)
    }

    /// Up to `max_blocks` blocks of `series` from the one holding `lo`: their points in
    /// `[lo, hi)`, and where the next chunk starts if the blocks go on.
    fn block_chunk(
        &self,
        snap: &Snapshot<'_>,
        series: u64,
        (lo, hi): (i64, i64),
        max_blocks: usize,
        mut f: impl FnMut(&[u8], &Header, bool),
    ) -> Result<Option<i64>, StoreError> {
        let first = match self.block_at(snap, series, lo)? {
            Some((start, _)) => start,
            None => lo,
        };
        let (a, b) = (keys::block_key(series, first), keys::block_key(series, hi));
        let range = (Bound::Included(&a[..]), Bound::Excluded(&b[..]));
        for (n, item) in self.blocks.range(snap, &range).map_err(self.lmdb())?.enumerate() {
            let (k, v) = item.map_err(self.lmdb())?;
            let (_, start) = keys::split_point_key(k).ok_or_else(|| self.corrupt(names::BLOCKS, "bad key"))?;
            if n == max_blocks {
                return Ok(Some(start));
            }
            let h = Header::parse(v).map_err(|e| self.corrupt(names::BLOCKS, e))?;
            f(v, &h, start >= lo && h.last_ts < hi);
        }
        Ok(None)
    }

    /// Points of one series in `[from, to)`, time-ordered: folded blocks merged with the
    /// unfolded tail. Nothing older than the raw retention horizon is returned.
    pub fn points(&self, series: u64, from: i64, to: i64) -> Result<Vec<(i64, f64)>, StoreError> {
        let mut out = Vec::new();
        let mut lo = from;
        while lo < to {
            let snap = self.read()?;
            let (pts, resume) = self.points_chunk(&snap, series, (lo, to), CHUNK_BLOCKS)?;
            out.extend(pts);
            match resume {
                Some(r) => lo = r,
                None => break,
            }
        }
        Ok(out)
    }

    /// [`Store::points`] within one snapshot (for ranges whose blocks one read may hold).
    pub(super) fn points_in(&self, snap: &Snapshot<'_>, series: u64, from: i64, to: i64) -> Result<Vec<(i64, f64)>, StoreError> {
        let mut out = Vec::new();
        let mut lo = from;
        while lo < to {
            let (pts, resume) = self.points_chunk(snap, series, (lo, to), CHUNK_BLOCKS)?;
            out.extend(pts);
            match resume {
                Some(r) => lo = r,
                None => break,
            }
        }
        Ok(out)
    }

    /// A reader of one series' points in `[from, to)` that walks forward in steps
    /// ([`PointCursor::take_before`]) and decodes each block once, holding one block's points
    /// at most: for readers of long ranges that go a day at a time. Reading `[from, to)` a
    /// day at a time with [`Store::points`] decodes a block that spans many days from its
    /// start again for every day.
    pub fn point_cursor(&self, series: u64, from: i64, to: i64) -> PointCursor {
        PointCursor { series, lo: from, to, read: std::collections::VecDeque::new() }
    }

    /// Points of up to `max_blocks` blocks from `lo` on, with the tail for the same range, and
    /// where to go on.
    fn points_chunk(
        &self,
        snap: &Snapshot<'_>,
        series: u64,
        (lo, to): (i64, i64),
        max_blocks: usize,
    ) -> Result<(Points, Option<i64>), StoreError> {
        let h = self.horizons_in(snap)?;
        let lo = lo.max(h.raw);
        if lo >= to {
            return Ok((Vec::new(), None));
        }
        let mut stored = Vec::new();
        let mut err = None;
        let resume = self.block_chunk(snap, series, (lo, to), max_blocks, |bytes, _, _| {
            if let Err(e) = block::for_each_before(bytes, to, |t, v| {
                if t >= lo {
                    stored.push((t, v));
                }
            }) {
                err = Some(e);
            }
        })?;
        if let Some(e) = err {
            return Err(self.corrupt(names::BLOCKS, e));
        }
        let hi = resume.unwrap_or(to);
        stored.retain(|p| p.0 < hi);
        let tail = self.tail_points(snap, series, lo, hi, h.raw)?;
        Ok((merge(stored, tail), resume))
    }

    /// Number of points of one series in `[from, to)`, without decoding blocks that lie wholly
    /// inside the range.
    pub fn count_series(&self, series: u64, from: i64, to: i64) -> Result<u64, StoreError> {
        let mut n = 0u64;
        let mut lo = from;
        loop {
            let snap = self.read()?;
            let h = self.horizons_in(&snap)?;
            lo = lo.max(h.raw);
            if lo >= to {
                break;
            }
            let mut err = None;
            let resume = self.block_chunk(&snap, series, (lo, to), CHUNK_BLOCKS, |bytes, header, inside| {
                if inside {
                    n += u64::from(header.count);
                } else if let Err(e) = block::for_each(bytes, |t, _| n += u64::from(t >= lo && t < to)) {
                    err = Some(e);
                }
            })?;
            if let Some(e) = err {
                return Err(self.corrupt(names::BLOCKS, e));
            }
            let hi = resume.unwrap_or(to);
            let tail = self.tail_points(&snap, series, lo, hi, h.raw)?;
            n += self.drop_stored(&snap, series, tail)?.len() as u64;
            match resume {
                Some(r) => lo = r,
                None => break,
            }
        }
        Ok(n)
    }

    /// One series in `[from, to)` summarised per `step` ms: one [`Aggregate`] per non-empty
    /// bucket, buckets aligned to multiples of `step` since the epoch and covering every bucket
    /// the range touches. A step that is a multiple of an hour or a day reads that rollup (the
    /// coarsest that fits) and does not touch raw points; a multiple of a minute aggregates the
    /// raw points while they are kept and reads packed minutes before; any other step
    /// aggregates raw points. Rollup buckets past their own retention horizon are gone.
    pub fn points_step(&self, series: u64, from: i64, to: i64, step: i64) -> Result<Vec<Aggregate>, StoreError> {
        if step <= 0 {
            return Err(StoreError::BadQuery(format!("step must be positive, not {step}")));
        }
        if from >= to {
            return Ok(Vec::new());
        }
        let (a, b) = (rollup::floor_to(from, step), rollup::ceil_to(to, step));
        let Some(level) = Level::for_step(step) else {
            return Ok(bucketize(&self.points(series, a, b)?, step));
        };
        let width = level.ms();
        if (i128::from(b) - i128::from(a)) / i128::from(width) > MAX_BUCKETS {
            return Err(StoreError::BadQuery(format!("[{from}, {to}) holds more than {MAX_BUCKETS} buckets of {step} ms")));
        }
        let mut out: BTreeMap<i64, Aggregate> = BTreeMap::new();
        let mut add = |agg: Aggregate| {
            let bucket = rollup::floor_to(agg.ts, step);
            out.entry(bucket).and_modify(|o| o.merge(&agg)).or_insert(Aggregate { ts: bucket, ..agg });
        };
        // Per stretch of packed chunks, one snapshot: the fold (hours, days) and retention
        // (minutes) move points into chunks, and one snapshot sees each point in one place.
        let stretch = level.chunk_ms().saturating_mul(CHUNK_PACKED);
        let mut t = a;
        while t < b {
            let end = level.chunk(t).saturating_add(stretch).min(b);
            let snap = self.read()?;
            let h = self.horizons_in(&snap)?;
            self.read_chunks(&snap, level, series, (t, end), h.rollup[level.index()], &mut add)?;
            let recent = if level == Level::Minute {
                self.points_in(&snap, series, t, end)?
            } else {
                let tail = self.tail_points(&snap, series, t, end, h.raw)?;
                self.drop_stored(&snap, series, tail)?
            };
            for (ts, v) in recent {
                add(Aggregate::of(ts, ts, v));
            }
            t = end;
        }
        Ok(out.into_values().collect())
    }

    /// The series of a device: (name, labels, series id), sorted by name then labels.
    pub fn series_of(&self, device: &str) -> Result<Vec<(String, Labels, u64)>, StoreError> {
        let snap = self.read()?;
        let prefix = keys::device_series_prefix(device);
        let mut out = Vec::new();
        for item in self.series.prefix_iter(&snap, &prefix).map_err(self.lmdb())? {
            let (k, v) = item.map_err(self.lmdb())?;
            let (_, name, labels) = keys::parse_series_key(k).ok_or_else(|| self.corrupt(names::SERIES, "bad key"))?;
            out.push((name, labels, u64_from(v)));
        }
        Ok(out)
    }

    /// Every series of `device` named `name`, with its points in `[from, to)`.
    pub fn metric(&self, device: &str, name: &str, from: i64, to: i64) -> Result<Vec<(Labels, Points)>, StoreError> {
        let mut out = Vec::new();
        for (n, labels, id) in self.series_of(device)? {
            if n == name {
                out.push((labels, self.points(id, from, to)?));
            }
        }
        Ok(out)
    }

    /// Every series of `device` named `name`, summarised per `step` (see [`Store::points_step`]).
    pub fn metric_step(
        &self,
        device: &str,
        name: &str,
        from: i64,
        to: i64,
        step: i64,
    ) -> Result<Vec<(Labels, Vec<Aggregate>)>, StoreError> {
        let mut out = Vec::new();
        for (n, labels, id) in self.series_of(device)? {
            if n == name {
                out.push((labels, self.points_step(id, from, to, step)?));
            }
        }
        Ok(out)
    }

    /// Number of points of a device in `[from, to)`.
    pub fn count_points(&self, device: &str, from: i64, to: i64) -> Result<u64, StoreError> {
        let mut n = 0;
        for (_, _, id) in self.series_of(device)? {
            n += self.count_series(id, from, to)?;
        }
        Ok(n)
    }

    /// Points stored, over all series: those folded into blocks plus those waiting in the
    /// ingest log (a waiting point that repeats a stored timestamp is dropped when folded).
    pub fn total_points(&self) -> Result<u64, StoreError> {
        let snap = self.read()?;
        let mut n = self.meta_u64(&snap, meta::RAW_POINTS)?;
        for item in self.log.iter(&snap).map_err(self.lmdb())? {
            let (_, v) = item.map_err(self.lmdb())?;
            if let Ok(e) = Entry::parse(v) {
                n += e.point_count() as u64;
            }
        }
        Ok(n)
    }

    /// Unfolded alerts of a tenant in `[from, to)`: ((ts, log key, position), alert).
    pub(crate) fn tail_alerts(
        &self,
        snap: &Snapshot<'_>,
        tenant: &str,
        from: i64,
        to: i64,
    ) -> Result<Vec<(AlertId, StoredAlert)>, StoreError> {
        let folded = self.meta_u64(snap, meta::FOLDED)?;
        let start = keys::log_key(folded);
        let range = (Bound::Excluded(&start[..]), Bound::Unbounded);
        let mut out = Vec::new();
        for item in self.log.range(snap, &range).map_err(self.lmdb())? {
            let (k, v) = item.map_err(self.lmdb())?;
            let Ok(entry) = Entry::parse(v) else { continue };
            if entry.tenant != tenant || !entry.has_alerts() {
                continue;
            }
            let seq = keys::split_log_key(k).unwrap_or(0);
            let Ok(alerts) = entry.alerts() else { continue };
            for (pos, alert) in alerts.into_iter().enumerate() {
                if alert.ts >= from && alert.ts < to {
                    out.push(((alert.ts, seq, pos as u32), StoredAlert { device: entry.device.to_owned(), alert }));
                }
            }
        }
        Ok(out)
    }

    /// Alerts of a tenant in `[from, to)`, time-ordered (ties in arrival order). Nothing older
    /// than the alert retention horizon is returned.
    pub fn alerts(&self, tenant: &str, from: i64, to: i64) -> Result<Vec<StoredAlert>, StoreError> {
        // The tail first, from the first snapshot: alerts folded later carry a log key above
        // `folded` of that snapshot and are skipped below.
        let (mut tail, folded, from) = {
            let snap = self.read()?;
            let h = self.horizons_in(&snap)?;
            let from = from.max(h.alerts);
            (self.tail_alerts(&snap, tenant, from, to)?, self.meta_u64(&snap, meta::FOLDED)?, from)
        };
        let mut out: Vec<(AlertId, StoredAlert)> = Vec::new();
        if from < to {
            let hi = keys::alert_key(tenant, to, 0, 0);
            let mut lo = keys::alert_key(tenant, from, 0, 0);
            let mut inclusive = true;
            loop {
                let snap = self.read()?;
                let range = (if inclusive { Bound::Included(&lo[..]) } else { Bound::Excluded(&lo[..]) }, Bound::Excluded(&hi[..]));
                let mut n = 0;
                let mut last = None;
                for item in self.alerts.range(&snap, &range).map_err(self.lmdb())? {
                    let (k, v) = item.map_err(self.lmdb())?;
                    let id = keys::split_alert_key(k).ok_or_else(|| self.corrupt(names::ALERTS, "bad key"))?;
                    if id.1 <= folded {
                        out.push((id, serde_cbor::from_slice(v).map_err(|e| self.corrupt(names::ALERTS, e))?));
                    }
                    n += 1;
                    if n == CHUNK_ALERTS {
                        last = Some(k.to_vec());
                        break;
                    }
                }
                match last {
                    Some(k) => {
                        lo = k;
                        inclusive = false;
                    }
                    None => break,
                }
            }
        }
        out.append(&mut tail);
        out.sort_by_key(|a| a.0);
        Ok(out.into_iter().map(|(_, a)| a).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::merge;

    #[test]
    fn stored_points_win_over_the_tail() {
        let m = merge(vec![(1, 1.0), (3, 3.0)], vec![(0, 0.5), (3, 9.0), (4, 4.0)]);
        assert_eq!(m, vec![(0, 0.5), (1, 1.0), (3, 3.0), (4, 4.0)]);
    }
}
