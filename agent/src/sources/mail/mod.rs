//! `mail`: mail filter verdicts, from the mail log (Postfix, postscreen, amavis, Exim lines),
//! from rspamd's result lines (in rspamd.log or the mail log) or from rspamd's history (the
//! controller's `/history` JSON, fetched from the controller or read from a file).
//!
//! All become Alerts with source `mail`:
//!
//! | input | action | signature | category |
//! | --- | --- | --- | --- |
//! | Postfix `NOQUEUE: reject:` / `milter-reject:` | `rejected` | the SMTP reply without the client address (`554 5.7.1 Service unavailable`) | `reject` |
//! | postscreen `NOQUEUE: reject:`, a failed test then `DISCONNECT` (see `postscreen`) | `rejected` / `blocked` | the reply / `postscreen <test>` | the failed test (`pregreet`, `dnsbl`, ...) or `reject` |
//! | Postfix `discard:` / `hold:` | `blocked` / `quarantined` | the reason | `discard` / `hold` |
//! | amavis `Blocked INFECTED (Sig) {...,Quarantined}` | `quarantined` if the tags say so, else `blocked` | the virus name, or the category | `INFECTED`, `SPAM`, `BANNED`, ... |
//! | amavis `Passed SPAM` / `Passed INFECTED` | `allowed` | as above | as above |
//! | Exim `rejected RCPT` / `rejected connection` | `rejected` | the reason | `reject` |
//! | rspamd history row or `rspamd_task_write_log` line with an action other than `no action` | `reject`, `soft reject`, `greylist`: `rejected`; `discard`: `blocked`; `quarantine`: `quarantined`; `add header`, `rewrite subject`: `allowed` | `rspamd <action>` | the action |
//!
//! `src` is the client address; `detail` the quarantine id, queue id or message id. Envelope
//! senders and recipients are not kept. SASL failures and other lines are ignored. rspamd's
//! results come from one place: with a history configured, rspamd lines in the mail log are
//! ignored, so no message is reported twice.
//!
//! rspamd's history holds its last N rows (200 by default); rows already reported are
//! remembered by a fingerprint, saved in the state directory once the batch is spooled, so
//! neither a new fetch nor a restart reports a row twice.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use ampel_protocol::{Alert, AlertAction, AlertSource, Record};
use serde::Deserialize;

mod postscreen;
mod rspamd_log;

use self::postscreen::Postscreen;
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
    /// rspamd's own log (`/var/log/rspamd/rspamd.log`), followed for its per-message result
    /// lines (default: none; rspamd logging to syslog puts them in `log`).
    #[serde(default)]
    pub rspamd_log: Option<PathBuf>,
    /// A file holding rspamd's `/history` JSON (default: none).
    #[serde(default)]
    pub rspamd_history: Option<PathBuf>,
    /// rspamd's controller, `http://HOST:PORT` (default: none); `/history` is fetched from it at
    /// most every 30 s. Plain HTTP only: use the controller's local listener.
    #[serde(default)]
    pub rspamd_controller: Option<String>,
    /// A file holding the controller's password (sent as rspamd's `Password` header; never logged).
    #[serde(default)]
    pub rspamd_password_file: Option<PathBuf>,
    /// Read an existing log from its start on the very first run (default: false).
    #[serde(default)]
    pub from_beginning: bool,
}

fn default_log() -> PathBuf {
    PathBuf::from("/var/log/mail.log")
}

impl Default for MailConfig {
    fn default() -> Self {
        MailConfig {
            enabled: None,
            log: default_log(),
            rspamd_log: None,
            rspamd_history: None,
            rspamd_controller: None,
            rspamd_password_file: None,
            from_beginning: false,
        }
    }
}

impl SourceConfig for MailConfig {
    fn enabled(&self) -> bool {
        self.enabled.unwrap_or_else(|| {
            self.log.exists()
                || self.rspamd_log.as_deref().is_some_and(Path::exists)
                || self.rspamd_history.as_deref().is_some_and(Path::exists)
                || self.rspamd_controller.is_some()
        })
    }

    fn build(&self, ctx: &BuildContext) -> Result<Box<dyn Source>, SourceError> {
        super::check_path("sources.mail.log", &self.log, u64::MAX)?;
        let history = self.rspamd_history.is_some() || self.rspamd_controller.is_some();
        if history && self.rspamd_log.is_some() {
            return Err(SourceError::System {
                what: "sources.mail",
                reason: "set rspamd-log or an rspamd history (rspamd-history, rspamd-controller), not both: each message would be reported twice".into(),
            });
        }
        let follow = |path: &Path, state: &str| {
            TailSource::new("mail", path, ctx.state_file(state), self.from_beginning, LOG_BYTES_PER_CYCLE, MailParser::new(!history))
        };
        let log = follow(&self.log, "mail.pos");
        let rspamd_log = match &self.rspamd_log {
            Some(path) => {
                super::check_path("sources.mail.rspamd-log", path, u64::MAX)?;
                Some(follow(path, "rspamd-log.pos"))
            }
            None => None,
        };
        let origin = match (&self.rspamd_history, &self.rspamd_controller) {
            (Some(_), Some(_)) => {
                return Err(SourceError::System {
                    what: "sources.mail",
                    reason: "set either rspamd-history or rspamd-controller, not both".into(),
                });
            }
            (Some(path), None) => {
                super::check_path("sources.mail.rspamd-history", path, crate::files::RSPAMD_HISTORY_MAX)?;
                Some(HistoryOrigin::File { path: path.clone(), mtime: None })
            }
            (None, Some(url)) => {
                let password = match &self.rspamd_password_file {
                    Some(f) => Some(read_password(f)?),
                    None => None,
                };
                Some(HistoryOrigin::Controller(Controller::new(url, password)?))
            }
            (None, None) => None,
        };
        let rspamd = origin.map(|o| RspamdHistory::new(o, ctx.state_file("rspamd.seen")));
        Ok(Box::new(MailSource { log, rspamd_log, rspamd }))
    }
}

/// Most bytes read from a followed log per cycle; the rest waits for the next cycle.
const LOG_BYTES_PER_CYCLE: u64 = 4 << 20;

/// The running source: the followed logs plus the rspamd history.
pub struct MailSource {
    log: TailSource<MailParser>,
    rspamd_log: Option<TailSource<MailParser>>,
    rspamd: Option<RspamdHistory>,
}

impl Source for MailSource {
    fn name(&self) -> &'static str {
        "mail"
    }

    fn committed(&mut self) {
        self.log.committed();
        if let Some(l) = self.rspamd_log.as_mut() {
            l.committed();
        }
        if let Some(h) = self.rspamd.as_mut() {
            h.commit();
        }
    }

    fn gather(&mut self, now_ms: i64) -> Result<Vec<Record>, SourceError> {
        let mut out = self.log.gather(now_ms)?;
        if let Some(l) = self.rspamd_log.as_mut() {
            out.extend(l.gather(now_ms)?);
        }
        if let Some(h) = self.rspamd.as_mut() {
            h.poll(now_ms, &mut out);
        }
        Ok(out)
    }
}

/// Parses mail log lines. Remembers postscreen's failed tests until their outcome is logged.
#[derive(Debug)]
pub struct MailParser {
    postscreen: Postscreen,
    /// Whether rspamd's result lines become alerts (not when a history reports them).
    rspamd_lines: bool,
}

impl MailParser {
    /// A parser; `rspamd_lines`: whether rspamd's result lines become alerts.
    pub fn new(rspamd_lines: bool) -> MailParser {
        MailParser { postscreen: Postscreen::default(), rspamd_lines }
    }
}

impl Default for MailParser {
    /// A parser of every line it knows, rspamd's included (`ampel-agent parse`).
    fn default() -> Self {
        MailParser::new(true)
    }
}

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

/// The reason of an SMTP reject reply: up to the envelope (`; from=<...>`), without the
/// client's address (`client [a]` of postscreen, `Client host [a]` of smtpd's DNSBL rejects),
/// so one reason is one signature whoever was rejected.
fn reject_reason(reply: &str, addr: &str) -> String {
    let reason = reply.split_once("; from=").map_or(reply, |(r, _)| r);
    if addr.is_empty() {
        return reason.to_owned();
    }
    reason.replace(&format!("Client host [{addr}] "), "").replace(&format!("client [{addr}] "), "")
}

/// The message of a postscreen line (after `postscreen[pid]: `).
fn postscreen_message(rest: &str) -> Option<&str> {
    let i = rest.find("/postscreen[")?;
    rest[i..].split_once("]: ").map(|(_, m)| m)
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
        let src = bracketed(&format!("{client}]"));
        let reason = reject_reason(reply, src.as_deref().unwrap_or(""));
        let mut a = mail_alert(ts, &reason, action, category);
        a.severity = 3;
        a.src = src;
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
        let found = if rspamd_log::is_result(rest) {
            if self.rspamd_lines { rspamd_log::line(ts, rest) } else { None }
        } else if let Some(msg) = postscreen_message(rest) {
            self.postscreen.message(ts, msg)
        } else if rest.contains("postfix") {
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

/// The alert of one rspamd verdict (a history row or a result line); `None` for `no action`.
fn rspamd_alert(ts: i64, action_name: &str, ip: &str, id: &str, score: f64, required: f64) -> Option<Alert> {
    let action = rspamd_action(action_name)?;
    let mut a = mail_alert(ts, &format!("rspamd {action_name}"), action, action_name);
    a.severity = if action == AlertAction::Rejected { 2 } else { 3 };
    a.src = Some(ip.to_owned()).filter(|s| !s.is_empty());
    a.detail = Some(format!("id={id} score={score}/{required}"));
    Some(a)
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
        let ts = (row.unix_time * 1000.0) as i64;
        let Some(a) = rspamd_alert(ts, &row.action, &row.ip, &row.id, row.score, row.required_score) else { continue };
        out.push((key, a));
    }
    out.sort_by(|(a, _), (b, _)| f64::from_bits(a.0).total_cmp(&f64::from_bits(b.0)));
    out
}

/// Identifies one history row: time, message id, scan time, score.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RowKey(u64, String, u64, u64);

/// A row's fingerprint (FNV-1a over its key), what is remembered and saved of a reported row.
fn fingerprint(key: &RowKey) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    };
    eat(&key.0.to_le_bytes());
    eat(&key.2.to_le_bytes());
    eat(&key.3.to_le_bytes());
    eat(key.1.as_bytes());
    h
}

fn read_password(path: &Path) -> Result<String, SourceError> {
    let text = crate::files::read_limited_to_string(path, crate::files::PASSWORD_MAX)
        .map_err(|e| SourceError::System { what: "sources.mail.rspamd-password-file", reason: format!("{}: {e}", path.display()) })?;
    let password = text.trim_end_matches(['\r', '\n']).to_owned();
    if password.chars().any(char::is_control) {
        return Err(SourceError::System {
            what: "sources.mail.rspamd-password-file",
            reason: format!("{}: the password holds control characters", path.display()),
        });
    }
    Ok(password)
}

/// Where rspamd's history comes from.
enum HistoryOrigin {
    /// A file, re-read when its mtime changes.
    File { path: PathBuf, mtime: Option<SystemTime> },
    /// The controller's `/history`, fetched at most every [`Controller::EVERY`].
    Controller(Controller),
}

/// rspamd's controller over plain HTTP (its local listener, port 11334 by default).
struct Controller {
    /// `host:port`, as given.
    authority: String,
    password: Option<String>,
    last: Option<Instant>,
}

impl Controller {
    const EVERY: Duration = Duration::from_secs(30);
    const TIMEOUT: Duration = Duration::from_secs(2);
    /// rspamd's `/history` of 200 rows is ~200 KiB; anything far above is refused.
    const MAX_BYTES: u64 = 8 << 20;

    fn new(url: &str, password: Option<String>) -> Result<Controller, SourceError> {
        let bad = |reason: &str| SourceError::System { what: "sources.mail.rspamd-controller", reason: format!("{url:?}: {reason}") };
        let rest = url.strip_prefix("http://").ok_or_else(|| bad("expected http://HOST:PORT (the controller's local listener)"))?;
        let authority = rest.trim_end_matches('/');
        if authority.is_empty() || authority.contains(['/', '?', '#', '@']) || authority.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad("expected http://HOST:PORT with no path"));
        }
        let authority = if authority.rsplit_once(':').is_some_and(|(_, p)| p.parse::<u16>().is_ok()) {
            authority.to_owned()
        } else {
            format!("{authority}:11334")
        };
        Ok(Controller { authority, password, last: None })
    }

    /// Whether a fetch is due now.
    fn due(&mut self) -> bool {
        if self.last.is_some_and(|l| l.elapsed() < Self::EVERY) {
            return false;
        }
        self.last = Some(Instant::now());
        true
    }

    /// `GET /history`; the body on status 200.
    fn fetch(&self) -> std::io::Result<String> {
        let other = |m: String| std::io::Error::other(m);
        let addr = self.authority.to_socket_addrs()?.next().ok_or_else(|| other(format!("{} resolves to no address", self.authority)))?;
        let mut stream = TcpStream::connect_timeout(&addr, Self::TIMEOUT)?;
        stream.set_read_timeout(Some(Self::TIMEOUT))?;
        stream.set_write_timeout(Some(Self::TIMEOUT))?;
        let mut request = format!("GET /history HTTP/1.0\r\nHost: {}\r\nAccept: application/json\r\n", self.authority);
        if let Some(p) = &self.password {
            request.push_str(&format!("Password: {p}\r\n"));
        }
        request.push_str("\r\n");
        stream.write_all(request.as_bytes())?;
        let mut response = Vec::new();
        stream.take(Self::MAX_BYTES + 1).read_to_end(&mut response)?;
        if response.len() as u64 > Self::MAX_BYTES {
            return Err(other(format!("the response is larger than {} MiB", Self::MAX_BYTES >> 20)));
        }
        let split = response.windows(4).position(|w| w == b"\r\n\r\n").ok_or_else(|| other("no complete HTTP header".into()))?;
        let head = String::from_utf8_lossy(&response[..split]);
        let status = head.lines().next().unwrap_or("");
        let code = status.split_whitespace().nth(1).unwrap_or("");
        if code != "200" {
            let hint = if code == "403" || code == "401" { " (check rspamd-password-file)" } else { "" };
            return Err(other(format!("the controller answered {status:?}{hint}")));
        }
        if head.lines().any(|l| l.to_ascii_lowercase().starts_with("transfer-encoding:") && l.to_ascii_lowercase().contains("chunked")) {
            return Err(other("the controller answered with a chunked body to an HTTP/1.0 request".into()));
        }
        String::from_utf8(response[split + 4..].to_vec()).map_err(|_| other("the history is not UTF-8".into()))
    }
}

/// rspamd's history, re-read when it changes; rows already reported are not again.
struct RspamdHistory {
    origin: HistoryOrigin,
    /// Fingerprints of the rows reported, as of the last read.
    seen: HashSet<u64>,
    /// Where `seen` is saved across restarts (`None`: `once`, tests).
    state: Option<PathBuf>,
    dirty: bool,
    failing: bool,
}

impl RspamdHistory {
    fn new(origin: HistoryOrigin, state: Option<PathBuf>) -> Self {
        let seen = state
            .as_deref()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .map(|t| t.lines().filter_map(|l| u64::from_str_radix(l.trim(), 16).ok()).collect())
            .unwrap_or_default();
        RspamdHistory { origin, seen, state, dirty: false, failing: false }
    }

    fn where_(&self) -> String {
        match &self.origin {
            HistoryOrigin::File { path, .. } => path.display().to_string(),
            HistoryOrigin::Controller(c) => format!("http://{}/history", c.authority),
        }
    }

    fn read(&mut self) -> Option<std::io::Result<String>> {
        match &mut self.origin {
            HistoryOrigin::File { path, mtime } => {
                let now = std::fs::metadata(&*path).and_then(|m| m.modified());
                match now {
                    Ok(m) if Some(m) == *mtime => None,
                    Ok(m) => {
                        *mtime = Some(m);
                        Some(crate::files::read_limited_to_string(path, crate::files::RSPAMD_HISTORY_MAX))
                    }
                    Err(e) => Some(Err(e)),
                }
            }
            HistoryOrigin::Controller(c) => c.due().then(|| c.fetch()),
        }
    }

    fn poll(&mut self, _now_ms: i64, out: &mut Vec<Record>) {
        let text = match self.read() {
            None => return,
            Some(Ok(t)) => {
                if self.failing {
                    self.failing = false;
                    tracing::info!(source = "mail", from = %self.where_(), "rspamd history readable again");
                }
                t
            }
            Some(Err(e)) => {
                if !self.failing {
                    self.failing = true;
                    tracing::warn!(source = "mail", from = %self.where_(), error = %ampel_protocol::logsafe::esc(&e), "cannot read rspamd history");
                }
                return;
            }
        };
        let mut counts = Counts::default();
        let rows = parse_rspamd(&text, &mut counts);
        if counts.malformed > 0 {
            tracing::warn!(source = "mail", from = %self.where_(), malformed = counts.malformed, "skipped malformed rspamd history rows");
        }
        if rows.is_empty() && counts.malformed > 0 {
            // Not history at all (a file caught mid-write?): keep what was seen, read it again.
            if let HistoryOrigin::File { mtime, .. } = &mut self.origin {
                *mtime = None;
            }
            return;
        }
        // The history holds the last N rows; remember only those still in it.
        let mut current = HashSet::with_capacity(rows.len());
        for (key, alert) in rows {
            let fp = fingerprint(&key);
            if !self.seen.contains(&fp) {
                out.push(Record::Alert(alert));
            }
            current.insert(fp);
        }
        if current != self.seen {
            self.seen = current;
            self.dirty = true;
        }
    }

    /// Saves the fingerprints once the rows are spooled.
    fn commit(&mut self) {
        let Some(path) = &self.state else { return };
        if !self.dirty {
            return;
        }
        let mut text = String::with_capacity(self.seen.len() * 17);
        for f in &self.seen {
            text.push_str(&format!("{f:016x}\n"));
        }
        match crate::files::write_atomic(path, text.as_bytes(), crate::files::FILE_MODE, false) {
            Ok(()) => self.dirty = false,
            Err(e) => tracing::warn!(file = %path.display(), error = %e, "cannot save the rspamd rows reported"),
        }
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
        let c = parse_file(&fixture(name), &mut MailParser::default(), 1_795_315_014_000, &mut |r| {
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

    /// postscreen: a reject or a failed test ended by DISCONNECT is one alert per session,
    /// without the client address in the signature and without sender or recipient.
    #[test]
    fn postscreen_rejects_and_dropped_sessions() {
        let (c, alerts) = parse("constructed-postfix-postscreen.log");
        assert_eq!((c.lines, c.malformed), (24, 1), "only the PREGREET without a client is malformed");
        let got: Vec<(AlertAction, &str, &str, &str)> = alerts
            .iter()
            .map(|a| (a.action, a.signature.as_str(), a.category.as_deref().unwrap_or(""), a.src.as_deref().unwrap_or("")))
            .collect();
        assert_eq!(
            got,
            [
                (AlertAction::Rejected, "550 5.7.1 Service unavailable; blocked using zen.spamhaus.org", "dnsbl", "192.0.2.10"),
                (AlertAction::Blocked, "postscreen dnsbl", "dnsbl", "203.0.113.7"),
                (AlertAction::Rejected, "550 5.5.1 Protocol error", "pipelining", "203.0.113.9"),
                (AlertAction::Blocked, "postscreen non-smtp command", "non-smtp command", "192.0.2.77"),
                (AlertAction::Rejected, "too many connections", "reject", "192.0.2.90"),
            ]
        );
        assert!(alerts.iter().all(|a| a.detail.is_none() && !a.signature.contains('@')), "{alerts:?}");
    }

    /// rspamd.log as rspamd 3.4 writes it: the two GTUBE rejects are reported, the ham line
    /// (`no action`) and the other 37 lines are read without complaint.
    #[test]
    fn rspamd_result_lines_in_its_log() {
        let (c, alerts) = parse("generated-rspamd-3.4-rspamd.log");
        assert_eq!((c.lines, c.malformed), (40, 0));
        let got: Vec<(AlertAction, &str, Option<&str>, Option<&str>)> =
            alerts.iter().map(|a| (a.action, a.signature.as_str(), a.src.as_deref(), a.detail.as_deref())).collect();
        let gtube = |ip| (AlertAction::Rejected, "rspamd reject", Some(ip), Some("id=gtube-1@example.com score=15/15"));
        assert_eq!(got, [gtube("192.0.2.44"), gtube("192.0.2.46")]);
        assert!(alerts.iter().all(|a| a.ts == 1_796_593_696_000), "2026-12-06 21:48:16 (UTC, as Exim times are read)");
        // With a history configured the lines are the history's to report.
        let mut quiet = MailParser::new(false);
        let c = parse_file(&fixture("generated-rspamd-3.4-rspamd.log"), &mut quiet, 0, &mut |_| panic!("reported twice")).unwrap();
        assert_eq!(c.malformed, 0);
        // A result line whose verdict cannot be read is malformed.
        let mut out = Vec::new();
        assert!(!MailParser::default().line(b"2026-12-06 21:48:16 #1(normal) <a>; task; rspamd_task_write_log: id: <x>, len: 3", 0, &mut out));
    }

    /// `rspamd-log` is followed like the mail log; with a history as well it is refused.
    #[test]
    fn rspamd_log_is_followed_and_not_doubled_with_a_history() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("mail.log");
        std::fs::write(&log, "").unwrap();
        let config = MailConfig {
            enabled: Some(true),
            log,
            rspamd_log: Some(fixture("generated-rspamd-3.4-rspamd.log")),
            from_beginning: true,
            ..MailConfig::default()
        };
        let mut source = config.build(&BuildContext::default()).unwrap();
        let records = source.gather(0).unwrap();
        assert_eq!(records.len(), 2, "{records:?}");
        let both = MailConfig { rspamd_controller: Some("http://127.0.0.1:11334".into()), ..config };
        let err = both.build(&BuildContext::default()).err().unwrap().to_string();
        assert!(err.contains("rspamd-log") && err.contains("twice"), "{err}");
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
    }

    fn file_origin(path: PathBuf) -> HistoryOrigin {
        HistoryOrigin::File { path, mtime: None }
    }

    fn polled(h: &mut RspamdHistory) -> usize {
        let mut out = Vec::new();
        h.poll(0, &mut out);
        h.commit();
        out.len()
    }

    #[test]
    fn rspamd_rows_are_reported_once_across_rereads_bad_writes_and_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let history = dir.path().join("history.json");
        let state = dir.path().join("rspamd.seen");
        let full = std::fs::read_to_string(fixture("generated-rspamd-3.4-history.json")).unwrap();
        std::fs::write(&history, &full).unwrap();
        let mut h = RspamdHistory::new(file_origin(history.clone()), Some(state.clone()));
        assert_eq!(polled(&mut h), 4);
        let reread = |h: &mut RspamdHistory| {
            if let HistoryOrigin::File { mtime, .. } = &mut h.origin {
                *mtime = None;
            }
            polled(h)
        };
        assert_eq!(reread(&mut h), 0, "rows already reported are not reported again");
        // Caught mid-write: nothing reported, nothing forgotten.
        std::fs::write(&history, &full[..full.len() / 2]).unwrap();
        assert_eq!(reread(&mut h), 0);
        std::fs::write(&history, &full).unwrap();
        assert_eq!(reread(&mut h), 0, "a half-written file does not make old rows new");
        drop(h);
        let mut h = RspamdHistory::new(file_origin(history.clone()), Some(state.clone()));
        assert_eq!(polled(&mut h), 0, "a restart does not report the rows again");
        // Without the saved state (a crash before the batch was spooled) they come again.
        std::fs::remove_file(&state).unwrap();
        let mut h = RspamdHistory::new(file_origin(history), Some(state));
        assert_eq!(polled(&mut h), 4);
    }

    /// A one-shot HTTP server answering `status` and `body`; returns its address and the request.
    fn controller(status: &'static str, body: String) -> (String, std::thread::JoinHandle<String>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let served = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = conn.read(&mut buf).unwrap();
                assert!(n > 0, "request cut short");
                request.extend_from_slice(&buf[..n]);
            }
            let reply = format!("HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}", body.len());
            conn.write_all(reply.as_bytes()).unwrap();
            String::from_utf8(request).unwrap()
        });
        (addr, served)
    }

    #[test]
    fn rspamd_history_is_fetched_from_the_controller_with_its_password() {
        let body = std::fs::read_to_string(fixture("generated-rspamd-3.4-history.json")).unwrap();
        let (addr, served) = controller("200 OK", body);
        let c = Controller::new(&format!("http://{addr}/"), Some("s3cret".into())).unwrap();
        let mut h = RspamdHistory::new(HistoryOrigin::Controller(c), None);
        assert_eq!(polled(&mut h), 4);
        let request = served.join().unwrap();
        assert!(request.starts_with("GET /history HTTP/1.0\r\n"), "{request}");
        assert!(request.contains("\r\nPassword: s3cret\r\n"), "{request}");
        assert_eq!(polled(&mut h), 0, "the next fetch waits for its 30 s");

        let (addr, served) = controller("403 Forbidden", "{\"error\":\"Unauthorized\"}".into());
        let c = Controller::new(&format!("http://{addr}"), None).unwrap();
        let err = c.fetch().unwrap_err().to_string();
        served.join().unwrap();
        assert!(err.contains("403") && err.contains("rspamd-password-file"), "{err}");
    }

    #[test]
    fn bad_controller_settings_are_refused() {
        for url in ["https://127.0.0.1:11334", "127.0.0.1:11334", "http://host/history", "http://a b:1", "http://"] {
            assert!(Controller::new(url, None).is_err(), "{url}");
        }
        assert_eq!(Controller::new("http://localhost", None).unwrap().authority, "localhost:11334");
        let both = MailConfig {
            rspamd_history: Some("/tmp/h.json".into()),
            rspamd_controller: Some("http://127.0.0.1:11334".into()),
            ..MailConfig::default()
        };
        let err = both.build(&BuildContext::default()).err().unwrap().to_string();
        assert!(err.contains("not both"), "{err}");
    }
}
