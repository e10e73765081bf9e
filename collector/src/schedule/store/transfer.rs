//! A tenant's part of the delivery store, out of one collector and into another, for moving
//! the tenant between shards (`tenant export|import|delete`; the file is `tenant_io`'s).
//!
//! What travels: the tenant's archive records as stored (editions, deliveries, resends), its
//! `runs` entries, and the recipient record and consent log entries of every address its
//! reports went to or the exporting shard's jobs covering it name. The PDF files travel in
//! the file too, beside the records; this module only names them.
//!
//! How an import merges, in one write transaction:
//!
//! - **Reports.** A record already here (same tenant, job, slot and rendering time: imported
//!   before) is kept. A new one keeps its id if that id was never used here (nor moved away),
//!   and otherwise gets the next free one: ids are per store, and another tenant's record is
//!   never overwritten. [`DeliveryMerge::remapped`] lists every id that changed.
//! - **Runs.** An entry of (job, slot, tenant) already here is kept (this collector made that
//!   run's report itself); a new one points at the imported record's id here.
//! - **Recipients** by [`merge_recipient`]: what the recipient did (confirm, unsubscribe) beats
//!   what a collector did (invite, remind, expire); between two acts of the recipient the later
//!   wins, an unsubscribe on a tie. So a confirmed address stays confirmed and is not invited
//!   again, and an unsubscribe is never undone by an older confirmation.
//! - **Consent log.** The entries are appended with `source` marked `shard S: <source>`; an
//!   entry present already (imported before) is not appended twice.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use serde::{Deserialize, Serialize};

use super::{
    ArchiveRecord, ConsentEvent, DeliveryStore, DeliveryStoreError, MovedReport, Recipient, RecipientState, be, decode, encode, from_be,
    names, run_key,
};

/// One `runs` entry of a tenant: the report made for (job, slot).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Run {
    /// The job.
    pub job: String,
    /// The slot (Unix ms).
    pub slot_ms: i64,
    /// The report's id in the store it comes from.
    pub id: u64,
}

/// A tenant's part of a delivery store.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TenantDelivery {
    /// Its archive records, by id.
    pub reports: Vec<ArchiveRecord>,
    /// Its `runs` entries.
    pub runs: Vec<Run>,
    /// The recipients concerned (see the module docs).
    pub recipients: Vec<Recipient>,
    /// Their consent log entries, oldest first.
    pub consent: Vec<ConsentEvent>,
}

/// What [`DeliveryStore::import_tenant`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryMerge {
    /// Reports added.
    pub reports: u64,
    /// Reports found here already (imported before).
    pub reports_kept: u64,
    /// (id in the file, id here) of every added report whose id was taken here.
    pub remapped: Vec<(u64, u64)>,
    /// Runs entries added.
    pub runs: u64,
    /// Runs entries kept because this collector has its own for that (job, slot).
    pub runs_kept: u64,
    /// Recipients new here.
    pub recipients: u64,
    /// Recipients known here whose state the import changed.
    pub recipients_changed: u64,
    /// Consent log entries appended.
    pub consent: u64,
}

/// The merged record of an address known on both sides (`ours` here, `theirs` in the file),
/// or `None` when ours stands. See the module docs for the rule.
pub fn merge_recipient(ours: &Recipient, theirs: &Recipient) -> Option<Recipient> {
    // 2: an act of the recipient; 1: of a collector.
    let weight = |r: &Recipient| match r.state {
        RecipientState::Confirmed | RecipientState::Unsubscribed => 2,
        RecipientState::Invited | RecipientState::Expired => 1,
    };
    let unsubscribed = |r: &Recipient| r.state == RecipientState::Unsubscribed;
    let theirs_win = (weight(theirs), theirs.changed_ms, unsubscribed(theirs)) > (weight(ours), ours.changed_ms, unsubscribed(ours));
    let mut merged = if theirs_win { theirs.clone() } else { ours.clone() };
    merged.address = ours.address.clone();
    // A job removal is a refusal: kept from both sides.
    for job in ours.removed_jobs.iter().chain(&theirs.removed_jobs) {
        if !merged.removed_jobs.contains(job) {
            merged.removed_jobs.push(job.clone());
        }
    }
    (merged != *ours).then_some(merged)
}

/// The tenant of a `runs` key (`job 0x00 slot-BE tenant`) and its job and slot.
fn split_run_key(key: &[u8]) -> Option<(&str, i64, &str)> {
    let zero = key.iter().position(|b| *b == 0)?;
    let slot = key.get(zero + 1..zero + 9)?;
    let job = std::str::from_utf8(key.get(..zero)?).ok()?;
    let tenant = std::str::from_utf8(key.get(zero + 9..)?).ok()?;
    Some((job, from_be(slot)? as i64, tenant))
}

/// The bare, lower-case addresses a record's deliveries went to.
fn delivered_to(rec: &ArchiveRecord) -> impl Iterator<Item = String> + '_ {
    let resent = rec.resends.iter().flat_map(|r| r.recipients.iter());
    rec.recipients.iter().chain(resent).chain(rec.delivered.keys()).map(|m| crate::recipients::bare(m))
}

impl DeliveryStore {
    /// `tenant`'s part of the store (see the module docs), from one read transaction.
    /// `job_addresses`: the addresses of the jobs covering the tenant, bare and lower-case.
    pub fn tenant_delivery(&self, tenant: &str, job_addresses: &BTreeSet<String>) -> Result<TenantDelivery, DeliveryStoreError> {
        let rtxn = self.env.read_txn().map_err(self.err())?;
        let mut out = TenantDelivery::default();
        for item in self.archive.iter(&rtxn).map_err(self.err())? {
            let rec: ArchiveRecord = decode(names::ARCHIVE, item.map_err(self.err())?.1)?;
            if rec.tenant == tenant {
                out.reports.push(rec);
            }
        }
        for item in self.runs.iter(&rtxn).map_err(self.err())? {
            let (k, v) = item.map_err(self.err())?;
            let corrupt = || DeliveryStoreError::Corrupt { db: names::RUNS, detail: "bad key or value".into() };
            let (job, slot_ms, of) = split_run_key(k).ok_or_else(corrupt)?;
            if of == tenant {
                out.runs.push(Run { job: job.to_owned(), slot_ms, id: from_be(v).ok_or_else(corrupt)? });
            }
        }
        let mut addresses = job_addresses.clone();
        addresses.extend(out.reports.iter().flat_map(delivered_to));
        for address in &addresses {
            if let Some(v) = self.recipients.get(&rtxn, address.as_bytes()).map_err(self.err())? {
                out.recipients.push(decode(names::RECIPIENTS, v)?);
            }
        }
        for item in self.consent.iter(&rtxn).map_err(self.err())? {
            let event: ConsentEvent = decode(names::CONSENT, item.map_err(self.err())?.1)?;
            if addresses.contains(&event.address) {
                out.consent.push(event);
            }
        }
        Ok(out)
    }

    /// Merges `incoming`, the part of `tenant` exported from shard `shard`, in one write
    /// transaction (see the module docs). The records' file names must be those of the files
    /// as stored here.
    pub fn import_tenant(&self, tenant: &str, shard: &str, incoming: TenantDelivery) -> Result<DeliveryMerge, DeliveryStoreError> {
        let mut wtxn = self.env.write_txn().map_err(self.err())?;
        let mut merge = DeliveryMerge::default();
        let ids = self.import_reports(&mut wtxn, tenant, incoming.reports, &mut merge)?;
        for run in incoming.runs {
            let Some(id) = ids.get(&run.id) else {
                return Err(DeliveryStoreError::Corrupt {
                    db: names::RUNS,
                    detail: format!("run of report {}, which is not imported", run.id),
                });
            };
            let key = run_key(&run.job, run.slot_ms, tenant);
            if self.runs.get(&wtxn, &key).map_err(self.err())?.is_some() {
                merge.runs_kept += 1;
            } else {
                self.runs.put(&mut wtxn, &key, &be(*id)).map_err(self.err())?;
                merge.runs += 1;
            }
        }
        for theirs in incoming.recipients {
            let key = theirs.address.to_lowercase();
            let merged = match self.recipients.get(&wtxn, key.as_bytes()).map_err(self.err())? {
                None => {
                    merge.recipients += 1;
                    Some(Recipient { address: key.clone(), ..theirs })
                }
                Some(v) => merge_recipient(&decode(names::RECIPIENTS, v)?, &theirs).inspect(|_| merge.recipients_changed += 1),
            };
            if let Some(rec) = merged {
                self.recipients.put(&mut wtxn, key.as_bytes(), &encode(names::RECIPIENTS, &rec)?).map_err(self.err())?;
            }
        }
        merge.consent = self.append_consent(&mut wtxn, shard, incoming.consent)?;
        wtxn.commit().map_err(self.err())?;
        Ok(merge)
    }

    /// Adds the records not here yet; returns every record's id here by its id in the file.
    fn import_reports(
        &self,
        wtxn: &mut heed::RwTxn<'_>,
        tenant: &str,
        reports: Vec<ArchiveRecord>,
        merge: &mut DeliveryMerge,
    ) -> Result<HashMap<u64, u64>, DeliveryStoreError> {
        let mut here = HashMap::new();
        for item in self.archive.iter(wtxn).map_err(self.err())? {
            let rec: ArchiveRecord = decode(names::ARCHIVE, item.map_err(self.err())?.1)?;
            if rec.tenant == tenant {
                here.insert((rec.job, rec.slot_ms, rec.created_ms), rec.id);
            }
        }
        let mut ids = HashMap::new();
        for mut rec in reports {
            if let Some(id) = here.get(&(rec.job.clone(), rec.slot_ms, rec.created_ms)) {
                ids.insert(rec.id, *id);
                merge.reports_kept += 1;
                continue;
            }
            let taken = self.archive.get(wtxn, &be(rec.id)).map_err(self.err())?.is_some()
                || self.moved.get(wtxn, &be(rec.id)).map_err(self.err())?.is_some();
            let id = if taken { self.next_report_id(wtxn)? } else { rec.id };
            if taken {
                merge.remapped.push((rec.id, id));
            }
            ids.insert(rec.id, id);
            rec.id = id;
            self.archive.put(wtxn, &be(id), &encode(names::ARCHIVE, &rec)?).map_err(self.err())?;
            merge.reports += 1;
        }
        Ok(ids)
    }

    /// Appends the consent entries not logged already, marked as coming from `shard`.
    fn append_consent(&self, wtxn: &mut heed::RwTxn<'_>, shard: &str, events: Vec<ConsentEvent>) -> Result<u64, DeliveryStoreError> {
        let addresses: HashSet<&str> = events.iter().map(|e| e.address.as_str()).collect();
        let mut logged = HashSet::new();
        for item in self.consent.iter(wtxn).map_err(self.err())? {
            let e: ConsentEvent = decode(names::CONSENT, item.map_err(self.err())?.1)?;
            if addresses.contains(e.address.as_str()) {
                logged.insert(e);
            }
        }
        let mut seq = match self.consent.last(wtxn).map_err(self.err())? {
            Some((k, _)) => from_be(k).ok_or_else(|| DeliveryStoreError::Corrupt { db: names::CONSENT, detail: "short key".into() })?,
            None => 0,
        };
        let mut added = 0;
        for mut e in events {
            e.source = format!("shard {shard}: {}", e.source);
            if logged.contains(&e) {
                continue;
            }
            seq += 1;
            self.consent.put(wtxn, &be(seq), &encode(names::CONSENT, &e)?).map_err(self.err())?;
            logged.insert(e);
            added += 1;
        }
        Ok(added)
    }

    /// Removes `tenant`'s archive records and runs entries in one write transaction, keeping
    /// each id in `moved` (with `to`, the shard the tenant went to) so it is never reused.
    /// Returns the removed records; their files are the caller's to delete. Recipients stay:
    /// other tenants' jobs may name the same addresses.
    pub fn delete_tenant(&self, tenant: &str, to: Option<&str>, now_ms: i64) -> Result<Vec<ArchiveRecord>, DeliveryStoreError> {
        let mut wtxn = self.env.write_txn().map_err(self.err())?;
        let mut gone = Vec::new();
        for item in self.archive.iter(&wtxn).map_err(self.err())? {
            let rec: ArchiveRecord = decode(names::ARCHIVE, item.map_err(self.err())?.1)?;
            if rec.tenant == tenant {
                gone.push(rec);
            }
        }
        let moved = MovedReport { tenant: tenant.to_owned(), moved_ms: now_ms, to: to.map(str::to_owned) };
        let moved = encode(names::MOVED, &moved)?;
        for rec in &gone {
            self.archive.delete(&mut wtxn, &be(rec.id)).map_err(self.err())?;
            self.moved.put(&mut wtxn, &be(rec.id), &moved).map_err(self.err())?;
        }
        let mut runs = Vec::new();
        for item in self.runs.iter(&wtxn).map_err(self.err())? {
            let k = item.map_err(self.err())?.0;
            if split_run_key(k).is_some_and(|(_, _, of)| of == tenant) {
                runs.push(k.to_vec());
            }
        }
        for k in runs {
            self.runs.delete(&mut wtxn, &k).map_err(self.err())?;
        }
        wtxn.commit().map_err(self.err())?;
        Ok(gone)
    }

    /// Every archive file name the records of tenants other than `tenant` use.
    pub fn files_of_others(&self, tenant: &str) -> Result<BTreeSet<String>, DeliveryStoreError> {
        let mut out = BTreeSet::new();
        for rec in self.reports()?.into_iter().filter(|r| r.tenant != tenant) {
            out.extend(rec.editions.into_iter().map(|e| e.file));
            out.insert(rec.file);
        }
        Ok(out)
    }
}

/// Every file a record names: `file` and its editions', each once.
pub fn files_of(rec: &ArchiveRecord) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for f in std::iter::once(&rec.file).chain(rec.editions.iter().map(|e| &e.file)) {
        if !out.contains(f) {
            out.push(f.clone());
        }
    }
    out
}

/// Renames the files `rec` names by `names` (name in the export file -> name here).
pub fn renamed(rec: &mut ArchiveRecord, names: &BTreeMap<String, String>) {
    if let Some(n) = names.get(&rec.file) {
        rec.file = n.clone();
    }
    for e in &mut rec.editions {
        if let Some(n) = names.get(&e.file) {
            e.file = n.clone();
        }
    }
}
