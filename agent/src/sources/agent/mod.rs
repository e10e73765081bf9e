//! `agent`: the agent's own resource use, and its CPU budget.
//!
//! | name | unit |
//! | --- | --- |
//! | `agent.cpu_ms` | CPU time (user + system) the whole agent used since the previous cycle, ms |
//! | `agent.rss_bytes` | resident set size now, bytes (`/proc/self/statm`) |
//!
//! **Budget.** When a cycle used more CPU than `cpu-budget-ms`, the agent doubles its interval
//! (up to `max-widen` times the configured one) and logs it; after 10 cycles in a row under half
//! the budget it halves it again, back to the configured interval. Registered last, so it
//! measures every other source of the cycle. The first cycle also covers start-up and is not
//! held to the budget.

use std::time::Duration;

use ampel_protocol::{Metric, Record};
use serde::Deserialize;

use super::{BuildContext, Source, SourceConfig, SourceError};

/// `[sources.agent]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct AgentSelfConfig {
    /// Whether the agent reports its own CPU and memory (default: true).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// CPU per cycle above which the interval is widened, ms (default 5).
    #[serde(default = "default_budget")]
    pub cpu_budget_ms: f64,
    /// The interval is never widened beyond this multiple of the configured one (default 8).
    #[serde(default = "default_widen")]
    pub max_widen: u32,
}

fn yes() -> bool {
    true
}

fn default_budget() -> f64 {
    5.0
}

fn default_widen() -> u32 {
    8
}

impl Default for AgentSelfConfig {
    fn default() -> Self {
        AgentSelfConfig { enabled: true, cpu_budget_ms: default_budget(), max_widen: default_widen() }
    }
}

impl SourceConfig for AgentSelfConfig {
    fn enabled(&self) -> bool {
        self.enabled
    }

    fn build(&self, ctx: &BuildContext) -> Result<Box<dyn Source>, SourceError> {
        let base = ctx.interval.unwrap_or(Duration::from_secs(60));
        Ok(Box::new(AgentSelf {
            last_cpu: cpu_time(),
            budget: Budget::new(base, self.cpu_budget_ms, self.max_widen.max(1)),
            measured: false,
        }))
    }
}

/// CPU time used by this process so far (user + system).
pub fn cpu_time() -> Duration {
    use nix::sys::resource::{UsageWho, getrusage};
    match getrusage(UsageWho::RUSAGE_SELF) {
        Ok(u) => {
            let tv = |t: nix::sys::time::TimeVal| {
                Duration::from_secs(u64::try_from(t.tv_sec()).unwrap_or(0))
                    + Duration::from_micros(u64::try_from(t.tv_usec()).unwrap_or(0))
            };
            tv(u.user_time()) + tv(u.system_time())
        }
        Err(_) => Duration::ZERO,
    }
}

/// Resident set size of this process, bytes (0 if `/proc/self/statm` is unreadable).
pub fn rss_bytes() -> u64 {
    let page = nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE).ok().flatten().unwrap_or(4096);
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1).and_then(|v| v.parse::<u64>().ok()))
        .map_or(0, |pages| pages.saturating_mul(u64::try_from(page).unwrap_or(4096)))
}

/// The interval decision, a plain state machine over "CPU used this cycle".
#[derive(Debug, Clone, PartialEq)]
pub struct Budget {
    base: Duration,
    current: Duration,
    budget_ms: f64,
    max_widen: u32,
    calm: u32,
}

impl Budget {
    /// A budget of `budget_ms` per cycle around the configured interval `base`.
    pub fn new(base: Duration, budget_ms: f64, max_widen: u32) -> Budget {
        Budget { base, current: base, budget_ms, max_widen, calm: 0 }
    }

    /// The interval now wanted.
    pub fn interval(&self) -> Duration {
        self.current
    }

    /// Takes one cycle's CPU use; returns the change of interval, if any.
    pub fn observe(&mut self, cpu_ms: f64) -> Option<IntervalChange> {
        let max = self.base * self.max_widen;
        if cpu_ms > self.budget_ms {
            self.calm = 0;
            let wider = (self.current * 2).min(max);
            if wider != self.current {
                self.current = wider;
                return Some(IntervalChange::Widened(wider));
            }
        } else if cpu_ms < self.budget_ms / 2.0 && self.current > self.base {
            self.calm += 1;
            if self.calm >= 10 {
                self.calm = 0;
                self.current = (self.current / 2).max(self.base);
                return Some(IntervalChange::Narrowed(self.current));
            }
        } else {
            self.calm = 0;
        }
        None
    }
}

/// How the budget moved the interval. A narrowing step can leave the interval still above
/// the configured one: telling the two apart by the new interval alone once logged a calm
/// cycle as "over its CPU budget".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntervalChange {
    /// A cycle used more CPU than the budget: the interval doubled to this.
    Widened(Duration),
    /// Ten cycles under half the budget: the interval halved to this.
    Narrowed(Duration),
}

/// The running source.
pub struct AgentSelf {
    last_cpu: Duration,
    budget: Budget,
    /// Whether a cycle was measured yet: the first one also covers start-up (configuration,
    /// certificates, the handshake, giving back start-up pages) and is not held to the budget.
    measured: bool,
}

impl Source for AgentSelf {
    fn name(&self) -> &'static str {
        "agent"
    }

    fn gather(&mut self, ts: i64) -> Result<Vec<Record>, SourceError> {
        let now = cpu_time();
        let cpu_ms = now.saturating_sub(self.last_cpu).as_secs_f64() * 1000.0;
        self.last_cpu = now;
        let rss = rss_bytes();
        let first = !std::mem::replace(&mut self.measured, true);
        let change = if first { None } else { self.budget.observe(cpu_ms) };
        match change {
            Some(IntervalChange::Widened(new)) => tracing::warn!(
                cpu_ms,
                budget_ms = self.budget.budget_ms,
                interval_ms = new.as_millis() as u64,
                "the last cycle used {cpu_ms:.1} ms of CPU, over the budget of {} ms (cpu-budget-ms); interval widened to {:?}",
                self.budget.budget_ms,
                new
            ),
            Some(IntervalChange::Narrowed(new)) => tracing::info!(
                cpu_ms,
                budget_ms = self.budget.budget_ms,
                interval_ms = new.as_millis() as u64,
                "ten cycles under half the CPU budget of {} ms (the last used {cpu_ms:.1} ms); interval narrowed to {:?}",
                self.budget.budget_ms,
                new
            ),
            None => {}
        }
        let m = |name: &str, value: f64| Record::Metric(Metric { ts, name: name.to_owned(), labels: Vec::new(), value });
        Ok(vec![m("agent.cpu_ms", cpu_ms), m("agent.rss_bytes", rss as f64)])
    }

    fn wanted_interval(&self) -> Option<Duration> {
        Some(self.budget.interval())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn overruns_widen_and_calm_narrows() {
        let s = Duration::from_secs(10);
        let mut b = Budget::new(s, 5.0, 4);
        assert_eq!(b.observe(1.0), None);
        assert_eq!(b.observe(6.0), Some(IntervalChange::Widened(s * 2)));
        assert_eq!(b.observe(60.0), Some(IntervalChange::Widened(s * 4)));
        assert_eq!(b.observe(60.0), None, "capped at max-widen");
        for _ in 0..9 {
            assert_eq!(b.observe(1.0), None);
        }
        // Still twice the configured interval, but a narrowing, not an overrun.
        assert_eq!(b.observe(1.0), Some(IntervalChange::Narrowed(s * 2)));
    }

    #[test]
    fn reports_cpu_and_rss() {
        let mut a = AgentSelfConfig::default().build(&BuildContext::default()).unwrap();
        let r = a.gather(1).unwrap();
        let [Record::Metric(cpu), Record::Metric(rss)] = r.as_slice() else { panic!("{r:?}") };
        assert_eq!((cpu.name.as_str(), rss.name.as_str()), ("agent.cpu_ms", "agent.rss_bytes"));
        assert!(cpu.value >= 0.0 && rss.value > 1_000_000.0);
        assert!(cpu_time() > Duration::ZERO);
    }
}
