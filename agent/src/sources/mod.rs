//! Sources: each gathers one kind of data and turns it into [`Record`]s.
//!
//! A source is a folder here with its config type (implementing [`SourceConfig`]) and its
//! runtime type (implementing [`Source`]). Adding one means adding its folder and one line to
//! the `registry!` invocation below, which declares the module and generates the `[sources.*]`
//! config table and the code that builds every enabled source.

use ampel_protocol::Record;

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

/// A running source. The run loop calls [`Source::gather`] once per interval.
pub trait Source: Send {
    /// The source's name as in `[sources.<name>]`, for logs.
    fn name(&self) -> &'static str;

    /// The records of this cycle, stamped with `now_ms` (Unix ms UTC).
    ///
    /// Partial failures (one unreadable mount) are logged by the source and leave out only
    /// what failed; an error means nothing could be gathered this cycle.
    fn gather(&mut self, now_ms: i64) -> Result<Vec<Record>, SourceError>;

    /// A position to persist with the batch this cycle's records went into, for sources that
    /// must not produce the same record twice nor skip one across crashes. The run loop stores
    /// it in the spool in the same transaction as the batch.
    fn cursor(&self) -> Option<u64> {
        None
    }

    /// Restores the position from the spool at start-up.
    fn resume(&mut self, _cursor: u64) {}
}

/// The config of one source: says whether it is enabled and builds it.
pub trait SourceConfig {
    /// Whether the operator turned the source on.
    fn enabled(&self) -> bool;

    /// Builds the runtime source.
    fn build(&self) -> Result<Box<dyn Source>, SourceError>;
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
            pub fn build(&self) -> Result<Vec<Box<dyn Source>>, SourceError> {
                let mut sources: Vec<Box<dyn Source>> = Vec::new();
                $(if SourceConfig::enabled(&self.$name) {
                    sources.push(SourceConfig::build(&self.$name)?);
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
    /// `[sources.counter]`: numbered test points (off by default; for end-to-end tests).
    counter: counter::CounterConfig,
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
