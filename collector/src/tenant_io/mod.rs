//! `tenant export` / `tenant import`: one tenant's stored data in one file, to move the tenant
//! to another shard.
//!
//! # The file
//!
//! ```text
//! "AMPELTNT" | version u32 BE | frame* | SHA-256 of every byte before it (32 bytes)
//! frame = length u32 BE (at most MAX_FRAME) | CBOR of a Frame
//! frames: Header, then the tenant's Items (devices first), then its delivery part, then End
//!         with the counts
//! delivery part (version 2): per archive record, each of its PDF files not sent before and
//!         the mail summary beside it (`<pdf>.summary`) as File (name, size) and Pieces of at
//!         most FILE_PIECE bytes, then the Report; then the Runs, Recipients and Consent entries
//! ```
//!
//! Version 1 files (no delivery part) still import. The delivery part is what
//! [`DeliveryStore::tenant_delivery`] returns; how it merges is documented there
//! (`schedule/store/transfer.rs`). A PDF travels in pieces, so no frame grows past
//! [`MAX_FRAME`] and neither side holds a whole PDF in memory.
//!
//! One stream of length-prefixed CBOR frames rather than a tar of files: the data is one
//! sequence of records with nothing to address by name, the store and the wire already speak
//! CBOR, and a length prefix lets the reader refuse an oversized record before reading it. The
//! counts and the checksum come last so that the export is written in one pass from one
//! snapshot, without holding the tenant in memory; the version comes first, so a file of another
//! version is refused before anything of it is decoded.
//!
//! An import reads the file three times: first it checks all of it (version, tenant, that every
//! frame decodes and comes in order, counts, checksum) without touching anything; then it
//! applies the items to the store in one write transaction, and then the delivery part to the
//! delivery store in another, each pass checking the checksum again at its end, so that a file
//! damaged or changed in between aborts that pass (the PDF files it placed are removed). A
//! damaged or foreign file changes nothing. The two stores are separate LMDB environments, so
//! the two transactions are not one: should the second fail, importing the file again
//! completes it (both merges are idempotent).

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use ampel_protocol::TenantId;
use serde::{Deserialize, Serialize};

pub mod command;
mod piece;

use piece::Piece;

use crate::archive::{Archive, ArchiveError, Incoming, alternatives, summary_name};
use crate::schedule::store::{DeliveryMerge, Run, TenantDelivery, files_of, renamed};
use crate::schedule::{ArchiveRecord, ConsentEvent, DeliveryStore, DeliveryStoreError, Recipient};
use crate::store::transfer::{ExportError, Item, TransferCounts};
use crate::store::{Store, StoreError};

/// The file's first bytes.
pub const MAGIC: &[u8; 8] = b"AMPELTNT";
/// The format this version writes.
pub const VERSION: u32 = 2;
/// The formats this version reads: 1 had no delivery part.
pub const READS: [u32; 2] = [1, 2];
/// Largest frame accepted (an item holds at most 65,536 points or buckets).
pub const MAX_FRAME: u32 = 16 << 20;
/// Bytes of a PDF per frame: a quarter of [`MAX_FRAME`], leaving room for the encoding.
pub const FILE_PIECE: u64 = 4 << 20;

/// A collector's delivery side, which a tenant's move takes along besides the store: the
/// delivery store (`<data-dir>/delivery/`) and the report archive (`<data-dir>/archive/`).
#[derive(Debug, Clone, Copy)]
pub struct Delivery<'a> {
    /// The delivery store.
    pub store: &'a DeliveryStore,
    /// The archive directory.
    pub archive: &'a Archive,
}

/// What the file says about itself, first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    /// The tenant.
    pub tenant: TenantId,
    /// The shard it was exported from (`[cluster] shard`), if any.
    pub shard: Option<String>,
    /// When the export began, Unix ms.
    pub created_ms: i64,
}

/// The counts of an export, last.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    /// Items.
    pub items: u64,
    /// Devices.
    pub devices: u64,
    /// Points.
    pub points: u64,
    /// Rollup buckets.
    pub buckets: u64,
    /// Alerts.
    pub alerts: u64,
    /// State history entries.
    pub states: u64,
    /// Archive records (version 2).
    #[serde(default)]
    pub reports: u64,
    /// `runs` entries (version 2).
    #[serde(default)]
    pub runs: u64,
    /// PDF files (version 2).
    #[serde(default)]
    pub files: u64,
    /// Their bytes (version 2).
    #[serde(default)]
    pub file_bytes: u64,
    /// Recipient records (version 2).
    #[serde(default)]
    pub recipients: u64,
    /// Consent log entries (version 2).
    #[serde(default)]
    pub consent: u64,
}

#[derive(Debug, Serialize, Deserialize)]
enum Frame {
    Header(Header),
    Item(Box<Item>),
    End(Totals),
    /// An archive file; `size` bytes of it follow in [`Frame::Piece`]s.
    File {
        name: String,
        size: u64,
    },
    Piece(Piece),
    Report(Box<ArchiveRecord>),
    Run(Run),
    Recipient(Recipient),
    Consent(ConsentEvent),
}

/// Why an export or import failed.
#[derive(Debug, thiserror::Error)]
pub enum TenantIoError {
    /// The file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file does not start like a tenant export.
    #[error("{}: not an ampel tenant export", path.display())]
    NotAnExport {
        /// The file.
        path: PathBuf,
    },
    /// The file is of a format version this collector does not read.
    #[error("{}: tenant export format {found}; this collector reads formats {READS:?}", path.display())]
    ForeignVersion {
        /// The file.
        path: PathBuf,
        /// The version in the file.
        found: u32,
    },
    /// The file is damaged: truncated, a frame that does not decode, wrong counts or checksum.
    #[error("{}: damaged at byte {offset}: {what}", path.display())]
    Damaged {
        /// The file.
        path: PathBuf,
        /// Where reading stopped.
        offset: u64,
        /// What was wrong.
        what: Damage,
    },
    /// The store refused.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The delivery store failed.
    #[error(transparent)]
    Delivery(#[from] DeliveryStoreError),
    /// A report file could not be read or placed.
    #[error(transparent)]
    Archive(#[from] ArchiveError),
}

/// What is wrong with a damaged file.
#[derive(Debug, thiserror::Error)]
pub enum Damage {
    /// It ends before its checksum.
    #[error("the file ends early")]
    Truncated,
    /// A frame is longer than [`MAX_FRAME`].
    #[error("a frame of {0} bytes (at most {MAX_FRAME})")]
    Oversized(u32),
    /// A frame does not decode.
    #[error("a frame does not decode")]
    Decode(#[source] serde_cbor::Error),
    /// Frames out of order (no header first, a second header, items after the end).
    #[error("frames out of order")]
    Order,
    /// The end's counts do not match the items.
    #[error("the counts at the end do not match the items")]
    Counts,
    /// The checksum does not match.
    #[error("the SHA-256 does not match")]
    Checksum,
    /// Bytes after the checksum.
    #[error("bytes after the checksum")]
    Trailing,
    /// An archive record of another tenant than the header's.
    #[error("an archive record of tenant {0}")]
    Foreign(String),
    /// A file name the archive would not make.
    #[error("the archive file name {0:?}")]
    FileName(String),
    /// A `runs` entry of a report not in the file.
    #[error("a run of report {0}, which the file does not hold")]
    Dangling(u64),
}

/// Writes frames and hashes what it writes.
struct FrameWriter<W: Write> {
    out: W,
    hash: ring::digest::Context,
}

impl<W: Write> FrameWriter<W> {
    fn bytes(&mut self, b: &[u8]) -> std::io::Result<()> {
        self.hash.update(b);
        self.out.write_all(b)
    }

    fn frame(&mut self, f: &Frame) -> std::io::Result<()> {
        let body = serde_cbor::to_vec(f).map_err(std::io::Error::other)?;
        let len = u32::try_from(body.len()).ok().filter(|l| *l <= MAX_FRAME).ok_or_else(|| std::io::Error::other("frame too large"))?;
        self.bytes(&len.to_be_bytes())?;
        self.bytes(&body)
    }

    fn finish(mut self) -> std::io::Result<W> {
        let sum = self.hash.finish();
        self.out.write_all(sum.as_ref())?;
        self.out.flush()?;
        Ok(self.out)
    }
}

/// What an export wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exported {
    /// The counts, as in the file.
    pub totals: Totals,
    /// Archive files the records name that are not on disk here: the records travel
    /// without them (their downloads fail on either shard alike).
    pub missing: Vec<String>,
}

/// Writes `tenant`'s data in `store` and `delivery` to `out` (created; an existing file is
/// refused), through a temporary file renamed into place, so `out` is complete or absent.
/// `job_addresses`: the bare, lower-case addresses of this collector's jobs covering the
/// tenant, whose opt-in states travel with it (besides those its reports went to).
pub fn export(
    store: &Store,
    delivery: Delivery<'_>,
    job_addresses: &BTreeSet<String>,
    tenant: &TenantId,
    shard: Option<&str>,
    now_ms: i64,
    out: &Path,
) -> Result<Exported, TenantIoError> {
    let io = |source| TenantIoError::Io { path: out.to_owned(), source };
    let mut partial = out.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    let file = std::fs::OpenOptions::new().write(true).create_new(true).open(&partial).map_err(io)?;
    let header = Header { tenant: tenant.clone(), shard: shard.map(str::to_owned), created_ms: now_ms };
    let result = write_export(store, delivery, job_addresses, header, file).and_then(|done| {
        if out.exists() {
            return Err(io(std::io::Error::new(std::io::ErrorKind::AlreadyExists, "exists already")));
        }
        std::fs::rename(&partial, out).map_err(io)?;
        Ok(done)
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    result
}

fn write_export(
    store: &Store,
    delivery: Delivery<'_>,
    job_addresses: &BTreeSet<String>,
    header: Header,
    file: File,
) -> Result<Exported, TenantIoError> {
    let path = store.path().to_owned();
    let io = |source| TenantIoError::Io { path: path.clone(), source };
    let tenant = header.tenant.clone();
    let mut w = FrameWriter { out: BufWriter::new(file), hash: ring::digest::Context::new(&ring::digest::SHA256) };
    w.bytes(MAGIC).map_err(io)?;
    w.bytes(&VERSION.to_be_bytes()).map_err(io)?;
    w.frame(&Frame::Header(header)).map_err(io)?;
    let mut items = 0u64;
    let counts = store
        .export_tenant(tenant.as_str(), &mut |item| {
            items += 1;
            w.frame(&Frame::Item(Box::new(item)))
        })
        .map_err(|e| match e {
            ExportError::Store(e) => TenantIoError::Store(e),
            ExportError::Write(source) => io(source),
        })?;
    let mut totals = totals_of(items, &counts);
    let part = delivery.store.tenant_delivery(tenant.as_str(), job_addresses)?;
    let missing = write_delivery(&mut w, delivery.archive, part, &mut totals).map_err(|e| match e {
        Written::Io(source) => io(source),
        Written::Archive(e) => TenantIoError::Archive(e),
    })?;
    w.frame(&Frame::End(totals)).map_err(io)?;
    let file = w.finish().map_err(io)?.into_inner().map_err(|e| io(e.into_error()))?;
    file.sync_all().map_err(io)?;
    Ok(Exported { totals, missing })
}

/// Why writing the delivery part failed: the export file, or reading a PDF.
enum Written {
    Io(std::io::Error),
    Archive(ArchiveError),
}

impl From<std::io::Error> for Written {
    fn from(e: std::io::Error) -> Written {
        Written::Io(e)
    }
}

/// Writes the delivery part (see the module docs); returns the files not found on disk.
fn write_delivery<W: Write>(
    w: &mut FrameWriter<W>,
    archive: &Archive,
    part: TenantDelivery,
    t: &mut Totals,
) -> Result<Vec<String>, Written> {
    let (mut sent, mut missing) = (BTreeSet::new(), Vec::new());
    for rec in part.reports {
        // Each rendering, and the mail summary beside it that a resend puts in the body.
        for name in files_of(&rec).iter().flat_map(|f| [f.clone(), summary_name(f)]) {
            if sent.insert(name.clone()) && !write_file(w, archive, &name, t)? {
                missing.push(name);
            }
        }
        w.frame(&Frame::Report(Box::new(rec)))?;
        t.reports += 1;
    }
    for run in part.runs {
        w.frame(&Frame::Run(run))?;
        t.runs += 1;
    }
    for r in part.recipients {
        w.frame(&Frame::Recipient(r))?;
        t.recipients += 1;
    }
    for e in part.consent {
        w.frame(&Frame::Consent(e))?;
        t.consent += 1;
    }
    Ok(missing)
}

/// Writes one archive file in pieces; false if it is not on disk.
fn write_file<W: Write>(w: &mut FrameWriter<W>, archive: &Archive, name: &str, t: &mut Totals) -> Result<bool, Written> {
    let (mut f, size) = match archive.open(name) {
        Ok(opened) => opened,
        Err(ArchiveError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(Written::Archive(e)),
    };
    w.frame(&Frame::File { name: name.to_owned(), size })?;
    let mut left = size;
    let mut buf = vec![0u8; size.min(FILE_PIECE) as usize];
    while left > 0 {
        let n = left.min(FILE_PIECE) as usize;
        let piece = buf.get_mut(..n).unwrap_or_default();
        // A file shorter than it was a moment ago fails here rather than travelling cut.
        f.read_exact(piece)?;
        w.frame(&Frame::Piece(Piece(piece.to_vec())))?;
        left -= n as u64;
    }
    t.files += 1;
    t.file_bytes += size;
    Ok(true)
}

fn totals_of(items: u64, c: &TransferCounts) -> Totals {
    Totals { items, devices: c.devices, points: c.points, buckets: c.buckets, alerts: c.alerts, states: c.states, ..Totals::default() }
}

/// Reads a file frame by frame, hashing as it goes.
struct FrameReader {
    path: PathBuf,
    input: BufReader<File>,
    hash: ring::digest::Context,
    offset: u64,
    ended: bool,
}

impl FrameReader {
    /// Opens `path` and checks magic and version.
    fn open(path: &Path) -> Result<FrameReader, TenantIoError> {
        let file = File::open(path).map_err(|source| TenantIoError::Io { path: path.to_owned(), source })?;
        let mut r = FrameReader {
            path: path.to_owned(),
            input: BufReader::new(file),
            hash: ring::digest::Context::new(&ring::digest::SHA256),
            offset: 0,
            ended: false,
        };
        let mut head = [0u8; 12];
        if r.exact(&mut head).is_err() || &head[..8] != MAGIC {
            return Err(TenantIoError::NotAnExport { path: path.to_owned() });
        }
        let found = u32::from_be_bytes([head[8], head[9], head[10], head[11]]);
        if !READS.contains(&found) {
            return Err(TenantIoError::ForeignVersion { path: path.to_owned(), found });
        }
        Ok(r)
    }

    fn damaged(&self, what: Damage) -> TenantIoError {
        TenantIoError::Damaged { path: self.path.clone(), offset: self.offset, what }
    }

    fn exact(&mut self, buf: &mut [u8]) -> Result<(), TenantIoError> {
        match self.input.read_exact(buf) {
            Ok(()) => {
                self.hash.update(buf);
                self.offset += buf.len() as u64;
                Ok(())
            }
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err(self.damaged(Damage::Truncated)),
            Err(source) => Err(TenantIoError::Io { path: self.path.clone(), source }),
        }
    }

    /// The next frame; after [`Frame::End`], checks the checksum and the end of the file.
    fn next(&mut self) -> Result<Frame, TenantIoError> {
        if self.ended {
            return Err(self.damaged(Damage::Order));
        }
        let mut len = [0u8; 4];
        self.exact(&mut len)?;
        let len = u32::from_be_bytes(len);
        if len > MAX_FRAME {
            return Err(self.damaged(Damage::Oversized(len)));
        }
        let mut body = vec![0u8; len as usize];
        self.exact(&mut body)?;
        let frame: Frame = serde_cbor::from_slice(&body).map_err(|e| self.damaged(Damage::Decode(e)))?;
        if matches!(frame, Frame::End(_)) {
            self.ended = true;
            self.check_sum()?;
        }
        Ok(frame)
    }

    fn check_sum(&mut self) -> Result<(), TenantIoError> {
        let want = std::mem::replace(&mut self.hash, ring::digest::Context::new(&ring::digest::SHA256)).finish();
        let mut got = [0u8; 32];
        self.exact(&mut got)?;
        if got != want.as_ref() {
            return Err(self.damaged(Damage::Checksum));
        }
        let mut more = [0u8; 1];
        match self.input.read(&mut more) {
            Ok(0) => Ok(()),
            Ok(_) => Err(self.damaged(Damage::Trailing)),
            Err(source) => Err(TenantIoError::Io { path: self.path.clone(), source }),
        }
    }
}

/// Checks all of the file at `path` without touching any store: its header, the order of
/// its frames and its counts.
pub fn verify(path: &Path) -> Result<(Header, Totals), TenantIoError> {
    let mut r = FrameReader::open(path)?;
    let Frame::Header(header) = r.next()? else { return Err(r.damaged(Damage::Order)) };
    let mut check = Check { tenant: header.tenant.as_str().to_owned(), ..Check::default() };
    loop {
        match r.next()? {
            Frame::End(totals) if check.file_left == 0 => {
                if totals != check.seen {
                    return Err(r.damaged(Damage::Counts));
                }
                return Ok((header, totals));
            }
            frame => check.frame(frame).map_err(|what| r.damaged(what))?,
        }
    }
}

/// What [`verify`] has seen so far.
#[derive(Default)]
struct Check {
    tenant: String,
    seen: Totals,
    /// Bytes still to come of the file being sent.
    file_left: u64,
    files: BTreeSet<String>,
    reports: BTreeSet<u64>,
}

impl Check {
    fn frame(&mut self, frame: Frame) -> Result<(), Damage> {
        let t = &mut self.seen;
        match frame {
            Frame::Piece(p) => {
                self.file_left = self.file_left.checked_sub(p.0.len() as u64).filter(|_| !p.0.is_empty()).ok_or(Damage::Order)?;
                return Ok(());
            }
            _ if self.file_left > 0 => return Err(Damage::Order),
            Frame::Header(_) | Frame::End(_) => return Err(Damage::Order),
            Frame::Item(item) => count_item(t, &item),
            Frame::File { name, size } => {
                crate::archive::check(&name).map_err(|_| Damage::FileName(name.clone()))?;
                if !self.files.insert(name) {
                    return Err(Damage::Order);
                }
                (self.file_left, t.files, t.file_bytes) = (size, t.files + 1, t.file_bytes + size);
            }
            Frame::Report(rec) if rec.tenant != self.tenant => return Err(Damage::Foreign(rec.tenant)),
            Frame::Report(rec) => {
                if !self.reports.insert(rec.id) {
                    return Err(Damage::Order);
                }
                t.reports += 1;
            }
            Frame::Run(run) if !self.reports.contains(&run.id) => return Err(Damage::Dangling(run.id)),
            Frame::Run(_) => t.runs += 1,
            Frame::Recipient(_) => t.recipients += 1,
            Frame::Consent(_) => t.consent += 1,
        }
        Ok(())
    }
}

fn count_item(t: &mut Totals, item: &Item) {
    t.items += 1;
    match item {
        Item::Device { .. } => t.devices += 1,
        Item::Points { points, .. } => t.points += points.len() as u64,
        Item::Rollups { buckets, .. } => t.buckets += buckets.len() as u64,
        Item::Alert { .. } => t.alerts += 1,
        Item::State { .. } => t.states += 1,
        Item::Seqs { .. } | Item::AlertCount { .. } => {}
    }
}

/// The items of a verified file, for [`Store::import_tenant`]; the checksum is checked again
/// when the end is reached, so a file changed since [`verify`] fails the transaction.
struct Items {
    reader: Option<FrameReader>,
    /// An error to hand over first (the file no longer opens as it did).
    failed: Option<TenantIoError>,
}

impl Items {
    fn of(path: &Path) -> Items {
        let opened = FrameReader::open(path).and_then(|mut r| match r.next()? {
            Frame::Header(_) => Ok(r),
            _ => Err(r.damaged(Damage::Order)),
        });
        match opened {
            Ok(r) => Items { reader: Some(r), failed: None },
            Err(e) => Items { reader: None, failed: Some(e) },
        }
    }
}

impl Iterator for Items {
    type Item = Result<Item, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        let boxed = |e: TenantIoError| StoreError::ImportSource(Box::new(e));
        if let Some(e) = self.failed.take() {
            return Some(Err(boxed(e)));
        }
        let r = self.reader.as_mut()?;
        let next = loop {
            match r.next() {
                Ok(Frame::Item(item)) => return Some(Ok(*item)),
                Ok(Frame::End(_)) => break None,
                Ok(Frame::Header(_)) => break Some(Err(boxed(r.damaged(Damage::Order)))),
                // The delivery part: the next pass's.
                Ok(_) => {}
                Err(e) => break Some(Err(boxed(e))),
            }
        };
        self.reader = None;
        next
    }
}

/// What an import did.
#[derive(Debug, Clone)]
pub struct Imported {
    /// The file's header.
    pub header: Header,
    /// What the file held.
    pub totals: Totals,
    /// What was new to the store (the rest was there already).
    pub added: TransferCounts,
    /// What the delivery part did.
    pub delivery: DeliveryImported,
}

/// What the delivery part of an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryImported {
    /// The delivery store's merge.
    pub merge: DeliveryMerge,
    /// PDF files placed in the archive.
    pub files: u64,
    /// PDF files found there already with the same bytes.
    pub files_kept: u64,
    /// (name in the file, name here) of files placed under another name, because a
    /// different file of that name was here.
    pub renamed: Vec<(String, String)>,
}

/// Imports the export at `path` into `store` and `delivery`: checks all of it first, then
/// applies it (see the module docs). Importing the same file again adds nothing. The caller
/// holds the store's writer lock ([`Store::import_tenant`]), which also keeps a second import
/// from placing files meanwhile: a temporary file found in the archive is a crash's leftover.
pub fn import(store: &Store, delivery: Delivery<'_>, path: &Path) -> Result<Imported, TenantIoError> {
    let (header, totals) = verify(path)?;
    let added = store.import_tenant(&header.tenant, || Items::of(path))?;
    let delivery = import_delivery(delivery, path, &header)?;
    Ok(Imported { header, totals, added, delivery })
}

/// The delivery pass: places the files (removing them again if the pass fails), then merges
/// the records into the delivery store in one transaction.
fn import_delivery(delivery: Delivery<'_>, path: &Path, header: &Header) -> Result<DeliveryImported, TenantIoError> {
    let shard = header.shard.as_deref().unwrap_or("unnamed");
    delivery.archive.clear_incoming()?;
    let mut placed = Placed { alt: format!("from-{shard}"), ..Placed::default() };
    let merged = read_delivery(delivery.archive, path, &mut placed).and_then(|mut part| {
        part.reports.iter_mut().for_each(|rec| renamed(rec, &placed.names));
        Ok(delivery.store.import_tenant(header.tenant.as_str(), shard, part)?)
    });
    match merged {
        Ok(merge) => Ok(DeliveryImported { merge, files: placed.created.len() as u64, files_kept: placed.kept, renamed: placed.renamed }),
        Err(e) => {
            for name in &placed.created {
                if let Err(gone) = delivery.archive.remove(name) {
                    tracing::warn!(error = %gone, "could not remove a file of the failed import");
                }
            }
            Err(e)
        }
    }
}

/// The files a delivery pass placed.
#[derive(Default)]
struct Placed {
    /// Suffix of a name taken by another file (`from-<shard>`).
    alt: String,
    /// Name in the file -> name here, for every file.
    names: BTreeMap<String, String>,
    created: Vec<String>,
    kept: u64,
    renamed: Vec<(String, String)>,
}

impl Placed {
    /// The names a file arriving as `name` may take here: a mail summary follows its PDF
    /// (`<pdf here>.summary`, nothing else); a PDF takes its name or an alternative.
    fn names_for(&self, name: &str) -> Vec<String> {
        match name.strip_suffix(".summary") {
            Some(pdf) => vec![self.names.get(pdf).map_or_else(|| name.to_owned(), |here| summary_name(here))],
            None => alternatives(name, &self.alt).collect(),
        }
    }
}

/// Reads the delivery part, placing each file as it completes.
fn read_delivery(archive: &Archive, path: &Path, placed: &mut Placed) -> Result<TenantDelivery, TenantIoError> {
    let mut r = FrameReader::open(path)?;
    let Frame::Header(_) = r.next()? else { return Err(r.damaged(Damage::Order)) };
    let mut part = TenantDelivery::default();
    let mut arriving: Option<(String, u64, Incoming)> = None;
    loop {
        match r.next()? {
            Frame::File { name, size } if arriving.is_none() => {
                arriving = Some((name, size, archive.incoming()?));
            }
            Frame::Piece(p) => {
                let Some((_, left, incoming)) = arriving.as_mut() else { return Err(r.damaged(Damage::Order)) };
                *left = left.checked_sub(p.0.len() as u64).ok_or_else(|| r.damaged(Damage::Order))?;
                incoming.write(&p.0)?;
            }
            Frame::Header(_) | Frame::File { .. } => return Err(r.damaged(Damage::Order)),
            _ if arriving.as_ref().is_some_and(|a| a.1 > 0) => return Err(r.damaged(Damage::Order)),
            Frame::Item(_) => {}
            Frame::Report(rec) => part.reports.push(*rec),
            Frame::Run(run) => part.runs.push(run),
            Frame::Recipient(rec) => part.recipients.push(rec),
            Frame::Consent(e) => part.consent.push(e),
            Frame::End(_) => return Ok(part),
        }
        if let Some((name, _, incoming)) = arriving.take_if(|a| a.1 == 0) {
            let settled = archive.settle(incoming, placed.names_for(&name))?;
            if settled.created {
                placed.created.push(settled.name.clone());
            } else {
                placed.kept += 1;
            }
            if settled.name != name {
                placed.renamed.push((name.clone(), settled.name.clone()));
            }
            placed.names.insert(name, settled.name);
        }
    }
}

/// What [`delete_archive`] removed of the tenant's delivery part.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ArchiveRemoved {
    /// Archive records (their ids are kept as moved, never given again).
    pub reports: u64,
    /// PDF files (each with its mail summary).
    pub files: u64,
}

/// Removes `tenant`'s archive records, runs and PDF files (after a move, the old shard's
/// copy; `to`: the shard it went to, shown by its old download links). The recipients'
/// opt-in states stay: other tenants' jobs may name the same addresses.
pub fn delete_archive(delivery: Delivery<'_>, tenant: &TenantId, to: Option<&str>, now_ms: i64) -> Result<ArchiveRemoved, TenantIoError> {
    let gone = delivery.store.delete_tenant(tenant.as_str(), to, now_ms)?;
    let others = delivery.store.files_of_others(tenant.as_str())?;
    let mut removed = ArchiveRemoved { reports: gone.len() as u64, files: 0 };
    let files: BTreeSet<String> = gone.iter().flat_map(files_of).filter(|f| !others.contains(f)).collect();
    for name in files {
        delivery.archive.remove(&name)?;
        delivery.archive.remove(&summary_name(&name))?;
        removed.files += 1;
    }
    Ok(removed)
}

#[cfg(test)]
mod tests;
