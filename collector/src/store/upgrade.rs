//! Opening a store written by an earlier version.
//!
//! 0.1.0's stores have no `format` in `meta`. Their blocks are read in place (the format byte
//! tells them apart). Their rollups, one 48-byte entry per series and bucket in `rollup-1m`,
//! `rollup-1h` and `rollup-1d`, are converted on open into the packed chunks of this version:
//!
//! - hours and days are merged into `packed-1h` / `packed-1d`;
//! - a minute bucket whose raw points are still kept is dropped (this version computes minutes
//!   from raw points), one older than the raw horizon goes into `packed-1m`. A raw horizon in
//!   the middle of a minute is first moved to that minute's end, so no minute is half raw.
//!
//! Each transaction moves at most [`PER_TXN`] entries (deleting them from the old database in
//! the same transaction), so a kill -9 during the conversion loses nothing and the next open
//! goes on where it stopped. Progress goes to the log. `format` is written last.

use std::ops::Bound;

use heed::RwTxn;

use super::retention::RetentionReport;
use super::rollup::{Aggregate, Level, ceil_to};
use super::{FORMAT, Store, StoreError, keys, meta, names};

/// Old rollup entries converted per write transaction.
pub const PER_TXN: usize = 20_000;

impl Store {
    /// Brings a store of an earlier format up to [`FORMAT`]; refuses a newer one.
    pub(crate) fn upgrade(&self) -> Result<(), StoreError> {
        let snap = self.read()?;
        let found = self.meta.get(&snap, meta::FORMAT).map_err(self.lmdb())?.map(super::u64_from);
        let legacy: u64 = self.rollups.iter().map(|db| db.len(&snap)).sum::<Result<u64, _>>().map_err(self.lmdb())?;
        drop(snap);
        match found {
            Some(f) if f > FORMAT => return Err(StoreError::TooNew { path: self.path.clone(), found: f }),
            Some(FORMAT) if legacy == 0 => return Ok(()),
            _ => {}
        }
        if legacy > 0 {
            tracing::info!(path = %self.path.display(), entries = legacy, "converting rollups of an ampel-collector 0.1.0 store to the packed format");
            self.align_raw_horizon()?;
            let (mut done, mut txns) = (0u64, 0usize);
            for level in Level::ALL {
                loop {
                    if self.opts.upgrade_stop_after_txns.is_some_and(|n| txns >= n) {
                        return Err(StoreError::Interrupted { path: self.path.clone() });
                    }
                    let Some(n) = self.write(|s, wtxn| s.convert_some(wtxn, level))? else { break };
                    txns += 1;
                    done += n as u64;
                    tracing::info!(converted = done, of = legacy, "converting rollups");
                }
            }
        }
        self.write(|s, wtxn| s.put_meta(wtxn, meta::FORMAT, FORMAT))?;
        Ok(())
    }

    /// Moves a raw horizon that lies inside a minute to the minute's end, deleting the raw
    /// points before it (0.1.0's minute rollups hold them).
    fn align_raw_horizon(&self) -> Result<(), StoreError> {
        let h = self.horizons()?;
        if h.raw == i64::MIN || h.raw % Level::Minute.ms() == 0 {
            return Ok(());
        }
        let aligned = ceil_to(h.raw, Level::Minute.ms());
        self.write(|s, wtxn| s.put_meta(wtxn, meta::H_RAW, aligned as u64))?;
        self.expire_blocks(aligned, None, &mut RetentionReport::default())
    }

    /// Moves up to [`PER_TXN`] old entries of `level`; `None` when none are left.
    fn convert_some(&self, wtxn: &mut RwTxn<'_>, level: Level) -> Result<Option<usize>, StoreError> {
        let db = self.rollups[level.index()];
        let raw_horizon = self.horizons_in(wtxn)?.raw;
        let mut taken: Vec<(Vec<u8>, u64, Aggregate)> = Vec::new();
        for item in db.iter(wtxn).map_err(self.lmdb())?.take(PER_TXN) {
            let (k, v) = item.map_err(self.lmdb())?;
            let (bucket, series) = keys::split_rollup_key(k).ok_or_else(|| self.corrupt(names::ROLLUPS[level.index()], "bad key"))?;
            let agg = Aggregate::decode(bucket, v).ok_or_else(|| self.corrupt(names::ROLLUPS[level.index()], "bad length"))?;
            taken.push((k.to_vec(), series, agg));
        }
        if taken.is_empty() {
            return Ok(None);
        }
        let n = taken.len();
        let (lo, hi) = (taken[0].0.clone(), taken[n - 1].0.clone());
        db.delete_range(wtxn, &(Bound::Included(&lo[..]), Bound::Included(&hi[..]))).map_err(self.lmdb())?;
        // Minutes whose raw points are kept are computed from them.
        taken.retain(|(_, _, a)| level != Level::Minute || a.ts.saturating_add(level.ms()) <= raw_horizon);
        taken.sort_by_key(|(_, series, a)| (*series, a.ts));
        let mut i = 0;
        while i < taken.len() {
            let series = taken[i].1;
            let j = i + taken[i..].iter().take_while(|t| t.1 == series).count();
            let aggs: Vec<Aggregate> = taken[i..j].iter().map(|t| t.2).collect();
            self.merge_into_chunks(wtxn, level, series, &aggs)?;
            i = j;
        }
        Ok(Some(n))
    }
}
