//! The background thread that folds the ingest log and applies retention.
//!
//! It runs fold rounds back to back while the log is behind and rests [`MaintenanceOptions::idle`]
//! once it has caught up, so that a round carries many points per series: the cost of a round
//! is mostly one page per series touched, whatever the number of points. Every
//! [`MaintenanceOptions::retention_every`] it applies retention. Its transactions are bounded
//! (see [`FoldLimits`]), so the writer, the only other writer, waits at most one of them.

use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::{FoldLimits, Store, lock};

/// Tuning of the background thread.
#[derive(Debug, Clone)]
pub struct MaintenanceOptions {
    /// Rest after the log has been caught up.
    pub idle: Duration,
    /// Time between retention passes (the first runs at start).
    pub retention_every: Duration,
    /// Rest after an error before trying again.
    pub backoff: Duration,
    /// Limits of one fold round.
    pub fold: FoldLimits,
}

impl Default for MaintenanceOptions {
    fn default() -> Self {
        MaintenanceOptions {
            idle: Duration::from_millis(500),
            retention_every: Duration::from_secs(600),
            backoff: Duration::from_secs(5),
            fold: FoldLimits::default(),
        }
    }
}

/// Counters of the background thread.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MaintenanceStats {
    /// Fold rounds that did something.
    pub rounds: u64,
    /// Points folded into blocks.
    pub points: u64,
    /// Retention passes.
    pub retention_passes: u64,
    /// Errors (logged).
    pub errors: u64,
}

struct Signal {
    state: Mutex<(bool, MaintenanceStats)>,
    wake: Condvar,
}

/// Handle to the running thread; [`stop`](Maintenance::stop) ends it.
pub struct Maintenance {
    signal: Arc<Signal>,
    thread: Option<JoinHandle<()>>,
}

impl Maintenance {
    /// Starts the thread over `store`.
    pub fn start(store: Store, opts: MaintenanceOptions) -> std::io::Result<Maintenance> {
        let signal = Arc::new(Signal { state: Mutex::new((false, MaintenanceStats::default())), wake: Condvar::new() });
        let s = signal.clone();
        let thread = std::thread::Builder::new().name("ampel-fold".into()).spawn(move || run(&store, &opts, &s))?;
        Ok(Maintenance { signal, thread: Some(thread) })
    }

    /// What the thread has done so far.
    pub fn stats(&self) -> MaintenanceStats {
        lock(&self.signal.state).1.clone()
    }

    /// Wakes the thread early (after a large commit, say).
    pub fn nudge(&self) {
        self.signal.wake.notify_one();
    }

    /// Stops the thread after its current transaction and waits for it.
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        lock(&self.signal.state).0 = true;
        self.signal.wake.notify_all();
        if let Some(t) = self.thread.take()
            && t.join().is_err()
        {
            tracing::error!("the fold thread panicked");
        }
    }
}

impl Drop for Maintenance {
    fn drop(&mut self) {
        self.halt();
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn run(store: &Store, opts: &MaintenanceOptions, signal: &Signal) {
    let mut last_retention: Option<Instant> = None;
    loop {
        if lock(&signal.state).0 {
            break;
        }
        let mut rest = opts.idle;
        if last_retention.is_none_or(|t| t.elapsed() >= opts.retention_every) {
            match store.apply_retention(now_ms()) {
                Ok(r) => {
                    tracing::debug!(points = r.points, alerts = r.alerts, txns = r.txns, "retention pass");
                    lock(&signal.state).1.retention_passes += 1;
                }
                Err(e) => {
                    tracing::error!(error = %e, "retention pass failed");
                    lock(&signal.state).1.errors += 1;
                }
            }
            last_retention = Some(Instant::now());
        }
        match store.fold(&opts.fold) {
            Ok(r) => {
                if r.entries > 0 {
                    let mut st = lock(&signal.state);
                    st.1.rounds += 1;
                    st.1.points += r.points;
                    tracing::debug!(entries = r.entries, points = r.points, txns = r.txns, "fold round");
                }
                if r.more {
                    rest = Duration::ZERO;
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "fold round failed; retrying later");
                lock(&signal.state).1.errors += 1;
                rest = opts.backoff;
            }
        }
        if !rest.is_zero() {
            let guard = lock(&signal.state);
            if !guard.0 {
                let _ = signal.wake.wait_timeout(guard, rest);
            }
        }
    }
}
