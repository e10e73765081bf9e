use std::io::Write;
use std::path::Path;

use super::*;
use crate::sources::tail::parse_file;
use crate::sources::text::Counts;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/eve").join(name)
}

fn parse(name: &str) -> (Counts, Vec<Record>) {
    let mut records = Vec::new();
    let counts = parse_file(&fixture(name), &mut EveParser::default(), 0, &mut |r| records.push(r.clone())).unwrap();
    (counts, records)
}

fn hist(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
}

/// File, lines, event-type histogram, malformed lines, alert records.
type Case<'a> = (&'a str, u64, &'a [(&'a str, u64)], u64, u64);

#[test]
fn every_fixture_gives_the_manifest_histogram() {
    let cases: &[Case<'_>] = &[
        ("cccs-alert_dns.json", 6, &[("dns", 2), ("netflow", 2), ("alert", 1), ("flow", 1)], 0, 1),
        ("cccs-alert_flow.json", 4, &[("netflow", 2), ("alert", 1), ("flow", 1)], 0, 1),
        ("cccs-alert_http.json", 5, &[("alert", 1), ("fileinfo", 1), ("http", 1), ("flow", 1), ("netflow", 1)], 0, 2),
        ("cccs-alert_smtp.json", 8, &[("alert", 2), ("smtp", 2), ("netflow", 2), ("fileinfo", 1), ("flow", 1)], 0, 3),
        ("crowdsec-suricata-eve-detect.json", 4, &[("alert", 4)], 0, 4),
        ("crowdsec-suricata-evelog.json", 8, &[("alert", 4), ("flow", 2), ("stats", 2)], 0, 4),
        (
            "josevnz-eve-2.json",
            2401,
            &[
                ("dns", 936),
                ("flow", 923),
                ("tls", 224),
                ("alert", 118),
                ("anomaly", 106),
                ("smtp", 84),
                ("http", 5),
                ("fileinfo", 4),
                ("stats", 1),
            ],
            0,
            118 + 106 + 4,
        ),
        ("josevnz-eve-large-head.json", 737, &[("flow", 326), ("stats", 325), ("dns", 48), ("alert", 24), ("ssh", 14)], 0, 24),
        ("josevnz-eve-stats-only.json", 21, &[("stats", 21)], 0, 0),
        ("telegraf-alert-dupkey.json", 1, &[("alert", 1)], 0, 1),
        ("telegraf-drop-pretty.json", 29, &[], 29, 0),
        ("telegraf-stats-delta.json", 1, &[("stats", 1)], 0, 0),
        ("telegraf-stats-threads-pretty.json", 21, &[], 21, 0),
    ];
    for (name, lines, types, malformed, alerts) in cases {
        let (c, _) = parse(name);
        assert_eq!(c.lines, *lines, "{name} lines");
        assert_eq!(c.event_types, Some(hist(types)), "{name}");
        assert_eq!(c.malformed, *malformed, "{name} malformed");
        assert_eq!(c.records.get("alert").copied().unwrap_or(0), *alerts, "{name} alerts");
    }
}

#[test]
fn alert_fields_are_all_carried() {
    let (_, records) = parse("crowdsec-suricata-evelog.json");
    let Some(Record::Alert(a)) = records.iter().find(|r| matches!(r, Record::Alert(a) if a.signature_id == Some(2_034_125)))
    else {
        panic!("no alert 2034125")
    };
    assert_eq!(a.source, AlertSource::Ids);
    assert_eq!(a.severity, 1);
    assert_eq!(a.action, AlertAction::Allowed);
    assert!(a.signature.starts_with("ET EXPLOIT Apache HTTP Server 2.4.49"));
    assert!(a.signature_rev.is_some() && a.category.is_some());
    assert!(a.src.is_some() && a.dst.is_some() && a.src_port.is_some() && a.dst_port.is_some());
    assert_eq!(a.protocol.as_deref(), Some("TCP"));
    assert_eq!(a.app_proto.as_deref(), Some("http"));
    assert!(a.ts > 1_600_000_000_000);
}

#[test]
fn the_duplicated_key_keeps_the_last_value() {
    let (_, records) = parse("telegraf-alert-dupkey.json");
    let [Record::Alert(a)] = records.as_slice() else { panic!("{records:?}") };
    assert_eq!((a.signature_id, a.severity, a.signature.as_str()), (Some(6), 3, "Corrupted HTTP body"));
}

#[test]
fn fileinfo_carries_name_and_hashes() {
    let (_, records) = parse("cccs-alert_http.json");
    let f = records
        .iter()
        .find_map(|r| match r {
            Record::Alert(a) if a.signature == "fileinfo" => Some(a),
            _ => None,
        })
        .unwrap();
    assert_eq!(f.detail.as_deref(), Some("/bad_path"));
    assert_eq!((f.md5.as_deref(), f.sha256.as_deref()), (Some("md5"), Some("sha256")));
}

#[test]
fn stats_become_deltas_with_the_contract_names() {
    let (c, records) = parse("josevnz-eve-stats-only.json");
    let drops: Vec<f64> = records
        .iter()
        .filter_map(|r| match r {
            Record::Metric(m) if m.name == "ids.capture.kernel_drops" => Some(m.value),
            _ => None,
        })
        .collect();
    assert_eq!(drops.len(), 20, "21 stats events give 20 deltas");
    assert_eq!(records.iter().filter(|r| matches!(r, Record::Metric(m) if m.name == "ids.capture.kernel_packets")).count(), 20);
    let (_, live) = parse("josevnz-eve-large-head.json");
    assert!(live.iter().any(|r| matches!(r, Record::Metric(m) if m.name == "ids.capture.kernel_packets" && m.value > 0.0)));
    assert!(drops.iter().all(|d| *d >= 0.0));
    assert_eq!(c.records.get("alert"), None);
}

#[test]
fn a_counter_reset_counts_from_zero() {
    let mut p = EveParser::default();
    let mut out = Vec::new();
    for (up, drops) in [(10, 100), (20, 150), (5, 7)] {
        let line = format!(
            r#"{{"timestamp":"2024-01-01T00:00:00+0000","event_type":"stats","stats":{{"uptime":{up},"capture":{{"kernel_packets":1,"kernel_drops":{drops}}}}}}}"#
        );
        assert!(p.line(line.as_bytes(), 0, &mut out));
    }
    let drops: Vec<f64> = out
        .iter()
        .filter_map(|r| match r {
            Record::Metric(m) if m.name == "ids.capture.kernel_drops" => Some(m.value),
            _ => None,
        })
        .collect();
    assert_eq!(drops, [50.0, 7.0]);
}

#[test]
fn flows_become_traffic_per_app_protocol() {
    let (_, records) = parse("josevnz-eve-2.json");
    let traffic: Vec<&Traffic> = records
        .iter()
        .filter_map(|r| match r {
            Record::Traffic(t) => Some(t),
            _ => None,
        })
        .collect();
    assert!(traffic.iter().any(|t| t.category.as_deref() == Some("dns") && t.rx_packets > 0));
    assert!(traffic.iter().any(|t| t.category.as_deref() == Some("tls") && t.tx_bytes > 0));
}

#[test]
fn garbage_blank_lines_and_a_broken_timestamp_are_counted_not_fatal() {
    let mut p = EveParser::default();
    let mut out = Vec::new();
    assert!(!p.line(b"", 7, &mut out));
    assert!(!p.line(b"\x00\xffgarbage", 7, &mut out));
    assert!(!p.line(b"{\"event_type\":\"alert\"", 7, &mut out));
    assert!(!p.line(b"[1,2]", 7, &mut out));
    assert!(out.is_empty());
    let bad_ts = br#"{"timestamp":"yesterday","event_type":"alert","alert":{"signature_id":1,"signature":"x","severity":2}}"#;
    assert!(!p.line(bad_ts, 7, &mut out), "a bad timestamp is counted");
    let [Record::Alert(a)] = out.as_slice() else { panic!("{out:?}") };
    assert_eq!(a.ts, 7, "and the alert is kept, stamped with the read time");
}

/// The source against a real file written while it runs: rotation, copy-truncate, a partial
/// last line and a restart, each line seen exactly once.
#[test]
fn the_running_source_survives_rotation_truncation_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("eve.json");
    std::fs::write(&path, "").unwrap();
    let cfg = EveConfig { enabled: Some(true), path: path.clone(), ..EveConfig::default() };
    let ctx = BuildContext { state_dir: Some(dir.path().to_owned()), interval: None };
    let alert = |sid: u64| {
        format!(
            "{{\"timestamp\":\"2024-01-01T00:00:00.000000+0000\",\"event_type\":\"alert\",\"src_ip\":\"10.0.0.1\",\"alert\":{{\"signature_id\":{sid},\"signature\":\"s\",\"severity\":2,\"action\":\"blocked\"}}}}\n"
        )
    };
    let append = |p: &Path, s: &str| {
        let mut f = std::fs::OpenOptions::new().append(true).create(true).open(p).unwrap();
        f.write_all(s.as_bytes()).unwrap();
    };
    let sids = |records: Vec<Record>| -> Vec<u64> {
        records
            .into_iter()
            .filter_map(|r| match r {
                Record::Alert(a) => a.signature_id,
                _ => None,
            })
            .collect()
    };
    // As the run loop does: gather, spool, then let the source save its position.
    let spooled = |src: &mut Box<dyn Source>, now: i64| {
        let records = src.gather(now).unwrap();
        src.committed();
        records
    };
    let mut src = cfg.build(&ctx).unwrap();
    append(&path, &alert(1));
    let half = alert(2);
    append(&path, &half[..20]);
    assert_eq!(sids(spooled(&mut src, 1)), [1]);
    append(&path, &half[20..]);
    assert_eq!(sids(spooled(&mut src, 2)), [2]);
    append(&path, &alert(3));
    std::fs::rename(&path, dir.path().join("eve.json.1")).unwrap();
    append(&path, &alert(4));
    assert_eq!(sids(spooled(&mut src, 3)), [3, 4]);
    std::fs::write(&path, "").unwrap();
    assert!(sids(spooled(&mut src, 4)).is_empty());
    append(&path, &alert(5));
    assert_eq!(sids(spooled(&mut src, 4)), [5]);
    append(&path, &alert(6));
    drop(src);
    let mut src = cfg.build(&ctx).unwrap();
    assert_eq!(sids(spooled(&mut src, 5)), [6], "a restart resumes where it stopped");
    assert!(sids(spooled(&mut src, 6)).is_empty());
}

/// The scanner must never accept a line serde_json refuses, and must read what it accepts
/// exactly as serde_json does. Checked on every fixture line and on mutilated copies of them.
#[test]
fn the_scanner_agrees_with_serde_json() {
    fn check(line: &[u8]) -> bool {
        let Some(fast) = scan::event(line) else { return false };
        match serde_json::from_slice::<Event<'_>>(line) {
            Ok(slow) => assert_eq!(fast, slow, "{}", String::from_utf8_lossy(line)),
            Err(e) => panic!("scanner accepted what serde_json refuses ({e}): {}", String::from_utf8_lossy(line)),
        }
        true
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/eve");
    let (mut lines, mut accepted) = (0, 0);
    for entry in std::fs::read_dir(&dir).unwrap() {
        let text = std::fs::read(entry.unwrap().path()).unwrap();
        for (n, line) in text.split(|&c| c == b'\n').enumerate() {
            lines += 1;
            accepted += u32::from(check(line));
            // Mutilate the first lines of each file at every 17th byte (a few seconds in debug).
            if n >= 2 {
                continue;
            }
            for at in (0..line.len()).step_by(17) {
                check(&line[..at]);
                let mut bad = line.to_vec();
                for b in [b'"', b'\\', b'{', b']', b',', b':', b'0', b'.', b'x', 0x01, 0xff] {
                    bad[at] = b;
                    check(&bad);
                }
                bad[at] = line[at];
                bad.insert(at, b'"');
                check(&bad);
            }
        }
    }
    // Nearly every real line takes the fast path (the rest: pretty-printed and odd ones).
    assert!(accepted * 10 > lines * 9, "{accepted} of {lines}");
    // Hand-made cases around what the scanner leaves to serde_json.
    for (line, fast) in [
        (&br#"{"event_type":"alert","src_port":80}"#[..], true),
        (br#"{"event_type":"alert","src_port":65536}"#, false),
        (br#"{"event_type":"alert","src_port":080}"#, false),
        (br#"{"event_type":"alert","src_port":-1}"#, false),
        (br#"{"event_type":"alert","src_port":1.0}"#, false),
        (br#"{"event_type":"alert","src_port":null,"proto":null}"#, true),
        (br#"{"event_type":"al\"ert"}"#, false),
        (br#"{"event_type":"alert","event_type":"flow"}"#, false),
        (br#"{"event_type":"alert","x":1,"x":2}"#, true),
        (br#"{"event_type":"alert","x":"\u12g4"}"#, false),
        (br#"{"event_type":"alert","x":"\u12a4\n"}"#, true),
        (br#"{"event_type":"alert","x":[1,2,]}"#, false),
        (br#"{"event_type":"alert","x":{"a":1,}}"#, false),
        (br#"{"event_type":"alert","x":01}"#, false),
        (br#"{"event_type":"alert","x":1.}"#, false),
        (br#"{"event_type":"alert","x":-0.5e+3}"#, true),
        (br#"{"event_type":"alert","x":tru}"#, false),
        (br#"{"event_type":"alert"} x"#, false),
        (br#" {"event_type" : "alert" } "#, true),
        (br#"{"proto":"TCP"}"#, false),
        (br#"{}"#, false),
        (br#"["x"]"#, false),
        (b"{\"event_type\":\"alert\",\"x\":\"a\tb\"}", false),
        (b"{\"event_type\":\"alert\",\"\xff\":1}", false),
        (br#"{"event_type":"alert","alert":{"signature_id":"x"}}"#, false),
        (br#"{"event_type":"stats","stats":{"uptime":5,"capture":{"kernel_packets":1}}}"#, true),
    ] {
        assert_eq!(check(line), fast, "{}", String::from_utf8_lossy(line));
    }
}
