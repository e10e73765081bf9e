//! `[[jobs]]` and `[delivery]`: report jobs and how the scheduler delivers them.
//!
//! Every value is parsed into a type that cannot hold a bad value: send rules, periods,
//! address lists (at most 100, each a valid mailbox, no control characters), one-line
//! subjects. A bad value names file, line and key through [`crate::config::toml_error`].

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use jiff::civil::{Date, Time, Weekday};
use serde::{Deserialize, Deserializer};

use crate::config::{Duration, TimeZoneName};

/// Most send rules per job.
pub const MAX_RULES: usize = 5;
/// Most recipients (and, separately, most CC) per job.
pub const MAX_RECIPIENTS: usize = 100;

/// One `[[jobs]]` entry: which tenants' reports go to whom, and when.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct JobConfig {
    /// Unique name; keys the scheduler state and the archive.
    pub name: JobName,
    /// Tenants; each gets its own report and mail.
    pub tenants: Vec<ampel_protocol::TenantId>,
    /// A calendar period: `day`, `week` or `month` — the last complete one in `time-zone`
    /// before the send time. Exactly one of `period`, `days` and `hours` is set.
    pub period: Option<ReportPeriod>,
    /// A rolling window: the `days` × 24 h (calendar days, so 23 or 25 h across DST) ending at
    /// the send time.
    pub days: Option<WindowLength<366>>,
    /// A rolling window of `hours` hours ending at the send time.
    pub hours: Option<WindowLength<744>>,
    /// First day of a `week` period; default Monday (ISO weeks).
    #[serde(default)]
    pub week_start: WeekStart,
    /// When to send, in `time-zone`: e.g. `"mon 08:00"`, `"daily 06:30"`, `"day 1 08:00"`.
    pub send: SendRules,
    /// IANA time zone of the send rules and the period boundaries.
    #[serde(default)]
    pub time_zone: TimeZoneName,
    /// No run is due before this date (in `time-zone`).
    pub start: Option<Date>,
    /// A disabled job is kept (with its state) but sends nothing.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Subject template; `{tenant}` is replaced by the tenant id, `{period}` by the period's
    /// name in the job's language. Absent: the language's default (see
    /// [`crate::report::mail::MailStrings::subject`]).
    pub subject: Option<OneLine>,
    /// Text placed above the summary in the mail body (line breaks allowed).
    #[serde(default)]
    pub message: String,
    /// Recipients: a list or one `;`-separated string.
    pub to: AddressList,
    /// CC recipients: a list or one `;`-separated string.
    #[serde(default)]
    pub cc: AddressList,
    /// Language of the mail and the report.
    #[serde(default)]
    pub language: crate::report::Lang,
    /// How much of the report: `"full"` (default) or `"summary"` (cover, executive summary,
    /// overview, findings; see [`crate::report::Depth`]).
    #[serde(default)]
    pub depth: crate::report::Depth,
    /// Report widgets (sections) by name; empty: all. See [`crate::report::Widget`].
    #[serde(default)]
    pub widgets: Vec<crate::report::Widget>,
    /// What the report does with `[[suppress]]`ed alerts: `"appendix"` (default: they do not
    /// count and are listed in the appendix), `"exclude"` (not counted, only their number
    /// given) or `"include"` (suppressions ignored: they count and drive the lights).
    #[serde(default)]
    pub false_positives: crate::assess::suppress::FalsePositives,
    /// How the PDF travels.
    #[serde(default)]
    pub delivery: DeliveryMode,
}

fn yes() -> bool {
    true
}

/// `[delivery]`: how scheduled reports are delivered.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct DeliveryConfig {
    /// A run missed while the collector was down: `"send-once"` sends the latest missed run
    /// once, marked late; `"skip"` records it as skipped.
    pub missed: MissedRuns,
    /// A run sent this long after its time is marked late.
    pub late_after: Duration,
    /// Delivery attempts per report mail (1 = no retry).
    pub attempts: u32,
    /// Wait before the first retry; doubles for each further one.
    pub retry_backoff: Duration,
    /// `delivery = "auto"` sends a link instead of the PDF above this size (the server's
    /// advertised SMTP SIZE, when smaller, wins).
    pub max_attachment_bytes: u64,
    /// How long a download link works.
    pub link_ttl: Duration,
    /// How long an invitation's confirm link works (and, after the reminder, how long an
    /// address stays `invited` before it is marked `expired`).
    pub invite_ttl: Duration,
    /// An address still unconfirmed this long after its invitation gets one reminder.
    pub remind_after: Duration,
    /// How long the unsubscribe link of a mail works; longer than the longest gap between
    /// two mails, since every mail brings a fresh one.
    pub unsubscribe_ttl: Duration,
    /// After a start-up, the scheduler's first step waits at most this long for the agents
    /// that were sending before to deliver what they spooled meanwhile (0s: not at all).
    pub startup_grace: Duration,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            missed: MissedRuns::SendOnce,
            late_after: Duration(std::time::Duration::from_secs(15 * 60)),
            attempts: 3,
            retry_backoff: Duration(std::time::Duration::from_secs(60)),
            max_attachment_bytes: 10 << 20,
            link_ttl: Duration(std::time::Duration::from_secs(30 * 86_400)),
            invite_ttl: Duration(std::time::Duration::from_secs(14 * 86_400)),
            remind_after: Duration(std::time::Duration::from_secs(3 * 86_400)),
            unsubscribe_ttl: Duration(std::time::Duration::from_secs(92 * 86_400)),
            startup_grace: Duration(std::time::Duration::from_secs(120)),
        }
    }
}

/// What to do with runs missed while the collector was down.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum MissedRuns {
    /// Send the latest missed run once, marked late.
    #[default]
    SendOnce,
    /// Send nothing; record the missed runs as skipped.
    Skip,
}

/// A job name: 1–64 characters of `A-Z a-z 0-9 - _ .`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobName(pub String);

impl<'de> Deserialize<'de> for JobName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if s.is_empty() || s.len() > 64 || !s.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
            return Err(serde::de::Error::custom(format!("job name {s:?} must be 1-64 characters of A-Z, a-z, 0-9, '-', '_', '.'")));
        }
        Ok(JobName(s))
    }
}

impl fmt::Display for JobName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A non-empty line of text without CR, LF or other control characters (it becomes a header).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OneLine(pub String);

impl OneLine {
    /// Checks `s`.
    pub fn new(s: &str) -> Result<OneLine, String> {
        if let Some(c) = s.chars().find(|c| c.is_control()) {
            return Err(format!("{s:?} contains the control character {c:?}; it must be one line of text"));
        }
        if s.trim().is_empty() {
            return Err("must not be empty".into());
        }
        Ok(OneLine(s.to_owned()))
    }
}

impl<'de> Deserialize<'de> for OneLine {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        OneLine::new(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// Up to [`MAX_RECIPIENTS`] validated mailboxes, written as a list or a `;`-separated string;
/// a list item can be a table `{ address = "...", language = "de", depth = "summary" }` that
/// gives one recipient its own language and depth (a plain address keeps the job's).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AddressList(pub Vec<String>, pub BTreeMap<String, RecipientPrefs>);

/// A recipient's own language and depth; unset: the job's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RecipientPrefs {
    /// The recipient's language.
    pub language: Option<crate::report::Lang>,
    /// The recipient's depth.
    pub depth: Option<crate::report::Depth>,
}

/// A recipient written as a table.
#[derive(Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct RecipientTable {
    address: String,
    language: Option<crate::report::Lang>,
    depth: Option<crate::report::Depth>,
}

impl AddressList {
    /// Parses and checks every address.
    pub fn parse(items: Vec<String>) -> Result<AddressList, String> {
        let mut out = Vec::new();
        for item in items.iter().flat_map(|s| s.split(';')) {
            if let Some(c) = item.chars().find(|c| c.is_control()) {
                return Err(format!("address {item:?} contains the control character {c:?}"));
            }
            let item = item.trim();
            if item.is_empty() {
                continue;
            }
            let mailbox: lettre::message::Mailbox = item.parse().map_err(|e| format!("{item:?} is not an e-mail address: {e}"))?;
            out.push(mailbox.to_string());
        }
        if out.len() > MAX_RECIPIENTS {
            return Err(format!("{} addresses; at most {MAX_RECIPIENTS} are allowed", out.len()));
        }
        Ok(AddressList(out, BTreeMap::new()))
    }

    /// The bare addresses (`user@example.org`), lower-cased, for opt-in bookkeeping.
    pub fn addresses(&self) -> Vec<String> {
        self.0.iter().filter_map(|m| m.parse::<lettre::message::Mailbox>().ok()).map(|m| m.email.to_string().to_lowercase()).collect()
    }

    /// The preferences given for `mailbox` (by its bare address), if any.
    pub fn prefs(&self, mailbox: &str) -> Option<RecipientPrefs> {
        self.1.get(&crate::recipients::bare(mailbox)).copied()
    }
}

impl<'de> Deserialize<'de> for AddressList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            One(String),
            Many(Vec<toml::Value>),
        }
        let items = match Raw::deserialize(d)? {
            Raw::One(s) => vec![toml::Value::String(s)],
            Raw::Many(v) => v,
        };
        let mut prefs = BTreeMap::new();
        let mut plain = Vec::with_capacity(items.len());
        for item in items {
            match item {
                toml::Value::String(s) => plain.push(s),
                table @ toml::Value::Table(_) => {
                    // Deserialized on its own so that a misspelt key is named.
                    let t = RecipientTable::deserialize(table).map_err(serde::de::Error::custom)?;
                    if t.address.contains(';') {
                        return Err(serde::de::Error::custom(format!("address {:?}: one address per table", t.address)));
                    }
                    prefs.insert(crate::recipients::bare(&t.address), RecipientPrefs { language: t.language, depth: t.depth });
                    plain.push(t.address);
                }
                other => {
                    return Err(serde::de::Error::custom(format!(
                        "a recipient is an address or {{ address = \"...\", language = \"de\", depth = \"summary\" }}, not {other}"
                    )));
                }
            }
        }
        let mut list = AddressList::parse(plain).map_err(serde::de::Error::custom)?;
        list.1 = prefs;
        Ok(list)
    }
}

/// How the PDF travels.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeliveryMode {
    /// Always attached.
    Attachment,
    /// Always a signed, expiring download link.
    Link,
    /// Attached unless too big for the server or `max-attachment-bytes`; then a link.
    #[default]
    Auto,
}

/// What a report covers: a calendar unit (`period`) or a rolling window (`days`, `hours`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportPeriod {
    /// The last complete calendar day (00:00–24:00 in the job's zone; 23 or 25 h across DST).
    Day,
    /// The last complete calendar week, starting on `week-start` (ISO: Monday).
    Week,
    /// The last complete calendar month.
    Month,
    /// The N calendar days ending at the send time (1–366).
    Days(u16),
    /// The N hours ending at the send time (1–744).
    Hours(u16),
}

impl FromStr for ReportPeriod {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s.trim() {
            "day" => ReportPeriod::Day,
            "week" => ReportPeriod::Week,
            "month" => ReportPeriod::Month,
            // Before calendar periods, "14d" was the way to write a rolling window; still read.
            other => {
                let n = other.strip_suffix('d').and_then(|n| n.parse::<u16>().ok()).filter(|n| (1..=366).contains(n)).ok_or_else(|| {
                    format!(
                        "period {other:?}: write \"day\", \"week\" or \"month\" (calendar), or a rolling window as days = N or hours = N"
                    )
                })?;
                ReportPeriod::Days(n)
            }
        })
    }
}

impl<'de> Deserialize<'de> for ReportPeriod {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

impl ReportPeriod {
    /// Short name: `day`, `week`, `month`, `14d`, `12h`.
    pub fn name(self) -> String {
        match self {
            ReportPeriod::Day => "day".into(),
            ReportPeriod::Week => "week".into(),
            ReportPeriod::Month => "month".into(),
            ReportPeriod::Days(n) => format!("{n}d"),
            ReportPeriod::Hours(n) => format!("{n}h"),
        }
    }
}

/// A window length of 1 to `MAX` units (`days = 7`, `hours = 12`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowLength<const MAX: u16>(pub u16);

impl<'de, const MAX: u16> Deserialize<'de> for WindowLength<MAX> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = i64::deserialize(d)?;
        u16::try_from(n)
            .ok()
            .filter(|n| (1..=MAX).contains(n))
            .map(WindowLength)
            .ok_or_else(|| serde::de::Error::custom(format!("{n} is out of range: give 1 to {MAX}")))
    }
}

/// The first day of a calendar week.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WeekStart(pub Weekday);

impl Default for WeekStart {
    fn default() -> Self {
        WeekStart(Weekday::Monday)
    }
}

impl<'de> Deserialize<'de> for WeekStart {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        weekday(&s)
            .map(WeekStart)
            .ok_or_else(|| serde::de::Error::custom(format!("week-start {s:?}: write a day such as \"mon\" or \"sun\"")))
    }
}

/// `mon`, `Monday`, `SUN` ...: the first three letters name the day.
fn weekday(s: &str) -> Option<Weekday> {
    Some(match s.trim().to_ascii_lowercase().get(..3)? {
        "mon" => Weekday::Monday,
        "tue" => Weekday::Tuesday,
        "wed" => Weekday::Wednesday,
        "thu" => Weekday::Thursday,
        "fri" => Weekday::Friday,
        "sat" => Weekday::Saturday,
        "sun" => Weekday::Sunday,
        _ => return None,
    })
}

impl JobConfig {
    /// The edition `mailbox` gets: its own language and depth where its `to` or `cc` entry
    /// gives them, else the job's.
    pub fn edition_of(&self, mailbox: &str) -> crate::report::Edition {
        let prefs = self.to.prefs(mailbox).or_else(|| self.cc.prefs(mailbox)).unwrap_or_default();
        crate::report::Edition { lang: prefs.language.unwrap_or(self.language), depth: prefs.depth.unwrap_or(self.depth) }
    }

    /// The editions a run renders: the job's own first, then every other one a `to` or `cc`
    /// address asks for, each once.
    pub fn editions(&self) -> Vec<crate::report::Edition> {
        let mut out = vec![crate::report::Edition { lang: self.language, depth: self.depth }];
        for m in self.to.0.iter().chain(&self.cc.0) {
            let e = self.edition_of(m);
            if !out.contains(&e) {
                out.push(e);
            }
        }
        out
    }

    /// What the job's reports cover (`period`, `days` or `hours`, whichever is set; checked
    /// by [`validate`] to be exactly one).
    pub fn window(&self) -> ReportPeriod {
        match (self.period, self.days, self.hours) {
            (Some(p), _, _) => p,
            (None, Some(d), _) => ReportPeriod::Days(d.0),
            (None, None, Some(h)) => ReportPeriod::Hours(h.0),
            (None, None, None) => ReportPeriod::Day,
        }
    }
}

/// On which days a rule fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleDay {
    /// Every day.
    Daily,
    /// Every given weekday.
    Weekly(Weekday),
    /// The given day of every month; 29–31 fall on the last day of shorter months.
    Monthly(i8),
}

/// One send rule: a day and a wall-clock time in the job's zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendRule {
    /// Which days.
    pub day: RuleDay,
    /// Wall-clock time; a time skipped by DST moves forward by the gap.
    pub time: Time,
}

impl FromStr for SendRule {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let help = "write e.g. \"mon 08:00\", \"daily 06:30\" or \"day 1 08:00\"";
        let words: Vec<&str> = s.split_whitespace().collect();
        let (day, time) = match words.as_slice() {
            ["daily", t] => (RuleDay::Daily, *t),
            ["day", n, t] => {
                let n: i8 =
                    n.parse().ok().filter(|n| (1..=31).contains(n)).ok_or_else(|| format!("send rule {s:?}: day of month must be 1-31"))?;
                (RuleDay::Monthly(n), *t)
            }
            [w, t] => {
                let wd = weekday(w).ok_or_else(|| format!("send rule {s:?}: unknown day {w:?}; {help}"))?;
                (RuleDay::Weekly(wd), *t)
            }
            _ => return Err(format!("send rule {s:?}: {help}")),
        };
        let time: Time = time.parse().map_err(|_| format!("send rule {s:?}: {time:?} is not a time such as 08:00"))?;
        Ok(SendRule { day, time })
    }
}

/// One to [`MAX_RULES`] send rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendRules(pub Vec<SendRule>);

impl<'de> Deserialize<'de> for SendRules {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = Vec::<String>::deserialize(d)?;
        if raw.is_empty() || raw.len() > MAX_RULES {
            return Err(serde::de::Error::custom(format!("{} send rules; give 1 to {MAX_RULES}", raw.len())));
        }
        raw.iter().map(|s| s.parse()).collect::<Result<Vec<_>, _>>().map(SendRules).map_err(serde::de::Error::custom)
    }
}

/// Checks across jobs: unique names, at least one tenant and one recipient.
pub fn validate(jobs: &[JobConfig]) -> Result<(), String> {
    let mut seen = std::collections::HashSet::new();
    for job in jobs {
        if !seen.insert(&job.name) {
            return Err(format!("[[jobs]] name {:?} is used twice; names must be unique", job.name.0));
        }
        if job.tenants.is_empty() {
            return Err(format!("[[jobs]] {:?} has no tenants", job.name.0));
        }
        if job.to.0.is_empty() {
            return Err(format!("[[jobs]] {:?} has no recipients (`to`)", job.name.0));
        }
        let set = [job.period.is_some(), job.days.is_some(), job.hours.is_some()].iter().filter(|s| **s).count();
        if set != 1 {
            return Err(format!(
                "[[jobs]] {:?}: set exactly one of period = \"day\" | \"week\" | \"month\" (the last complete calendar unit), \
                 days = N or hours = N (the rolling window ending at the send time)",
                job.name.0
            ));
        }
    }
    Ok(())
}
