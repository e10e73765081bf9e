//! A device's samples reduced to what the rules read of them, as they stream past.
//!
//! A 30-day period of a device sampled every minute is 43 200 samples per series; the rules
//! need only a few numbers from them: how many CPU and memory samples there were and how many
//! at or above the limit, each disk's first and last sample and its trend, the capture sums,
//! the certificate's last report, and the coverage gaps. [`SampleReducer`] computes exactly
//! those from slices of time fed in order, so the store can be read a day at a time; the
//! arithmetic is the same as over the whole period at once (the same sums in the same order),
//! so the findings are identical. [`SampleFacts::of`] reduces samples held in memory
//! (scenarios, tests) through the same code.

use super::coverage::{Coverage, CoverageScan};
use super::forecast::{Fit, Trend};
use super::rules::{DeviceInput, Window};
use crate::config::RiskConfig;

/// Samples of one metric in the window: how many, and how many at or above the rule's limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Share {
    /// Samples in the window.
    pub samples: usize,
    /// Of those, at or above the limit.
    pub high: usize,
}

/// What the disk rules read of one file system's samples in the window.
#[derive(Debug, Clone, PartialEq)]
pub struct DiskFacts {
    /// Mount point.
    pub mount: String,
    /// Samples in the window.
    pub samples: usize,
    /// Time of the first sample in the window.
    pub first_ms: Option<i64>,
    /// The last sample in the window: (time, percent used).
    pub last: Option<(i64, f64)>,
    /// The least-squares trend, when [`wants_forecast`] asked for one.
    pub trend: Option<Trend>,
}

/// Whether the disk forecast judges this file system: not red already, not full, at least
/// three samples over at least `disk-forecast-min-span`.
pub fn wants_forecast(cfg: &RiskConfig, disk: &DiskFacts) -> bool {
    let (Some(first), Some((last_ts, used))) = (disk.first_ms, disk.last) else {
        return false;
    };
    !(used >= cfg.disk_red_percent.0 || used >= 100.0 || disk.samples < 3 || last_ts - first < cfg.disk_forecast_min_span.as_ms())
}

/// Everything the rules read of a device's samples.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleFacts {
    /// CPU samples in the window, against `cpu-high-percent`.
    pub cpu: Share,
    /// Memory samples in the window, against `memory-high-percent`.
    pub memory: Share,
    /// Whether there was any CPU or memory sample at all.
    pub cpu_or_memory: bool,
    /// Per file system, in the order the samples named them.
    pub disks: Vec<DiskFacts>,
    /// Sum of the finite, positive capture-drop samples in the window.
    pub capture_drops: f64,
    /// Sum of the finite, positive captured-packet samples in the window.
    pub capture_packets: f64,
    /// The last `agent.cert_expires_at` sample before the window's end.
    pub certificate: Option<(i64, f64)>,
    /// Where coverage is judged from: the window start, or the first contact if later.
    pub coverage_start_ms: i64,
    /// Coverage of `[coverage_start_ms, window end)` by the samples; `None` without samples.
    pub coverage: Option<Coverage>,
    /// Time of the latest sample of any kind.
    pub latest_ms: Option<i64>,
}

impl SampleFacts {
    /// Reduces the samples `dev` holds in memory.
    pub fn of(dev: &DeviceInput, cfg: &RiskConfig, win: &Window) -> SampleFacts {
        let mut r = SampleReducer::new(cfg, win, dev.first_seen_ms);
        r.feed(dev);
        if !r.forecast_mounts().is_empty() {
            r.feed_forecast(dev);
        }
        r.finish()
    }
}

/// Builds [`SampleFacts`] from slices of time.
///
/// Feed every slice, earliest first, through [`SampleReducer::feed`]: each a [`DeviceInput`]
/// whose sample fields hold the samples of one stretch of time, time-ordered as
/// [`DeviceInput::add_series`] leaves them, the stretches not overlapping. Then, if
/// [`SampleReducer::forecast_mounts`] names any file systems, feed the same slices of those
/// through [`SampleReducer::feed_forecast`] (the least-squares fit needs its means before the
/// second pass). Samples outside the window count where the rules count them (any sample for
/// "no performance data", the last certificate report before the end), as with samples held in
/// memory.
#[derive(Debug)]
pub struct SampleReducer<'a> {
    cfg: &'a RiskConfig,
    win: &'a Window,
    facts: SampleFacts,
    scan: CoverageScan,
    /// Whether any sample for coverage was fed, inside the window or not.
    any_times: bool,
    fits: Vec<Option<Fit>>,
}

/// Sums the way `Iterator::sum` of floats does: from -0.0, in order.
fn sum_into(acc: &mut f64, points: &[(i64, f64)], win: &Window) {
    for p in points.iter().filter(|p| win.contains(p.0) && p.1.is_finite() && p.1 > 0.0) {
        *acc += p.1;
    }
}

impl<'a> SampleReducer<'a> {
    /// A reducer for a device first seen at `first_seen_ms`, judged over `win`.
    pub fn new(cfg: &'a RiskConfig, win: &'a Window, first_seen_ms: Option<i64>) -> SampleReducer<'a> {
        // Before the device first reported, there was nothing to cover.
        let start = first_seen_ms.map_or(win.start_ms, |f| f.max(win.start_ms));
        let facts = SampleFacts {
            cpu: Share::default(),
            memory: Share::default(),
            cpu_or_memory: false,
            disks: Vec::new(),
            capture_drops: -0.0,
            capture_packets: -0.0,
            certificate: None,
            coverage_start_ms: start,
            coverage: None,
            latest_ms: None,
        };
        let scan = CoverageScan::new(start, win.end_ms, cfg.expected_interval.as_ms());
        SampleReducer { cfg, win, facts, scan, any_times: false, fits: Vec::new() }
    }

    /// One slice of time.
    pub fn feed(&mut self, slice: &DeviceInput) {
        let (win, f) = (self.win, &mut self.facts);
        let share = |s: &mut Share, points: &[(i64, f64)], limit: f64| {
            for p in points.iter().filter(|p| win.contains(p.0)) {
                s.samples += 1;
                s.high += usize::from(p.1 >= limit);
            }
        };
        share(&mut f.cpu, &slice.cpu, self.cfg.cpu_high_percent.0);
        share(&mut f.memory, &slice.memory, self.cfg.memory_high_percent.0);
        f.cpu_or_memory |= !slice.cpu.is_empty() || !slice.memory.is_empty();
        sum_into(&mut f.capture_drops, &slice.capture_drops, win);
        sum_into(&mut f.capture_packets, &slice.capture_packets, win);
        if let Some(&c) = slice.cert_expires_at.iter().rfind(|p| p.0 < win.end_ms) {
            f.certificate = Some(c);
        }
        self.feed_disks(slice);
        self.feed_times(slice);
    }

    fn feed_disks(&mut self, slice: &DeviceInput) {
        for disk in &slice.disks {
            let i = match self.facts.disks.iter().position(|d| d.mount == disk.mount) {
                Some(i) => i,
                None => {
                    let empty = DiskFacts { mount: disk.mount.clone(), samples: 0, first_ms: None, last: None, trend: None };
                    self.facts.disks.push(empty);
                    self.fits.push(None);
                    self.facts.disks.len() - 1
                }
            };
            let (facts, fit) = (&mut self.facts.disks[i], &mut self.fits[i]);
            for &(t, v) in disk.points.iter().filter(|p| self.win.contains(p.0)) {
                facts.samples += 1;
                facts.first_ms.get_or_insert(t);
                facts.last = Some((t, v));
                fit.get_or_insert_with(|| Fit::new(t)).first_pass(t, v);
            }
        }
    }

    /// Sample times for coverage (every kind but the certificate) and the latest of all.
    fn feed_times(&mut self, slice: &DeviceInput) {
        let times = slice.sample_times();
        let latest = times.last().copied().max(slice.cert_expires_at.iter().map(|p| p.0).max());
        self.facts.latest_ms = self.facts.latest_ms.max(latest);
        self.any_times |= !times.is_empty();
        times.into_iter().for_each(|t| self.scan.push(t));
    }

    /// The file systems whose forecast needs the second pass over their samples.
    pub fn forecast_mounts(&self) -> Vec<String> {
        self.facts.disks.iter().filter(|d| wants_forecast(self.cfg, d)).map(|d| d.mount.clone()).collect()
    }

    /// One slice of time again, for the disk forecast's second pass. Only the disks of
    /// [`SampleReducer::forecast_mounts`] are read; other fields may be empty.
    pub fn feed_forecast(&mut self, slice: &DeviceInput) {
        for disk in &slice.disks {
            let Some(i) = self.facts.disks.iter().position(|d| d.mount == disk.mount) else { continue };
            if let Some(fit) = &mut self.fits[i] {
                disk.points.iter().filter(|p| self.win.contains(p.0)).for_each(|&(t, v)| fit.second_pass(t, v));
            }
        }
    }

    /// Whether the second pass saw the samples the first did (the store may have taken late
    /// samples in between); when not, the reduction should be run again.
    pub fn consistent(&self) -> bool {
        self.facts.disks.iter().zip(&self.fits).all(|(d, fit)| match fit {
            Some(fit) if wants_forecast(self.cfg, d) => fit.passes().0 == fit.passes().1,
            _ => true,
        })
    }

    /// The facts.
    pub fn finish(mut self) -> SampleFacts {
        for (d, fit) in self.facts.disks.iter_mut().zip(&self.fits) {
            if wants_forecast(self.cfg, d) {
                d.trend = fit.as_ref().and_then(Fit::trend);
            }
        }
        self.facts.coverage = self.any_times.then(|| self.scan.finish());
        self.facts
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::risk::rules::{Disk, evaluate, evaluate_with};

    const MIN: i64 = 60_000;
    const DAY: i64 = 86_400_000;
    const T0: i64 = 1_773_100_800_000;

    /// A time-ordered series from `T0 - 1 h` to `T0 + 2 d + 1 h`: `(step in minutes, value)`
    /// pairs, values ramping with `slope` per day.
    fn series(steps: &[(u8, u8)], slope: f64) -> Vec<(i64, f64)> {
        let mut t = T0 - 60 * MIN;
        steps
            .iter()
            .map(|&(dt, v)| {
                // Repeats (dt = 0), jitter, and now and then a long silence.
                t += i64::from(dt % 4) * MIN + if dt > 250 { 6 * 60 * MIN } else { 0 };
                (t, f64::from(v) + slope * (t - T0) as f64 / DAY as f64)
            })
            .collect()
    }

    fn cut(points: &[(i64, f64)], a: i64, b: i64) -> Vec<(i64, f64)> {
        points.iter().copied().filter(|p| p.0 >= a && p.0 < b).collect()
    }

    proptest! {
        /// Fed in any slices of time, the reducer finds what it finds in the whole, and the
        /// rules give the same findings, to the last digit of every number.
        #[test]
        fn slices_of_time_reduce_to_the_facts_of_the_whole(
            cpu in prop::collection::vec((any::<u8>(), 0u8..100), 0..400),
            disk in prop::collection::vec((any::<u8>(), 40u8..60), 0..400),
            drops in prop::collection::vec((any::<u8>(), 0u8..30), 0..100),
            slope in 0.0f64..8.0,
            cuts in prop::collection::vec(T0 - DAY..T0 + 3 * DAY, 0..6),
            first_seen in T0 - DAY..T0 + DAY,
        ) {
            let dev = DeviceInput {
                device: "fw-1".into(),
                first_seen_ms: Some(first_seen),
                last_seen_ms: Some(T0 + 2 * DAY - MIN),
                cpu: series(&cpu, 0.0),
                memory: series(&cpu, 0.5),
                disks: vec![Disk { mount: "/".into(), points: series(&disk, slope) }],
                capture_drops: series(&drops, 0.0),
                capture_packets: series(&drops, 0.0).into_iter().map(|p| (p.0, 1000.0)).collect(),
                cert_expires_at: vec![(T0 + DAY, ((T0 + 5 * DAY) / 1000) as f64)],
                ..DeviceInput::default()
            };
            let cfg = RiskConfig::default();
            let win = Window::utc(T0, T0 + 2 * DAY);
            let whole = SampleFacts::of(&dev, &cfg, &win);
            let mut edges = cuts.clone();
            edges.extend([i64::MIN, i64::MAX]);
            edges.sort_unstable();
            edges.dedup();
            let slices: Vec<DeviceInput> = edges
                .windows(2)
                .map(|w| DeviceInput {
                    cpu: cut(&dev.cpu, w[0], w[1]),
                    memory: cut(&dev.memory, w[0], w[1]),
                    disks: vec![Disk { mount: "/".into(), points: cut(&dev.disks[0].points, w[0], w[1]) }],
                    capture_drops: cut(&dev.capture_drops, w[0], w[1]),
                    capture_packets: cut(&dev.capture_packets, w[0], w[1]),
                    cert_expires_at: cut(&dev.cert_expires_at, w[0], w[1]),
                    ..DeviceInput::default()
                })
                .collect();
            let mut r = SampleReducer::new(&cfg, &win, dev.first_seen_ms);
            slices.iter().for_each(|s| r.feed(s));
            if !r.forecast_mounts().is_empty() {
                slices.iter().for_each(|s| r.feed_forecast(s));
            }
            prop_assert!(r.consistent());
            let streamed = r.finish();
            prop_assert_eq!(format!("{streamed:?}"), format!("{whole:?}"));
            let a = evaluate(&dev, &cfg, &win);
            let b = evaluate_with(&dev, &streamed, &cfg, &win);
            prop_assert_eq!(format!("{a:?}"), format!("{b:?}"));
        }
    }

    #[test]
    fn a_second_pass_that_saw_other_samples_is_noticed() {
        let cfg = RiskConfig::default();
        let win = Window::utc(T0, T0 + 2 * DAY);
        let points: Vec<(i64, f64)> = (0..2 * 24 * 60).map(|i| (T0 + i * MIN, 50.0 + i as f64 * 0.01)).collect();
        let dev = DeviceInput { disks: vec![Disk { mount: "/".into(), points: points.clone() }], ..DeviceInput::default() };
        let mut r = SampleReducer::new(&cfg, &win, None);
        r.feed(&dev);
        assert_eq!(r.forecast_mounts(), vec!["/".to_owned()]);
        let mut late = dev.clone();
        late.disks[0].points.push((T0 + DAY + 30_000, 99.0));
        late.disks[0].points.sort_by_key(|p| p.0);
        r.feed_forecast(&late);
        assert!(!r.consistent());
        assert_eq!(r.finish().disks[0].trend, None);
    }
}
