//! The delivery store: a small LMDB environment of its own at `<data-dir>/delivery/`, apart
//! from the main time-series store (so the two can change format independently), holding the
//! scheduler cursors, the recipients and their consent log, and the report archive index.
//!
//! Databases (names are the consts in [`names`]); values are JSON, keys are laid out as named:
//!
//! | db | key | value |
//! | --- | --- | --- |
//! | `cursors` | job name (UTF-8) | slot ms, `u64` big-endian |
//! | `recipients` | lower-case address (UTF-8) | [`Recipient`] |
//! | `consent` | sequence, `u64` big-endian | [`ConsentEvent`] |
//! | `archive` | report id, `u64` big-endian | [`ArchiveRecord`] |
//! | `runs` | job, `0x00`, slot ms `u64` BE, tenant | report id, `u64` BE |
//! | `moved` | report id, `u64` BE | [`MovedReport`] |
//!
//! `moved` keeps the ids of reports that left with their tenant (`tenant delete` after a
//! move): such an id is never given to another report, so a download link mailed before the
//! move can never fetch another tenant's report, and the link's page says where it went.
//!
//! Transactions are short and never held across `.await`. The store is only written by the
//! scheduler task, the HTTP handlers and the CLI, all rare; LMDB serialises them.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use heed::types::Bytes;
use heed::{Database, Env, EnvOpenOptions};
use serde::{Deserialize, Serialize};

use crate::report::Edition;

mod transfer;

pub use transfer::{DeliveryMerge, Run, TenantDelivery, files_of, merge_recipient, renamed};

/// Database names.
pub mod names {
    /// Scheduler cursors.
    pub const CURSORS: &str = "cursors";
    /// Recipients and their opt-in state.
    pub const RECIPIENTS: &str = "recipients";
    /// Consent log.
    pub const CONSENT: &str = "consent";
    /// Report archive records.
    pub const ARCHIVE: &str = "archive";
    /// (job, slot, tenant) -> report id.
    pub const RUNS: &str = "runs";
    /// Report id -> where the report went (ids of reports moved away).
    pub const MOVED: &str = "moved";
}

/// Map size of the delivery environment. Records are a few hundred bytes; the PDFs live in
/// files, so 1 GiB (sparse) holds millions of reports.
const MAP_SIZE: usize = 1 << 30;

type Db = Database<'static, Bytes, Bytes>;

/// Why the delivery store failed.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryStoreError {
    /// The directory could not be created.
    #[error("cannot create {}: {source}", path.display())]
    Dir {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// LMDB failed.
    #[error("delivery store {}: {source}", path.display())]
    Lmdb {
        /// The directory.
        path: PathBuf,
        /// What LMDB said.
        source: heed::Error,
    },
    /// A record could not be decoded (written by a newer version, or damaged).
    #[error("delivery store: damaged record in {db}: {detail}")]
    Corrupt {
        /// The database.
        db: &'static str,
        /// What is wrong.
        detail: String,
    },
}

/// Opt-in state of a recipient.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum RecipientState {
    /// Invited, not yet confirmed: gets no reports.
    Invited,
    /// Confirmed: gets reports.
    Confirmed,
    /// Unsubscribed: gets nothing, is not invited again by the scheduler.
    Unsubscribed,
    /// Invited and reminded, never confirmed: gets nothing, is not invited again by the
    /// scheduler (`recipients invite` does).
    Expired,
}

impl RecipientState {
    /// `invited`, `confirmed`, `unsubscribed` or `expired`.
    pub fn as_str(self) -> &'static str {
        match self {
            RecipientState::Invited => "invited",
            RecipientState::Confirmed => "confirmed",
            RecipientState::Unsubscribed => "unsubscribed",
            RecipientState::Expired => "expired",
        }
    }
}

/// A recipient known to the collector.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Recipient {
    /// Lower-case address.
    pub address: String,
    /// Current state.
    pub state: RecipientState,
    /// When the first invitation went out (Unix ms).
    pub invited_ms: i64,
    /// When the state last changed (Unix ms).
    pub changed_ms: i64,
    /// When the one reminder went out, if it did.
    #[serde(default)]
    pub reminded_ms: Option<i64>,
    /// Jobs whose reports this address no longer gets (`recipients remove --job`).
    #[serde(default)]
    pub removed_jobs: Vec<String>,
}

/// One consent log entry: who, what, when, from where.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Hash)]
pub struct ConsentEvent {
    /// When (Unix ms).
    pub at_ms: i64,
    /// The address concerned.
    pub address: String,
    /// `invited`, `confirmed`, `unsubscribed`.
    pub event: String,
    /// Where from: the client's IP address for HTTP, `scheduler` or `cli`.
    pub source: String,
    /// Extra, e.g. `one-click` or the job that invited.
    pub detail: String,
}

/// Delivery status of an archived report.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum ArchiveStatus {
    /// Rendered and archived; delivery not finished (or interrupted).
    Pending,
    /// Accepted by the mail server (or written to the outbox).
    Sent,
    /// Every attempt failed; `last_error` says why.
    Failed,
    /// Archived only: no confirmed recipient.
    NoRecipients,
}

impl ArchiveStatus {
    /// For tables.
    pub fn as_str(self) -> &'static str {
        match self {
            ArchiveStatus::Pending => "pending",
            ArchiveStatus::Sent => "sent",
            ArchiveStatus::Failed => "failed",
            ArchiveStatus::NoRecipients => "no-recipients",
        }
    }
}

/// One archived report.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ArchiveRecord {
    /// Report id (key).
    pub id: u64,
    /// The job that made it (`cli` for a resend of none).
    pub job: String,
    /// The tenant.
    pub tenant: String,
    /// The slot (scheduled time, Unix ms).
    pub slot_ms: i64,
    /// Period start and end (Unix ms).
    pub period_start_ms: i64,
    /// Period end (Unix ms, exclusive).
    pub period_end_ms: i64,
    /// Period label, e.g. `week-2026-03-30`.
    pub period_label: String,
    /// When it was rendered (Unix ms).
    pub created_ms: i64,
    /// File name under `<data-dir>/archive/`.
    pub file: String,
    /// PDF size in bytes.
    pub bytes: u64,
    /// The tenant's light (`green`, `yellow`, `red`).
    pub light: String,
    /// The tenant's score.
    pub score: u8,
    /// Sent more than `late-after` after its slot.
    pub late: bool,
    /// `attachment` or `link`.
    pub mode: String,
    /// Confirmed recipients it went to (to and cc).
    pub recipients: Vec<String>,
    /// Delivery status.
    pub status: ArchiveStatus,
    /// Delivery attempts made.
    pub attempts: u32,
    /// The last delivery error, if any.
    pub last_error: Option<String>,
    /// Message-ID of the delivered mail.
    pub message_id: Option<String>,
    /// Why the PDF went as a link instead of attached (`mode = "link"`), e.g. the size limit.
    #[serde(default)]
    pub link_reason: Option<String>,
    /// Deliveries after the scheduled one (`report resend`), oldest first. The scheduled
    /// delivery stays as it was in the fields above.
    #[serde(default)]
    pub resends: Vec<Resend>,
    /// Every rendering of the report (language and depth, file, size), the job's own first
    /// (`file`). Empty in records of releases that rendered one: then `file` is the only one.
    #[serde(default)]
    pub editions: Vec<ArchivedEdition>,
    /// The edition each recipient got, by mailbox as in `recipients`; a recipient not listed
    /// got `file`.
    #[serde(default)]
    pub delivered: BTreeMap<String, Edition>,
}

/// One rendering of an archived report.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ArchivedEdition {
    /// Its language and depth.
    pub edition: Edition,
    /// File name under `<data-dir>/archive/`.
    pub file: String,
    /// PDF size in bytes.
    pub bytes: u64,
}

impl ArchiveRecord {
    /// The renderings: [`ArchiveRecord::editions`], or for a record of a release that
    /// rendered one, `file` as the edition `own` (the job's language and depth).
    pub fn renderings(&self, own: Edition) -> Vec<ArchivedEdition> {
        if self.editions.is_empty() {
            return vec![ArchivedEdition { edition: own, file: self.file.clone(), bytes: self.bytes }];
        }
        self.editions.clone()
    }
}

/// One `report resend` of an archived report: who asked, when, to whom, how, with what result.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Resend {
    /// When (Unix ms).
    pub at_ms: i64,
    /// Who asked: `cli` and the Unix user, e.g. `cli (root)`.
    pub by: String,
    /// `attachment` or `link`.
    pub mode: String,
    /// Why it went as a link, when it did.
    pub link_reason: Option<String>,
    /// The recipients it reached.
    pub recipients: Vec<String>,
    /// `sent` (everyone reached) or `failed` (someone not).
    pub status: ArchiveStatus,
    /// The last delivery error, if any.
    pub error: Option<String>,
}

/// A report that left this collector with its tenant (`tenant delete` after a move).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct MovedReport {
    /// Its tenant.
    pub tenant: String,
    /// When it was removed here (Unix ms).
    pub moved_ms: i64,
    /// The shard that owns the tenant now, as the shard map named it then.
    pub to: Option<String>,
}

/// The delivery store. Cheap to clone.
#[derive(Clone)]
pub struct DeliveryStore {
    env: Env,
    path: PathBuf,
    cursors: Db,
    recipients: Db,
    consent: Db,
    archive: Db,
    runs: Db,
    moved: Db,
}

impl std::fmt::Debug for DeliveryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeliveryStore").field("path", &self.path).finish_non_exhaustive()
    }
}

fn be(n: u64) -> [u8; 8] {
    n.to_be_bytes()
}

fn from_be(b: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(b.get(..8)?.try_into().ok()?))
}

fn run_key(job: &str, slot_ms: i64, tenant: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(job.len() + tenant.len() + 9);
    k.extend_from_slice(job.as_bytes());
    k.push(0);
    k.extend_from_slice(&(slot_ms as u64).to_be_bytes());
    k.extend_from_slice(tenant.as_bytes());
    k
}

fn decode<T: for<'a> Deserialize<'a>>(db: &'static str, bytes: &[u8]) -> Result<T, DeliveryStoreError> {
    serde_json::from_slice(bytes).map_err(|e| DeliveryStoreError::Corrupt { db, detail: e.to_string() })
}

fn encode<T: Serialize>(db: &'static str, value: &T) -> Result<Vec<u8>, DeliveryStoreError> {
    serde_json::to_vec(value).map_err(|e| DeliveryStoreError::Corrupt { db, detail: e.to_string() })
}

impl DeliveryStore {
    /// Opens (creating if needed) the environment in `dir` (normally `<data-dir>/delivery`).
    pub fn open(dir: &Path) -> Result<DeliveryStore, DeliveryStoreError> {
        crate::files::create_dir_all(dir).map_err(|source| DeliveryStoreError::Dir { path: dir.to_owned(), source })?;
        let lmdb = |source| DeliveryStoreError::Lmdb { path: dir.to_owned(), source };
        let mut options = EnvOpenOptions::new();
        options.map_size(MAP_SIZE).max_dbs(8).max_readers(64);
        // SAFETY: opened once per process (by `serve` or one CLI command); the directory is
        // touched by nothing but LMDB.
        #[allow(unsafe_code)]
        let env = unsafe { options.open(dir) }.map_err(lmdb)?;
        let wtxn = env.write_txn().map_err(lmdb)?;
        let dbs = env
            .create_databases_and_commit(wtxn, |opener, wtxn| -> Result<_, heed::Error> {
                let mut out = Vec::new();
                for name in [names::CURSORS, names::RECIPIENTS, names::CONSENT, names::ARCHIVE, names::RUNS, names::MOVED] {
                    out.push(opener.create_database::<Bytes, Bytes>(wtxn, Some(name))?);
                }
                let arr: [Database<'_, Bytes, Bytes>; 6] =
                    out.try_into().map_err(|_| heed::Error::Io(std::io::Error::other("database count")))?;
                Ok(heed::CommitOrAbort::<_, ()>::Commit(arr))
            })
            .map_err(lmdb)?;
        let heed::CommitOrAbort::Commit([cursors, recipients, consent, archive, runs, moved]) = dbs else {
            return Err(DeliveryStoreError::Corrupt { db: "cursors", detail: "database creation aborted".into() });
        };
        Ok(DeliveryStore { env, path: dir.to_owned(), cursors, recipients, consent, archive, runs, moved })
    }

    fn err(&self) -> impl Fn(heed::Error) -> DeliveryStoreError + '_ {
        move |source| DeliveryStoreError::Lmdb { path: self.path.clone(), source }
    }

    /// Whether a read transaction can be opened (for `/healthz`).
    pub fn healthy(&self) -> bool {
        self.env.read_txn().is_ok()
    }

    /// Every job's cursor (Unix ms).
    pub fn cursors(&self) -> Result<HashMap<String, i64>, DeliveryStoreError> {
        let rtxn = self.env.read_txn().map_err(self.err())?;
        let mut out = HashMap::new();
        for item in self.cursors.iter(&rtxn).map_err(self.err())? {
            let (k, v) = item.map_err(self.err())?;
            let ms = from_be(v).ok_or_else(|| DeliveryStoreError::Corrupt { db: names::CURSORS, detail: "short value".into() })?;
            out.insert(String::from_utf8_lossy(k).into_owned(), ms as i64);
        }
        Ok(out)
    }

    /// Sets a job's cursor: every slot up to `ms` is handled.
    pub fn set_cursor(&self, job: &str, ms: i64) -> Result<(), DeliveryStoreError> {
        let mut wtxn = self.env.write_txn().map_err(self.err())?;
        self.cursors.put(&mut wtxn, job.as_bytes(), &be(ms as u64)).map_err(self.err())?;
        wtxn.commit().map_err(self.err())
    }

    /// Sets the cursor of every job in `jobs` that has none yet.
    pub fn init_cursors(&self, jobs: &[&str], ms: i64) -> Result<(), DeliveryStoreError> {
        let mut wtxn = self.env.write_txn().map_err(self.err())?;
        for job in jobs {
            if self.cursors.get(&wtxn, job.as_bytes()).map_err(self.err())?.is_none() {
                self.cursors.put(&mut wtxn, job.as_bytes(), &be(ms as u64)).map_err(self.err())?;
            }
        }
        wtxn.commit().map_err(self.err())
    }

    /// A recipient by address (any case).
    pub fn recipient(&self, address: &str) -> Result<Option<Recipient>, DeliveryStoreError> {
        let rtxn = self.env.read_txn().map_err(self.err())?;
        match self.recipients.get(&rtxn, address.to_lowercase().as_bytes()).map_err(self.err())? {
            Some(v) => decode(names::RECIPIENTS, v).map(Some),
            None => Ok(None),
        }
    }

    /// All recipients, by address.
    pub fn recipients(&self) -> Result<Vec<Recipient>, DeliveryStoreError> {
        let rtxn = self.env.read_txn().map_err(self.err())?;
        let mut out = Vec::new();
        for item in self.recipients.iter(&rtxn).map_err(self.err())? {
            let (_, v) = item.map_err(self.err())?;
            out.push(decode(names::RECIPIENTS, v)?);
        }
        Ok(out)
    }

    /// Moves `address` to `state` (creating it), logging the change in the consent log in the
    /// same transaction. Returns the recipient as it was before, if known.
    pub fn set_recipient_state(
        &self,
        address: &str,
        state: RecipientState,
        event: ConsentEvent,
    ) -> Result<Option<Recipient>, DeliveryStoreError> {
        let at = event.at_ms;
        let address = address.to_lowercase();
        let mut before = None;
        self.update_recipient(&address, event, |old| {
            before = old.clone();
            let mut rec = old.unwrap_or_else(|| Recipient {
                address: address.clone(),
                state,
                invited_ms: at,
                changed_ms: at,
                reminded_ms: None,
                removed_jobs: Vec::new(),
            });
            rec.state = state;
            rec.changed_ms = at;
            Some(rec)
        })?;
        Ok(before)
    }

    /// Reads, changes and writes `address`'s record in one write transaction, logging `event`
    /// with it — so a confirmation arriving meanwhile over HTTP is never overwritten. `change`
    /// gets the record as it is (`None`: unknown) and returns the new one, or `None` to leave
    /// it (and log nothing). Returns the record written.
    pub fn update_recipient(
        &self,
        address: &str,
        event: ConsentEvent,
        change: impl FnOnce(Option<Recipient>) -> Option<Recipient>,
    ) -> Result<Option<Recipient>, DeliveryStoreError> {
        let address = address.to_lowercase();
        let mut wtxn = self.env.write_txn().map_err(self.err())?;
        let before: Option<Recipient> = match self.recipients.get(&wtxn, address.as_bytes()).map_err(self.err())? {
            Some(v) => Some(decode(names::RECIPIENTS, v)?),
            None => None,
        };
        let Some(rec) = change(before) else { return Ok(None) };
        self.recipients.put(&mut wtxn, address.as_bytes(), &encode(names::RECIPIENTS, &rec)?).map_err(self.err())?;
        let seq = match self.consent.last(&wtxn).map_err(self.err())? {
            Some((k, _)) => from_be(k).unwrap_or(0) + 1,
            None => 1,
        };
        self.consent.put(&mut wtxn, &be(seq), &encode(names::CONSENT, &event)?).map_err(self.err())?;
        wtxn.commit().map_err(self.err())?;
        Ok(Some(rec))
    }

    /// The consent log, oldest first.
    pub fn consent_log(&self) -> Result<Vec<ConsentEvent>, DeliveryStoreError> {
        let rtxn = self.env.read_txn().map_err(self.err())?;
        let mut out = Vec::new();
        for item in self.consent.iter(&rtxn).map_err(self.err())? {
            let (_, v) = item.map_err(self.err())?;
            out.push(decode(names::CONSENT, v)?);
        }
        Ok(out)
    }

    /// Adds a report record under the next id (the id in `rec` is replaced) and indexes it by
    /// (job, slot, tenant). Returns the id.
    pub fn add_report(&self, mut rec: ArchiveRecord) -> Result<u64, DeliveryStoreError> {
        let mut wtxn = self.env.write_txn().map_err(self.err())?;
        let id = self.next_report_id(&wtxn)?;
        rec.id = id;
        self.archive.put(&mut wtxn, &be(id), &encode(names::ARCHIVE, &rec)?).map_err(self.err())?;
        self.runs.put(&mut wtxn, &run_key(&rec.job, rec.slot_ms, &rec.tenant), &be(id)).map_err(self.err())?;
        wtxn.commit().map_err(self.err())?;
        Ok(id)
    }

    /// The id after every report id in use or moved away: ids are never given twice.
    fn next_report_id(&self, txn: &heed::RoTxn<'_>) -> Result<u64, DeliveryStoreError> {
        let mut next = 1;
        for (db, name) in [(self.archive, names::ARCHIVE), (self.moved, names::MOVED)] {
            if let Some((k, _)) = db.last(txn).map_err(self.err())? {
                let id = from_be(k).ok_or_else(|| DeliveryStoreError::Corrupt { db: name, detail: "short key".into() })?;
                next = next.max(id + 1);
            }
        }
        Ok(next)
    }

    /// Where report `id` went, if it left with its tenant.
    pub fn moved_report(&self, id: u64) -> Result<Option<MovedReport>, DeliveryStoreError> {
        let rtxn = self.env.read_txn().map_err(self.err())?;
        match self.moved.get(&rtxn, &be(id)).map_err(self.err())? {
            Some(v) => decode(names::MOVED, v).map(Some),
            None => Ok(None),
        }
    }

    /// Replaces a report record (same id).
    pub fn update_report(&self, rec: &ArchiveRecord) -> Result<(), DeliveryStoreError> {
        let mut wtxn = self.env.write_txn().map_err(self.err())?;
        self.archive.put(&mut wtxn, &be(rec.id), &encode(names::ARCHIVE, rec)?).map_err(self.err())?;
        wtxn.commit().map_err(self.err())
    }

    /// A report by id.
    pub fn report(&self, id: u64) -> Result<Option<ArchiveRecord>, DeliveryStoreError> {
        let rtxn = self.env.read_txn().map_err(self.err())?;
        match self.archive.get(&rtxn, &be(id)).map_err(self.err())? {
            Some(v) => decode(names::ARCHIVE, v).map(Some),
            None => Ok(None),
        }
    }

    /// The report of (job, slot, tenant), if one was made.
    pub fn report_of_run(&self, job: &str, slot_ms: i64, tenant: &str) -> Result<Option<ArchiveRecord>, DeliveryStoreError> {
        let id = {
            let rtxn = self.env.read_txn().map_err(self.err())?;
            self.runs.get(&rtxn, &run_key(job, slot_ms, tenant)).map_err(self.err())?.and_then(from_be)
        };
        match id {
            Some(id) => self.report(id),
            None => Ok(None),
        }
    }

    /// All reports, oldest first.
    pub fn reports(&self) -> Result<Vec<ArchiveRecord>, DeliveryStoreError> {
        let rtxn = self.env.read_txn().map_err(self.err())?;
        let mut out = Vec::new();
        for item in self.archive.iter(&rtxn).map_err(self.err())? {
            let (_, v) = item.map_err(self.err())?;
            out.push(decode(names::ARCHIVE, v)?);
        }
        Ok(out)
    }
}
