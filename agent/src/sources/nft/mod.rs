//! `nft`: nftables named counters (`nft -j list counters`) as traffic categories.
//!
//! Each named counter becomes a Traffic record with `category` = `nft/<family>/<table>/<name>`
//! and an empty interface; a counter has no direction, so its bytes and packets are reported as
//! received. The running source reports deltas between cycles (see
//! [`netdev::delta`](super::netdev::delta)); the first cycle takes the baseline.
//!
//! The JSON is read from `path` when set, else from running `command` (default
//! `nft -j list counters`, which needs `CAP_NET_ADMIN`; a fork and exec per cycle, about a
//! millisecond). Either way at most [`NFT_MAX`](crate::files::NFT_MAX) bytes are read: a command
//! that prints more, or runs longer than [`COMMAND_TIMEOUT`], is killed and reaped and the cycle
//! reports the source failing (`command`).

mod command;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use ampel_protocol::Record;
use serde::Deserialize;

use super::netdev::{Counters, delta, traffic};
use super::{BuildContext, FailureLog, Source, SourceConfig, SourceError};

/// `[sources.nft]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct NftConfig {
    /// Whether the source runs (default: when `path` is set and exists at start; running the
    /// command must be asked for with `enabled = true`).
    #[serde(default)]
    pub enabled: Option<bool>,
    /// A file holding `nft -j list counters` output (default: none, run `command`).
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// The command printing the counters as JSON (default `["nft", "-j", "list", "counters"]`).
    #[serde(default = "default_command")]
    pub command: Vec<String>,
}

fn default_command() -> Vec<String> {
    ["nft", "-j", "list", "counters"].map(str::to_owned).to_vec()
}

impl Default for NftConfig {
    fn default() -> Self {
        NftConfig { enabled: None, path: None, command: default_command() }
    }
}

impl SourceConfig for NftConfig {
    fn enabled(&self) -> bool {
        self.enabled.unwrap_or_else(|| self.path.as_ref().is_some_and(|p| p.exists()))
    }

    fn build(&self, _ctx: &BuildContext) -> Result<Box<dyn Source>, SourceError> {
        if self.path.is_none() && self.command.is_empty() {
            return Err(SourceError::System { what: "nft", reason: "neither path nor command is set".into() });
        }
        if let Some(p) = &self.path {
            super::check_path("sources.nft.path", p, crate::files::NFT_MAX)?;
        }
        Ok(Box::new(Nft {
            config: self.clone(),
            prev: BTreeMap::new(),
            last_ms: None,
            failures: FailureLog::default(),
        }))
    }
}

#[derive(Deserialize)]
struct Doc<'a> {
    #[serde(borrow)]
    nftables: Vec<Item<'a>>,
}

#[derive(Deserialize)]
struct Item<'a> {
    #[serde(borrow, default)]
    counter: Option<Counter<'a>>,
}

#[derive(Deserialize)]
struct Counter<'a> {
    #[serde(borrow)]
    family: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    table: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    name: std::borrow::Cow<'a, str>,
    packets: u64,
    bytes: u64,
}

pub use command::CommandError;

/// Most time the counters command may take.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);

/// Why nft output could not be used.
#[derive(Debug, thiserror::Error)]
pub enum NftError {
    /// Not the JSON `nft -j` prints.
    #[error("not nft JSON output: {0}")]
    Json(#[from] serde_json::Error),
    /// The file could not be read (missing, not a regular file, over its limit).
    #[error("{}: {source}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What reading it said.
        source: std::io::Error,
    },
    /// The command failed, printed too much or took too long.
    #[error(transparent)]
    Command(#[from] CommandError),
    /// Neither a file nor a command is configured.
    #[error("neither path nor command is set")]
    Unconfigured,
}

/// Parses `nft -j list counters` (or `list ruleset`) output: category and counters.
pub fn parse(text: &str) -> Result<Vec<(String, Counters)>, NftError> {
    let doc: Doc<'_> = serde_json::from_str(text)?;
    Ok(doc
        .nftables
        .into_iter()
        .filter_map(|i| i.counter)
        .map(|c| {
            (
                format!("nft/{}/{}/{}", c.family, c.table, c.name),
                Counters { rx_bytes: c.bytes, rx_packets: c.packets, ..Counters::default() },
            )
        })
        .collect())
}

/// The running source.
pub struct Nft {
    config: NftConfig,
    prev: BTreeMap<String, Counters>,
    last_ms: Option<i64>,
    failures: FailureLog,
}

impl Nft {
    fn read(&self) -> Result<Vec<(String, Counters)>, NftError> {
        let text = match (&self.config.path, self.config.command.split_first()) {
            (Some(p), _) => {
                crate::files::read_limited_to_string(p, crate::files::NFT_MAX).map_err(|source| NftError::File { path: p.clone(), source })?
            }
            (None, Some((prog, args))) => {
                let out = command::output(prog, args, crate::files::NFT_MAX, COMMAND_TIMEOUT)?;
                String::from_utf8_lossy(&out).into_owned()
            }
            (None, None) => return Err(NftError::Unconfigured),
        };
        parse(&text)
    }
}

impl Source for Nft {
    fn name(&self) -> &'static str {
        "nft"
    }

    fn gather(&mut self, now_ms: i64) -> Result<Vec<Record>, SourceError> {
        let read = self.read();
        let Some(counters) = self.failures.check("nft", "nftables counters", read) else { return Ok(Vec::new()) };
        let interval = self.last_ms.map(|l| u64::try_from(now_ms.saturating_sub(l)).unwrap_or(0));
        self.last_ms = Some(now_ms);
        let mut out = Vec::new();
        let mut next = BTreeMap::new();
        for (cat, c) in counters.into_iter().take(256) {
            if let (Some(p), Some(interval)) = (self.prev.get(&cat), interval) {
                let d = Counters {
                    rx_bytes: delta(p.rx_bytes, c.rx_bytes),
                    rx_packets: delta(p.rx_packets, c.rx_packets),
                    ..Counters::default()
                };
                out.push(traffic(now_ms, interval, String::new(), Some(cat.clone()), d));
            }
            next.insert(cat, c);
        }
        self.prev = next;
        Ok(out)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn named_counters_become_categories() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/netfilter/generated-nft-1.0.6-j-list-counters.json");
        let got = parse(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].0, "nft/inet/filter/cnt_ssh_blocked");
        assert_eq!((got[0].1.rx_packets, got[0].1.rx_bytes), (2, 120));
        assert!(parse("not json").is_err());

        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.json");
        std::fs::copy(&path, &p).unwrap();
        let cfg = NftConfig { path: Some(p.clone()), ..NftConfig::default() };
        assert!(cfg.enabled());
        let mut s = cfg.build(&BuildContext::default()).unwrap();
        assert!(s.gather(0).unwrap().is_empty());
        let text = std::fs::read_to_string(&p).unwrap().replace("\"packets\": 10, \"bytes\": 600", "\"packets\": 13, \"bytes\": 780");
        std::fs::write(&p, text).unwrap();
        let r = s.gather(10_000).unwrap();
        let http = r
            .iter()
            .find_map(|r| match r {
                Record::Traffic(t) if t.category.as_deref() == Some("nft/inet/filter/cnt_http") => Some(t),
                _ => None,
            })
            .unwrap();
        assert_eq!((http.rx_packets, http.rx_bytes, http.interval_ms), (3, 180, 10_000));
    }

    /// A command that prints without end: the source reads 16 MiB, stops it and fails the
    /// cycle, saying so, instead of growing until memory runs out.
    #[test]
    fn an_endless_command_fails_the_cycle_with_bounded_memory() {
        let cfg = NftConfig { enabled: Some(true), path: None, command: vec!["sh".into(), "-c".into(), "exec yes".into()] };
        let nft = Nft { config: cfg, prev: BTreeMap::new(), last_ms: None, failures: FailureLog::default() };
        let err = nft.read().unwrap_err();
        assert!(matches!(err, NftError::Command(CommandError::TooLarge { max: crate::files::NFT_MAX, .. })), "{err:?}");
        assert!(err.to_string().contains("printed more than 16777216 bytes"), "{err}");
    }
}
