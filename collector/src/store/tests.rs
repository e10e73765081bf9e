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
        let res =
            store.commit(&[PendingBatch { identity: me.clone(), batch: batch(seq, 5000, seq as i64 * 10_000), received_ms: 0 }]).unwrap();
        assert_eq!(res[0].0, AckStatus::Committed);
    }
    assert_eq!(store.total_points().unwrap(), 100_000);
    assert!(store.map_size() > 1 << 20, "the map stayed at {} bytes", store.map_size());
}

#[test]
fn retention_keeps_exactly_what_is_inside_each_horizon() {
    use ampel_protocol::{AlertAction, AlertSource, Metric};
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    let (min, hour) = (60_000i64, 3_600_000i64);
    let now = 100 * hour;
    let raw_keep = 10 * hour;
    let horizon = now - raw_keep;
    // A point every minute from 20 h to 100 h, plus points right at the horizon.
    let mut records: Vec<Record> =
        (20 * 60..100 * 60).map(|i| Record::Metric(Metric { ts: i * min, name: "cpu".into(), labels: vec![], value: 1.0 })).collect();
    for ts in [horizon - 1, horizon + 1] {
        records.push(Record::Metric(Metric { ts, name: "cpu".into(), labels: vec![], value: 5.0 }));
    }
    for ts in [horizon - 1, horizon, horizon + 1] {
        records.push(Record::Alert(ampel_protocol::Alert::new(ts, AlertSource::Auth, 3, "login failed".into(), AlertAction::Blocked)));
    }
    let b = Batch { version: 1, seq: 1, sender: None, records };
    store.commit(&[PendingBatch { identity: id("acme", "fw-1"), batch: b, received_ms: 0 }]).unwrap();
    store.fold_all().unwrap();
    let retention = Retention {
        raw_ms: Some(raw_keep),
        minute_ms: Some(raw_keep + 30 * min),
        hour_ms: Some(50 * hour),
        day_ms: None,
        alerts_ms: Some(raw_keep),
        states_ms: None,
    };
    let report = store.apply_retention_with(&retention, now).unwrap();
    assert!(report.points > 0 && report.alerts == 1);

    // Raw: nothing before the horizon, everything from it on (the point at horizon - 1 is gone,
    // the one at horizon + 1 stays, and so does the rest of the block that straddled it).
    let id_cpu = store.series_of("fw-1").unwrap()[0].2;
    let pts = store.points(id_cpu, 0, i64::MAX).unwrap();
    assert_eq!(pts.first().map(|p| p.0), Some(horizon));
    assert!(pts.iter().any(|p| p.0 == horizon + 1));
    assert_eq!(pts.len() as u64, store.count_points("fw-1", 0, i64::MAX).unwrap());
    assert_eq!(store.total_points().unwrap(), pts.len() as u64, "the counter follows what retention deleted");
    // Minute rollups reach 30 minutes further back than raw points, hours 50 h back.
    let minutes = store.points_step(id_cpu, 0, now, min).unwrap();
    assert_eq!(minutes.first().map(|a| a.ts), Some(horizon - 30 * min));
    let hours = store.points_step(id_cpu, 0, now, hour).unwrap();
    assert_eq!(hours.first().map(|a| a.ts), Some(50 * hour));
    assert_eq!(hours.iter().map(|a| a.count).sum::<u64>(), (50 * 60 + 2) as u64, "hour buckets keep points raw retention dropped");
    // Alerts: the one at horizon - 1 is gone, from the list and from the counts.
    let alerts = store.alerts("acme", 0, i64::MAX).unwrap();
    assert_eq!(alerts.iter().map(|a| a.alert.ts).collect::<Vec<_>>(), vec![horizon, horizon + 1]);
    assert_eq!(store.alert_summary("acme", 0, now, 5).unwrap().total, 2);

    // Late data older than the horizon is refused and counted, not stored.
    let late = Batch {
        version: 1,
        seq: 2,
        sender: None,
        records: vec![Record::Metric(Metric { ts: 0, name: "cpu".into(), labels: vec![], value: 1.0 })],
    };
    let res = store.commit(&[PendingBatch { identity: id("acme", "fw-1"), batch: late, received_ms: 0 }]).unwrap();
    assert_eq!((res[0].0.clone(), res[0].1.expired), (AckStatus::Committed, 1));
}

#[test]
fn the_map_grows_while_folding_and_retaining_from_a_tiny_size() {
    let dir = tempfile::tempdir().unwrap();
    let store =
        Store::open(dir.path(), StoreOptions { initial_map_size: 1 << 20, max_map_size: 1 << 30, ..StoreOptions::default() }).unwrap();
    for seq in 0..30u64 {
        let mut b = batch(seq, 4000, seq as i64 * 4000);
        for (i, r) in b.records.iter_mut().enumerate() {
            if let Record::Metric(m) = r {
                m.name = format!("m{}", i % 50);
                // Values that do not compress, so the data cannot fit the first 1 MiB map
                // however LMDB happens to reuse its free pages.
                m.value = f64::from_bits(((seq << 32) ^ i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 12 | 0x3FF0_0000_0000_0000);
            }
        }
        let res = store.commit(&[PendingBatch { identity: id("acme", "fw-1"), batch: b, received_ms: 0 }]).unwrap();
        assert_eq!(res[0].0, AckStatus::Committed);
        if seq % 7 == 0 {
            store.fold_all().unwrap();
        }
    }
    store.fold_all().unwrap();
    assert_eq!(store.total_points().unwrap(), 120_000);
    assert_eq!(store.count_points("fw-1", i64::MIN, i64::MAX).unwrap(), 120_000);
    assert!(store.map_size() > 1 << 20, "the map stayed at {} bytes", store.map_size());
    let r = Retention { raw_ms: Some(0), ..Retention::FOREVER };
    store.apply_retention_with(&r, 60_000).unwrap();
    assert_eq!(store.total_points().unwrap(), 60_000);
}

#[test]
fn license_and_inventory_state_as_of_a_time() {
    use ampel_protocol::{Inventory, License};
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    let lic = |ts: i64, licensed: bool| License {
        ts,
        product: "utm".into(),
        model: String::new(),
        serial: String::new(),
        licensed,
        expires: None,
        features: vec![],
        unknown_reason: None,
    };
    let inv = |ts: i64| Inventory {
        ts,
        hostname: format!("h{ts}"),
        model: String::new(),
        firmware: String::new(),
        os: String::new(),
        kernel: String::new(),
        agent_version: "1".into(),
        uptime_s: 0,
    };
    let records = vec![Record::License(lic(100, true)), Record::License(lic(300, false)), Record::Inventory(inv(200))];
    store
        .commit(&[PendingBatch {
            identity: id("acme", "fw-1"),
            batch: Batch { version: 1, seq: 1, sender: None, records },
            received_ms: 0,
        }])
        .unwrap();
    assert_eq!(store.device_state_at("fw-1", 50).unwrap(), DeviceState::default());
    let s = store.device_state_at("fw-1", 250).unwrap();
    assert_eq!((s.license.map(|l| l.licensed), s.inventory.map(|i| i.ts)), (Some(true), Some(200)));
    assert_eq!(store.device_state_at("fw-1", 300).unwrap().license.map(|l| l.licensed), Some(false));
    // The history of [150, 400): the licence in force at 150 (read at 100), then 300's.
    let ts =
        |h: &DeviceHistory| (h.licenses.iter().map(|l| l.ts).collect::<Vec<_>>(), h.inventories.iter().map(|i| i.ts).collect::<Vec<_>>());
    let h = store.device_history("fw-1", 150, 400).unwrap();
    assert_eq!((ts(&h), h.truncated), ((vec![100, 300], vec![200]), false));
    assert_eq!(ts(&store.device_history("fw-1", 0, 300).unwrap()), (vec![100], vec![200]));
    // Retention drops old history but keeps the last state before the horizon.
    store.apply_retention_with(&Retention { states_ms: Some(0), ..Retention::FOREVER }, 350).unwrap();
    assert_eq!(store.device_state_at("fw-1", 250).unwrap().license, None);
    assert_eq!(store.device_state_at("fw-1", 400).unwrap().license.map(|l| l.ts), Some(300));
    assert_eq!(store.device("fw-1").unwrap().unwrap().license.map(|l| l.ts), Some(300));
    let h = store.device_history("fw-1", 0, 400).unwrap();
    assert_eq!((ts(&h), h.horizon_ms), ((vec![300], vec![200]), 350));
}

/// The store against a naive in-memory model: random commits, folds (some cut short as if the
/// process had died between transactions), reopenings and retention passes; after each step
/// every query must give what the model gives.
mod model {
    use std::collections::{BTreeMap, HashMap, HashSet};
    use std::time::Duration;

    use ampel_protocol::{AlertAction, AlertSource, License, Metric};
    use proptest::prelude::*;

    use super::super::alerts::dims_of;
    use super::super::rollup::{bucketize, ceil_to, floor_to};
    use super::*;

    const DEVICES: [(&str, &str); 3] = [("t1", "d0"), ("t1", "d1"), ("t2", "d2")];
    const METRICS: [&str; 3] = ["cpu", "mem", "disk"];
    const SPAN: i64 = 300_000_000; // about 3.5 days
    const RETENTION: Retention = Retention {
        raw_ms: Some(150_000_000),
        minute_ms: Some(200_000_000),
        hour_ms: Some(250_000_000),
        day_ms: None,
        alerts_ms: Some(150_000_000),
        states_ms: Some(100_000_000),
    };

    #[derive(Debug, Clone)]
    enum Op {
        Commit { device: usize, seq: u64, points: Vec<(usize, i64, i32)>, alerts: Vec<(i64, u8, u8, u8)>, license: Option<i64> },
        Fold { max_points: usize, stop_after: Option<usize> },
        Reopen,
        Retention { advance: i64 },
        Check { a: i64, b: i64 },
    }

    /// The value a generated point carries, by metric: a gauge with three decimals (eighths,
    /// so that sums stay exact in any order), a large counter with resets (a negative draw),
    /// small integers with -0.0 for zero. The store codes each differently.
    fn value_of(metric: usize, v: i32) -> f64 {
        match metric {
            0 => f64::from(v) / 8.0,
            1 if v < 0 => f64::from(-v),
            1 => 1e12 + f64::from(v) * 1000.0,
            _ if v == 0 => -0.0,
            _ => f64::from(v),
        }
    }

    fn op() -> impl Strategy<Value = Op> {
        let commit = (
            0usize..3,
            0u64..40,
            proptest::collection::vec((0usize..3, 0i64..300, -50i32..50), 0..25),
            proptest::collection::vec((0..SPAN, 0u8..4, 0u8..3, 1u8..4), 0..6),
            proptest::option::of(0..SPAN),
        )
            .prop_map(|(device, seq, points, alerts, license)| Op::Commit {
                device,
                seq,
                points: points.into_iter().map(|(m, k, v)| (m, k * 1_000_003, v)).collect(),
                alerts,
                license,
            });
        prop_oneof![
            6 => commit,
            2 => (1usize..60, proptest::option::of(0usize..4)).prop_map(|(max_points, stop_after)| Op::Fold { max_points, stop_after }),
            1 => Just(Op::Reopen),
            1 => (0..120_000_000i64).prop_map(|advance| Op::Retention { advance }),
            2 => (0..SPAN, 0..SPAN).prop_map(|(a, b)| Op::Check { a: a.min(b), b: a.max(b) + 1 }),
        ]
    }

    fn alert(ts: i64, sig: u8, src: u8, sev: u8) -> ampel_protocol::Alert {
        ampel_protocol::Alert {
            category: (sig != 3).then(|| format!("cat-{}", sig % 2)),
            src: Some(format!("10.0.0.{src}")),
            dst: (src != 0).then(|| "192.0.2.1".to_owned()),
            ..ampel_protocol::Alert::new(
                ts,
                if sig.is_multiple_of(2) { AlertSource::Ids } else { AlertSource::Antivirus },
                sev,
                format!("sig-{sig}"),
                AlertAction::Blocked,
            )
        }
    }

    fn license(ts: i64) -> License {
        License {
            ts,
            product: format!("p{ts}"),
            model: String::new(),
            serial: String::new(),
            licensed: true,
            expires: None,
            features: vec![],
            unknown_reason: None,
        }
    }

    #[derive(Default)]
    struct Model {
        seen: HashMap<usize, HashSet<u64>>,
        /// (device, metric) -> accepted points; first write wins. Rollups are computed from
        /// these, raw reads from those at or after the raw horizon.
        points: BTreeMap<(usize, usize), BTreeMap<i64, f64>>,
        /// Alerts in arrival order.
        alerts: Vec<(usize, ampel_protocol::Alert)>,
        states: HashMap<usize, BTreeMap<i64, License>>,
        now: i64,
        h: Option<Horizons>,
    }

    impl Model {
        fn horizons(&self) -> Horizons {
            self.h.unwrap_or(Horizons { raw: i64::MIN, rollup: [i64::MIN; 3], alerts: i64::MIN, states: i64::MIN })
        }

        fn raw(&self, key: (usize, usize), a: i64, b: i64) -> Vec<(i64, f64)> {
            let h = self.horizons().raw;
            self.points.get(&key).map(|m| m.range(a.max(h).min(b)..b).map(|(t, v)| (*t, *v)).collect()).unwrap_or_default()
        }

        fn step(&self, key: (usize, usize), a: i64, b: i64, step: i64) -> Vec<Aggregate> {
            let (lo, hi) = (floor_to(a, step), ceil_to(b, step));
            match Level::for_step(step) {
                None => bucketize(&self.raw(key, lo, hi), step),
                Some(level) => {
                    let hz = self.horizons().rollup[level.index()];
                    let pts: Vec<(i64, f64)> = self
                        .points
                        .get(&key)
                        .map(|m| m.range(lo..hi).filter(|(t, _)| level.bucket(**t) + level.ms() > hz).map(|(t, v)| (*t, *v)).collect())
                        .unwrap_or_default();
                    bucketize(&pts, step)
                }
            }
        }

        fn alerts_of(&self, tenant: &str, a: i64, b: i64) -> Vec<StoredAlert> {
            let h = self.horizons().alerts;
            let mut v: Vec<(i64, usize, StoredAlert)> = self
                .alerts
                .iter()
                .enumerate()
                .filter(|(_, (d, al))| DEVICES[*d].0 == tenant && al.ts >= a.max(h) && al.ts < b)
                .map(|(i, (d, al))| (al.ts, i, StoredAlert { device: DEVICES[*d].1.to_owned(), alert: al.clone() }))
                .collect();
            v.sort_by_key(|x| (x.0, x.1));
            v.into_iter().map(|x| x.2).collect()
        }

        fn summary(&self, tenant: &str, a: i64, b: i64, n: usize) -> AlertSummary {
            let mut counts: [HashMap<Vec<u8>, u64>; 8] = Default::default();
            let mut per_day: BTreeMap<i64, u64> = BTreeMap::new();
            for al in self.alerts_of(tenant, a, b) {
                dims_of(&al.device, &al.alert, |d, v| *counts[d as usize].entry(v.to_vec()).or_default() += 1);
                *per_day.entry(a + (al.alert.ts - a).div_euclid(86_400_000) * 86_400_000).or_default() += 1;
            }
            let top = |d: AlertDim| {
                let mut v: Vec<(Vec<u8>, u64)> = counts[d as usize].iter().map(|(k, c)| (k.clone(), *c)).collect();
                v.sort_by(|x, y| y.1.cmp(&x.1).then_with(|| x.0.cmp(&y.0)));
                v.truncate(n);
                v
            };
            let text = |d| top(d).into_iter().map(|(k, c)| (String::from_utf8(k).unwrap(), c)).collect::<Vec<_>>();
            AlertSummary {
                from: a.max(self.horizons().alerts).min(b),
                to: b,
                total: counts[0].values().sum(),
                by_signature: text(AlertDim::Signature),
                by_source: text(AlertDim::Source),
                by_src_addr: text(AlertDim::SrcAddr),
                by_dst_addr: text(AlertDim::DstAddr),
                by_category: text(AlertDim::Category),
                by_severity: top(AlertDim::Severity).into_iter().map(|(k, c)| (k[0], c)).collect(),
                by_device: text(AlertDim::Device),
                per_day: per_day.into_iter().collect(),
            }
        }
    }

    fn open(dir: &std::path::Path) -> Store {
        Store::open(dir, StoreOptions { initial_map_size: 1 << 20, retention: RETENTION, ..StoreOptions::default() }).unwrap()
    }

    fn check(store: &Store, m: &Model, a: i64, b: i64) -> Result<(), TestCaseError> {
        for (d, (tenant, device)) in DEVICES.iter().enumerate() {
            let series = store.series_of(device).unwrap();
            for (mi, name) in METRICS.iter().enumerate() {
                let id = series.iter().find(|s| s.0 == *name).map(|s| s.2);
                let key = (d, mi);
                let Some(id) = id else {
                    prop_assert!(m.raw(key, i64::MIN, i64::MAX).is_empty(), "series {device}/{name} missing");
                    continue;
                };
                prop_assert_eq!(
                    store.points(id, i64::MIN, i64::MAX).unwrap(),
                    m.raw(key, i64::MIN, i64::MAX),
                    "all of {}/{}",
                    device,
                    name
                );
                prop_assert_eq!(store.points(id, a, b).unwrap(), m.raw(key, a, b), "{}/{} in [{}, {})", device, name, a, b);
                prop_assert_eq!(store.count_series(id, a, b).unwrap(), m.raw(key, a, b).len() as u64);
                // Walked in five steps, a cursor gives each step exactly that step's points.
                let mut cursor = store.point_cursor(id, a, b);
                let mut from = a;
                for k in 1..=5i128 {
                    let to = i64::try_from(i128::from(a) + (i128::from(b) - i128::from(a)) * k / 5).unwrap_or(b);
                    let step = cursor.take_before(store, to).unwrap();
                    prop_assert_eq!(step, m.raw(key, from, to), "{}/{} cursor in [{}, {})", device, name, from, to);
                    from = to;
                }
                for step in [7_000, 60_000, 120_000, 3_600_000, 86_400_000] {
                    prop_assert_eq!(
                        store.points_step(id, a, b, step).unwrap(),
                        m.step(key, a, b, step),
                        "{}/{} step {} in [{}, {})",
                        device,
                        name,
                        step,
                        a,
                        b
                    );
                }
            }
            let want: u64 = (0..3).map(|mi| m.raw((d, mi), a, b).len() as u64).sum();
            prop_assert_eq!(store.count_points(device, a, b).unwrap(), want);
            let st = store.device_state_at(device, b).unwrap();
            let want = m.states.get(&d).and_then(|s| s.range(..=b).next_back()).map(|(_, l)| l.clone());
            prop_assert_eq!(st.license, want, "license of {} at {}", device, b);
            let _ = tenant;
        }
        for tenant in ["t1", "t2"] {
            prop_assert_eq!(store.alerts(tenant, i64::MIN, i64::MAX).unwrap(), m.alerts_of(tenant, i64::MIN, i64::MAX));
            prop_assert_eq!(store.alerts(tenant, a, b).unwrap(), m.alerts_of(tenant, a, b));
            prop_assert_eq!(
                store.alert_summary(tenant, a, b, 3).unwrap(),
                m.summary(tenant, a, b, 3),
                "summary of {} in [{}, {})",
                tenant,
                a,
                b
            );
            let whole = (0, SPAN + 1);
            prop_assert_eq!(store.alert_summary(tenant, whole.0, whole.1, 2).unwrap(), m.summary(tenant, whole.0, whole.1, 2));
        }
        Ok(())
    }

    fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
        let dir = tempfile::tempdir().unwrap();
        let mut store = open(dir.path());
        let mut m = Model::default();
        for op in ops {
            match op {
                Op::Commit { device, seq, points, alerts, license: lic } => {
                    let (tenant, dev) = DEVICES[device];
                    let mut records: Vec<Record> = points
                        .iter()
                        .map(|&(mi, ts, v)| {
                            let labels = if mi == 2 { vec![("mount".to_owned(), "/".to_owned())] } else { vec![] };
                            Record::Metric(Metric { ts, name: METRICS[mi].into(), labels, value: value_of(mi, v) })
                        })
                        .collect();
                    records.extend(alerts.iter().map(|&(ts, sig, src, sev)| Record::Alert(alert(ts, sig, src, sev))));
                    records.extend(lic.map(|ts| Record::License(license(ts))));
                    let batch = Batch { version: ampel_protocol::PROTOCOL_VERSION, seq, sender: None, records };
                    let res = store.commit(&[PendingBatch { identity: id(tenant, dev), batch, received_ms: 0 }]).unwrap();
                    let fresh = m.seen.entry(device).or_default().insert(seq);
                    prop_assert_eq!(&res[0].0, if fresh { &AckStatus::Committed } else { &AckStatus::Duplicate });
                    if fresh {
                        let h = m.horizons();
                        let mut expired = 0;
                        for (mi, ts, v) in points {
                            if ts < h.raw {
                                expired += 1;
                            } else {
                                m.points.entry((device, mi)).or_default().entry(ts).or_insert(value_of(mi, v));
                            }
                        }
                        for (ts, sig, src, sev) in alerts {
                            if ts < h.alerts {
                                expired += 1;
                            } else {
                                m.alerts.push((device, alert(ts, sig, src, sev)));
                            }
                        }
                        if let Some(ts) = lic {
                            m.states.entry(device).or_default().insert(ts, license(ts));
                        }
                        prop_assert_eq!(res[0].1.expired, expired);
                    }
                }
                Op::Fold { max_points, stop_after } => {
                    let limits = FoldLimits {
                        max_points,
                        max_alerts: 4,
                        max_entries: 5,
                        txn_budget: Duration::ZERO,
                        max_rollups_per_txn: 1,
                        stop_after_txns: stop_after,
                    };
                    store.fold(&limits).unwrap();
                }
                Op::Reopen => {
                    drop(store);
                    store = open(dir.path());
                }
                Op::Retention { advance } => {
                    // Production folds and applies retention on one thread; fold first here too.
                    store.fold_all().unwrap();
                    m.now += advance;
                    let report = store.apply_retention(m.now).unwrap();
                    let h = RETENTION.horizons(m.now, &m.horizons());
                    prop_assert_eq!(report.horizons, Some(h));
                    m.h = Some(h);
                    for s in m.states.values_mut() {
                        let keep_from = s.range(..h.states).next_back().map(|(t, _)| *t);
                        if let Some(t) = keep_from {
                            s.retain(|ts, _| *ts >= t);
                        }
                    }
                }
                Op::Check { a, b } => check(&store, &m, a, b)?,
            }
        }
        check(&store, &m, 0, SPAN)?;
        store.fold_all().unwrap();
        check(&store, &m, SPAN / 3, SPAN / 2)?;
        let raw: u64 = m.points.keys().map(|k| m.raw(*k, i64::MIN, i64::MAX).len() as u64).sum();
        prop_assert_eq!(store.total_points().unwrap(), raw);
        prop_assert_eq!(store.log_len().unwrap(), 0);
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
        #[test]
        fn every_query_agrees_with_a_naive_model(ops in proptest::collection::vec(op(), 1..40)) {
            run(ops)?;
        }
    }
}

/// kill -9 while the store commits and folds: a child process (this test binary, running one
/// ignored test) commits deterministic batches, prints each acknowledgement, and folds in tiny
/// rounds; the parent SIGKILLs it at a random moment, reopens the store and checks that every
/// acknowledged batch is there exactly once, and the unacknowledged one wholly or not at all.
mod crash {
    use std::collections::BTreeMap;
    use std::io::{BufRead, BufReader, Write};
    use std::process::{Command, Stdio};
    use std::time::Duration;

    use ampel_protocol::{AlertAction, AlertSource, Metric};
    use rand::Rng;

    use super::*;

    const CHILD_ENV: &str = "AMPEL_STORE_CRASH_CHILD";
    const DEVICES: usize = 4;
    const METRICS: usize = 4;
    const PER_METRIC: i64 = 30;

    /// The timestamp of point `i` of round `r`: rounds alternate between new and old times, so
    /// the fold both appends and merges into existing blocks.
    fn ts(r: u64, i: i64) -> i64 {
        let r = r as i64;
        if r % 2 == 0 { 10_000_000 + r * 1_000 + i * 10 } else { 10_000_000 - r * 1_000 + i * 10 }
    }

    fn group(r: u64) -> Vec<PendingBatch> {
        (0..DEVICES)
            .map(|d| {
                let mut records: Vec<Record> = (0..METRICS)
                    .flat_map(|m| {
                        (0..PER_METRIC).map(move |i| {
                            Record::Metric(Metric {
                                ts: ts(r, i),
                                name: format!("m{m}"),
                                labels: vec![],
                                value: (r as i64 * 7 + m as i64 + i) as f64,
                            })
                        })
                    })
                    .collect();
                records.push(Record::Alert(ampel_protocol::Alert::new(
                    ts(r, 0),
                    AlertSource::Ids,
                    1,
                    format!("round {r}"),
                    AlertAction::Allowed,
                )));
                PendingBatch {
                    identity: id("crash", &format!("dev-{d}")),
                    batch: Batch { version: 1, seq: r, sender: None, records },
                    received_ms: 0,
                }
            })
            .collect()
    }

    #[test]
    #[ignore = "the child process of kill_9_during_commits_and_folds"]
    fn crash_child() {
        let Ok(dir) = std::env::var(CHILD_ENV) else { return };
        let store = Store::open(std::path::Path::new(&dir), StoreOptions { initial_map_size: 1 << 20, ..StoreOptions::default() }).unwrap();
        let mut r = store.high_seq("dev-0").unwrap().map_or(0, |h| h + 1);
        let tiny = FoldLimits {
            max_points: 200,
            max_alerts: 2,
            max_entries: 3,
            txn_budget: Duration::ZERO,
            max_rollups_per_txn: 1,
            stop_after_txns: None,
        };
        let mut out = std::io::stdout();
        loop {
            let res = store.commit(&group(r)).unwrap();
            assert!(res.iter().all(|x| x.0 == AckStatus::Committed));
            writeln!(out, "ACK {r}").unwrap();
            out.flush().unwrap();
            store.fold(&tiny).unwrap();
            r += 1;
        }
    }

    #[test]
    fn kill_9_during_commits_and_folds() {
        let dir = tempfile::tempdir().unwrap();
        let mut rng = rand::rng();
        let mut acked: Option<u64> = None;
        for _ in 0..6 {
            let mut child = Command::new(std::env::current_exe().unwrap())
                .args(["--exact", "store::tests::crash::crash_child", "--ignored", "--nocapture", "--test-threads=1", "-q"])
                .env(CHILD_ENV, dir.path())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            let stdout = child.stdout.take().unwrap();
            let (tx, rx) = std::sync::mpsc::channel();
            let reader = std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    if let Some(r) = line.strip_prefix("ACK ") {
                        let _ = tx.send(r.parse::<u64>().unwrap());
                    }
                }
            });
            let wait_for = rng.random_range(2..12);
            for _ in 0..wait_for {
                let r = rx
                    .recv_timeout(Duration::from_secs(60))
                    .unwrap_or_else(|e| panic!("the child acknowledged nothing within a minute: {e}"));
                acked = Some(r);
            }
            std::thread::sleep(Duration::from_micros(rng.random_range(0..20_000)));
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
            reader.join().unwrap();
            while let Ok(r) = rx.try_recv() {
                acked = Some(r);
            }
        }
        let acked = acked.unwrap();

        let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
        // The batch after the last acknowledged one may have committed without its line.
        let high = store.high_seq("dev-0").unwrap().unwrap();
        assert!(high == acked || high == acked + 1, "acked {acked}, stored up to {high}");
        let check = |store: &Store| {
            for d in 0..DEVICES {
                let dev = format!("dev-{d}");
                assert_eq!(store.high_seq(&dev).unwrap(), Some(high));
                for m in 0..METRICS {
                    let mut want = BTreeMap::new();
                    for r in 0..=high {
                        for i in 0..PER_METRIC {
                            want.entry(ts(r, i)).or_insert((r as i64 * 7 + m as i64 + i) as f64);
                        }
                    }
                    let want: Vec<(i64, f64)> = want.into_iter().collect();
                    let got = store.metric(&dev, &format!("m{m}"), i64::MIN, i64::MAX).unwrap();
                    assert_eq!(got.len(), 1);
                    assert_eq!(got[0].1, want, "{dev} m{m}");
                    let hourly = store.metric_step(&dev, &format!("m{m}"), 0, 100_000_000, 3_600_000).unwrap();
                    let count: u64 = hourly[0].1.iter().map(|a| a.count).sum();
                    let sum: f64 = hourly[0].1.iter().map(|a| a.sum).sum();
                    assert_eq!(count, want.len() as u64, "{dev} m{m}: rollups count each point once");
                    assert_eq!(sum, want.iter().map(|p| p.1).sum::<f64>());
                }
            }
            let alerts = store.alerts("crash", i64::MIN, i64::MAX).unwrap();
            assert_eq!(alerts.len() as u64, DEVICES as u64 * (high + 1), "every acknowledged alert once");
            assert_eq!(store.alert_summary("crash", 0, 100_000_000, 1).unwrap().total, DEVICES as u64 * (high + 1));
        };
        check(&store);
        store.fold_all().unwrap();
        assert_eq!(store.log_len().unwrap(), 0);
        check(&store);
    }
}

#[test]
fn points_of_a_series_repeated_in_a_batch_are_still_checked_one_by_one() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    let now = crate::ingest::quic::now_ms();
    store.apply_retention(now).unwrap();
    let m = |ts: i64, name: &str, labels: &[(&str, &str)], value: f64| {
        let labels = labels.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        Record::Metric(Metric { ts, name: name.into(), labels, value })
    };
    let records = vec![
        m(now, "cpu", &[], 1.0),
        m(now, "disk", &[("mount", "/")], 2.0),
        // A known series does not make a bad value good.
        m(now + 1, "cpu", &[], f64::NAN),
        // Same name, other labels: another series.
        m(now + 1, "disk", &[("mount", "/var")], 3.0),
        m(now + 2, "cpu", &[], 4.0),
        m(now + 2, "bad\u{7}", &[], 5.0),
        // Older than the raw retention: expired, though its series is known.
        m(0, "cpu", &[], 6.0),
        m(now + 3, "disk", &[("mount", "/")], 7.0),
    ];
    let batch = Batch { version: 1, seq: 1, sender: None, records };
    let res = store.commit(&[PendingBatch { identity: id("acme", "fw-1"), batch, received_ms: now }]).unwrap();
    assert_eq!((res[0].1.points, res[0].1.malformed, res[0].1.expired), (5, 2, 1));
    let cpu = store.metric("fw-1", "cpu", i64::MIN, i64::MAX).unwrap();
    assert_eq!(cpu.iter().map(|(_, p)| p.iter().map(|p| p.1).collect::<Vec<_>>()).collect::<Vec<_>>(), vec![vec![1.0, 4.0]]);
    let disk = store.metric("fw-1", "disk", i64::MIN, i64::MAX).unwrap();
    let mut disk: Vec<(String, Vec<f64>)> = disk.iter().map(|(l, p)| (l[0].1.clone(), p.iter().map(|p| p.1).collect())).collect();
    disk.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(disk, vec![("/".to_owned(), vec![2.0, 7.0]), ("/var".to_owned(), vec![3.0])]);
}

#[test]
fn a_cursor_walking_day_by_day_gives_every_point_once_across_blocks_and_the_tail() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreOptions::default()).unwrap();
    let me = id("acme", "fw-1");
    let every = 30_000i64;
    let n = block::MAX_POINTS as usize * 2 + 1_000; // three blocks, folded
    let commit = |seq: u64, ts: &[i64]| {
        let records = ts.iter().map(|&t| Record::Metric(Metric { ts: t, name: "cpu".into(), labels: vec![], value: t as f64 })).collect();
        store
            .commit(&[PendingBatch { identity: me.clone(), batch: Batch { version: 1, seq, sender: None, records }, received_ms: 0 }])
            .unwrap();
    };
    let times: Vec<i64> = (0..n as i64).map(|i| i * every).collect();
    for (k, part) in times.chunks(10_000).enumerate() {
        commit(k as u64 + 1, part);
    }
    store.fold_all().unwrap();
    // Unfolded: points after the blocks and one between two stored points, read from the log.
    let end = n as i64 * every;
    commit(1_000, &[end + 5, end + every, 15]);
    let series = store.series_of("fw-1").unwrap()[0].2;
    let day = 86_400_000;
    let (from, to) = (7, end + 2 * every);
    let whole = store.points(series, from, to).unwrap();
    assert_eq!(whole.len(), n - 1 + 3, "every point after `from`, the three late ones with them");
    let mut cursor = store.point_cursor(series, from, to);
    let mut walked = Vec::new();
    let mut at = from;
    while at < to {
        let next = (at + day).min(to);
        let step = cursor.take_before(&store, next).unwrap();
        assert!(step.iter().all(|p| (at..next).contains(&p.0)), "a step holds only its own day");
        walked.extend(step);
        at = next;
    }
    assert_eq!(walked, whole);
    assert!(cursor.take_before(&store, i64::MAX).unwrap().is_empty());
}
