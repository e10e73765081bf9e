//! `license`: the appliance's license file, in the format described in `README.md` next to
//! this file.
//!
//! A License record goes out on start, whenever the state changes (including the moment an
//! expiry passes) and at least hourly. A missing, unreadable or invalid file gives a record with
//! `licensed = false` and `unknown_reason` set, and one log line per change, never a failure.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ampel_protocol::{License, LicenseFeature, Record};
use serde::Deserialize;

use super::text::{days_from_civil, parse_iso};
use super::{BuildContext, Source, SourceConfig, SourceError, enabled_or_exists};

/// The license record is sent at least this often even when nothing changed (one hour).
pub const RESEND_EVERY_MS: i64 = 3_600_000;

/// `[sources.license]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct LicenseConfig {
    /// Whether the source runs (default: when `path` exists at start; set `true` to report a
    /// missing file as "license unknown").
    #[serde(default)]
    pub enabled: Option<bool>,
    /// The license file (default `/etc/ampel/license.toml`).
    #[serde(default = "default_path")]
    pub path: PathBuf,
}

fn default_path() -> PathBuf {
    PathBuf::from("/etc/ampel/license.toml")
}

impl Default for LicenseConfig {
    fn default() -> Self {
        LicenseConfig { enabled: None, path: default_path() }
    }
}

impl SourceConfig for LicenseConfig {
    fn enabled(&self) -> bool {
        enabled_or_exists(self.enabled, &self.path)
    }

    fn build(&self, _ctx: &BuildContext) -> Result<Box<dyn Source>, SourceError> {
        super::check_path("sources.license.path", &self.path, crate::files::LICENSE_MAX)?;
        Ok(Box::new(LicenseSource { path: self.path.clone(), last: None, last_reason: None }))
    }
}

/// Why a license file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum LicenseError {
    /// The file could not be read.
    #[error("cannot read {path}: {error}")]
    Read {
        /// The file.
        path: String,
        /// What the OS said.
        error: std::io::Error,
    },
    /// Not valid TOML or not the documented keys.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
}

/// The file as written (see README.md).
#[derive(Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct LicenseFile {
    product: String,
    #[serde(default)]
    model: String,
    #[serde(default)]
    serial: String,
    licensed: bool,
    #[serde(default)]
    expiry: Option<Expiry>,
    #[serde(default)]
    features: BTreeMap<String, Expiry>,
}

/// `"2027-06-30"` (valid through that UTC day), an RFC 3339 instant, or `"never"`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Expiry(Option<i64>);

impl<'de> Deserialize<'de> for Expiry {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse_expiry(&s).map(Expiry).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "expiry {s:?}: write a date \"YYYY-MM-DD\", an instant \"YYYY-MM-DDTHH:MM:SSZ\" or \"never\""
            ))
        })
    }
}

/// The first instant (Unix ms) the license is no longer valid; `Some(None)` for "never".
fn parse_expiry(s: &str) -> Option<Option<i64>> {
    if s == "never" {
        return Some(None);
    }
    if s.len() == 10 {
        let b = s.as_bytes();
        if b[4] != b'-' || b[7] != b'-' {
            return None;
        }
        let (y, m, d) = (s[0..4].parse::<i64>().ok()?, s[5..7].parse::<u32>().ok()?, s[8..10].parse::<u32>().ok()?);
        if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
            return None;
        }
        // Valid through the whole day: expires at the next midnight UTC.
        return Some(Some((days_from_civil(y, m, d) + 1) * 86_400_000));
    }
    parse_iso(s).map(Some)
}

/// Reads the license file at `path` as of `now_ms`. The record's `licensed` is the file's
/// `licensed` and `now_ms` before `expiry`.
pub fn read(path: &Path, now_ms: i64) -> Result<License, LicenseError> {
    let shown = path.display().to_string();
    let text = crate::files::read_limited_to_string(path, crate::files::LICENSE_MAX)
        .map_err(|error| LicenseError::Read { path: shown.clone(), error })?;
    parse(&text, &shown, now_ms)
}

/// Parses license file text read from `shown` (for messages) as of `now_ms`.
pub fn parse(text: &str, shown: &str, now_ms: i64) -> Result<License, LicenseError> {
    let f: LicenseFile =
        toml::from_str(text).map_err(|e| LicenseError::Parse { path: shown.to_owned(), message: e.message().trim().to_owned() })?;
    let expires = f.expiry.and_then(|e| e.0);
    Ok(License {
        ts: now_ms,
        product: f.product,
        model: f.model,
        serial: f.serial,
        licensed: f.licensed && expires.is_none_or(|e| now_ms < e),
        expires,
        features: f.features.into_iter().map(|(name, e)| LicenseFeature { name, expires: e.0 }).collect(),
        unknown_reason: None,
    })
}

/// The record sent when the license cannot be read.
pub fn unknown(now_ms: i64, reason: String) -> License {
    License {
        ts: now_ms,
        product: String::new(),
        model: String::new(),
        serial: String::new(),
        licensed: false,
        expires: None,
        features: Vec::new(),
        unknown_reason: Some(reason),
    }
}

/// The running source.
pub struct LicenseSource {
    path: PathBuf,
    last: Option<License>,
    last_reason: Option<String>,
}

impl Source for LicenseSource {
    fn name(&self) -> &'static str {
        "license"
    }

    fn gather(&mut self, now_ms: i64) -> Result<Vec<Record>, SourceError> {
        let current = match read(&self.path, now_ms) {
            Ok(l) => {
                if self.last_reason.take().is_some() {
                    tracing::info!(path = %self.path.display(), "license file readable again");
                }
                l
            }
            Err(e) => {
                let reason = e.to_string();
                if self.last_reason.as_deref() != Some(&reason) {
                    tracing::warn!(path = %self.path.display(), error = %reason, "license unknown");
                    self.last_reason = Some(reason.clone());
                }
                unknown(now_ms, reason)
            }
        };
        let due = match &self.last {
            None => true,
            Some(last) => {
                let age = now_ms.saturating_sub(last.ts);
                License { ts: now_ms, ..last.clone() } != current || !(0..RESEND_EVERY_MS).contains(&age)
            }
        };
        if !due {
            return Ok(Vec::new());
        }
        self.last = Some(current.clone());
        Ok(vec![Record::License(current)])
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400_000;

    fn date(ms: i64) -> String {
        crate::sources::text::date_of(ms)
    }

    fn file(dir: &Path, expiry: &str) -> PathBuf {
        let p = dir.join("license.toml");
        std::fs::write(
            &p,
            format!(
                "product = \"Ampel UTM\"\nmodel = \"RC100\"\nserial = \"X1-2345\"\nlicensed = true\nexpiry = \"{expiry}\"\n\n[features]\nids = \"{expiry}\"\nantivirus = \"never\"\n"
            ),
        )
        .unwrap();
        p
    }

    #[test]
    fn expires_tomorrow_today_yesterday() {
        let dir = tempfile::tempdir().unwrap();
        let now = 1_795_315_014_000; // 2026-11-22 02:36:54 UTC
        assert_eq!(date(now), "2026-11-22");
        for (offset, licensed) in [(1, true), (0, true), (-1, false)] {
            let p = file(dir.path(), &date(now + offset * DAY));
            let l = read(&p, now).unwrap();
            assert_eq!(l.licensed, licensed, "expiry {offset:+} days");
            assert_eq!(l.expires, Some((now.div_euclid(DAY) + offset + 1) * DAY));
            assert_eq!((l.product.as_str(), l.model.as_str(), l.serial.as_str()), ("Ampel UTM", "RC100", "X1-2345"));
            assert_eq!(l.features.len(), 2);
            assert_eq!(l.features[0], LicenseFeature { name: "antivirus".into(), expires: None });
        }
    }

    #[test]
    fn sent_on_start_on_change_and_when_expiry_passes() {
        let dir = tempfile::tempdir().unwrap();
        let now = 1_795_315_014_000;
        let p = file(dir.path(), &date(now));
        let mut s = LicenseConfig { enabled: Some(true), path: p.clone() }.build(&BuildContext::default()).unwrap();
        assert_eq!(s.gather(now).unwrap().len(), 1);
        assert!(s.gather(now + 1_000).unwrap().is_empty());
        let midnight = (now.div_euclid(DAY) + 1) * DAY;
        let r = s.gather(midnight).unwrap();
        let [Record::License(l)] = r.as_slice() else { panic!("{r:?}") };
        assert!(!l.licensed, "expired at midnight after the expiry day");
    }

    #[test]
    fn missing_or_bad_file_is_license_unknown() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("none.toml");
        let mut s = LicenseConfig { enabled: Some(true), path: p.clone() }.build(&BuildContext::default()).unwrap();
        let r = s.gather(1).unwrap();
        let [Record::License(l)] = r.as_slice() else { panic!("{r:?}") };
        assert!(!l.licensed && l.unknown_reason.as_deref().unwrap().contains("none.toml"));
        std::fs::write(&p, "product = 1\n").unwrap();
        let r = s.gather(2).unwrap();
        let [Record::License(l)] = r.as_slice() else { panic!("{r:?}") };
        assert!(l.unknown_reason.is_some());
        std::fs::write(&p, "product = \"x\"\nlicensed = true\nexpiry = \"soon\"\n").unwrap();
        assert!(read(&p, 0).unwrap_err().to_string().contains("YYYY-MM-DD"));
    }
}
