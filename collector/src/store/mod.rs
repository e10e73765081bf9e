//! The collector's LMDB store (heed).
//!
//! LMDB appends are ten times faster than inserts scattered over thousands of series, so the
//! hot path only appends: the writer commits incoming batches to an **ingest log** keyed by
//! arrival order and acknowledges them. A background task **folds** the log into per-series
//! compressed blocks and rollups and trims it. Readers merge the blocks with the part of the
//! log not folded yet, so an acknowledged point is visible at once.
//!
//! | database     | key                                                  | value                              |
//! |--------------|------------------------------------------------------|------------------------------------|
//! | `devices`    | device id                                            | [`DeviceRecord`] (CBOR)            |
//! | `series`     | device \0 name \0 (label \x1f value \0)*             | series id (u64 BE)                 |
//! | `log`        | arrival number (u64 BE), appended                    | a [`log`] entry: one batch's points and alerts, series interned |
//! | `blocks`     | series id (u64 BE), first ts (i64 BE*)               | Gorilla-coded points ([`block`])   |
//! | `marks`      | series id (u64 BE)                                   | log key up to which the series is folded (u64 BE) |
//! | `packed-1m`, `packed-1h`, `packed-1d` | series id (u64 BE), chunk start (i64 BE*) | a [`chunk`] of rollup buckets |
//! | `rollup-1m`, `rollup-1h`, `rollup-1d` | bucket (i64 BE*), series id (u64 BE) | [`Aggregate`] (48 bytes), 0.1.0 only: converted into `packed-*` on open |
//! | `alerts`     | tenant \0 ts (i64 BE*) log key (u64 BE) pos (u32 BE) | [`StoredAlert`] (CBOR)             |
//! | `alert-aggs` | tenant \0 level dim bucket (i64 BE*) value           | count (u64 BE)                     |
//! | `states`     | device \0 kind ts (i64 BE*)                          | `License` / `Inventory` (CBOR)     |
//! | `seqs`       | device id                                            | [`seq::SeqWindow`]                 |
//! | `meta`       | name                                                 | counters, fold progress, retention horizons, format (u64 BE) |
//!
//! (*) sign bit flipped, so that byte order is numeric order.
//!
//! # Invariants
//!
//! - Everything in a log entry with key ≤ `folded` (meta) is in the blocks, rollups and alerts;
//!   the entry itself is gone. Entries above it are the tail readers merge in.
//! - A fold round spans several bounded transactions; each commits the blocks, rollups and mark
//!   of a few series together. A series whose mark is above `folded` already holds the points of
//!   the entries up to its mark; the fold and the readers skip those for it. So a crash at any
//!   point of a fold loses and duplicates nothing.
//! - The blocks of a series do not overlap in time: a block holds points from its key up to
//!   (not including) the next block's key. A point whose (series, timestamp) is stored already
//!   is ignored: the first write wins, in raw data and rollups alike.
//! - Hour and day buckets are in `packed-1h` / `packed-1d`, written by the fold with the blocks.
//!   Minute buckets are computed from the raw points while those are kept; retention writes a
//!   minute bucket into `packed-1m` in the transaction that deletes its raw points, so every
//!   point is in exactly one of the two. A store without `format` in `meta` is 0.1.0's: its
//!   one-entry-per-bucket rollups are converted on open (see [`upgrade`]); its blocks are read
//!   in place.
//! - Retention keeps per data class a horizon in `meta` that only moves forward; readers never
//!   return anything older, so a deletion interrupted half-way is invisible.
//!
//! Writes go through [`Store::commit`] (the writer) and the fold; both run their transactions
//! through one helper that grows the map and retries when LMDB reports it full, so nothing is
//! acknowledged before its commit and nothing is lost to a full map.

pub mod alerts;
pub mod block;
mod block_v1;
pub mod chunk;
pub mod codec;
mod commit;
pub mod exclusive;
pub mod fold;
pub mod keys;
pub mod log;
pub mod maintenance;
mod read;
pub mod retention;
pub mod rollup;
pub mod seq;
pub mod transfer;
mod upgrade;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard};

use ampel_protocol::{Alert, Batch, DeviceId, Identity, Inventory, License, TenantId};
use heed::types::Bytes;
use heed::{Database, Env, EnvOpenOptions, RoTxn, RwTxn, WithTls};
use serde::{Deserialize, Serialize};

pub use self::alerts::{AlertDim, AlertSummary};
pub use self::fold::{FoldLimits, FoldReport};
pub use self::keys::Labels;
pub use self::read::{PointCursor, Points};
pub use self::retention::{Retention, RetentionReport};
pub use self::rollup::{Aggregate, Level};

/// Database names, fixed on disk.
mod names {
    pub const DEVICES: &str = "devices";
    pub const SERIES: &str = "series";
    pub const LOG: &str = "log";
    pub const BLOCKS: &str = "blocks";
    pub const MARKS: &str = "marks";
    /// 0.1.0's rollups, one entry per bucket: emptied by the upgrade.
    pub const ROLLUPS: [&str; 3] = ["rollup-1m", "rollup-1h", "rollup-1d"];
    pub const PACKED: [&str; 3] = ["packed-1m", "packed-1h", "packed-1d"];
    pub const ALERTS: &str = "alerts";
    pub const ALERT_AGGS: &str = "alert-aggs";
    pub const STATES: &str = "states";
    pub const SEQS: &str = "seqs";
    pub const META: &str = "meta";
}

/// Every database holds raw bytes; the layouts are in [`keys`].
type Db = Database<'static, Bytes, Bytes>;

/// Names of counters and marks in `meta`.
mod meta {
    pub const NEXT_SERIES: &[u8] = b"next-series";
    /// Highest log key folded completely.
    pub const FOLDED: &[u8] = b"folded";
    /// Points in the blocks.
    pub const RAW_POINTS: &[u8] = b"raw-points";
    pub const H_RAW: &[u8] = b"horizon-raw";
    pub const H_ROLLUP: [&[u8]; 3] = [b"horizon-1m", b"horizon-1h", b"horizon-1d"];
    pub const H_ALERTS: &[u8] = b"horizon-alerts";
    pub const H_STATES: &[u8] = b"horizon-states";
    /// The store format: absent in 0.1.0's stores, [`super::FORMAT`] once converted.
    pub const FORMAT: &[u8] = b"format";
}

/// The store format this version writes. 1 was 0.1.0 (no `format` in `meta`).
pub const FORMAT: u64 = 2;

/// Kinds in the `states` history.
mod state_kind {
    pub const LICENSE: u8 = 1;
    pub const INVENTORY: u8 = 2;
}

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
    /// The store was written by a newer version, in a format this one does not know.
    #[error("store {path} has format {found}; this version reads formats up to {FORMAT}: upgrade ampel-collector")]
    TooNew {
        /// The store directory.
        path: PathBuf,
        /// The format in `meta`.
        found: u64,
    },
    /// A test asked the format conversion to stop part-way ([`StoreOptions`]).
    #[doc(hidden)]
    #[error("store {path}: format conversion stopped part-way, as asked")]
    Interrupted {
        /// The store directory.
        path: PathBuf,
    },
    /// An imported item names a device registered to another tenant, or not registered.
    #[error("device {device} belongs to tenant {tenant}, not to the tenant being imported")]
    ForeignDevice {
        /// The device.
        device: String,
        /// The tenant it is registered to ("none": not registered, and not in the import).
        tenant: String,
    },
    /// Something wrote to the store while an import had it (a collector running without
    /// holding the store's writer lock).
    #[error("store {path} was written to during an import: is a collector running on it?")]
    WrittenDuringImport {
        /// The store directory.
        path: PathBuf,
    },
    /// The items handed to an import could not be read (the file changed or went away).
    #[error("reading the items to import")]
    ImportSource(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A query asked for something that has no answer (a step of zero, say).
    #[error("bad query: {0}")]
    BadQuery(String),
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
    /// Points accepted in total (a point repeating a stored timestamp is dropped later, when
    /// folded, but counted here).
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

/// What a device reported about itself as of some time.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DeviceState {
    /// The latest license state read at or before that time.
    pub license: Option<License>,
    /// The latest inventory read at or before that time.
    pub inventory: Option<Inventory>,
}

/// Most reports of one kind [`Store::device_history`] returns: a year of hourly reports.
pub const HISTORY_MAX: usize = 10_000;

/// What a device reported about itself over a range ([`Store::device_history`]).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DeviceHistory {
    /// License reports, time-ordered; the first may predate the range (the one in force).
    pub licenses: Vec<License>,
    /// Inventory reports, likewise.
    pub inventories: Vec<Inventory>,
    /// Whether older reports in the range were left out ([`HISTORY_MAX`]).
    pub truncated: bool,
    /// The states horizon: before it only the latest report of each kind is kept.
    pub horizon_ms: i64,
}

/// Store tuning.
#[derive(Debug, Clone, Copy)]
pub struct StoreOptions {
    /// Initial map size in bytes (grows on demand).
    pub initial_map_size: usize,
    /// Largest map size the store may grow to.
    pub max_map_size: usize,
    /// Most concurrent read transactions (LMDB's reader table).
    pub max_readers: u32,
    /// How long each class of data is kept.
    pub retention: Retention,
    /// Stop converting an older store after this many write transactions, as if the process
    /// had died there ([`StoreError::Interrupted`]). For tests of crash safety; `None` in
    /// production.
    #[doc(hidden)]
    pub upgrade_stop_after_txns: Option<usize>,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            initial_map_size: 256 << 20,
            max_map_size: 1 << 40,
            max_readers: 256,
            retention: Retention::default(),
            upgrade_stop_after_txns: None,
        }
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
    /// Points and alerts skipped: older than their retention horizon.
    pub expired: u64,
}

/// The retention horizons in force: data older than these is gone or about to go, and never
/// returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Horizons {
    /// Raw points: timestamps below are dropped.
    pub raw: i64,
    /// Per rollup level: a bucket ending at or before it is dropped.
    pub rollup: [i64; 3],
    /// Alerts: timestamps below are dropped.
    pub alerts: i64,
    /// Device state history: entries below are dropped, except the latest one per kind.
    pub states: i64,
}

/// What the store's threads share.
struct Shared {
    /// Every transaction holds this for reading; growing the map holds it for writing, because
    /// LMDB may only resize when no transaction of this process is active.
    grow: RwLock<()>,
    /// Series key -> id, for ids committed already.
    series: Mutex<HashMap<Vec<u8>, u64>>,
    /// One fold or retention pass at a time.
    maintenance: Mutex<()>,
    /// Commits waiting for or holding LMDB's writer lock; the fold steps aside for them.
    commits_waiting: AtomicUsize,
}

/// Most entries in the series cache before it is emptied.
const SERIES_CACHE_MAX: usize = 1 << 20;

/// The LMDB store. Cheap to clone; clones share the environment.
#[derive(Clone)]
pub struct Store {
    env: Env,
    path: PathBuf,
    opts: StoreOptions,
    shared: Arc<Shared>,
    devices: Db,
    series: Db,
    log: Db,
    blocks: Db,
    marks: Db,
    rollups: [Db; 3],
    packed: [Db; 3],
    alerts: Db,
    alert_aggs: Db,
    states: Db,
    seqs: Db,
    meta: Db,
}

/// A read transaction that keeps the map from being resized under it.
pub(crate) struct Snapshot<'s> {
    // Declared first: dropped (ended) before the guard is released.
    txn: RoTxn<'s, WithTls>,
    _guard: RwLockReadGuard<'s, ()>,
}

impl<'s> std::ops::Deref for Snapshot<'s> {
    type Target = RoTxn<'s, WithTls>;
    fn deref(&self) -> &Self::Target {
        &self.txn
    }
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

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere cannot leave these maps in a state that is wrong, only incomplete.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
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
        options.map_size(map_size).max_dbs(24).max_readers(opts.max_readers.max(8));
        // SAFETY: the environment is opened once per process (the CLI opens it once per
        // command, `serve` once at start) and the directory is not modified by anything but
        // LMDB itself.
        #[allow(unsafe_code)]
        let env = unsafe { options.open(dir) }.map_err(lmdb)?;
        let all = [
            names::DEVICES,
            names::SERIES,
            names::LOG,
            names::BLOCKS,
            names::MARKS,
            names::ROLLUPS[0],
            names::ROLLUPS[1],
            names::ROLLUPS[2],
            names::PACKED[0],
            names::PACKED[1],
            names::PACKED[2],
            names::ALERTS,
            names::ALERT_AGGS,
            names::STATES,
            names::SEQS,
            names::META,
        ];
        let wtxn = env.write_txn().map_err(lmdb)?;
        let dbs = env
            .create_databases_and_commit(wtxn, |opener, wtxn| -> Result<_, heed::Error> {
                let mut out = Vec::new();
                for name in all {
                    out.push(opener.create_database::<Bytes, Bytes>(wtxn, Some(name))?);
                }
                let arr: [Database<'_, Bytes, Bytes>; 16] =
                    out.try_into().map_err(|_| heed::Error::Io(std::io::Error::other("database count")))?;
                Ok(heed::CommitOrAbort::<_, ()>::Commit(arr))
            })
            .map_err(lmdb)?;
        let heed::CommitOrAbort::Commit(
            [devices, series, log, blocks, marks, r1, r2, r3, p1, p2, p3, alerts, alert_aggs, states, seqs, meta],
        ) = dbs
        else {
            return Err(StoreError::Corrupt { path: dir.to_owned(), db: "meta", detail: "database creation aborted".into() });
        };
        let shared = Arc::new(Shared {
            grow: RwLock::new(()),
            series: Mutex::new(HashMap::new()),
            maintenance: Mutex::new(()),
            commits_waiting: AtomicUsize::new(0),
        });
        let store = Store {
            env,
            path: dir.to_owned(),
            opts,
            shared,
            devices,
            series,
            log,
            blocks,
            marks,
            rollups: [r1, r2, r3],
            packed: [p1, p2, p3],
            alerts,
            alert_aggs,
            states,
            seqs,
            meta,
        };
        store.upgrade()?;
        Ok(store)
    }

    /// The store directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The options the store was opened with.
    pub fn options(&self) -> &StoreOptions {
        &self.opts
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

    /// Bytes of the data file in use (pages up to the last one used, free pages included).
    pub fn used_bytes(&self) -> u64 {
        (self.env.info().last_page_number as u64 + 1) * 4096
    }

    /// A consistent read-only view. Keep it short: it pins the pages it sees.
    pub(crate) fn read(&self) -> Result<Snapshot<'_>, StoreError> {
        let guard = self.shared.grow.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        let txn = self.env.read_txn().map_err(self.lmdb())?;
        Ok(Snapshot { txn, _guard: guard })
    }

    /// Runs `f` in a write transaction and commits; on a full map grows the map and retries.
    /// `f` may run several times and must not keep effects of a failed run.
    fn write<T>(&self, mut f: impl FnMut(&Store, &mut RwTxn<'_>) -> Result<T, StoreError>) -> Result<T, StoreError> {
        loop {
            let seen = self.map_size();
            let result = {
                let _guard = self.shared.grow.read().unwrap_or_else(std::sync::PoisonError::into_inner);
                let mut wtxn = self.env.write_txn().map_err(self.lmdb())?;
                // `wtxn` is dropped (aborted, if not committed) before the guard.
                f(self, &mut wtxn).and_then(|v| wtxn.commit().map(|_| v).map_err(self.lmdb()))
            };
            match result {
                Err(StoreError::Lmdb { source: heed::Error::Mdb(heed::MdbError::MapFull), .. }) => self.grow(seen)?,
                other => return other,
            }
        }
    }

    /// Doubles the map, unless another thread grew it since `seen`.
    fn grow(&self, seen: usize) -> Result<(), StoreError> {
        let _exclusive = self.shared.grow.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        let current = self.map_size();
        if current > seen {
            return Ok(());
        }
        let next = current.saturating_mul(2).min(self.opts.max_map_size);
        if next <= current {
            return Err(StoreError::Full { path: self.path.clone(), max: self.opts.max_map_size });
        }
        tracing::info!(from = current, to = next, "growing the store's map");
        // SAFETY: every transaction of this process runs under a read guard of `grow`, and we
        // hold it for writing: no transaction is active here, as LMDB requires for a resize.
        #[allow(unsafe_code)]
        unsafe { self.env.resize(next) }.map_err(self.lmdb())
    }

    fn meta_u64(&self, txn: &RoTxn<'_>, key: &[u8]) -> Result<u64, StoreError> {
        Ok(self.meta.get(txn, key).map_err(self.lmdb())?.map(u64_from).unwrap_or(0))
    }

    fn meta_i64(&self, txn: &RoTxn<'_>, key: &[u8], default: i64) -> Result<i64, StoreError> {
        Ok(self.meta.get(txn, key).map_err(self.lmdb())?.map(|b| u64_from(b) as i64).unwrap_or(default))
    }

    fn put_meta(&self, wtxn: &mut RwTxn<'_>, key: &[u8], v: u64) -> Result<(), StoreError> {
        self.meta.put(wtxn, key, &v.to_be_bytes()).map_err(self.lmdb())
    }

    /// The retention horizons as of `txn`.
    fn horizons_in(&self, txn: &RoTxn<'_>) -> Result<Horizons, StoreError> {
        Ok(Horizons {
            raw: self.meta_i64(txn, meta::H_RAW, i64::MIN)?,
            rollup: [
                self.meta_i64(txn, meta::H_ROLLUP[0], i64::MIN)?,
                self.meta_i64(txn, meta::H_ROLLUP[1], i64::MIN)?,
                self.meta_i64(txn, meta::H_ROLLUP[2], i64::MIN)?,
            ],
            alerts: self.meta_i64(txn, meta::H_ALERTS, i64::MIN)?,
            states: self.meta_i64(txn, meta::H_STATES, i64::MIN)?,
        })
    }

    /// The retention horizons in force.
    pub fn horizons(&self) -> Result<Horizons, StoreError> {
        let snap = self.read()?;
        self.horizons_in(&snap)
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
        let snap = self.read()?;
        self.device_in(&snap, device)
    }

    /// All devices, or those of one tenant, sorted by id.
    pub fn devices(&self, tenant: Option<&str>) -> Result<Vec<(String, DeviceRecord)>, StoreError> {
        let snap = self.read()?;
        let mut out = Vec::new();
        for item in self.devices.iter(&snap).map_err(self.lmdb())? {
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

    /// The highest committed sequence number of a device.
    pub fn high_seq(&self, device: &str) -> Result<Option<u64>, StoreError> {
        let snap = self.read()?;
        match self.seqs.get(&snap, device.as_bytes()).map_err(self.lmdb())? {
            None => Ok(None),
            Some(b) => Ok(seq::SeqWindow::decode(b).ok_or_else(|| self.corrupt(names::SEQS, "bad length"))?.high()),
        }
    }

    /// What `device` reported about its license and inventory as of `ts`: the latest of each
    /// read at or before `ts` (history older than the states horizon keeps only its last entry).
    pub fn device_state_at(&self, device: &str, ts: i64) -> Result<DeviceState, StoreError> {
        let snap = self.read()?;
        let last = |kind: u8| -> Result<Option<Vec<u8>>, StoreError> {
            let lo = keys::state_key(device, kind, i64::MIN);
            let hi = keys::state_key(device, kind, ts);
            let range = (std::ops::Bound::Included(&lo[..]), std::ops::Bound::Included(&hi[..]));
            let mut it = self.states.rev_range(&snap, &range).map_err(self.lmdb())?;
            match it.next() {
                None => Ok(None),
                Some(item) => Ok(Some(item.map_err(self.lmdb())?.1.to_vec())),
            }
        };
        let license = match last(state_kind::LICENSE)? {
            Some(b) => Some(serde_cbor::from_slice(&b).map_err(|e| self.corrupt(names::STATES, e))?),
            None => None,
        };
        let inventory = match last(state_kind::INVENTORY)? {
            Some(b) => Some(serde_cbor::from_slice(&b).map_err(|e| self.corrupt(names::STATES, e))?),
            None => None,
        };
        Ok(DeviceState { license, inventory })
    }

    /// What `device` reported about its license and inventory over `[from, to)`: every report
    /// of each kind in the range, time-ordered, preceded by the last one before `from` (what
    /// was in force when the range began). At most [`HISTORY_MAX`] reports per kind, the
    /// latest ones; `truncated` says when more were there. History older than the states
    /// horizon keeps only the latest report of each kind.
    pub fn device_history(&self, device: &str, from: i64, to: i64) -> Result<DeviceHistory, StoreError> {
        let snap = self.read()?;
        let (licenses, cut_l) = self.states_in(&snap, device, state_kind::LICENSE, from, to)?;
        let (inventories, cut_i) = self.states_in(&snap, device, state_kind::INVENTORY, from, to)?;
        let horizon = self.horizons_in(&snap)?.states;
        Ok(DeviceHistory { licenses, inventories, truncated: cut_l || cut_i, horizon_ms: horizon })
    }

    /// One kind of `device`'s states in `[from, to)` after the last one before `from`, at most
    /// [`HISTORY_MAX`] (the latest), oldest first; and whether some were left out.
    fn states_in<T: serde::de::DeserializeOwned>(
        &self,
        snap: &Snapshot<'_>,
        device: &str,
        kind: u8,
        from: i64,
        to: i64,
    ) -> Result<(Vec<T>, bool), StoreError> {
        let lo = keys::state_key(device, kind, i64::MIN);
        let hi = keys::state_key(device, kind, to);
        let start = keys::state_key(device, kind, from);
        let range = (std::ops::Bound::Included(&lo[..]), std::ops::Bound::Excluded(&hi[..]));
        let mut newest_first = Vec::new();
        let mut truncated = false;
        for item in self.states.rev_range(snap, &range).map_err(self.lmdb())? {
            let (k, v) = item.map_err(self.lmdb())?;
            if newest_first.len() == HISTORY_MAX {
                truncated = true;
                break;
            }
            newest_first.push(serde_cbor::from_slice(v).map_err(|e| self.corrupt(names::STATES, e))?);
            if k < &start[..] {
                break; // the one in force at `from`
            }
        }
        newest_first.reverse();
        Ok((newest_first, truncated))
    }

    /// Per database: (name, entries, bytes in pages), for operators and benchmarks.
    pub fn usage(&self) -> Result<Vec<(&'static str, u64, u64)>, StoreError> {
        let snap = self.read()?;
        let dbs = [
            (names::DEVICES, self.devices),
            (names::SERIES, self.series),
            (names::LOG, self.log),
            (names::BLOCKS, self.blocks),
            (names::MARKS, self.marks),
            (names::ROLLUPS[0], self.rollups[0]),
            (names::ROLLUPS[1], self.rollups[1]),
            (names::ROLLUPS[2], self.rollups[2]),
            (names::PACKED[0], self.packed[0]),
            (names::PACKED[1], self.packed[1]),
            (names::PACKED[2], self.packed[2]),
            (names::ALERTS, self.alerts),
            (names::ALERT_AGGS, self.alert_aggs),
            (names::STATES, self.states),
            (names::SEQS, self.seqs),
            (names::META, self.meta),
        ];
        let mut out = Vec::with_capacity(dbs.len());
        for (name, db) in dbs {
            let st = db.stat(&snap).map_err(self.lmdb())?;
            let pages = (st.branch_pages + st.leaf_pages + st.overflow_pages) as u64;
            out.push((name, st.entries as u64, pages * u64::from(st.page_size)));
        }
        Ok(out)
    }

    /// Entries in the ingest log waiting to be folded.
    pub fn log_len(&self) -> Result<u64, StoreError> {
        let snap = self.read()?;
        self.log.len(&snap).map_err(self.lmdb())
    }
}

#[cfg(test)]
mod tests;
