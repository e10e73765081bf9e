//! A source made of a followed file and a line parser: EVE, ClamAV and mail logs all are.
//!
//! The same [`LineParser`] serves the running source ([`TailSource`]) and
//! `ampel-agent parse` ([`parse_file`]), so what the operator sees is what the agent sends.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ampel_protocol::Record;

use super::follow::{Follower, read_whole};
use super::text::Counts;
use super::{Source, SourceError};

/// Turns lines of one log format into records.
pub trait LineParser: Send {
    /// Parses one line (without its newline), appending its records to `out`. Returns `false`
    /// when the line is malformed; such a line may still have produced a record (bad timestamp).
    fn line(&mut self, line: &[u8], now_ms: i64, out: &mut Vec<Record>) -> bool;

    /// Emits what accumulates over lines (EVE flow traffic sums) at the end of a cycle covering
    /// `interval_ms`.
    fn flush(&mut self, _now_ms: i64, _interval_ms: u64, _out: &mut Vec<Record>) {}

    /// Lines per event type, for formats that have them (EVE).
    fn event_types(&self) -> Option<BTreeMap<String, u64>> {
        None
    }
}

/// Reads the whole file at `path` with `parser`, handing every record to `emit`; returns the
/// counts. Errors only when the file cannot be read at all.
pub fn parse_file(path: &Path, parser: &mut dyn LineParser, now_ms: i64, emit: &mut dyn FnMut(&Record)) -> std::io::Result<Counts> {
    let mut counts = Counts::default();
    let mut out = Vec::new();
    read_whole(path, &mut |line| {
        counts.lines += 1;
        if !parser.line(line, now_ms, &mut out) {
            counts.malformed += 1;
        }
        counts.add_records(&out);
        out.iter().for_each(&mut *emit);
        out.clear();
    })?;
    parser.flush(now_ms, 0, &mut out);
    counts.add_records(&out);
    out.iter().for_each(&mut *emit);
    counts.event_types = parser.event_types();
    Ok(counts)
}

/// A running source following one file.
pub struct TailSource<P> {
    name: &'static str,
    follower: Follower,
    parser: P,
    max_bytes: u64,
    last_ms: Option<i64>,
    /// Totals since start, logged when lines go bad.
    counts: Counts,
    failing: bool,
}

impl<P: LineParser> TailSource<P> {
    /// Follows `path` (position kept in `pos_file`), reading at most `max_bytes` per cycle so a
    /// burst cannot stall the agent: the rest waits for the next cycle.
    pub fn new(name: &'static str, path: &Path, pos_file: Option<PathBuf>, from_beginning: bool, max_bytes: u64, parser: P) -> Self {
        TailSource {
            name,
            follower: Follower::new(path, pos_file, from_beginning),
            parser,
            max_bytes,
            last_ms: None,
            counts: Counts::default(),
            failing: false,
        }
    }

    /// Totals since start.
    pub fn counts(&self) -> &Counts {
        &self.counts
    }

    /// The parser, for tests.
    pub fn parser(&self) -> &P {
        &self.parser
    }
}

impl<P: LineParser> Source for TailSource<P> {
    fn name(&self) -> &'static str {
        self.name
    }

    fn committed(&mut self) {
        self.follower.commit();
    }

    fn gather(&mut self, now_ms: i64) -> Result<Vec<Record>, SourceError> {
        let mut out = Vec::new();
        let (mut lines, mut bad) = (0u64, 0u64);
        let overlong_before = self.follower.overlong;
        let parser = &mut self.parser;
        let polled = self.follower.poll(self.max_bytes, &mut |line| {
            lines += 1;
            if !parser.line(line, now_ms, &mut out) {
                bad += 1;
            }
        });
        bad += self.follower.overlong - overlong_before;
        match polled {
            Ok(_) if self.failing => {
                self.failing = false;
                tracing::info!(source = self.name, path = %self.follower.path().display(), "readable again");
            }
            Ok(_) => {}
            Err(e) => {
                if !self.failing {
                    self.failing = true;
                    tracing::warn!(source = self.name, path = %self.follower.path().display(), error = %e, "cannot read");
                }
            }
        }
        let interval = self.last_ms.map_or(0, |l| u64::try_from(now_ms.saturating_sub(l)).unwrap_or(0));
        self.last_ms = Some(now_ms);
        self.parser.flush(now_ms, interval, &mut out);
        self.counts.lines += lines;
        self.counts.malformed += bad;
        self.counts.add_records(&out);
        if bad > 0 {
            tracing::warn!(
                source = self.name,
                malformed = bad,
                malformed_total = self.counts.malformed,
                lines_total = self.counts.lines,
                "skipped malformed lines"
            );
        }
        Ok(out)
    }
}
