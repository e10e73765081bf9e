//! `performance`: CPU, memory, swap, load, disk usage and uptime.
//!
//! The metric names are a contract with the collector's risk rules and reports:
//!
//! | name | unit | labels |
//! | --- | --- | --- |
//! | `cpu.usage_percent` | 0–100, all cores, since the previous cycle | |
//! | `memory.used_percent`, `memory.used_bytes`, `memory.total_bytes` | %, bytes | |
//! | `swap.used_percent` | % (0 without swap) | |
//! | `load.1m`, `load.5m`, `load.15m` | run-queue length | |
//! | `disk.used_percent`, `disk.free_bytes` | %, bytes available to unprivileged users | `mount` |
//! | `uptime.seconds` | s | |
//! | `processes.count` | processes, every `process-count-every` cycles (first cycle included) | |
//!
//! Cost per cycle: one read each of `/proc/stat`, `/proc/meminfo`, `/proc/loadavg`,
//! `/proc/uptime` and one `statvfs` per mount. Counting processes lists `/proc`, which costs
//! more on busy hosts, so it is done only every 10th cycle by default; the process table itself
//! is never read.

use std::path::{Path, PathBuf};

use ampel_protocol::{Metric, Record};
use serde::{Deserialize, Deserializer, de};
use sysinfo::System;

use super::{BuildContext, FailureLog, Source, SourceConfig, SourceError};

/// CPU usage is a difference of two samples; a first sample taken less than this long before the
/// second gives a noisy value. `once` waits this long after building the sources.
pub const WARM_UP: std::time::Duration = sysinfo::MINIMUM_CPU_UPDATE_INTERVAL;

/// `[sources.performance]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct PerformanceConfig {
    /// Whether the source runs (default: true).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Mount points whose usage is reported (default: `["/"]`).
    #[serde(default = "root")]
    pub mounts: Vec<MountPoint>,
    /// Count processes every this many cycles; 0 never (default: 10).
    #[serde(default = "ten")]
    pub process_count_every: u32,
}

fn ten() -> u32 {
    10
}

fn yes() -> bool {
    true
}

fn root() -> Vec<MountPoint> {
    vec![MountPoint(PathBuf::from("/"))]
}

impl Default for PerformanceConfig {
    fn default() -> Self {
        PerformanceConfig { enabled: true, mounts: root(), process_count_every: ten() }
    }
}

impl SourceConfig for PerformanceConfig {
    fn enabled(&self) -> bool {
        self.enabled
    }

    fn build(&self, _ctx: &BuildContext) -> Result<Box<dyn Source>, SourceError> {
        let mut p = Performance::new(self.mounts.clone())?;
        p.process_count_every = self.process_count_every;
        Ok(Box::new(p))
    }
}

/// An absolute path naming a mount point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountPoint(PathBuf);

impl MountPoint {
    /// The path.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl<'de> Deserialize<'de> for MountPoint {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let p = PathBuf::deserialize(d)?;
        if !p.is_absolute() {
            return Err(de::Error::custom(format!("mount {:?} must be an absolute path, e.g. \"/var\"", p.display())));
        }
        Ok(MountPoint(p))
    }
}

/// The running source. Keeps its [`System`] between cycles: CPU usage needs the previous sample.
pub struct Performance {
    system: System,
    mounts: Vec<MountPoint>,
    failures: FailureLog,
    process_count_every: u32,
    cycle: u32,
}

/// Number of processes: the numeric entries of `/proc`.
pub fn process_count() -> std::io::Result<u64> {
    let mut n = 0;
    for entry in std::fs::read_dir("/proc")? {
        if entry?.file_name().as_encoded_bytes().iter().all(u8::is_ascii_digit) {
            n += 1;
        }
    }
    Ok(n)
}

impl Performance {
    /// Takes the first CPU sample, so the first [`Source::gather`] has something to compare with.
    pub fn new(mounts: Vec<MountPoint>) -> Result<Performance, SourceError> {
        let mut system =
            System::new().map_err(|e| SourceError::System { what: "system information", reason: e.to_string() })?;
        system.refresh_cpu_usage();
        Ok(Performance { system, mounts, failures: FailureLog::default(), process_count_every: 10, cycle: 0 })
    }
}

fn metric(ts: i64, name: &str, value: f64) -> Record {
    Record::Metric(Metric { ts, name: name.to_owned(), labels: Vec::new(), value })
}

/// A percentage to two decimals: finer than any threshold needs (0.01 % of a 2 TB disk is
/// 200 MB, and the byte counts go out beside it), and a short decimal the collector stores in
/// about a byte where a full-precision quotient takes six.
fn round_percent(p: f64) -> f64 {
    ((p * 100.0).round() / 100.0).clamp(0.0, 100.0)
}

fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 { 0.0 } else { round_percent(part as f64 / whole as f64 * 100.0) }
}

/// Usage of one file system, the way `df` computes it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DiskUsage {
    /// Used share of the space ordinary users can reach, 0–100.
    pub used_percent: f64,
    /// Bytes available to unprivileged users.
    pub free_bytes: u64,
}

/// Usage of the file system holding `path`.
pub fn disk_usage(path: &Path) -> Result<DiskUsage, nix::Error> {
    let st = nix::sys::statvfs::statvfs(path)?;
    // The field types differ between platforms (u32 on 32-bit glibc); widen them all.
    #[allow(clippy::unnecessary_cast)]
    let (blocks, free, avail, frsize) =
        (st.blocks() as u64, st.blocks_free() as u64, st.blocks_available() as u64, st.fragment_size() as u64);
    let used = blocks.saturating_sub(free);
    // Like df: reserved root blocks count neither as used nor as available.
    Ok(DiskUsage { used_percent: percent(used, used.saturating_add(avail)), free_bytes: avail.saturating_mul(frsize) })
}

impl Source for Performance {
    fn name(&self) -> &'static str {
        "performance"
    }

    fn gather(&mut self, ts: i64) -> Result<Vec<Record>, SourceError> {
        let mut out = Vec::with_capacity(11 + 2 * self.mounts.len());

        self.system.refresh_cpu_usage();
        out.push(metric(ts, "cpu.usage_percent", round_percent(f64::from(self.system.global_cpu_usage()))));

        self.system.refresh_memory();
        let (used, total) = (self.system.used_memory(), self.system.total_memory());
        out.push(metric(ts, "memory.used_percent", percent(used, total)));
        out.push(metric(ts, "memory.used_bytes", used as f64));
        out.push(metric(ts, "memory.total_bytes", total as f64));
        out.push(metric(ts, "swap.used_percent", percent(self.system.used_swap(), self.system.total_swap())));

        if let Some(load) = self.failures.check("performance", "load average", System::load_average()) {
            out.push(metric(ts, "load.1m", load.one));
            out.push(metric(ts, "load.5m", load.five));
            out.push(metric(ts, "load.15m", load.fifteen));
        }
        if let Some(up) = self.failures.check("performance", "uptime", System::uptime()) {
            out.push(metric(ts, "uptime.seconds", up as f64));
        }

        if self.process_count_every > 0
            && self.cycle.is_multiple_of(self.process_count_every)
            && let Some(n) = self.failures.check("performance", "process count", process_count())
        {
            out.push(metric(ts, "processes.count", n as f64));
        }
        self.cycle = self.cycle.wrapping_add(1);

        for mount in &self.mounts {
            let what = format!("mount {}", mount.0.display());
            if let Some(usage) = self.failures.check("performance", &what, disk_usage(&mount.0)) {
                let label = vec![("mount".to_owned(), mount.0.display().to_string())];
                out.push(Record::Metric(Metric {
                    ts,
                    name: "disk.used_percent".to_owned(),
                    labels: label.clone(),
                    value: usage.used_percent,
                }));
                out.push(Record::Metric(Metric {
                    ts,
                    name: "disk.free_bytes".to_owned(),
                    labels: label,
                    value: usage.free_bytes as f64,
                }));
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Name, labels, value.
    type Sample = (String, Vec<(String, String)>, f64);

    fn values(records: &[Record]) -> Vec<Sample> {
        records
            .iter()
            .map(|r| match r {
                Record::Metric(m) => (m.name.clone(), m.labels.clone(), m.value),
                other => panic!("unexpected record {other:?}"),
            })
            .collect()
    }

    #[test]
    fn produces_the_contract_metric_names_with_values_in_range() {
        let mut p = Performance::new(vec![MountPoint("/".into())]).unwrap();
        std::thread::sleep(WARM_UP);
        let records = p.gather(1_700_000_000_000).unwrap();
        assert!(records.iter().all(|r| r.ts() == Some(1_700_000_000_000)));
        let got = values(&records);
        let names: Vec<&str> = got.iter().map(|(n, _, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "cpu.usage_percent",
                "memory.used_percent",
                "memory.used_bytes",
                "memory.total_bytes",
                "swap.used_percent",
                "load.1m",
                "load.5m",
                "load.15m",
                "uptime.seconds",
                "processes.count",
                "disk.used_percent",
                "disk.free_bytes",
            ]
        );
        for (name, labels, v) in &got {
            assert!(v.is_finite() && *v >= 0.0, "{name} = {v}");
            if name.ends_with("_percent") {
                assert!(*v <= 100.0, "{name} = {v}");
            }
            if name.starts_with("disk.") {
                assert_eq!(labels, &[("mount".to_owned(), "/".to_owned())]);
            } else {
                assert!(labels.is_empty());
            }
        }
        let get = |n: &str| got.iter().find(|(name, _, _)| name == n).unwrap().2;
        assert!(get("memory.total_bytes") > 0.0);
        assert!(get("memory.used_bytes") <= get("memory.total_bytes"));
        assert!(get("uptime.seconds") > 0.0);
    }

    #[test]
    fn a_missing_mount_is_left_out_and_the_rest_still_reported() {
        let mounts = vec![MountPoint("/no/such/mount".into()), MountPoint("/".into())];
        let mut p = Performance::new(mounts).unwrap();
        let got = values(&p.gather(1).unwrap());
        let disks: Vec<_> = got.iter().filter(|(n, _, _)| n.starts_with("disk.")).collect();
        assert_eq!(disks.len(), 2);
        assert!(disks.iter().all(|(_, l, _)| l[0].1 == "/"));
        assert!(got.iter().any(|(n, _, _)| n == "cpu.usage_percent"));
    }

    #[test]
    fn percent_of_nothing_is_zero() {
        assert_eq!(percent(5, 0), 0.0);
        assert_eq!(percent(1, 4), 25.0);
        assert_eq!(percent(1, 3), 33.33);
        assert_eq!(percent(2, 3), 66.67);
        assert_eq!(round_percent(100.004), 100.0);
    }
}
