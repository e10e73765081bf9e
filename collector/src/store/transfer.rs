//! One tenant's data as a stream of [`Item`]s: out of one store ([`Store::export_tenant`]) and
//! into another ([`Store::import_tenant`]), for moving a tenant between shards.
//!
//! The items are logical, not the databases' bytes: series ids and log keys are local to a
//! store, so a series travels by its name (device, metric, labels) and gets the target's id.
//! The export reads one snapshot, so it is consistent while the source collector keeps running;
//! points and alerts still in the ingest log are exported as if folded (their rollups and alert
//! counts added), so the target needs no log entries of the tenant.
//!
//! An import merges, so importing the same items twice changes nothing: a point whose (series,
//! timestamp) is stored already is ignored, as at ingest (the first write wins); a rollup bucket,
//! an alert, an alert count or a state entry already present is kept; device records take the
//! wider of both (first and last seen, counters, the later licence and inventory); dedupe
//! windows are united, the later high-water mark winning. Everything goes into one write
//! transaction: an import is applied whole or not at all.

use std::collections::BTreeMap;
use std::ops::Bound;

use ampel_protocol::{Inventory, License, TenantId};
use heed::RwTxn;
use serde::{Deserialize, Serialize};

use super::fold::{Counts, LogPoint};
use super::keys::Labels;
use super::rollup::{Aggregate, Level};
use super::seq::SeqWindow;
use super::{DeviceRecord, Snapshot, Store, StoreError, StoredAlert, alerts, cbor, keys, meta, names, state_kind, u64_from};

/// Most points in one [`Item::Points`]; a longer series is exported as several items.
pub const POINTS_PER_ITEM: usize = 1 << 16;

/// A series by what names it in every store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeriesName {
    /// The device.
    pub device: String,
    /// The metric name.
    pub name: String,
    /// The labels, in stored order.
    pub labels: Labels,
}

/// One rollup bucket: start, min, max, sum, count, last value, time of the last value.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Bucket(pub i64, pub f64, pub f64, pub f64, pub u64, pub f64, pub i64);

impl From<Aggregate> for Bucket {
    fn from(a: Aggregate) -> Bucket {
        Bucket(a.ts, a.min, a.max, a.sum, a.count, a.last, a.last_ts)
    }
}

impl From<Bucket> for Aggregate {
    fn from(b: Bucket) -> Aggregate {
        Aggregate { ts: b.0, min: b.1, max: b.2, sum: b.3, count: b.4, last: b.5, last_ts: b.6 }
    }
}

/// A device's state at one time, as reported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum StateValue {
    /// A licence report.
    License(License),
    /// An inventory report.
    Inventory(Inventory),
}

/// One piece of a tenant's data. Devices come first: every other item names a device of the
/// tenant, which the import checks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Item {
    /// A device of the tenant and its registry record.
    Device {
        /// The device id.
        device: String,
        /// The registry record.
        record: DeviceRecord,
    },
    /// A device's dedupe window ([`SeqWindow`], encoded).
    Seqs {
        /// The device id.
        device: String,
        /// [`SeqWindow::encode`]'s bytes.
        window: Vec<u8>,
    },
    /// One entry of a device's state history.
    State {
        /// The device id.
        device: String,
        /// When it was reported, Unix ms.
        ts: i64,
        /// What was reported.
        value: StateValue,
    },
    /// Raw points of a series, time-ordered (a long series spans several items).
    Points {
        /// The series.
        series: SeriesName,
        /// (Unix ms, value).
        points: Vec<(i64, f64)>,
    },
    /// Rollup buckets of a series at one level (0 minute, 1 hour, 2 day), time-ordered.
    Rollups {
        /// The series.
        series: SeriesName,
        /// [`Level::index`].
        level: u8,
        /// The buckets.
        buckets: Vec<Bucket>,
    },
    /// A stored alert, with where it sits in the alert table.
    Alert {
        /// Arrival number on the source (part of the key, keeps alerts of one time apart).
        arrival: u64,
        /// Position in its batch.
        pos: u32,
        /// The alert and its device.
        alert: StoredAlert,
    },
    /// One alert aggregate count: its key after `tenant \0`.
    AlertCount {
        /// Level, dimension, bucket and value, as in the `alert-aggs` key.
        key: Vec<u8>,
        /// The count.
        count: u64,
    },
}

/// What an export or an import went through.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TransferCounts {
    /// Devices.
    pub devices: u64,
    /// Points: exported, or newly stored by an import.
    pub points: u64,
    /// Rollup buckets: exported, or newly stored.
    pub buckets: u64,
    /// Alerts: exported, or newly stored.
    pub alerts: u64,
    /// State history entries: exported, or newly stored.
    pub states: u64,
    /// Items an import found stored already, wholly or in part (points, buckets, alerts,
    /// counts, states kept as they were).
    pub kept: u64,
}

/// Why an export stopped.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// Reading the store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The consumer of the items failed (writing the file).
    #[error("writing the export: {0}")]
    Write(#[source] std::io::Error),
}

fn level_of(i: u8) -> Option<Level> {
    Level::ALL.get(usize::from(i)).copied()
}

impl Store {
    /// Hands every item of `tenant` to `emit`, devices first, from one snapshot.
    pub fn export_tenant(&self, tenant: &str, emit: &mut dyn FnMut(Item) -> std::io::Result<()>) -> Result<TransferCounts, ExportError> {
        let snap = self.read()?;
        let mut counts = TransferCounts::default();
        let devices = self.tenant_devices(&snap, tenant)?;
        for (device, record) in &devices {
            emit(Item::Device { device: device.clone(), record: record.clone() }).map_err(ExportError::Write)?;
            counts.devices += 1;
        }
        for (device, _) in &devices {
            if let Some(w) = self.seqs.get(&snap, device.as_bytes()).map_err(self.lmdb())? {
                emit(Item::Seqs { device: device.clone(), window: w.to_vec() }).map_err(ExportError::Write)?;
            }
            self.export_states(&snap, device, emit, &mut counts)?;
            self.export_series(&snap, device, emit, &mut counts)?;
        }
        self.export_alerts(&snap, tenant, emit, &mut counts)?;
        Ok(counts)
    }

    /// The devices registered to `tenant`, sorted by id.
    fn tenant_devices(&self, snap: &heed::RoTxn<'_>, tenant: &str) -> Result<Vec<(String, DeviceRecord)>, StoreError> {
        let mut out = Vec::new();
        for item in self.devices.iter(snap).map_err(self.lmdb())? {
            let (k, v) = item.map_err(self.lmdb())?;
            let rec: DeviceRecord = serde_cbor::from_slice(v).map_err(|e| self.corrupt(names::DEVICES, e))?;
            if rec.tenant == tenant {
                let id = std::str::from_utf8(k).map_err(|e| self.corrupt(names::DEVICES, e))?;
                out.push((id.to_owned(), rec));
            }
        }
        Ok(out)
    }

    fn export_states(
        &self,
        snap: &Snapshot<'_>,
        device: &str,
        emit: &mut dyn FnMut(Item) -> std::io::Result<()>,
        counts: &mut TransferCounts,
    ) -> Result<(), ExportError> {
        for kind in [state_kind::LICENSE, state_kind::INVENTORY] {
            let (lo, hi) = (keys::state_key(device, kind, i64::MIN), keys::state_key(device, kind, i64::MAX));
            let range = (Bound::Included(&lo[..]), Bound::Included(&hi[..]));
            for item in self.states.range(snap, &range).map_err(self.lmdb())? {
                let (k, v) = item.map_err(self.lmdb())?;
                let ts = keys::split_state_key(k).ok_or_else(|| self.corrupt(names::STATES, "bad key"))?;
                let value = match kind {
                    state_kind::LICENSE => StateValue::License(serde_cbor::from_slice(v).map_err(|e| self.corrupt(names::STATES, e))?),
                    _ => StateValue::Inventory(serde_cbor::from_slice(v).map_err(|e| self.corrupt(names::STATES, e))?),
                };
                emit(Item::State { device: device.to_owned(), ts, value }).map_err(ExportError::Write)?;
                counts.states += 1;
            }
        }
        Ok(())
    }

    fn export_series(
        &self,
        snap: &Snapshot<'_>,
        device: &str,
        emit: &mut dyn FnMut(Item) -> std::io::Result<()>,
        counts: &mut TransferCounts,
    ) -> Result<(), ExportError> {
        let h = self.horizons_in(snap)?;
        let prefix = keys::device_series_prefix(device);
        let mut ids = Vec::new();
        for item in self.series.prefix_iter(snap, &prefix).map_err(self.lmdb())? {
            let (k, v) = item.map_err(self.lmdb())?;
            let (_, name, labels) = keys::parse_series_key(k).ok_or_else(|| self.corrupt(names::SERIES, "bad key"))?;
            ids.push((SeriesName { device: device.to_owned(), name, labels }, u64_from(v)));
        }
        for (series, id) in ids {
            let points = self.points_in(snap, id, i64::MIN, i64::MAX)?;
            counts.points += points.len() as u64;
            for part in points.chunks(POINTS_PER_ITEM) {
                emit(Item::Points { series: series.clone(), points: part.to_vec() }).map_err(ExportError::Write)?;
            }
            // The tail is not in the hour and day rollups yet: add it as the fold will.
            let tail = self.tail_points(snap, id, i64::MIN, i64::MAX, h.raw)?;
            let tail = self.drop_stored(snap, id, tail)?;
            for level in Level::ALL {
                let mut buckets = Vec::new();
                self.read_chunks(snap, level, id, (i64::MIN, i64::MAX), h.rollup[level.index()], |a| buckets.push(a))?;
                if level != Level::Minute {
                    super::chunk::add_points(level, &mut buckets, &tail);
                }
                if buckets.is_empty() {
                    continue;
                }
                counts.buckets += buckets.len() as u64;
                let buckets = buckets.into_iter().map(Bucket::from).collect();
                emit(Item::Rollups { series: series.clone(), level: level.index() as u8, buckets }).map_err(ExportError::Write)?;
            }
        }
        Ok(())
    }

    fn export_alerts(
        &self,
        snap: &Snapshot<'_>,
        tenant: &str,
        emit: &mut dyn FnMut(Item) -> std::io::Result<()>,
        counts: &mut TransferCounts,
    ) -> Result<(), ExportError> {
        let h = self.horizons_in(snap)?;
        let lo = keys::alert_key(tenant, h.alerts, 0, 0);
        let hi = keys::alert_key(tenant, i64::MAX, u64::MAX, u32::MAX);
        let range = (Bound::Included(&lo[..]), Bound::Included(&hi[..]));
        for item in self.alerts.range(snap, &range).map_err(self.lmdb())? {
            let (k, v) = item.map_err(self.lmdb())?;
            let (_, arrival, pos) = keys::split_alert_key(k).ok_or_else(|| self.corrupt(names::ALERTS, "bad key"))?;
            let alert: StoredAlert = serde_cbor::from_slice(v).map_err(|e| self.corrupt(names::ALERTS, e))?;
            emit(Item::Alert { arrival, pos, alert }).map_err(ExportError::Write)?;
            counts.alerts += 1;
        }
        // Alerts still in the log: their keys are those the fold will give them.
        let mut tail_counts = BTreeMap::new();
        for ((_, arrival, pos), alert) in self.tail_alerts(snap, tenant, h.alerts, i64::MAX)? {
            alerts::count_into(&mut tail_counts, tenant, &alert.device, &alert.alert);
            emit(Item::Alert { arrival, pos, alert }).map_err(ExportError::Write)?;
            counts.alerts += 1;
        }
        let mut prefix = tenant.as_bytes().to_vec();
        prefix.push(0);
        for item in self.alert_aggs.prefix_iter(snap, &prefix).map_err(self.lmdb())? {
            let (k, v) = item.map_err(self.lmdb())?;
            let count = u64_from(v) + tail_counts.remove(k).unwrap_or(0);
            emit(Item::AlertCount { key: k[prefix.len()..].to_vec(), count }).map_err(ExportError::Write)?;
        }
        for (k, count) in tail_counts {
            emit(Item::AlertCount { key: k[prefix.len()..].to_vec(), count }).map_err(ExportError::Write)?;
        }
        Ok(())
    }

    /// Imports the items `items` yields into one write transaction (see the module docs).
    /// `items` is called again if the transaction has to be redone after growing the map.
    /// Refuses, changing nothing, an item of a device registered to another tenant or not
    /// introduced by an [`Item::Device`] of this tenant before it.
    ///
    /// The caller must hold the store's writer lock ([`super::exclusive`]): the import folds
    /// the ingest log first and then needs it to stay empty, because an alert sits in the alert
    /// table under its arrival number, which readers take for folded only up to `folded`. The
    /// import moves `folded` up to the highest arrival number it brings, so the imported alerts
    /// are seen at once and the target's later arrivals come after them.
    pub fn import_tenant<I>(&self, tenant: &TenantId, mut items: impl FnMut() -> I) -> Result<TransferCounts, StoreError>
    where
        I: Iterator<Item = Result<Item, StoreError>>,
    {
        self.fold_all()?;
        self.write(|s, wtxn| {
            if !s.log.is_empty(wtxn).map_err(s.lmdb())? {
                return Err(StoreError::WrittenDuringImport { path: s.path.clone() });
            }
            let mut counts = TransferCounts::default();
            let mut arrivals = s.meta_u64(wtxn, meta::FOLDED)?;
            for item in items() {
                let item = item?;
                if let Item::Alert { arrival, .. } = &item {
                    arrivals = arrivals.max(*arrival);
                }
                s.import_item(wtxn, tenant.as_str(), item, &mut counts)?;
            }
            s.put_meta(wtxn, meta::FOLDED, arrivals)?;
            Ok(counts)
        })
    }

    fn import_item(&self, wtxn: &mut RwTxn<'_>, tenant: &str, item: Item, counts: &mut TransferCounts) -> Result<(), StoreError> {
        match item {
            Item::Device { device, record } => self.import_device(wtxn, tenant, &device, record, counts),
            Item::Seqs { device, window } => {
                self.check_owner(wtxn, tenant, &device)?;
                let theirs = SeqWindow::decode(&window).ok_or_else(|| self.corrupt(names::SEQS, "imported window has a bad length"))?;
                let mut ours = match self.seqs.get(wtxn, device.as_bytes()).map_err(self.lmdb())? {
                    Some(b) => SeqWindow::decode(b).ok_or_else(|| self.corrupt(names::SEQS, "bad length"))?,
                    None => SeqWindow::default(),
                };
                ours.merge(&theirs);
                self.seqs.put(wtxn, device.as_bytes(), &ours.encode()).map_err(self.lmdb())
            }
            Item::State { device, ts, value } => {
                self.check_owner(wtxn, tenant, &device)?;
                let (kind, bytes) = match &value {
                    StateValue::License(l) => (state_kind::LICENSE, cbor(l)),
                    StateValue::Inventory(i) => (state_kind::INVENTORY, cbor(i)),
                };
                let added = self.put_new(wtxn, self.states, &keys::state_key(&device, kind, ts), &bytes)?;
                tally(added, &mut counts.states, &mut counts.kept);
                Ok(())
            }
            Item::Points { series, points } => self.import_points(wtxn, tenant, &series, points, counts),
            Item::Rollups { series, level, buckets } => {
                let level = level_of(level).ok_or_else(|| self.corrupt(names::PACKED[0], format!("imported rollup level {level}")))?;
                self.import_rollups(wtxn, tenant, &series, level, &buckets, counts)
            }
            Item::Alert { arrival, pos, alert } => {
                self.check_owner(wtxn, tenant, &alert.device)?;
                if alert.alert.ts < self.horizons_in(wtxn)?.alerts {
                    return Ok(());
                }
                let key = keys::alert_key(tenant, alert.alert.ts, arrival, pos);
                let added = self.put_new(wtxn, self.alerts, &key, &cbor(&alert))?;
                tally(added, &mut counts.alerts, &mut counts.kept);
                Ok(())
            }
            Item::AlertCount { key, count } => {
                let mut full = tenant.as_bytes().to_vec();
                full.push(0);
                full.extend_from_slice(&key);
                if !self.put_new(wtxn, self.alert_aggs, &full, &count.to_be_bytes())? {
                    counts.kept += 1;
                }
                Ok(())
            }
        }
    }

    /// Puts `value` under `key` unless the key is there already; says whether it did.
    fn put_new(&self, wtxn: &mut RwTxn<'_>, db: super::Db, key: &[u8], value: &[u8]) -> Result<bool, StoreError> {
        if db.get(wtxn, key).map_err(self.lmdb())?.is_some() {
            return Ok(false);
        }
        db.put(wtxn, key, value).map_err(self.lmdb())?;
        Ok(true)
    }

    /// Refuses an item of a device that is not registered to `tenant` (in the store or by an
    /// earlier item of the import).
    fn check_owner(&self, wtxn: &RwTxn<'_>, tenant: &str, device: &str) -> Result<(), StoreError> {
        match self.device_in(wtxn, device)? {
            Some(rec) if rec.tenant == tenant => Ok(()),
            Some(rec) => Err(StoreError::ForeignDevice { device: device.to_owned(), tenant: rec.tenant }),
            None => Err(StoreError::ForeignDevice { device: device.to_owned(), tenant: "none".to_owned() }),
        }
    }

    fn import_device(
        &self,
        wtxn: &mut RwTxn<'_>,
        tenant: &str,
        device: &str,
        theirs: DeviceRecord,
        counts: &mut TransferCounts,
    ) -> Result<(), StoreError> {
        if theirs.tenant != tenant {
            return Err(StoreError::ForeignDevice { device: device.to_owned(), tenant: theirs.tenant });
        }
        let merged = match self.device_in(wtxn, device)? {
            None => theirs,
            Some(ours) if ours.tenant != tenant => {
                return Err(StoreError::ForeignDevice { device: device.to_owned(), tenant: ours.tenant });
            }
            Some(ours) => merge_records(ours, theirs),
        };
        self.devices.put(wtxn, device.as_bytes(), &cbor(&merged)).map_err(self.lmdb())?;
        counts.devices += 1;
        Ok(())
    }

    /// The id of `series` in this store, interned if new.
    fn series_id(&self, wtxn: &mut RwTxn<'_>, series: &SeriesName) -> Result<u64, StoreError> {
        let key = keys::series_key(&series.device, &series.name, &series.labels);
        if let Some(b) = self.series.get(wtxn, &key).map_err(self.lmdb())? {
            return Ok(u64_from(b));
        }
        let id = self.meta_u64(wtxn, meta::NEXT_SERIES)?;
        self.series.put(wtxn, &key, &id.to_be_bytes()).map_err(self.lmdb())?;
        self.put_meta(wtxn, meta::NEXT_SERIES, id + 1)?;
        Ok(id)
    }

    fn import_points(
        &self,
        wtxn: &mut RwTxn<'_>,
        tenant: &str,
        series: &SeriesName,
        points: Vec<(i64, f64)>,
        counts: &mut TransferCounts,
    ) -> Result<(), StoreError> {
        self.check_owner(wtxn, tenant, &series.device)?;
        let id = self.series_id(wtxn, series)?;
        let mut points: Vec<LogPoint> = points.into_iter().filter(|p| p.1.is_finite()).map(|(t, v)| (0, t, v)).collect();
        points.sort_by_key(|p| p.1);
        points.dedup_by_key(|p| p.1);
        let h = self.horizons_in(wtxn)?;
        // The rollups travel on their own (Item::Rollups): the points that are new here are
        // in them already, so they are not added to the buckets a second time.
        let mut c = Counts::default();
        self.fold_series(wtxn, id, &points, h.raw, &mut c)?;
        let total = self.meta_u64(wtxn, meta::RAW_POINTS)?;
        self.put_meta(wtxn, meta::RAW_POINTS, total + c.stored)?;
        counts.points += c.stored;
        if c.duplicates > 0 {
            counts.kept += 1;
        }
        Ok(())
    }

    fn import_rollups(
        &self,
        wtxn: &mut RwTxn<'_>,
        tenant: &str,
        series: &SeriesName,
        level: Level,
        buckets: &[Bucket],
        counts: &mut TransferCounts,
    ) -> Result<(), StoreError> {
        self.check_owner(wtxn, tenant, &series.device)?;
        let id = self.series_id(wtxn, series)?;
        let horizon = self.horizons_in(wtxn)?.rollup[level.index()];
        let mut aggs: Vec<Aggregate> =
            buckets.iter().map(|b| Aggregate::from(*b)).filter(|a| a.ts.saturating_add(level.ms()) > horizon && a.count > 0).collect();
        aggs.iter_mut().for_each(|a| a.ts = level.bucket(a.ts));
        aggs.sort_by_key(|a| a.ts);
        aggs.dedup_by_key(|a| a.ts);
        let mut starts: Vec<i64> = aggs.iter().map(|a| level.chunk(a.ts)).collect();
        starts.dedup();
        let (mut added, mut kept) = (0u64, 0u64);
        self.update_chunks(wtxn, level, id, starts, |start, ours| {
            let lo = aggs.partition_point(|a| a.ts < start);
            let hi = aggs.partition_point(|a| a.ts < start.saturating_add(level.chunk_ms()));
            for a in &aggs[lo..hi] {
                match ours.binary_search_by_key(&a.ts, |x| x.ts) {
                    Ok(_) => kept += 1,
                    Err(i) => {
                        ours.insert(i, *a);
                        added += 1;
                    }
                }
            }
        })?;
        counts.buckets += added;
        if kept > 0 {
            counts.kept += 1;
        }
        Ok(())
    }
}

/// What [`Store::delete_tenant`] removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Deleted {
    /// Devices.
    pub devices: u64,
    /// Series.
    pub series: u64,
    /// Raw points (in the blocks).
    pub points: u64,
    /// Alerts.
    pub alerts: u64,
}

impl Store {
    /// Removes everything of `tenant` from the store in one write transaction: devices and
    /// their series, points, rollups, marks, states and dedupe windows, alerts and alert
    /// counts. After a move, for the old shard's copy. Like an import, it folds the log first
    /// and needs the store's writer lock held.
    pub fn delete_tenant(&self, tenant: &str) -> Result<Deleted, StoreError> {
        self.fold_all()?;
        self.write(|s, wtxn| {
            if !s.log.is_empty(wtxn).map_err(s.lmdb())? {
                return Err(StoreError::WrittenDuringImport { path: s.path.clone() });
            }
            let mut gone = Deleted::default();
            let devices: Vec<String> = s.tenant_devices(wtxn, tenant)?.into_iter().map(|(d, _)| d).collect();
            for device in &devices {
                s.delete_device(wtxn, device, &mut gone)?;
            }
            let mut prefix = tenant.as_bytes().to_vec();
            prefix.push(0);
            gone.alerts = s.delete_prefix(wtxn, s.alerts, &prefix)?;
            s.delete_prefix(wtxn, s.alert_aggs, &prefix)?;
            let total = s.meta_u64(wtxn, meta::RAW_POINTS)?;
            s.put_meta(wtxn, meta::RAW_POINTS, total.saturating_sub(gone.points))?;
            Ok(gone)
        })
        .inspect(|_| {
            // The writer's cache would hand a returning device its deleted series ids.
            super::lock(&self.shared.series).clear();
        })
    }

    fn delete_device(&self, wtxn: &mut RwTxn<'_>, device: &str, gone: &mut Deleted) -> Result<(), StoreError> {
        let mut ids = Vec::new();
        for item in self.series.prefix_iter(wtxn, &keys::device_series_prefix(device)).map_err(self.lmdb())? {
            ids.push(u64_from(item.map_err(self.lmdb())?.1));
        }
        for id in ids {
            let (lo, hi) = (keys::block_key(id, i64::MIN), keys::block_key(id, i64::MAX));
            let range = (Bound::Included(&lo[..]), Bound::Included(&hi[..]));
            for item in self.blocks.range(wtxn, &range).map_err(self.lmdb())? {
                let header = super::block::Header::parse(item.map_err(self.lmdb())?.1).map_err(|e| self.corrupt(names::BLOCKS, e))?;
                gone.points += u64::from(header.count);
            }
            self.blocks.delete_range(wtxn, &range).map_err(self.lmdb())?;
            for db in self.packed {
                db.delete_range(wtxn, &range).map_err(self.lmdb())?;
            }
            self.marks.delete(wtxn, &id.to_be_bytes()).map_err(self.lmdb())?;
            gone.series += 1;
        }
        self.delete_prefix(wtxn, self.series, &keys::device_series_prefix(device))?;
        let mut states = device.as_bytes().to_vec();
        states.push(0);
        self.delete_prefix(wtxn, self.states, &states)?;
        self.seqs.delete(wtxn, device.as_bytes()).map_err(self.lmdb())?;
        self.devices.delete(wtxn, device.as_bytes()).map_err(self.lmdb())?;
        gone.devices += 1;
        Ok(())
    }

    /// Deletes every key starting with `prefix`, which ends in the 0 byte that closes a
    /// tenant or device id; returns how many.
    fn delete_prefix(&self, wtxn: &mut RwTxn<'_>, db: super::Db, prefix: &[u8]) -> Result<u64, StoreError> {
        debug_assert_eq!(prefix.last(), Some(&0));
        let mut past = prefix.to_vec();
        if let Some(last) = past.last_mut() {
            *last = 1;
        }
        let range = (Bound::Included(prefix), Bound::Excluded(&past[..]));
        Ok(db.delete_range(wtxn, &range).map_err(self.lmdb())? as u64)
    }
}

fn tally(added: bool, new: &mut u64, kept: &mut u64) {
    if added {
        *new += 1;
    } else {
        *kept += 1;
    }
}

/// The wider of two records of one device: earliest registration and first contact, latest
/// contact, the larger counters, the later licence and inventory.
fn merge_records(ours: DeviceRecord, theirs: DeviceRecord) -> DeviceRecord {
    let later = |a: Option<i64>, b: Option<i64>| a.max(b);
    let earlier = |a: Option<i64>, b: Option<i64>| match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let license = match (ours.license, theirs.license) {
        (Some(a), Some(b)) => Some(if b.ts > a.ts { b } else { a }),
        (a, b) => a.or(b),
    };
    let inventory = match (ours.inventory, theirs.inventory) {
        (Some(a), Some(b)) => Some(if b.ts > a.ts { b } else { a }),
        (a, b) => a.or(b),
    };
    DeviceRecord {
        tenant: ours.tenant,
        registered_ms: ours.registered_ms.min(theirs.registered_ms),
        first_seen_ms: earlier(ours.first_seen_ms, theirs.first_seen_ms),
        last_seen_ms: later(ours.last_seen_ms, theirs.last_seen_ms),
        points: ours.points.max(theirs.points),
        alerts: ours.alerts.max(theirs.alerts),
        batches: ours.batches.max(theirs.batches),
        inventory,
        license,
    }
}
