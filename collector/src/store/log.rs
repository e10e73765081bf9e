//! Entries of the ingest log: what one committed batch contributed, with series already
//! interned, in a layout the fold and the readers can skim.
//!
//! The log is keyed by arrival order (u64 BE, appended with `MDB_APPEND`). A batch becomes one
//! or more entries, each kept under [`TARGET_BYTES`] where it can be so that LMDB stores it in a
//! leaf page rather than in overflow pages (trimming the log then frees single pages, which
//! LMDB reuses cheaply). An entry:
//!
//! ```text
//! version u8 (= 1)
//! tenant: len u8, bytes          device: len u8, bytes
//! series: count varint, then per series: id u64 BE, points varint, section length varint
//! sections, one per series in table order: per point ts (zig-zag varint delta to the previous
//!   point of the section, the first against 0) and the value (f64 bits, 8 bytes BE)
//! alerts: count varint, then per alert: length varint, CBOR of the `Alert`
//! ```
//!
//! An alert is identified by (log key, position in its entry); its time is in the CBOR.

use ampel_protocol::Alert;

/// Entry size the writer aims for.
pub const TARGET_BYTES: usize = 1_900;
const VERSION: u8 = 1;
/// Largest encoding of one point in a section.
const MAX_POINT_BYTES: usize = 18;

/// Why an entry does not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogError {
    /// The entry ends early or a length points past its end.
    #[error("log entry truncated")]
    Truncated,
    /// A version this build does not know.
    #[error("log entry version {0} unknown")]
    Version(u8),
    /// A tenant or device id is not UTF-8.
    #[error("log entry names a non-UTF-8 id")]
    Utf8,
    /// An alert's CBOR does not decode.
    #[error("log entry alert: {0}")]
    Alert(String),
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// A cursor over entry bytes that never reads past the end.
struct Cur<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Cur<'a> {
    fn u8(&mut self) -> Result<u8, LogError> {
        let v = *self.b.get(self.at).ok_or(LogError::Truncated)?;
        self.at += 1;
        Ok(v)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], LogError> {
        let end = self.at.checked_add(n).ok_or(LogError::Truncated)?;
        let s = self.b.get(self.at..end).ok_or(LogError::Truncated)?;
        self.at = end;
        Ok(s)
    }

    fn u64(&mut self) -> Result<u64, LogError> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(u64::from_be_bytes(a))
    }

    fn varint(&mut self) -> Result<u64, LogError> {
        let mut v = 0u64;
        for shift in (0..70).step_by(7) {
            let byte = self.u8()?;
            if shift == 63 && byte > 1 {
                return Err(LogError::Truncated);
            }
            v |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(LogError::Truncated)
    }

    fn len(&mut self) -> Result<usize, LogError> {
        usize::try_from(self.varint()?).map_err(|_| LogError::Truncated)
    }

    fn str(&mut self) -> Result<&'a str, LogError> {
        let n = usize::from(self.u8()?);
        std::str::from_utf8(self.take(n)?).map_err(|_| LogError::Utf8)
    }
}

/// One series' points in an entry.
#[derive(Debug, Clone, Copy)]
pub struct Section<'a> {
    /// The series.
    pub series: u64,
    /// How many points.
    pub count: usize,
    bytes: &'a [u8],
}

impl Section<'_> {
    /// The points, in the order they arrived.
    pub fn points(&self) -> Result<Vec<(i64, f64)>, LogError> {
        let mut out = Vec::with_capacity(self.count);
        self.for_each(|t, v| out.push((t, v)))?;
        Ok(out)
    }

    /// Calls `f` for every point, in the order they arrived.
    pub fn for_each(&self, mut f: impl FnMut(i64, f64)) -> Result<(), LogError> {
        let mut c = Cur { b: self.bytes, at: 0 };
        let mut ts = 0i64;
        for _ in 0..self.count {
            ts = ts.wrapping_add(unzigzag(c.varint()?));
            f(ts, f64::from_bits(c.u64()?));
        }
        if c.at != self.bytes.len() {
            return Err(LogError::Truncated);
        }
        Ok(())
    }
}

/// A parsed entry header; sections and alerts decode on demand.
#[derive(Debug, Clone)]
pub struct Entry<'a> {
    /// Tenant of the sending device.
    pub tenant: &'a str,
    /// The sending device.
    pub device: &'a str,
    /// The series sections, in table order.
    pub sections: Vec<Section<'a>>,
    alerts: &'a [u8],
}

impl<'a> Entry<'a> {
    /// Parses the header and the section table.
    pub fn parse(bytes: &'a [u8]) -> Result<Entry<'a>, LogError> {
        let mut c = Cur { b: bytes, at: 0 };
        let v = c.u8()?;
        if v != VERSION {
            return Err(LogError::Version(v));
        }
        let tenant = c.str()?;
        let device = c.str()?;
        let n = c.len()?;
        let mut table = Vec::with_capacity(n.min(1024));
        for _ in 0..n {
            let series = c.u64()?;
            let count = c.len()?;
            let len = c.len()?;
            table.push((series, count, len));
        }
        let mut sections = Vec::with_capacity(table.len());
        for (series, count, len) in table {
            sections.push(Section { series, count, bytes: c.take(len)? });
        }
        Ok(Entry { tenant, device, sections, alerts: &bytes[c.at..] })
    }

    /// The section of one series, if the entry has points of it.
    pub fn section(&self, series: u64) -> Option<&Section<'a>> {
        self.sections.iter().find(|s| s.series == series)
    }

    /// Points in the entry.
    pub fn point_count(&self) -> usize {
        self.sections.iter().map(|s| s.count).sum()
    }

    /// Whether the entry carries alerts.
    pub fn has_alerts(&self) -> bool {
        self.alerts.first().is_some_and(|n| *n != 0)
    }

    /// The alerts, in the order they arrived (the position is the index).
    pub fn alerts(&self) -> Result<Vec<Alert>, LogError> {
        let mut c = Cur { b: self.alerts, at: 0 };
        if self.alerts.is_empty() {
            return Ok(Vec::new());
        }
        let n = c.len()?;
        let mut out = Vec::with_capacity(n.min(4096));
        for _ in 0..n {
            let len = c.len()?;
            let a: Alert = serde_cbor::from_slice(c.take(len)?).map_err(|e| LogError::Alert(e.to_string()))?;
            out.push(a);
        }
        Ok(out)
    }
}

/// The section of `series` in an entry, found without parsing the whole entry: readers skim
/// the unfolded tail with this, entry by entry.
pub fn find_section(bytes: &[u8], series: u64) -> Result<Option<Section<'_>>, LogError> {
    let mut c = Cur { b: bytes, at: 0 };
    let v = c.u8()?;
    if v != VERSION {
        return Err(LogError::Version(v));
    }
    for _ in 0..2 {
        let n = usize::from(c.u8()?);
        c.take(n)?;
    }
    let n = c.len()?;
    let mut offset = 0usize;
    let mut found = None;
    for _ in 0..n {
        let id = c.u64()?;
        let count = c.len()?;
        let len = c.len()?;
        if id == series && found.is_none() {
            found = Some((offset, count, len));
        }
        offset = offset.checked_add(len).ok_or(LogError::Truncated)?;
    }
    match found {
        None => Ok(None),
        Some((off, count, len)) => {
            c.take(off)?;
            Ok(Some(Section { series, count, bytes: c.take(len)? }))
        }
    }
}

/// Builds the entries of one batch.
#[derive(Debug)]
pub struct EntryBuilder<'a> {
    tenant: &'a str,
    device: &'a str,
    done: Vec<Vec<u8>>,
    table: Vec<(u64, usize, usize)>,
    body: Vec<u8>,
    /// Section being written: series, count, start in `body`, previous timestamp.
    open: Option<(u64, usize, usize, i64)>,
}

impl<'a> EntryBuilder<'a> {
    /// Entries for a batch of `device` of `tenant`.
    pub fn new(tenant: &'a str, device: &'a str) -> Self {
        EntryBuilder { tenant, device, done: Vec::new(), table: Vec::new(), body: Vec::with_capacity(TARGET_BYTES), open: None }
    }

    fn header_len(&self) -> usize {
        3 + self.tenant.len() + self.device.len() + 3 + (self.table.len() + 1) * 18
    }

    fn close_section(&mut self) {
        if let Some((series, count, start, _)) = self.open.take() {
            self.table.push((series, count, self.body.len() - start));
        }
    }

    fn flush(&mut self, alerts: &[Vec<u8>]) {
        self.close_section();
        if self.table.is_empty() && alerts.is_empty() {
            return;
        }
        let mut out = Vec::with_capacity(self.header_len() + self.body.len() + 8);
        out.push(VERSION);
        for s in [self.tenant, self.device] {
            // Ids are at most 64 bytes (`ampel_protocol::identity::MAX_ID_LEN`).
            let s = &s.as_bytes()[..s.len().min(255)];
            out.push(s.len() as u8);
            out.extend_from_slice(s);
        }
        put_varint(&mut out, self.table.len() as u64);
        for (series, count, len) in self.table.drain(..) {
            out.extend_from_slice(&series.to_be_bytes());
            put_varint(&mut out, count as u64);
            put_varint(&mut out, len as u64);
        }
        out.append(&mut self.body);
        put_varint(&mut out, alerts.len() as u64);
        for a in alerts {
            put_varint(&mut out, a.len() as u64);
            out.extend_from_slice(a);
        }
        self.done.push(out);
    }

    /// Adds a point. Points of one series must come together (sort the batch by series first,
    /// stably, so that their arrival order is kept).
    pub fn point(&mut self, series: u64, ts: i64, value: f64) {
        if self.header_len() + self.body.len() + MAX_POINT_BYTES > TARGET_BYTES && (self.open.is_some() || !self.table.is_empty()) {
            self.flush(&[]);
        }
        match self.open {
            Some((s, ..)) if s == series => {}
            _ => {
                self.close_section();
                self.open = Some((series, 0, self.body.len(), 0));
            }
        }
        if let Some((_, count, _, prev)) = self.open.as_mut() {
            put_varint(&mut self.body, zigzag(ts.wrapping_sub(*prev)));
            self.body.extend_from_slice(&value.to_bits().to_be_bytes());
            *count += 1;
            *prev = ts;
        }
    }

    /// Finishes the batch; its alerts (CBOR each) go into the last entry, or into entries of
    /// their own when they are many.
    pub fn finish(mut self, alerts: &[Vec<u8>]) -> Vec<Vec<u8>> {
        let mut start = 0;
        let mut size = self.header_len() + self.body.len();
        for (i, a) in alerts.iter().enumerate() {
            if size + a.len() + 4 > TARGET_BYTES && i > start {
                self.flush(&alerts[start..i]);
                start = i;
                size = self.header_len();
            }
            size += a.len() + 4;
        }
        self.flush(&alerts[start..]);
        self.done
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use ampel_protocol::{AlertAction, AlertSource};
    use proptest::prelude::*;

    fn alert(ts: i64, sig: &str) -> Alert {
        Alert { signature_id: Some(7), ..Alert::new(ts, AlertSource::Ids, 2, sig.into(), AlertAction::Blocked) }
    }

    proptest! {
        /// Whatever goes in comes out, in order, split over entries of bounded size.
        #[test]
        fn entries_round_trip(points in proptest::collection::vec((0u64..5, any::<i64>(), any::<u64>()), 0..800),
                              n_alerts in 0usize..60) {
            let mut points = points;
            points.sort_by_key(|p| p.0);
            let alerts: Vec<Alert> = (0..n_alerts).map(|i| alert(i as i64, &"x".repeat(i * 3))).collect();
            let cbor: Vec<Vec<u8>> = alerts.iter().map(|a| serde_cbor::to_vec(a).unwrap()).collect();
            let mut b = EntryBuilder::new("acme", "fw-1");
            for (s, t, v) in &points {
                b.point(*s, *t, f64::from_bits(*v));
            }
            let entries = b.finish(&cbor);
            let mut got_points = Vec::new();
            let mut got_alerts = Vec::new();
            for e in &entries {
                prop_assert!(e.len() <= TARGET_BYTES + 300, "entry of {} bytes", e.len());
                let p = Entry::parse(e).unwrap();
                prop_assert_eq!((p.tenant, p.device), ("acme", "fw-1"));
                for s in &p.sections {
                    let f = find_section(e, s.series).unwrap().unwrap();
                    prop_assert_eq!(f.points().unwrap().len(), p.section(s.series).unwrap().count);
                }
                prop_assert!(find_section(e, 99).unwrap().is_none());
                for s in &p.sections {
                    for (t, v) in s.points().unwrap() {
                        got_points.push((s.series, t, v.to_bits()));
                    }
                }
                got_alerts.extend(p.alerts().unwrap());
            }
            prop_assert_eq!(got_points, points);
            prop_assert_eq!(got_alerts, alerts);
        }

        #[test]
        fn damaged_entries_do_not_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            if let Ok(e) = Entry::parse(&bytes) {
                for s in &e.sections {
                    let _ = s.points();
                }
                let _ = e.alerts();
            }
        }
    }

    #[test]
    fn an_empty_batch_makes_no_entry() {
        assert!(EntryBuilder::new("acme", "fw-1").finish(&[]).is_empty());
    }
}
