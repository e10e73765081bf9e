//! Jittered exponential backoff for reconnecting, as a state machine without clock or I/O.
//!
//! After the n-th consecutive failure the agent waits a random time in `[0, ceiling]` ("full
//! jitter"), where the ceiling is `base * 2^(n-1)` capped at `cap`: with the defaults 0.5 s, 1 s,
//! 2 s, ... 32 s, 60 s, 60 s. Full jitter spreads a fleet that lost its collector at the same
//! moment, so the collector's return is not met by a synchronised stampede.
//!
//! The state machine also decides what is worth logging, so a collector that is down for a day
//! does not fill the journal: a failure is logged when the ceiling grows, and once the ceiling
//! is capped at most every `quiet_at_cap`. Callers pass the current time and the random source in.

use std::time::{Duration, Instant};

use rand::Rng;

/// Backoff settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackoffConfig {
    /// Ceiling after the first failure.
    pub base: Duration,
    /// Largest ceiling.
    pub cap: Duration,
    /// Once capped, log a failure at most this often.
    pub quiet_at_cap: Duration,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        BackoffConfig { base: Duration::from_millis(500), cap: Duration::from_secs(60), quiet_at_cap: Duration::from_secs(300) }
    }
}

/// What to do after a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delay {
    /// How long to wait before the next attempt.
    pub wait: Duration,
    /// The upper bound `wait` was drawn from.
    pub ceiling: Duration,
    /// Consecutive failures so far, this one included.
    pub failures: u32,
    /// Whether this failure is worth a log line (see the module docs).
    pub log: bool,
}

/// The backoff state: consecutive failures and what was last logged.
#[derive(Debug, Clone)]
pub struct Backoff {
    config: BackoffConfig,
    failures: u32,
    logged_ceiling: Option<Duration>,
    last_log: Option<Instant>,
}

impl Backoff {
    /// A backoff with no failures yet.
    pub fn new(config: BackoffConfig) -> Backoff {
        Backoff { config, failures: 0, logged_ceiling: None, last_log: None }
    }

    /// Consecutive failures since the last success.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// The ceiling after `failures` consecutive failures.
    fn ceiling(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(32);
        self.config.base.saturating_mul(1u32 << doublings.min(31)).min(self.config.cap)
    }

    /// Records a failed attempt at `now` and says how long to wait and whether to log it.
    pub fn failed(&mut self, now: Instant, rng: &mut impl Rng) -> Delay {
        self.failures = self.failures.saturating_add(1);
        let ceiling = self.ceiling(self.failures);
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        let wait = Duration::from_nanos(rng.random_range(0..=nanos));
        let grew = self.logged_ceiling.is_none_or(|logged| ceiling > logged);
        let quiet_over = self.last_log.is_none_or(|at| now.saturating_duration_since(at) >= self.config.quiet_at_cap);
        let log = grew || quiet_over;
        if log {
            self.logged_ceiling = Some(ceiling);
            self.last_log = Some(now);
        }
        Delay { wait, ceiling, failures: self.failures, log }
    }

    /// Records a success: the next failure starts from `base` again. Returns the number of
    /// failures that preceded it (0 when there were none), for a single "reconnected" log line.
    pub fn succeeded(&mut self) -> u32 {
        let failures = self.failures;
        *self = Backoff::new(self.config);
        failures
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;
    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn ceilings_double_from_base_to_cap() {
        let mut b = Backoff::new(BackoffConfig::default());
        let mut rng = StdRng::seed_from_u64(1);
        let t = Instant::now();
        let ceilings: Vec<Duration> = (0..10).map(|_| b.failed(t, &mut rng).ceiling).collect();
        assert_eq!(ceilings, [MS(500), S(1), S(2), S(4), S(8), S(16), S(32), S(60), S(60), S(60)]);
        // Far beyond 32 doublings nothing overflows.
        for _ in 0..100 {
            assert_eq!(b.failed(t, &mut rng).ceiling, S(60));
        }
    }

    #[test]
    fn waits_are_jittered_within_the_ceiling() {
        let mut rng = StdRng::seed_from_u64(7);
        let t = Instant::now();
        let mut waits = Vec::new();
        for _ in 0..200 {
            let mut b = Backoff::new(BackoffConfig::default());
            for _ in 0..3 {
                b.failed(t, &mut rng);
            }
            let d = b.failed(t, &mut rng); // fourth failure: ceiling 4 s
            assert!(d.wait <= d.ceiling, "{d:?}");
            waits.push(d.wait);
        }
        let (min, max) = (waits.iter().min().unwrap(), waits.iter().max().unwrap());
        // Full jitter: the draws use most of [0, 4 s], they are not clustered at one value.
        assert!(*min < S(1) && *max > S(3), "min {min:?} max {max:?}");
    }

    #[test]
    fn success_resets_to_base_and_reports_the_failures() {
        let mut b = Backoff::new(BackoffConfig::default());
        let mut rng = StdRng::seed_from_u64(3);
        let t = Instant::now();
        for _ in 0..5 {
            b.failed(t, &mut rng);
        }
        assert_eq!(b.succeeded(), 5);
        assert_eq!(b.succeeded(), 0);
        let d = b.failed(t, &mut rng);
        assert_eq!((d.ceiling, d.failures, d.log), (MS(500), 1, true));
    }

    #[test]
    fn logs_once_per_step_then_rarely_at_the_cap() {
        let mut b = Backoff::new(BackoffConfig::default());
        let mut rng = StdRng::seed_from_u64(5);
        let start = Instant::now();
        let mut now = start;
        let mut logged_at = Vec::new();
        // Keep failing for 30 minutes, attempting every time the ceiling says.
        while now < start + S(1800) {
            let d = b.failed(now, &mut rng);
            if d.log {
                logged_at.push((now - start, d.ceiling));
            }
            now += d.ceiling;
        }
        // Eight growing steps (0.5 s .. 60 s), then once per five minutes at the cap.
        let steps: Vec<Duration> = logged_at.iter().take(8).map(|(_, c)| *c).collect();
        assert_eq!(steps, [MS(500), S(1), S(2), S(4), S(8), S(16), S(32), S(60)]);
        let capped: Vec<Duration> = logged_at.iter().skip(8).map(|(at, _)| *at).collect();
        assert!((5..=6).contains(&capped.len()), "{logged_at:?}");
        for pair in logged_at[7..].windows(2) {
            assert!(pair[1].0 - pair[0].0 >= S(300), "{logged_at:?}");
        }
    }
}
