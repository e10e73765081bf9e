//! Retention: how long each class of data is kept, and deleting what is older in bounded
//! transactions.
//!
//! A pass first moves the horizons in `meta` (one small transaction; readers stop returning
//! older data at once), then deletes at most [`OPS_PER_TXN`] entries per transaction, so
//! neither the writer nor the fold waits long. A pass that is interrupted leaves the horizons
//! in force, and the next pass deletes the rest.

use std::ops::Bound;

use heed::RwTxn;

use super::Points;
use super::block::{self, Header};
use super::rollup::Level;
use super::{Db, Horizons, Store, StoreError, alerts, keys, lock, meta, names, state_kind, u64_from};

/// Deletions (or block rewrites) per write transaction.
pub const OPS_PER_TXN: usize = 5_000;
const DAY_MS: i64 = 86_400_000;

/// How long each class of data is kept, in milliseconds; `None` keeps it for ever.
///
/// Coarser data is kept at least as long as finer data: a rollup level's effective period is
/// the longest of its own and that of every finer level (raw points count as the finest).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Raw points.
    pub raw_ms: Option<i64>,
    /// One-minute rollups.
    pub minute_ms: Option<i64>,
    /// One-hour rollups.
    pub hour_ms: Option<i64>,
    /// One-day rollups.
    pub day_ms: Option<i64>,
    /// Alerts and their hourly and daily counts.
    pub alerts_ms: Option<i64>,
    /// License and inventory history (the latest entry of each kind is always kept).
    pub states_ms: Option<i64>,
}

impl Default for Retention {
    /// Raw points 35 days, minutes 90 days, hours 400 days, days 5 years, alerts and device
    /// history 400 days.
    fn default() -> Self {
        Retention {
            raw_ms: Some(35 * DAY_MS),
            minute_ms: Some(90 * DAY_MS),
            hour_ms: Some(400 * DAY_MS),
            day_ms: Some(5 * 365 * DAY_MS),
            alerts_ms: Some(400 * DAY_MS),
            states_ms: Some(400 * DAY_MS),
        }
    }
}

impl Retention {
    /// Keeps everything.
    pub const FOREVER: Retention =
        Retention { raw_ms: None, minute_ms: None, hour_ms: None, day_ms: None, alerts_ms: None, states_ms: None };

    /// The horizons this retention sets at `now_ms`, never behind `old`.
    pub fn horizons(&self, now_ms: i64, old: &Horizons) -> Horizons {
        let cut = |keep: Option<i64>| keep.map_or(i64::MIN, |k| now_ms.saturating_sub(k.max(0)));
        let raw = cut(self.raw_ms).max(old.raw);
        let mut finer = raw;
        let mut rollup = [i64::MIN; 3];
        for (i, keep) in [self.minute_ms, self.hour_ms, self.day_ms].into_iter().enumerate() {
            // Coarser never goes before finer data.
            rollup[i] = cut(keep).min(finer).max(old.rollup[i]);
            finer = rollup[i];
        }
        Horizons { raw, rollup, alerts: cut(self.alerts_ms).max(old.alerts), states: cut(self.states_ms).max(old.states) }
    }
}

/// What a retention pass deleted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetentionReport {
    /// The horizons now in force.
    pub horizons: Option<Horizons>,
    /// Raw points deleted.
    pub points: u64,
    /// Packed rollup chunks deleted, per level.
    pub rollups: [u64; 3],
    /// Alerts deleted.
    pub alerts: u64,
    /// Alert counters deleted.
    pub alert_counts: u64,
    /// Device history entries deleted.
    pub states: u64,
    /// Write transactions used.
    pub txns: u64,
}

impl Store {
    /// Applies the store's retention (from [`StoreOptions`](super::StoreOptions)) as of `now_ms`.
    pub fn apply_retention(&self, now_ms: i64) -> Result<RetentionReport, StoreError> {
        let retention = self.opts.retention;
        self.apply_retention_with(&retention, now_ms)
    }

    /// Applies `retention` as of `now_ms`.
    pub fn apply_retention_with(&self, retention: &Retention, now_ms: i64) -> Result<RetentionReport, StoreError> {
        let _one = lock(&self.shared.maintenance);
        let mut report = RetentionReport::default();
        let h = self.write(|s, wtxn| {
            let h = retention.horizons(now_ms, &s.horizons_in(wtxn)?);
            s.put_meta(wtxn, meta::H_RAW, h.raw as u64)?;
            for (i, key) in meta::H_ROLLUP.iter().enumerate() {
                s.put_meta(wtxn, key, h.rollup[i] as u64)?;
            }
            s.put_meta(wtxn, meta::H_ALERTS, h.alerts as u64)?;
            s.put_meta(wtxn, meta::H_STATES, h.states as u64)?;
            Ok(h)
        })?;
        report.horizons = Some(h);
        report.txns += 1;
        if h.raw > i64::MIN {
            // Minute buckets of the points that go are packed as they go.
            self.expire_blocks(h.raw, Some(h.rollup[Level::Minute.index()]), &mut report)?;
        }
        let series = self.series_ids()?;
        for level in Level::ALL {
            let hz = h.rollup[level.index()];
            if hz > i64::MIN {
                // A chunk goes once its last bucket ends at or before the horizon; readers skip
                // the older buckets of the chunk that straddles it.
                let end = level.chunk(hz.saturating_sub(level.chunk_ms()).saturating_add(1));
                let ranges: Vec<_> =
                    series.iter().map(|id| (keys::block_key(*id, i64::MIN).to_vec(), keys::block_key(*id, end).to_vec())).collect();
                report.rollups[level.index()] += self.delete_ranges(self.packed[level.index()], &ranges, false, &mut report.txns)?;
            }
        }
        let tenants = self.tenants()?;
        if h.alerts > i64::MIN {
            let ranges: Vec<_> = tenants.iter().map(|t| (keys::alert_key(t, i64::MIN, 0, 0), keys::alert_key(t, h.alerts, 0, 0))).collect();
            report.alerts += self.delete_ranges(self.alerts, &ranges, false, &mut report.txns)?;
            let mut ranges = Vec::new();
            for t in &tenants {
                for (level, width) in alerts::LEVELS {
                    let end = h.alerts.saturating_sub(width).saturating_add(1);
                    for dim in alerts::AlertDim::ALL {
                        ranges.push((keys::agg_key(t, level, dim as u8, i64::MIN, b""), keys::agg_key(t, level, dim as u8, end, b"")));
                    }
                }
            }
            report.alert_counts += self.delete_ranges(self.alert_aggs, &ranges, false, &mut report.txns)?;
        }
        if h.states > i64::MIN {
            let mut ranges = Vec::new();
            for (device, _) in self.devices(None)? {
                for kind in [state_kind::LICENSE, state_kind::INVENTORY] {
                    ranges.push((keys::state_key(&device, kind, i64::MIN), keys::state_key(&device, kind, h.states)));
                }
            }
            report.states += self.delete_ranges(self.states, &ranges, true, &mut report.txns)?;
        }
        Ok(report)
    }

    /// Deletes the keys in each `[lo, hi)` of `db`, [`OPS_PER_TXN`] per transaction. With
    /// `keep_last`, the last key of each range stays.
    fn delete_ranges(&self, db: Db, ranges: &[(Vec<u8>, Vec<u8>)], keep_last: bool, txns: &mut u64) -> Result<u64, StoreError> {
        let mut at = 0;
        let mut total = 0;
        while at < ranges.len() {
            let (next, n) = self.write(|s, wtxn| {
                let mut ops = 0;
                let mut i = at;
                while i < ranges.len() && ops < OPS_PER_TXN {
                    let (lo, hi) = &ranges[i];
                    let hi = if keep_last {
                        let range = (Bound::Included(&lo[..]), Bound::Excluded(&hi[..]));
                        match db.rev_range(wtxn, &range).map_err(s.lmdb())?.next() {
                            Some(item) => item.map_err(s.lmdb())?.0.to_vec(),
                            None => {
                                i += 1;
                                continue;
                            }
                        }
                    } else {
                        hi.clone()
                    };
                    let range = (Bound::Included(&lo[..]), Bound::Excluded(&hi[..]));
                    let budget = OPS_PER_TXN - ops;
                    let mut doomed = Vec::new();
                    for item in db.range(wtxn, &range).map_err(s.lmdb())?.take(budget) {
                        doomed.push(item.map_err(s.lmdb())?.0.to_vec());
                    }
                    for k in &doomed {
                        db.delete(wtxn, k).map_err(s.lmdb())?;
                    }
                    ops += doomed.len();
                    if doomed.len() < budget {
                        i += 1;
                    }
                }
                Ok((i, ops as u64))
            })?;
            *txns += 1;
            at = next;
            total += n;
        }
        Ok(total)
    }

    /// Deletes blocks that end before `horizon` and rewrites those that straddle it, series by
    /// series.
    /// With `pack_from` (the minute horizon), deleted points whose minute bucket ends after it
    /// are added to the packed minutes in the same transaction.
    pub(crate) fn expire_blocks(&self, horizon: i64, pack_from: Option<i64>, report: &mut RetentionReport) -> Result<(), StoreError> {
        let mut next_series = Some(0u64);
        while let Some(from) = next_series {
            let (resume, deleted) = self.write(|s, wtxn| s.expire_blocks_txn(wtxn, from, horizon, pack_from))?;
            report.txns += 1;
            report.points += deleted;
            next_series = resume;
        }
        Ok(())
    }

    fn expire_blocks_txn(
        &self,
        wtxn: &mut RwTxn<'_>,
        mut series: u64,
        horizon: i64,
        pack_from: Option<i64>,
    ) -> Result<(Option<u64>, u64), StoreError> {
        let mut ops = 0;
        let mut deleted = 0u64;
        loop {
            // The next series that has blocks.
            let found = self.blocks.get_greater_than_or_equal_to(wtxn, &keys::block_key(series, i64::MIN)).map_err(self.lmdb())?;
            let Some((k, _)) = found else { break };
            series = keys::split_point_key(k).ok_or_else(|| self.corrupt(names::BLOCKS, "bad key"))?.0;
            if ops >= OPS_PER_TXN {
                self.adjust_raw_points(wtxn, deleted)?;
                return Ok((Some(series), deleted));
            }
            let (lo, hi) = (keys::block_key(series, i64::MIN), keys::block_key(series, horizon));
            let range = (Bound::Included(&lo[..]), Bound::Excluded(&hi[..]));
            let mut old = Vec::new();
            for item in self.blocks.range(wtxn, &range).map_err(self.lmdb())?.take(OPS_PER_TXN) {
                let (k, v) = item.map_err(self.lmdb())?;
                old.push((k.to_vec(), v.to_vec()));
            }
            let full = old.len() == OPS_PER_TXN;
            let mut gone = Vec::new();
            for (k, v) in &old {
                let h = Header::parse(v).map_err(|e| self.corrupt(names::BLOCKS, e))?;
                self.blocks.delete(wtxn, k).map_err(self.lmdb())?;
                // A minute bucket is kept while it ends after the minute horizon.
                let keeps_minute = |ts: i64| pack_from.is_some_and(|p| Level::Minute.bucket(ts).saturating_add(Level::Minute.ms()) > p);
                if h.last_ts < horizon && !keeps_minute(h.last_ts) {
                    deleted += u64::from(h.count);
                } else {
                    // Straddles the horizon (or holds points for the packed minutes): keep the
                    // newer part.
                    let pts = block::decode(v).map_err(|e| self.corrupt(names::BLOCKS, e))?;
                    let (keep, old): (Points, Points) = pts.into_iter().partition(|p| p.0 >= horizon);
                    deleted += old.len() as u64;
                    gone.extend(old.into_iter().filter(|p| keeps_minute(p.0)));
                    for b in block::encode_all(&keep) {
                        let first = Header::parse(&b).map_err(|e| self.corrupt(names::BLOCKS, e))?.first_ts;
                        self.blocks.put(wtxn, &keys::block_key(series, first), &b).map_err(self.lmdb())?;
                    }
                }
                ops += 1;
            }
            ops += self.add_to_chunks(wtxn, Level::Minute, series, &gone)?;
            if full {
                // More old blocks of this series than one transaction takes: come back to it.
                self.adjust_raw_points(wtxn, deleted)?;
                return Ok((Some(series), deleted));
            }
            ops += 1;
            match series.checked_add(1) {
                Some(n) => series = n,
                None => break,
            }
        }
        self.adjust_raw_points(wtxn, deleted)?;
        Ok((None, deleted))
    }

    /// Every series id.
    pub(crate) fn series_ids(&self) -> Result<Vec<u64>, StoreError> {
        let snap = self.read()?;
        let mut ids = Vec::new();
        for item in self.series.iter(&snap).map_err(self.lmdb())? {
            ids.push(u64_from(item.map_err(self.lmdb())?.1));
        }
        ids.sort_unstable();
        Ok(ids)
    }

    fn adjust_raw_points(&self, wtxn: &mut RwTxn<'_>, deleted: u64) -> Result<(), StoreError> {
        let n = self.meta_u64(wtxn, meta::RAW_POINTS)?;
        self.put_meta(wtxn, meta::RAW_POINTS, n.saturating_sub(deleted))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coarser_levels_never_expire_before_finer_ones() {
        let r = Retention { raw_ms: Some(10), minute_ms: Some(5), hour_ms: None, day_ms: Some(100), alerts_ms: None, states_ms: Some(1) };
        let none = Horizons { raw: i64::MIN, rollup: [i64::MIN; 3], alerts: i64::MIN, states: i64::MIN };
        let h = r.horizons(1000, &none);
        assert_eq!(h.raw, 990);
        assert_eq!(h.rollup, [990, i64::MIN, i64::MIN]);
        assert_eq!((h.alerts, h.states), (i64::MIN, 999));
        // Horizons never move back.
        let later = Retention::FOREVER.horizons(2000, &h);
        assert_eq!(later, h);
    }
}
