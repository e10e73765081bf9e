//! The persistent spool: every batch is written here (LMDB, in the state directory) before it
//! is sent, and deleted only when the collector (QUIC ack) or the broker (MQTT PUBACK)
//! acknowledges it. A killed agent resends what is left after its restart.
//!
//! The spool is bounded in bytes. When a new batch does not fit, it sheds by priority, oldest
//! batches first, in three passes:
//!
//! 1. downsample: every second metric / traffic record of a batch goes (performance and traffic
//!    first — they matter least and are the bulk);
//! 2. strip: the remaining metric and traffic records go;
//! 3. drop: whole batches go, inventory, license and alert records with them.
//!
//! Metrics named `agent.*` (the agent's own counters, among them `agent.dropped`) are never shed
//! in passes 1 and 2. Every shed record is counted by kind; the counts persist with the spool and
//! travel to the collector as `agent.dropped{kind=...}` metrics.
//!
//! # Layout
//!
//! | database  | key                      | value                                   |
//! |-----------|--------------------------|-----------------------------------------|
//! | `batches` | seq (u64 BE)             | shed stage (1 byte) + CBOR batch        |
//! | `meta`    | name (UTF-8)             | u64 BE: `dropped.<kind>`, `cursor.<src>` |
//!
//! Transactions are short and synchronous; the spool is used from the agent's one thread.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ampel_protocol::{Batch, Limits, Metric, Record, codec};
use heed::types::{Bytes, Str, U64};
use heed::{Database, Env, EnvOpenOptions, byteorder::BigEndian};

/// Why the spool could not be opened or written.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    /// The spool directory could not be created.
    #[error("spool directory {}: {error}", path.display())]
    Dir {
        /// The directory.
        path: PathBuf,
        /// What the OS said.
        error: std::io::Error,
    },
    /// LMDB failed.
    #[error("spool {}: {error}", path.display())]
    Lmdb {
        /// The spool directory.
        path: PathBuf,
        /// What LMDB said.
        error: heed::Error,
    },
    /// A batch could not be encoded (a bug: our own records always encode).
    #[error("cannot encode batch {seq}: {error}")]
    Encode {
        /// The batch.
        seq: u64,
        /// What the codec said.
        error: ampel_protocol::CodecError,
    },
    /// A single batch is larger than the whole spool.
    #[error("batch {seq} ({bytes} bytes) is larger than the spool ({max} bytes)")]
    TooLarge {
        /// The batch.
        seq: u64,
        /// Its encoded size.
        bytes: usize,
        /// The configured bound.
        max: usize,
    },
}

type BatchDb = Database<'static, U64<BigEndian>, Bytes>;
type MetaDb = Database<'static, Str, U64<BigEndian>>;

/// Shed stages stored in front of each batch.
const FULL: u8 = 0;
const DOWNSAMPLED: u8 = 1;
const STRIPPED: u8 = 2;

/// Bounds for decoding our own spooled batches (generous: we wrote them).
const SPOOL_LIMITS: Limits = Limits { max_frame: 64 << 20, max_records: 1 << 20, max_string: 1 << 20, max_depth: 16 };

/// Record kinds, in the order they are reported.
pub const KINDS: [&str; 6] = ["metric", "traffic", "inventory", "alert", "license", "unknown"];

/// The spool.
pub struct Spool {
    env: Env,
    path: PathBuf,
    batches: BatchDb,
    meta: MetaDb,
    max_bytes: usize,
    bytes: usize,
    dropped: BTreeMap<&'static str, u64>,
}

/// What [`Spool::append`] had to do to make room.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Shed {
    /// Records shed, by kind.
    pub records: BTreeMap<&'static str, u64>,
    /// Whole batches deleted.
    pub batches: u64,
}

impl Shed {
    /// Whether nothing was shed.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty() && self.batches == 0
    }
}

fn kind_name(r: &Record) -> &'static str {
    r.kind()
}

/// Whether a record may go in the downsample and strip passes.
fn low_priority(r: &Record) -> bool {
    match r {
        Record::Metric(m) => !m.name.starts_with("agent."),
        Record::Traffic(_) => true,
        _ => false,
    }
}

impl Spool {
    /// Opens (creating if needed) the spool in `dir`, bounded to `max_bytes` of batch data.
    pub fn open(dir: &Path, max_bytes: usize) -> Result<Spool, SpoolError> {
        crate::files::create_dir_all(dir).map_err(|error| SpoolError::Dir { path: dir.to_owned(), error })?;
        let lmdb = |error| SpoolError::Lmdb { path: dir.to_owned(), error };
        // LMDB needs room beyond the data (B-tree pages, free pages held by readers): twice the
        // bound plus a little. Only touched pages count towards the agent's RSS.
        let page = 4096;
        let map_size = (max_bytes.saturating_mul(2) + (2 << 20)).div_ceil(page) * page;
        let mut options = EnvOpenOptions::new();
        options.map_size(map_size).max_dbs(4).max_readers(8);
        // Read-ahead would pull neighbouring spool pages into the agent's resident set; the
        // agent reads one batch at a time and has a few MiB of memory budget.
        // SAFETY: NO_READ_AHEAD only changes how the OS pages the map in.
        #[allow(unsafe_code)]
        unsafe {
            options.flags(heed::EnvFlags::NO_READ_AHEAD);
        }
        // SAFETY: the agent opens its spool once per process, and nothing but LMDB writes the
        // directory.
        #[allow(unsafe_code)]
        let env = unsafe { options.open(dir) }.map_err(lmdb)?;
        let wtxn = env.write_txn().map_err(lmdb)?;
        let dbs = env
            .create_databases_and_commit(wtxn, |opener, wtxn| -> Result<_, heed::Error> {
                let batches = opener.create_database::<U64<BigEndian>, Bytes>(wtxn, Some("batches"))?;
                let meta = opener.create_database::<Str, U64<BigEndian>>(wtxn, Some("meta"))?;
                Ok(heed::CommitOrAbort::<_, ()>::Commit((batches, meta)))
            })
            .map_err(lmdb)?;
        let heed::CommitOrAbort::Commit((batches, meta)) = dbs else {
            return Err(lmdb(heed::Error::Io(std::io::Error::other("spool database creation aborted"))));
        };
        let mut spool = Spool { env, path: dir.to_owned(), batches, meta, max_bytes, bytes: 0, dropped: BTreeMap::new() };
        let rtxn = spool.env.read_txn().map_err(lmdb)?;
        for item in spool.batches.iter(&rtxn).map_err(lmdb)? {
            let (_, v) = item.map_err(lmdb)?;
            spool.bytes += v.len();
        }
        for kind in KINDS {
            if let Some(n) = spool.meta.get(&rtxn, &format!("dropped.{kind}")).map_err(lmdb)? {
                spool.dropped.insert(kind, n);
            }
        }
        drop(rtxn);
        Ok(spool)
    }

    fn lmdb(&self) -> impl Fn(heed::Error) -> SpoolError + '_ {
        move |error| SpoolError::Lmdb { path: self.path.clone(), error }
    }

    /// Writes `batch` durably, together with the sources' `cursors` (positions that must move
    /// only when the data they produced is safe). Sheds older data first if it does not fit.
    pub fn append(&mut self, batch: &Batch, cursors: &[(&str, u64)]) -> Result<Shed, SpoolError> {
        let payload = codec::encode_batch(batch).map_err(|error| SpoolError::Encode { seq: batch.seq, error })?;
        let size = payload.len() + 1;
        if size > self.max_bytes {
            return Err(SpoolError::TooLarge { seq: batch.seq, bytes: size, max: self.max_bytes });
        }
        let mut shed = Shed::default();
        if self.bytes + size > self.max_bytes {
            // Make room for this batch and a tenth of the spool more, so shedding (which
            // rewrites batches) does not run on every append once the spool is full.
            let target = self.max_bytes.saturating_sub(size + self.max_bytes / 10);
            self.shed_to(target, &mut shed)?;
        }
        let mut value = Vec::with_capacity(size);
        value.push(FULL);
        value.extend_from_slice(&payload);
        let mut wtxn = self.env.write_txn().map_err(self.lmdb())?;
        if let Some(old) = self.batches.get(&wtxn, &batch.seq).map_err(self.lmdb())? {
            self.bytes -= old.len();
        }
        self.batches.put(&mut wtxn, &batch.seq, &value).map_err(self.lmdb())?;
        for (name, pos) in cursors {
            self.meta.put(&mut wtxn, &format!("cursor.{name}"), pos).map_err(self.lmdb())?;
        }
        wtxn.commit().map_err(self.lmdb())?;
        self.bytes += size;
        Ok(shed)
    }

    /// A source's persisted cursor.
    pub fn cursor(&self, source: &str) -> Result<Option<u64>, SpoolError> {
        let rtxn = self.env.read_txn().map_err(self.lmdb())?;
        self.meta.get(&rtxn, &format!("cursor.{source}")).map_err(self.lmdb())
    }

    /// Sheds oldest-first until at most `target` bytes are held, in the three passes.
    fn shed_to(&mut self, target: usize, shed: &mut Shed) -> Result<(), SpoolError> {
        for stage in [FULL, DOWNSAMPLED, STRIPPED] {
            if self.bytes <= target {
                break;
            }
            let mut counts: BTreeMap<&'static str, u64> = BTreeMap::new();
            let mut wtxn = self.env.write_txn().map_err(self.lmdb())?;
            let seqs: Vec<u64> = {
                let mut v = Vec::new();
                for item in self.batches.iter(&wtxn).map_err(self.lmdb())? {
                    let (seq, value) = item.map_err(self.lmdb())?;
                    if value.first() == Some(&stage) {
                        v.push(seq);
                    }
                }
                v
            };
            for seq in seqs {
                if self.bytes <= target {
                    break;
                }
                let Some(value) = self.batches.get(&wtxn, &seq).map_err(self.lmdb())?.map(<[u8]>::to_vec) else {
                    continue;
                };
                let old_len = value.len();
                let batch = value.get(1..).and_then(|p| codec::decode_batch(p, &SPOOL_LIMITS).ok());
                let new_value = match (stage, batch) {
                    (FULL | DOWNSAMPLED, Some(mut batch)) => {
                        let mut nth = 0usize;
                        batch.records.retain(|r| {
                            if !low_priority(r) {
                                return true;
                            }
                            nth += 1;
                            // Downsampling keeps every second one; stripping keeps none.
                            let keep = stage == FULL && nth % 2 == 1;
                            if !keep {
                                *counts.entry(kind_name(r)).or_insert(0) += 1;
                            }
                            keep
                        });
                        let payload = codec::encode_batch(&batch).map_err(|error| SpoolError::Encode { seq, error })?;
                        let mut v = Vec::with_capacity(payload.len() + 1);
                        v.push(if stage == FULL { DOWNSAMPLED } else { STRIPPED });
                        v.extend_from_slice(&payload);
                        Some(v)
                    }
                    (_, Some(batch)) => {
                        for r in &batch.records {
                            *counts.entry(kind_name(r)).or_insert(0) += 1;
                        }
                        shed.batches += 1;
                        None
                    }
                    (_, None) => {
                        // Unreadable: cannot be sent either. Counted as one unknown record.
                        *counts.entry("unknown").or_insert(0) += 1;
                        shed.batches += 1;
                        None
                    }
                };
                match new_value {
                    Some(v) => {
                        self.batches.put(&mut wtxn, &seq, &v).map_err(self.lmdb())?;
                        self.bytes = self.bytes - old_len + v.len();
                    }
                    None => {
                        self.batches.delete(&mut wtxn, &seq).map_err(self.lmdb())?;
                        self.bytes -= old_len;
                    }
                }
            }
            for (kind, n) in &counts {
                let total = self.dropped.get(kind).copied().unwrap_or(0) + n;
                self.meta.put(&mut wtxn, &format!("dropped.{kind}"), &total).map_err(self.lmdb())?;
            }
            wtxn.commit().map_err(self.lmdb())?;
            for (kind, n) in counts {
                *self.dropped.entry(kind).or_insert(0) += n;
                *shed.records.entry(kind).or_insert(0) += n;
            }
        }
        Ok(())
    }

    /// The first spooled batch with `seq >= from` that `skip` does not exclude, as a CBOR
    /// payload ready to frame or publish.
    pub fn next_from(&self, from: u64, skip: impl Fn(u64) -> bool) -> Result<Option<(u64, Vec<u8>)>, SpoolError> {
        let rtxn = self.env.read_txn().map_err(self.lmdb())?;
        for item in self.batches.range(&rtxn, &(from..)).map_err(self.lmdb())? {
            let (seq, value) = item.map_err(self.lmdb())?;
            if skip(seq) {
                continue;
            }
            return Ok(Some((seq, value.get(1..).unwrap_or_default().to_vec())));
        }
        Ok(None)
    }

    /// Deletes acknowledged batches in one transaction. Unknown seqs (shed meanwhile) are fine.
    pub fn remove(&mut self, seqs: &[u64]) -> Result<(), SpoolError> {
        if seqs.is_empty() {
            return Ok(());
        }
        let mut wtxn = self.env.write_txn().map_err(self.lmdb())?;
        let mut freed = 0;
        for seq in seqs {
            if let Some(v) = self.batches.get(&wtxn, seq).map_err(self.lmdb())? {
                freed += v.len();
                self.batches.delete(&mut wtxn, seq).map_err(self.lmdb())?;
            }
        }
        wtxn.commit().map_err(self.lmdb())?;
        self.bytes -= freed;
        Ok(())
    }

    /// Batches held.
    pub fn len(&self) -> Result<u64, SpoolError> {
        let rtxn = self.env.read_txn().map_err(self.lmdb())?;
        self.batches.len(&rtxn).map_err(self.lmdb())
    }

    /// Whether no batch is held.
    pub fn is_empty(&self) -> Result<bool, SpoolError> {
        Ok(self.len()? == 0)
    }

    /// Bytes of batch data held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Records shed since the spool was created, by kind.
    pub fn dropped(&self) -> &BTreeMap<&'static str, u64> {
        &self.dropped
    }

    /// The drop counters as `agent.dropped{kind=...}` metrics stamped `now_ms`.
    pub fn dropped_metrics(&self, now_ms: i64) -> Vec<Record> {
        self.dropped
            .iter()
            .map(|(kind, n)| {
                Record::Metric(Metric {
                    ts: now_ms,
                    name: "agent.dropped".into(),
                    labels: vec![("kind".into(), (*kind).into())],
                    value: *n as f64,
                })
            })
            .collect()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use ampel_protocol::{Alert, AlertAction, AlertSource, PROTOCOL_VERSION};

    fn metric(i: u64) -> Record {
        Record::Metric(Metric { ts: i as i64, name: "cpu.usage_percent".into(), labels: vec![], value: i as f64 })
    }

    fn batch(seq: u64, metrics: u64, alerts: u64) -> Batch {
        let mut records: Vec<Record> = (0..metrics).map(metric).collect();
        for i in 0..alerts {
            records.push(Record::Alert(Alert::new(i as i64, AlertSource::Ids, 1, "test".into(), AlertAction::Blocked)));
        }
        Batch { version: PROTOCOL_VERSION, seq, sender: None, records }
    }

    fn all(s: &Spool) -> Vec<(u64, Batch)> {
        let mut out = Vec::new();
        let mut from = 0;
        while let Some((seq, p)) = s.next_from(from, |_| false).unwrap() {
            out.push((seq, codec::decode_batch(&p, &SPOOL_LIMITS).unwrap()));
            from = seq + 1;
        }
        out
    }

    #[test]
    fn batches_survive_reopen_until_removed_with_cursors() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut s = Spool::open(dir.path(), 1 << 20).unwrap();
            for seq in 1..=5 {
                s.append(&batch(seq, 3, 0), &[("counter", seq * 10)]).unwrap();
            }
            s.remove(&[2, 4, 99]).unwrap();
        }
        let s = Spool::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(all(&s).iter().map(|(q, _)| *q).collect::<Vec<_>>(), [1, 3, 5]);
        assert_eq!(s.cursor("counter").unwrap(), Some(50));
        assert_eq!(s.next_from(2, |q| q == 3).unwrap().map(|(q, _)| q), Some(5));
        assert!(s.bytes() > 0);
    }

    #[test]
    fn a_full_spool_downsamples_then_strips_metrics_before_dropping_alerts_and_counts() {
        let dir = tempfile::tempdir().unwrap();
        let one = codec::encode_batch(&batch(1, 20, 2)).unwrap().len() + 1;
        let mut s = Spool::open(dir.path(), one * 10).unwrap();
        let mut total = Shed::default();
        for seq in 1..=12 {
            let shed = s.append(&batch(seq, 20, 2), &[]).unwrap();
            for (k, n) in shed.records {
                *total.records.entry(k).or_insert(0) += n;
            }
            total.batches += shed.batches;
        }
        assert!(s.bytes() <= one * 10);
        let held = all(&s);
        // Nothing of the newest batch was touched; alerts were kept while metrics could go.
        assert_eq!(held.last().unwrap().1.records.len(), 22);
        assert_eq!(total.batches, 0, "metrics shed first: {total:?}");
        assert!(held.iter().all(|(_, b)| b.records.iter().filter(|r| r.kind() == "alert").count() == 2));
        let metrics_held: usize = held.iter().map(|(_, b)| b.records.iter().filter(|r| r.kind() == "metric").count()).sum();
        assert_eq!(total.records.get("metric").copied().unwrap_or(0) as usize + metrics_held, 12 * 20);
        // Counts persist and become metrics.
        drop(s);
        let s = Spool::open(dir.path(), one * 10).unwrap();
        assert_eq!(s.dropped().get("metric"), total.records.get("metric"));
        let m = s.dropped_metrics(7);
        assert!(matches!(&m[0], Record::Metric(m) if m.name == "agent.dropped" && m.labels[0].1 == "metric"));
    }

    #[test]
    fn when_only_alerts_are_left_whole_old_batches_go_and_are_counted() {
        let dir = tempfile::tempdir().unwrap();
        let one = codec::encode_batch(&batch(1, 0, 5)).unwrap().len() + 1;
        let mut s = Spool::open(dir.path(), one * 4).unwrap();
        let mut alerts = 0;
        for seq in 1..=10 {
            alerts += s.append(&batch(seq, 0, 5), &[]).unwrap().records.get("alert").copied().unwrap_or(0);
        }
        let held = all(&s);
        assert_eq!(held.last().unwrap().0, 10);
        assert_eq!(alerts as usize + held.len() * 5, 50);
        assert_eq!(s.dropped().get("alert").copied(), Some(alerts));
    }
}
