//! Store behaviour as a user of the collector sees it.

#![allow(clippy::unwrap_used)]

use super::*;
use ampel_protocol::{AckStatus, Record};
use ampel_protocol::{Metric, PROTOCOL_VERSION};

fn id(t: &str, d: &str) -> Identity {
    Identity { tenant: TenantId::new(t).unwrap(), device: DeviceId::new(d).unwrap() }
}

fn batch(seq: u64, n: usize, t0: i64) -> Batch {
    Batch {
        version: PROTOCOL_VERSION,
        seq,
        sender: None,
        records: (0..n)
            .map(|i| Record::Metric(Metric { ts: t0 + i as i64, name: "cpu.usage_percent".into(), labels: vec![], value: i as f64 }))
            .collect(),
    }
}

#[test]
fn committed_points_read_back_in_time_order_and_duplicates_are_not_written() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    let me = id("acme", "fw-1");
    let group = vec![
        PendingBatch { identity: me.clone(), batch: batch(2, 5, 100), received_ms: 1000 },
        PendingBatch { identity: me.clone(), batch: batch(1, 5, 0), received_ms: 1001 },
        PendingBatch { identity: me.clone(), batch: batch(2, 5, 100), received_ms: 1002 },
    ];
    let res = store.commit(&group).unwrap();
    assert_eq!(res.iter().map(|r| r.0.clone()).collect::<Vec<_>>(), vec![AckStatus::Committed, AckStatus::Committed, AckStatus::Duplicate]);
    let series = store.metric("fw-1", "cpu.usage_percent", i64::MIN, i64::MAX).unwrap();
    assert_eq!(series.len(), 1);
    let ts: Vec<i64> = series[0].1.iter().map(|p| p.0).collect();
    assert_eq!(ts, vec![0, 1, 2, 3, 4, 100, 101, 102, 103, 104]);
    let rec = store.device("fw-1").unwrap().unwrap();
    assert_eq!((rec.tenant.as_str(), rec.points, rec.batches), ("acme", 10, 2));
    assert_eq!(store.high_seq("fw-1").unwrap(), Some(2));
    // After reopening, the dedupe state survives.
    drop(store);
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    let res = store.commit(&group[..1]).unwrap();
    assert_eq!(res[0].0, AckStatus::Duplicate);
    assert_eq!(store.total_points().unwrap(), 10);
}

#[test]
fn a_device_registered_to_another_tenant_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    store.register_device(&TenantId::new("acme").unwrap(), &DeviceId::new("fw-1").unwrap(), 0).unwrap();
    let dup = store.register_device(&TenantId::new("globex").unwrap(), &DeviceId::new("fw-1").unwrap(), 0);
    assert!(matches!(dup, Err(StoreError::DuplicateDevice { .. })));
    let res = store.commit(&[PendingBatch { identity: id("globex", "fw-1"), batch: batch(1, 3, 0), received_ms: 0 }]).unwrap();
    assert!(matches!(res[0].0, AckStatus::Rejected(_)));
    assert_eq!(store.total_points().unwrap(), 0);
}

#[test]
fn malformed_and_unknown_records_are_counted_and_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    let mut b = batch(1, 2, 0);
    b.records.push(Record::Metric(Metric { ts: 5, name: "bad\u{0}name".into(), labels: vec![], value: 1.0 }));
    b.records.push(Record::Metric(Metric { ts: 5, name: "nan".into(), labels: vec![], value: f64::NAN }));
    b.records.push(Record::Unknown);
    let res = store.commit(&[PendingBatch { identity: id("acme", "fw-1"), batch: b, received_ms: 0 }]).unwrap();
    assert_eq!(res[0].1, CommitOutcome { points: 2, alerts: 0, unknown: 1, malformed: 2, expired: 0 });
}

#[test]
fn the_map_grows_from_a_tiny_size_and_nothing_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let opts = StoreOptions { initial_map_size: 1 << 20, max_map_size: 1 << 30, ..StoreOptions::default() };
    let store = Store::open(dir.path(), opts).unwrap();
    let me = id("acme", "fw-1");
    for seq in 0..20u64 {
        let res = store.commit(&[PendingBatch { identity: me.clone(), batch: batch(seq, 5000, seq as i64 * 10_000), received_ms: 0 }]).unwrap();
        assert_eq!(res[0].0, AckStatus::Committed);
    }
    assert_eq!(store.total_points().unwrap(), 100_000);
    assert!(store.map_size() > 1 << 20);
}
