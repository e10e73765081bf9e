//! `tenant export` / `tenant import`: one tenant's stored data in one file, to move the tenant
//! to another shard.
//!
//! # The file
//!
//! ```text
//! "AMPELTNT" | version u32 BE | frame* | SHA-256 of every byte before it (32 bytes)
//! frame = length u32 BE (at most MAX_FRAME) | CBOR of a Frame
//! frames: Header, then the tenant's Items (devices first), then End with the counts
//! ```
//!
//! One stream of length-prefixed CBOR frames rather than a tar of files: the data is one
//! sequence of records with nothing to address by name, the store and the wire already speak
//! CBOR, and a length prefix lets the reader refuse an oversized record before reading it. The
//! counts and the checksum come last so that the export is written in one pass from one
//! snapshot, without holding the tenant in memory; the version comes first, so a file of another
//! version is refused before anything of it is decoded.
//!
//! An import reads the file twice: first it checks all of it (version, tenant, that every frame
//! decodes, counts, checksum) without touching the store; then it applies the items in one
//! write transaction, checking the checksum again at the end, so that a file damaged or changed
//! in between aborts the transaction. A damaged or foreign file changes nothing.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use ampel_protocol::TenantId;
use serde::{Deserialize, Serialize};

pub mod command;

use crate::store::transfer::{ExportError, Item, TransferCounts};
use crate::store::{Store, StoreError};

/// The file's first bytes.
pub const MAGIC: &[u8; 8] = b"AMPELTNT";
/// The format this version writes and reads.
pub const VERSION: u32 = 1;
/// Largest frame accepted (an item holds at most 65,536 points or buckets).
pub const MAX_FRAME: u32 = 16 << 20;

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
}

#[derive(Debug, Serialize, Deserialize)]
enum Frame {
    Header(Header),
    Item(Box<Item>),
    End(Totals),
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
    #[error("{}: tenant export format {found}; this collector reads format {VERSION}", path.display())]
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

/// Writes `tenant`'s data in `store` to `out` (created; an existing file is refused), through a
/// temporary file renamed into place, so `out` is complete or absent.
pub fn export(store: &Store, tenant: &TenantId, shard: Option<&str>, now_ms: i64, out: &Path) -> Result<Totals, TenantIoError> {
    let io = |source| TenantIoError::Io { path: out.to_owned(), source };
    let mut partial = out.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    let file = std::fs::OpenOptions::new().write(true).create_new(true).open(&partial).map_err(io)?;
    let result = write_export(store, tenant, shard, now_ms, file).and_then(|totals| {
        if out.exists() {
            return Err(io(std::io::Error::new(std::io::ErrorKind::AlreadyExists, "exists already")));
        }
        std::fs::rename(&partial, out).map_err(io)?;
        Ok(totals)
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    result
}

fn write_export(store: &Store, tenant: &TenantId, shard: Option<&str>, now_ms: i64, file: File) -> Result<Totals, TenantIoError> {
    let path = store.path().to_owned();
    let io = |source| TenantIoError::Io { path: path.clone(), source };
    let mut w = FrameWriter { out: BufWriter::new(file), hash: ring::digest::Context::new(&ring::digest::SHA256) };
    w.bytes(MAGIC).map_err(io)?;
    w.bytes(&VERSION.to_be_bytes()).map_err(io)?;
    let header = Header { tenant: tenant.clone(), shard: shard.map(str::to_owned), created_ms: now_ms };
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
    let totals = totals_of(items, &counts);
    w.frame(&Frame::End(totals)).map_err(io)?;
    let file = w.finish().map_err(io)?.into_inner().map_err(|e| io(e.into_error()))?;
    file.sync_all().map_err(io)?;
    Ok(totals)
}

fn totals_of(items: u64, c: &TransferCounts) -> Totals {
    Totals { items, devices: c.devices, points: c.points, buckets: c.buckets, alerts: c.alerts, states: c.states }
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
        if found != VERSION {
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

/// Checks all of the file at `path` without touching any store: its header and counts.
pub fn verify(path: &Path) -> Result<(Header, Totals), TenantIoError> {
    let mut r = FrameReader::open(path)?;
    let Frame::Header(header) = r.next()? else { return Err(r.damaged(Damage::Order)) };
    let mut seen = Totals::default();
    loop {
        match r.next()? {
            Frame::Header(_) => return Err(r.damaged(Damage::Order)),
            Frame::Item(item) => count_item(&mut seen, &item),
            Frame::End(totals) => {
                if totals != seen {
                    return Err(r.damaged(Damage::Counts));
                }
                return Ok((header, totals));
            }
        }
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
        let next = match r.next() {
            Ok(Frame::Item(item)) => return Some(Ok(*item)),
            Ok(Frame::End(_)) => None,
            Ok(Frame::Header(_)) => Some(Err(boxed(r.damaged(Damage::Order)))),
            Err(e) => Some(Err(boxed(e))),
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
}

/// Imports the export at `path` into `store`: checks all of it first, then applies it in one
/// write transaction. Importing the same file again adds nothing.
pub fn import(store: &Store, path: &Path) -> Result<Imported, TenantIoError> {
    let (header, totals) = verify(path)?;
    let added = store.import_tenant(&header.tenant, || Items::of(path))?;
    Ok(Imported { header, totals, added })
}

#[cfg(test)]
mod tests;
