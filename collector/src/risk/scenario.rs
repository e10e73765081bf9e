//! Scenario files: one device's data and the findings the rules must produce from it. `risk
//! test DIR` runs every `*.toml` and `*.json` file of a directory; the shipped scenarios live in
//! `collector/risk-scenarios/` and a unit test runs them all.
//!
//! ```toml
//! description = "Disk at the red threshold"
//! start = "2026-03-10T00:00:00Z"       # the period judged; `end` is "now"
//! end = "2026-03-11T00:00:00Z"
//! time-zone = "Europe/Berlin"          # optional, default UTC
//!
//! [risk]                               # optional: [risk] keys over the defaults
//! disk-red-percent = 95
//!
//! [device]
//! id = "fw-1"
//! last-seen = "2026-03-10T23:59:00Z"   # optional, default: the last sample
//! first-seen = "2026-01-01T00:00:00Z"  # optional, default: long before the period
//!
//! [[device.series]]                    # a regular series: from, every, until (exclusive)
//! metric = "disk.used_percent"
//! labels = { mount = "/var" }
//! every = "1m"                         # from/until default to the period
//! value = 50.0
//! to-value = 96.0                      # optional: a straight ramp up to this value
//!
//! [[device.series]]                    # or explicit points
//! metric = "cpu.usage_percent"
//! points = [["2026-03-10T12:00:00Z", 95.0]]
//!
//! [[device.alerts]]
//! at = "2026-03-10T12:00:00Z"
//! source = "ids"                       # ids, antivirus, mail, ...
//! severity = 1
//! action = "allowed"                   # allowed, blocked, quarantined, rejected
//! signature = "ET EXPLOIT x"
//! count = 2                            # optional, default 1 (one a minute)
//!
//! [device.license]
//! licensed = true
//! expires = "2026-03-20T00:00:00Z"
//! features = [{ name = "ids", expires = "2026-03-12T00:00:00Z" }]
//!
//! [[expect]]                           # exactly these findings, in any order
//! rule = "performance.disk"
//! level = "red"
//! subject = "/var"                     # optional
//! evidence-contains = "96.0 %"         # optional: English evidence, as `risk show` prints it
//! advice = "disk-full"                 # optional: the recommendation variant chosen
//! ```
//!
//! No `[[expect]]` means the device must come out with no findings (green).

use std::path::{Path, PathBuf};

use ampel_protocol::model::{Alert, AlertAction, AlertSource, License, LicenseFeature};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::Deserialize;

use super::rules::{self, DeviceInput, Window};
use super::{Advice, Finding, Light, Rule};
use crate::config::{Duration, RiskConfig, TimeZoneName};
use crate::report::{Lang, catalogue};

/// A scenario that cannot be run.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file or directory could not be read.
    #[error("{path}: cannot read: {source}")]
    Read {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not a valid scenario.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// A scenario file.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Scenario {
    /// What the scenario shows.
    #[serde(default)]
    pub description: String,
    /// Start of the period judged.
    pub start: Timestamp,
    /// End of the period judged: the moment the rules judge.
    pub end: Timestamp,
    /// Time zone of the report.
    #[serde(default)]
    pub time_zone: TimeZoneName,
    /// `[risk]` keys over the defaults.
    #[serde(default)]
    pub risk: RiskConfig,
    /// The device's data.
    pub device: ScenarioDevice,
    /// The findings the rules must produce, no more and no fewer.
    #[serde(default)]
    pub expect: Vec<Expected>,
}

/// One device's data.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ScenarioDevice {
    /// Device id.
    pub id: String,
    /// Last batch received; default: the last sample, `never` when there is none.
    #[serde(default)]
    pub last_seen: Option<Timestamp>,
    /// Set to declare the device never sent anything, whatever else is given.
    #[serde(default)]
    pub never_seen: bool,
    /// First batch received; default: long before the period.
    #[serde(default)]
    pub first_seen: Option<Timestamp>,
    /// Metric series.
    #[serde(default)]
    pub series: Vec<Series>,
    /// Alerts.
    #[serde(default)]
    pub alerts: Vec<ScenarioAlert>,
    /// The latest license state.
    #[serde(default)]
    pub license: Option<ScenarioLicense>,
}

/// Samples of one metric series.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Series {
    /// Metric name.
    pub metric: String,
    /// Labels, e.g. `{ mount = "/var" }`.
    #[serde(default)]
    pub labels: std::collections::BTreeMap<String, String>,
    /// First sample; default: the period's start.
    #[serde(default)]
    pub from: Option<Timestamp>,
    /// No samples at or after this; default: the period's end.
    #[serde(default)]
    pub until: Option<Timestamp>,
    /// Sample interval of a regular series.
    #[serde(default)]
    pub every: Option<Duration>,
    /// Value of a regular series (at `from`).
    #[serde(default)]
    pub value: Option<f64>,
    /// Value at `until` of a ramp; default: `value` (flat).
    #[serde(default)]
    pub to_value: Option<f64>,
    /// Explicit samples.
    #[serde(default)]
    pub points: Vec<(Timestamp, f64)>,
}

/// An alert, or `count` identical ones a minute apart.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ScenarioAlert {
    /// Time of the first.
    pub at: Timestamp,
    /// Source.
    pub source: AlertSource,
    /// Severity, 1 = most severe.
    #[serde(default = "default_severity")]
    pub severity: u8,
    /// What was done.
    pub action: AlertAction,
    /// Signature or detection name.
    #[serde(default)]
    pub signature: String,
    /// How many.
    #[serde(default = "default_count")]
    pub count: u32,
}

fn default_severity() -> u8 {
    3
}
fn default_count() -> u32 {
    1
}

/// A license state.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ScenarioLicense {
    /// Product.
    #[serde(default = "default_product")]
    pub product: String,
    /// Valid according to the appliance.
    pub licensed: bool,
    /// Expiry.
    #[serde(default)]
    pub expires: Option<Timestamp>,
    /// Features with their own expiry.
    #[serde(default)]
    pub features: Vec<ScenarioFeature>,
    /// Set when the state could not be read.
    #[serde(default)]
    pub unknown_reason: Option<String>,
}

fn default_product() -> String {
    "appliance".into()
}

/// A licensed feature.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ScenarioFeature {
    /// Name.
    pub name: String,
    /// Expiry.
    #[serde(default)]
    pub expires: Option<Timestamp>,
}

/// An expected finding.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Expected {
    /// Rule id.
    pub rule: Rule,
    /// Level.
    pub level: Light,
    /// Subject, when given.
    #[serde(default)]
    pub subject: Option<String>,
    /// Text the English evidence must contain, when given.
    #[serde(default)]
    pub evidence_contains: Option<String>,
    /// The recommendation variant the finding must choose, when given.
    #[serde(default)]
    pub advice: Option<Advice>,
}

impl Expected {
    fn matches(&self, f: &Finding, tz: &TimeZone) -> bool {
        f.rule == self.rule
            && f.level == self.level
            && self.subject.as_ref().is_none_or(|s| f.subject.as_ref() == Some(s))
            && self.advice.is_none_or(|a| f.advice() == a)
            && self.evidence_contains.as_ref().is_none_or(|e| catalogue::evidence(f, Lang::En, tz).contains(e.as_str()))
    }

    fn describe(&self) -> String {
        let mut s = format!("{} {}", self.level.as_str(), self.rule);
        if let Some(sub) = &self.subject {
            s += &format!(" [{sub}]");
        }
        if let Some(e) = &self.evidence_contains {
            s += &format!(" with evidence containing {e:?}");
        }
        if let Some(a) = self.advice {
            s += &format!(" with advice {a}");
        }
        s
    }
}

fn describe(f: &Finding, tz: &TimeZone) -> String {
    let sub = f.subject.as_ref().map(|s| format!(" [{s}]")).unwrap_or_default();
    format!("{} {}{sub} (advice {}): {}", f.level.as_str(), f.rule, f.advice(), catalogue::evidence(f, Lang::En, tz))
}

/// What running one scenario gave.
#[derive(Debug)]
pub struct Outcome {
    /// The scenario file.
    pub path: PathBuf,
    /// Its description.
    pub description: String,
    /// The findings the rules produced.
    pub findings: Vec<Finding>,
    /// The scenario's time zone (UTC when it could not be run), to put the findings in words.
    pub zone: TimeZone,
    /// Differences from the expectation; empty when the scenario passed.
    pub mismatches: Vec<String>,
}

impl Scenario {
    /// Reads a scenario from a `.toml` or `.json` file.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let src = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read { path: path.to_owned(), source })?;
        let parse = |message: String| ScenarioError::Parse { path: path.to_owned(), message };
        if path.extension().is_some_and(|e| e == "json") {
            serde_json::from_str(&src).map_err(|e| parse(e.to_string()))
        } else {
            match toml::from_str(&src) {
                Ok(s) => Ok(s),
                Err(e) => Err(parse(crate::config::toml_error(path, &src, &e).to_string())),
            }
        }
    }

    /// The period judged.
    pub fn window(&self) -> Result<Window, String> {
        let tz = jiff::tz::TimeZone::get(&self.time_zone.0).map_err(|e| e.to_string())?;
        let (start_ms, end_ms) = (self.start.as_millisecond(), self.end.as_millisecond());
        if end_ms <= start_ms {
            return Err("end must be after start".into());
        }
        Ok(Window { start_ms, end_ms, tz })
    }

    /// The device's data as the rules see it.
    pub fn input(&self) -> Result<DeviceInput, String> {
        let (start, end) = (self.start.as_millisecond(), self.end.as_millisecond());
        let d = &self.device;
        let mut input = DeviceInput { device: d.id.clone(), ..DeviceInput::default() };
        for s in &d.series {
            let labels: Vec<(String, String)> = s.labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            let mut points: Vec<(i64, f64)> = s.points.iter().map(|(t, v)| (t.as_millisecond(), *v)).collect();
            if let Some(every) = s.every {
                let step = every.as_ms();
                let value = s.value.ok_or_else(|| format!("series {}: `every` needs a `value`", s.metric))?;
                if step <= 0 {
                    return Err(format!("series {}: `every` must be longer than 0", s.metric));
                }
                let from = s.from.map_or(start, |t| t.as_millisecond());
                let until = s.until.map_or(end, |t| t.as_millisecond());
                let to_value = s.to_value.unwrap_or(value);
                let mut t = from;
                while t < until {
                    let frac = if until > from { (t - from) as f64 / (until - from) as f64 } else { 0.0 };
                    points.push((t, value + (to_value - value) * frac));
                    t += step;
                }
            } else if s.value.is_some() || s.to_value.is_some() {
                return Err(format!("series {}: `value` needs `every`", s.metric));
            }
            let known = [
                rules::metrics::CPU,
                rules::metrics::MEMORY,
                rules::metrics::DISK_USED,
                rules::metrics::CERT_EXPIRES_AT,
                &self.risk.capture_drops_metric.0,
                &self.risk.capture_packets_metric.0,
            ];
            if !known.contains(&s.metric.as_str()) {
                return Err(format!("series {}: no rule reads this metric (known: {})", s.metric, known.join(", ")));
            }
            input.add_series(&s.metric, &labels, points, &self.risk);
        }
        for a in &d.alerts {
            for i in 0..a.count {
                let ts = a.at.as_millisecond() + i64::from(i) * 60_000;
                input.alerts.push(Alert::new(ts, a.source, a.severity, a.signature.clone(), a.action));
            }
        }
        input.alerts.sort_by_key(|a| a.ts);
        if let Some(l) = &d.license {
            input.license = Some(License {
                ts: end,
                product: l.product.clone(),
                model: String::new(),
                serial: String::new(),
                licensed: l.licensed,
                expires: l.expires.map(|t| t.as_millisecond()),
                features: l
                    .features
                    .iter()
                    .map(|f| LicenseFeature { name: f.name.clone(), expires: f.expires.map(|t| t.as_millisecond()) })
                    .collect(),
                unknown_reason: l.unknown_reason.clone(),
            });
        }
        let times = input.sample_times();
        input.last_seen_ms = if d.never_seen { None } else { d.last_seen.map(|t| t.as_millisecond()).or(times.last().copied()) };
        input.first_seen_ms = if d.never_seen { None } else { Some(d.first_seen.map_or(i64::MIN / 2, |t| t.as_millisecond())) };
        Ok(input)
    }

    /// Runs the rules and compares with the expectation.
    pub fn run(&self, path: &Path) -> Outcome {
        let (findings, zone, mut mismatches) = match (self.window(), self.input()) {
            (Ok(w), Ok(input)) => (rules::evaluate(&input, &self.risk, &w), w.tz, Vec::new()),
            (Err(e), _) | (_, Err(e)) => (Vec::new(), TimeZone::UTC, vec![format!("cannot run: {e}")]),
        };
        let mut used = vec![false; findings.len()];
        for e in &self.expect {
            match findings.iter().enumerate().position(|(i, f)| !used[i] && e.matches(f, &zone)) {
                Some(i) => used[i] = true,
                None => mismatches.push(format!("expected {}, not found", e.describe())),
            }
        }
        for (f, _) in findings.iter().zip(&used).filter(|(_, u)| !**u) {
            mismatches.push(format!("unexpected {}", describe(f, &zone)));
        }
        Outcome { path: path.to_owned(), description: self.description.clone(), findings, zone, mismatches }
    }
}

/// Runs every `*.toml` and `*.json` scenario in `dir`, in file name order. A file that cannot be
/// read or parsed is an error; a scenario whose findings differ is an [`Outcome`] with
/// mismatches.
pub fn run_dir(dir: &Path) -> Result<Vec<Outcome>, ScenarioError> {
    let read = |source| ScenarioError::Read { path: dir.to_owned(), source };
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(read)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "toml" || e == "json"))
        .collect();
    files.sort();
    files.iter().map(|p| Ok(Scenario::load(p)?.run(p))).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn shipped() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("risk-scenarios")
    }

    #[test]
    fn the_shipped_scenarios_all_pass() {
        let outcomes = run_dir(&shipped()).unwrap();
        let failed: Vec<String> = outcomes
            .iter()
            .filter(|o| !o.mismatches.is_empty())
            .map(|o| format!("{}: {}", o.path.display(), o.mismatches.join("; ")))
            .collect();
        assert!(failed.is_empty(), "{}", failed.join("\n"));
        assert!(outcomes.len() >= 10, "{}", outcomes.len());
    }

    #[test]
    fn every_rule_has_a_scenario() {
        let mut covered = std::collections::BTreeSet::new();
        for p in std::fs::read_dir(shipped()).unwrap() {
            let p = p.unwrap().path();
            if let Ok(s) = Scenario::load(&p) {
                covered.extend(s.expect.iter().map(|e| e.rule));
            }
        }
        let missing: Vec<Rule> = Rule::ALL.into_iter().filter(|r| !covered.contains(r)).collect();
        assert!(missing.is_empty(), "rules without a scenario: {missing:?}");
    }

    /// Every recommendation variant is reached by a shipped scenario, and pinned there by an
    /// `advice` key, so the advice a reader gets for each case is on record.
    #[test]
    fn every_advice_is_reached_and_pinned_by_a_shipped_scenario() {
        let outcomes = run_dir(&shipped()).unwrap();
        let reached: std::collections::BTreeSet<Advice> = outcomes.iter().flat_map(|o| o.findings.iter().map(Finding::advice)).collect();
        let unreached: Vec<Advice> = Advice::ALL.into_iter().filter(|a| !reached.contains(a)).collect();
        assert!(unreached.is_empty(), "advice no shipped scenario reaches: {unreached:?}");
        let mut pinned = std::collections::BTreeSet::new();
        for p in std::fs::read_dir(shipped()).unwrap() {
            if let Ok(s) = Scenario::load(&p.unwrap().path()) {
                pinned.extend(s.expect.iter().filter_map(|e| e.advice));
            }
        }
        let unpinned: Vec<Advice> = Advice::ALL.into_iter().filter(|a| !pinned.contains(a)).collect();
        assert!(unpinned.is_empty(), "advice no shipped scenario expects by name: {unpinned:?}");
    }

    #[test]
    fn an_expected_advice_must_match() {
        let src = r#"
start = "2026-03-10T00:00:00Z"
end = "2026-03-11T00:00:00Z"
[device]
id = "fw-1"
[[device.series]]
metric = "cpu.usage_percent"
every = "1m"
value = 5.0
[[device.alerts]]
at = "2026-03-10T12:00:00Z"
source = "ids"
severity = 1
action = "blocked"
[[expect]]
rule = "threats.ids-severe"
level = "yellow"
advice = "ids-allowed-through"
"#;
        let s: Scenario = toml::from_str(src).unwrap();
        let o = s.run(Path::new("x.toml"));
        assert_eq!(o.mismatches.len(), 2, "{:?}", o.mismatches);
        assert!(o.mismatches[0].ends_with("with advice ids-allowed-through, not found"), "{:?}", o.mismatches);
        assert!(o.mismatches[1].contains("(advice ids-all-blocked)"), "{:?}", o.mismatches);
        let fixed: Scenario = toml::from_str(&src.replace("ids-allowed-through", "ids-all-blocked")).unwrap();
        assert!(fixed.run(Path::new("x.toml")).mismatches.is_empty());
        assert!(toml::from_str::<Scenario>(&src.replace("ids-allowed-through", "ids-nope")).is_err());
    }

    #[test]
    fn a_wrong_expectation_is_a_mismatch_both_ways() {
        let src = r#"
start = "2026-03-10T00:00:00Z"
end = "2026-03-11T00:00:00Z"
[device]
id = "fw-1"
[[device.series]]
metric = "disk.used_percent"
labels = { mount = "/var" }
every = "1m"
value = 96.0
[[device.series]]
metric = "cpu.usage_percent"
every = "1m"
value = 5.0
[[expect]]
rule = "performance.disk"
level = "yellow"
"#;
        let s: Scenario = toml::from_str(src).unwrap();
        let o = s.run(Path::new("x.toml"));
        assert_eq!(o.mismatches.len(), 2, "{:?}", o.mismatches);
        assert!(o.mismatches[0].starts_with("expected yellow performance.disk"));
        assert!(o.mismatches[1].starts_with("unexpected red performance.disk [/var]"));
    }

    #[test]
    fn json_scenarios_work_too() {
        let src = r#"{"start": "2026-03-10T00:00:00Z", "end": "2026-03-11T00:00:00Z",
            "device": {"id": "fw-1", "never-seen": true},
            "expect": [{"rule": "availability.never-seen", "level": "grey"}]}"#;
        let s: Scenario = serde_json::from_str(src).unwrap();
        assert!(s.run(Path::new("x.json")).mismatches.is_empty());
    }
}
