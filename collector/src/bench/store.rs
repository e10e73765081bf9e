//! `ampel-bench store`: points per second through the durable group commit over 10 000 series
//! (1 000 devices × 10 metrics), then through the fold, then both at once.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use ampel_collector::store::maintenance::{Maintenance, MaintenanceOptions};
use ampel_collector::store::{PendingBatch, Store, StoreOptions};

use super::{Scratch, identity, metric_batch, now_ms, pending, report};

/// Options of the store benchmark.
#[derive(Debug, clap::Args)]
pub struct StoreArgs {
    /// Devices (each sends one batch per round).
    #[arg(long, default_value_t = 1000)]
    pub devices: usize,
    /// Metrics per device (at most 10).
    #[arg(long, default_value_t = 10)]
    pub metrics: usize,
    /// Samples per metric in one batch.
    #[arg(long, default_value_t = 100)]
    pub samples: i64,
    /// Rounds (every device sends one batch per round); points = devices × metrics × samples × rounds.
    #[arg(long, default_value_t = 10)]
    pub rounds: usize,
    /// Batches per group commit (the writer takes up to 512 batches or 200 000 records).
    #[arg(long, default_value_t = 200)]
    pub group: usize,
    /// Where to create the scratch store (default: the system temp dir).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Keep the scratch store.
    #[arg(long)]
    pub keep: bool,
}

/// Commits `rounds` rounds starting at `first_round`; returns (points, time inside commit).
fn ingest(store: &Store, a: &StoreArgs, first_round: usize, t0: i64) -> anyhow::Result<(u64, Duration, Vec<Duration>)> {
    let mut points = 0u64;
    let mut in_commit = Duration::ZERO;
    let mut commits = Vec::new();
    let metrics = a.metrics.min(10);
    for r in first_round..first_round + a.rounds {
        let mut d = 0;
        while d < a.devices {
            let group: Vec<PendingBatch> = (d..(d + a.group).min(a.devices))
                .map(|dev| {
                    Ok(pending(identity("bench", dev)?, metric_batch(dev, r as u64, metrics, r as i64 * a.samples, a.samples, t0, 10_000)))
                })
                .collect::<anyhow::Result<_>>()?;
            let started = Instant::now();
            let res = store.commit(&group)?;
            let took = started.elapsed();
            in_commit += took;
            commits.push(took);
            points += res.iter().map(|(_, o)| o.points).sum::<u64>();
            d += a.group;
        }
    }
    Ok((points, in_commit, commits))
}

/// Runs the benchmark.
pub fn run(a: &StoreArgs) -> anyhow::Result<()> {
    let scratch = Scratch::new(a.dir.as_deref(), "store", a.keep)?;
    let store = Store::open(scratch.path(), StoreOptions::default())?;
    let series = a.devices * a.metrics.min(10);
    report("store.series", series as f64, "series");
    // Ten-second samples ending about now, so that retention keeps them.
    let span = 2 * a.rounds as i64 * a.samples * 10_000;
    let t0 = now_ms() - span;

    // 1. The commit path alone: the log grows, nothing folds.
    let (points, in_commit, commits) = ingest(&store, a, 0, t0)?;
    let (p50, p99) = super::percentiles(commits);
    report("store.commit.points", points as f64, "points");
    report("store.commit.throughput", points as f64 / in_commit.as_secs_f64(), "points/s");
    report("store.commit.group_p50", p50, "ms");
    report("store.commit.group_p99", p99, "ms");
    report("store.log.bytes_per_point", store.used_bytes() as f64 / points as f64, "bytes");

    // 2. Fold the backlog.
    let started = Instant::now();
    let fold = store.fold_all()?;
    let took = started.elapsed();
    report("store.fold.throughput", fold.points as f64 / took.as_secs_f64(), "points/s");
    report("store.fold.txns", fold.txns as f64, "transactions");
    report("store.fold.txn_mean", fold.txn_time.as_secs_f64() * 1000.0 / fold.txns.max(1) as f64, "ms (write transaction incl. commit)");
    report("store.fold.txn_max", fold.longest_txn.as_secs_f64() * 1000.0, "ms");
    report("store.fold.reading_share", 1.0 - fold.txn_time.as_secs_f64() / took.as_secs_f64(), "of fold time outside write transactions");
    let usage = store.usage()?;
    let bytes = |name: &str| usage.iter().find(|u| u.0 == name).map_or(0, |u| u.2);
    report("store.blocks.bytes_per_point", bytes("blocks") as f64 / fold.points.max(1) as f64, "bytes (pages of the blocks database)");
    let rollups: u64 = ["packed-1m", "packed-1h", "packed-1d"].iter().map(|n| bytes(n)).sum();
    report("store.rollups.bytes_per_point", rollups as f64 / fold.points.max(1) as f64, "bytes (packed rollups, all levels)");

    // 3. Commit with the fold thread running, then wait until it has caught up.
    let maintenance = Maintenance::start(store.clone(), MaintenanceOptions::default())?;
    let started = Instant::now();
    let (points, in_commit, commits) = ingest(&store, a, a.rounds, t0)?;
    let committed = started.elapsed();
    while store.log_len()? > 0 {
        std::thread::sleep(Duration::from_millis(20));
    }
    let drained = started.elapsed();
    maintenance.stop();
    let (_, p99) = super::percentiles(commits);
    report("store.concurrent.commit_throughput", points as f64 / in_commit.as_secs_f64(), "points/s");
    report("store.concurrent.commit_group_p99", p99, "ms");
    report("store.concurrent.ingest_wall", points as f64 / committed.as_secs_f64(), "points/s");
    report("store.concurrent.folded_wall", points as f64 / drained.as_secs_f64(), "points/s (until the log is empty)");
    Ok(())
}
