//! Benchmarks of the store and the QUIC ingest path, behind `ampel-bench`.
//!
//! Every figure is printed as one `name: value unit` line, so runs can be compared with `diff`
//! and collected into `BENCHMARKS.md`.
//!
//! # Layout
//!
//! - this file: shared helpers — output, scratch directories, synthetic data.
//! - `store`: commit and fold throughput over 10 000 series.
//! - `query`: a month of data; stepped series and alert summaries.
//! - `report`: render time, size and peak memory of a 30-day, 50-device report.
//! - `quic`: agents over QUIC with mutual TLS against the real listener and writer.
//! - `child`: the collector as a child process; memory and CPU time per thread from `/proc`.
//! - `density`: bytes on disk per point on the ingest bench's data and on a realistic agent set.
//! - `console`: the web console's fleet and tenant pages against the real server: time, weight.

pub mod child;
pub mod console;
pub mod density;
pub mod query;
pub mod quic;
pub mod report;
pub mod store;

use std::path::{Path, PathBuf};
use std::time::Duration;

use ampel_collector::store::PendingBatch;
use ampel_protocol::{Alert, AlertAction, AlertSource, Batch, DeviceId, Identity, Metric, Record, TenantId};

/// Prints one result line.
pub fn report(name: &str, value: f64, unit: &str) {
    if value.abs() >= 100.0 || value == value.trunc() {
        println!("{name}: {value:.0} {unit}");
    } else {
        println!("{name}: {value:.3} {unit}");
    }
}

/// A directory removed when dropped (unless the bench was asked to keep it).
pub struct Scratch {
    path: PathBuf,
    keep: bool,
}

impl Scratch {
    /// `base/ampel-bench-<what>-<pid>`, or a fresh one under the system temp dir.
    pub fn new(base: Option<&Path>, what: &str, keep: bool) -> anyhow::Result<Scratch> {
        let base = base.map_or_else(std::env::temp_dir, Path::to_path_buf);
        let path = base.join(format!("ampel-bench-{what}-{}", std::process::id()));
        if path.exists() {
            std::fs::remove_dir_all(&path)?;
        }
        std::fs::create_dir_all(&path)?;
        Ok(Scratch { path, keep })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// Wall-clock time in Unix ms.
pub fn now_ms() -> i64 {
    ampel_collector::ingest::quic::now_ms()
}

/// Metric names of a synthetic firewall.
pub const METRICS: [&str; 10] = [
    "cpu.usage_percent",
    "memory.used_percent",
    "disk.used_percent",
    "load.1",
    "load.5",
    "net.rx_bytes",
    "net.tx_bytes",
    "conntrack.entries",
    "ids.packets",
    "processes",
];

/// A cheap deterministic hash, for synthetic values.
pub fn mix(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

/// A plausible value of metric `m` of device `d` at sample `k`: gauges with one decimal that
/// wander, counters that grow.
pub fn value(d: usize, m: usize, k: i64) -> f64 {
    let noise = (mix((d as u64) << 40 ^ (m as u64) << 32 ^ k as u64) % 100) as f64;
    match m {
        5 | 6 | 8 => (k as f64) * 1000.0 + noise,
        9 => 200.0 + (noise / 10.0).floor(),
        _ => ((30.0 + 20.0 * ((k as f64) / 500.0).sin() + noise / 20.0) * 10.0).round() / 10.0,
    }
}

/// The identity of synthetic device `d` of `tenant`.
pub fn identity(tenant: &str, d: usize) -> anyhow::Result<Identity> {
    Ok(Identity { tenant: TenantId::new(tenant)?, device: DeviceId::new(&format!("fw-{d:05}"))? })
}

/// One batch of device `d`: `samples` consecutive samples (every `interval` ms from sample
/// `k0`) of `metrics` metrics.
pub fn metric_batch(d: usize, seq: u64, metrics: usize, k0: i64, samples: i64, t0: i64, interval: i64) -> Batch {
    let mut records = Vec::with_capacity(metrics * samples as usize);
    for k in k0..k0 + samples {
        for (m, name) in METRICS.iter().enumerate().take(metrics) {
            let labels = if m == 2 { vec![("mount".to_owned(), "/".to_owned())] } else { Vec::new() };
            records.push(Record::Metric(Metric { ts: t0 + k * interval, name: (*name).to_owned(), labels, value: value(d, m, k) }));
        }
    }
    Batch { version: ampel_protocol::PROTOCOL_VERSION, seq, sender: None, records }
}

/// A pending batch for [`ampel_collector::store::Store::commit`].
pub fn pending(identity: Identity, batch: Batch) -> PendingBatch {
    PendingBatch { identity, batch, received_ms: now_ms() }
}

/// Skewed pick from `0..n`: low indices much more frequent (roughly Zipf-like).
pub fn skewed(r: f64, n: usize) -> usize {
    ((r * r * r) * n as f64) as usize % n.max(1)
}

/// A synthetic IDS/AV alert at `ts`, drawn with skewed frequencies: 500 signatures, 5 000
/// source addresses, 200 destinations, 30 categories, 4 severities.
pub fn alert(ts: i64, rng: &mut impl rand::Rng) -> Alert {
    let sig = skewed(rng.random(), 500);
    let src = skewed(rng.random(), 5000);
    let dst = skewed(rng.random(), 200);
    Alert {
        signature_id: Some(2_000_000 + sig as u64),
        category: Some(format!("category-{}", sig % 30)),
        src: Some(format!("198.51.{}.{}", src / 250, src % 250)),
        dst: Some(format!("10.0.{}.{}", dst / 250, dst % 250)),
        ..Alert::new(
            ts,
            if sig.is_multiple_of(5) { AlertSource::Antivirus } else { AlertSource::Ids },
            1 + (skewed(rng.random(), 4) as u8),
            format!("ET POLICY synthetic signature {sig}"),
            if sig.is_multiple_of(3) { AlertAction::Blocked } else { AlertAction::Allowed },
        )
    }
}

/// Median and 99th percentile of durations, in ms.
pub fn percentiles(mut d: Vec<Duration>) -> (f64, f64) {
    if d.is_empty() {
        return (0.0, 0.0);
    }
    d.sort();
    let at = |q: f64| d[((d.len() - 1) as f64 * q).round() as usize].as_secs_f64() * 1000.0;
    (at(0.5), at(0.99))
}
