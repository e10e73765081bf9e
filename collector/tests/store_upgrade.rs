//! A store written by 0.1.0 opens under this version and gives the same answers.
//!
//! `tests/fixtures/store-0.1.0/` holds a store written by ampel-collector 0.1.0 with
//! [`write_fixture`] (`data.mdb.gz`) and the answers 0.1.0 gave on it (`answers.txt`, from
//! [`answers`]). It was made once, with the 0.1.0 code, by
//! `AMPEL_FIXTURE_OUT=DIR cargo test -p ampel-collector --test store_upgrade -- --ignored`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use ampel_collector::store::{PendingBatch, Store, StoreOptions};
use ampel_protocol::{
    Alert, AlertAction, AlertSource, Batch, DeviceId, Identity, Inventory, License, Metric, PROTOCOL_VERSION, Record, TenantId,
};

/// 2026-11-02 00:00 UTC.
const T0: i64 = 1_793_577_600_000;
const MINUTE: i64 = 60_000;
/// Three days of one sample a minute.
const SAMPLES: i64 = 3 * 24 * 60;
const DEVICES: [(&str, &str); 3] = [("acme", "fw-1"), ("acme", "fw-2"), ("globex", "gw-1")];
const SERIES: [&str; 4] = ["cpu.usage_percent", "load.1", "net.rx_bytes", "swap.used_percent"];

fn value(d: usize, s: usize, k: i64) -> f64 {
    let h = (k.wrapping_mul(2_654_435_761) ^ (d as i64 * 97 + s as i64 * 13)).rem_euclid(1000);
    match s {
        0 => ((20.0 + 15.0 * ((k as f64) / 300.0).sin() + h as f64 / 100.0) * 10.0).round() / 10.0,
        1 => (h as f64 / 100.0 * 100.0).round() / 100.0,
        2 => (k * 12_345 + h) as f64,
        _ => 0.0,
    }
}

fn alert(ts: i64, k: i64) -> Alert {
    Alert {
        signature_id: Some(2_000_000 + (k % 7) as u64),
        category: Some(format!("category-{}", k % 4)),
        src: Some(format!("198.51.100.{}", k % 11)),
        dst: Some(format!("10.0.0.{}", k % 5)),
        ..Alert::new(
            ts,
            if k % 3 == 0 { AlertSource::Antivirus } else { AlertSource::Ids },
            1 + (k % 3) as u8,
            format!("ET POLICY fixture signature {}", k % 7),
            if k % 2 == 0 { AlertAction::Blocked } else { AlertAction::Allowed },
        )
    }
}

/// One hour of device `d` (samples `k0..k0+60`), with an alert every 20 minutes and licence
/// and inventory records at the start of each day.
fn batch(d: usize, seq: u64, k0: i64) -> Batch {
    let mut records = Vec::new();
    for k in k0..k0 + 60 {
        let ts = T0 + k * MINUTE + (d as i64) * 7;
        for (s, name) in SERIES.iter().enumerate() {
            records.push(Record::Metric(Metric { ts, name: (*name).into(), labels: Vec::new(), value: value(d, s, k) }));
        }
        if k % 20 == 0 {
            records.push(Record::Alert(alert(ts, k + d as i64)));
        }
        if k % (24 * 60) == 0 {
            records.push(Record::License(License {
                ts,
                product: "UTM".into(),
                model: "RC200".into(),
                serial: format!("S-{d}"),
                licensed: true,
                expires: Some(T0 + (30 + k / 1440) * 86_400_000),
                features: Vec::new(),
                unknown_reason: None,
            }));
            records.push(Record::Inventory(Inventory {
                ts,
                hostname: DEVICES[d].1.into(),
                model: "RC200".into(),
                firmware: format!("14.{}", k / 1440),
                os: "Linux".into(),
                kernel: "6.1".into(),
                agent_version: "0.1.0".into(),
                uptime_s: (k * 60) as u64,
            }));
        }
    }
    Batch { version: PROTOCOL_VERSION, seq, sender: None, records }
}

/// Writes the fixture's data: everything folded but the last six hours, which stay in the
/// ingest log.
pub fn write_fixture(store: &Store) {
    let hours = SAMPLES / 60;
    for h in 0..hours {
        if h == hours - 6 {
            store.fold_all().unwrap();
        }
        let group: Vec<PendingBatch> = DEVICES
            .iter()
            .enumerate()
            .map(|(d, (t, dev))| PendingBatch {
                identity: Identity { tenant: TenantId::new(t).unwrap(), device: DeviceId::new(dev).unwrap() },
                batch: batch(d, h as u64 + 1, h * 60),
                received_ms: T0 + (h + 1) * 60 * MINUTE,
            })
            .collect();
        store.commit(&group).unwrap();
    }
}

fn digest(bytes: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, bytes).as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// What a user of the store can ask, written out: raw points and minute buckets as digests of
/// their bits, hour and day buckets, alert summaries and device states in full.
pub fn answers(store: &Store) -> String {
    let mut out = String::new();
    let end = T0 + SAMPLES * MINUTE;
    for (t, dev) in DEVICES {
        let rec = store.device(dev).unwrap().unwrap();
        writeln!(out, "device {dev} tenant {} points {} alerts {} batches {}", rec.tenant, rec.points, rec.alerts, rec.batches).unwrap();
        for name in SERIES {
            for (_, pts) in store.metric(dev, name, T0, end).unwrap() {
                let bits: Vec<u8> = pts.iter().flat_map(|(ts, v)| [ts.to_be_bytes(), v.to_bits().to_be_bytes()].concat()).collect();
                writeln!(out, "{dev} {name} raw {} points {}", pts.len(), digest(&bits)).unwrap();
            }
            for (step, full) in [(MINUTE, false), (5 * MINUTE, false), (60 * MINUTE, true), (86_400_000, true)] {
                for (_, aggs) in store.metric_step(dev, name, T0 - 3_600_000, end + 3_600_000, step).unwrap() {
                    let text: String = aggs.iter().map(|a| format!("{a:?}\n")).collect();
                    if full {
                        write!(out, "{dev} {name} step {step}:\n{text}").unwrap();
                    } else {
                        writeln!(out, "{dev} {name} step {step}: {} buckets {}", aggs.len(), digest(text.as_bytes())).unwrap();
                    }
                }
            }
        }
        for at in [T0 + 1, T0 + 86_400_000 + 1, end] {
            writeln!(out, "{dev} state at {at}: {:?}", store.device_state_at(dev, at).unwrap()).unwrap();
        }
        let _ = t;
    }
    for tenant in ["acme", "globex"] {
        writeln!(out, "{tenant} alerts: {:?}", store.alert_summary(tenant, T0, end, 5).unwrap()).unwrap();
    }
    out
}

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/store-0.1.0")
}

/// Makes the fixture (run once, with the version the fixture is named after).
#[test]
#[ignore = "writes the fixture; run with AMPEL_FIXTURE_OUT=DIR"]
fn make_fixture() {
    let out = PathBuf::from(std::env::var("AMPEL_FIXTURE_OUT").expect("AMPEL_FIXTURE_OUT"));
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    write_fixture(&store);
    let text = answers(&store);
    drop(store);
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("answers.txt"), text).unwrap();
    let raw = std::fs::read(dir.path().join("data.mdb")).unwrap();
    let mut gz = flate2::write::GzEncoder::new(std::fs::File::create(out.join("data.mdb.gz")).unwrap(), flate2::Compression::best());
    gz.write_all(&raw).unwrap();
    gz.finish().unwrap();
}

/// Unpacks the 0.1.0 fixture into a fresh directory.
pub fn unpack_fixture(into: &Path) {
    let mut raw = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(fixture_dir().join("data.mdb.gz")).unwrap()).read_to_end(&mut raw).unwrap();
    std::fs::write(into.join("data.mdb"), raw).unwrap();
}

/// Opens the 0.1.0 store, compares every answer, lets the maintenance convert and fold what
/// it holds, compares again, and again after reopening.
#[test]
fn a_store_written_by_0_1_0_opens_and_gives_the_same_answers() {
    let expected = std::fs::read_to_string(fixture_dir().join("answers.txt")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    unpack_fixture(dir.path());
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    assert_same(&expected, &answers(&store), "as opened");
    store.fold_all().unwrap();
    assert_same(&expected, &answers(&store), "after folding and converting");
    drop(store);
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    assert_same(&expected, &answers(&store), "after reopening");
}

fn assert_same(expected: &str, got: &str, when: &str) {
    if expected == got {
        return;
    }
    let first = expected.lines().zip(got.lines()).position(|(a, b)| a != b).unwrap_or(0);
    panic!(
        "answers differ {when}, first at line {}:\n  0.1.0: {}\n  now:   {}",
        first + 1,
        expected.lines().nth(first).unwrap_or("<end>"),
        got.lines().nth(first).unwrap_or("<end>")
    );
}

/// A conversion cut short at any transaction (what a kill -9 leaves behind: LMDB commits are
/// atomic) goes on at the next open and loses nothing.
#[test]
fn a_conversion_killed_part_way_resumes_and_loses_nothing() {
    let expected = std::fs::read_to_string(fixture_dir().join("answers.txt")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    unpack_fixture(dir.path());
    // Every open converts one transaction's worth and "dies".
    let opts = StoreOptions { upgrade_stop_after_txns: Some(1), ..StoreOptions::default() };
    let mut interrupted = 0;
    let store = loop {
        match Store::open(dir.path(), opts) {
            Err(ampel_collector::store::StoreError::Interrupted { .. }) => interrupted += 1,
            Err(e) => panic!("open after {interrupted} interruptions failed: {e}"),
            Ok(store) => break store,
        }
        assert!(interrupted < 50, "the conversion does not progress");
    };
    assert!(interrupted >= 3, "only {interrupted} interruptions: the fixture no longer needs several transactions");
    assert_same(&expected, &answers(&store), "after an interrupted conversion");
}
