//! `mail`: mail filter verdicts, from the mail log (Postfix, amavis, Exim lines) and from
//! rspamd's history (the controller's `/history` JSON, read from a file).
//!
//! All become Alerts with source `mail`:
//!
//! | input | action | signature | category |
//! | --- | --- | --- | --- |
//! | Postfix `NOQUEUE: reject:` / `milter-reject:` | `rejected` | the SMTP reply (`554 5.7.1 Service unavailable`) | `reject` |
//! | Postfix `discard:` / `hold:` | `blocked` / `quarantined` | the reason | `discard` / `hold` |
//! | amavis `Blocked INFECTED (Sig) {...,Quarantined}` | `quarantined` if the tags say so, else `blocked` | the virus name, or the category | `INFECTED`, `SPAM`, `BANNED`, ... |
//! | amavis `Passed SPAM` / `Passed INFECTED` | `allowed` | as above | as above |
//! | Exim `rejected RCPT` / `rejected connection` | `rejected` | the reason | `reject` |
//! | rspamd history row with an action other than `no action` | `reject`, `soft reject`, `greylist`: `rejected`; `discard`: `blocked`; `quarantine`: `quarantined`; `add header`, `rewrite subject`: `allowed` | `rspamd <action>` | the action |
//!
//! `src` is the client address; `detail` the quarantine id, queue id or message id.
//! SASL failures and other lines are ignored. The rspamd controller URL is not polled: point
//! `rspamd-history` at a file a cron job or the appliance refreshes.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use ampel_protocol::{Alert, AlertAction, AlertSource, Record};
use serde::Deserialize;

use super::tail::{LineParser, TailSource};
use super::text::{Counts, parse_syslog_ts};
use super::{BuildContext, Source, SourceConfig, SourceError};

/// `[sources.mail]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct MailConfig {
    /// Whether the source runs (default: when `log` or `rspamd-history` exists at start).
    #[serde(default)]
    pub enabled: Option<bool>,
    /// The mail log with Postfix / amavis / Exim lines (default `/var/log/mail.log`).
    #[serde(default = "default_log")]
    pub log: PathBuf,
    /// A file holding rspamd's `/history` JSON (default: none).
    #[serde(default)]
    pub rspamd_history: Option<PathBuf>,
    /// Read an existing log from its start on the very first run (default: false).
    #[serde(default)]
    pub from_beginning: bool,
}

fn default_log() -> PathBuf {
    PathBuf::from("/var/log/mail.log")
}

impl Default for MailConfig {
    fn default() -> Self {
        MailConfig { enabled: None, log: default_log(), rspamd_history: None, from_beginning: false }
    }
}

impl SourceConfig for MailConfig {
    fn enabled(&self) -> bool {
        self.enabled.unwrap_or_else(|| self.log.exists() || self.rspamd_history.as_deref().is_some_and(Path::exists))
    }

    fn build(&self, ctx: &BuildContext) -> Result<Box<dyn Source>, SourceError> {
        let log = TailSource::new("mail", &self.log, ctx.state_file("mail.pos"), self.from_beginning, 4 << 20, MailParser);
        Ok(Box::new(MailSource { log, rspamd: self.rspamd_history.clone().map(RspamdHistory::new) }))
    }
}

/// The running source: the followed log plus the rspamd history file.
pub struct MailSource {
    log: TailSource<MailParser>,
    rspamd: Option<RspamdHistory>,
}

impl Source for MailSource {
    fn name(&self) -> &'static str {
        "mail"
    }

    fn committed(&mut self) {
        self.log.committed();
    }

    fn gather(&mut self, now_ms: i64) -> Result<Vec<Record>, SourceError> {
        let mut out = self.log.gather(now_ms)?;
        if let Some(h) = self.rspamd.as_mut() {
            h.poll(now_ms, &mut out);
        }
        Ok(out)
    }
}

/// Parses mail log lines.
pub struct MailParser;

fn bracketed(s: &str) -> Option<String> {
    let start = s.find('[')? + 1;
    let end = start + s[start..].find(']')?;
    Some(s[start..end].to_owned())
}

fn mail_alert(ts: i64, sig: &str, action: AlertAction, category: &str) -> Alert {
    let mut a = Alert::new(ts, AlertSource::Mail, 3, sig.trim().to_owned(), action);
    a.category = Some(category.to_owned());
    a
}

fn postfix(ts: i64, rest: &str) -> Option<Result<Alert, ()>> {
    for (marker, action, category) in [
        ("NOQUEUE: reject: ", AlertAction::Rejected, "reject"),
        (": reject: ", AlertAction::Rejected, "reject"),
        (": milter-reject: ", AlertAction::Rejected, "reject"),
        (": discard: ", AlertAction::Blocked, "discard"),
        (": hold: ", AlertAction::Quarantined, "hold"),
    ] {
        let Some(i) = rest.find(marker) else { continue };
        let body = &rest[i + marker.len()..];
        // "RCPT from client[ip]: 554 5.7.1 reason; from=<..> to=<..> ..."
        let Some((client, reply)) = body.split_once("]: ") else { return Some(Err(())) };
        let reason = reply.split_once("; from=").map_or(reply, |(r, _)| r);
        let mut a = mail_alert(ts, reason, action, category);
        a.severity = 3;
        a.src = bracketed(&format!("{client}]"));
        // The queue id precedes the marker ("ABC123: reject:"); NOQUEUE has none.
        a.detail = rest[..i].rsplit(' ').next().filter(|q| !q.is_empty() && !q.ends_with(':')).map(str::to_owned);
        return Some(Ok(a));
    }
    None
}

fn amavis(ts: i64, rest: &str) -> Option<Result<Alert, ()>> {
    let (verdict, body) = if let Some(i) = rest.find(") Blocked ") {
        (AlertAction::Blocked, &rest[i + 10..])
    } else if let Some(i) = rest.find(") Passed ") {
        (AlertAction::Allowed, &rest[i + 9..])
    } else {
        return None;
    };
    let category: String = body.chars().take_while(|c| c.is_ascii_uppercase() || *c == '-').collect();
    if category.is_empty() {
        return Some(Err(()));
    }
    if category == "CLEAN" {
        return None;
    }
    let after = &body[category.len()..];
    let sig = match after.strip_prefix(" (").and_then(|s| s.split_once(')')) {
        Some((name, _)) if category == "INFECTED" || category == "BANNED" => name.to_owned(),
        _ => category.clone(),
    };
    let tags = after.split_once('{').and_then(|(_, t)| t.split_once('}')).map(|(t, _)| t).unwrap_or("");
    let action = if verdict == AlertAction::Blocked && tags.split(',').any(|t| t == "Quarantined") {
        AlertAction::Quarantined
    } else {
        verdict
    };
    let mut a = mail_alert(ts, &sig, action, &category);
    a.severity = if category == "INFECTED" { 1 } else { 3 };
    a.src = bracketed(after.split_once('}').map_or(after, |(_, s)| s));
    a.detail = after
        .split(", ")
        .find_map(|part| part.strip_prefix("quarantine: ").or_else(|| part.strip_prefix("Queue-ID: ")))
        .map(str::to_owned);
    Some(Ok(a))
}

fn exim(ts: i64, rest: &str) -> Option<Result<Alert, ()>> {
    let i = rest.find(" rejected ")?;
    if !rest.starts_with("H=") && !rest.contains(" H=") {
        return None;
    }
    let reason = rest[i + 10..].split_once(": ").map_or(&rest[i + 10..], |(_, r)| r).trim_matches('"');
    let mut a = mail_alert(ts, reason, AlertAction::Rejected, "reject");
    a.src = bracketed(rest);
    Some(Ok(a))
}

impl LineParser for MailParser {
    fn line(&mut self, line: &[u8], now_ms: i64, out: &mut Vec<Record>) -> bool {
        let line = String::from_utf8_lossy(line);
        let (ts, rest, ts_ok) = match parse_syslog_ts(&line, now_ms) {
            Some((ts, rest)) => (ts, rest, true),
            None => (now_ms, &*line, false),
        };
        let found = if rest.contains("postfix") {
            postfix(ts, rest)
        } else if rest.contains("amavis") {
            amavis(ts, rest)
        } else {
            exim(ts, rest)
        };
        match found {
            Some(Ok(a)) => {
                out.push(Record::Alert(a));
                ts_ok
            }
            Some(Err(())) => false,
            None => true,
        }
    }
}

/// One row of rspamd's `/history` (v1: an array of rows; v2: `{"rows": [...]}`).
#[derive(Deserialize)]
struct Row {
    #[serde(default)]
    unix_time: f64,
    #[serde(default)]
    id: String,
    #[serde(default)]
    ip: String,
    action: String,
    #[serde(default)]
    score: f64,
    #[serde(default)]
    required_score: f64,
    #[serde(default)]
    scan_time: f64,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum History {
    Rows(Vec<serde_json::Value>),
    V2 { rows: Vec<serde_json::Value> },
}

fn rspamd_action(a: &str) -> Option<AlertAction> {
    match a {
        "no action" => None,
        "reject" | "soft reject" | "greylist" => Some(AlertAction::Rejected),
        "discard" => Some(AlertAction::Blocked),
        "quarantine" => Some(AlertAction::Quarantined),
        _ => Some(AlertAction::Allowed),
    }
}

/// Parses rspamd history JSON: the alerts of its rows, oldest first, each with a key that tells
/// a row seen before apart from a new one. Rows that do not parse are counted.
pub fn parse_rspamd(text: &str, counts: &mut Counts) -> Vec<(RowKey, Alert)> {
    let rows = match serde_json::from_str::<History>(text) {
        Ok(History::Rows(r) | History::V2 { rows: r }) => r,
        Err(_) => {
            counts.malformed += 1;
            return Vec::new();
        }
    };
    let mut out = Vec::new();
    for v in rows {
        let Ok(row) = Row::deserialize(&v) else {
            counts.malformed += 1;
            continue;
        };
        let key = RowKey(row.unix_time.to_bits(), row.id.clone(), row.scan_time.to_bits(), row.score.to_bits());
        let Some(action) = rspamd_action(&row.action) else { continue };
        let ts = (row.unix_time * 1000.0) as i64;
        let mut a = mail_alert(ts, &format!("rspamd {}", row.action), action, &row.action);
        a.severity = if action == AlertAction::Rejected { 2 } else { 3 };
        a.src = Some(row.ip).filter(|s| !s.is_empty());
        a.detail = Some(format!("id={} score={}/{}", row.id, row.score, row.required_score));
        out.push((key, a));
    }
    out.sort_by(|(a, _), (b, _)| f64::from_bits(a.0).total_cmp(&f64::from_bits(b.0)));
    out
}

/// Identifies one history row: time, message id, scan time, score.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RowKey(u64, String, u64, u64);

/// rspamd's history file, re-read when it changes; rows already reported are not again.
struct RspamdHistory {
    path: PathBuf,
    mtime: Option<SystemTime>,
    seen: HashSet<RowKey>,
    failing: bool,
}

impl RspamdHistory {
    fn new(path: PathBuf) -> Self {
        RspamdHistory { path, mtime: None, seen: HashSet::new(), failing: false }
    }

    fn poll(&mut self, _now_ms: i64, out: &mut Vec<Record>) {
        let mtime = std::fs::metadata(&self.path).and_then(|m| m.modified());
        let text = match mtime {
            Ok(m) if Some(m) == self.mtime => return,
            Ok(m) => {
                self.mtime = Some(m);
                std::fs::read_to_string(&self.path)
            }
            Err(e) => Err(e),
        };
        let text = match text {
            Ok(t) => {
                self.failing = false;
                t
            }
            Err(e) => {
                if !self.failing {
                    self.failing = true;
                    tracing::warn!(source = "mail", path = %self.path.display(), error = %e, "cannot read rspamd history");
                }
                return;
            }
        };
        let mut counts = Counts::default();
        let rows = parse_rspamd(&text, &mut counts);
        if counts.malformed > 0 {
            tracing::warn!(source = "mail", path = %self.path.display(), malformed = counts.malformed, "skipped malformed rspamd history rows");
        }
        // The history holds the last N rows; remember only those still in it.
        let current: HashSet<RowKey> = rows.iter().map(|(k, _)| k.clone()).collect();
        for (key, alert) in rows {
            if !self.seen.contains(&key) {
                out.push(Record::Alert(alert));
            }
        }
        self.seen = current;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::sources::tail::parse_file;

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mail").join(name)
    }

    fn parse(name: &str) -> (Counts, Vec<Alert>) {
        let mut alerts = Vec::new();
        let c = parse_file(&fixture(name), &mut MailParser, 1_795_315_014_000, &mut |r| {
            if let Record::Alert(a) = r {
                alerts.push(a.clone());
            }
        })
        .unwrap();
        (c, alerts)
    }

    #[test]
    fn postfix_rejects() {
        let (c, alerts) = parse("crowdsec-postfix-logs.log");
        assert_eq!((c.lines, c.malformed, alerts.len()), (7, 0, 4));
        assert!(alerts.iter().all(|a| a.action == AlertAction::Rejected && a.source == AlertSource::Mail));
        assert_eq!(alerts[0].signature, "554 5.7.1 Service unavailable");
        assert_eq!(alerts[0].src.as_deref(), Some("192.168.1.1"));
        assert!(alerts[2].signature.ends_with("Relay access denied"), "{}", alerts[2].signature);
        let (c, alerts) = parse("crowdsec-postfix-spam.log");
        assert_eq!((c.lines, c.malformed, alerts.len()), (7, 0, 2));
    }

    #[test]
    fn amavis_blocked_infected_is_quarantined() {
        let (c, alerts) = parse("crowdsec-amavis-blocked.log");
        assert_eq!((c.lines, c.malformed), (1, 0));
        let [a] = alerts.as_slice() else { panic!("{alerts:?}") };
        assert_eq!(a.action, AlertAction::Quarantined);
        assert_eq!(a.signature, "Porcupine.Phishing.55542.UNOFFICIAL");
        assert_eq!(a.category.as_deref(), Some("INFECTED"));
        assert_eq!(a.src.as_deref(), Some("192.168.0.1"));
        assert_eq!(a.detail.as_deref(), Some("2/virus-26W2lJY63nCZ"));
    }

    #[test]
    fn exim_rejects_and_blank_lines() {
        let (c, alerts) = parse("crowdsec-exim-spam.log");
        assert_eq!((c.lines, c.malformed), (9, 0));
        assert_eq!(alerts.len(), 5, "{alerts:?}");
    }

    #[test]
    fn rspamd_history_rows_with_an_action() {
        let text = std::fs::read_to_string(fixture("generated-rspamd-3.4-history.json")).unwrap();
        let mut c = Counts::default();
        let rows = parse_rspamd(&text, &mut c);
        assert_eq!(c.malformed, 0);
        let actions: Vec<AlertAction> = rows.iter().map(|(_, a)| a.action).collect();
        assert_eq!(actions.len(), 4, "5 rows, one 'no action'");
        assert_eq!(actions.iter().filter(|a| **a == AlertAction::Rejected).count(), 2, "GTUBE twice");
        let mut h = RspamdHistory::new(fixture("generated-rspamd-3.4-history.json"));
        let mut out = Vec::new();
        h.poll(0, &mut out);
        assert_eq!(out.len(), 4);
        h.mtime = None;
        out.clear();
        h.poll(0, &mut out);
        assert!(out.is_empty(), "rows already reported are not reported again");
    }
}
