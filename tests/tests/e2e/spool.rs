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

/// An agent config that sends only numbered points, over `transport` to `address`. The
/// sources on by default are off: their points would blur the counts, and the `agent` source
/// would widen the interval on a loaded machine.
pub fn counter_config(dev: &Path, device: &str, transport: &str, address: &str, total: u64, start: i64) -> PathBuf {
    let cfg = dev.join("agent.toml");
    std::fs::write(
        &cfg,
        format!(
            "interval = \"100ms\"\nstate-dir = \"state\"\n\n[collector]\ntransport = \"{transport}\"\naddress = \"{address}\"\n\
             server-name = \"localhost\"\nca = \"ca.pem\"\ncert = \"{device}.pem\"\nkey = \"{device}.key\"\n\n\
             [sources.performance]\nenabled = false\n\n[sources.inventory]\nenabled = false\n\n\
             [sources.netdev]\nenabled = false\n\n[sources.agent]\nenabled = false\n\n\
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
    // The registry's count goes up with every committed batch, while the store keeps the first
    // write of each (series, time): a batch committed twice would make them differ. (Over
    // QUIC every batch also carries the certificate's expiry, one point more per batch.)
    drop(series);
    let stored = store.count_points(device, i64::MIN, i64::MAX).unwrap();
    let row = d.device(device).unwrap();
    assert!(stored >= total, "{stored} points stored, fewer than the {total} counted");
    assert_eq!(row["points"].as_u64(), Some(stored), "points counted in the registry: {row}");
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
    assert!(
        done.is_some(),
        "only {} of {TOTAL} points after 90 s\nagent log:\n{}\ncollector log:\n{collector_log}",
        points(&d, "fw-1"),
        agent.log()
    );
    // Give late duplicates a chance to show before counting.
    std::thread::sleep(Duration::from_millis(500));
    assert!(agent.stop(), "agent did not stop cleanly:\n{}", agent.log());
    let mut c = collector.take().unwrap();
    assert!(c.stop(), "collector did not stop cleanly:\n{}", c.log());
    assert_exactly_once(&d, "fw-1", start, TOTAL);
    eprintln!("kill -9 test took {:?}", t0.elapsed());
}

/// Resident memory of a process in KiB, from /proc.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status.lines().find_map(|l| l.strip_prefix("VmRSS:")).and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok()).unwrap()
}

#[test]
fn collector_away_the_spool_fills_sheds_metrics_counts_drops_and_the_agent_stays_small() {
    let d = Deployment::new("");
    let dev = d.issue("acme", "fw-1");
    let start = start_ms();
    let cfg = counter_config(&dev, "fw-1", "quic", &format!("127.0.0.1:{}", d.port), 10_000_000, start);
    let mut text = std::fs::read_to_string(&cfg).unwrap();
    text.push_str("\n[spool]\nmax-bytes = \"256KiB\"\n");
    std::fs::write(&cfg, text).unwrap();
    // No collector: everything stays in the spool, which fills within a second or two.
    let mut agent = Proc::start("ampel-agent", "fw-1", &["run", "--config", cfg.to_str().unwrap()]);
    agent.wait_for_log("spool full: shed older data by priority", Duration::from_secs(20));
    std::thread::sleep(Duration::from_secs(4));
    assert!(agent.running(), "the agent died with a full spool:\n{}", agent.log());
    let rss = rss_kib(agent.pid());
    eprintln!("agent RSS with a full spool: {rss} KiB");
    // Debug build; the release build (agent-release profile) is far smaller. A leak would grow
    // well past this with ~50 shed cycles behind it.
    assert!(rss < 24 * 1024, "agent RSS {rss} KiB with a full spool");
    let spool_file = dev.join("state/spool/data.mdb");
    let size = std::fs::metadata(&spool_file).unwrap().len();
    assert!(size <= 2 * 256 * 1024 + (2 << 20), "spool file grew to {size} bytes");
    // The collector comes back: the drop counters arrive as agent.dropped{kind=metric}.
    let mut collector = d.serve();
    let arrived = wait_until(Duration::from_secs(30), || (points(&d, "fw-1") > 0).then_some(()));
    assert!(arrived.is_some(), "nothing arrived:\n{}", agent.log());
    std::thread::sleep(Duration::from_secs(2));
    assert!(agent.stop(), "{}", agent.log());
    assert!(collector.stop());
    let store = Store::open(&d.dir.path().join("data/store"), StoreOptions::default()).unwrap();
    let dropped = store.metric("fw-1", "agent.dropped", 0, i64::MAX).unwrap();
    let metric_drops = dropped
        .iter()
        .find(|(labels, _)| labels.iter().any(|(k, v)| k == "kind" && v == "metric"))
        .and_then(|(_, pts)| pts.last().map(|p| p.1));
    assert!(metric_drops.is_some_and(|n| n > 0.0), "agent.dropped{{kind=metric}} did not reach the store: {dropped:?}");
}
