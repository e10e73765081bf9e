//! The agent's configuration file (TOML).
//!
//! Every value is parsed into a type that cannot hold a bad value ([`Interval`],
//! [`CollectorAddress`], [`TlsName`], [`TransportKind`]), so the rest of the agent never
//! re-checks. Errors name the file, the line and the key, because the person reading them is
//! an operator with an editor open, not a Rust programmer.
//!
//! Relative paths (`state-dir`, `ca`, `cert`, `key`) are resolved against the directory of the
//! configuration file, so a config and its certificates can travel together.
//!
//! The shipped example, `agent/agent.example.toml`, documents every key and its default; a test
//! parses it.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use rustls_pki_types::ServerName;
use serde::{Deserialize, Deserializer, de};

use crate::sources::SourcesConfig;

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {}: {error}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        error: std::io::Error,
    },
    /// The file is not valid TOML or does not match the schema.
    #[error("{}", located(file, *line, key.as_deref(), message))]
    Parse {
        /// The file, as the operator named it.
        file: String,
        /// 1-based line of the offending key or value, when known.
        line: Option<usize>,
        /// Dotted key path (`collector.address`), when known.
        key: Option<String>,
        /// What is wrong.
        message: String,
    },
}

fn located(file: &str, line: Option<usize>, key: Option<&str>, message: &str) -> String {
    match (line, key) {
        (Some(l), Some(k)) => format!("{file}: line {l}, key \"{k}\": {message}"),
        (Some(l), None) => format!("{file}: line {l}: {message}"),
        (None, Some(k)) => format!("{file}: key \"{k}\": {message}"),
        (None, None) => format!("{file}: {message}"),
    }
}

/// The whole agent configuration.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct AgentConfig {
    /// How often a batch is gathered and sent.
    #[serde(default = "default_interval")]
    pub interval: Interval,
    /// Where the agent keeps its state (the sequence counter; later the spool and file
    /// positions). Resolved against the config file's directory.
    #[serde(default = "default_state_dir")]
    pub state_dir: PathBuf,
    /// Where the data goes and how.
    pub collector: CollectorConfig,
    /// `[spool]`: how much unacknowledged data the agent keeps on disk.
    #[serde(default)]
    pub spool: SpoolConfig,
    /// Which sources run, with their settings.
    #[serde(default)]
    pub sources: SourcesConfig,
}

fn default_interval() -> Interval {
    Interval(Duration::from_secs(60))
}

fn default_state_dir() -> PathBuf {
    PathBuf::from("/var/lib/ampel/agent")
}

impl AgentConfig {
    /// Reads and parses the file at `path`, resolving relative paths against its directory.
    pub fn load(path: &Path) -> Result<AgentConfig, ConfigError> {
        let text = crate::files::read_limited_to_string(path, crate::files::CONFIG_MAX)
            .map_err(|error| ConfigError::Read { path: path.to_owned(), error })?;
        AgentConfig::parse(&text, path)
    }

    /// Parses `text` as if it had been read from `path` (used for messages and as the base of
    /// relative paths).
    pub fn parse(text: &str, path: &Path) -> Result<AgentConfig, ConfigError> {
        let mut cfg: AgentConfig = toml::from_str(text).map_err(|e| {
            let (line, key) = match e.span() {
                Some(span) => locate(text, span.start),
                None => (None, None),
            };
            ConfigError::Parse { file: path.display().to_string(), line, key, message: e.message().trim().to_owned() }
        })?;
        let base = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
            _ => PathBuf::from("."),
        };
        cfg.state_dir = resolve(&base, &cfg.state_dir);
        cfg.collector.ca = resolve(&base, &cfg.collector.ca);
        cfg.collector.cert = resolve(&base, &cfg.collector.cert);
        cfg.collector.key = resolve(&base, &cfg.collector.key);
        Ok(cfg)
    }
}

fn resolve(base: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() { p.to_owned() } else { base.join(p) }
}

/// Line number and dotted key of the byte offset `at` in `text`.
///
/// The toml crate reports a byte span; an operator wants a line and a key. The span points at a
/// key (unknown field) or at a value (bad value), so the key is whatever precedes `=` on that
/// line, prefixed with the nearest table header above it.
fn locate(text: &str, at: usize) -> (Option<usize>, Option<String>) {
    let at = at.min(text.len());
    let before = text.get(..at).unwrap_or(text);
    let line_no = before.matches('\n').count() + 1;
    let mut table: Option<String> = None;
    let mut key = None;
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if i + 1 == line_no {
            if trimmed.starts_with('[') {
                key = header(trimmed);
            } else if let Some((k, _)) = trimmed.split_once('=') {
                let k = k.trim().trim_matches('"');
                key = Some(match &table {
                    Some(t) => format!("{t}.{k}"),
                    None => k.to_owned(),
                });
            }
            break;
        }
        if trimmed.starts_with('[') {
            table = header(trimmed);
        }
    }
    (Some(line_no), key.or(table))
}

/// `[collector]` -> `collector`, `[[x.y]]` -> `x.y`.
fn header(line: &str) -> Option<String> {
    let inner = line.trim_start_matches('[');
    let end = inner.find(']')?;
    Some(inner[..end].trim().to_owned())
}

/// A batch interval: a whole number with a unit (`250ms`, `1s`, `30s`, `5m`, `1h`), at least
/// [`Interval::MIN`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Interval(Duration);

/// Why a text is not a valid [`Interval`].
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IntervalError {
    /// Not a number followed by a unit.
    #[error("invalid duration {0:?}: write a whole number and a unit (ms, s, m, h), e.g. \"250ms\", \"30s\", \"5m\"")]
    Syntax(String),
    /// Shorter than the minimum.
    #[error("interval {0:?} is shorter than the minimum of 100ms")]
    TooShort(String),
}

impl Interval {
    /// The shortest interval accepted: below it the agent would mostly measure itself.
    pub const MIN: Duration = Duration::from_millis(100);

    /// The interval as a [`Duration`].
    pub fn get(self) -> Duration {
        self.0
    }
}

impl FromStr for Interval {
    type Err = IntervalError;

    fn from_str(s: &str) -> Result<Self, IntervalError> {
        let syntax = || IntervalError::Syntax(s.to_owned());
        let t = s.trim();
        let split = t.find(|c: char| !c.is_ascii_digit()).ok_or_else(syntax)?;
        let (num, unit) = t.split_at(split);
        let n: u64 = num.parse().map_err(|_| syntax())?;
        let ms_per_unit = match unit {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            _ => return Err(syntax()),
        };
        let ms = n.checked_mul(ms_per_unit).ok_or_else(syntax)?;
        let d = Duration::from_millis(ms);
        if d < Interval::MIN {
            return Err(IntervalError::TooShort(s.to_owned()));
        }
        Ok(Interval(d))
    }
}

impl TryFrom<Duration> for Interval {
    type Error = IntervalError;

    fn try_from(d: Duration) -> Result<Self, IntervalError> {
        if d < Interval::MIN {
            return Err(IntervalError::TooShort(format!("{}ms", d.as_millis())));
        }
        Ok(Interval(d))
    }
}

impl fmt::Display for Interval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        match ms {
            _ if ms.is_multiple_of(3_600_000) => write!(f, "{}h", ms / 3_600_000),
            _ if ms.is_multiple_of(60_000) => write!(f, "{}m", ms / 60_000),
            _ if ms.is_multiple_of(1_000) => write!(f, "{}s", ms / 1_000),
            _ => write!(f, "{ms}ms"),
        }
    }
}

impl<'de> Deserialize<'de> for Interval {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(de::Error::custom)
    }
}

/// How the agent talks to the collector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TransportKind {
    /// QUIC with mutual TLS, one stream per batch.
    Quic,
    /// MQTT (QoS 1) with mutual TLS through a broker; `address` is the broker's.
    Mqtt,
}

/// `[spool]`: the on-disk queue of batches not yet acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct SpoolConfig {
    /// Most bytes of batch data kept; beyond it the spool sheds (metrics and traffic first,
    /// downsampled before dropped; alerts and licenses last). Default "2MiB": the spool's
    /// pages count towards the agent's resident memory while it sheds.
    #[serde(default = "default_spool_bytes")]
    pub max_bytes: ByteSize,
}

impl Default for SpoolConfig {
    fn default() -> Self {
        SpoolConfig { max_bytes: default_spool_bytes() }
    }
}

fn default_spool_bytes() -> ByteSize {
    ByteSize(2 << 20)
}

/// A size in bytes: a whole number with an optional unit (`KiB`, `MiB`, `GiB`), from 64 KiB to
/// 1 GiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(usize);

impl ByteSize {
    /// The size in bytes.
    pub fn get(self) -> usize {
        self.0
    }
}

impl FromStr for ByteSize {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim();
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let bad = || format!("invalid size {s:?}: write a whole number and KiB, MiB or GiB, e.g. \"8MiB\"");
        let n: usize = num.parse().map_err(|_| bad())?;
        let mult: usize = match unit.trim() {
            "" | "B" => 1,
            "KiB" => 1 << 10,
            "MiB" => 1 << 20,
            "GiB" => 1 << 30,
            _ => return Err(bad()),
        };
        let bytes = n.checked_mul(mult).ok_or_else(bad)?;
        if !((64 << 10)..=(1 << 30)).contains(&bytes) {
            return Err(format!("size {s:?} is out of range: between 64KiB and 1GiB"));
        }
        Ok(ByteSize(bytes))
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(de::Error::custom)
    }
}

/// `[collector]`: where the data goes and with which credentials.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct CollectorConfig {
    /// The transport.
    pub transport: TransportKind,
    /// `host:port` of the collector; the host may be a DNS name or an IP address.
    pub address: CollectorAddress,
    /// The name the collector's certificate must carry; default: the host part of `address`.
    #[serde(default)]
    pub server_name: Option<TlsName>,
    /// PEM file with the deployment CA the collector's certificate must chain to.
    pub ca: PathBuf,
    /// PEM file with this device's certificate (chain, leaf first).
    pub cert: PathBuf,
    /// PEM file with this device's private key.
    pub key: PathBuf,
}

impl CollectorConfig {
    /// The TLS name the collector's certificate is checked against.
    pub fn tls_name(&self) -> ServerName<'static> {
        match &self.server_name {
            Some(n) => n.0.clone(),
            None => self.address.host.clone(),
        }
    }
}

/// A collector address: an IP socket address or a DNS name with a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectorAddress {
    host: ServerName<'static>,
    port: u16,
}

/// Why a text is not a valid [`CollectorAddress`] or [`TlsName`].
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AddressError {
    /// No `:port` part.
    #[error("{0:?} has no port: write host:port, e.g. \"collector.example.net:4433\" or \"[2001:db8::1]:4433\"")]
    NoPort(String),
    /// The port is not a number from 1 to 65535.
    #[error("{0:?} has an invalid port: use a number from 1 to 65535")]
    BadPort(String),
    /// The host is neither an IP address nor a valid DNS name.
    #[error("{0:?} is neither an IP address nor a valid DNS name")]
    BadHost(String),
}

impl CollectorAddress {
    /// The host part, as a TLS name (IP or DNS).
    pub fn host(&self) -> &ServerName<'static> {
        &self.host
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The socket address, when the host is an IP address (no DNS lookup needed).
    pub fn socket_addr(&self) -> Option<SocketAddr> {
        match &self.host {
            ServerName::IpAddress(ip) => Some(SocketAddr::new(IpAddr::from(*ip), self.port)),
            _ => None,
        }
    }
}

impl FromStr for CollectorAddress {
    type Err = AddressError;

    fn from_str(s: &str) -> Result<Self, AddressError> {
        if let Ok(sa) = s.parse::<SocketAddr>() {
            if sa.port() == 0 {
                return Err(AddressError::BadPort(s.to_owned()));
            }
            return Ok(CollectorAddress { host: ServerName::from(sa.ip()), port: sa.port() });
        }
        let (host, port) = s.rsplit_once(':').ok_or_else(|| AddressError::NoPort(s.to_owned()))?;
        let port: u16 = port.parse().ok().filter(|p| *p != 0).ok_or_else(|| AddressError::BadPort(s.to_owned()))?;
        // A bare IPv6 address without brackets ends up here with a bogus split: refuse it.
        if host.is_empty() || host.contains(':') || host.starts_with('[') {
            return Err(AddressError::BadHost(s.to_owned()));
        }
        let host = ServerName::try_from(host.to_owned()).map_err(|_| AddressError::BadHost(s.to_owned()))?;
        Ok(CollectorAddress { host, port })
    }
}

impl fmt::Display for CollectorAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.socket_addr() {
            Some(sa) => write!(f, "{sa}"),
            None => write!(f, "{}:{}", self.host.to_str(), self.port),
        }
    }
}

impl<'de> Deserialize<'de> for CollectorAddress {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(de::Error::custom)
    }
}

/// A TLS server name: a DNS name or an IP address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsName(ServerName<'static>);

impl<'de> Deserialize<'de> for TlsName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        ServerName::try_from(s.clone()).map(TlsName).map_err(|_| de::Error::custom(AddressError::BadHost(s)))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"
interval = "1s"
state-dir = "/var/lib/ampel/agent"
[collector]
transport = "quic"
address = "127.0.0.1:4433"
server-name = "localhost"
ca = "ca.pem"
cert = "device.pem"
key = "device.key"
[sources.performance]
enabled = true
mounts = ["/"]
[sources.inventory]
enabled = true
model = ""
firmware = ""
"#;

    fn parse(text: &str) -> Result<AgentConfig, ConfigError> {
        AgentConfig::parse(text, Path::new("/etc/ampel/agent.toml"))
    }

    fn err(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    #[test]
    fn every_key_of_the_example_parses() {
        let c = parse(EXAMPLE).unwrap();
        assert_eq!(c.interval.get(), Duration::from_secs(1));
        assert_eq!(c.state_dir, Path::new("/var/lib/ampel/agent"));
        assert_eq!(c.collector.transport, TransportKind::Quic);
        assert_eq!(c.collector.address.to_string(), "127.0.0.1:4433");
        assert_eq!(c.collector.tls_name().to_str(), "localhost");
        assert_eq!(c.collector.ca, Path::new("/etc/ampel/ca.pem"));
        assert!(c.sources.performance.enabled);
        assert_eq!(c.sources.performance.mounts.len(), 1);
        assert!(c.sources.inventory.enabled);
    }

    #[test]
    fn the_shipped_example_parses() {
        let text = include_str!("../agent.example.toml");
        let c = AgentConfig::parse(text, Path::new("agent.example.toml")).unwrap();
        assert_eq!(c.interval.get(), Duration::from_secs(60));
        assert_eq!(c.collector.cert, Path::new("./device.pem"));
    }

    #[test]
    fn typo_in_a_key_names_file_line_and_key() {
        let text = EXAMPLE.replace("interval = ", "intervall = ");
        let e = AgentConfig::parse(&text, Path::new("agent.toml")).unwrap_err().to_string();
        assert!(e.starts_with("agent.toml: line 2, key \"intervall\": unknown field"), "{e}");
    }

    #[test]
    fn typo_in_a_table_names_the_dotted_key() {
        let e = err(&EXAMPLE.replace("server-name", "servername"));
        assert!(e.contains("line 7, key \"collector.servername\": unknown field"), "{e}");
    }

    #[test]
    fn bad_values_name_line_key_and_what_to_write() {
        let e = err(&EXAMPLE.replace("\"1s\"", "\"1 sec\""));
        assert!(e.contains("line 2, key \"interval\": invalid duration \"1 sec\""), "{e}");
        let e = err(&EXAMPLE.replace("\"1s\"", "\"50ms\""));
        assert!(e.contains("key \"interval\"") && e.contains("minimum of 100ms"), "{e}");
        let e = err(&EXAMPLE.replace("127.0.0.1:4433", "collector.example.net"));
        assert!(e.contains("line 6, key \"collector.address\"") && e.contains("has no port"), "{e}");
        let e = err(&EXAMPLE.replace("127.0.0.1:4433", "bad host!:4433"));
        assert!(e.contains("neither an IP address nor a valid DNS name"), "{e}");
        let e = err(&EXAMPLE.replace("\"quic\"", "\"carrier-pigeon\""));
        assert!(e.contains("line 5, key \"collector.transport\"") && e.contains("quic"), "{e}");
        let e = err(&EXAMPLE.replace("mounts = [\"/\"]", "mounts = [\"var\"]"));
        assert!(e.contains("key \"sources.performance.mounts\"") && e.contains("absolute"), "{e}");
    }

    #[test]
    fn a_missing_required_key_is_named() {
        let e = err(&EXAMPLE.replace("ca = \"ca.pem\"\n", ""));
        assert!(e.contains("collector") && e.contains("missing field `ca`"), "{e}");
    }

    #[test]
    fn relative_paths_resolve_against_the_config_directory() {
        let text = EXAMPLE.replace("/var/lib/ampel/agent", "state").replace("\"ca.pem\"", "\"../pki/ca.pem\"");
        let c = AgentConfig::parse(&text, Path::new("/srv/ampel/agent.toml")).unwrap();
        assert_eq!(c.state_dir, Path::new("/srv/ampel/state"));
        assert_eq!(c.collector.ca, Path::new("/srv/ampel/../pki/ca.pem"));
        assert_eq!(c.collector.key, Path::new("/srv/ampel/device.key"));
        let c = AgentConfig::parse(&text, Path::new("agent.toml")).unwrap();
        assert_eq!(c.collector.cert, Path::new("./device.pem"));
    }

    #[test]
    fn intervals_accept_the_documented_units_only() {
        for (s, ms) in [("250ms", 250), ("1s", 1_000), ("30s", 30_000), ("5m", 300_000), ("1h", 3_600_000), ("100ms", 100)] {
            let i: Interval = s.parse().unwrap();
            assert_eq!(i.get(), Duration::from_millis(ms), "{s}");
            assert_eq!(i.to_string(), s);
        }
        for bad in ["", "1", "s", "1.5s", "-1s", "1d", "1 s", "99ms", "0s", "99999999999999999999h"] {
            assert!(bad.parse::<Interval>().is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn addresses_take_ips_and_dns_names() {
        let a: CollectorAddress = "[::1]:4433".parse().unwrap();
        assert_eq!(a.socket_addr(), Some("[::1]:4433".parse().unwrap()));
        assert_eq!(a.to_string(), "[::1]:4433");
        let a: CollectorAddress = "collector.example.net:4433".parse().unwrap();
        assert_eq!((a.host().to_str().as_ref(), a.port(), a.socket_addr()), ("collector.example.net", 4433, None));
        for bad in ["collector", "collector:0", "collector:70000", ":4433", "::1:4433", "a b:1"] {
            assert!(bad.parse::<CollectorAddress>().is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn server_name_defaults_to_the_host_part() {
        let c = parse(&EXAMPLE.replace("server-name = \"localhost\"\n", "")).unwrap();
        assert_eq!(c.collector.tls_name().to_str(), "127.0.0.1");
    }

    #[test]
    fn missing_file_names_the_path() {
        let e = AgentConfig::load(Path::new("/nonexistent/agent.toml")).unwrap_err().to_string();
        assert!(e.contains("/nonexistent/agent.toml"), "{e}");
    }
}
