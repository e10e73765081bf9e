//! `netdev`: per-interface traffic from `/proc/net/dev`.
//!
//! Each cycle gives one Traffic record per interface with the byte, packet and error deltas
//! since the previous cycle over `interval_ms` (the collector derives rates). The first cycle only
//! takes the baseline. A counter that went down is, by [`delta`], either a 32-bit counter that
//! wrapped (previous value in the top quarter of the 32-bit range) or an interface that was
//! reset or re-created (counts from 0). Interface names are taken verbatim up to the last `:` of
//! the line, so names with dots, dashes, `@` or colons survive.

use std::collections::BTreeMap;
use std::path::PathBuf;

use ampel_protocol::{Record, Traffic};
use serde::Deserialize;

use super::{BuildContext, FailureLog, Source, SourceConfig, SourceError};

/// `[sources.netdev]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct NetdevConfig {
    /// Whether the source runs (default: true; `/proc/net/dev` exists on every Linux).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// The file to read (default `/proc/net/dev`).
    #[serde(default = "default_path")]
    pub path: PathBuf,
    /// Only these interfaces (default: empty, meaning all but `lo`).
    #[serde(default)]
    pub interfaces: Vec<String>,
}

fn yes() -> bool {
    true
}

fn default_path() -> PathBuf {
    PathBuf::from("/proc/net/dev")
}

impl Default for NetdevConfig {
    fn default() -> Self {
        NetdevConfig { enabled: true, path: default_path(), interfaces: Vec::new() }
    }
}

impl SourceConfig for NetdevConfig {
    fn enabled(&self) -> bool {
        self.enabled
    }

    fn build(&self, _ctx: &BuildContext) -> Result<Box<dyn Source>, SourceError> {
        super::check_path("sources.netdev.path", &self.path, crate::files::NETDEV_MAX)?;
        Ok(Box::new(Netdev {
            path: self.path.clone(),
            only: self.interfaces.clone(),
            prev: BTreeMap::new(),
            last_ms: None,
            failures: FailureLog::default(),
            buf: String::new(),
        }))
    }
}

/// Counters of one interface, in `/proc/net/dev` column order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counters {
    /// Bytes received.
    pub rx_bytes: u64,
    /// Packets received.
    pub rx_packets: u64,
    /// Receive errors.
    pub rx_errors: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
    /// Packets sent.
    pub tx_packets: u64,
    /// Transmit errors.
    pub tx_errors: u64,
}

/// Parses `/proc/net/dev`: interfaces with their counters, and the number of malformed lines.
pub fn parse(text: &str) -> (Vec<(String, Counters)>, u64) {
    let mut out = Vec::new();
    let mut bad = 0;
    for line in text.lines() {
        let Some((name, nums)) = line.rsplit_once(':') else {
            // The two header lines have no colon.
            if !line.contains('|') && !line.trim().is_empty() {
                bad += 1;
            }
            continue;
        };
        let v: Vec<u64> = nums.split_ascii_whitespace().map_while(|n| n.parse().ok()).collect();
        let name = name.trim();
        if v.len() < 16 || name.is_empty() {
            bad += 1;
            continue;
        }
        out.push((
            name.to_owned(),
            Counters { rx_bytes: v[0], rx_packets: v[1], rx_errors: v[2], tx_bytes: v[8], tx_packets: v[9], tx_errors: v[10] },
        ));
    }
    (out, bad)
}

/// How much a counter grew from `prev` to `cur`, given wrap and reset (see the module docs).
pub fn delta(prev: u64, cur: u64) -> u64 {
    if cur >= prev {
        cur - prev
    } else if prev <= u64::from(u32::MAX) && prev > u64::from(u32::MAX) / 4 * 3 {
        (u64::from(u32::MAX) - prev) + cur + 1
    } else {
        cur
    }
}

/// A Traffic record of absolute counters (`ampel-agent parse`) or deltas.
pub fn traffic(ts: i64, interval_ms: u64, interface: String, category: Option<String>, c: Counters) -> Record {
    Record::Traffic(Traffic {
        ts,
        interval_ms,
        interface,
        category,
        rx_bytes: c.rx_bytes,
        tx_bytes: c.tx_bytes,
        rx_packets: c.rx_packets,
        tx_packets: c.tx_packets,
        rx_errors: c.rx_errors,
        tx_errors: c.tx_errors,
    })
}

fn diff(p: &Counters, c: &Counters) -> Counters {
    Counters {
        rx_bytes: delta(p.rx_bytes, c.rx_bytes),
        rx_packets: delta(p.rx_packets, c.rx_packets),
        rx_errors: delta(p.rx_errors, c.rx_errors),
        tx_bytes: delta(p.tx_bytes, c.tx_bytes),
        tx_packets: delta(p.tx_packets, c.tx_packets),
        tx_errors: delta(p.tx_errors, c.tx_errors),
    }
}

/// Most interfaces tracked (bounds memory on hosts with thousands of veths).
const MAX_INTERFACES: usize = 256;

/// The running source.
pub struct Netdev {
    path: PathBuf,
    only: Vec<String>,
    prev: BTreeMap<String, Counters>,
    last_ms: Option<i64>,
    failures: FailureLog,
    buf: String,
}

impl Source for Netdev {
    fn name(&self) -> &'static str {
        "netdev"
    }

    fn gather(&mut self, now_ms: i64) -> Result<Vec<Record>, SourceError> {
        self.buf.clear();
        let read = crate::files::read_limited_into(&self.path, crate::files::NETDEV_MAX, &mut self.buf);
        if self.failures.check("netdev", "interface counters", read).is_none() {
            return Ok(Vec::new());
        }
        let (ifaces, _) = parse(&self.buf);
        let interval = self.last_ms.map(|l| u64::try_from(now_ms.saturating_sub(l)).unwrap_or(0));
        self.last_ms = Some(now_ms);
        let mut out = Vec::new();
        let mut next = BTreeMap::new();
        for (name, c) in ifaces {
            let wanted = if self.only.is_empty() { name != "lo" } else { self.only.contains(&name) };
            if !wanted || next.len() >= MAX_INTERFACES {
                continue;
            }
            if let (Some(p), Some(interval)) = (self.prev.get(&name), interval) {
                out.push(traffic(now_ms, interval, name.clone(), None, diff(p, &c)));
            }
            next.insert(name, c);
        }
        // Interfaces that vanished are forgotten: if they come back they start a new baseline.
        self.prev = next;
        Ok(out)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::path::Path;

    use super::*;

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/proc-net-dev").join(name)
    }

    #[test]
    fn parses_the_fixtures_and_odd_names() {
        let (ifs, bad) = parse(&std::fs::read_to_string(fixture("procfs-fixture-dev.txt")).unwrap());
        assert_eq!(bad, 0);
        let names: Vec<&str> = ifs.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["vethf345468", "lo", "docker0", "eth0"]);
        assert_eq!(ifs[3].1.rx_bytes, 874_354_587);
        assert_eq!(ifs[3].1.tx_packets, 732_147);
        let odd = "Inter-|\n face |\nbr-1a2b.100@x:1 2 3 0 0 0 0 0 4 5 6 0 0 0 0 0\n eth0:1:9 9 9 0 0 0 0 0 9 9 9 0 0 0 0 0\ngarbage\nx: 1 2\n";
        let (ifs, bad) = parse(odd);
        assert_eq!(ifs.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(), ["br-1a2b.100@x", "eth0:1"]);
        assert_eq!(bad, 2);
    }

    #[test]
    fn wrap_and_reset() {
        assert_eq!(delta(10, 15), 5);
        assert_eq!(delta(u64::from(u32::MAX) - 4, 5), 10, "32-bit wrap");
        assert_eq!(delta(1_000, 5), 5, "reset counts from 0");
        assert_eq!(delta(u64::MAX - 1, 3), 3, "64-bit counters do not wrap in practice: a reset");
    }

    #[test]
    fn deltas_between_two_snapshots() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("dev");
        std::fs::copy(fixture("generated-netns-lo-t0.txt"), &p).unwrap();
        let cfg = NetdevConfig { path: p.clone(), interfaces: vec!["lo".into()], ..NetdevConfig::default() };
        let mut s = cfg.build(&BuildContext::default()).unwrap();
        assert!(s.gather(1_000).unwrap().is_empty(), "the first cycle takes the baseline");
        std::fs::copy(fixture("generated-netns-lo-t1.txt"), &p).unwrap();
        let r = s.gather(11_000).unwrap();
        let [Record::Traffic(t)] = r.as_slice() else { panic!("{r:?}") };
        assert_eq!((t.interface.as_str(), t.interval_ms, t.rx_packets), ("lo", 10_000, 165));
        std::fs::copy(fixture("generated-netns-lo-t0.txt"), &p).unwrap();
        let r = s.gather(21_000).unwrap();
        let [Record::Traffic(t)] = r.as_slice() else { panic!("{r:?}") };
        assert_eq!(t.rx_packets, 0, "an interface reset counts from 0, not a huge wrap");
    }
}
