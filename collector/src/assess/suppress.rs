//! False positives: the `[[suppress]]` entries of collector.toml and how they apply.
//!
//! Plain functions over data, no store and no clock: the assessment builds a [`Suppressor`]
//! for one tenant and period, hands it every device's alerts before the rules see them and the
//! rules' findings after, and keeps what it took away for the report's appendix.
//!
//! An entry matches an alert when every matcher it sets matches (`signature-id`, `signature`,
//! `antivirus`, `source`); `rule` drops that rule's findings instead and stands alone. An alert
//! or finding that several entries match counts for the first in file order. An entry with
//! `until` stops applying once the period being judged ends after that moment.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use ampel_protocol::{Alert, AlertSource, DeviceId, TenantId};
use serde::{Deserialize, Deserializer};

use crate::risk::Finding;

/// One `[[suppress]]` entry: a known false positive of a tenant (or one of its devices).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Suppression {
    /// The tenant whose alerts or findings are suppressed.
    pub tenant: TenantId,
    /// Only this device of the tenant; every device when absent.
    pub device: Option<DeviceId>,
    /// A risk rule id (`threats.ids-severe`): its findings are dropped. Stands alone.
    pub rule: Option<String>,
    /// IDS alerts with this signature id.
    pub signature_id: Option<u64>,
    /// IDS alerts whose signature text contains this, ignoring ASCII case.
    pub signature: Option<SignatureText>,
    /// Antivirus detections with exactly this name (`Win.Test.EICAR_HDB-1`).
    pub antivirus: Option<String>,
    /// Alerts from this address or network (`192.0.2.7`, `10.0.0.0/8`, `2001:db8::/32`).
    pub source: Option<Network>,
    /// Why this is a false positive; printed in the report's appendix.
    pub reason: String,
    /// When the entry stops applying (RFC 3339, or a date: through that day, UTC).
    pub until: Option<Until>,
}

/// What is wrong with a `[[suppress]]` entry beyond its values' syntax.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SuppressError {
    /// Nothing to match: it would suppress every alert of the tenant.
    #[error("nothing to match: set rule, signature-id, signature, antivirus or source")]
    NoMatcher,
    /// `rule` together with alert matchers: which of the two would it mean?
    #[error("key \"rule\" stands alone: a rule's findings are dropped whole; match alerts in a separate entry")]
    RuleWithAlertMatchers,
    /// A rule id no rule has.
    #[error("key \"rule\": unknown rule {0:?}; known rules: {1}")]
    UnknownRule(String, String),
    /// IDS and antivirus matchers in one entry can never both match.
    #[error(
        "keys \"signature-id\"/\"signature\" match IDS alerts and \"antivirus\" antivirus detections; no alert is both: use two entries"
    )]
    IdsAndAntivirus,
    /// An empty matcher text would match everything.
    #[error("key {0:?} is empty")]
    EmptyText(&'static str),
    /// Without a reason nobody can later tell why alerts are missing.
    #[error("key \"reason\" is empty: say why this is a false positive")]
    NoReason,
}

impl Suppression {
    /// Checks across keys; `rules` are the known rule ids.
    pub fn validate(&self, rules: &[&str]) -> Result<(), SuppressError> {
        if self.reason.trim().is_empty() {
            return Err(SuppressError::NoReason);
        }
        let signature = self.signature.as_ref().map(|s| s.text.as_str());
        for (key, text) in [("rule", self.rule.as_deref()), ("signature", signature), ("antivirus", self.antivirus.as_deref())] {
            if text.is_some_and(|t| t.trim().is_empty()) {
                return Err(SuppressError::EmptyText(key));
            }
        }
        let ids = self.signature_id.is_some() || self.signature.is_some();
        let alerts = ids || self.antivirus.is_some() || self.source.is_some();
        match &self.rule {
            Some(_) if alerts => Err(SuppressError::RuleWithAlertMatchers),
            Some(rule) if !rules.contains(&rule.as_str()) => Err(SuppressError::UnknownRule(rule.clone(), rules.join(", "))),
            Some(_) => Ok(()),
            None if !alerts => Err(SuppressError::NoMatcher),
            None if ids && self.antivirus.is_some() => Err(SuppressError::IdsAndAntivirus),
            None => Ok(()),
        }
    }

    /// Whether the entry still applies to a period ending at `end_ms`.
    pub fn applies_until(&self, end_ms: i64) -> bool {
        self.until.as_ref().is_none_or(|u| end_ms <= u.ms)
    }

    /// Whether the alert of `device` seen in `view` is one of this entry's false positives
    /// (tenant checked by the caller). A `rule` entry matches no alert.
    pub fn matches_alert(&self, device: &str, view: &AlertView<'_>) -> bool {
        if self.rule.is_some() || self.device.as_ref().is_some_and(|d| d.as_str() != device) {
            return false;
        }
        let alert = view.alert;
        let ids = alert.source == AlertSource::Ids;
        let antivirus = alert.source == AlertSource::Antivirus;
        self.signature_id.is_none_or(|id| ids && alert.signature_id == Some(id))
            && self.signature.as_ref().is_none_or(|s| ids && view.signature_lower.contains(&s.lower))
            && self.antivirus.as_deref().is_none_or(|s| antivirus && alert.signature == s)
            && self.source.as_ref().is_none_or(|n| view.src.is_some_and(|a| n.contains(a)))
    }

    /// Whether `finding` is dropped by this entry (tenant checked by the caller).
    pub fn matches_finding(&self, finding: &Finding) -> bool {
        self.rule.as_deref() == Some(finding.rule.id())
            && self.device.as_ref().is_none_or(|d| finding.device.as_deref() == Some(d.as_str()))
    }

    /// What the entry matches, as written in the configuration.
    pub fn what(&self) -> String {
        let mut parts = Vec::new();
        if let Some(d) = &self.device {
            parts.push(format!("device = {d}"));
        }
        if let Some(r) = &self.rule {
            parts.push(format!("rule = {r}"));
        }
        if let Some(id) = self.signature_id {
            parts.push(format!("signature-id = {id}"));
        }
        if let Some(s) = &self.signature {
            parts.push(format!("signature ~ \u{201C}{s}\u{201D}"));
        }
        if let Some(s) = &self.antivirus {
            parts.push(format!("antivirus = {s}"));
        }
        if let Some(n) = &self.source {
            parts.push(format!("source = {n}"));
        }
        parts.join(", ")
    }
}

/// What the matchers read of one alert, worked out once for all entries: checking every alert
/// of a period against every entry must not parse an address or fold a signature per entry.
#[derive(Debug)]
pub struct AlertView<'a> {
    alert: &'a Alert,
    /// The source address, parsed.
    src: Option<IpAddr>,
    /// The signature in ASCII lowercase.
    signature_lower: String,
}

impl<'a> AlertView<'a> {
    /// The view of `alert`.
    pub fn new(alert: &'a Alert) -> AlertView<'a> {
        AlertView { alert, src: alert.src.as_deref().and_then(parse_addr), signature_lower: alert.signature.to_ascii_lowercase() }
    }
}

/// Signature text an entry looks for: as written (shown in reports) and in ASCII lowercase
/// (matched).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureText {
    text: String,
    lower: String,
}

impl<'de> Deserialize<'de> for SignatureText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Ok(SignatureText { lower: text.to_ascii_lowercase(), text })
    }
}

impl fmt::Display for SignatureText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// An alert's address as sent (`192.0.2.7`, `2001:db8::1`, `[2001:db8::1]`); an IPv4-mapped
/// IPv6 address as its IPv4 address.
fn parse_addr(s: &str) -> Option<IpAddr> {
    let addr: IpAddr = s.trim().trim_start_matches('[').trim_end_matches(']').parse().ok()?;
    Some(match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
        v4 => v4,
    })
}

/// An address or network in CIDR notation; a bare address is a network of one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    addr: IpAddr,
    prefix: u8,
}

impl Network {
    /// Whether `addr` lies in the network (an IPv4 address never in an IPv6 network).
    pub fn contains(&self, addr: IpAddr) -> bool {
        match (self.addr, addr) {
            (IpAddr::V4(n), IpAddr::V4(a)) => mask32(u32::from(n), self.prefix) == mask32(u32::from(a), self.prefix),
            (IpAddr::V6(n), IpAddr::V6(a)) => mask128(u128::from(n), self.prefix) == mask128(u128::from(a), self.prefix),
            _ => false,
        }
    }
}

fn mask32(v: u32, prefix: u8) -> u32 {
    v.checked_shr(32 - u32::from(prefix)).unwrap_or(0)
}

fn mask128(v: u128, prefix: u8) -> u128 {
    v.checked_shr(128 - u32::from(prefix)).unwrap_or(0)
}

impl FromStr for Network {
    type Err = String;
    fn from_str(s: &str) -> Result<Network, String> {
        let bad = || format!("{s:?} is not an address or network; write e.g. \"192.0.2.7\", \"10.0.0.0/8\" or \"2001:db8::/32\"");
        let (addr, prefix) = match s.trim().split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s.trim(), None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| bad())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(bad)?,
        };
        let net = Network { addr, prefix };
        let host_bits = match addr {
            IpAddr::V4(a) => u32::from(a) != mask32(u32::from(a), prefix).checked_shl(32 - u32::from(prefix)).unwrap_or(0),
            IpAddr::V6(a) => u128::from(a) != mask128(u128::from(a), prefix).checked_shl(128 - u32::from(prefix)).unwrap_or(0),
        };
        if host_bits {
            return Err(format!("{s:?} has host bits set after the /{prefix}; write the network's first address"));
        }
        Ok(net)
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let max = if self.addr.is_ipv4() { 32 } else { 128 };
        if self.prefix == max { write!(f, "{}", self.addr) } else { write!(f, "{}/{}", self.addr, self.prefix) }
    }
}

impl<'de> Deserialize<'de> for Network {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

/// The moment an entry stops applying, Unix ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Until {
    /// Unix ms UTC.
    pub ms: i64,
}

impl FromStr for Until {
    type Err = String;
    fn from_str(s: &str) -> Result<Until, String> {
        if let Ok(t) = s.parse::<jiff::Timestamp>() {
            return Ok(Until { ms: t.as_millisecond() });
        }
        let bad = || format!("{s:?} is not a date or an RFC 3339 time with offset; write e.g. 2027-01-31 or 2027-01-31T18:00:00+01:00");
        // jiff reads the date of a date-time too: a time without an offset must not pass as a day.
        if s.len() != 10 {
            return Err(bad());
        }
        let date: jiff::civil::Date = s.parse().map_err(|_| bad())?;
        let end = date.tomorrow().map_err(|_| bad())?.to_zoned(jiff::tz::TimeZone::UTC).map_err(|_| bad())?;
        Ok(Until { ms: end.timestamp().as_millisecond() })
    }
}

impl<'de> Deserialize<'de> for Until {
    /// A string, or a TOML date or offset date-time written without quotes.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = match toml::Value::deserialize(d)? {
            toml::Value::String(s) => s,
            toml::Value::Datetime(dt) => dt.to_string(),
            other => return Err(serde::de::Error::custom(format!("{other} is not a date or an RFC 3339 time"))),
        };
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Whether a report counts, lists or ignores suppressed alerts (a job's `false-positives`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FalsePositives {
    /// Suppressed alerts do not count; the report gives their number only.
    Exclude,
    /// Suppressions are ignored: every alert counts and drives the lights.
    Include,
    /// Suppressed alerts do not count and are listed in the appendix. The default: the
    /// reader sees what was left out and why.
    #[default]
    Appendix,
}

/// What one entry took away in a period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// The entry's number, 1-based, in file order.
    pub index: usize,
    /// What it matches, as written.
    pub what: String,
    /// Its reason.
    pub reason: String,
    /// Alerts suppressed.
    pub alerts: u64,
    /// Findings dropped.
    pub findings: u64,
    /// The devices concerned, sorted.
    pub devices: Vec<String>,
    /// The suppressed signatures (or rules), most frequent first, at most three.
    pub signatures: Vec<(String, u64)>,
}

/// An entry of the tenant that no longer applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expired {
    /// The entry's number, 1-based.
    pub index: usize,
    /// What it matched.
    pub what: String,
    /// Its reason.
    pub reason: String,
    /// When it stopped applying, Unix ms.
    pub until_ms: i64,
}

/// What the suppressions did to one tenant's period.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Suppressed {
    /// How the report treats them.
    pub mode: FalsePositives,
    /// Entries that took something away, in file order.
    pub applied: Vec<Applied>,
    /// Entries of the tenant past their `until`.
    pub expired: Vec<Expired>,
    /// Entries of the tenant not applied because the report includes false positives.
    pub ignored: usize,
}

impl Suppressed {
    /// Alerts suppressed in all.
    pub fn alerts(&self) -> u64 {
        self.applied.iter().map(|a| a.alerts).sum()
    }

    /// Findings dropped in all.
    pub fn findings(&self) -> u64 {
        self.applied.iter().map(|a| a.findings).sum()
    }
}

#[derive(Debug, Default)]
struct Hits {
    alerts: u64,
    findings: u64,
    devices: BTreeSet<String>,
    what: BTreeMap<String, u64>,
}

/// The suppressions of one tenant for one period, and what they took away so far.
#[derive(Debug)]
pub struct Suppressor<'a> {
    mode: FalsePositives,
    /// (1-based index, entry) of the entries that apply.
    active: Vec<(usize, &'a Suppression)>,
    expired: Vec<Expired>,
    ignored: usize,
    hits: BTreeMap<usize, Hits>,
}

impl<'a> Suppressor<'a> {
    /// The entries of `tenant` that apply to a period ending at `end_ms` under `mode`.
    pub fn new(all: &'a [Suppression], tenant: &str, end_ms: i64, mode: FalsePositives) -> Suppressor<'a> {
        let mut s = Suppressor { mode, active: Vec::new(), expired: Vec::new(), ignored: 0, hits: BTreeMap::new() };
        for (i, e) in all.iter().enumerate().filter(|(_, e)| e.tenant.as_str() == tenant) {
            match e.until {
                Some(until) if !e.applies_until(end_ms) => {
                    s.expired.push(Expired { index: i + 1, what: e.what(), reason: e.reason.clone(), until_ms: until.ms })
                }
                _ if mode == FalsePositives::Include => s.ignored += 1,
                _ => s.active.push((i + 1, e)),
            }
        }
        s
    }

    /// `alerts` of `device` without the suppressed ones, which are counted.
    pub fn alerts(&mut self, device: &str, alerts: impl IntoIterator<Item = Alert>) -> Vec<Alert> {
        let mut kept = Vec::new();
        for alert in alerts {
            let view = AlertView::new(&alert);
            let entry = self.active.iter().find(|(_, e)| e.matches_alert(device, &view));
            match entry {
                Some((index, _)) => {
                    let hits = self.hits.entry(*index).or_default();
                    hits.alerts += 1;
                    hits.devices.insert(device.to_owned());
                    *hits.what.entry(alert.signature).or_default() += 1;
                }
                None => kept.push(alert),
            }
        }
        kept
    }

    /// `findings` without those of suppressed rules, which are counted.
    pub fn findings(&mut self, findings: Vec<Finding>) -> Vec<Finding> {
        let mut kept = Vec::new();
        for f in findings {
            match self.active.iter().find(|(_, e)| e.matches_finding(&f)) {
                Some((index, _)) => {
                    let hits = self.hits.entry(*index).or_default();
                    hits.findings += 1;
                    hits.devices.extend(f.device.clone());
                    *hits.what.entry(f.rule.id().to_owned()).or_default() += 1;
                }
                None => kept.push(f),
            }
        }
        kept
    }

    /// What was taken away.
    pub fn finish(self) -> Suppressed {
        let entries: BTreeMap<usize, &Suppression> = self.active.into_iter().collect();
        let applied = self
            .hits
            .into_iter()
            .filter_map(|(index, h)| {
                let e = entries.get(&index)?;
                let mut signatures: Vec<(String, u64)> = h.what.into_iter().collect();
                signatures.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
                signatures.truncate(3);
                Some(Applied {
                    index,
                    what: e.what(),
                    reason: e.reason.clone(),
                    alerts: h.alerts,
                    findings: h.findings,
                    devices: h.devices.into_iter().collect(),
                    signatures,
                })
            })
            .collect();
        Suppressed { mode: self.mode, applied, expired: self.expired, ignored: self.ignored }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use ampel_protocol::AlertAction;

    fn alert(source: AlertSource, sid: Option<u64>, sig: &str, src: Option<&str>) -> Alert {
        Alert { signature_id: sid, src: src.map(str::to_owned), ..Alert::new(0, source, 1, sig.into(), AlertAction::Allowed) }
    }

    fn view(a: &Alert) -> AlertView<'_> {
        AlertView::new(a)
    }

    fn entry(toml_body: &str) -> Suppression {
        toml::from_str(&format!("tenant = \"acme\"\nreason = \"scanner\"\n{toml_body}")).unwrap()
    }

    #[test]
    fn networks_match_v4_v6_and_mapped_addresses_and_refuse_host_bits() {
        let n: Network = "10.0.0.0/8".parse().unwrap();
        assert!(n.contains("10.255.1.2".parse().unwrap()));
        assert!(!n.contains("11.0.0.1".parse().unwrap()));
        let all: Network = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("203.0.113.9".parse().unwrap()) && !all.contains("::1".parse().unwrap()));
        let v6: Network = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains("2001:db8:ffff::1".parse().unwrap()) && !v6.contains("2001:db9::1".parse().unwrap()));
        let one: Network = "192.0.2.7".parse().unwrap();
        assert_eq!(one.to_string(), "192.0.2.7");
        assert!(one.contains("192.0.2.7".parse().unwrap()) && !one.contains("192.0.2.8".parse().unwrap()));
        assert_eq!(parse_addr("::ffff:192.0.2.7"), Some("192.0.2.7".parse().unwrap()));
        assert_eq!(parse_addr("[2001:db8::1]"), Some("2001:db8::1".parse().unwrap()));
        for bad in ["10.0.0.1/8", "10.0.0.0/33", "2001:db8::/129", "10.0.0/8", "host.example", "10.0.0.0/-1", ""] {
            assert!(bad.parse::<Network>().is_err(), "{bad}");
        }
        assert!("10.0.0.1/8".parse::<Network>().unwrap_err().contains("host bits"));
    }

    #[test]
    fn alert_matchers_and_together_and_keep_to_their_source() {
        let e = entry("signature-id = 2010935\nsource = \"10.0.0.0/8\"");
        assert!(e.matches_alert("fw-1", &view(&alert(AlertSource::Ids, Some(2010935), "ET SCAN", Some("10.1.2.3")))));
        assert!(!e.matches_alert("fw-1", &view(&alert(AlertSource::Ids, Some(2010935), "ET SCAN", Some("192.0.2.1")))));
        assert!(!e.matches_alert("fw-1", &view(&alert(AlertSource::Ids, Some(2010935), "ET SCAN", None))));
        assert!(!e.matches_alert("fw-1", &view(&alert(AlertSource::Ids, Some(1), "ET SCAN", Some("10.1.2.3")))));
        // A signature id names an IDS rule: the same number from another source is not it.
        assert!(!e.matches_alert("fw-1", &view(&alert(AlertSource::Firewall, Some(2010935), "x", Some("10.1.2.3")))));
        // ASCII case only: signatures are ASCII; other letters must match as written.
        let umlaut = entry("signature = \"zürich\"");
        assert!(umlaut.matches_alert("h", &view(&alert(AlertSource::Ids, None, "ZüRICH", None))));
        assert!(!umlaut.matches_alert("h", &view(&alert(AlertSource::Ids, None, "ZÜRICH", None))));
        let text = entry("signature = \"nmap scripting\"\ndevice = \"fw-2\"");
        assert!(text.matches_alert("fw-2", &view(&alert(AlertSource::Ids, None, "ET SCAN Nmap Scripting Engine", None))));
        assert!(!text.matches_alert("fw-1", &view(&alert(AlertSource::Ids, None, "ET SCAN Nmap Scripting Engine", None))));
        let av = entry("antivirus = \"Win.Test.EICAR_HDB-1\"");
        assert!(av.matches_alert("h", &view(&alert(AlertSource::Antivirus, None, "Win.Test.EICAR_HDB-1", None))));
        assert!(!av.matches_alert("h", &view(&alert(AlertSource::Antivirus, None, "Win.Test.EICAR_HDB-10", None))));
        assert!(!av.matches_alert("h", &view(&alert(AlertSource::Ids, None, "Win.Test.EICAR_HDB-1", None))));
        let src = entry("source = \"2001:db8::/32\"");
        assert!(src.matches_alert("h", &view(&alert(AlertSource::Mail, None, "spam", Some("2001:db8::5")))));
        assert!(!src.matches_alert("h", &view(&alert(AlertSource::Mail, None, "spam", Some("not an address")))));
    }

    #[test]
    fn validation_names_what_is_wrong() {
        let rules = ["threats.ids-severe", "performance.cpu"];
        let check = |body: &str| entry(body).validate(&rules);
        assert_eq!(check(""), Err(SuppressError::NoMatcher));
        assert_eq!(check("rule = \"threats.ids-severe\"\nsource = \"10.0.0.0/8\""), Err(SuppressError::RuleWithAlertMatchers));
        assert!(matches!(check("rule = \"threats.ids\""), Err(SuppressError::UnknownRule(..))));
        assert_eq!(check("signature-id = 1\nantivirus = \"x\""), Err(SuppressError::IdsAndAntivirus));
        assert_eq!(check("signature = \" \""), Err(SuppressError::EmptyText("signature")));
        assert!(check("rule = \"performance.cpu\"\nuntil = 2027-01-31").is_ok());
        let no_reason: Suppression = toml::from_str("tenant = \"acme\"\nreason = \"\"\nsignature-id = 1").unwrap();
        assert_eq!(no_reason.validate(&rules), Err(SuppressError::NoReason));
    }

    #[test]
    fn until_reads_dates_and_times_quoted_or_not_and_expires_at_the_period_end() {
        let day = entry("signature-id = 1\nuntil = 2027-01-31");
        let end_of_day = "2027-02-01T00:00:00Z".parse::<jiff::Timestamp>().unwrap().as_millisecond();
        assert_eq!(day.until, Some(Until { ms: end_of_day }));
        assert_eq!(entry("signature-id = 1\nuntil = \"2027-01-31\"").until, day.until);
        let at = entry("signature-id = 1\nuntil = 2027-01-31T18:00:00+01:00").until.unwrap();
        assert_eq!(at.ms, "2027-01-31T17:00:00Z".parse::<jiff::Timestamp>().unwrap().as_millisecond());
        assert!(day.applies_until(end_of_day) && !day.applies_until(end_of_day + 1));
        for bad in ["until = 2027-01-31T18:00:00", "until = \"soon\"", "until = 5"] {
            let r: Result<Suppression, _> = toml::from_str(&format!("tenant = \"acme\"\nreason = \"r\"\n{bad}"));
            assert!(r.is_err(), "{bad}");
        }
    }

    #[test]
    fn the_suppressor_counts_what_it_takes_and_reports_expired_entries() {
        let entries = vec![
            entry("signature-id = 7"),
            entry("rule = \"performance.cpu\"\ndevice = \"fw-1\""),
            entry("signature-id = 8\nuntil = 2020-01-01"),
            Suppression { tenant: TenantId::new("other").unwrap(), ..entry("signature-id = 9") },
        ];
        let now = "2026-12-01T00:00:00Z".parse::<jiff::Timestamp>().unwrap().as_millisecond();
        let mut s = Suppressor::new(&entries, "acme", now, FalsePositives::Appendix);
        let input = [7, 7, 8, 9].map(|sid| alert(AlertSource::Ids, Some(sid), &format!("sig {sid}"), None));
        let kept = s.alerts("fw-1", input);
        assert_eq!(kept.iter().map(|a| a.signature_id).collect::<Vec<_>>(), vec![Some(8), Some(9)]);
        let finding = |rule: &str, device: &str| Finding {
            rule: crate::risk::Rule::from_id(rule).unwrap(),
            device: Some(device.into()),
            level: crate::risk::Light::Yellow,
            id: String::new(),
            subject: None,
            facts: crate::risk::Facts::NeverSeen,
            window_ms: [0, 1],
            change: None,
        };
        let kept = s.findings(vec![finding("performance.cpu", "fw-1"), finding("performance.cpu", "fw-2")]);
        assert_eq!(kept.len(), 1);
        let out = s.finish();
        assert_eq!(out.alerts(), 2);
        assert_eq!(out.findings(), 1);
        assert_eq!(out.applied[0].signatures, vec![("sig 7".to_owned(), 2)]);
        assert_eq!((out.applied[1].index, out.applied[1].devices.clone()), (2, vec!["fw-1".to_owned()]));
        assert_eq!((out.expired.len(), out.expired[0].index), (1, 3));
        // Include ignores them all; nothing is taken.
        let mut s = Suppressor::new(&entries, "acme", now, FalsePositives::Include);
        assert_eq!(s.alerts("fw-1", [alert(AlertSource::Ids, Some(7), "x", None)]).len(), 1);
        assert_eq!(s.finish().ignored, 2);
    }

    /// Figures: `cargo test -p ampel-collector --lib assess::suppress::tests::figures --
    /// --ignored --nocapture`. Every alert is checked against every entry of its tenant.
    #[test]
    #[ignore = "prints timings; run by hand"]
    fn figures() {
        let entries: Vec<Suppression> = (0..50)
            .map(|i| match i % 3 {
                0 => entry(&format!("signature-id = {i}")),
                1 => entry(&format!("signature = \"no such text {i}\"")),
                _ => entry(&format!("source = \"10.{i}.0.0/16\"")),
            })
            .collect();
        let alerts: Vec<Alert> = (0..200_000u64)
            .map(|i| alert(AlertSource::Ids, Some(i % 1000), "ET SCAN Suspicious inbound to MSSQL port 1433", Some("192.0.2.1")))
            .collect();
        let t = std::time::Instant::now();
        let mut s = Suppressor::new(&entries, "acme", 0, FalsePositives::Appendix);
        let kept = s.alerts("fw-1", alerts).len();
        println!("200,000 alerts against 50 entries: {kept} kept, {} suppressed, {:?}", s.finish().alerts(), t.elapsed());
    }
}
