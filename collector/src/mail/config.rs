//! The `[mail]` table of `collector.toml`.
//!
//! Every value is parsed into a type that cannot hold a bad value (a mailbox, a host name, a
//! non-zero port, a bounded timeout), so the only checks left for [`MailConfig::validate`] are
//! the ones that span several fields.

use std::fmt;
use std::net::IpAddr;
use std::num::NonZeroU16;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use lettre::Address;
use lettre::message::Mailbox;
use lettre::transport::smtp::extension::ClientId;
use rustls_pki_types::ServerName;
use serde::{Deserialize, Deserializer};

use super::error::MailError;

/// Sender used when `from` is not set.
pub const DEFAULT_FROM: &str = "Ampel <ampel@localhost>";
/// Outbox directory used when `outbox` is not set.
pub const DEFAULT_OUTBOX: &str = "/var/lib/ampel/outbox";
/// Timeout used when `timeout` is not set.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// The `[mail]` table: how reports leave the collector.
///
/// Defaults (all keys are optional):
///
/// | key | default | meaning |
/// | --- | --- | --- |
/// | `from` | `"Ampel <ampel@localhost>"` | sender mailbox |
/// | `transport` | `"file"` | `"file"` writes `.eml` files, `"smtp"` talks to a server |
/// | `outbox` | `"/var/lib/ampel/outbox"` | file transport: directory for `.eml` files |
/// | `host` | none | smtp: server host name or IP; required when `transport = "smtp"` |
/// | `port` | by `security`: 25 / 465 / 587 | smtp: server port |
/// | `security` | `"starttls"` | `"none"`, `"tls"` (implicit TLS) or `"starttls"` |
/// | `username` | none | smtp: login name; needs `password-file` |
/// | `password-file` | none | file holding the password; read at start, trailing newline trimmed |
/// | `ca-file` | none | PEM file with extra trust anchors (a private CA) |
/// | `helo-name` | this machine's host name | name sent in EHLO |
/// | `timeout` | `"30s"` | limit for each step: resolve, connect, TLS, each SMTP exchange |
#[derive(Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct MailConfig {
    /// Sender of every report, e.g. `"Ampel <ampel@example.org>"`.
    #[serde(deserialize_with = "de_mailbox")]
    pub from: Mailbox,
    /// Where mail goes: a directory of `.eml` files or an SMTP server.
    pub transport: TransportKind,
    /// File transport: the directory `.eml` files are written to; created if missing.
    pub outbox: PathBuf,
    /// SMTP: the server to deliver to. Also the name its TLS certificate must carry.
    pub host: Option<Host>,
    /// SMTP: the server port; see [`MailConfig::port`] for the default.
    pub port: Option<NonZeroU16>,
    /// SMTP: how the connection is protected.
    pub security: Security,
    /// SMTP: login name; without it no AUTH is attempted.
    pub username: Option<Username>,
    /// SMTP: file holding the login password. Read once by [`super::Mailer::new`]; the
    /// password itself never appears in the configuration, logs or `Debug` output.
    pub password_file: Option<PathBuf>,
    /// SMTP: PEM file with extra trust anchors, for servers whose certificate comes from a
    /// private CA. The public web PKI roots stay trusted too.
    pub ca_file: Option<PathBuf>,
    /// SMTP: the name announced in EHLO; defaults to this machine's host name.
    pub helo_name: Option<HeloName>,
    /// Limit for each network step (resolve, connect, TLS, every SMTP exchange).
    pub timeout: Timeout,
}

impl Default for MailConfig {
    fn default() -> Self {
        MailConfig {
            from: default_from(),
            transport: TransportKind::default(),
            outbox: PathBuf::from(DEFAULT_OUTBOX),
            host: None,
            port: None,
            security: Security::default(),
            username: None,
            password_file: None,
            ca_file: None,
            helo_name: None,
            timeout: Timeout::default(),
        }
    }
}

/// [`DEFAULT_FROM`] as a mailbox. Built from parts because parsing could fail in theory and
/// this must not panic; a test checks that it equals the parsed constant.
fn default_from() -> Mailbox {
    Mailbox::new(Some("Ampel".to_owned()), Address::new_dangerous("ampel", "localhost"))
}

impl MailConfig {
    /// Resolves relative paths (`outbox`, `password-file`, `ca-file`) against `base`, the
    /// directory of the config file.
    pub fn resolve_paths(&mut self, base: &std::path::Path) {
        for p in [Some(&mut self.outbox), self.password_file.as_mut(), self.ca_file.as_mut()].into_iter().flatten() {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
    }

    /// Checks that span several fields; everything else was checked while parsing.
    ///
    /// - `transport = "smtp"` needs `host`;
    /// - `username` needs `password-file`, and `password-file` needs `username`;
    /// - a login is refused with `security = "none"`: the password would cross the network
    ///   in clear text.
    pub fn validate(&self) -> Result<(), MailError> {
        if self.transport == TransportKind::Smtp && self.host.is_none() {
            return Err(MailError::Config("transport = \"smtp\" needs `host` (the SMTP server to deliver to)".into()));
        }
        match (&self.username, &self.password_file) {
            (Some(_), None) => {
                return Err(MailError::Config(
                    "`username` is set but `password-file` is not: add the file holding the \
                     password"
                        .into(),
                ));
            }
            (None, Some(_)) => {
                return Err(MailError::Config("`password-file` is set but `username` is not: add the login name".into()));
            }
            _ => {}
        }
        if self.transport == TransportKind::Smtp && self.username.is_some() && self.security == Security::None {
            return Err(MailError::Config(
                "a login with security = \"none\" would send the password in clear text: use \
                 security = \"starttls\" or \"tls\""
                    .into(),
            ));
        }
        Ok(())
    }

    /// The SMTP port: `port` if set, else 25 for `none`, 465 for `tls`, 587 for `starttls`.
    pub fn port(&self) -> u16 {
        match self.port {
            Some(port) => port.get(),
            None => self.security.default_port(),
        }
    }
}

fn de_mailbox<'de, D: Deserializer<'de>>(d: D) -> Result<Mailbox, D::Error> {
    let s = String::deserialize(d)?;
    parse_mailbox(&s).map_err(serde::de::Error::custom)
}

/// Parses a mailbox such as `Name <user@example.org>` or `user@example.org`, refusing
/// control characters first so nothing can smuggle a header line in.
pub(crate) fn parse_mailbox(s: &str) -> Result<Mailbox, String> {
    if let Some(c) = s.chars().find(|c| c.is_control()) {
        return Err(format!("{s:?} contains the control character {c:?}; addresses must be on one line"));
    }
    Mailbox::from_str(s).map_err(|e| format!("{s:?} is not a valid mailbox: {e}"))
}

/// Where mail goes.
#[derive(Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum TransportKind {
    /// Write each message as an `.eml` file into `outbox` (for testing, or for a relay that
    /// picks files up).
    #[default]
    File,
    /// Deliver to the SMTP server at `host`.
    Smtp,
}

/// How the SMTP connection is protected.
#[derive(Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Security {
    /// Plain text. Only for a relay on the same host or a trusted network.
    None,
    /// Implicit TLS from the first byte ("SMTPS", RFC 8314), usually port 465.
    Tls,
    /// Plain connect, then the STARTTLS upgrade, which must succeed (RFC 3207); usually 587.
    #[default]
    Starttls,
}

impl Security {
    /// The customary port for this kind of connection.
    pub fn default_port(self) -> u16 {
        match self {
            Security::None => 25,
            Security::Tls => 465,
            Security::Starttls => 587,
        }
    }
}

/// An SMTP server name: a DNS name or an IP address. It is also the name checked against the
/// server's TLS certificate, so it must be acceptable to rustls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host(String);

impl Host {
    /// The host as written in the configuration.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Host {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s.is_empty() {
            return Err("the host name is empty".into());
        }
        ServerName::try_from(s).map(|_| Host(s.to_owned())).map_err(|_| format!("{s:?} is neither a valid DNS name nor an IP address"))
    }
}

impl<'de> Deserialize<'de> for Host {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

/// An SMTP login name: not empty, no control characters (it goes into an AUTH exchange).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    /// The login name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Username {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s.is_empty() {
            return Err("the username is empty".into());
        }
        if s.chars().any(char::is_control) {
            return Err("the username contains a control character".into());
        }
        Ok(Username(s.to_owned()))
    }
}

impl<'de> Deserialize<'de> for Username {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

/// The name announced in EHLO: a DNS name, or an IP address (sent as an address literal).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeloName(ClientId);

impl HeloName {
    /// The EHLO argument in lettre's form.
    pub fn client_id(&self) -> &ClientId {
        &self.0
    }
}

impl FromStr for HeloName {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.parse::<IpAddr>() {
            Ok(IpAddr::V4(ip)) => Ok(HeloName(ClientId::Ipv4(ip))),
            Ok(IpAddr::V6(ip)) => Ok(HeloName(ClientId::Ipv6(ip))),
            Err(_) if is_ldh_domain(s) => Ok(HeloName(ClientId::Domain(s.to_owned()))),
            Err(_) => Err(format!("{s:?} is neither a domain name (letters, digits, hyphens, dots) nor an IP address")),
        }
    }
}

/// RFC 5321 `Domain`: dot-separated labels of letters, digits and inner hyphens, at most 63
/// characters each and 253 in all. Stricter than rustls (which allows `_`), as EHLO must be.
fn is_ldh_domain(s: &str) -> bool {
    s.len() <= 253
        && s.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

impl<'de> Deserialize<'de> for HeloName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

/// A timeout between 1 ms and 1 hour, written like `"30s"`, `"500ms"`, `"2m"` or `"1m30s"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeout(Duration);

impl Timeout {
    /// The longest accepted timeout; anything longer is almost surely a typo.
    pub const MAX: Duration = Duration::from_secs(3600);

    /// The timeout as a duration.
    pub fn get(self) -> Duration {
        self.0
    }
}

impl Default for Timeout {
    fn default() -> Self {
        Timeout(DEFAULT_TIMEOUT)
    }
}

impl fmt::Display for Timeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        if ms.is_multiple_of(1000) { write!(f, "{}s", ms / 1000) } else { write!(f, "{ms}ms") }
    }
}

impl TryFrom<Duration> for Timeout {
    type Error = String;
    fn try_from(d: Duration) -> Result<Self, String> {
        if d < Duration::from_millis(1) {
            Err("the timeout must be at least 1ms".into())
        } else if d > Self::MAX {
            Err("the timeout must be at most 1h".into())
        } else {
            Ok(Timeout(d))
        }
    }
}

impl FromStr for Timeout {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("{s:?} is not a duration like \"30s\", \"500ms\", \"2m\" or \"1m30s\"");
        let mut rest = s.trim();
        if rest.is_empty() {
            return Err(bad());
        }
        let mut total = Duration::ZERO;
        while !rest.is_empty() {
            let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
            if digits == 0 {
                return Err(bad());
            }
            let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
            rest = &rest[digits..];
            let unit_len = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
            let part = match &rest[..unit_len] {
                "ms" => Duration::from_millis(n),
                "s" => Duration::from_secs(n),
                "m" => Duration::from_secs(n.saturating_mul(60)),
                "h" => Duration::from_secs(n.saturating_mul(3600)),
                _ => return Err(bad()),
            };
            rest = &rest[unit_len..];
            total = total.saturating_add(part);
        }
        Timeout::try_from(total)
    }
}

impl<'de> Deserialize<'de> for Timeout {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn parse(toml_text: &str) -> Result<MailConfig, toml::de::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Root {
            mail: MailConfig,
        }
        toml::from_str::<Root>(toml_text).map(|r| r.mail)
    }

    #[test]
    fn empty_table_gives_documented_defaults() {
        let cfg = parse("[mail]\n").unwrap();
        assert_eq!(cfg, MailConfig::default());
        assert_eq!(cfg.from, DEFAULT_FROM.parse::<Mailbox>().unwrap());
        assert_eq!(cfg.transport, TransportKind::File);
        assert_eq!(cfg.outbox, PathBuf::from(DEFAULT_OUTBOX));
        assert_eq!(cfg.security, Security::Starttls);
        assert_eq!(cfg.port(), 587);
        assert_eq!(cfg.timeout.get(), Duration::from_secs(30));
        cfg.validate().unwrap();
    }

    #[test]
    fn full_table_parses() {
        let cfg = parse(
            r#"
            [mail]
            from = "Ampel Reports <reports@example.org>"
            transport = "smtp"
            outbox = "/tmp/outbox"
            host = "smtp.example.org"
            port = 2525
            security = "tls"
            username = "reports"
            password-file = "/etc/ampel/smtp-password"
            ca-file = "/etc/ampel/smtp-ca.pem"
            helo-name = "collector.example.org"
            timeout = "1m30s"
            "#,
        )
        .unwrap();
        cfg.validate().unwrap();
        assert_eq!(cfg.from.email.to_string(), "reports@example.org");
        assert_eq!(cfg.host.as_ref().unwrap().as_str(), "smtp.example.org");
        assert_eq!(cfg.port(), 2525);
        assert_eq!(cfg.timeout.get(), Duration::from_secs(90));
        assert_eq!(cfg.helo_name.unwrap().client_id(), &ClientId::Domain("collector.example.org".into()));
    }

    #[test]
    fn port_defaults_follow_security() {
        for (security, port) in [("none", 25), ("tls", 465), ("starttls", 587)] {
            let cfg = parse(&format!("[mail]\nsecurity = \"{security}\"\n")).unwrap();
            assert_eq!(cfg.port(), port, "security = {security}");
        }
    }

    #[test]
    fn unknown_key_is_refused() {
        let err = parse("[mail]\nhots = \"smtp.example.org\"\n").unwrap_err();
        assert!(err.to_string().contains("unknown field `hots`"), "{err}");
    }

    #[test]
    fn bad_values_are_refused_while_parsing() {
        for (line, needle) in [
            ("from = \"not an address\"", "not a valid mailbox"),
            ("from = \"Evil\\r\\nBcc: x@y.z <a@b.c>\"", "control character"),
            ("transport = \"carrier-pigeon\"", "unknown variant"),
            ("security = \"ssl\"", "unknown variant"),
            ("port = 0", "nonzero"),
            ("port = 70000", "u16"),
            ("host = \"bad host\"", "neither a valid DNS name"),
            ("host = \"\"", "empty"),
            ("username = \"\"", "empty"),
            ("helo-name = \"under_score\"", "neither a domain name"),
            ("helo-name = \"-bad.example\"", "neither a domain name"),
            ("helo-name = \"a..b\"", "neither a domain name"),
            ("timeout = \"30\"", "not a duration"),
            ("timeout = \"0s\"", "at least 1ms"),
            ("timeout = \"2h\"", "at most 1h"),
            ("timeout = 30", "a string"),
        ] {
            let err = parse(&format!("[mail]\n{line}\n")).unwrap_err().to_string();
            assert!(err.contains(needle), "{line}: {err}");
        }
    }

    #[test]
    fn validate_checks_across_fields() {
        let smtp_without_host = parse("[mail]\ntransport = \"smtp\"\n").unwrap();
        let err = smtp_without_host.validate().unwrap_err().to_string();
        assert!(err.contains("needs `host`"), "{err}");

        let user_without_password = parse("[mail]\ntransport = \"smtp\"\nhost = \"h\"\nusername = \"u\"\n").unwrap();
        let err = user_without_password.validate().unwrap_err().to_string();
        assert!(err.contains("password-file"), "{err}");

        let password_without_user = parse("[mail]\ntransport = \"smtp\"\nhost = \"h\"\npassword-file = \"/p\"\n").unwrap();
        assert!(password_without_user.validate().is_err());

        let login_in_clear = parse(
            "[mail]\ntransport = \"smtp\"\nhost = \"h\"\nsecurity = \"none\"\n\
             username = \"u\"\npassword-file = \"/p\"\n",
        )
        .unwrap();
        let err = login_in_clear.validate().unwrap_err().to_string();
        assert!(err.contains("clear text"), "{err}");
    }

    #[test]
    fn helo_name_accepts_ip_addresses() {
        assert_eq!("192.0.2.7".parse::<HeloName>().unwrap().client_id(), &ClientId::Ipv4("192.0.2.7".parse().unwrap()));
        assert_eq!("2001:db8::1".parse::<HeloName>().unwrap().client_id(), &ClientId::Ipv6("2001:db8::1".parse().unwrap()));
    }

    #[test]
    fn timeout_round_trips_through_display() {
        for s in ["30s", "500ms", "1h"] {
            let t: Timeout = s.parse().unwrap();
            assert_eq!(t.to_string().parse::<Timeout>().unwrap(), t);
        }
        assert_eq!("2m".parse::<Timeout>().unwrap().get(), Duration::from_secs(120));
    }

    #[test]
    fn shipped_example_parses_and_validates() {
        let cfg = parse(include_str!("mail.example.toml")).unwrap();
        cfg.validate().unwrap();
        assert_eq!(cfg, MailConfig::default(), "the example documents the defaults");
    }
}
