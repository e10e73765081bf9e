//! `ampel-bench report`: render time, PDF size and peak memory of the report a recipient gets.
//!
//! By default the data is the synthetic tenant of the report tests
//! ([`ampel_collector::report::synthetic::rich`]): 50 devices, 30 days of 1-minute CPU and
//! memory samples (min/avg/max taken from all of them, charts reduced to one point per 2 hours
//! as the data gathering reads them from the rollups), alerts of every kind, traffic, disks, licenses and gaps, so the
//! figure is the renderer's alone. With `--store`, a scratch store is filled with the same shape of data
//! first and the data gathering (`assess::report_data`) is timed too.
//!
//! Filling takes most of a minute and leaves the filling's batches and pages in the process's
//! peak memory, so `--store --keep` keeps the filled store and `--from-store DIR` gathers and
//! renders from it in a fresh process: the peak RSS printed then is gathering and rendering
//! alone.
//!
//! Run it on one core for the figure in `BENCHMARKS.md`:
//! `taskset -c 0 /usr/bin/time -v target/release/ampel-bench report`.

use std::path::PathBuf;
use std::time::Instant;

use ampel_collector::report::{self, Lang, ReportOptions};
use ampel_collector::store::{PendingBatch, Store, StoreOptions};
use ampel_protocol::{AlertAction, AlertSource, Record};

use super::{Scratch, identity, metric_batch, now_ms, pending, percentiles, report as line};

const DAY: i64 = 86_400_000;
const MIN: i64 = 60_000;

/// Options of the report benchmark.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// Devices of the tenant.
    #[arg(long, default_value_t = 50)]
    pub devices: usize,
    /// Days in the period.
    #[arg(long, default_value_t = 30)]
    pub days: i64,
    /// Renders timed (the first is counted too).
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    /// Render in German.
    #[arg(long)]
    pub german: bool,
    /// Gather the data from a scratch store filled first, and time that too.
    #[arg(long)]
    pub store: bool,
    /// With `--store`: keep the filled store and print its directory, for `--from-store`.
    #[arg(long, requires = "store")]
    pub keep: bool,
    /// Gather from a store filled earlier by `--store --keep` (its directory), without filling
    /// anything in this process.
    #[arg(long, value_name = "DIR", conflicts_with = "store")]
    pub from_store: Option<PathBuf>,
    /// Write the last PDF here.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Where to create the scratch store (default: the system temp dir).
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

/// Peak resident set size of this process so far, in MiB (Linux `VmHWM`); 0 where unknown.
fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1).and_then(|kb| kb.parse::<f64>().ok()))
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Runs the benchmark.
pub fn run(a: &ReportArgs) -> anyhow::Result<()> {
    let lang = if a.german { Lang::De } else { Lang::En };
    let data = match (&a.from_store, a.store) {
        (Some(dir), _) => gather_existing(dir)?,
        (None, true) => from_store(a)?,
        (None, false) => report::synthetic::rich(a.devices, a.days, MIN),
    };
    let points: usize = data.devices.iter().map(|d| d.cpu.len() + d.memory.len()).sum();
    line("report.input.devices", data.devices.len() as f64, "devices");
    line("report.input.chart_points", points as f64, "points (after reduction)");
    line("report.input.alerts", (data.threats.total + data.malware.total + data.mail.total) as f64, "alerts");
    let options = ReportOptions { lang, ..ReportOptions::default() };
    let mut times = Vec::new();
    let mut pdf = Vec::new();
    for _ in 0..a.runs.max(1) {
        let started = Instant::now();
        pdf = report::render_with(&data, &options)?;
        times.push(started.elapsed());
    }
    let first = times.first().map_or(0.0, |d| d.as_secs_f64() * 1000.0);
    let (p50, _) = percentiles(times);
    let pages = lopdf::Document::load_mem(&pdf).map(|d| d.get_pages().len()).unwrap_or(0);
    line("report.render.first", first, "ms");
    line("report.render.p50", p50, "ms");
    line("report.pdf.bytes", pdf.len() as f64, "bytes");
    line("report.pdf.pages", pages as f64, "pages");
    line("report.peak_rss", peak_rss_mib(), "MiB");
    if let Some(out) = &a.out {
        std::fs::write(out, &pdf)?;
    }
    Ok(())
}

/// Name of the file beside the kept store that records the period it was filled for.
const PERIOD_FILE: &str = "ampel-bench-report.period";

/// Current resident set, anonymous and file-backed, in MiB (Linux `RssAnon`, `RssFile`): the
/// file-backed part is the store's pages that the reads touched.
fn rss_parts_mib() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1).and_then(|kb| kb.parse::<f64>().ok()))
            .map_or(0.0, |kb| kb / 1024.0)
    };
    (field("RssAnon:"), field("RssFile:"))
}

/// Gathers the report data of tenant `bench` over `period` from `store`, timed.
fn gather(store: &Store, period: &ampel_collector::period::Period) -> anyhow::Result<report::ReportData> {
    let cfg = ampel_collector::config::Config::parse(std::path::Path::new("/etc/ampel/collector.toml"), "")?;
    let started = Instant::now();
    let data = ampel_collector::assess::report_data(store, &cfg, "bench", period, Default::default())?;
    line("report.gather", started.elapsed().as_secs_f64() * 1000.0, "ms (store + rules, both periods)");
    line("report.gather.peak_rss", peak_rss_mib(), "MiB (VmHWM after gathering)");
    let (anon, file) = rss_parts_mib();
    line("report.gather.rss_anon", anon, "MiB (RssAnon after gathering)");
    line("report.gather.rss_file", file, "MiB (RssFile after gathering: store pages read)");
    Ok(data)
}

/// Gathers from a store filled earlier by `--store --keep`, over the period it was filled for.
fn gather_existing(dir: &std::path::Path) -> anyhow::Result<report::ReportData> {
    use anyhow::Context;
    let period_file = dir.join(PERIOD_FILE);
    let text = std::fs::read_to_string(&period_file)
        .with_context(|| format!("reading {} (fill the store with `report --store --keep`)", period_file.display()))?;
    let mut it = text.split_whitespace().map(str::parse::<i64>);
    let (Some(Ok(start_ms)), Some(Ok(end_ms))) = (it.next(), it.next()) else {
        anyhow::bail!("{}: expected `<start-ms> <end-ms>`", period_file.display());
    };
    let store = Store::open(dir, StoreOptions::default()).with_context(|| format!("opening the store in {}", dir.display()))?;
    let data = gather(&store, &ampel_collector::period::Period::range(start_ms, end_ms, "UTC")?)?;
    // After the figures above: what the store holds, to read the file-backed part against.
    for (name, entries, bytes) in store.usage()? {
        if bytes > 1 << 20 {
            line(&format!("report.store.db.{name}"), bytes as f64 / f64::from(1 << 20), &format!("MiB ({entries} entries)"));
        }
    }
    Ok(data)
}

/// Fills a scratch store with `a.devices` devices sending CPU, memory and disk every minute for
/// `a.days` days, plus 20 alerts per device and day, then gathers the report data from it.
fn from_store(a: &ReportArgs) -> anyhow::Result<report::ReportData> {
    let scratch = Scratch::new(a.dir.as_deref(), "report", a.keep)?;
    let store = Store::open(scratch.path(), StoreOptions::default())?;
    let end = now_ms() / DAY * DAY;
    let start = end - a.days * DAY;
    let loading = Instant::now();
    let tenant = ampel_protocol::TenantId::new("bench")?;
    for d in 0..a.devices {
        store.register_device(&tenant, &identity("bench", d)?.device, start - DAY)?;
    }
    let per_batch = 60;
    let samples = a.days * DAY / MIN;
    let (mut k, mut seq) = (0, 1u64);
    while k < samples {
        let n = per_batch.min(samples - k);
        let group: Vec<PendingBatch> = (0..a.devices)
            .map(|d| {
                let mut batch = metric_batch(d, seq, 3, k, n, start, MIN);
                if seq.is_multiple_of(72) {
                    for j in 0..60 {
                        let ts = start + (k + j) * MIN;
                        let (source, action) = match j % 6 {
                            0 => (AlertSource::Antivirus, AlertAction::Quarantined),
                            1 => (AlertSource::Mail, AlertAction::Rejected),
                            _ => (AlertSource::Ids, if j % 3 == 0 { AlertAction::Blocked } else { AlertAction::Allowed }),
                        };
                        let mut al = ampel_protocol::Alert::new(ts, source, (j % 3 + 1) as u8, format!("ET SCAN port {}", j % 13), action);
                        al.src = Some(format!("203.0.113.{}", (d + j as usize) % 50));
                        al.dst = Some(format!("10.0.{}.1", d % 20));
                        batch.records.push(Record::Alert(al));
                    }
                }
                Ok(pending(identity("bench", d)?, batch))
            })
            .collect::<anyhow::Result<_>>()?;
        store.commit(&group)?;
        k += n;
        seq += 1;
        if seq.is_multiple_of(50) {
            store.fold_all()?;
        }
    }
    store.fold_all()?;
    line("report.setup.seconds", loading.elapsed().as_secs_f64(), "s (commit + fold)");
    if a.keep {
        std::fs::write(scratch.path().join(PERIOD_FILE), format!("{start} {end}\n"))?;
        println!("report.store.dir: {}", scratch.path().display());
    }
    let period = ampel_collector::period::Period::range(start, end, "UTC")?;
    gather(&store, &period)
}
