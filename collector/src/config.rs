//! `collector.toml`: parsed into types that cannot hold a bad value.
//!
//! Every table is `deny_unknown_fields`, so a typo is an error, and every error names the file,
//! the line and the key (see [`ConfigError`]). Relative paths are resolved against the
//! directory of the config file. The shipped, commented example is
//! `packaging/collector.toml`; a test parses it.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Deserializer};

/// Where the collector looks for its config when no `--config` is given.
pub const DEFAULT_PATH: &str = "/etc/ampel/collector.toml";

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: cannot read: {error}")]
    Read {
        /// The config file.
        path: PathBuf,
        /// The OS error (in the message, not a separate source: printed once).
        error: std::io::Error,
    },
    /// The TOML is malformed or a value is wrong; names line and key.
    #[error("{path}:{line}: {key}{message}")]
    Parse {
        /// The config file.
        path: PathBuf,
        /// 1-based line of the problem (0 when unknown).
        line: usize,
        /// `key "x.y": ` when the key is known, else empty.
        key: String,
        /// What is wrong and what is expected.
        message: String,
    },
    /// A file or directory the configuration names is unusable.
    #[error("{path}: {key} = {}: {error}", file.display())]
    File {
        /// The config file.
        path: PathBuf,
        /// The key naming it (`mail.password-file`), or what it is (`link key`).
        key: String,
        /// The file or directory.
        file: PathBuf,
        /// What is wrong with it (in the message, not a separate source: printed once).
        error: std::io::Error,
    },
    /// Something `serve` needs at start cannot be used.
    #[error("{path}: {message}")]
    Unusable {
        /// The config file.
        path: PathBuf,
        /// What is wrong and what to do.
        message: String,
    },
    /// Values that are fine alone but not together.
    #[error("{path}: {message}")]
    Invalid {
        /// The config file.
        path: PathBuf,
        /// What is wrong and what to do.
        message: String,
    },
}

/// An error and its sources, `: `-separated.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Turns a toml error into file, line and dotted key.
pub fn toml_error(path: &Path, src: &str, err: &toml::de::Error) -> ConfigError {
    let (line, key) = match err.span() {
        Some(span) => {
            let line = src[..span.start.min(src.len())].matches('\n').count() + 1;
            (line, key_at(src, line))
        }
        None => (0, None),
    };
    ConfigError::Parse {
        path: path.to_owned(),
        line,
        key: key.map(|k| format!("key \"{k}\": ")).unwrap_or_default(),
        message: err.message().trim().to_owned(),
    }
}

/// The dotted key defined on `line` (1-based), qualified by the table header above it.
fn key_at(src: &str, line: usize) -> Option<String> {
    let lines: Vec<&str> = src.lines().collect();
    let text = lines.get(line.checked_sub(1)?)?.trim();
    let table = lines[..line - 1]
        .iter()
        .rev()
        .map(|l| l.trim())
        .find(|l| l.starts_with('['))
        .map(|l| l.trim_matches(|c| c == '[' || c == ']').trim().to_owned());
    if text.starts_with('[') {
        return Some(text.trim_matches(|c| c == '[' || c == ']').trim().to_owned());
    }
    let key = text.split('=').next()?.trim().trim_matches('"');
    if key.is_empty() {
        return table;
    }
    Some(match table {
        Some(t) => format!("{t}.{key}"),
        None => key.to_owned(),
    })
}

/// A duration written as `250ms`, `30s`, `15m`, `24h` or `7d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Duration(pub std::time::Duration);

impl FromStr for Duration {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (num, unit) = s.split_at(split);
        let n: u64 = num.parse().map_err(|_| format!("{s:?} is not a duration; write e.g. \"30s\", \"15m\", \"24h\""))?;
        let ms = match unit.trim() {
            "ms" => Some(n),
            "s" => n.checked_mul(1000),
            "m" => n.checked_mul(60_000),
            "h" => n.checked_mul(3_600_000),
            "d" => n.checked_mul(86_400_000),
            _ => return Err(format!("{s:?} has no unit; write e.g. \"30s\", \"15m\", \"24h\", \"7d\"")),
        };
        ms.map(|ms| Duration(std::time::Duration::from_millis(ms))).ok_or_else(|| format!("{s:?} is too long"))
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}s", self.0.as_secs())
    }
}

impl Duration {
    /// Milliseconds, saturating.
    pub fn as_ms(self) -> i64 {
        i64::try_from(self.0.as_millis()).unwrap_or(i64::MAX)
    }
}

/// How long an enrollment token stays valid: 1 second to [`TokenTtl::MAX`]. A token is a
/// bearer secret for a device identity; one valid for centuries is a standing invitation to
/// whoever finds it in a ticket or a chat log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenTtl(pub Duration);

impl TokenTtl {
    /// The longest validity: 30 days (an appliance shipped to a site with its token in the box).
    pub const MAX: std::time::Duration = std::time::Duration::from_secs(30 * 86_400);
    /// The shortest: 1 second (tests of expiry use it).
    pub const MIN: std::time::Duration = std::time::Duration::from_secs(1);

    /// Whole seconds.
    pub fn as_secs(self) -> u64 {
        self.0.0.as_secs()
    }
}

impl FromStr for TokenTtl {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let d: Duration = s.parse()?;
        if d.0 < TokenTtl::MIN || d.0 > TokenTtl::MAX {
            return Err(format!("{s:?} is not between 1s and 30d, the validity an enrollment token may have"));
        }
        Ok(TokenTtl(d))
    }
}

impl<'de> Deserialize<'de> for TokenTtl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for TokenTtl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A percentage between 0 and 100.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct Percent(pub f64);

impl<'de> Deserialize<'de> for Percent {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = f64::deserialize(d)?;
        if !(0.0..=100.0).contains(&v) {
            return Err(serde::de::Error::custom(format!("{v} is not a percentage between 0 and 100")));
        }
        Ok(Percent(v))
    }
}

/// An IANA time zone name that this machine's tz database knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeZoneName(pub String);

impl<'de> Deserialize<'de> for TimeZoneName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        jiff::tz::TimeZone::get(&s)
            .map_err(|_| serde::de::Error::custom(format!("{s:?} is not an IANA time zone such as \"Europe/Berlin\" or \"UTC\"")))?;
        Ok(TimeZoneName(s))
    }
}

impl Default for TimeZoneName {
    fn default() -> Self {
        TimeZoneName("UTC".into())
    }
}

/// The whole collector configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Config {
    /// Where the store, the PKI and the outbox live by default.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// The QUIC listener.
    #[serde(default)]
    pub quic: QuicConfig,
    /// The MQTT subscriber (`[mqtt]`); absent: off.
    #[serde(default)]
    pub mqtt: Option<crate::ingest::mqtt::MqttConfig>,
    /// This collector's shard and the deployment's shard map (`[cluster]`); absent: this
    /// collector owns every tenant.
    #[serde(default)]
    pub cluster: Option<crate::cluster::ShardMap>,
    /// The certificate authority.
    #[serde(default)]
    pub pki: PkiConfig,
    /// The LMDB store.
    #[serde(default)]
    pub store: StoreConfig,
    /// Risk rule thresholds.
    #[serde(default)]
    pub risk: RiskConfig,
    /// Report defaults.
    #[serde(default)]
    pub report: ReportConfig,
    /// Logo, cover text and colours of the reports (`[branding]`).
    #[serde(default)]
    pub branding: crate::report::branding::BrandingConfig,
    /// Mail delivery.
    #[serde(default)]
    pub mail: crate::mail::MailConfig,
    /// Scheduled report jobs (`[[jobs]]`); none by default.
    #[serde(default)]
    pub jobs: Vec<crate::schedule::JobConfig>,
    /// The HTTP listener (`[http]`).
    #[serde(default)]
    pub http: crate::http::HttpConfig,
    /// How scheduled reports are delivered (`[delivery]`).
    #[serde(default)]
    pub delivery: crate::schedule::DeliveryConfig,
    /// Known false positives (`[[suppress]]`), in file order; none by default.
    #[serde(default)]
    pub suppress: Vec<crate::assess::suppress::Suppression>,
    /// Who may log in to the web console (`[[users]]`); none by default. SIGHUP applies changes.
    #[serde(default)]
    pub users: Vec<crate::console::users::UserConfig>,
    /// The file this was read from (set by [`Config::load`]).
    #[serde(skip)]
    pub source: PathBuf,
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("/var/lib/ampel")
}

/// `[quic]`
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct QuicConfig {
    /// Address and UDP port to listen on.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Batches a connection may have in flight at once.
    #[serde(default = "default_streams")]
    pub max_streams: u32,
    /// MiB all partially received frames may hold together (one device at most an eighth):
    /// beyond it frames wait, then are refused without an ack (the agent resends them).
    #[serde(default = "default_frame_budget_mib")]
    pub frame_budget_mib: FrameBudgetMib,
    /// Data connections one device may have open; a newer one closes the oldest.
    #[serde(default = "default_connections_per_device")]
    pub max_connections_per_device: ConnectionsPerDevice,
}

/// `[quic] frame-budget-mib`: 8 (two of the largest frames) to 65 536.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameBudgetMib(pub u32);

impl<'de> Deserialize<'de> for FrameBudgetMib {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = u32::deserialize(d)?;
        if !(8..=65_536).contains(&n) {
            return Err(serde::de::Error::custom(format!("{n} is not between 8 and 65536 (MiB)")));
        }
        Ok(FrameBudgetMib(n))
    }
}

impl FrameBudgetMib {
    /// In bytes.
    pub fn bytes(self) -> usize {
        usize::try_from(self.0).unwrap_or(65_536) << 20
    }
}

/// `[quic] max-connections-per-device`: 1 to 64.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionsPerDevice(pub u32);

impl<'de> Deserialize<'de> for ConnectionsPerDevice {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = u32::deserialize(d)?;
        if !(1..=64).contains(&n) {
            return Err(serde::de::Error::custom(format!("{n} is not between 1 and 64")));
        }
        Ok(ConnectionsPerDevice(n))
    }
}

fn default_frame_budget_mib() -> FrameBudgetMib {
    FrameBudgetMib(u32::try_from(crate::ingest::quic::DEFAULT_FRAME_BUDGET >> 20).unwrap_or(256))
}

fn default_connections_per_device() -> ConnectionsPerDevice {
    ConnectionsPerDevice(u32::try_from(crate::ingest::quic::DEFAULT_CONNECTIONS_PER_DEVICE).unwrap_or(2))
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([0, 0, 0, 0], 4433))
}

fn default_streams() -> u32 {
    16
}

impl Default for QuicConfig {
    fn default() -> Self {
        QuicConfig {
            listen: default_listen(),
            max_streams: default_streams(),
            frame_budget_mib: default_frame_budget_mib(),
            max_connections_per_device: default_connections_per_device(),
        }
    }
}

/// `[pki]`
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct PkiConfig {
    /// Directory of the CA, the server certificate and the CRL; default `<data-dir>/pki`.
    pub dir: Option<PathBuf>,
    /// Lifetime of device certificates issued by `pki issue`.
    #[serde(default = "default_device_days")]
    pub device_days: u32,
    /// Lifetime of certificates signed at enrollment and renewal; agents renew two thirds in.
    #[serde(default = "default_enrolled_lifetime")]
    pub enrolled_lifetime: Duration,
    /// Default validity of enrollment tokens made by `pki token`.
    #[serde(default = "default_token_ttl")]
    pub token_ttl: TokenTtl,
}

fn default_enrolled_lifetime() -> Duration {
    Duration(std::time::Duration::from_secs(30 * 86_400))
}

fn default_token_ttl() -> TokenTtl {
    TokenTtl(Duration(std::time::Duration::from_secs(86_400)))
}

fn default_device_days() -> u32 {
    397
}

// Not derived: a derived `Default` gave `device-days = 0` when `[pki]` was absent, and
// `pki issue` then refused every device.
impl Default for PkiConfig {
    fn default() -> Self {
        PkiConfig {
            dir: None,
            device_days: default_device_days(),
            enrolled_lifetime: default_enrolled_lifetime(),
            token_ttl: default_token_ttl(),
        }
    }
}

/// `[store]`
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct StoreConfig {
    /// Directory of the LMDB files; default `<data-dir>/store`.
    pub dir: Option<PathBuf>,
    /// Initial map size in MiB; the map grows by doubling when full.
    #[serde(default = "default_map_mib")]
    pub initial_map_mib: u32,
    /// `[store.retention]`: how long each class of data is kept.
    #[serde(default)]
    pub retention: RetentionConfig,
}

/// How long data is kept: a duration (`"35d"`) or `"forever"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keep(pub Option<Duration>);

impl<'de> Deserialize<'de> for Keep {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if s.trim() == "forever" {
            return Ok(Keep(None));
        }
        let keep: Duration = s.parse().map_err(|e: String| serde::de::Error::custom(format!("{e}, or \"forever\"")))?;
        if keep.0.is_zero() {
            return Err(serde::de::Error::custom("a retention of 0 would delete everything; write e.g. \"35d\" or \"forever\""));
        }
        Ok(Keep(Some(keep)))
    }
}

impl Keep {
    fn ms(self) -> Option<i64> {
        self.0.map(Duration::as_ms)
    }
}

/// `[store.retention]`. Defaults as [`crate::store::Retention::default`]. A coarser class is
/// kept at least as long as a finer one, whatever is written here.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct RetentionConfig {
    /// Raw points.
    pub raw: Keep,
    /// One-minute rollups.
    pub minute: Keep,
    /// One-hour rollups.
    pub hour: Keep,
    /// One-day rollups.
    pub day: Keep,
    /// Alerts and their counts.
    pub alerts: Keep,
    /// License and inventory history (the latest of each is always kept).
    pub states: Keep,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        let d = crate::store::Retention::default();
        let keep = |ms: Option<i64>| Keep(ms.map(|ms| Duration(std::time::Duration::from_millis(ms.unsigned_abs()))));
        RetentionConfig {
            raw: keep(d.raw_ms),
            minute: keep(d.minute_ms),
            hour: keep(d.hour_ms),
            day: keep(d.day_ms),
            alerts: keep(d.alerts_ms),
            states: keep(d.states_ms),
        }
    }
}

fn default_map_mib() -> u32 {
    256
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig { dir: None, initial_map_mib: default_map_mib(), retention: RetentionConfig::default() }
    }
}

/// `[risk]`: thresholds of the built-in rules.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RiskConfig {
    /// A device not heard from for this long is yellow.
    #[serde(default = "default_silent_yellow")]
    pub silent_yellow: Duration,
    /// A device not heard from for this long is red.
    #[serde(default = "default_silent_red")]
    pub silent_red: Duration,
    /// CPU usage at or above this counts as high.
    #[serde(default = "default_cpu_high")]
    pub cpu_high_percent: Percent,
    /// Memory usage at or above this counts as high.
    #[serde(default = "default_memory_high")]
    pub memory_high_percent: Percent,
    /// CPU or memory high for more than this share of the samples is yellow; for more than
    /// twice this share, red.
    #[serde(default = "default_high_share")]
    pub high_share_percent: Percent,
    /// A file system filled to this level is yellow.
    #[serde(default = "default_disk_yellow")]
    pub disk_yellow_percent: Percent,
    /// A file system filled to this level is red.
    #[serde(default = "default_disk_red")]
    pub disk_red_percent: Percent,
    /// A file system whose least-squares trend reaches 100 % within this time is yellow.
    #[serde(default = "default_disk_full_within")]
    pub disk_full_within: Duration,
    /// The disk forecast needs samples spanning at least this long; shorter trends are noise.
    #[serde(default = "default_disk_forecast_min_span")]
    pub disk_forecast_min_span: Duration,
    /// A license (or licensed feature) expiring within this time is yellow; expired is red.
    #[serde(default = "default_license_warning")]
    pub license_warning: Duration,
    /// A device certificate expiring within this time is yellow (its renewal is failing);
    /// expired is red. Renewal runs two thirds into the lifetime, so with 30-day certificates
    /// a healthy agent never comes closer than 10 days.
    #[serde(default = "default_certificate_warning")]
    pub certificate_warning: Duration,
    /// When true, a device that never reported its license state is grey (not enough data).
    /// Off by default because plain Linux hosts have no license to report.
    #[serde(default)]
    pub license_required: bool,
    /// IDS alerts of this severity or more severe (1 = most severe) count: red when any was
    /// allowed through, yellow when all were blocked.
    #[serde(default = "default_ids_severity")]
    pub ids_severity: Severity,
    /// Mail quarantined on the last day of the period at least this many times the daily mean
    /// of the days before is a spike (yellow).
    #[serde(default = "default_mail_spike_factor")]
    pub mail_spike_factor: Factor,
    /// A spike also needs at least this many quarantined mails on the last day, so that 3
    /// mails after a quiet week are not an alarm.
    #[serde(default = "default_mail_spike_min_count")]
    pub mail_spike_min_count: u32,
    /// Metric with the packets the IDS dropped per interval (delta), summed over its series.
    #[serde(default = "default_capture_drops_metric")]
    pub capture_drops_metric: MetricName,
    /// Metric with the packets the IDS captured per interval (delta), dropped ones included.
    #[serde(default = "default_capture_packets_metric")]
    pub capture_packets_metric: MetricName,
    /// Dropped packets above this share of the captured packets in the period is yellow.
    #[serde(default = "default_capture_drop_percent")]
    pub capture_drop_percent: Percent,
    /// How often a device is expected to send samples (the agent's `interval`). A stretch
    /// without samples longer than twice this is a gap.
    #[serde(default = "default_expected_interval")]
    pub expected_interval: Duration,
    /// A device with samples covering less than this share of the period is grey.
    #[serde(default = "default_coverage_min")]
    pub coverage_min_percent: Percent,
}

/// An IDS severity, 1 (most severe) to 4, as Suricata counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Severity(pub u8);

impl<'de> Deserialize<'de> for Severity {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = i64::deserialize(d)?;
        match u8::try_from(v) {
            Ok(s @ 1..=4) => Ok(Severity(s)),
            _ => Err(serde::de::Error::custom(format!("{v} is not an IDS severity; write 1 (most severe) to 4"))),
        }
    }
}

/// A factor of at least 1 (finite).
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct Factor(pub f64);

impl<'de> Deserialize<'de> for Factor {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = f64::deserialize(d)?;
        if !v.is_finite() || v < 1.0 {
            return Err(serde::de::Error::custom(format!("{v} is not a factor of at least 1, e.g. 3 or 2.5")));
        }
        Ok(Factor(v))
    }
}

/// A metric name as agents send it: non-empty, ASCII letters, digits, `.`, `_`, `-`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricName(pub String);

impl<'de> Deserialize<'de> for MetricName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if s.is_empty() || !s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')) {
            return Err(serde::de::Error::custom(format!("{s:?} is not a metric name such as \"ids.capture.kernel_drops\"")));
        }
        Ok(MetricName(s))
    }
}

fn default_silent_yellow() -> Duration {
    Duration(std::time::Duration::from_secs(15 * 60))
}
fn default_silent_red() -> Duration {
    Duration(std::time::Duration::from_secs(24 * 3600))
}
fn default_cpu_high() -> Percent {
    Percent(90.0)
}
fn default_memory_high() -> Percent {
    Percent(90.0)
}
fn default_high_share() -> Percent {
    Percent(25.0)
}
fn default_disk_yellow() -> Percent {
    Percent(85.0)
}
fn default_disk_red() -> Percent {
    Percent(95.0)
}
fn default_disk_full_within() -> Duration {
    Duration(std::time::Duration::from_secs(14 * 86_400))
}
fn default_disk_forecast_min_span() -> Duration {
    Duration(std::time::Duration::from_secs(6 * 3600))
}
fn default_license_warning() -> Duration {
    Duration(std::time::Duration::from_secs(30 * 86_400))
}
fn default_certificate_warning() -> Duration {
    Duration(std::time::Duration::from_secs(7 * 86_400))
}
fn default_ids_severity() -> Severity {
    Severity(1)
}
fn default_mail_spike_factor() -> Factor {
    Factor(3.0)
}
fn default_mail_spike_min_count() -> u32 {
    10
}
fn default_capture_drops_metric() -> MetricName {
    MetricName("ids.capture.kernel_drops".into())
}
fn default_capture_packets_metric() -> MetricName {
    MetricName("ids.capture.kernel_packets".into())
}
fn default_capture_drop_percent() -> Percent {
    Percent(1.0)
}
fn default_expected_interval() -> Duration {
    Duration(std::time::Duration::from_secs(60))
}
fn default_coverage_min() -> Percent {
    Percent(90.0)
}

impl Default for RiskConfig {
    fn default() -> Self {
        RiskConfig {
            silent_yellow: default_silent_yellow(),
            silent_red: default_silent_red(),
            cpu_high_percent: default_cpu_high(),
            memory_high_percent: default_memory_high(),
            high_share_percent: default_high_share(),
            disk_yellow_percent: default_disk_yellow(),
            disk_red_percent: default_disk_red(),
            disk_full_within: default_disk_full_within(),
            disk_forecast_min_span: default_disk_forecast_min_span(),
            license_warning: default_license_warning(),
            certificate_warning: default_certificate_warning(),
            license_required: false,
            ids_severity: default_ids_severity(),
            mail_spike_factor: default_mail_spike_factor(),
            mail_spike_min_count: default_mail_spike_min_count(),
            capture_drops_metric: default_capture_drops_metric(),
            capture_packets_metric: default_capture_packets_metric(),
            capture_drop_percent: default_capture_drop_percent(),
            expected_interval: default_expected_interval(),
            coverage_min_percent: default_coverage_min(),
        }
    }
}

/// `[report]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ReportConfig {
    /// IANA time zone the report's dates are shown in.
    #[serde(default)]
    pub time_zone: TimeZoneName,
}

impl Config {
    /// Reads and checks a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let src = crate::files::read_limited_to_string(path, crate::files::CONFIG_MAX)
            .map_err(|error| ConfigError::Read { path: path.to_owned(), error })?;
        Self::parse(path, &src)
    }

    /// Parses config text as if read from `path` (relative paths resolve against its directory).
    pub fn parse(path: &Path, src: &str) -> Result<Config, ConfigError> {
        let mut cfg: Config = toml::from_str(src).map_err(|e| toml_error(path, src, &e))?;
        cfg.source = path.to_owned();
        let base = path.parent().unwrap_or(Path::new("."));
        let resolve = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        resolve(&mut cfg.data_dir);
        if let Some(d) = cfg.pki.dir.as_mut() {
            resolve(d);
        }
        if let Some(d) = cfg.store.dir.as_mut() {
            resolve(d);
        }
        cfg.mail.resolve_paths(base);
        cfg.branding.resolve_paths(base);
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks across fields.
    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |message: String| ConfigError::Invalid { path: self.source.clone(), message };
        if self.risk.silent_red <= self.risk.silent_yellow {
            return Err(invalid(format!(
                "[risk] silent-red ({}) must be longer than silent-yellow ({})",
                self.risk.silent_red, self.risk.silent_yellow
            )));
        }
        if self.risk.disk_red_percent.0 < self.risk.disk_yellow_percent.0 {
            return Err(invalid("[risk] disk-red-percent must not be below disk-yellow-percent".into()));
        }
        if self.risk.expected_interval.as_ms() <= 0 {
            return Err(invalid("[risk] expected-interval must be longer than 0; set it to the agents' interval, e.g. \"60s\"".into()));
        }
        self.mail.validate().map_err(|e| invalid(format!("[mail] {e}")))?;
        if let Some(logo) = self.branding.logo.as_ref().filter(|_| self.branding.use_branding) {
            // Before the logo is read: /dev/zero or a FIFO there would never end. Whether it
            // exists and its size are [branding]'s own checks.
            match crate::files::check_regular(logo, u64::MAX) {
                Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                    let (path, key, file) = (self.source.clone(), "branding.logo".into(), logo.clone());
                    return Err(ConfigError::File { path, key, file, error });
                }
                _ => {}
            }
        }
        self.branding.validate().map_err(|e| invalid(format!("[branding] {e}")))?;
        crate::schedule::config::validate(&self.jobs).map_err(invalid)?;
        let rules: Vec<&str> = crate::risk::Rule::ALL.iter().map(|r| r.id()).collect();
        for (i, entry) in self.suppress.iter().enumerate() {
            entry.validate(&rules).map_err(|e| invalid(format!("[[suppress]] #{} (tenant {}): {e}", i + 1, entry.tenant)))?;
        }
        crate::console::users::validate(&self.users).map_err(invalid)?;
        if !self.users.is_empty() && self.http.listen.is_none() {
            return Err(invalid("[[users]] log in to the console on the HTTP listener: set [http] listen".into()));
        }
        self.http.validate().map_err(|e| invalid(format!("[http] {e}")))?;
        if !self.jobs.is_empty() && self.http.listen.is_none() {
            return Err(invalid(
                "[[jobs]] need the HTTP listener for opt-in and download links: set [http] listen (and public-url)".into(),
            ));
        }
        Ok(())
    }

    /// What `serve` would trip over beyond the file itself: the directories it keeps data in
    /// and the files it reads at start — the mail password and CA, the MQTT certificates, the
    /// PKI, the link key — each read the way `serve` reads it (bounded, regular files only).
    /// `check-config` and `serve` run it, so its errors exit 78. Before `pki init` there is no
    /// CA yet: with `need_ca` false (`check-config` on a fresh install) that is a note, not an
    /// error.
    pub fn check_runtime(&self, need_ca: bool) -> Result<Vec<String>, ConfigError> {
        use crate::files;
        let file_err = |key: &str, file: &Path| {
            let (path, key, file) = (self.source.clone(), key.to_owned(), file.to_owned());
            move |error| ConfigError::File { path, key, file, error }
        };
        let unusable = |what: &str, e: &dyn std::error::Error| ConfigError::Unusable {
            path: self.source.clone(),
            message: format!("{what}: {}", chain(e)),
        };
        let dirs = [("data-dir", Some(&self.data_dir)), ("store.dir", self.store.dir.as_ref()), ("pki.dir", self.pki.dir.as_ref())];
        for (key, dir) in dirs.into_iter().filter_map(|(k, d)| Some((k, d?))) {
            files::check_dir(dir).map_err(file_err(key, dir))?;
        }
        match self.mail.transport {
            crate::mail::TransportKind::File => files::check_dir(&self.mail.outbox).map_err(file_err("mail.outbox", &self.mail.outbox))?,
            crate::mail::TransportKind::Smtp => drop(crate::mail::Mailer::new(&self.mail).map_err(|e| unusable("[mail]", &e))?),
        }
        if let Some(m) = &self.mqtt {
            crate::ingest::mqtt::options(m, &self.pki_dir(), self.cluster.as_ref()).map_err(|e| unusable("[mqtt]", &e))?;
        }
        let link_key = self.delivery_dir().join(crate::schedule::commands::LINK_KEY_FILE);
        if link_key.exists() {
            files::check_regular(&link_key, files::SMALL_MAX).map_err(file_err("link key", &link_key))?;
        }
        let pki = self.pki_dir();
        if !need_ca && !pki.join("ca.pem").exists() {
            return Ok(vec![format!("no CA in {} yet: run `ampel-collector pki init` before `serve`", pki.display())]);
        }
        crate::ingest::trust::Trust::load(&pki).map_err(|e| unusable("PKI (`ampel-collector pki init` creates it)", &e))?;
        Ok(Vec::new())
    }

    /// Notes for `check-config` on `[[suppress]]` entries that are valid but likely not
    /// meant: a tenant no `[[jobs]]` entry reports on (a typo, or a tenant only previewed).
    /// Tenants come into being when their first device enrolls, so this cannot be an error.
    pub fn suppress_notes(&self) -> Vec<String> {
        if self.jobs.is_empty() {
            return Vec::new();
        }
        self.suppress
            .iter()
            .enumerate()
            .filter(|(_, e)| !self.jobs.iter().any(|j| j.tenants.contains(&e.tenant)))
            .map(|(i, e)| {
                format!("[[suppress]] #{} names tenant {:?}, which no [[jobs]] entry reports on; it applies to `risk show` and `report preview` only", i + 1, e.tenant.as_str())
            })
            .collect()
    }

    /// The PKI directory.
    pub fn pki_dir(&self) -> PathBuf {
        self.pki.dir.clone().unwrap_or_else(|| self.data_dir.join("pki"))
    }

    /// The store directory.
    pub fn store_dir(&self) -> PathBuf {
        self.store.dir.clone().unwrap_or_else(|| self.data_dir.join("store"))
    }

    /// The delivery store directory: scheduler state, recipients, consent log, archive index.
    pub fn delivery_dir(&self) -> PathBuf {
        self.data_dir.join("delivery")
    }

    /// The report archive directory.
    pub fn archive_dir(&self) -> PathBuf {
        self.data_dir.join("archive")
    }

    /// Store options from `[store]`.
    pub fn store_options(&self) -> crate::store::StoreOptions {
        crate::store::StoreOptions {
            initial_map_size: (self.store.initial_map_mib as usize) << 20,
            retention: crate::store::Retention {
                raw_ms: self.store.retention.raw.ms(),
                minute_ms: self.store.retention.minute.ms(),
                hour_ms: self.store.retention.hour.ms(),
                day_ms: self.store.retention.day.ms(),
                alerts_ms: self.store.retention.alerts.ms(),
                states_ms: self.store.retention.states.ms(),
            },
            ..crate::store::StoreOptions::default()
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn parse(src: &str) -> Result<Config, ConfigError> {
        Config::parse(Path::new("/etc/ampel/collector.toml"), src)
    }

    #[test]
    fn retention_is_read_per_class_and_forever_keeps() {
        let cfg = parse("[store.retention]\nraw = \"7d\"\nday = \"forever\"\n").unwrap();
        let r = cfg.store_options().retention;
        assert_eq!(r.raw_ms, Some(7 * 86_400_000));
        assert_eq!(r.day_ms, None);
        // Unset classes keep their defaults.
        assert_eq!(r.hour_ms, crate::store::Retention::default().hour_ms);
        assert_eq!(parse("").unwrap().store_options().retention, crate::store::Retention::default());
    }

    #[test]
    fn a_zero_or_unknown_retention_names_its_key() {
        let e = parse("[store.retention]\nalerts = \"0d\"\n").unwrap_err().to_string();
        assert!(e.contains("store.retention.alerts") && e.contains("delete everything"), "{e}");
        let e = parse("[store.retention]\npoints = \"7d\"\n").unwrap_err().to_string();
        assert!(e.contains("points"), "{e}");
        let e = parse("[store.retention]\nraw = \"soon\"\n").unwrap_err().to_string();
        assert!(e.contains("store.retention.raw") && e.contains("forever"), "{e}");
    }

    #[test]
    fn empty_config_takes_the_documented_defaults() {
        let c = parse("").unwrap();
        assert_eq!(c.quic.listen.port(), 4433);
        assert_eq!(c.pki_dir(), PathBuf::from("/var/lib/ampel/pki"));
        assert_eq!(c.risk.silent_yellow.as_ms(), 15 * 60 * 1000);
        assert_eq!(c.report.time_zone.0, "UTC");
        assert_eq!(c.pki.device_days, 397);
    }

    #[test]
    fn a_typo_names_file_line_and_key() {
        let err = parse("data-dir = \"/tmp\"\n[risk]\nsilent-yelow = \"1m\"\n").unwrap_err().to_string();
        assert!(err.starts_with("/etc/ampel/collector.toml:3: key \"risk.silent-yelow\": unknown field"), "{err}");
    }

    #[test]
    fn a_bad_value_names_file_line_and_key() {
        let err = parse("[report]\n\ntime-zone = \"Mars/Olympus\"\n").unwrap_err().to_string();
        assert!(err.contains("collector.toml:3: key \"report.time-zone\""), "{err}");
        assert!(err.contains("IANA"), "{err}");
        let err = parse("[risk]\ncpu-high-percent = 140\n").unwrap_err().to_string();
        assert!(err.contains(":2: key \"risk.cpu-high-percent\"") && err.contains("between 0 and 100"), "{err}");
        let err = parse("[quic]\nlisten = \"localhost\"\n").unwrap_err().to_string();
        assert!(err.contains(":2: key \"quic.listen\""), "{err}");
    }

    #[test]
    fn cross_field_checks_say_what_to_do() {
        let err = parse("[risk]\nsilent-yellow = \"2h\"\nsilent-red = \"1h\"\n").unwrap_err().to_string();
        assert!(err.contains("silent-red") && err.contains("longer than"), "{err}");
    }

    #[test]
    fn relative_paths_resolve_against_the_config_directory() {
        let c = parse("data-dir = \"data\"\n[pki]\ndir = \"ca\"\n").unwrap();
        assert_eq!(c.data_dir, PathBuf::from("/etc/ampel/data"));
        assert_eq!(c.pki_dir(), PathBuf::from("/etc/ampel/ca"));
        assert_eq!(c.store_dir(), PathBuf::from("/etc/ampel/data/store"));
    }

    #[test]
    fn the_shipped_example_config_parses_to_the_defaults() {
        let shipped = parse(include_str!("../../packaging/collector.toml")).unwrap();
        let empty = parse("").unwrap();
        assert_eq!(shipped.quic.listen, empty.quic.listen);
        assert_eq!(shipped.risk.silent_red, empty.risk.silent_red);
        assert_eq!(shipped.risk.disk_yellow_percent, empty.risk.disk_yellow_percent);
        let (a, b) = (&shipped.risk, &empty.risk);
        assert_eq!(
            (a.disk_full_within, a.disk_forecast_min_span, a.license_warning),
            (b.disk_full_within, b.disk_forecast_min_span, b.license_warning)
        );
        assert_eq!(
            (a.license_required, a.ids_severity, a.mail_spike_factor, a.mail_spike_min_count),
            (b.license_required, b.ids_severity, b.mail_spike_factor, b.mail_spike_min_count)
        );
        assert_eq!(
            (&a.capture_drops_metric, &a.capture_packets_metric, a.capture_drop_percent),
            (&b.capture_drops_metric, &b.capture_packets_metric, b.capture_drop_percent)
        );
        assert_eq!((a.expected_interval, a.coverage_min_percent), (b.expected_interval, b.coverage_min_percent));
        assert_eq!(
            (a.cpu_high_percent, a.memory_high_percent, a.high_share_percent, a.disk_red_percent),
            (b.cpu_high_percent, b.memory_high_percent, b.high_share_percent, b.disk_red_percent)
        );
        assert_eq!(shipped.report.time_zone, empty.report.time_zone);
        assert_eq!(shipped.branding, empty.branding);
        assert_eq!(shipped.mail.outbox, empty.mail.outbox);
    }

    #[test]
    fn an_enrollment_token_lives_at_most_30_days() {
        assert_eq!("30d".parse::<TokenTtl>().unwrap().as_secs(), 30 * 86_400);
        assert_eq!("1s".parse::<TokenTtl>().unwrap().as_secs(), 1);
        for bad in ["31d", "99999999999d", "0s", "soon"] {
            assert!(bad.parse::<TokenTtl>().is_err(), "{bad}");
        }
        let err = parse("[pki]\ntoken-ttl = \"365d\"\n").unwrap_err().to_string();
        assert!(err.contains("pki.token-ttl") && err.contains("30d"), "{err}");
    }

    #[test]
    fn branding_values_are_checked_naming_file_line_and_key() {
        for (body, key, what) in [
            ("header-color = \"red\"\n", "branding.header-color", "#rrggbb"),
            ("footer-color = \"#12345\"\n", "branding.footer-color", "#rrggbb"),
            (&format!("cover-text = \"{}\"\n", "x".repeat(161)), "branding.cover-text", "at most 160"),
            ("exclude-tenants = [\"../x\"]\n", "branding.exclude-tenants", ""),
            ("logo-size = 3\n", "logo-size", "unknown field"),
        ] {
            let err = parse(&format!("[branding]\nuse-branding = true\n{body}")).unwrap_err().to_string();
            assert!(err.contains("collector.toml:3") && err.contains(key) && err.contains(what), "{body}: {err}");
        }
        // The logo is checked when the file is read: missing, not an image, too large.
        let dir = tempfile::tempdir().unwrap();
        let cfg_path = dir.path().join("collector.toml");
        let load = |logo: &str| Config::parse(&cfg_path, &format!("[branding]\nuse-branding = true\nlogo = \"{logo}\"\n"));
        let err = load("missing.png").unwrap_err().to_string();
        assert!(err.contains("[branding] logo") && err.contains("missing.png"), "{err}");
        std::fs::write(dir.path().join("logo.gif"), b"GIF89a").unwrap();
        assert!(load("logo.gif").unwrap_err().to_string().contains("not a PNG or JPEG"));
        std::fs::write(dir.path().join("big.png"), vec![0u8; (2 << 20) as usize]).unwrap();
        assert!(load("big.png").unwrap_err().to_string().contains("larger than 1048576 bytes"));
        std::fs::write(dir.path().join("logo.png"), crate::report::branding::tests::png(64, 32)).unwrap();
        let ok = load("logo.png").unwrap();
        assert_eq!(ok.branding.logo.as_deref(), Some(dir.path().join("logo.png").as_path()));
        // A job's widgets must be known names.
        let base = "[http]\nlisten = \"127.0.0.1:8080\"\n[[jobs]]\nname = \"w\"\ntenants = [\"acme\"]\nperiod = \"week\"\nsend = [\"mon 08:00\"]\nto = \"a@b.example\"\n";
        let err = parse(&format!("{base}widgets = [\"threats\", \"pie-chart\"]\n")).unwrap_err().to_string();
        assert!(
            err.contains("collector.toml:9") && err.contains("jobs.widgets") && err.contains("pie-chart") && err.contains("top-tables"),
            "{err}"
        );
        assert_eq!(parse(&format!("{base}widgets = [\"threats\"]\n")).unwrap().jobs[0].widgets, vec![crate::report::Widget::Threats]);
    }

    #[test]
    fn the_shipped_example_parses_with_a_job_uncommented() {
        let shipped = include_str!("../../packaging/collector.toml");
        let c = parse(shipped).unwrap();
        assert!(c.jobs.is_empty());
        assert_eq!(c.delivery, crate::schedule::DeliveryConfig::default());
        // The commented job, uncommented, is valid too.
        let job: String = shipped
            .lines()
            .skip_while(|l| !l.starts_with("# [[jobs]]"))
            .take_while(|l| l.starts_with('#') && !l.starts_with("# Recipients"))
            .map(|l| format!("{}\n", l.trim_start_matches('#').trim_start()))
            .collect();
        let c = parse(&format!("[http]\nlisten = \"127.0.0.1:8080\"\n{job}")).unwrap();
        assert!(parse(&job).unwrap_err().to_string().contains("[http] listen"));
        assert_eq!(c.jobs[0].to.0.len(), 2);
        assert_eq!(c.jobs[0].cc.0, vec!["noc@acme.example".to_owned()]);
        assert_eq!(c.jobs[0].false_positives, crate::assess::suppress::FalsePositives::Appendix);
        // So is the commented [[suppress]] entry.
        let entry: String = shipped
            .lines()
            .skip_while(|l| !l.starts_with("# [[suppress]]"))
            .take_while(|l| l.starts_with("# ") && !l.trim_start_matches("# ").is_empty())
            .map(|l| format!("{}\n", l.trim_start_matches('#').trim_start()))
            .collect();
        let c = parse(&entry).unwrap();
        assert_eq!((c.suppress.len(), c.suppress[0].signature_id), (1, Some(2_010_935)));
    }

    #[test]
    fn jobs_refuse_header_injection_and_bad_addresses_naming_the_line() {
        let base = "[http]\nlisten = \"127.0.0.1:8080\"\n[[jobs]]\nname = \"w\"\ntenants = [\"acme\"]\nperiod = \"week\"\nsend = [\"mon 08:00\"]\n";
        for (extra, what) in [
            ("subject = \"Report\\r\\nBcc: x@evil.example\"\nto = \"a@b.example\"\n", "control character"),
            ("to = \"a@b.example\\r\\nBcc: x@evil.example\"\n", "control character"),
            ("to = \"Eve\\n <a@b.example>\"\n", "control character"),
            ("to = \"a@b.example; not-an-address\"\n", "not an e-mail address"),
            ("to = \"a@b.example\"\ncc = [\"ok@b.example\", \"x\\u0000@b.example\"]\n", "control character"),
            ("to = \"a@b.example\"\ntime-zone = \"Mars/Base\"\n", "IANA"),
            ("to = \"a@b.example\"\nlanguage = \"fr\"\n", "unknown variant"),
        ] {
            let err = parse(&format!("{base}{extra}")).unwrap_err().to_string();
            assert!(err.contains("collector.toml:") && err.contains("key \"jobs.") && err.contains(what), "{extra}: {err}");
        }
        let err = parse(&format!("{}to = \"a@b.example\"\n", base.replace("[\"acme\"]", "[\"../etc\"]"))).unwrap_err().to_string();
        assert!(err.contains("key \"jobs.tenants\"") && !err.contains("duplicate"), "{err}");
        let many: Vec<String> = (0..101).map(|i| format!("u{i}@b.example")).collect();
        let err = parse(&format!("{base}to = \"{}\"\n", many.join(";"))).unwrap_err().to_string();
        assert!(err.contains("at most 100"), "{err}");
        let err = parse(&format!("{base}to = \"a@b.example\"\nsend = [\"a\",\"b\",\"c\",\"d\",\"e\",\"f\"]\n")).unwrap_err().to_string();
        assert!(err.contains("duplicate") || err.contains("1 to 5"), "{err}");
        let job = base.trim_start_matches("[http]\nlisten = \"127.0.0.1:8080\"\n");
        let err = parse(&format!("{base}to = \"a@b.example\"\n{job}to = \"a@b.example\"\n")).unwrap_err().to_string();
        assert!(err.contains("used twice"), "{err}");
        let ok = parse(&format!("{base}to = \"A <a@b.example>; c@d.example\"\n")).unwrap();
        assert_eq!(ok.jobs[0].to.addresses(), vec!["a@b.example".to_owned(), "c@d.example".to_owned()]);
    }

    #[test]
    fn new_risk_keys_reject_bad_values() {
        let err = parse("[risk]\nids-severity = 5\n").unwrap_err().to_string();
        assert!(err.contains("risk.ids-severity") && err.contains("1 (most severe) to 4"), "{err}");
        let err = parse("[risk]\nmail-spike-factor = 0.5\n").unwrap_err().to_string();
        assert!(err.contains("risk.mail-spike-factor") && err.contains("at least 1"), "{err}");
        let err = parse("[risk]\ncapture-drops-metric = \"a b\"\n").unwrap_err().to_string();
        assert!(err.contains("risk.capture-drops-metric"), "{err}");
        let err = parse("[risk]\nexpected-interval = \"0s\"\n").unwrap_err().to_string();
        assert!(err.contains("expected-interval"), "{err}");
        let c = parse("[risk]\nlicense-warning = \"14d\"\nlicense-required = true\n").unwrap();
        assert_eq!(c.risk.license_warning.as_ms(), 14 * 86_400_000);
        assert!(c.risk.license_required);
    }

    #[test]
    fn suppressions_are_checked_naming_entry_line_and_key() {
        let entry = |body: &str| {
            format!("[[suppress]]\ntenant = \"acme\"\nreason = \"scanner\"\nsignature-id = 1\n\n[[suppress]]\ntenant = \"acme\"\n{body}")
        };
        for (body, what) in [
            ("reason = \"r\"\n", "#2 (tenant acme): nothing to match"),
            (
                "reason = \"r\"\nrule = \"threats.ids\"\n",
                "#2 (tenant acme): key \"rule\": unknown rule \"threats.ids\"; known rules: license.expired",
            ),
            ("reason = \"r\"\nrule = \"threats.ids-severe\"\nsource = \"10.0.0.0/8\"\n", "#2 (tenant acme): key \"rule\" stands alone"),
            ("reason = \" \"\nsignature-id = 2\n", "#2 (tenant acme): key \"reason\" is empty"),
        ] {
            let err = parse(&entry(body)).unwrap_err().to_string();
            assert!(err.contains(&format!("[[suppress]] {what}")), "{body}: {err}");
        }
        for (body, line, key, what) in [
            ("reason = \"r\"\nsource = \"10.0.0.0/33\"\n", 9, "suppress.source", "not an address or network"),
            ("reason = \"r\"\nsource = \"10.1.0.0/8\"\n", 9, "suppress.source", "host bits"),
            ("reason = \"r\"\nsignature-id = 2\nuntil = \"next week\"\n", 10, "suppress.until", "not a date"),
            ("reason = \"r\"\nsignature-id = 2\nuntil = 2027-01-31T08:00:00\n", 10, "suppress.until", "RFC 3339"),
            ("signature-id = 2\n", 6, "suppress", "missing field `reason`"),
            ("reason = \"r\"\nsid = 2\n", 9, "suppress.sid", "unknown field"),
        ] {
            let err = parse(&entry(body)).unwrap_err().to_string();
            assert!(err.contains(&format!("collector.toml:{line}: key \"{key}\"")) && err.contains(what), "{body}: {err}");
        }
        let ok = parse(&entry("reason = \"r\"\nsource = \"2001:db8::/32\"\nuntil = 2027-01-31\n")).unwrap();
        assert_eq!(ok.suppress.len(), 2);
        assert!(ok.suppress_notes().is_empty(), "no jobs: nothing to compare the tenant with");
        let job = "[http]\nlisten = \"127.0.0.1:8080\"\n[[jobs]]\nname = \"w\"\ntenants = [\"acme\"]\nperiod = \"week\"\nsend = [\"mon 08:00\"]\nto = \"a@b.example\"\n";
        let other = "[[suppress]]\ntenant = \"acme\"\nreason = \"r\"\nsignature-id = 1\n[[suppress]]\ntenant = \"acme-gmbh\"\nreason = \"r\"\nsignature-id = 1\n";
        let notes = parse(&format!("{job}{other}")).unwrap().suppress_notes();
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(notes[0].starts_with("[[suppress]] #2 names tenant \"acme-gmbh\", which no [[jobs]] entry reports on"), "{notes:?}");
    }

    #[test]
    fn durations_parse_with_units_only() {
        assert_eq!("250ms".parse::<Duration>().unwrap().as_ms(), 250);
        assert_eq!("7d".parse::<Duration>().unwrap().as_ms(), 7 * 86_400_000);
        assert!("15".parse::<Duration>().is_err());
        assert!("x5m".parse::<Duration>().is_err());
    }
}
