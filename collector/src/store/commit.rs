//! The writer's side: a group of batches becomes ingest-log entries in one transaction.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use ampel_protocol::{AckStatus, Record};
use heed::{PutFlags, RwTxn};

use super::log::EntryBuilder;
use super::seq::SeqWindow;
use super::{
    CommitOutcome, DeviceRecord, PendingBatch, SERIES_CACHE_MAX, Store, StoreError, cbor, keys, lock, meta, names, state_kind, u64_from,
};

/// A metric name or label part must be printable: the series key layout relies on it.
fn printable(s: &str) -> bool {
    !s.is_empty() && s.len() <= 256 && !s.chars().any(char::is_control)
}

/// Series ids known to be committed, plus those this transaction adds.
struct Interner<'a> {
    committed: &'a HashMap<Vec<u8>, u64>,
    staged: &'a mut HashMap<Vec<u8>, u64>,
    next: u64,
    key: Vec<u8>,
}

impl Interner<'_> {
    fn id(&mut self, s: &Store, wtxn: &mut RwTxn<'_>, device: &str, name: &str, labels: &[(String, String)]) -> Result<u64, StoreError> {
        keys::series_key_into(&mut self.key, device, name, labels);
        if let Some(id) = self.committed.get(&self.key[..]).or_else(|| self.staged.get(&self.key[..])) {
            return Ok(*id);
        }
        let id = match s.series.get(wtxn, &self.key).map_err(s.lmdb())? {
            Some(b) => u64_from(b),
            None => {
                let id = self.next;
                self.next += 1;
                s.series.put(wtxn, &self.key, &id.to_be_bytes()).map_err(s.lmdb())?;
                id
            }
        };
        self.staged.insert(self.key.clone(), id);
        Ok(id)
    }
}

/// The series a batch used last, by name and labels: an agent's batch repeats the same few
/// series sample after sample, so most points find theirs here without building a series key,
/// hashing it or checking the names again. Fixed size and compared by content: a batch of
/// thousands of distinct series costs at most [`RECENT`] failed comparisons per point.
struct Recent<'b> {
    slots: [Option<Seen<'b>>; RECENT],
    next: usize,
}

/// A series by name and labels, and its id.
type Seen<'b> = (&'b str, &'b [(String, String)], u64);

/// Series remembered per batch.
const RECENT: usize = 16;

impl<'b> Recent<'b> {
    fn new() -> Self {
        Recent { slots: [None; RECENT], next: 0 }
    }

    fn get(&self, name: &str, labels: &[(String, String)]) -> Option<u64> {
        self.slots.iter().flatten().find(|(n, l, _)| *n == name && *l == labels).map(|&(_, _, id)| id)
    }

    fn put(&mut self, name: &'b str, labels: &'b [(String, String)], id: u64) {
        self.slots[self.next] = Some((name, labels, id));
        self.next = (self.next + 1) % RECENT;
    }
}

/// Counts a commit as waiting for the writer lock while it lives.
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn new(n: &'a AtomicUsize) -> Self {
        n.fetch_add(1, Ordering::AcqRel);
        Waiting(n)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Store {
    /// Commits a group of batches in one transaction and says for each what became of it.
    ///
    /// The tenant of every record is the tenant of the sending certificate; a device unknown to
    /// the registry is registered under it, and a device registered under another tenant is
    /// refused. Duplicates by (device, seq) are not written again. Points and alerts go to the
    /// ingest log (appended, in arrival order); registry, sequence marks and license/inventory
    /// history are updated in the same transaction. When this returns `Ok`, all of it is
    /// durable.
    pub fn commit(&self, group: &[PendingBatch]) -> Result<Vec<(AckStatus, CommitOutcome)>, StoreError> {
        let mut staged: HashMap<Vec<u8>, u64> = HashMap::new();
        let _waiting = Waiting::new(&self.shared.commits_waiting);
        let results = {
            let committed = lock(&self.shared.series);
            self.write(|s, wtxn| {
                staged.clear();
                s.commit_in(wtxn, group, &committed, &mut staged)
            })?
        };
        if !staged.is_empty() {
            let mut cache = lock(&self.shared.series);
            if cache.len() + staged.len() > SERIES_CACHE_MAX {
                cache.clear();
            }
            cache.extend(staged);
        }
        Ok(results)
    }

    /// The key the next log entry gets.
    fn next_log_key(&self, wtxn: &RwTxn<'_>) -> Result<u64, StoreError> {
        let last = match self.log.last(wtxn).map_err(self.lmdb())? {
            Some((k, _)) => keys::split_log_key(k).ok_or_else(|| self.corrupt(names::LOG, "bad key"))?,
            None => 0,
        };
        Ok(last.max(self.meta_u64(wtxn, meta::FOLDED)?) + 1)
    }

    fn commit_in(
        &self,
        wtxn: &mut RwTxn<'_>,
        group: &[PendingBatch],
        committed: &HashMap<Vec<u8>, u64>,
        staged: &mut HashMap<Vec<u8>, u64>,
    ) -> Result<Vec<(AckStatus, CommitOutcome)>, StoreError> {
        let h = self.horizons_in(wtxn)?;
        let mut interner = Interner { committed, staged, next: self.meta_u64(wtxn, meta::NEXT_SERIES)?, key: Vec::with_capacity(128) };
        let mut next_log = self.next_log_key(wtxn)?;
        let mut results = Vec::with_capacity(group.len());
        let mut records: HashMap<&str, (DeviceRecord, bool)> = HashMap::new();
        let mut windows: HashMap<&str, SeqWindow> = HashMap::new();
        let mut points: Vec<(u64, i64, f64)> = Vec::new();
        let mut alerts: Vec<Vec<u8>> = Vec::new();
        for p in group {
            let device = p.identity.device.as_str();
            let tenant = p.identity.tenant.as_str();
            if !records.contains_key(device) {
                let rec = match self.device_in(wtxn, device)? {
                    Some(r) => r,
                    None => {
                        tracing::info!(%device, %tenant, "registering new device on first contact");
                        DeviceRecord { tenant: tenant.to_owned(), registered_ms: p.received_ms, ..DeviceRecord::default() }
                    }
                };
                records.insert(device, (rec, false));
            }
            if records.get(device).is_some_and(|(r, _)| r.tenant != tenant) {
                results.push((AckStatus::Rejected(format!("device {device} is registered to another tenant")), CommitOutcome::default()));
                continue;
            }
            if !windows.contains_key(device) {
                let w = match self.seqs.get(wtxn, device.as_bytes()).map_err(self.lmdb())? {
                    Some(b) => SeqWindow::decode(b).ok_or_else(|| self.corrupt(names::SEQS, "bad length"))?,
                    None => SeqWindow::default(),
                };
                windows.insert(device, w);
            }
            let Some(window) = windows.get_mut(device) else { continue };
            if !window.is_new(p.batch.seq) {
                results.push((AckStatus::Duplicate, CommitOutcome::default()));
                continue;
            }
            window.mark(p.batch.seq);
            let Some((rec, dirty)) = records.get_mut(device) else { continue };
            *dirty = true;
            let mut outcome = CommitOutcome::default();
            points.clear();
            alerts.clear();
            let mut recent = Recent::new();
            for r in &p.batch.records {
                match r {
                    Record::Metric(m) => {
                        if !m.value.is_finite() {
                            outcome.malformed += 1;
                        } else if let Some(id) = recent.get(&m.name, &m.labels) {
                            // Names checked when the series went into `recent`.
                            if m.ts < h.raw {
                                outcome.expired += 1;
                            } else {
                                points.push((id, m.ts, m.value));
                            }
                        } else if !printable(&m.name) || m.labels.iter().any(|(k, v)| !printable(k) || (!v.is_empty() && !printable(v))) {
                            outcome.malformed += 1;
                        } else if m.ts < h.raw {
                            outcome.expired += 1;
                        } else {
                            let id = interner.id(self, wtxn, device, &m.name, &m.labels)?;
                            recent.put(&m.name, &m.labels, id);
                            points.push((id, m.ts, m.value));
                        }
                    }
                    Record::Traffic(t) => {
                        // Traffic counters are stored as per-interface series.
                        let mut labels = vec![("interface".to_owned(), t.interface.clone())];
                        if let Some(c) = &t.category {
                            labels.push(("category".to_owned(), c.clone()));
                        }
                        if labels.iter().any(|(_, v)| !printable(v)) {
                            outcome.malformed += 1;
                        } else if t.ts < h.raw {
                            outcome.expired += 1;
                        } else {
                            for (name, v) in [("traffic.rx_bytes", t.rx_bytes), ("traffic.tx_bytes", t.tx_bytes)] {
                                let id = interner.id(self, wtxn, device, name, &labels)?;
                                points.push((id, t.ts, v as f64));
                            }
                        }
                    }
                    Record::Alert(a) => {
                        if a.ts < h.alerts {
                            outcome.expired += 1;
                        } else {
                            alerts.push(cbor(a));
                        }
                    }
                    Record::License(l) => {
                        self.states.put(wtxn, &keys::state_key(device, state_kind::LICENSE, l.ts), &cbor(l)).map_err(self.lmdb())?;
                        if rec.license.as_ref().is_none_or(|old| old.ts <= l.ts) {
                            rec.license = Some(l.clone());
                        }
                    }
                    Record::Inventory(i) => {
                        self.states.put(wtxn, &keys::state_key(device, state_kind::INVENTORY, i.ts), &cbor(i)).map_err(self.lmdb())?;
                        if rec.inventory.as_ref().is_none_or(|old| old.ts <= i.ts) {
                            rec.inventory = Some(i.clone());
                        }
                    }
                    Record::Unknown => outcome.unknown += 1,
                }
            }
            // Stable: the points of a series keep their arrival order (the first write wins).
            points.sort_by_key(|p| p.0);
            let mut builder = EntryBuilder::new(tenant, device);
            for &(id, ts, v) in &points {
                builder.point(id, ts, v);
            }
            for entry in builder.finish(&alerts) {
                self.log.put_with_flags(wtxn, PutFlags::APPEND, &keys::log_key(next_log), &entry).map_err(self.lmdb())?;
                next_log += 1;
            }
            outcome.points = points.len() as u64;
            outcome.alerts = alerts.len() as u64;
            rec.first_seen_ms = Some(rec.first_seen_ms.map_or(p.received_ms, |f| f.min(p.received_ms)));
            rec.last_seen_ms = Some(rec.last_seen_ms.map_or(p.received_ms, |l| l.max(p.received_ms)));
            rec.points += outcome.points;
            rec.alerts += outcome.alerts;
            rec.batches += 1;
            results.push((AckStatus::Committed, outcome));
        }
        for (device, (rec, dirty)) in &records {
            if *dirty {
                self.devices.put(wtxn, device.as_bytes(), &cbor(rec)).map_err(self.lmdb())?;
            }
        }
        for (device, w) in &windows {
            self.seqs.put(wtxn, device.as_bytes(), &w.encode()).map_err(self.lmdb())?;
        }
        self.put_meta(wtxn, meta::NEXT_SERIES, interner.next)?;
        Ok(results)
    }
}
