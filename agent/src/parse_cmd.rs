//! `ampel-agent parse --format F FILE`: reads a whole file with the same parser the running
//! source uses and prints one JSON object per record, or with `--summary` only
//! `{"lines": L, "records": {"alert": N, ...}, "event_types": {...}, "malformed": M}`
//! (`event_types` for EVE only).
//!
//! Line formats (eve, clamav, mail) count text lines; rspamd, nft and license count the lines of
//! the file and one malformed per row or document that could not be used.

use std::io::Write;
use std::path::Path;

use ampel_protocol::Record;

use crate::run::unix_ms;
use crate::sources::tail::{LineParser, parse_file};
use crate::sources::text::Counts;
use crate::sources::{clamav, eve, license, mail, netdev, nft};

/// The formats `parse` understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Suricata EVE JSON (`eve.json`).
    Eve,
    /// ClamAV: clamd log, `clamscan --log`, `clamdscan` output.
    Clamav,
    /// Mail log lines: Postfix, amavis, Exim.
    Mail,
    /// rspamd controller `/history` JSON.
    Rspamd,
    /// `/proc/net/dev` (absolute counters, `interval_ms` 0).
    Netdev,
    /// `nft -j list counters` JSON (absolute counters).
    Nft,
    /// The license file (see `sources/license/README.md`).
    License,
}

/// Why `parse` could not do its job.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    /// The input file could not be read at all.
    #[error("cannot read {path}: {error}")]
    Read {
        /// The file.
        path: String,
        /// What the OS said.
        error: std::io::Error,
    },
    /// Writing the output failed (closed pipe).
    #[error("cannot write the output: {0}")]
    Write(#[from] std::io::Error),
    /// A record could not be formatted.
    #[error("cannot format a record: {0}")]
    Json(#[from] serde_json::Error),
}

/// Parses `path` as `format`, writing records (or only the summary) to `out`.
pub fn run(format: Format, path: &Path, summary: bool, out: &mut dyn Write) -> Result<Counts, ParseError> {
    let now = unix_ms();
    let read_err = |error| ParseError::Read { path: path.display().to_string(), error };
    let mut write_err = None;
    let mut emit = |r: &Record| {
        if !summary && write_err.is_none() {
            let res =
                serde_json::to_writer(&mut *out, r).map_err(ParseError::from).and_then(|()| out.write_all(b"\n").map_err(ParseError::from));
            write_err = res.err();
        }
    };
    let counts = match format {
        Format::Eve => lines(path, &mut eve::EveParser::default(), now, &mut emit).map_err(read_err)?,
        Format::Clamav => lines(path, &mut clamav::ClamavParser::default(), now, &mut emit).map_err(read_err)?,
        Format::Mail => lines(path, &mut mail::MailParser::default(), now, &mut emit).map_err(read_err)?,
        Format::Rspamd => {
            let text = std::fs::read_to_string(path).map_err(read_err)?;
            let mut c = Counts { lines: text.lines().count() as u64, ..Counts::default() };
            let records: Vec<Record> = mail::parse_rspamd(&text, &mut c).into_iter().map(|(_, a)| Record::Alert(a)).collect();
            finish(c, records, &mut emit)
        }
        Format::Netdev => {
            let text = std::fs::read_to_string(path).map_err(read_err)?;
            let (ifaces, bad) = netdev::parse(&text);
            let c = Counts { lines: text.lines().count() as u64, malformed: bad, ..Counts::default() };
            let records = ifaces.into_iter().map(|(name, cnt)| netdev::traffic(now, 0, name, None, cnt)).collect();
            finish(c, records, &mut emit)
        }
        Format::Nft => {
            let text = std::fs::read_to_string(path).map_err(read_err)?;
            let mut c = Counts { lines: text.lines().count() as u64, ..Counts::default() };
            let records = match nft::parse(&text) {
                Ok(counters) => counters.into_iter().map(|(cat, cnt)| netdev::traffic(now, 0, String::new(), Some(cat), cnt)).collect(),
                Err(_) => {
                    c.malformed = 1;
                    Vec::new()
                }
            };
            finish(c, records, &mut emit)
        }
        Format::License => {
            let text = std::fs::read_to_string(path).map_err(read_err)?;
            let mut c = Counts { lines: text.lines().count() as u64, ..Counts::default() };
            let record = match license::read(path, now) {
                Ok(l) => l,
                Err(e) => {
                    c.malformed = 1;
                    license::unknown(now, e.to_string())
                }
            };
            finish(c, vec![Record::License(record)], &mut emit)
        }
    };
    if let Some(e) = write_err {
        return Err(e);
    }
    if summary {
        serde_json::to_writer(&mut *out, &counts)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(counts)
}

fn lines(path: &Path, parser: &mut dyn LineParser, now: i64, emit: &mut dyn FnMut(&Record)) -> std::io::Result<Counts> {
    parse_file(path, parser, now, emit)
}

fn finish(mut c: Counts, records: Vec<Record>, emit: &mut dyn FnMut(&Record)) -> Counts {
    c.add_records(&records);
    records.iter().for_each(emit);
    c
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn fixture(p: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(p)
    }

    #[test]
    fn summary_has_the_contract_shape() {
        let mut out = Vec::new();
        run(Format::Eve, &fixture("eve/josevnz-eve-2.json"), true, &mut out).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["lines"], 2401);
        assert_eq!(v["malformed"], 0);
        assert_eq!(v["event_types"]["alert"], 118);
        assert_eq!(v["records"]["alert"], 118 + 106 + 4);
        let mut out = Vec::new();
        run(Format::Clamav, &fixture("antivirus/generated-clamscan-1.4.6.log"), true, &mut out).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!((v["records"]["alert"].as_u64(), v.get("event_types")), (Some(7), None));
    }

    #[test]
    fn records_are_one_json_object_per_line() {
        let mut out = Vec::new();
        run(Format::Nft, &fixture("netfilter/generated-nft-1.0.6-j-list-counters.json"), false, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let records: Vec<Record> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(records.len(), 2);
        for (fmt, file, n) in [
            (Format::Rspamd, "mail/generated-rspamd-3.4-history.json", 4),
            (Format::Netdev, "proc-net-dev/procfs-fixture-dev.txt", 4),
            (Format::Mail, "mail/crowdsec-amavis-blocked.log", 1),
        ] {
            let mut out = Vec::new();
            let c = run(fmt, &fixture(file), false, &mut out).unwrap();
            assert_eq!(String::from_utf8(out).unwrap().lines().count(), n, "{file}");
            assert_eq!(c.malformed, 0, "{file}");
        }
        assert!(run(Format::Eve, Path::new("/nonexistent"), true, &mut Vec::new()).is_err());
    }
}
