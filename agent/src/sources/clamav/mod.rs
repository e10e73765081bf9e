//! `clamav`: ClamAV detections from the `clamd` log (`LogFile`), `clamscan --log` and
//! `clamdscan` output.
//!
//! Every `PATH: SIGNATURE FOUND` line becomes an Alert (source `antivirus`, severity 1,
//! signature = the detection name, `detail` = the path; `stream` for data scanned from a stream).
//! A following `PATH (real path: '...'): moved to 'DIR/...'` or `PATH: moved to '...'` line
//! (`--move`, clamd `VirusEvent` moves) makes it `quarantined`, with the quarantine path in
//! `detail` after the original. Without one the action is `unknown`: ClamAV only reported it.
//! clamd's `LogTime` prefix (`Sun Nov 22 03:02:01 2026 -> `) gives the time; lines without
//! one are stamped with the time they were read. Summary blocks, `OK` lines and errors are
//! ignored.

use std::path::PathBuf;

use ampel_protocol::{Alert, AlertAction, AlertSource, Record};
use serde::Deserialize;

use super::tail::{LineParser, TailSource};
use super::text::parse_ctime;
use super::{BuildContext, Source, SourceConfig, SourceError, enabled_or_exists};

/// `[sources.clamav]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ClamavConfig {
    /// Whether the source runs (default: when `path` exists at start).
    #[serde(default)]
    pub enabled: Option<bool>,
    /// The clamd log or a `clamscan --log` file (default `/var/log/clamav/clamav.log`).
    #[serde(default = "default_path")]
    pub path: PathBuf,
    /// Read an existing file from its start on the very first run (default: false).
    #[serde(default)]
    pub from_beginning: bool,
}

fn default_path() -> PathBuf {
    PathBuf::from("/var/log/clamav/clamav.log")
}

impl Default for ClamavConfig {
    fn default() -> Self {
        ClamavConfig { enabled: None, path: default_path(), from_beginning: false }
    }
}

impl SourceConfig for ClamavConfig {
    fn enabled(&self) -> bool {
        enabled_or_exists(self.enabled, &self.path)
    }

    fn build(&self, ctx: &BuildContext) -> Result<Box<dyn Source>, SourceError> {
        // Followed in bounded chunks, so any size; but it must be a file.
        super::check_path("sources.clamav.path", &self.path, u64::MAX)?;
        Ok(Box::new(TailSource::new(
            "clamav",
            &self.path,
            ctx.state_file("clamav.pos"),
            self.from_beginning,
            4 << 20,
            ClamavParser::default(),
        )))
    }
}

/// Parses ClamAV log lines. Holds the last detection until the next line tells whether it was
/// moved to quarantine.
#[derive(Default)]
pub struct ClamavParser {
    pending: Option<Alert>,
}

/// Splits clamd's `LogTime` prefix off.
fn strip_time(line: &str) -> (Option<i64>, &str) {
    match (line.get(..24), line.get(24..28), line.get(28..)) {
        (Some(t), Some(" -> "), Some(rest)) => (parse_ctime(t), rest),
        _ => (None, line),
    }
}

impl ClamavParser {
    fn moved(&mut self, rest: &str) -> bool {
        let Some(pending) = self.pending.as_mut() else { return false };
        let Some((head, dest)) = rest.rsplit_once(": moved to '") else { return false };
        let orig = head.split_once(" (real path: '").map_or(head, |(p, _)| p);
        if pending.detail.as_deref() != Some(orig) {
            return false;
        }
        pending.action = AlertAction::Quarantined;
        pending.detail = Some(format!("{orig} -> {}", dest.trim_end_matches('\'')));
        true
    }
}

impl LineParser for ClamavParser {
    fn line(&mut self, line: &[u8], now_ms: i64, out: &mut Vec<Record>) -> bool {
        let line = String::from_utf8_lossy(line);
        let (ts, rest) = strip_time(&line);
        if self.moved(rest) {
            if let Some(a) = self.pending.take() {
                out.push(Record::Alert(a));
            }
            return true;
        }
        if let Some(a) = self.pending.take() {
            out.push(Record::Alert(a));
        }
        let Some(body) = rest.strip_suffix(" FOUND") else { return true };
        let Some((path, sig)) = body.rsplit_once(": ") else { return false };
        // clamd may append "(md5:size)" to the signature name.
        let sig = match sig.split_once('(') {
            Some((name, tail)) if tail.ends_with(')') => name,
            _ => sig,
        };
        if path.is_empty() || sig.is_empty() || sig.contains(' ') {
            return false;
        }
        let mut alert = Alert::new(ts.unwrap_or(now_ms), AlertSource::Antivirus, 1, sig.to_owned(), AlertAction::Unknown);
        alert.category = Some("malware".to_owned());
        alert.detail = Some(path.to_owned());
        self.pending = Some(alert);
        true
    }

    fn flush(&mut self, _now_ms: i64, _interval_ms: u64, out: &mut Vec<Record>) {
        if let Some(a) = self.pending.take() {
            out.push(Record::Alert(a));
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::sources::tail::parse_file;

    fn parse(name: &str) -> (u64, Vec<Alert>) {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/antivirus").join(name);
        let mut alerts = Vec::new();
        let c = parse_file(&path, &mut ClamavParser::default(), 5, &mut |r| {
            if let Record::Alert(a) = r {
                alerts.push(a.clone());
            }
        })
        .unwrap();
        assert_eq!(c.malformed, 0, "{name}");
        (c.lines, alerts)
    }

    #[test]
    fn every_found_line_is_an_alert() {
        let (lines, alerts) = parse("generated-clamscan-1.4.6.log");
        assert_eq!((lines, alerts.len()), (22, 7));
        assert!(alerts.iter().all(|a| a.action == AlertAction::Unknown && a.source == AlertSource::Antivirus));
        assert_eq!(alerts[0].signature, "Eicar-Test-Signature.UNOFFICIAL");
        assert_eq!(alerts[0].detail.as_deref(), Some("scan/eicar.com"));
        let (lines, alerts) = parse("generated-clamdscan-1.4.6-stdout.txt");
        assert_eq!((lines, alerts.len()), (50, 16));
        assert!(alerts.iter().any(|a| a.detail.as_deref() == Some("stream")));
    }

    #[test]
    fn moves_make_it_quarantined() {
        let (_, alerts) = parse("generated-clamscan-quarantine-move-1.4.6.log");
        assert_eq!(alerts.len(), 7);
        assert!(alerts.iter().all(|a| a.action == AlertAction::Quarantined), "{alerts:?}");
        assert_eq!(alerts[0].detail.as_deref(), Some("scan2/eicar.com -> /tmp/fxtools/clamwork/quarantine/eicar.com"));
    }

    #[test]
    fn clamd_log_time_is_used_and_garbage_is_counted() {
        let mut p = ClamavParser::default();
        let mut out = Vec::new();
        assert!(p.line(b"Sun Nov 22 03:02:01 2026 -> /srv/x: Eicar-Signature(44d88612fea8a8f36de82e1278abb02f:68) FOUND", 0, &mut out));
        assert!(!p.line(b"nonsense FOUND", 0, &mut out));
        assert!(p.line(b"", 0, &mut out));
        let [Record::Alert(a)] = out.as_slice() else { panic!("{out:?}") };
        assert_eq!((a.signature.as_str(), a.ts), ("Eicar-Signature", 1_795_316_521_000));
    }
}
