//! `eve`: Suricata's EVE JSON log (`eve.json`), followed like `tail -F`.
//!
//! | `event_type` | becomes |
//! | --- | --- |
//! | `alert` | Alert (source `ids`): signature id/rev/text, category, severity, action, addresses, ports, protocol, app protocol |
//! | `anomaly` | Alert: signature = the anomaly event, category `anomaly`, severity 3 |
//! | `drop` | Alert: signature `drop` (+ reason), action `blocked`, severity 3 |
//! | `fileinfo` | Alert: file name in `detail`, md5/sha1/sha256; matched signatures (`sid`) as the verdict: severity 2, else 4 |
//! | `stats` | Metrics, as deltas between two stats events (see [`STATS`]); a counter that went down (Suricata restarted) counts from 0 |
//! | `flow` | Traffic per (interface, `app_proto`) summed over the cycle: `rx` = to server, `tx` = to client |
//! | anything else | counted in the event-type histogram, not stored |
//!
//! Lines are read into borrowed structs that name only the fields used; the rest is skipped
//! without allocating. A one-pass scanner ([`scan`]) reads the common line; whatever it does not
//! handle itself (escaped strings, duplicated keys, odd numbers, invalid JSON) goes through
//! serde_json, so both give the same result. A line that is not one JSON object (pretty-printed EVE,
//! garbage, a blank line) is counted as malformed and skipped. A duplicated key (seen in the
//! wild) keeps the last value, like most JSON readers.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::PathBuf;

use ampel_protocol::{Alert, AlertAction, AlertSource, Metric, Record, Traffic};
use serde::Deserialize;

use super::tail::{LineParser, TailSource};
use super::text::parse_iso;
use super::{BuildContext, Source, SourceConfig, SourceError, enabled_or_exists};

mod scan;

/// `[sources.eve]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct EveConfig {
    /// Whether the source runs (default: when `path` exists at start).
    #[serde(default)]
    pub enabled: Option<bool>,
    /// The EVE file (default `/var/log/suricata/eve.json`).
    #[serde(default = "default_path")]
    pub path: PathBuf,
    /// Read an existing file from its start on the very first run (default: false, start at its
    /// end). Later runs resume where the last one stopped either way.
    #[serde(default)]
    pub from_beginning: bool,
    /// Most bytes read per cycle (default 16 MiB); the rest waits for the next cycle.
    #[serde(default = "default_max_bytes")]
    pub max_bytes_per_cycle: u64,
}

fn default_path() -> PathBuf {
    PathBuf::from("/var/log/suricata/eve.json")
}

fn default_max_bytes() -> u64 {
    16 << 20
}

impl Default for EveConfig {
    fn default() -> Self {
        EveConfig { enabled: None, path: default_path(), from_beginning: false, max_bytes_per_cycle: default_max_bytes() }
    }
}

impl SourceConfig for EveConfig {
    fn enabled(&self) -> bool {
        enabled_or_exists(self.enabled, &self.path)
    }

    fn build(&self, ctx: &BuildContext) -> Result<Box<dyn Source>, SourceError> {
        // Followed in bounded chunks, so any size; but it must be a file.
        super::check_path("sources.eve.path", &self.path, u64::MAX)?;
        Ok(Box::new(TailSource::new(
            "eve",
            &self.path,
            ctx.state_file("eve.pos"),
            self.from_beginning,
            self.max_bytes_per_cycle,
            EveParser::default(),
        )))
    }
}

/// The stats counters reported, as (path in the stats object, metric name).
pub const STATS: [(&str, &str); 12] = [
    ("capture.kernel_packets", "ids.capture.kernel_packets"),
    ("capture.kernel_drops", "ids.capture.kernel_drops"),
    ("capture.errors", "ids.capture.errors"),
    ("decoder.pkts", "ids.decoder.pkts"),
    ("decoder.bytes", "ids.decoder.bytes"),
    ("decoder.invalid", "ids.decoder.invalid"),
    ("flow.total", "ids.flow.total"),
    ("flow.tcp", "ids.flow.tcp"),
    ("flow.udp", "ids.flow.udp"),
    ("flow.icmpv4", "ids.flow.icmpv4"),
    ("flow.memcap", "ids.flow.memcap"),
    ("detect.alert", "ids.detect.alert"),
];

/// At most this many event types and (interface, app protocol) pairs are told apart; more fall
/// into `other` (bounds memory on hostile input).
const MAX_KEYS: usize = 64;

#[derive(Deserialize)]
#[cfg_attr(test, derive(Debug, PartialEq))]
struct Event<'a> {
    #[serde(borrow, default)]
    timestamp: Option<Cow<'a, str>>,
    #[serde(borrow)]
    event_type: Cow<'a, str>,
    #[serde(borrow, default)]
    in_iface: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    src_ip: Option<Cow<'a, str>>,
    #[serde(default)]
    src_port: Option<u16>,
    #[serde(borrow, default)]
    dest_ip: Option<Cow<'a, str>>,
    #[serde(default)]
    dest_port: Option<u16>,
    #[serde(borrow, default)]
    proto: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    app_proto: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    alert: Option<EveAlert<'a>>,
    #[serde(borrow, default)]
    anomaly: Option<Anomaly<'a>>,
    #[serde(borrow, default)]
    drop: Option<Drop<'a>>,
    #[serde(borrow, default)]
    fileinfo: Option<FileInfo<'a>>,
    #[serde(default)]
    stats: Option<Stats>,
    #[serde(default)]
    flow: Option<Flow>,
}

#[derive(Deserialize)]
#[cfg_attr(test, derive(Debug, PartialEq))]
struct EveAlert<'a> {
    #[serde(borrow, default)]
    action: Option<Cow<'a, str>>,
    #[serde(default)]
    signature_id: Option<u64>,
    #[serde(default)]
    rev: Option<u32>,
    #[serde(borrow, default)]
    signature: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    category: Option<Cow<'a, str>>,
    #[serde(default)]
    severity: Option<u8>,
}

#[derive(Deserialize)]
#[cfg_attr(test, derive(Debug, PartialEq))]
struct Anomaly<'a> {
    #[serde(borrow, default, rename = "type")]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    event: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    layer: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
#[cfg_attr(test, derive(Debug, PartialEq))]
struct Drop<'a> {
    #[serde(borrow, default)]
    reason: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
#[cfg_attr(test, derive(Debug, PartialEq))]
struct FileInfo<'a> {
    #[serde(borrow, default)]
    filename: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    md5: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    sha1: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    sha256: Option<Cow<'a, str>>,
    #[serde(default)]
    sid: Vec<u64>,
}

#[derive(Deserialize, Default)]
#[cfg_attr(test, derive(Debug, PartialEq))]
struct Stats {
    #[serde(default)]
    uptime: Option<u64>,
    #[serde(default)]
    capture: Option<Capture>,
    #[serde(default)]
    decoder: Option<Decoder>,
    #[serde(default)]
    flow: Option<FlowStats>,
    #[serde(default)]
    detect: Option<Detect>,
}

#[derive(Deserialize)]
#[cfg_attr(test, derive(Debug, PartialEq))]
struct Capture {
    kernel_packets: Option<u64>,
    kernel_drops: Option<u64>,
    errors: Option<u64>,
}

#[derive(Deserialize)]
#[cfg_attr(test, derive(Debug, PartialEq))]
struct Decoder {
    pkts: Option<u64>,
    bytes: Option<u64>,
    invalid: Option<u64>,
}

#[derive(Deserialize)]
#[cfg_attr(test, derive(Debug, PartialEq))]
struct FlowStats {
    total: Option<u64>,
    tcp: Option<u64>,
    udp: Option<u64>,
    icmpv4: Option<u64>,
    memcap: Option<u64>,
}

#[derive(Deserialize)]
#[cfg_attr(test, derive(Debug, PartialEq))]
struct Detect {
    alert: Option<u64>,
}

#[derive(Deserialize)]
#[cfg_attr(test, derive(Debug, PartialEq))]
struct Flow {
    #[serde(default)]
    pkts_toserver: u64,
    #[serde(default)]
    pkts_toclient: u64,
    #[serde(default)]
    bytes_toserver: u64,
    #[serde(default)]
    bytes_toclient: u64,
}

impl Stats {
    fn values(&self) -> [Option<u64>; STATS.len()] {
        let c = self.capture.as_ref();
        let d = self.decoder.as_ref();
        let f = self.flow.as_ref();
        [
            c.and_then(|c| c.kernel_packets),
            c.and_then(|c| c.kernel_drops),
            c.and_then(|c| c.errors),
            d.and_then(|d| d.pkts),
            d.and_then(|d| d.bytes),
            d.and_then(|d| d.invalid),
            f.and_then(|f| f.total),
            f.and_then(|f| f.tcp),
            f.and_then(|f| f.udp),
            f.and_then(|f| f.icmpv4),
            f.and_then(|f| f.memcap),
            self.detect.as_ref().and_then(|d| d.alert),
        ]
    }
}

#[derive(Default, Clone, Copy)]
struct Sums {
    rx_bytes: u64,
    tx_bytes: u64,
    rx_packets: u64,
    tx_packets: u64,
}

/// Parses EVE lines; keeps the previous stats (for deltas) and this cycle's flow sums.
#[derive(Default)]
pub struct EveParser {
    prev: Option<(Option<u64>, [Option<u64>; STATS.len()])>,
    flows: BTreeMap<(String, String), Sums>,
    event_types: BTreeMap<String, u64>,
}

fn s(c: &Option<Cow<'_, str>>) -> Option<String> {
    c.as_deref().filter(|v| !v.is_empty()).map(str::to_owned)
}

fn action(a: Option<&str>) -> AlertAction {
    match a {
        Some("allowed" | "pass") => AlertAction::Allowed,
        Some("blocked" | "drop" | "dropped" | "reject" | "rejected") => AlertAction::Blocked,
        _ => AlertAction::Unknown,
    }
}

impl EveParser {
    fn count_type(&mut self, t: &str) {
        if let Some(n) = self.event_types.get_mut(t) {
            *n += 1;
        } else if self.event_types.len() < MAX_KEYS {
            self.event_types.insert(t.to_owned(), 1);
        } else {
            *self.event_types.entry("other".to_owned()).or_default() += 1;
        }
    }

    fn event(&mut self, ev: &Event<'_>, now_ms: i64, out: &mut Vec<Record>) -> bool {
        self.count_type(&ev.event_type);
        let parsed_ts = ev.timestamp.as_deref().and_then(parse_iso);
        let ts = parsed_ts.unwrap_or(now_ms);
        let mut ok = parsed_ts.is_some();
        let base = |sev: u8, sig: String, act: AlertAction| Alert {
            src: s(&ev.src_ip),
            dst: s(&ev.dest_ip),
            src_port: ev.src_port,
            dst_port: ev.dest_port,
            protocol: s(&ev.proto),
            app_proto: s(&ev.app_proto),
            ..Alert::new(ts, AlertSource::Ids, sev, sig, act)
        };
        match (&*ev.event_type, ev) {
            ("alert", Event { alert: Some(a), .. }) => {
                let sig = a.signature.as_deref().unwrap_or_default().to_owned();
                let mut alert = base(a.severity.unwrap_or(3).clamp(1, 4), sig, action(a.action.as_deref()));
                alert.signature_id = a.signature_id;
                alert.signature_rev = a.rev;
                alert.category = s(&a.category);
                out.push(Record::Alert(alert));
            }
            ("anomaly", Event { anomaly: Some(a), .. }) => {
                let sig = a.event.as_deref().unwrap_or("anomaly").to_owned();
                let mut alert = base(3, sig, AlertAction::Allowed);
                alert.category = Some("anomaly".to_owned());
                alert.detail = match (s(&a.kind), s(&a.layer)) {
                    (Some(t), Some(l)) => Some(format!("type={t} layer={l}")),
                    (Some(t), None) => Some(format!("type={t}")),
                    (None, l) => l.map(|l| format!("layer={l}")),
                };
                out.push(Record::Alert(alert));
            }
            ("drop", _) => {
                let reason = ev.drop.as_ref().and_then(|d| s(&d.reason));
                let sig = reason.as_ref().map_or_else(|| "drop".to_owned(), |r| format!("drop: {r}"));
                let mut alert = base(3, sig, AlertAction::Blocked);
                alert.category = Some("drop".to_owned());
                out.push(Record::Alert(alert));
            }
            ("fileinfo", Event { fileinfo: Some(f), .. }) => {
                let matched = f.sid.first().copied();
                let mut alert = base(if matched.is_some() { 2 } else { 4 }, "fileinfo".to_owned(), AlertAction::Allowed);
                alert.signature_id = matched;
                alert.category = Some("file".to_owned());
                alert.detail = s(&f.filename);
                alert.md5 = s(&f.md5);
                alert.sha1 = s(&f.sha1);
                alert.sha256 = s(&f.sha256);
                out.push(Record::Alert(alert));
            }
            ("stats", Event { stats: Some(st), .. }) => self.stats(st, ts, out),
            ("flow", Event { flow: Some(f), .. }) => {
                let key = (
                    ev.in_iface.as_deref().unwrap_or_default().to_owned(),
                    ev.app_proto.as_deref().unwrap_or("unknown").to_owned(),
                );
                let full = self.flows.len() >= MAX_KEYS && !self.flows.contains_key(&key);
                let key = if full { (String::new(), "other".to_owned()) } else { key };
                let sum = self.flows.entry(key).or_default();
                sum.rx_bytes = sum.rx_bytes.saturating_add(f.bytes_toserver);
                sum.tx_bytes = sum.tx_bytes.saturating_add(f.bytes_toclient);
                sum.rx_packets = sum.rx_packets.saturating_add(f.pkts_toserver);
                sum.tx_packets = sum.tx_packets.saturating_add(f.pkts_toclient);
            }
            // The event type promises a section that is not there.
            ("alert" | "anomaly" | "fileinfo" | "stats" | "flow", _) => ok = false,
            _ => {}
        }
        ok
    }

    fn stats(&mut self, st: &Stats, ts: i64, out: &mut Vec<Record>) {
        let now = st.values();
        if let Some((prev_uptime, prev)) = &self.prev {
            let restarted = matches!((prev_uptime, st.uptime), (Some(p), Some(n)) if n < *p);
            for (i, (_, name)) in STATS.iter().enumerate() {
                let (Some(cur), Some(before)) = (now[i], prev[i]) else { continue };
                let delta = if restarted || cur < before { cur } else { cur - before };
                out.push(Record::Metric(Metric { ts, name: (*name).to_owned(), labels: Vec::new(), value: delta as f64 }));
            }
        }
        self.prev = Some((st.uptime, now));
    }
}

impl LineParser for EveParser {
    fn line(&mut self, line: &[u8], now_ms: i64, out: &mut Vec<Record>) -> bool {
        if let Some(ev) = scan::event(line) {
            return self.event(&ev, now_ms, out);
        }
        match serde_json::from_slice::<Event<'_>>(line) {
            Ok(ev) => self.event(&ev, now_ms, out),
            // Valid JSON the typed reader refused (a duplicated key, a port out of range): read it
            // into a map, which keeps the last of duplicated keys, and try once more from there.
            Err(e) if e.classify() == serde_json::error::Category::Data => {
                let Ok(value) = serde_json::from_slice::<serde_json::Value>(line) else { return false };
                match Event::deserialize(&value) {
                    Ok(ev) => self.event(&ev, now_ms, out),
                    Err(_) => {
                        if let Some(t) = value.get("event_type").and_then(serde_json::Value::as_str) {
                            self.count_type(t);
                        }
                        false
                    }
                }
            }
            Err(_) => false,
        }
    }

    fn flush(&mut self, now_ms: i64, interval_ms: u64, out: &mut Vec<Record>) {
        for ((interface, app), sum) in std::mem::take(&mut self.flows) {
            out.push(Record::Traffic(Traffic {
                ts: now_ms,
                interval_ms,
                interface,
                category: Some(app),
                rx_bytes: sum.rx_bytes,
                tx_bytes: sum.tx_bytes,
                rx_packets: sum.rx_packets,
                tx_packets: sum.tx_packets,
                rx_errors: 0,
                tx_errors: 0,
            }));
        }
    }

    fn event_types(&self) -> Option<BTreeMap<String, u64>> {
        Some(self.event_types.clone())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
