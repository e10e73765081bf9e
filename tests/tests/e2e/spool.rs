//! Nothing lost, nothing twice: the agent's spool across `kill -9`, collector restarts and a
//! full spool; the collector's dedupe by (device, seq) end to end.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ampel_collector::store::{Store, StoreOptions};
use ampel_tests::{Deployment, Proc, wait_until};

/// Points of the counter source in one run.
const TOTAL: u64 = 100_000;

/// Timestamp of counter point 0: an hour ago, inside any retention.
pub fn start_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64 - 3_600_000
}

/// An agent config that sends only numbered points, over `transport` to `address`.
pub fn counter_config(dev: &Path, device: &str, transport: &str, address: &str, total: u64, start: i64) -> PathBuf {
    let cfg = dev.join("agent.toml");
    std::fs::write(
        &cfg,
        format!(
            "interval = \"100ms\"\nstate-dir = \"state\"\n\n[collector]\ntransport = \"{transport}\"\naddress = \"{address}\"\n\
             server-name = \"localhost\"\nca = \"ca.pem\"\ncert = \"{device}.pem\"\nkey = \"{device}.key\"\n\n\
             [sources.performance]\nenabled = false\n\n[sources.inventory]\nenabled = false\n\n\
             [sources.counter]\nenabled = true\nper-batch = 500\ntotal = {total}\nstart-ms = {start}\n"
        ),
    )
    .unwrap();
    cfg
}

/// Reads every `test.counter` value of `device` from the (stopped) collector's store and
/// checks it holds each of 0..total exactly once.
pub fn assert_exactly_once(d: &Deployment, device: &str, start: i64, total: u64) {
    let store = Store::open(&d.dir.path().join("data/store"), StoreOptions::default()).unwrap();
    let series = store.metric(device, "test.counter", start - 1, start + total as i64 + 1).unwrap();
    let mut seen: BTreeMap<u64, u32> = BTreeMap::new();
    for (_, points) in &series {
        for (ts, v) in points {
            assert_eq!(*ts - start, *v as i64, "point stored under the wrong time");
            *seen.entry(*v as u64).or_insert(0) += 1;
        }
    }
    let missing: Vec<u64> = (0..total).filter(|n| !seen.contains_key(n)).take(10).collect();
    let twice: Vec<u64> = seen.iter().filter(|(_, c)| **c > 1).map(|(n, _)| *n).take(10).collect();
    assert!(missing.is_empty() && twice.is_empty(), "{} distinct of {total}; first missing {missing:?}; twice {twice:?}", seen.len());
    // The registry's count goes up once per committed batch: a duplicate batch would show here.
    let row = d.device(device).unwrap();
    assert_eq!(row["points"].as_u64(), Some(total), "points counted in the registry: {row}");
}

pub fn points(d: &Deployment, device: &str) -> u64 {
    d.device(device).and_then(|v| v["points"].as_u64()).unwrap_or(0)
}

#[test]
fn kill_9_the_agent_20_times_while_the_collector_comes_and_goes_nothing_lost_nothing_twice() {
    let d = Deployment::new("");
    let dev = d.issue("acme", "fw-1");
    let start = start_ms();
    let cfg = counter_config(&dev, "fw-1", "quic", &format!("127.0.0.1:{}", d.port), TOTAL, start);
    let cfg = cfg.to_str().unwrap();
    let mut collector: Option<Proc> = Some(d.serve());
    let t0 = Instant::now();
    for round in 0..20u64 {
        // The collector is away for rounds 5..10 and 14..17, and killed -9 once.
        match round {
            5 | 14 => collector.take().unwrap().stop(),
            10 | 17 => {
                collector = Some(d.serve());
                true
            }
            12 => {
                collector.as_mut().unwrap().kill9();
                collector = Some(d.serve());
                true
            }
            _ => true,
        };
        let mut agent = Proc::start("ampel-agent", "fw-1", &["run", "--config", cfg]);
        // Vary the moment of death: between spool writes, mid-stream, mid-ack.
        std::thread::sleep(Duration::from_millis(300 + (round * 137) % 500));
        agent.kill9();
    }
    let collector_log = collector.as_ref().map(Proc::log).unwrap_or_default();
    let mut agent = Proc::start("ampel-agent", "fw-1", &["run", "--config", cfg]);
    let done = wait_until(Duration::from_secs(90), || (points(&d, "fw-1") >= TOTAL).then_some(()));
    assert!(done.is_some(), "only {} of {TOTAL} points after 90 s\nagent log:\n{}\ncollector log:\n{collector_log}", points(&d, "fw-1"), agent.log());
    // Give late duplicates a chance to show before counting.
    std::thread::sleep(Duration::from_millis(500));
    assert!(agent.stop(), "agent did not stop cleanly:\n{}", agent.log());
    let mut c = collector.take().unwrap();
    assert!(c.stop(), "collector did not stop cleanly:\n{}", c.log());
    assert_exactly_once(&d, "fw-1", start, TOTAL);
    eprintln!("kill -9 test took {:?}", t0.elapsed());
}
