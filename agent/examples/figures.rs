//! Prints the agent's performance figures as `name: value unit` lines.
//!
//! ```text
//! cargo run -p ampel-agent --profile agent-release --example figures
//! ```
//!
//! - `eve_parse_lines_per_s`: an alert-heavy EVE file (every alert line of the fixtures,
//!   repeated to 400,000 lines) read through the same follower and parser as the running
//!   source, on one core.
//! - `cycle_cpu_*`: CPU per collection cycle with every source on, each cycle appending a few
//!   EVE, ClamAV and mail lines (steady state of a busy appliance), 200 cycles.
//! - `rss_after_cycles`: resident memory of this process after those cycles. It still holds
//!   heap pages of the throughput runs above, so it overstates the agent; measure the agent
//!   binary itself (`ampel-agent run` with every source on, VmRSS in /proc/PID/status).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use ampel_agent::sources::agent::{cpu_time, rss_bytes};
use ampel_agent::sources::eve::EveParser;
use ampel_agent::sources::tail::parse_file;
use ampel_agent::sources::{self, BuildContext, SourcesConfig};

fn fixtures() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures"))
}

fn alert_lines() -> Vec<String> {
    let mut lines = Vec::new();
    for f in ["josevnz-eve-2.json", "josevnz-eve-large-head.json", "crowdsec-suricata-eve-detect.json", "cccs-alert_http.json"] {
        let text = std::fs::read_to_string(fixtures().join("eve").join(f)).unwrap();
        lines.extend(text.lines().filter(|l| l.contains("\"event_type\":\"alert\"")).map(str::to_owned));
    }
    lines
}

fn main() {
    let dir = tempfile::tempdir().unwrap();

    // 1. EVE throughput.
    let alerts = alert_lines();
    let avg_len = alerts.iter().map(String::len).sum::<usize>() / alerts.len();
    let eve = dir.path().join("bench-eve.json");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&eve).unwrap());
    let n = 400_000;
    for i in 0..n {
        f.write_all(alerts[i % alerts.len()].as_bytes()).unwrap();
        f.write_all(b"\n").unwrap();
    }
    f.flush().unwrap();
    drop(f);
    let mut best = f64::MAX;
    let mut records = 0;
    for _ in 0..3 {
        let (t0, c0) = (Instant::now(), cpu_time());
        let mut count = 0u64;
        let counts = parse_file(&eve, &mut EveParser::default(), 0, &mut |_| count += 1).unwrap();
        let cpu = (cpu_time() - c0).as_secs_f64();
        let _wall = t0.elapsed();
        assert_eq!(counts.lines, n as u64);
        assert_eq!(counts.malformed, 0);
        records = count;
        best = best.min(cpu);
    }
    println!("eve_alert_lines: {n} lines");
    println!("eve_alert_line_avg: {avg_len} bytes");
    println!("eve_alert_records: {records} records");
    println!("eve_parse_lines_per_s: {:.0} lines/s", n as f64 / best);
    println!("eve_parse_mb_per_s: {:.1} MB/s", std::fs::metadata(&eve).unwrap().len() as f64 / best / 1e6);
    // The follower alone (read + line split), to tell I/O from JSON.
    struct Nothing;
    impl ampel_agent::sources::tail::LineParser for Nothing {
        fn line(&mut self, _: &[u8], _: i64, _: &mut Vec<ampel_protocol::Record>) -> bool {
            true
        }
    }
    let c0 = cpu_time();
    parse_file(&eve, &mut Nothing, 0, &mut |_| ()).unwrap();
    println!("eve_read_split_only_lines_per_s: {:.0} lines/s", n as f64 / (cpu_time() - c0).as_secs_f64());
    // The floor: serde_json only validating each line, keeping nothing.
    let text = std::fs::read(&eve).unwrap();
    let c0 = cpu_time();
    for line in text.split(|&c| c == b'\n').filter(|l| !l.is_empty()) {
        serde_json::from_slice::<serde::de::IgnoredAny>(line).unwrap();
    }
    println!("eve_json_validate_only_lines_per_s: {:.0} lines/s", n as f64 / (cpu_time() - c0).as_secs_f64());
    drop(text);
    std::fs::remove_file(&eve).unwrap();

    // A real mixed file (dns, flow, tls, alert, anomaly, ...), repeated to about 240,000 lines.
    let mixed = std::fs::read_to_string(fixtures().join("eve/josevnz-eve-2.json")).unwrap();
    let path = dir.path().join("bench-mixed.json");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    for _ in 0..100 {
        f.write_all(mixed.as_bytes()).unwrap();
    }
    f.flush().unwrap();
    drop(f);
    let c0 = cpu_time();
    let counts = parse_file(&path, &mut EveParser::default(), 0, &mut |_| ()).unwrap();
    let cpu = (cpu_time() - c0).as_secs_f64();
    println!("eve_mixed_lines_per_s: {:.0} lines/s ({} lines, josevnz-eve-2 x100)", counts.lines as f64 / cpu, counts.lines);
    std::fs::remove_file(&path).unwrap();

    // 2. Full cycle with every source on.
    let p = |name: &str| dir.path().join(name);
    let eve = p("eve.json");
    let clam = p("clamav.log");
    let mail = p("mail.log");
    for f in [&eve, &clam, &mail] {
        std::fs::write(f, "").unwrap();
    }
    std::fs::copy(fixtures().join("mail/generated-rspamd-3.4-history.json"), p("rspamd.json")).unwrap();
    std::fs::copy(fixtures().join("netfilter/generated-nft-1.0.6-j-list-counters.json"), p("nft.json")).unwrap();
    std::fs::write(
        p("license.toml"),
        "product = \"Ampel UTM\"\nmodel = \"RC100\"\nserial = \"X1\"\nlicensed = true\nexpiry = \"2030-01-01\"\n[features]\nids = \"2030-01-01\"\n",
    )
    .unwrap();
    let config = format!(
        r#"
[license]
enabled = true
path = "{d}/license.toml"
[eve]
enabled = true
path = "{d}/eve.json"
[clamav]
enabled = true
path = "{d}/clamav.log"
[mail]
enabled = true
log = "{d}/mail.log"
rspamd-history = "{d}/rspamd.json"
[nft]
enabled = true
path = "{d}/nft.json"
"#,
        d = dir.path().display()
    );
    let cfg: SourcesConfig = toml::from_str(&config).unwrap();
    let ctx = BuildContext { state_dir: Some(dir.path().to_owned()), interval: Some(Duration::from_secs(10)) };
    let mut srcs = cfg.build(&ctx).unwrap();
    let names: Vec<&str> = srcs.iter().map(|s| s.name()).collect();
    println!("cycle_sources: {} ({})", names.len(), names.join(","));
    std::thread::sleep(sources::performance::WARM_UP);
    let stats = std::fs::read_to_string(fixtures().join("eve/josevnz-eve-large-head.json")).unwrap();
    let stats_line = stats.lines().find(|l| l.contains("\"event_type\":\"stats\"")).unwrap().to_owned();
    let flow_line = stats.lines().find(|l| l.contains("\"event_type\":\"flow\"")).unwrap().to_owned();
    let append = |f: &Path, s: &str| {
        let mut h = std::fs::OpenOptions::new().append(true).open(f).unwrap();
        h.write_all(s.as_bytes()).unwrap();
    };
    let mut per_cycle = Vec::new();
    let mut quiet = Vec::new();
    let cycles = 200;
    for i in 0..cycles {
        // A busy appliance between two 10 s cycles: 10 alerts, 10 flows, one stats record, one
        // AV detection, one mail reject. Every 2nd cycle nothing new (quiet).
        let busy = i % 2 == 0;
        if busy {
            let mut chunk = String::new();
            for k in 0..10 {
                chunk.push_str(&alerts[(i * 10 + k) % alerts.len()]);
                chunk.push('\n');
                chunk.push_str(&flow_line);
                chunk.push('\n');
            }
            chunk.push_str(&stats_line);
            chunk.push('\n');
            append(&eve, &chunk);
            append(&clam, "Sun Nov 22 03:02:01 2026 -> /srv/upload/x.exe: Eicar-Signature FOUND\n");
            append(
                &mail,
                "May 11 04:02:37 host1 postfix/smtpd[26897]: NOQUEUE: reject: RCPT from unknown[1.2.3.4]: 554 5.7.1 Service unavailable; from=<a@b> to=<c@d> proto=ESMTP helo=<x>\n",
            );
        }
        let c0 = cpu_time();
        let records = sources::gather_all(&mut srcs, 1_795_315_014_000 + i as i64 * 10_000);
        let used = (cpu_time() - c0).as_secs_f64() * 1000.0;
        assert!(!records.is_empty());
        if busy { per_cycle.push(used) } else { quiet.push(used) }
    }
    let stat = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        (v.iter().sum::<f64>() / v.len() as f64, v[v.len() / 2], v[v.len() * 95 / 100])
    };
    let (mean, median, p95) = stat(&mut per_cycle);
    println!("cycle_cpu_busy_mean: {mean:.3} ms");
    println!("cycle_cpu_busy_median: {median:.3} ms");
    println!("cycle_cpu_busy_p95: {p95:.3} ms");
    let (mean, median, p95) = stat(&mut quiet);
    println!("cycle_cpu_quiet_mean: {mean:.3} ms");
    println!("cycle_cpu_quiet_median: {median:.3} ms");
    println!("cycle_cpu_quiet_p95: {p95:.3} ms");
    println!("rss_after_cycles: {:.2} MiB", rss_bytes() as f64 / 1_048_576.0);
}
