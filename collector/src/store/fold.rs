//! The fold: moves the ingest log into per-series blocks, rollups and the alert tables.
//!
//! One round:
//!
//! 1. In a read transaction, take log entries after `folded` until a budget of points, alerts
//!    or entries is reached, and the marks of the series they touch. The writer is not held up.
//! 2. In memory, per series: drop points at or below the series' mark (folded by an earlier,
//!    interrupted round), sort by time keeping arrival order, keep the first of equal
//!    timestamps.
//! 3. Series by series, in write transactions of at most [`FoldLimits::txn_budget`] of work:
//!    merge the points into the blocks (appending to the open block without decoding it when
//!    they are newer, which is the common case), add the points that were new to the packed
//!    hour and day rollups, set the series' mark to the round's last log key.
//! 4. One last transaction: alerts and their aggregates, delete the round's log entries, set
//!    `folded`.
//!
//! Each transaction is atomic and the marks say what is done, so a crash anywhere loses and
//! duplicates nothing; the next round redoes what is left.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use ampel_protocol::Alert;
use heed::RwTxn;

use super::block::{self, Builder, Header, ResumeError};
use super::log::Entry;
use super::rollup::Level;
use super::{Store, StoreError, StoredAlert, alerts, cbor, keys, lock, meta, names, u64_from};

/// Longest the fold steps aside for waiting commits before its next transaction.
pub const WRITER_FIRST_MAX: Duration = Duration::from_millis(100);

/// How much one fold round may take on.
#[derive(Debug, Clone)]
pub struct FoldLimits {
    /// Most points read from the log per round (memory: about 24 bytes each).
    pub max_points: usize,
    /// Most alerts per round (they all go into the round's last transaction).
    pub max_alerts: usize,
    /// Most log entries per round.
    pub max_entries: usize,
    /// Time spent merging series into blocks per write transaction, so the writer is never
    /// held up long. The rollup updates and the commit come on top; see `max_rollups_per_txn`.
    pub txn_budget: Duration,
    /// Packed rollup chunks rewritten per write transaction at most (each costs a decode, an
    /// encode and a write, and dirties pages the commit writes).
    pub max_rollups_per_txn: usize,
    /// Stop after this many write transactions, as if the process had died there. For tests of
    /// crash safety; `None` in production.
    #[doc(hidden)]
    pub stop_after_txns: Option<usize>,
}

impl Default for FoldLimits {
    fn default() -> Self {
        FoldLimits {
            max_points: 1_000_000,
            max_alerts: 20_000,
            max_entries: 100_000,
            txn_budget: Duration::from_millis(15),
            max_rollups_per_txn: 4_000,
            stop_after_txns: None,
        }
    }
}

/// What a fold round did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FoldReport {
    /// Log entries folded and trimmed.
    pub entries: u64,
    /// Points added to the blocks.
    pub points: u64,
    /// Points dropped because their (series, timestamp) was stored already.
    pub duplicates: u64,
    /// Points and alerts dropped because retention had passed them by.
    pub expired: u64,
    /// Alerts stored.
    pub alerts: u64,
    /// Log entries that did not decode and were dropped.
    pub corrupt: u64,
    /// Write transactions committed.
    pub txns: u64,
    /// Time spent in write transactions, commits included: what the writer may have waited.
    pub txn_time: Duration,
    /// The longest write transaction, commit included.
    pub longest_txn: Duration,
    /// Whether the log holds more (the round hit a limit or was stopped).
    pub more: bool,
}

impl FoldReport {
    fn note_txn(&mut self, took: Duration) {
        self.txn_time += took;
        self.longest_txn = self.longest_txn.max(took);
    }
}

/// A point read from the log: log key, timestamp, value.
pub(super) type LogPoint = (u64, i64, f64);

/// An alert read from the log, with where it came from.
struct LogAlert {
    tenant: String,
    device: String,
    seq: u64,
    pos: u32,
    alert: Alert,
}

struct Round {
    /// Last log key taken; `folded` before the round.
    last: u64,
    first: u64,
    entries: u64,
    corrupt: u64,
    more: bool,
    series: BTreeMap<u64, Vec<LogPoint>>,
    alerts: Vec<LogAlert>,
}

/// Per-transaction counts.
#[derive(Default)]
pub(super) struct Counts {
    pub(super) stored: u64,
    pub(super) duplicates: u64,
    pub(super) expired: u64,
}

impl Store {
    /// Runs one fold round (see the module docs). Returns quickly with `entries == 0` when the
    /// log is empty.
    pub fn fold(&self, limits: &FoldLimits) -> Result<FoldReport, StoreError> {
        let _one = lock(&self.shared.maintenance);
        let mut round = self.take_round(limits)?;
        let mut report = FoldReport { entries: round.entries, corrupt: round.corrupt, more: round.more, ..FoldReport::default() };
        if round.entries == 0 {
            return Ok(report);
        }
        let ids: Vec<u64> = round.series.keys().copied().collect();
        let mut i = 0;
        while i < ids.len() {
            if limits.stop_after_txns.is_some_and(|n| report.txns as usize >= n) {
                report.more = true;
                return Ok(report);
            }
            self.let_the_writer_go_first();
            let txn_started = Instant::now();
            let (next, counts) = self.write(|s, wtxn| {
                let started = Instant::now();
                let h = s.horizons_in(wtxn)?;
                let mut counts = Counts::default();
                let mut j = i;
                let mut pending_rollups = 0;
                while j < ids.len() && (j == i || (started.elapsed() < limits.txn_budget && pending_rollups < limits.max_rollups_per_txn)) {
                    let id = ids[j];
                    let points = round.series.get(&id).map(Vec::as_slice).unwrap_or_default();
                    let fresh = s.fold_series(wtxn, id, points, h.raw, &mut counts)?;
                    // Minute buckets come from the blocks while they are kept (see the module
                    // docs of `store`); hours and days are packed here.
                    for level in Level::FOLDED {
                        pending_rollups += s.add_to_chunks(wtxn, level, id, &fresh)?;
                    }
                    s.marks.put(wtxn, &id.to_be_bytes(), &round.last.to_be_bytes()).map_err(s.lmdb())?;
                    j += 1;
                }
                let total = s.meta_u64(wtxn, meta::RAW_POINTS)?;
                s.put_meta(wtxn, meta::RAW_POINTS, total + counts.stored)?;
                Ok((j, counts))
            })?;
            report.txns += 1;
            report.note_txn(txn_started.elapsed());
            report.points += counts.stored;
            report.duplicates += counts.duplicates;
            report.expired += counts.expired;
            i = next;
        }
        if limits.stop_after_txns.is_some_and(|n| report.txns as usize >= n) {
            report.more = true;
            return Ok(report);
        }
        let alerts = std::mem::take(&mut round.alerts);
        self.let_the_writer_go_first();
        let txn_started = Instant::now();
        let (stored, expired) = self.write(|s, wtxn| s.finish_round(wtxn, &round, &alerts))?;
        report.txns += 1;
        report.note_txn(txn_started.elapsed());
        report.alerts = stored;
        report.expired += expired;
        Ok(report)
    }

    /// LMDB's writer lock is not fair: a fold that starts its next transaction right after a
    /// commit can keep the writer, and so every agent's acknowledgement, waiting for several
    /// transactions. Between its transactions the fold therefore steps aside while a commit is
    /// waiting (for at most [`WRITER_FIRST_MAX`], so that a saturated writer cannot stall the
    /// fold for good).
    fn let_the_writer_go_first(&self) {
        let started = Instant::now();
        while self.shared.commits_waiting.load(Ordering::Acquire) > 0 && started.elapsed() < WRITER_FIRST_MAX {
            std::thread::sleep(Duration::from_micros(200));
        }
    }

    /// Folds until the log is empty. For tools and tests; the background task folds round by
    /// round.
    pub fn fold_all(&self) -> Result<FoldReport, StoreError> {
        let mut total = FoldReport::default();
        loop {
            let r = self.fold(&FoldLimits::default())?;
            total.entries += r.entries;
            total.points += r.points;
            total.duplicates += r.duplicates;
            total.expired += r.expired;
            total.alerts += r.alerts;
            total.corrupt += r.corrupt;
            total.txns += r.txns;
            total.txn_time += r.txn_time;
            total.longest_txn = total.longest_txn.max(r.longest_txn);
            if !r.more {
                return Ok(total);
            }
        }
    }

    /// Step 1 and 2: read a round's worth of the log.
    fn take_round(&self, limits: &FoldLimits) -> Result<Round, StoreError> {
        let snap = self.read()?;
        let folded = self.meta_u64(&snap, meta::FOLDED)?;
        let mut round =
            Round { last: folded, first: folded, entries: 0, corrupt: 0, more: false, series: BTreeMap::new(), alerts: Vec::new() };
        let (mut points, mut alert_count) = (0usize, 0usize);
        let lo = keys::log_key(folded);
        let range = (Bound::Excluded(&lo[..]), Bound::Unbounded);
        for item in self.log.range(&snap, &range).map_err(self.lmdb())? {
            let (k, v) = item.map_err(self.lmdb())?;
            let seq = keys::split_log_key(k).ok_or_else(|| self.corrupt(names::LOG, "bad key"))?;
            let parsed = Entry::parse(v).and_then(|e| Ok((e.alerts()?, e)));
            let (alerts, entry) = match parsed {
                Ok(x) => x,
                Err(e) => {
                    // Dropping one damaged entry beats stalling the fold for good.
                    tracing::error!(entry = seq, error = %e, "dropping a damaged ingest-log entry");
                    round.corrupt += 1;
                    round.last = seq;
                    round.entries += 1;
                    continue;
                }
            };
            let n = entry.point_count();
            if round.entries > 0
                && (points + n > limits.max_points
                    || alert_count + alerts.len() > limits.max_alerts
                    || round.entries as usize >= limits.max_entries)
            {
                round.more = true;
                break;
            }
            for s in &entry.sections {
                let v = round.series.entry(s.series).or_default();
                let ok = s.for_each(|t, x| v.push((seq, t, x)));
                if ok.is_err() {
                    round.corrupt += 1;
                }
            }
            for (pos, alert) in alerts.into_iter().enumerate() {
                round.alerts.push(LogAlert {
                    tenant: entry.tenant.to_owned(),
                    device: entry.device.to_owned(),
                    seq,
                    pos: pos as u32,
                    alert,
                });
            }
            points += n;
            alert_count = round.alerts.len();
            round.last = seq;
            round.entries += 1;
        }
        for (id, pts) in round.series.iter_mut() {
            let mark = self.marks.get(&snap, &id.to_be_bytes()).map_err(self.lmdb())?.map(u64_from).unwrap_or(0);
            pts.retain(|p| p.0 > mark);
            pts.sort_by_key(|p| p.1);
            pts.dedup_by_key(|p| p.1);
        }
        round.series.retain(|_, v| !v.is_empty());
        Ok(round)
    }

    /// Merges one series' new points (sorted, distinct timestamps) into its blocks. Returns the
    /// points that were new.
    pub(super) fn fold_series(
        &self,
        wtxn: &mut RwTxn<'_>,
        series: u64,
        points: &[LogPoint],
        horizon: i64,
        counts: &mut Counts,
    ) -> Result<Vec<(i64, f64)>, StoreError> {
        let start = points.partition_point(|p| p.1 < horizon);
        counts.expired += start as u64;
        let points = &points[start..];
        let mut fresh = Vec::with_capacity(points.len());
        let mut i = 0;
        while i < points.len() {
            let ts = points[i].1;
            let below = self.blocks.get_lower_than_or_equal_to(wtxn, &keys::block_key(series, ts)).map_err(self.lmdb())?;
            let below = match below {
                Some((k, v)) => match keys::split_point_key(k) {
                    Some((s, start)) if s == series => Some((start, v.to_vec())),
                    Some(_) => None,
                    None => return Err(self.corrupt(names::BLOCKS, "bad key")),
                },
                None => None,
            };
            let after = below.as_ref().map_or(ts, |(start, _)| *start);
            let next = self.block_after(wtxn, series, after, below.is_none())?;
            let j = i + points[i..].iter().take_while(|p| next.is_none_or(|n| p.1 < n)).count();
            let chunk = &points[i..j];
            match below {
                None => {
                    // Before the series' first block, or the series has none: new blocks.
                    let pts: Vec<(i64, f64)> = chunk.iter().map(|p| (p.1, p.2)).collect();
                    self.put_blocks(wtxn, series, &block::encode_all(&pts))?;
                    fresh.extend(pts);
                }
                Some((_, bytes)) => {
                    let header = Header::parse(&bytes).map_err(|e| self.corrupt(names::BLOCKS, e))?;
                    if chunk[0].1 > header.last_ts {
                        // All newer than the block: append without decoding it.
                        // A block of 0.1.0 is never appended to: new points start a block.
                        let mut b = match Builder::resume(&bytes) {
                            Ok(b) => Some(b),
                            Err(ResumeError::Legacy) => None,
                            Err(ResumeError::Damaged(e)) => return Err(self.corrupt(names::BLOCKS, e)),
                        };
                        let mut out = Vec::new();
                        for p in chunk {
                            if !b.as_mut().is_some_and(|b| b.push(p.1, p.2)) {
                                out.extend(b.take().map(Builder::finish));
                                b = Some(Builder::new(p.1, p.2));
                            }
                            fresh.push((p.1, p.2));
                        }
                        out.extend(b.map(Builder::finish));
                        self.put_blocks(wtxn, series, &out)?;
                    } else {
                        let old = block::decode(&bytes).map_err(|e| self.corrupt(names::BLOCKS, e))?;
                        let mut merged = Vec::with_capacity(old.len() + chunk.len());
                        let mut o = old.into_iter().peekable();
                        for p in chunk {
                            while let Some(x) = o.next_if(|x| x.0 < p.1) {
                                merged.push(x);
                            }
                            if o.peek().is_some_and(|x| x.0 == p.1) {
                                counts.duplicates += 1;
                            } else {
                                merged.push((p.1, p.2));
                                fresh.push((p.1, p.2));
                            }
                        }
                        merged.extend(o);
                        self.put_blocks(wtxn, series, &block::encode_all(&merged))?;
                    }
                }
            }
            i = j;
        }
        counts.stored += fresh.len() as u64;
        Ok(fresh)
    }

    /// Start of the first block of `series` after `ts` (or at it, when `inclusive`).
    fn block_after(&self, txn: &heed::RoTxn<'_>, series: u64, ts: i64, inclusive: bool) -> Result<Option<i64>, StoreError> {
        let k = keys::block_key(series, ts);
        let found = if inclusive {
            self.blocks.get_greater_than_or_equal_to(txn, &k).map_err(self.lmdb())?
        } else {
            self.blocks.get_greater_than(txn, &k).map_err(self.lmdb())?
        };
        Ok(match found {
            Some((k, _)) => match keys::split_point_key(k) {
                Some((s, start)) if s == series => Some(start),
                _ => None,
            },
            None => None,
        })
    }

    fn put_blocks(&self, wtxn: &mut RwTxn<'_>, series: u64, blocks: &[Vec<u8>]) -> Result<(), StoreError> {
        for b in blocks {
            let first = Header::parse(b).map_err(|e| self.corrupt(names::BLOCKS, e))?.first_ts;
            self.blocks.put(wtxn, &keys::block_key(series, first), b).map_err(self.lmdb())?;
        }
        Ok(())
    }

    /// Step 4: alerts, trimming the log, moving `folded`.
    fn finish_round(&self, wtxn: &mut RwTxn<'_>, round: &Round, alerts: &[LogAlert]) -> Result<(u64, u64), StoreError> {
        let folded = self.meta_u64(wtxn, meta::FOLDED)?;
        if folded != round.first {
            return Err(self.corrupt(names::LOG, format!("fold progress moved from {} to {folded} during a round", round.first)));
        }
        let h = self.horizons_in(wtxn)?;
        let (mut stored, mut expired) = (0u64, 0u64);
        let mut aggs: BTreeMap<Vec<u8>, u64> = BTreeMap::new();
        for a in alerts {
            if a.alert.ts < h.alerts {
                expired += 1;
                continue;
            }
            let key = keys::alert_key(&a.tenant, a.alert.ts, a.seq, a.pos);
            let value = cbor(&StoredAlert { device: a.device.clone(), alert: a.alert.clone() });
            self.alerts.put(wtxn, &key, &value).map_err(self.lmdb())?;
            alerts::count_into(&mut aggs, &a.tenant, &a.device, &a.alert);
            stored += 1;
        }
        for (k, n) in aggs {
            let old = self.alert_aggs.get(wtxn, &k).map_err(self.lmdb())?.map(u64_from).unwrap_or(0);
            self.alert_aggs.put(wtxn, &k, &(old + n).to_be_bytes()).map_err(self.lmdb())?;
        }
        let (lo, hi) = (keys::log_key(round.first), keys::log_key(round.last));
        let range = (Bound::Excluded(&lo[..]), Bound::Included(&hi[..]));
        self.log.delete_range(wtxn, &range).map_err(self.lmdb())?;
        self.put_meta(wtxn, meta::FOLDED, round.last)?;
        Ok((stored, expired))
    }
}
