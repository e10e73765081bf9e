//! Sources: each gathers one kind of data and turns it into [`Record`]s.
//!
//! A source is a folder here with its config type (implementing [`SourceConfig`]) and its
//! runtime type (implementing [`Source`]). Adding one means adding its folder and one line to
//! the `registry!` invocation below, which declares the module and generates the `[sources.*]`
//! config table and the code that builds every enabled source.

use std::path::{Path, PathBuf};

use ampel_protocol::Record;

pub mod follow;
pub mod tail;
pub mod text;

/// Why a source could not be built or could not gather.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The operating system would not tell us what we asked.
    #[error("{what}: {reason}")]
    System {
        /// What we tried to read.
        what: &'static str,
        /// Why it failed.
        reason: String,
    },
}

/// Refuses when a source is built — so `check-config` exits 78 — a configured path that
/// exists but is not a regular file of at most `max` bytes: a device there would never end a
/// read, a FIFO would block it. A missing file is fine: it may appear later, and the source
/// reports it while it is missing.
pub(crate) fn check_path(what: &'static str, path: &std::path::Path, max: u64) -> Result<(), SourceError> {
    match crate::files::check_regular(path, max) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(SourceError::System { what, reason: format!("{}: {e}", path.display()) }),
        _ => Ok(()),
    }
}

/// A running source. The run loop calls [`Source::gather`] once per interval.
pub trait Source: Send {
    /// The source's name as in `[sources.<name>]`, for logs.
    fn name(&self) -> &'static str;

    /// The records of this cycle, stamped with `now_ms` (Unix ms UTC).
    ///
    /// Partial failures (one unreadable mount) are logged by the source and leave out only
    /// what failed; an error means nothing could be gathered this cycle.
    fn gather(&mut self, now_ms: i64) -> Result<Vec<Record>, SourceError>;

    /// The batch interval this source asks for (the `agent` source widens it when a cycle
    /// overruns its CPU budget); `None`: no opinion.
    fn wanted_interval(&self) -> Option<std::time::Duration> {
        None
    }

    /// A position to persist with the batch this cycle's records went into, for sources that
    /// must not produce the same record twice nor skip one across crashes. The run loop stores
    /// it in the spool in the same transaction as the batch.
    fn cursor(&self) -> Option<u64> {
        None
    }

    /// Restores the position from the spool at start-up.
    fn resume(&mut self, _cursor: u64) {}

    /// This cycle's records are in the spool: a source that keeps its own position (a followed
    /// file) may save it now. Until then a crash makes it read the same input again.
    fn committed(&mut self) {}
}

/// The config of one source: says whether it is enabled and builds it.
pub trait SourceConfig {
    /// Whether the operator turned the source on.
    fn enabled(&self) -> bool;

    /// Builds the runtime source.
    fn build(&self, ctx: &BuildContext) -> Result<Box<dyn Source>, SourceError>;
}

/// What a source may need from the agent when it is built.
#[derive(Debug, Clone, Default)]
pub struct BuildContext {
    /// Where a source keeps state across restarts (file positions); `None` for `once`, which
    /// writes nothing.
    pub state_dir: Option<PathBuf>,
    /// The configured batch interval, if the agent runs on one.
    pub interval: Option<std::time::Duration>,
}

impl BuildContext {
    /// The path of a state file named `name` in the state directory, if state is kept.
    pub fn state_file(&self, name: &str) -> Option<PathBuf> {
        self.state_dir.as_ref().map(|d| d.join(name))
    }
}

/// `enabled` of a file-reading source: an explicit value wins; without one the source runs when
/// its file exists at start ("auto").
pub fn enabled_or_exists(enabled: Option<bool>, path: &Path) -> bool {
    enabled.unwrap_or_else(|| path.exists())
}

/// Declares each source's module and generates [`SourcesConfig`] (one optional table per
/// source) and [`SourcesConfig::build`].
macro_rules! registry {
    ($($(#[doc = $doc:literal])* $name:ident: $config:ty,)*) => {
        $(pub mod $name;)*

        /// `[sources.*]`: one table per source. A missing table means the source's defaults.
        #[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
        #[serde(rename_all = "kebab-case", deny_unknown_fields)]
        pub struct SourcesConfig {
            $($(#[doc = $doc])* #[serde(default)] pub $name: $config,)*
        }

        impl SourcesConfig {
            /// Builds every enabled source, in registry order.
            pub fn build(&self, ctx: &BuildContext) -> Result<Vec<Box<dyn Source>>, SourceError> {
                let mut sources: Vec<Box<dyn Source>> = Vec::new();
                $(if SourceConfig::enabled(&self.$name) {
                    sources.push(SourceConfig::build(&self.$name, ctx)?);
                })*
                Ok(sources)
            }
        }
    };
}

registry! {
    /// `[sources.performance]`: CPU, memory, swap, load, disk usage, uptime.
    performance: performance::PerformanceConfig,
    /// `[sources.inventory]`: what the device is and runs.
    inventory: inventory::InventoryConfig,
    /// `[sources.license]`: the appliance's license file.
    license: license::LicenseConfig,
    /// `[sources.eve]`: Suricata EVE JSON (alerts, anomalies, drops, files, stats, flows).
    eve: eve::EveConfig,
    /// `[sources.clamav]`: ClamAV detections (clamd log, `clamscan --log`).
    clamav: clamav::ClamavConfig,
    /// `[sources.mail]`: mail filter verdicts (Postfix / amavis / Exim log, rspamd history).
    mail: mail::MailConfig,
    /// `[sources.netdev]`: per-interface traffic from `/proc/net/dev`.
    netdev: netdev::NetdevConfig,
    /// `[sources.nft]`: nftables named counters as traffic categories.
    nft: nft::NftConfig,
    /// `[sources.counter]`: numbered test points (off by default; for end-to-end tests).
    counter: counter::CounterConfig,
    /// `[sources.agent]`: the agent's own CPU and memory, and its CPU budget. Keep it last.
    agent: agent::AgentSelfConfig,
}

/// Gathers from every source, logging (not propagating) a source's failure so one broken
/// source does not silence the others.
pub fn gather_all(sources: &mut [Box<dyn Source>], now_ms: i64) -> Vec<Record> {
    let mut records = Vec::new();
    for source in sources.iter_mut() {
        match source.gather(now_ms) {
            Ok(mut r) => records.append(&mut r),
            Err(e) => tracing::warn!(source = source.name(), error = %e, "source failed this cycle"),
        }
    }
    records
}

/// The interval the sources ask for: the widest any of them wants.
pub fn wanted_interval(sources: &[Box<dyn Source>]) -> Option<std::time::Duration> {
    sources.iter().filter_map(|s| s.wanted_interval()).max()
}

/// Remembers which parts of a source are failing, so a persistent failure is logged once when it
/// starts and once when it ends, not once per cycle.
#[derive(Debug, Default)]
pub(crate) struct FailureLog {
    failing: std::collections::BTreeSet<String>,
}

impl FailureLog {
    /// Passes `result` through as an `Option`, logging transitions between working and failing.
    pub(crate) fn check<T, E: std::fmt::Display>(&mut self, source: &str, what: &str, result: Result<T, E>) -> Option<T> {
        match result {
            Ok(v) => {
                if self.failing.remove(what) {
                    tracing::info!(source, what, "readable again");
                }
                Some(v)
            }
            Err(e) => {
                if self.failing.insert(what.to_owned()) {
                    tracing::warn!(source, what, error = %e, "cannot read; leaving it out until it recovers");
                }
                None
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// The shipped, commented default config names every source key with its default.
    #[test]
    fn the_packaged_config_parses_with_the_documented_defaults() {
        let text = include_str!("../../../packaging/agent.toml");
        let c = crate::AgentConfig::parse(text, Path::new("/etc/ampel/agent.toml")).unwrap();
        let s = &c.sources;
        assert_eq!(s.eve, eve::EveConfig::default());
        assert_eq!(s.license, license::LicenseConfig::default());
        assert_eq!(s.clamav, clamav::ClamavConfig::default());
        assert_eq!(s.mail, mail::MailConfig::default());
        assert_eq!(s.netdev, netdev::NetdevConfig::default());
        assert_eq!(s.nft, nft::NftConfig::default());
        assert_eq!(s.agent, agent::AgentSelfConfig::default());
    }

    #[test]
    fn unknown_source_keys_are_refused() {
        let e = toml::from_str::<SourcesConfig>("[eve]\npaht = \"/x\"\n").unwrap_err().to_string();
        assert!(e.contains("paht"), "{e}");
    }
}
