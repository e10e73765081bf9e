//! The realistic agent data set of `ampel-bench density`: what the agents of a few firewalls
//! send in a week — 60 series per device, one batch every 10 s.
//!
//! The ingest benchmark's values are easy to compress in some ways (every device alike, no
//! jitter) and hard in others (white noise on every gauge). A store encoding is chosen for what
//! real agents send, so this set models that, series by series:
//!
//! | series | labels | model | why |
//! | --- | --- | --- | --- |
//! | `cpu.usage_percent` | | base + day/week activity + bursts + noise, **two decimals** (as the agent rounds percentages); 60 % for three cycles after the reboot | short decimals are most of what a firewall reports |
//! | `memory.used_percent` | | from `memory.used_bytes`, **two decimals** | |
//! | `memory.used_bytes`, `memory.total_bytes` | | used: whole pages, a mean-reverting walk that follows activity; total: constant | large integers, one of them never changing |
//! | `swap.used_percent` | | always 0.0 (firewalls run without swap) | a constant series |
//! | `load.1m`, `load.5m`, `load.15m` | | the kernel's exponential averages (1, 5, 15 min) of a run queue that follows CPU, **two decimals** | smooth, strongly correlated from sample to sample |
//! | `uptime.seconds` | | whole seconds since boot: grows by the interval (9, 10 or 11 with the jitter), back to a few seconds at the reboot | a ramp with a reset |
//! | `processes.count` | | integer walk around 170–230, following activity | small integers that change by a few |
//! | `disk.used_percent`, `disk.free_bytes` | `mount` = `/`, `/var`, `/boot` | as the agent computes them from `statvfs` (used / (used + available), **two decimals**; the exact bytes go out beside it): `/` changes a block now and then, `/var` grows with logs and shrinks at the nightly logrotate (net creep), `/boot` is constant | slow creep |
//! | `net.rx_bytes`, `net.tx_bytes`, `net.rx_packets`, `net.tx_packets` | `interface` = `eth0` (WAN), `eth1` (LAN), `eth2` (DMZ), `wg0` (VPN) | **cumulative counters** growing irregularly: a per-interface rate × activity × bursts (1 % chance per cycle of 3–12× for up to 5 min) × log-normal noise; packets from bytes over a varying packet size; `wg0` idle much of the night; all reset to 0 at the reboot | counters that grow irregularly and reset |
//! | `net.rx_errors`, `net.tx_errors` | `interface` = `eth0`, `eth1` | cumulative, a step of 1–3 now and then, reset at the reboot | counters that are nearly constant |
//! | `ids.capture.kernel_packets` … `ids.detect.alert` (the 12 of the agent's EVE `STATS`) | | **deltas** per cycle as the agent sends them: packets and bytes follow `eth0`; flows small integers; drops only in bursts; invalid, memcap, errors and alerts **mostly 0** | small integers, mostly zero |
//! | `conntrack.entries` | | integer gauge following activity | |
//! | `conntrack.max`, `processes.max`, `files.max` | | constant limits (262 144; 4 194 304; 2^63 − 1, which a f64 cannot hold exactly) | constants, one of them huge |
//! | `license.valid`, `license.feature` | `feature` = `ids`, `antivirus`, `vpn` | constant flags 1, 1, 1, 0 | licence flags |
//! | `license.days_left` | | whole days to expiry: steps down at midnight | nearly constant |
//! | `clamav.signatures` | | ~8.7 M, grows by 500–5 000 once a day (freshclam) | a step a day |
//! | `agent.cpu_ms`, `agent.rss_bytes` | | the agent's own CPU ms per cycle (µs resolution, three decimals) and RSS (whole pages, changes rarely) | |
//!
//! **Timestamps** are what an agent's main loop makes: every series of a device shares one
//! timestamp per cycle, read from the wall clock when a 10 s tokio interval fires — the nominal
//! tick plus 0–3 ms of scheduling jitter, and for 0.2 % of cycles 30–500 ms late (a busy host)
//! — then put on the interval grid as the agent's `CycleClock` does: within 25 ms of one
//! interval after the previous timestamp it is exactly that, otherwise the wall clock (a new
//! grid). Devices start at different moments (a random phase
//! within the interval). Each device reboots once, at a random cycle in the middle half of the
//! span; the reboot is modelled as a fast one between two cycles (no gap), so every series keeps
//! exactly one point per cycle, 8 640 a day.
//!
//! Simplifications, on purpose: the agent's `performance` source counts processes only every
//! 10th cycle; `netdev` sends interface *deltas* as Traffic records; licences arrive as License
//! state records. The set instead gives every series a point per cycle and carries cumulative
//! counters and licence flags as metrics, the harder cases for a store encoding.
//!
//! Deterministic: one seeded [`StdRng`] per device.

use std::f64::consts::TAU;

use ampel_protocol::{Batch, Identity, Metric, Record};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The agents' interval.
pub const INTERVAL_MS: i64 = 10_000;
const DAY_MS: i64 = 86_400_000;
const HOUR_MS: i64 = 3_600_000;
const PAGE: u64 = 4096;
/// The agent's `GRID_TOLERANCE_MS`.
const GRID_TOLERANCE_MS: i64 = 25;
/// Share of cycles whose timer fires late (30–500 ms).
const LATE_TICKS: f64 = 0.002;

/// The series of every device, in the order of each batch: (name, labels).
pub const SERIES: [(&str, &[(&str, &str)]); 60] = [
    ("cpu.usage_percent", &[]),
    ("memory.used_percent", &[]),
    ("memory.used_bytes", &[]),
    ("memory.total_bytes", &[]),
    ("swap.used_percent", &[]),
    ("load.1m", &[]),
    ("load.5m", &[]),
    ("load.15m", &[]),
    ("uptime.seconds", &[]),
    ("processes.count", &[]),
    ("disk.used_percent", &[("mount", "/")]),
    ("disk.free_bytes", &[("mount", "/")]),
    ("disk.used_percent", &[("mount", "/var")]),
    ("disk.free_bytes", &[("mount", "/var")]),
    ("disk.used_percent", &[("mount", "/boot")]),
    ("disk.free_bytes", &[("mount", "/boot")]),
    ("net.rx_bytes", &[("interface", "eth0")]),
    ("net.tx_bytes", &[("interface", "eth0")]),
    ("net.rx_packets", &[("interface", "eth0")]),
    ("net.tx_packets", &[("interface", "eth0")]),
    ("net.rx_bytes", &[("interface", "eth1")]),
    ("net.tx_bytes", &[("interface", "eth1")]),
    ("net.rx_packets", &[("interface", "eth1")]),
    ("net.tx_packets", &[("interface", "eth1")]),
    ("net.rx_bytes", &[("interface", "eth2")]),
    ("net.tx_bytes", &[("interface", "eth2")]),
    ("net.rx_packets", &[("interface", "eth2")]),
    ("net.tx_packets", &[("interface", "eth2")]),
    ("net.rx_bytes", &[("interface", "wg0")]),
    ("net.tx_bytes", &[("interface", "wg0")]),
    ("net.rx_packets", &[("interface", "wg0")]),
    ("net.tx_packets", &[("interface", "wg0")]),
    ("net.rx_errors", &[("interface", "eth0")]),
    ("net.tx_errors", &[("interface", "eth0")]),
    ("net.rx_errors", &[("interface", "eth1")]),
    ("net.tx_errors", &[("interface", "eth1")]),
    ("ids.capture.kernel_packets", &[]),
    ("ids.capture.kernel_drops", &[]),
    ("ids.capture.errors", &[]),
    ("ids.decoder.pkts", &[]),
    ("ids.decoder.bytes", &[]),
    ("ids.decoder.invalid", &[]),
    ("ids.flow.total", &[]),
    ("ids.flow.tcp", &[]),
    ("ids.flow.udp", &[]),
    ("ids.flow.icmpv4", &[]),
    ("ids.flow.memcap", &[]),
    ("ids.detect.alert", &[]),
    ("conntrack.entries", &[]),
    ("conntrack.max", &[]),
    ("license.valid", &[]),
    ("license.feature", &[("feature", "ids")]),
    ("license.feature", &[("feature", "antivirus")]),
    ("license.feature", &[("feature", "vpn")]),
    ("license.days_left", &[]),
    ("processes.max", &[]),
    ("files.max", &[]),
    ("clamav.signatures", &[]),
    ("agent.cpu_ms", &[]),
    ("agent.rss_bytes", &[]),
];

/// Cycles (points per series) in `span_ms`.
pub fn cycles(span_ms: i64) -> u64 {
    u64::try_from(span_ms / INTERVAL_MS).unwrap_or(0)
}

/// Generates the set: `cycles` cycles of `devices` devices starting at `start_ms`, handing
/// every device's batch of every cycle to `emit` in the order agents would send them (cycle by
/// cycle, device by device).
pub fn generate(
    devices: usize,
    start_ms: i64,
    cycles: u64,
    seed: u64,
    emit: &mut dyn FnMut(Identity, Batch) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut devs = (0..devices).map(|d| Device::new(seed, d, start_ms, cycles)).collect::<anyhow::Result<Vec<_>>>()?;
    for k in 0..cycles {
        for dev in &mut devs {
            let batch = dev.cycle(k, start_ms);
            emit(dev.identity.clone(), batch)?;
        }
    }
    Ok(())
}

/// `v` rounded to `decimals` decimals: the f64 nearest to the decimal an agent would print.
fn round(v: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (v * scale).round() / scale
}

/// A standard normal draw (Box–Muller).
fn gauss(rng: &mut StdRng) -> f64 {
    let u: f64 = 1.0 - rng.random::<f64>();
    let v: f64 = rng.random();
    (-2.0 * u.ln()).sqrt() * (TAU * v).cos()
}

/// How busy a firewall is at `ts`, 0.1–1: a daily wave peaking at 15:00 UTC, weaker at weekends.
fn activity(ts: i64) -> f64 {
    let hour = ts.rem_euclid(DAY_MS) as f64 / HOUR_MS as f64;
    let diurnal = 0.5 + 0.5 * ((hour - 15.0) / 24.0 * TAU).cos();
    // 1970-01-01 was a Thursday: days 2 and 3 (mod 7) are Saturday and Sunday.
    let weekend = matches!(ts.div_euclid(DAY_MS).rem_euclid(7), 2 | 3);
    0.1 + 0.9 * diurnal * if weekend { 0.4 } else { 1.0 }
}

/// One file system, in 4 KiB blocks.
struct Disk {
    blocks: u64,
    /// Reserved for root: counted neither as used nor as available, as `df` does.
    reserved: u64,
    used: u64,
    /// Blocks written per cycle at full activity.
    writes: f64,
    /// Blocks written since the last logrotate (`/var` only gives most of them back).
    since_rotate: u64,
}

impl Disk {
    fn new(gib: u64, used_share: f64, writes: f64) -> Disk {
        let blocks = (gib << 30) / PAGE;
        Disk { blocks, reserved: blocks / 20, used: (blocks as f64 * used_share) as u64, writes, since_rotate: 0 }
    }

    /// `disk.used_percent` and `disk.free_bytes` as the agent computes them.
    fn values(&self) -> (f64, f64) {
        let avail = self.blocks.saturating_sub(self.used + self.reserved);
        let whole = self.used + avail;
        let percent = if whole == 0 { 0.0 } else { round(self.used as f64 / whole as f64 * 100.0, 2).clamp(0.0, 100.0) };
        (percent, (avail * PAGE) as f64)
    }
}

/// What one device's agent keeps between cycles.
struct Device {
    rng: StdRng,
    identity: Identity,
    seq: u64,
    /// Offset of this agent's ticks from the set's start.
    phase_ms: i64,
    reboot_at: u64,
    boot_ms: i64,
    /// Cycles left of the CPU spike after the reboot.
    spike_left: u32,
    cores: f64,
    cpu_base: f64,
    mem_total: u64,
    mem_used: u64,
    load: [f64; 3],
    procs: f64,
    disks: [Disk; 3],
    /// Peak bytes per second per interface, (rx, tx).
    rates: [(f64, f64); 4],
    /// Per interface: rx bytes, tx bytes, rx packets, tx packets.
    counters: [[u64; 4]; 4],
    errors: [u64; 4],
    burst_left: u32,
    burst_factor: f64,
    conntrack: f64,
    licence_expiry_ms: i64,
    signatures: u64,
    freshclam_hour: i64,
    updated_day: i64,
    rss: u64,
    /// The previous cycle's timestamp.
    last_ts: Option<i64>,
}

impl Device {
    fn new(seed: u64, d: usize, start_ms: i64, cycles: u64) -> anyhow::Result<Device> {
        let mut rng = StdRng::seed_from_u64(seed ^ super::super::mix(d as u64 + 1));
        let uptime_ms = rng.random_range(3 * DAY_MS..60 * DAY_MS);
        let mem_total = ([4u64, 8, 16][rng.random_range(0..3)] << 30) - rng.random_range(16..128) * (1 << 20);
        let wan = rng.random_range(0.5e6..8e6);
        let rates = [
            (wan, wan * rng.random_range(0.1..0.4)),
            (wan * rng.random_range(0.1..0.4), wan * 0.9),
            (rng.random_range(2e4..5e5), rng.random_range(2e4..5e5)),
            (rng.random_range(5e3..2e5), rng.random_range(5e3..2e5)),
        ];
        // Counters of an interface up for `uptime_ms` at about a third of its peak rate.
        let up_s = uptime_ms as f64 / 1000.0;
        let counters = rates.map(|(rx, tx)| {
            let (rxb, txb) = ((rx * up_s / 3.0) as u64, (tx * up_s / 3.0) as u64);
            [rxb, txb, rxb / 700, txb / 700]
        });
        let (lo, hi) = ((cycles / 4).max(1), (cycles * 3 / 4).max(cycles / 4 + 2));
        Ok(Device {
            identity: super::super::identity("density", d)?,
            seq: 0,
            phase_ms: rng.random_range(0..INTERVAL_MS),
            reboot_at: rng.random_range(lo..hi),
            boot_ms: start_ms - uptime_ms,
            spike_left: 0,
            cores: [2.0, 4.0, 8.0][rng.random_range(0..3)],
            cpu_base: rng.random_range(2.0..15.0),
            mem_total: mem_total / PAGE * PAGE,
            mem_used: mem_total / 3 / PAGE * PAGE,
            load: [0.3, 0.3, 0.3],
            procs: 190.0,
            disks: [
                Disk::new(20, rng.random_range(0.2..0.6), 0.05),
                Disk::new(100, rng.random_range(0.1..0.5), 6.0),
                Disk::new(1, 0.3, 0.0),
            ],
            rates,
            counters,
            errors: [rng.random_range(0..50), 0, rng.random_range(0..5), 0],
            burst_left: 0,
            burst_factor: 1.0,
            conntrack: 1000.0,
            licence_expiry_ms: start_ms + rng.random_range(30 * DAY_MS..365 * DAY_MS),
            signatures: rng.random_range(8_600_000..8_800_000),
            freshclam_hour: rng.random_range(0..24),
            updated_day: start_ms.div_euclid(DAY_MS),
            rss: rng.random_range(3000..4000) * PAGE,
            last_ts: None,
            rng,
        })
    }

    /// The batch of cycle `k`.
    fn cycle(&mut self, k: u64, start_ms: i64) -> Batch {
        let fired = start_ms + self.phase_ms + k as i64 * INTERVAL_MS + self.tick_delay();
        let ts = self.stamp(fired);
        if k == self.reboot_at {
            self.reboot(ts);
        }
        let a = activity(ts);
        let burst = self.burst();
        let mut values = Vec::with_capacity(SERIES.len());
        self.performance(ts, a, burst, &mut values);
        self.disks(ts, a, &mut values);
        let wan = self.interfaces(a, burst, &mut values);
        self.ids(wan, a, burst, &mut values);
        self.misc(ts, a, &mut values);
        debug_assert_eq!(values.len(), SERIES.len());
        let records = SERIES
            .iter()
            .zip(values)
            .map(|((name, labels), value)| {
                let labels = labels.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
                Record::Metric(Metric { ts, name: (*name).to_owned(), labels, value })
            })
            .collect();
        self.seq += 1;
        Batch { version: ampel_protocol::PROTOCOL_VERSION, seq: self.seq, sender: None, records }
    }

    /// When the agent's timer fires after its tick: 0–3 ms, and now and then (a busy host)
    /// 30–500 ms late.
    fn tick_delay(&mut self) -> i64 {
        if self.rng.random_bool(LATE_TICKS) { self.rng.random_range(30..500) } else { self.rng.random_range(0..=3) }
    }

    /// The agent's cycle timestamp for a cycle starting at `now`: on the grid of the previous
    /// one when within its tolerance, as `ampel_agent::run::CycleClock` does (the bench does not
    /// link the agent, so the rule is repeated here).
    fn stamp(&mut self, now: i64) -> i64 {
        let ts = match self.last_ts.map(|l| l + INTERVAL_MS) {
            Some(expected) if (now - expected).abs() <= GRID_TOLERANCE_MS => expected,
            _ => now,
        };
        self.last_ts = Some(ts);
        ts
    }

    /// A fast reboot just before `ts`: counters from 0, uptime from a few seconds, a busy start.
    fn reboot(&mut self, ts: i64) {
        self.boot_ms = ts - self.rng.random_range(4_000..9_000);
        self.counters = [[0; 4]; 4];
        self.errors = [0; 4];
        self.spike_left = 3;
        self.procs = 150.0;
        self.conntrack = 0.0;
        self.rss = self.rng.random_range(3000..4000) * PAGE;
    }

    /// The traffic multiplier of this cycle: 1, or 3–12 during a burst of up to 5 minutes.
    fn burst(&mut self) -> f64 {
        if self.burst_left > 0 {
            self.burst_left -= 1;
            return self.burst_factor;
        }
        if self.rng.random_bool(0.01) {
            self.burst_left = self.rng.random_range(0..30);
            self.burst_factor = self.rng.random_range(3.0..12.0);
            return self.burst_factor;
        }
        1.0
    }

    /// cpu, memory (3), swap, load (3), uptime, processes.
    fn performance(&mut self, ts: i64, a: f64, burst: f64, out: &mut Vec<f64>) {
        let spike = if self.spike_left > 0 {
            self.spike_left -= 1;
            60.0
        } else {
            0.0
        };
        let noise = 2.5 * gauss(&mut self.rng);
        let cpu = (self.cpu_base + 35.0 * a + 3.0 * (burst - 1.0) + spike + noise).clamp(0.0, 100.0);
        out.push(round(cpu, 2));

        let total = self.mem_total as f64;
        let target = (0.30 + 0.25 * a) * total;
        let used = self.mem_used as f64 + 0.002 * (target - self.mem_used as f64) + gauss(&mut self.rng) * 4e6;
        self.mem_used = (used.clamp(0.1 * total, 0.95 * total) as u64) / PAGE * PAGE;
        out.extend([round(self.mem_used as f64 / total * 100.0, 2), self.mem_used as f64, total, 0.0]);

        // The kernel's load averages: exponential averages of the run queue.
        let runnable = (self.cores * cpu / 100.0 * (1.0 + 0.3 * gauss(&mut self.rng))).max(0.0);
        for (load, tau) in self.load.iter_mut().zip([60.0, 300.0, 900.0]) {
            let e = (-(INTERVAL_MS as f64 / 1000.0) / tau).exp();
            *load = *load * e + runnable * (1.0 - e);
            out.push(round(*load, 2));
        }
        out.push(((ts - self.boot_ms) / 1000) as f64);

        self.procs += 0.05 * (170.0 + 60.0 * a - self.procs) + 1.5 * gauss(&mut self.rng);
        out.push(self.procs.round().max(1.0));
    }

    /// Used percent and free bytes of `/`, `/var` and `/boot`.
    fn disks(&mut self, ts: i64, a: f64, out: &mut Vec<f64>) {
        // logrotate runs in the first cycle after midnight and compresses most of a day's logs.
        let rotate = ts.rem_euclid(DAY_MS) < INTERVAL_MS;
        for disk in &mut self.disks {
            let written = if disk.writes >= 1.0 {
                self.rng.random_range(0..=(2.0 * disk.writes * a) as u64)
            } else if disk.writes > 0.0 && self.rng.random_bool(disk.writes * a) {
                self.rng.random_range(1..=2)
            } else {
                0
            };
            disk.used += written;
            disk.since_rotate += written;
            if rotate && disk.writes >= 1.0 {
                disk.used -= disk.since_rotate * 7 / 10;
                disk.since_rotate = 0;
            }
            let (percent, free) = disk.values();
            out.extend([percent, free]);
        }
    }

    /// Cumulative byte and packet counters of the four interfaces, then the error counters of
    /// two. Returns the WAN interface's bytes and packets of this cycle, which the IDS sees.
    fn interfaces(&mut self, a: f64, burst: f64, out: &mut Vec<f64>) -> (u64, u64) {
        let mut wan = (0, 0);
        for (i, (rx, tx)) in self.rates.into_iter().enumerate() {
            // The VPN carries nothing much of the time outside office hours.
            let active = i != 3 || self.rng.random_bool(0.8 * a);
            let mut deltas = [0u64; 4];
            if active {
                for (j, rate) in [rx, tx].into_iter().enumerate() {
                    let bytes = rate * (INTERVAL_MS / 1000) as f64 * a * burst * (0.6 * gauss(&mut self.rng)).exp();
                    let packet_size = self.rng.random_range(200.0..1400.0);
                    deltas[j] = bytes as u64;
                    deltas[2 + j] = (bytes / packet_size).ceil() as u64;
                }
            }
            for (counter, delta) in self.counters[i].iter_mut().zip(deltas) {
                *counter += delta;
                out.push(*counter as f64);
            }
            if i == 0 {
                wan = (deltas[0] + deltas[1], deltas[2] + deltas[3]);
            }
        }
        for e in &mut self.errors {
            if self.rng.random_bool(1.0 / 3000.0) {
                *e += self.rng.random_range(1..=3);
            }
            out.push(*e as f64);
        }
        wan
    }

    /// The twelve Suricata stats deltas of a cycle, in the agent's `STATS` order.
    fn ids(&mut self, (bytes, packets): (u64, u64), a: f64, burst: f64, out: &mut Vec<f64>) {
        let rng = &mut self.rng;
        let mut rare = |p: f64, max: u64| if rng.random_bool(p) { rng.random_range(1..=max) } else { 0 };
        let drops = if burst > 1.0 { rare(0.3, packets.clamp(1, 500)).min(packets) } else { 0 };
        let capture_errors = rare(1e-4, 1);
        let invalid = rare(0.05, 3);
        let memcap = rare(1e-4, 2);
        let alerts = rare(0.03, 3);
        let flows = (a * burst.min(3.0) * 25.0 * (0.5 * gauss(&mut self.rng)).exp()).round() as u64;
        let tcp = (flows as f64 * self.rng.random_range(0.6..0.8)).round() as u64;
        let udp = ((flows - tcp) as f64 * self.rng.random_range(0.8..1.0)).round() as u64;
        let icmp = flows - tcp - udp;
        let deltas = [packets, drops, capture_errors, packets - drops, bytes, invalid, flows, tcp, udp, icmp, memcap, alerts];
        out.extend(deltas.map(|d| d as f64));
    }

    /// conntrack, licence flags, limits, ClamAV signatures, the agent's own use.
    fn misc(&mut self, ts: i64, a: f64, out: &mut Vec<f64>) {
        self.conntrack += 0.05 * (300.0 + 4000.0 * a - self.conntrack) + 30.0 * gauss(&mut self.rng);
        self.conntrack = self.conntrack.max(0.0);
        let days_left = (self.licence_expiry_ms - ts).div_euclid(DAY_MS);
        // freshclam: one update a day, at this device's hour.
        let day = ts.div_euclid(DAY_MS);
        if day != self.updated_day && ts.rem_euclid(DAY_MS) >= self.freshclam_hour * HOUR_MS {
            self.updated_day = day;
            self.signatures += self.rng.random_range(500..5000);
        }
        let cpu_us = self.rng.random_range(1500..6000) + (3000.0 * a) as u64;
        if self.rng.random_bool(0.02) {
            self.rss = (self.rss as i64 + self.rng.random_range(-8..=8) * PAGE as i64).max(PAGE as i64) as u64;
        }
        out.extend([
            self.conntrack.round(),
            262_144.0,
            1.0,
            1.0,
            1.0,
            0.0,
            days_left as f64,
            4_194_304.0,
            i64::MAX as f64,
            self.signatures as f64,
            cpu_us as f64 / 1000.0,
            self.rss as f64,
        ]);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    type Run = std::collections::BTreeMap<(String, usize), Vec<(i64, f64)>>;

    /// (device, series index) -> [(ts, value)] of a short run.
    fn run(devices: usize, cycles: u64, seed: u64) -> Run {
        let mut out = Run::new();
        generate(devices, 1_700_000_000_000, cycles, seed, &mut |id, batch| {
            assert_eq!(batch.records.len(), SERIES.len());
            for (i, r) in batch.records.into_iter().enumerate() {
                let Record::Metric(m) = r else { panic!("not a metric") };
                assert_eq!((m.name.as_str(), m.labels.len()), (SERIES[i].0, SERIES[i].1.len()));
                out.entry((id.device.as_str().to_owned(), i)).or_default().push((m.ts, m.value));
            }
            Ok(())
        })
        .unwrap();
        out
    }

    fn series<'a>(run: &'a Run, device: usize, name: &str, label: Option<&str>) -> &'a [(i64, f64)] {
        let i = SERIES.iter().position(|(n, l)| *n == name && label.is_none_or(|v| l.iter().any(|(_, lv)| *lv == v))).unwrap();
        &run[&(format!("fw-{device:05}"), i)]
    }

    #[test]
    fn deterministic_and_seeded() {
        assert_eq!(run(2, 200, 14), run(2, 200, 14));
        assert_ne!(run(2, 200, 14), run(2, 200, 15));
    }

    #[test]
    fn every_series_a_point_per_cycle_with_the_cycle_timestamp() {
        let cycles = 1000;
        let r = run(2, cycles, 14);
        assert_eq!(r.len(), 2 * SERIES.len());
        assert!(r.iter().all(|(_, points)| points.len() == cycles as usize));
        for d in 0..2 {
            let cpu = series(&r, d, "cpu.usage_percent", None);
            // One timestamp per cycle, shared by every series of the device.
            for (_, points) in r.iter().filter(|((dev, _), _)| *dev == format!("fw-{d:05}")) {
                assert!(points.iter().zip(cpu).all(|(p, c)| p.0 == c.0));
            }
            // On the interval grid, but for late ticks, which start a new grid.
            let on_grid = cpu.windows(2).filter(|w| w[1].0 - w[0].0 == INTERVAL_MS).count();
            assert!(on_grid >= cpu.len() * 98 / 100, "{on_grid} of {} cycles on the grid", cpu.len());
            // A late tick moves the grid by at most 500 ms, and the next tick may move it back.
            assert!(cpu.windows(2).all(|w| (INTERVAL_MS - 500..=INTERVAL_MS + 500).contains(&(w[1].0 - w[0].0))));
        }
        // The two devices tick at different moments.
        assert_ne!(series(&r, 0, "cpu.usage_percent", None)[0].0, series(&r, 1, "cpu.usage_percent", None)[0].0);
    }

    #[test]
    fn one_reboot_resets_counters_and_uptime_and_values_look_like_an_agents() {
        let r = run(1, 2000, 14);
        let drops = |s: &[(i64, f64)]| s.windows(2).filter(|w| w[1].1 < w[0].1).count();
        assert_eq!(drops(series(&r, 0, "net.rx_bytes", Some("eth0"))), 1);
        assert_eq!(drops(series(&r, 0, "uptime.seconds", None)), 1);
        let uptime = series(&r, 0, "uptime.seconds", None);
        assert!(uptime.windows(2).filter(|w| w[1].1 >= w[0].1).all(|w| (9.0..=11.0).contains(&(w[1].1 - w[0].1))));
        let two_decimals = |v: f64| (v * 100.0).round() / 100.0 == v;
        for (name, label) in [("cpu.usage_percent", None), ("memory.used_percent", None), ("disk.used_percent", Some("/var"))] {
            assert!(series(&r, 0, name, label).iter().all(|p| two_decimals(p.1) && (0.0..=100.0).contains(&p.1)), "{name}");
        }
        assert!(series(&r, 0, "load.1m", None).iter().all(|p| (p.1 * 100.0).round() / 100.0 == p.1));
        assert!(series(&r, 0, "swap.used_percent", None).iter().all(|p| p.1 == 0.0));
        let alerts = series(&r, 0, "ids.detect.alert", None);
        assert!(alerts.iter().filter(|p| p.1 == 0.0).count() > alerts.len() * 9 / 10);
        let var = series(&r, 0, "disk.used_percent", Some("/var"));
        assert!(var.last().unwrap().1 > var[0].1);
    }
}
