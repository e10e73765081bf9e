//! The real `ampel-agent` binary, as an operator runs it.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;

use ampel_protocol::{Batch, Record};
use quinn::ConnectionError;

use crate::support::{Pki, Server, write_config};

const BIN: &str = env!("CARGO_BIN_EXE_ampel-agent");

fn agent(args: &[&str]) -> Output {
    std::process::Command::new(BIN).args(args).env("RUST_LOG", "info").output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A config with certificate files, pointing at an address nobody listens on.
fn configured_dir() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    Pki::new().write_device_files(dir.path());
    let path = write_config(dir.path(), "127.0.0.1:9".parse().unwrap(), "1s");
    (dir, path.display().to_string())
}

#[test]
fn once_prints_one_batch_as_json_with_the_contract_metrics() {
    let (_dir, config) = configured_dir();
    let out = agent(&["once", "--config", &config]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("\"cpu.usage_percent\""), "{stdout}");
    let batch: Batch = serde_json::from_str(&stdout).unwrap();
    assert_eq!(batch.seq, 0);
    for name in ["memory.used_percent", "load.1m", "disk.free_bytes", "uptime.seconds"] {
        assert!(batch.records.iter().any(|r| matches!(r, Record::Metric(m) if m.name == name)), "no {name}");
    }
    assert!(batch.records.iter().any(|r| matches!(r, Record::Inventory(i) if i.model == "FW-500")));
}

#[test]
fn check_config_says_ok_for_a_good_config() {
    let (_dir, config) = configured_dir();
    let out = agent(&["check-config", "--config", &config]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), format!("{config}: ok\n"));
}

fn rewrite(config: &str, from: &str, to: &str) {
    let t = std::fs::read_to_string(config).unwrap();
    assert!(t.contains(from));
    std::fs::write(config, t.replace(from, to)).unwrap();
}

#[test]
fn check_config_names_line_and_key_of_a_typo_and_exits_78() {
    let (_dir, config) = configured_dir();
    rewrite(&config, "interval =", "intervall =");
    let out = agent(&["check-config", "--config", &config]);
    assert_eq!(out.status.code(), Some(78));
    let err = text(&out.stderr);
    assert!(err.contains(&format!("{config}: line 1, key \"intervall\": unknown field")), "{err}");
}

#[test]
fn check_config_names_a_missing_certificate_file() {
    let (dir, config) = configured_dir();
    std::fs::remove_file(dir.path().join("device.pem")).unwrap();
    let out = agent(&["check-config", "--config", &config]);
    assert_eq!(out.status.code(), Some(78));
    let err = text(&out.stderr);
    assert!(err.contains(&format!("cannot read {}", dir.path().join("device.pem").display())), "{err}");
    // `run` refuses the same way, before doing anything.
    assert_eq!(agent(&["run", "--config", &config]).status.code(), Some(78));
}

#[test]
fn check_config_refuses_a_key_that_is_not_the_certificates() {
    let (dir, config) = configured_dir();
    std::fs::write(dir.path().join("device.key"), Pki::new().device_key_pem).unwrap();
    let out = agent(&["check-config", "--config", &config]);
    assert_eq!(out.status.code(), Some(78), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("device.key"), "{}", text(&out.stderr));
}

#[test]
fn check_config_of_a_missing_file_exits_78() {
    let out = agent(&["check-config", "--config", "/nonexistent/agent.toml"]);
    assert_eq!(out.status.code(), Some(78));
    assert!(text(&out.stderr).contains("cannot read /nonexistent/agent.toml"));
}

async fn run_until_batches(dir: &Path, server: &mut Server, n: usize) -> (Vec<Batch>, String) {
    let config = write_config(dir, server.addr, "200ms");
    let child = tokio::process::Command::new(BIN)
        .args(["run", "--config"])
        .arg(&config)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut batches = Vec::new();
    for _ in 0..n {
        batches.push(server.next_batch().await);
    }
    let pid = nix::unistd::Pid::from_raw(child.id().unwrap() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let out = tokio::time::timeout(Duration::from_secs(10), child.wait_with_output()).await.unwrap().unwrap();
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "exit {:?}: {stderr}", out.status);
    (batches, stderr)
}

#[tokio::test]
async fn run_delivers_numbered_batches_and_stops_cleanly_on_sigterm() {
    let pki = Pki::new();
    let mut server = Server::start(&pki, &pki, "127.0.0.1:0".parse::<SocketAddr>().unwrap()).await;
    let dir = tempfile::tempdir().unwrap();
    pki.write_device_files(dir.path());

    let (first, stderr) = run_until_batches(dir.path(), &mut server, 3).await;
    assert!(stderr.contains("connected to collector"), "{stderr}");
    assert!(stderr.contains("SIGTERM received"), "{stderr}");
    let seqs: Vec<u64> = first.iter().map(|b| b.seq).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    assert!(first.iter().all(|b| b.sender.as_deref() == Some("dev-1")));
    assert!(matches!(first[0].records.iter().find(|r| r.kind() == "inventory"), Some(Record::Inventory(_))));
    assert!(first[1].records.iter().all(|r| r.kind() != "inventory"), "inventory repeated within the hour");
    match server.next_close().await {
        ConnectionError::ApplicationClosed(c) => assert_eq!(&c.reason[..], b"agent shutting down"),
        other => panic!("agent did not close with a reason: {other}"),
    }

    // Batches that arrived between the third and the SIGTERM count as used numbers too.
    let late = server.drain_events(Duration::from_millis(100)).await;
    let last_before = late
        .iter()
        .filter_map(|e| match e {
            crate::support::Event::Batch(b) => Some(b.seq),
            _ => None,
        })
        .chain(seqs.iter().copied())
        .max()
        .unwrap();

    // A restart continues above every number used before.
    let (second, _) = run_until_batches(dir.path(), &mut server, 1).await;
    let first_after = second[0].seq;
    assert!(first_after > last_before, "seq {first_after} after {last_before}");
}

fn fixture(p: &str) -> String {
    format!("{}/tests/fixtures/{p}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn parse_summary_counts_and_exits_0_even_with_malformed_lines() {
    let out = agent(&["parse", "--format", "eve", "--summary", &fixture("eve/telegraf-drop-pretty.json")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((v["lines"].as_u64(), v["malformed"].as_u64()), (Some(29), Some(29)));

    let out = agent(&["parse", "--format", "eve", "--summary", &fixture("eve/josevnz-eve-large-head.json")]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["event_types"]["stats"], 325);
    assert_eq!(v["records"]["alert"], 24);
    assert!(v["records"]["metric"].as_u64().unwrap() > 0);
}

#[test]
fn parse_prints_one_record_per_line_for_every_format() {
    for (format, file, records) in [
        ("eve", "eve/crowdsec-suricata-eve-detect.json", 4),
        ("clamav", "antivirus/generated-clamscan-quarantine-move-1.4.6.log", 7),
        ("mail", "mail/crowdsec-postfix-spam.log", 2),
        ("rspamd", "mail/generated-rspamd-3.4-history.json", 4),
        ("netdev", "proc-net-dev/procfs-fixture-dev.txt", 4),
        ("nft", "netfilter/generated-nft-1.0.6-j-list-counters.json", 2),
    ] {
        let out = agent(&["parse", "--format", format, &fixture(file)]);
        assert!(out.status.success(), "{format}: {}", text(&out.stderr));
        let lines: Vec<Record> = text(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), records, "{format}");
    }
    let dir = tempfile::tempdir().unwrap();
    let lic = dir.path().join("license.toml");
    std::fs::write(&lic, "product = \"P\"\nlicensed = true\nexpiry = \"2000-01-01\"\n").unwrap();
    let out = agent(&["parse", "--format", "license", lic.to_str().unwrap()]);
    let r: Record = serde_json::from_slice(&out.stdout).unwrap();
    assert!(matches!(r, Record::License(l) if !l.licensed && l.expires == Some(946_771_200_000)));
    let out = agent(&["parse", "--format", "eve", "/nonexistent/eve.json"]);
    assert!(!out.status.success(), "a file that cannot be read is an error");
}
