//! `ampel-bench density`: bytes on disk per point, per database and in all, after the fold.
//!
//! Two generated data sets, each committed into its own scratch store in groups of batches as
//! the writer thread does (up to 512 batches or 200 000 records per commit, no QUIC), then
//! folded with [`Store::fold_all`]:
//!
//! - `ingest`: exactly the points `ampel-bench ingest` sends with its defaults — 50 devices ×
//!   10 metrics ([`super::METRICS`]) × 10 000 samples every 10 s, values from
//!   [`super::value`], batches of 100 samples as [`super::metric_batch`] makes them, starting
//!   `2 × 100 × 100 × 10 s` before the anchor (where the ingest bench says "now").
//! - `agent`: the realistic set of [`agent_set`] — 60 series per device every 10 s for 7 days,
//!   ending at the anchor.
//!
//! The anchor is now rounded down to the hour (`--anchor` to pin it), so that the points lie
//! inside every store's retention and two runs in the same hour give the same points.
//!
//! `--emit-influx SET --out FILE` writes SET's points as InfluxDB line protocol with ms
//! timestamps (series name → measurement, labels, `device` and `tenant` → tags, field `value`),
//! for loading the same data into another database (`collector/benches/peers.sh`). When SET is
//! also measured, the file and the store are fed from the same generator pass: they hold the
//! same points.
//!
//! `--store DIR` measures an existing store instead (for example the one
//! `ampel-bench ingest --child --keep` leaves), after folding what is left in its log.
//!
//! Only the store's public API is used ([`Store::usage`] lists the databases), so the figures
//! keep working when the encoding or the databases change.

mod agent_set;

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ampel_collector::store::{PendingBatch, Store, StoreOptions};
use ampel_protocol::{Batch, Identity, Record};
use anyhow::Context;

use super::{Scratch, identity, metric_batch, now_ms, pending, report};

const HOUR_MS: i64 = 3_600_000;

/// A generated data set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Set {
    /// The ingest benchmark's points.
    Ingest,
    /// The realistic agent data set.
    Agent,
}

impl Set {
    fn name(self) -> &'static str {
        match self {
            Set::Ingest => "ingest",
            Set::Agent => "agent",
        }
    }
}

/// Which generated sets to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Sets {
    /// The ingest benchmark's points.
    Ingest,
    /// The realistic agent data set.
    Agent,
    /// Both, one after the other.
    Both,
    /// None (with `--emit-influx`: only write the file).
    None,
}

impl Sets {
    fn includes(self, set: Set) -> bool {
        match self {
            Sets::Both => true,
            Sets::None => false,
            Sets::Ingest => set == Set::Ingest,
            Sets::Agent => set == Set::Agent,
        }
    }
}

/// Options of the density benchmark.
#[derive(Debug, clap::Args)]
pub struct DensityArgs {
    /// Generated data sets to measure.
    #[arg(long, value_enum, default_value_t = Sets::Both)]
    pub set: Sets,
    /// Devices of the agent set (60 series each).
    #[arg(long, default_value_t = 3)]
    pub devices: usize,
    /// Days of the agent set.
    #[arg(long, default_value_t = 7)]
    pub days: i64,
    /// Seed of the agent set.
    #[arg(long, default_value_t = 14)]
    pub seed: u64,
    /// End of the generated data, Unix ms (default: now rounded down to the hour).
    #[arg(long)]
    pub anchor: Option<i64>,
    /// Also write this set's points as InfluxDB line protocol (ms timestamps) to `--out`.
    #[arg(long, value_enum, requires = "out")]
    pub emit_influx: Option<Set>,
    /// The line-protocol file of `--emit-influx`.
    #[arg(long, requires = "emit_influx")]
    pub out: Option<PathBuf>,
    /// Measure this existing store directory (the one holding `data.mdb`) instead of
    /// generating data; what is left in its ingest log is folded first.
    #[arg(long, conflicts_with_all = ["set", "emit_influx"])]
    pub store: Option<PathBuf>,
    /// Where to create the scratch stores (default: the system temp dir).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Keep the scratch stores.
    #[arg(long)]
    pub keep: bool,
    /// Also print, per series of the first device, the bytes per point its points take when
    /// encoded into blocks alone (where the bytes go).
    #[arg(long)]
    pub per_series: bool,
}

/// Runs the benchmark.
pub fn run(a: &DensityArgs) -> anyhow::Result<()> {
    if let Some(dir) = &a.store {
        return existing(dir);
    }
    anyhow::ensure!(a.devices > 0 && a.days > 0, "--devices and --days must be positive");
    let anchor = a.anchor.unwrap_or_else(|| now_ms().div_euclid(HOUR_MS) * HOUR_MS);
    report("density.anchor", anchor as f64, "Unix ms (the generated points end before it)");
    for set in [Set::Ingest, Set::Agent] {
        let out = a.out.as_deref().filter(|_| a.emit_influx == Some(set));
        let measure = a.set.includes(set);
        if measure || out.is_some() {
            one_set(a, set, anchor, measure, out).with_context(|| format!("the {} set", set.name()))?;
        }
    }
    Ok(())
}

/// Generates `set`, feeding the scratch store (if `measure`) and the line-protocol file (if
/// `out`) from the same pass, then folds and reports.
fn one_set(a: &DensityArgs, set: Set, anchor: i64, measure: bool, out: Option<&Path>) -> anyhow::Result<()> {
    let name = set.name();
    let scratch = if measure { Some(Scratch::new(a.dir.as_deref(), &format!("density-{name}"), a.keep)?) } else { None };
    let store = scratch.as_ref().map(|s| Store::open(s.path(), StoreOptions::default())).transpose()?;
    let mut committer = store.as_ref().map(Committer::new);
    let mut influx = out.map(Influx::create).transpose()?;
    let mut first: std::collections::BTreeMap<String, Vec<(i64, f64)>> = std::collections::BTreeMap::new();
    let mut first_device = None;
    generate(a, set, anchor, &mut |identity, batch| {
        if let Some(w) = &mut influx {
            w.batch(&identity, &batch)?;
        }
        if a.per_series && first_device.get_or_insert_with(|| identity.device.clone()) == &identity.device {
            for r in &batch.records {
                if let ampel_protocol::Record::Metric(m) = r {
                    let labels: Vec<String> = m.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    first.entry(format!("{}{{{}}}", m.name, labels.join(","))).or_default().push((m.ts, m.value));
                }
            }
        }
        if let Some(c) = &mut committer {
            c.push(pending(identity, batch))?;
        }
        Ok(())
    })?;
    if let Some(w) = influx {
        let (path, lines) = w.finish()?;
        report(&format!("density.{name}.influx_lines"), lines as f64, &format!("points written to {}", path.display()));
    }
    for (series, points) in &first {
        let bytes: usize = ampel_collector::store::block::encode_all(points).iter().map(Vec::len).sum();
        report(&format!("density.{name}.series.{series}"), bytes as f64 / points.len().max(1) as f64, "bytes/point (blocks alone)");
    }
    let (Some(store), Some(committer)) = (&store, committer) else { return Ok(()) };
    let (points, in_commit) = committer.finish()?;
    report(&format!("density.{name}.commit"), points as f64 / in_commit.as_secs_f64(), "points/s (inside Store::commit, no network)");
    let started = Instant::now();
    let fold = store.fold_all()?;
    let took = started.elapsed();
    report(&format!("density.{name}.fold"), fold.points as f64 / took.as_secs_f64(), "points/s (fold_all)");
    report(&format!("density.{name}.store_wall"), points as f64 / (in_commit + took).as_secs_f64(), "points/s (commit + fold)");
    anyhow::ensure!(fold.duplicates == 0 && fold.expired == 0, "the fold dropped points: {fold:?}");
    densities(name, store)?;
    after_raw_expiry(name, store, anchor)
}

/// Lets the first half of the raw points expire (minutes kept for ever), so that retention
/// packs their minute buckets, and prints what those cost beside the raw blocks they replace.
fn after_raw_expiry(name: &str, store: &Store, anchor: i64) -> anyhow::Result<()> {
    let before = usage_of(store, "blocks")?;
    let points = store.total_points()?;
    // Expire the older half of the span the points cover.
    let (lo, hi) = time_range(store)?;
    anyhow::ensure!(hi <= anchor.saturating_add(3_600_000), "points after the anchor");
    let keep = (hi - lo) / 2;
    let retention = ampel_collector::store::Retention { raw_ms: Some(keep), ..ampel_collector::store::Retention::FOREVER };
    let r = store.apply_retention_with(&retention, hi)?;
    let gone = points - store.total_points()?;
    let freed = before.saturating_sub(usage_of(store, "blocks")?);
    let (buckets, minutes) = (usage_entries(store, "packed-1m")?, usage_of(store, "packed-1m")?);
    report(
        &format!("density.{name}.expired.points"),
        gone as f64,
        &format!("raw points older than {} h expired ({} transactions)", keep / 3_600_000, r.txns),
    );
    report(
        &format!("density.{name}.expired.minutes"),
        minutes as f64 / gone.max(1) as f64,
        &format!("bytes per expired point in packed minutes ({buckets} chunks, {:.2} MiB)", minutes as f64 / f64::from(1u32 << 20)),
    );
    report(
        &format!("density.{name}.expired.minutes_vs_raw"),
        100.0 * minutes as f64 / freed.max(1) as f64,
        "% of the raw blocks they replace",
    );
    Ok(())
}

/// Earliest and latest raw point of the store (over its first series).
fn time_range(store: &Store) -> anyhow::Result<(i64, i64)> {
    let (device, _) = store.devices(None)?.into_iter().next().context("no devices")?;
    let (_, _, id) = store.series_of(&device)?.into_iter().next().context("no series")?;
    let pts = store.points(id, i64::MIN, i64::MAX)?;
    Ok((pts.first().map_or(0, |p| p.0), pts.last().map_or(0, |p| p.0 + 1)))
}

fn usage_of(store: &Store, db: &str) -> anyhow::Result<u64> {
    Ok(store.usage()?.into_iter().find(|u| u.0 == db).map_or(0, |u| u.2))
}

fn usage_entries(store: &Store, db: &str) -> anyhow::Result<u64> {
    Ok(store.usage()?.into_iter().find(|u| u.0 == db).map_or(0, |u| u.1))
}

/// Hands every batch of `set` to `emit`, in the order agents send them.
fn generate(a: &DensityArgs, set: Set, anchor: i64, emit: &mut dyn FnMut(Identity, Batch) -> anyhow::Result<()>) -> anyhow::Result<()> {
    match set {
        Set::Ingest => {
            // `ampel-bench ingest` with its defaults: 50 agents × 100 batches × 100 samples,
            // `t0 = now - 2 × batches × samples × 10 s`; the agents send concurrently, so the
            // writer sees the batches round by round.
            let (agents, batches, samples) = (50, 100, 100i64);
            let t0 = anchor - 2 * batches as i64 * samples * 10_000;
            for s in 0..batches {
                for i in 0..agents {
                    emit(identity("bench", i)?, metric_batch(i, s, 10, s as i64 * samples, samples, t0, 10_000))?;
                }
            }
            Ok(())
        }
        Set::Agent => {
            let span = a.days * 86_400_000;
            agent_set::generate(a.devices, anchor - span, agent_set::cycles(span), a.seed, emit)
        }
    }
}

/// Commits pending batches in groups, as the collector's writer thread does.
struct Committer<'s> {
    store: &'s Store,
    group: Vec<PendingBatch>,
    records: usize,
    points: u64,
    in_commit: Duration,
}

impl<'s> Committer<'s> {
    /// The writer's limits per group commit.
    const MAX_BATCHES: usize = 512;
    const MAX_RECORDS: usize = 200_000;

    fn new(store: &'s Store) -> Committer<'s> {
        Committer { store, group: Vec::new(), records: 0, points: 0, in_commit: Duration::ZERO }
    }

    fn push(&mut self, p: PendingBatch) -> anyhow::Result<()> {
        if self.group.len() == Self::MAX_BATCHES || self.records + p.batch.records.len() > Self::MAX_RECORDS {
            self.commit()?;
        }
        self.records += p.batch.records.len();
        self.group.push(p);
        Ok(())
    }

    fn commit(&mut self) -> anyhow::Result<()> {
        if self.group.is_empty() {
            return Ok(());
        }
        let started = Instant::now();
        let outcomes = self.store.commit(&self.group)?;
        self.in_commit += started.elapsed();
        for (p, (status, o)) in self.group.iter().zip(outcomes) {
            // Every point must be stored, or the figures would flatter the store.
            anyhow::ensure!(
                o.points == p.batch.records.len() as u64,
                "batch {} of {} not stored whole: {status:?}, {o:?}",
                p.batch.seq,
                p.identity.device.as_str()
            );
            self.points += o.points;
        }
        self.group.clear();
        self.records = 0;
        Ok(())
    }

    /// Commits the rest; returns the points stored and the time spent inside commit.
    fn finish(mut self) -> anyhow::Result<(u64, Duration)> {
        self.commit()?;
        Ok((self.points, self.in_commit))
    }
}

/// Folds what is left in an existing store's log, then reports its densities.
fn existing(dir: &Path) -> anyhow::Result<()> {
    let file = dir.join("data.mdb");
    anyhow::ensure!(
        file.is_file(),
        "no store in {}: give the directory holding data.mdb (`ampel-bench ingest --child --keep` leaves it in <scratch>/data/store)",
        dir.display()
    );
    let store = Store::open(dir, StoreOptions::default()).with_context(|| format!("opening the store in {}", dir.display()))?;
    let fold = store.fold_all().context("folding the store's log")?;
    report("density.store.folded_now", fold.points as f64, "points (left in the log)");
    densities("store", &store)
}

/// Prints bytes per point of every database the store lists, of all pages, of the file.
fn densities(name: &str, store: &Store) -> anyhow::Result<()> {
    let points = store.total_points()?;
    anyhow::ensure!(points > 0, "the store holds no points");
    let per = |bytes: u64| bytes as f64 / points as f64;
    let mib = |bytes: u64| bytes as f64 / f64::from(1u32 << 20);
    report(&format!("density.{name}.points"), points as f64, "points");
    let mut pages = 0;
    for (db, entries, bytes) in store.usage()? {
        pages += bytes;
        report(&format!("density.{name}.db.{db}"), per(bytes), &format!("bytes/point ({entries} entries, {:.2} MiB of pages)", mib(bytes)));
    }
    report(&format!("density.{name}.all"), per(pages), &format!("bytes/point (pages of all databases, {:.1} MiB)", mib(pages)));
    let used = store.used_bytes();
    report(
        &format!("density.{name}.used"),
        per(used),
        &format!("bytes/point (file up to its last page, free pages included, {:.1} MiB)", mib(used)),
    );
    let path = store.path().join("data.mdb");
    let file = std::fs::metadata(&path).with_context(|| format!("reading the size of {}", path.display()))?.len();
    report(&format!("density.{name}.data_mdb"), per(file), &format!("bytes/point (data.mdb, {:.1} MiB)", mib(file)));
    Ok(())
}

/// Writes points as InfluxDB line protocol: `name,tag=v,... value=<f64> <ms>`.
struct Influx {
    path: PathBuf,
    out: BufWriter<File>,
    line: String,
    lines: u64,
}

impl Influx {
    fn create(path: &Path) -> anyhow::Result<Influx> {
        let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
        Ok(Influx { path: path.to_owned(), out: BufWriter::with_capacity(1 << 20, file), line: String::new(), lines: 0 })
    }

    fn batch(&mut self, identity: &Identity, batch: &Batch) -> anyhow::Result<()> {
        for r in &batch.records {
            let Record::Metric(m) = r else { anyhow::bail!("only metrics can be written as line protocol") };
            let device = [("device", identity.device.as_str()), ("tenant", identity.tenant.as_str())];
            let tags = m.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())).chain(device);
            line(&mut self.line, &m.name, tags, m.value, m.ts)?;
            self.out.write_all(self.line.as_bytes()).with_context(|| format!("writing {}", self.path.display()))?;
            self.lines += 1;
        }
        Ok(())
    }

    fn finish(mut self) -> anyhow::Result<(PathBuf, u64)> {
        self.out.flush().with_context(|| format!("writing {}", self.path.display()))?;
        Ok((self.path, self.lines))
    }
}

/// One line of line protocol into `buf`. Tags are sorted by key, as InfluxDB recommends.
fn line<'a>(buf: &mut String, name: &str, tags: impl Iterator<Item = (&'a str, &'a str)>, value: f64, ts: i64) -> anyhow::Result<()> {
    use std::fmt::Write as _;
    anyhow::ensure!(value.is_finite(), "{name}: line protocol has no {value}");
    let mut tags: Vec<(&str, &str)> = tags.collect();
    tags.sort_unstable();
    anyhow::ensure!(tags.windows(2).all(|w| w[0].0 != w[1].0), "{name}: a label collides with the device or tenant tag");
    anyhow::ensure!(tags.iter().all(|(_, v)| !v.is_empty()), "{name}: line protocol has no empty tag values");
    buf.clear();
    escape(buf, name, &[',', ' ']);
    for (k, v) in tags {
        buf.push(',');
        escape(buf, k, &[',', '=', ' ']);
        buf.push('=');
        escape(buf, v, &[',', '=', ' ']);
    }
    // `{}` of an f64 is the shortest decimal that reads back to the same bits.
    writeln!(buf, " value={value} {ts}")?;
    Ok(())
}

fn escape(buf: &mut String, s: &str, special: &[char]) {
    for c in s.chars() {
        if special.contains(&c) || c == '\\' {
            buf.push('\\');
        }
        buf.push(c);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn line_protocol_escapes_and_sorts_tags_and_keeps_every_bit() {
        let mut buf = String::new();
        let tags = [("mount", "/var lib"), ("device", "fw-00001"), ("tenant", "a,b")];
        line(&mut buf, "disk.used_percent", tags.into_iter(), 41.23456789012345, 1_700_000_000_123).unwrap();
        assert_eq!(buf, "disk.used_percent,device=fw-00001,mount=/var\\ lib,tenant=a\\,b value=41.23456789012345 1700000000123\n");
        line(&mut buf, "files.max", std::iter::empty(), i64::MAX as f64, 0).unwrap();
        assert_eq!(buf, "files.max value=9223372036854776000 0\n");
        assert!(line(&mut buf, "x", std::iter::empty(), f64::NAN, 0).is_err());
        assert!(line(&mut buf, "x", [("device", "a"), ("device", "b")].into_iter(), 1.0, 0).is_err());
    }

    #[test]
    fn a_week_of_the_agent_set_is_60_480_points_per_series() {
        assert_eq!(agent_set::cycles(7 * 86_400_000), 60_480);
    }
}
