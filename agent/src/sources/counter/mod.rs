//! `counter`: a test source that numbers its points, so an end-to-end test can check that
//! every point the agent accepted reached the collector exactly once.
//!
//! Each cycle it emits up to `per-batch` metrics `test.counter` with the values `n, n+1, ...`
//! and timestamps `start-ms + n` (unique per point, so none overwrites another in the store),
//! until `total` points were produced. Its position `n` is a cursor that the run loop commits
//! to the spool in the same transaction as the batch: a crash before the commit regenerates the
//! same values, a crash after it does not. Off by default; never enable it on a real device.

use ampel_protocol::{Metric, Record};
use serde::Deserialize;

use super::{Source, SourceConfig, SourceError};

/// `[sources.counter]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct CounterConfig {
    /// Whether the source runs (default: false).
    #[serde(default)]
    pub enabled: bool,
    /// Points per batch (default: 100).
    #[serde(default = "default_per_batch")]
    pub per_batch: u64,
    /// Points in all; afterwards the source is silent (default: unlimited).
    #[serde(default = "default_total")]
    pub total: u64,
    /// Timestamp of point 0, Unix ms (default: 2025-01-01).
    #[serde(default = "default_start")]
    pub start_ms: i64,
}

fn default_per_batch() -> u64 {
    100
}
fn default_total() -> u64 {
    u64::MAX
}
fn default_start() -> i64 {
    1_735_689_600_000
}

impl Default for CounterConfig {
    fn default() -> Self {
        CounterConfig { enabled: false, per_batch: default_per_batch(), total: default_total(), start_ms: default_start() }
    }
}

impl SourceConfig for CounterConfig {
    fn enabled(&self) -> bool {
        self.enabled
    }

    fn build(&self, _ctx: &super::BuildContext) -> Result<Box<dyn Source>, SourceError> {
        Ok(Box::new(CounterSource { config: self.clone(), next: 0 }))
    }
}

/// The running source.
pub struct CounterSource {
    config: CounterConfig,
    next: u64,
}

impl Source for CounterSource {
    fn name(&self) -> &'static str {
        "counter"
    }

    fn gather(&mut self, _now_ms: i64) -> Result<Vec<Record>, SourceError> {
        let end = self.next.saturating_add(self.config.per_batch).min(self.config.total);
        let records = (self.next..end)
            .map(|n| {
                Record::Metric(Metric {
                    ts: self.config.start_ms.saturating_add(n as i64),
                    name: "test.counter".into(),
                    labels: Vec::new(),
                    value: n as f64,
                })
            })
            .collect();
        self.next = end.max(self.next);
        Ok(records)
    }

    fn cursor(&self) -> Option<u64> {
        Some(self.next)
    }

    fn resume(&mut self, cursor: u64) {
        self.next = cursor;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn numbers_continue_from_the_cursor_and_stop_at_the_total() {
        let cfg = CounterConfig { enabled: true, per_batch: 3, total: 7, start_ms: 0 };
        let mut s = cfg.build(&crate::sources::BuildContext::default()).unwrap();
        assert_eq!(s.gather(0).unwrap().len(), 3);
        s.resume(5);
        let v: Vec<f64> = s.gather(0).unwrap().iter().map(|r| if let Record::Metric(m) = r { m.value } else { -1.0 }).collect();
        assert_eq!(v, [5.0, 6.0]);
        assert!(s.gather(0).unwrap().is_empty());
        assert_eq!(s.cursor(), Some(7));
    }
}
