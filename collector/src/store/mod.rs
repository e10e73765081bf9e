//! The collector's LMDB store (heed).
//!
//! One [`Store`] owns the environment and typed databases with big-endian keys (see [`keys`]),
//! so range scans come out in time order:
//!
//! | database  | key                                   | value                         |
//! |-----------|---------------------------------------|-------------------------------|
//! | `devices` | device id                             | [`DeviceRecord`] (CBOR)       |
//! | `series`  | device \0 name \0 labels              | series id (u64 BE)            |
//! | `points`  | series id (u64 BE), ts (i64 BE*)      | value (f64 bits, BE)          |
//! | `alerts`  | tenant \0 ts (i64 BE*) id (u64 BE)    | [`StoredAlert`] (CBOR)        |
//! | `seqs`    | device id                             | [`seq::SeqWindow`]            |
//! | `meta`    | name                                  | counters (u64 BE)             |
//!
//! (*) sign bit flipped. Writes go through one writer (see `ingest::writer`), which commits
//! many batches per transaction. When the map is full the transaction is aborted, the map
//! grows, and the whole group is retried: nothing is acknowledged before its commit.

pub mod keys;
pub mod seq;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use ampel_protocol::{AckStatus, Alert, Batch, DeviceId, Identity, Inventory, License, Record, TenantId};
use heed::types::Bytes;
use heed::{Database, Env, EnvOpenOptions, RoTxn, RwTxn};
use serde::{Deserialize, Serialize};

use self::seq::SeqWindow;

/// Database names, fixed on disk.
mod names {
    pub const DEVICES: &str = "devices";
    pub const SERIES: &str = "series";
    pub const POINTS: &str = "points";
    pub const ALERTS: &str = "alerts";
    pub const SEQS: &str = "seqs";
    pub const META: &str = "meta";
}

/// Every database holds raw bytes; the layouts are in [`keys`].
type Db = Database<'static, Bytes, Bytes>;

const META_NEXT_SERIES: &[u8] = b"next-series";
const META_NEXT_ALERT: &[u8] = b"next-alert";

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// LMDB refused an operation.
    #[error("store {path}: {source}")]
    Lmdb {
        /// The store directory.
        path: PathBuf,
        /// What LMDB said.
        source: heed::Error,
    },
    /// The store directory could not be created.
    #[error("cannot create store directory {path}: {source}")]
    Dir {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A device id is registered already.
    #[error("device {device} is already registered (tenant {tenant})")]
    DuplicateDevice {
        /// The device.
        device: DeviceId,
        /// The tenant it belongs to.
        tenant: String,
    },
    /// A stored value does not decode: the file is damaged or from an incompatible version.
    #[error("store {path}: damaged value in {db}: {detail}")]
    Corrupt {
        /// The store directory.
        path: PathBuf,
        /// The database.
        db: &'static str,
        /// What was wrong.
        detail: String,
    },
    /// The map could not grow any further.
    #[error("store {path}: map size limit of {max} bytes reached")]
    Full {
        /// The store directory.
        path: PathBuf,
        /// The configured maximum.
        max: usize,
    },
}

/// What the registry knows about a device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct DeviceRecord {
    /// The tenant the device belongs to.
    pub tenant: String,
    /// When the device was registered, Unix ms.
    pub registered_ms: i64,
    /// First batch received, Unix ms.
    pub first_seen_ms: Option<i64>,
    /// Last batch received, Unix ms.
    pub last_seen_ms: Option<i64>,
    /// Points stored in total.
    pub points: u64,
    /// Alerts stored in total.
    pub alerts: u64,
    /// Batches committed.
    pub batches: u64,
    /// Latest inventory received.
    pub inventory: Option<Inventory>,
    /// Latest license state received.
    pub license: Option<License>,
}

/// An alert as stored: the record plus the device that sent it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredAlert {
    /// The device.
    pub device: String,
    /// The alert.
    pub alert: Alert,
}

/// Store tuning.
#[derive(Debug, Clone, Copy)]
pub struct StoreOptions {
    /// Initial map size in bytes (grows on demand).
    pub initial_map_size: usize,
    /// Largest map size the store may grow to.
    pub max_map_size: usize,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions { initial_map_size: 256 << 20, max_map_size: 1 << 40 }
    }
}

/// A batch waiting to be committed, with the identity it arrived under.
#[derive(Debug)]
pub struct PendingBatch {
    /// Who sent it, from the verified certificate.
    pub identity: Identity,
    /// The decoded batch.
    pub batch: Batch,
    /// When it arrived, Unix ms.
    pub received_ms: i64,
}

/// What one committed batch contributed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommitOutcome {
    /// Points written.
    pub points: u64,
    /// Alerts written.
    pub alerts: u64,
    /// Records skipped: unknown kinds from newer agents.
    pub unknown: u64,
    /// Records skipped: malformed (control characters in names, non-finite values).
    pub malformed: u64,
}

/// The LMDB store. Cheap to clone; clones share the environment.
#[derive(Clone)]
pub struct Store {
    env: Env,
    path: PathBuf,
    max_map_size: usize,
    devices: Db,
    series: Db,
    points: Db,
    alerts: Db,
    seqs: Db,
    meta: Db,
}

fn cbor<T: Serialize>(v: &T) -> Vec<u8> {
    // Serializing our own plain structs into a Vec cannot fail.
    serde_cbor::to_vec(v).unwrap_or_default()
}

fn u64_from(bytes: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    if bytes.len() == 8 {
        b.copy_from_slice(bytes);
    }
    u64::from_be_bytes(b)
}

/// A metric name or label part must be printable: the series key layout relies on it.
fn printable(s: &str) -> bool {
    !s.is_empty() && s.len() <= 256 && !s.chars().any(char::is_control)
}

impl Store {
    /// Opens (creating if needed) the store in `dir`.
    pub fn open(dir: &Path, opts: StoreOptions) -> Result<Store, StoreError> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Dir { path: dir.to_owned(), source })?;
        let lmdb = |source| StoreError::Lmdb { path: dir.to_owned(), source };
        let page = 4096;
        let map_size = opts.initial_map_size.max(1 << 20).div_ceil(page) * page;
        // A file written by an earlier run may be larger than the initial size; LMDB then keeps
        // the file's size.
        let mut options = EnvOpenOptions::new();
        options.map_size(map_size).max_dbs(16).max_readers(256);
        // SAFETY: the environment is opened once per process (the CLI opens it once per
        // command, `serve` once at start) and the directory is not modified by anything but
        // LMDB itself.
        #[allow(unsafe_code)]
        let env = unsafe { options.open(dir) }.map_err(lmdb)?;
        let wtxn = env.write_txn().map_err(lmdb)?;
        let dbs = env
            .create_databases_and_commit(wtxn, |opener, wtxn| -> Result<_, heed::Error> {
                let mut out = Vec::new();
                for name in [names::DEVICES, names::SERIES, names::POINTS, names::ALERTS, names::SEQS, names::META] {
                    out.push(opener.create_database::<Bytes, Bytes>(wtxn, Some(name))?);
                }
                let arr: [Database<'_, Bytes, Bytes>; 6] =
                    out.try_into().map_err(|_| heed::Error::Io(std::io::Error::other("database count")))?;
                Ok(heed::CommitOrAbort::<_, ()>::Commit(arr))
            })
            .map_err(lmdb)?;
        let heed::CommitOrAbort::Commit([devices, series, points, alerts, seqs, meta]) = dbs else {
            return Err(StoreError::Corrupt { path: dir.to_owned(), db: "meta", detail: "database creation aborted".into() });
        };
        Ok(Store { env, path: dir.to_owned(), max_map_size: opts.max_map_size, devices, series, points, alerts, seqs, meta })
    }

    /// The store directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn lmdb(&self) -> impl Fn(heed::Error) -> StoreError + '_ {
        move |source| StoreError::Lmdb { path: self.path.clone(), source }
    }

    fn corrupt(&self, db: &'static str, detail: impl ToString) -> StoreError {
        StoreError::Corrupt { path: self.path.clone(), db, detail: detail.to_string() }
    }

    /// Current map size in bytes.
    pub fn map_size(&self) -> usize {
        self.env.info().map_size
    }

    /// Runs `f` in a write transaction and commits; on a full map grows the map and retries.
    fn write<T>(&self, mut f: impl FnMut(&Store, &mut RwTxn<'_>) -> Result<T, StoreError>) -> Result<T, StoreError> {
        loop {
            let mut wtxn = self.env.write_txn().map_err(self.lmdb())?;
            let result = f(self, &mut wtxn).and_then(|v| wtxn.commit().map(|_| v).map_err(self.lmdb()));
            match result {
                Err(StoreError::Lmdb { source: heed::Error::Mdb(heed::MdbError::MapFull), .. }) => self.grow()?,
                other => return other,
            }
        }
    }

    fn grow(&self) -> Result<(), StoreError> {
        let current = self.map_size();
        let next = current.saturating_mul(2).min(self.max_map_size);
        if next <= current {
            return Err(StoreError::Full { path: self.path.clone(), max: self.max_map_size });
        }
        tracing::info!(from = current, to = next, "growing the store's map");
        // SAFETY: only the writer calls `write`, and it holds no transaction here (the failed
        // one was dropped, which aborts it). Read transactions elsewhere in this process are
        // short; LMDB documents resizing with no active write transaction in this process.
        #[allow(unsafe_code)]
        unsafe { self.env.resize(next) }.map_err(self.lmdb())
    }

    /// Registers a device under a tenant; refuses a device id that exists.
    pub fn register_device(&self, tenant: &TenantId, device: &DeviceId, now_ms: i64) -> Result<DeviceRecord, StoreError> {
        self.write(|s, wtxn| {
            if let Some(existing) = s.device_in(wtxn, device.as_str())? {
                return Err(StoreError::DuplicateDevice { device: device.clone(), tenant: existing.tenant });
            }
            let rec = DeviceRecord { tenant: tenant.to_string(), registered_ms: now_ms, ..DeviceRecord::default() };
            s.devices.put(wtxn, device.as_str().as_bytes(), &cbor(&rec)).map_err(s.lmdb())?;
            Ok(rec)
        })
    }

    fn device_in(&self, txn: &RoTxn<'_>, device: &str) -> Result<Option<DeviceRecord>, StoreError> {
        match self.devices.get(txn, device.as_bytes()).map_err(self.lmdb())? {
            None => Ok(None),
            Some(bytes) => serde_cbor::from_slice(bytes).map(Some).map_err(|e| self.corrupt(names::DEVICES, e)),
        }
    }

    /// One device's record.
    pub fn device(&self, device: &str) -> Result<Option<DeviceRecord>, StoreError> {
        let rtxn = self.env.read_txn().map_err(self.lmdb())?;
        self.device_in(&rtxn, device)
    }

    /// All devices, or those of one tenant, sorted by id.
    pub fn devices(&self, tenant: Option<&str>) -> Result<Vec<(String, DeviceRecord)>, StoreError> {
        let rtxn = self.env.read_txn().map_err(self.lmdb())?;
        let mut out = Vec::new();
        for item in self.devices.iter(&rtxn).map_err(self.lmdb())? {
            let (k, v) = item.map_err(self.lmdb())?;
            let rec: DeviceRecord = serde_cbor::from_slice(v).map_err(|e| self.corrupt(names::DEVICES, e))?;
            if tenant.is_none_or(|t| t == rec.tenant) {
                out.push((String::from_utf8_lossy(k).into_owned(), rec));
            }
        }
        Ok(out)
    }

    /// Tenants that have at least one device, sorted.
    pub fn tenants(&self) -> Result<Vec<String>, StoreError> {
        let mut t: Vec<String> = self.devices(None)?.into_iter().map(|(_, r)| r.tenant).collect();
        t.sort();
        t.dedup();
        Ok(t)
    }

    /// Commits a group of batches in one transaction and says for each what became of it.
    ///
    /// The tenant of every record is the tenant of the sending certificate; a device unknown to
    /// the registry is registered under it, and a device registered under another tenant is
    /// refused. Duplicates by (device, seq) are not written again.
    pub fn commit(&self, group: &[PendingBatch]) -> Result<Vec<(AckStatus, CommitOutcome)>, StoreError> {
        let mut series_cache: HashMap<Vec<u8>, u64> = HashMap::new();
        self.write(|s, wtxn| {
            series_cache.clear();
            let mut results = Vec::with_capacity(group.len());
            let mut windows: HashMap<String, SeqWindow> = HashMap::new();
            let mut next_series = s.meta_u64(wtxn, META_NEXT_SERIES)?;
            let mut next_alert = s.meta_u64(wtxn, META_NEXT_ALERT)?;
            for p in group {
                let device = p.identity.device.as_str();
                let tenant = p.identity.tenant.as_str();
                let mut rec = match s.device_in(wtxn, device)? {
                    Some(r) if r.tenant != tenant => {
                        results.push((
                            AckStatus::Rejected(format!("device {device} is registered to another tenant")),
                            CommitOutcome::default(),
                        ));
                        continue;
                    }
                    Some(r) => r,
                    None => {
                        tracing::info!(%device, %tenant, "registering new device on first contact");
                        DeviceRecord { tenant: tenant.to_owned(), registered_ms: p.received_ms, ..DeviceRecord::default() }
                    }
                };
                let window = match windows.get_mut(device) {
                    Some(w) => w,
                    None => {
                        let w = match s.seqs.get(wtxn, device.as_bytes()).map_err(s.lmdb())? {
                            Some(b) => SeqWindow::decode(b).ok_or_else(|| s.corrupt(names::SEQS, "bad length"))?,
                            None => SeqWindow::default(),
                        };
                        windows.entry(device.to_owned()).or_insert(w)
                    }
                };
                if !window.is_new(p.batch.seq) {
                    results.push((AckStatus::Duplicate, CommitOutcome::default()));
                    continue;
                }
                window.mark(p.batch.seq);
                let mut outcome = CommitOutcome::default();
                for r in &p.batch.records {
                    match r {
                        Record::Metric(m) => {
                            if !printable(&m.name)
                                || !m.value.is_finite()
                                || m.labels.iter().any(|(k, v)| !printable(k) || (!v.is_empty() && !printable(v)))
                            {
                                outcome.malformed += 1;
                                continue;
                            }
                            let skey = keys::series_key(device, &m.name, &m.labels);
                            let id = match series_cache.get(&skey) {
                                Some(id) => *id,
                                None => {
                                    let id = match s.series.get(wtxn, &skey).map_err(s.lmdb())? {
                                        Some(b) => u64_from(b),
                                        None => {
                                            let id = next_series;
                                            next_series += 1;
                                            s.series.put(wtxn, &skey, &id.to_be_bytes()).map_err(s.lmdb())?;
                                            id
                                        }
                                    };
                                    series_cache.insert(skey, id);
                                    id
                                }
                            };
                            s.points
                                .put(wtxn, &keys::point_key(id, m.ts), &m.value.to_bits().to_be_bytes())
                                .map_err(s.lmdb())?;
                            outcome.points += 1;
                        }
                        Record::Alert(a) => {
                            let stored = StoredAlert { device: device.to_owned(), alert: a.clone() };
                            s.alerts.put(wtxn, &keys::alert_key(tenant, a.ts, next_alert), &cbor(&stored)).map_err(s.lmdb())?;
                            next_alert += 1;
                            outcome.alerts += 1;
                        }
                        Record::License(l) => {
                            if rec.license.as_ref().is_none_or(|old| old.ts <= l.ts) {
                                rec.license = Some(l.clone());
                            }
                        }
                        Record::Inventory(i) => {
                            if rec.inventory.as_ref().is_none_or(|old| old.ts <= i.ts) {
                                rec.inventory = Some(i.clone());
                            }
                        }
                        Record::Traffic(t) => {
                            // Traffic counters are stored as per-interface series until the
                            // traffic section of the store is built.
                            let mut labels = vec![("interface".to_owned(), t.interface.clone())];
                            if let Some(c) = &t.category {
                                labels.push(("category".to_owned(), c.clone()));
                            }
                            if labels.iter().any(|(_, v)| !printable(v)) {
                                outcome.malformed += 1;
                                continue;
                            }
                            for (name, v) in [("traffic.rx_bytes", t.rx_bytes), ("traffic.tx_bytes", t.tx_bytes)] {
                                let skey = keys::series_key(device, name, &labels);
                                let id = match s.series.get(wtxn, &skey).map_err(s.lmdb())? {
                                    Some(b) => u64_from(b),
                                    None => {
                                        let id = next_series;
                                        next_series += 1;
                                        s.series.put(wtxn, &skey, &id.to_be_bytes()).map_err(s.lmdb())?;
                                        id
                                    }
                                };
                                s.points
                                    .put(wtxn, &keys::point_key(id, t.ts), &(v as f64).to_bits().to_be_bytes())
                                    .map_err(s.lmdb())?;
                                outcome.points += 1;
                            }
                        }
                        Record::Unknown => outcome.unknown += 1,
                    }
                }
                rec.first_seen_ms = Some(rec.first_seen_ms.map_or(p.received_ms, |f| f.min(p.received_ms)));
                rec.last_seen_ms = Some(rec.last_seen_ms.map_or(p.received_ms, |l| l.max(p.received_ms)));
                rec.points += outcome.points;
                rec.alerts += outcome.alerts;
                rec.batches += 1;
                s.devices.put(wtxn, device.as_bytes(), &cbor(&rec)).map_err(s.lmdb())?;
                results.push((AckStatus::Committed, outcome));
            }
            for (device, w) in &windows {
                s.seqs.put(wtxn, device.as_bytes(), &w.encode()).map_err(s.lmdb())?;
            }
            s.meta.put(wtxn, META_NEXT_SERIES, &next_series.to_be_bytes()).map_err(s.lmdb())?;
            s.meta.put(wtxn, META_NEXT_ALERT, &next_alert.to_be_bytes()).map_err(s.lmdb())?;
            Ok(results)
        })
    }

    fn meta_u64(&self, txn: &RoTxn<'_>, key: &[u8]) -> Result<u64, StoreError> {
        Ok(self.meta.get(txn, key).map_err(self.lmdb())?.map(u64_from).unwrap_or(0))
    }

    /// The series of a device: (name, labels, series id), sorted by name then labels.
    pub fn series_of(&self, device: &str) -> Result<Vec<(String, Vec<(String, String)>, u64)>, StoreError> {
        let rtxn = self.env.read_txn().map_err(self.lmdb())?;
        let prefix = keys::device_series_prefix(device);
        let mut out = Vec::new();
        for item in self.series.prefix_iter(&rtxn, &prefix).map_err(self.lmdb())? {
            let (k, v) = item.map_err(self.lmdb())?;
            let (_, name, labels) = keys::parse_series_key(k).ok_or_else(|| self.corrupt(names::SERIES, "bad key"))?;
            out.push((name, labels, u64_from(v)));
        }
        Ok(out)
    }

    /// Points of one series in `[from, to)`, time-ordered.
    pub fn points(&self, series: u64, from: i64, to: i64) -> Result<Vec<(i64, f64)>, StoreError> {
        let rtxn = self.env.read_txn().map_err(self.lmdb())?;
        let (lo, hi) = (keys::point_key(series, from), keys::point_key(series, to));
        let range = (std::ops::Bound::Included(&lo[..]), std::ops::Bound::Excluded(&hi[..]));
        let mut out = Vec::new();
        for item in self.points.range(&rtxn, &range).map_err(self.lmdb())? {
            let (k, v) = item.map_err(self.lmdb())?;
            let (_, ts) = keys::split_point_key(k).ok_or_else(|| self.corrupt(names::POINTS, "bad key"))?;
            out.push((ts, f64::from_bits(u64_from(v))));
        }
        Ok(out)
    }

    /// Every series of `device` named `name`, with its points in `[from, to)`.
    pub fn metric(&self, device: &str, name: &str, from: i64, to: i64) -> Result<Vec<(Vec<(String, String)>, Vec<(i64, f64)>)>, StoreError> {
        let mut out = Vec::new();
        for (n, labels, id) in self.series_of(device)? {
            if n == name {
                out.push((labels, self.points(id, from, to)?));
            }
        }
        Ok(out)
    }

    /// Number of points of a device in `[from, to)`.
    pub fn count_points(&self, device: &str, from: i64, to: i64) -> Result<u64, StoreError> {
        let mut n = 0u64;
        let ids: Vec<u64> = self.series_of(device)?.into_iter().map(|(_, _, id)| id).collect();
        let rtxn = self.env.read_txn().map_err(self.lmdb())?;
        for id in ids {
            let (lo, hi) = (keys::point_key(id, from), keys::point_key(id, to));
            let range = (std::ops::Bound::Included(&lo[..]), std::ops::Bound::Excluded(&hi[..]));
            for item in self.points.range(&rtxn, &range).map_err(self.lmdb())? {
                item.map_err(self.lmdb())?;
                n += 1;
            }
        }
        Ok(n)
    }

    /// Alerts of a tenant in `[from, to)`, time-ordered.
    pub fn alerts(&self, tenant: &str, from: i64, to: i64) -> Result<Vec<StoredAlert>, StoreError> {
        let rtxn = self.env.read_txn().map_err(self.lmdb())?;
        let (lo, hi) = (keys::alert_key(tenant, from, 0), keys::alert_key(tenant, to, 0));
        let range = (std::ops::Bound::Included(&lo[..]), std::ops::Bound::Excluded(&hi[..]));
        let mut out = Vec::new();
        for item in self.alerts.range(&rtxn, &range).map_err(self.lmdb())? {
            let (_, v) = item.map_err(self.lmdb())?;
            out.push(serde_cbor::from_slice(v).map_err(|e| self.corrupt(names::ALERTS, e))?);
        }
        Ok(out)
    }

    /// The highest committed sequence number of a device.
    pub fn high_seq(&self, device: &str) -> Result<Option<u64>, StoreError> {
        let rtxn = self.env.read_txn().map_err(self.lmdb())?;
        match self.seqs.get(&rtxn, device.as_bytes()).map_err(self.lmdb())? {
            None => Ok(None),
            Some(b) => Ok(SeqWindow::decode(b).ok_or_else(|| self.corrupt(names::SEQS, "bad length"))?.high()),
        }
    }

    /// Total points stored, over all series.
    pub fn total_points(&self) -> Result<u64, StoreError> {
        let rtxn = self.env.read_txn().map_err(self.lmdb())?;
        self.points.len(&rtxn).map_err(self.lmdb())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use ampel_protocol::{Metric, PROTOCOL_VERSION};

    fn id(t: &str, d: &str) -> Identity {
        Identity { tenant: TenantId::new(t).unwrap(), device: DeviceId::new(d).unwrap() }
    }

    fn batch(seq: u64, n: usize, t0: i64) -> Batch {
        Batch {
            version: PROTOCOL_VERSION,
            seq,
            sender: None,
            records: (0..n)
                .map(|i| Record::Metric(Metric { ts: t0 + i as i64, name: "cpu.usage_percent".into(), labels: vec![], value: i as f64 }))
                .collect(),
        }
    }

    #[test]
    fn committed_points_read_back_in_time_order_and_duplicates_are_not_written() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
        let me = id("acme", "fw-1");
        let group = vec![
            PendingBatch { identity: me.clone(), batch: batch(2, 5, 100), received_ms: 1000 },
            PendingBatch { identity: me.clone(), batch: batch(1, 5, 0), received_ms: 1001 },
            PendingBatch { identity: me.clone(), batch: batch(2, 5, 100), received_ms: 1002 },
        ];
        let res = store.commit(&group).unwrap();
        assert_eq!(res.iter().map(|r| r.0.clone()).collect::<Vec<_>>(), vec![AckStatus::Committed, AckStatus::Committed, AckStatus::Duplicate]);
        let series = store.metric("fw-1", "cpu.usage_percent", i64::MIN, i64::MAX).unwrap();
        assert_eq!(series.len(), 1);
        let ts: Vec<i64> = series[0].1.iter().map(|p| p.0).collect();
        assert_eq!(ts, vec![0, 1, 2, 3, 4, 100, 101, 102, 103, 104]);
        let rec = store.device("fw-1").unwrap().unwrap();
        assert_eq!((rec.tenant.as_str(), rec.points, rec.batches), ("acme", 10, 2));
        assert_eq!(store.high_seq("fw-1").unwrap(), Some(2));
        // After reopening, the dedupe state survives.
        drop(store);
        let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
        let res = store.commit(&group[..1]).unwrap();
        assert_eq!(res[0].0, AckStatus::Duplicate);
        assert_eq!(store.total_points().unwrap(), 10);
    }

    #[test]
    fn a_device_registered_to_another_tenant_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
        store.register_device(&TenantId::new("acme").unwrap(), &DeviceId::new("fw-1").unwrap(), 0).unwrap();
        let dup = store.register_device(&TenantId::new("globex").unwrap(), &DeviceId::new("fw-1").unwrap(), 0);
        assert!(matches!(dup, Err(StoreError::DuplicateDevice { .. })));
        let res = store.commit(&[PendingBatch { identity: id("globex", "fw-1"), batch: batch(1, 3, 0), received_ms: 0 }]).unwrap();
        assert!(matches!(res[0].0, AckStatus::Rejected(_)));
        assert_eq!(store.total_points().unwrap(), 0);
    }

    #[test]
    fn malformed_and_unknown_records_are_counted_and_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
        let mut b = batch(1, 2, 0);
        b.records.push(Record::Metric(Metric { ts: 5, name: "bad\u{0}name".into(), labels: vec![], value: 1.0 }));
        b.records.push(Record::Metric(Metric { ts: 5, name: "nan".into(), labels: vec![], value: f64::NAN }));
        b.records.push(Record::Unknown);
        let res = store.commit(&[PendingBatch { identity: id("acme", "fw-1"), batch: b, received_ms: 0 }]).unwrap();
        assert_eq!(res[0].1, CommitOutcome { points: 2, alerts: 0, unknown: 1, malformed: 2 });
    }

    #[test]
    fn the_map_grows_from_a_tiny_size_and_nothing_is_lost() {
        let dir = tempfile::tempdir().unwrap();
        let opts = StoreOptions { initial_map_size: 1 << 20, max_map_size: 1 << 30 };
        let store = Store::open(dir.path(), opts).unwrap();
        let me = id("acme", "fw-1");
        for seq in 0..20u64 {
            let res = store.commit(&[PendingBatch { identity: me.clone(), batch: batch(seq, 5000, seq as i64 * 10_000), received_ms: 0 }]).unwrap();
            assert_eq!(res[0].0, AckStatus::Committed);
        }
        assert_eq!(store.total_points().unwrap(), 100_000);
        assert!(store.map_size() > 1 << 20);
    }
}
