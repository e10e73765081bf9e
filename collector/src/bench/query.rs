//! `ampel-bench query`: a month of data, then the queries a report makes — a device's CPU over
//! 30 days at 1 h step, a day of raw points, and a tenant's 30-day alert summary over a million
//! alerts.

use std::path::PathBuf;
use std::time::Instant;

use ampel_collector::store::{PendingBatch, Store, StoreOptions};
use ampel_protocol::{Batch, Record};
use rand::SeedableRng;

use super::{Scratch, alert, identity, metric_batch, now_ms, pending, percentiles, report};

const DAY: i64 = 86_400_000;

/// Options of the query benchmark.
#[derive(Debug, clap::Args)]
pub struct QueryArgs {
    /// Devices with metrics.
    #[arg(long, default_value_t = 10)]
    pub devices: usize,
    /// Days of data.
    #[arg(long, default_value_t = 30)]
    pub days: i64,
    /// Sample interval in seconds.
    #[arg(long, default_value_t = 30)]
    pub interval_s: i64,
    /// Alerts of the tenant over the period.
    #[arg(long, default_value_t = 1_000_000)]
    pub alerts: usize,
    /// Times each query runs.
    #[arg(long, default_value_t = 50)]
    pub runs: usize,
    /// Where to create the scratch store (default: the system temp dir).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Keep the scratch store.
    #[arg(long)]
    pub keep: bool,
}

fn time<T>(runs: usize, mut f: impl FnMut() -> anyhow::Result<T>) -> anyhow::Result<(T, f64, f64)> {
    let mut d = Vec::with_capacity(runs);
    let mut last = None;
    for _ in 0..runs.max(1) {
        let started = Instant::now();
        last = Some(f()?);
        d.push(started.elapsed());
    }
    let (p50, p99) = percentiles(d);
    last.map(|v| (v, p50, p99)).ok_or_else(|| anyhow::anyhow!("no run"))
}

/// Runs the benchmark.
pub fn run(a: &QueryArgs) -> anyhow::Result<()> {
    let scratch = Scratch::new(a.dir.as_deref(), "query", a.keep)?;
    let store = Store::open(scratch.path(), StoreOptions::default())?;
    let now = now_ms();
    let start = now - a.days * DAY;
    let interval = a.interval_s * 1000;

    // Metrics: every device sends an hour of samples per batch.
    let per_batch = (3_600_000 / interval).max(1);
    let samples = a.days * DAY / interval;
    let loading = Instant::now();
    let mut points = 0u64;
    let mut k = 0;
    let mut seq = 0u64;
    while k < samples {
        let n = per_batch.min(samples - k);
        let group: Vec<PendingBatch> = (0..a.devices)
            .map(|d| Ok(pending(identity("bench", d)?, metric_batch(d, seq, 10, k, n, start, interval))))
            .collect::<anyhow::Result<_>>()?;
        points += store.commit(&group)?.iter().map(|r| r.1.points).sum::<u64>();
        k += n;
        seq += 1;
        if seq.is_multiple_of(50) {
            store.fold_all()?;
        }
    }
    // Alerts: spread over the period, from 100 devices of the tenant, 1 000 per batch.
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut i = 0;
    let mut aseq = 1_000_000u64;
    while i < a.alerts {
        let group: Vec<PendingBatch> = (0..20)
            .map(|g| {
                let n = 1000.min(a.alerts.saturating_sub(i + g * 1000));
                let records: Vec<Record> = (0..n)
                    .map(|j| {
                        let ts = start + (((i + g * 1000 + j) as i64) * (a.days * DAY) / a.alerts.max(1) as i64);
                        Record::Alert(alert(ts, &mut rng))
                    })
                    .collect();
                Ok(pending(identity("bench", 1000 + g * 5 + (aseq as usize % 5))?, Batch { version: 1, seq: aseq, sender: None, records }))
            })
            .collect::<anyhow::Result<_>>()?;
        store.commit(&group)?;
        i += 20_000;
        aseq += 1;
        store.fold_all()?;
    }
    store.fold_all()?;
    report("query.setup.points", points as f64, "points");
    report("query.setup.alerts", a.alerts as f64, "alerts");
    report("query.setup.seconds", loading.elapsed().as_secs_f64(), "s (commit + fold)");
    report("query.setup.file", store.used_bytes() as f64 / (1 << 20) as f64, "MiB");
    for (name, entries, bytes) in store.usage()? {
        if bytes > 1 << 20 {
            report(&format!("query.setup.db.{name}"), bytes as f64 / (1 << 20) as f64, &format!("MiB ({entries} entries)"));
        }
    }

    let cpu = store
        .series_of("fw-00000")?
        .into_iter()
        .find(|s| s.0 == "cpu.usage_percent")
        .map(|s| s.2)
        .ok_or_else(|| anyhow::anyhow!("no cpu series"))?;
    let (buckets, p50, p99) = time(a.runs, || Ok(store.points_step(cpu, now - a.days * DAY, now, 3_600_000)?))?;
    report("query.cpu_30d_1h.buckets", buckets.len() as f64, "buckets");
    report("query.cpu_30d_1h.p50", p50, "ms");
    report("query.cpu_30d_1h.p99", p99, "ms");
    let (pts, p50, _) = time(a.runs, || Ok(store.points(cpu, now - DAY, now)?))?;
    report("query.cpu_1d_raw.points", pts.len() as f64, "points");
    report("query.cpu_1d_raw.p50", p50, "ms");
    let (n, p50, _) = time(a.runs.min(10), || Ok(store.count_points("fw-00000", now - a.days * DAY, now)?))?;
    report("query.device_count_30d.points", n as f64, "points");
    report("query.device_count_30d.p50", p50, "ms");
    let (summary, p50, p99) = time(a.runs.min(20), || Ok(store.alert_summary("bench", now - a.days * DAY, now, 10)?))?;
    report("query.alerts_30d_top10.total", summary.total as f64, "alerts");
    report("query.alerts_30d_top10.p50", p50, "ms");
    report("query.alerts_30d_top10.p99", p99, "ms");

    // The same with an unfolded tail: one more batch per device, not folded.
    let group: Vec<PendingBatch> = (0..a.devices)
        .map(|d| Ok(pending(identity("bench", d)?, metric_batch(d, seq, 10, samples, per_batch, start, interval))))
        .collect::<anyhow::Result<_>>()?;
    store.commit(&group)?;
    let (_, p50, _) = time(a.runs, || Ok(store.points_step(cpu, now - a.days * DAY, now + 2 * 3_600_000, 3_600_000)?))?;
    report("query.cpu_30d_1h_with_tail.p50", p50, "ms");
    Ok(())
}
