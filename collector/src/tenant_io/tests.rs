//! Export and import as an operator moving a tenant sees them.

#![allow(clippy::unwrap_used)]

mod delivery;

use super::*;
use crate::store::{Aggregate, DeviceRecord, PendingBatch, StoreOptions};
use ampel_protocol::{
    AckStatus, Alert, AlertAction, AlertSource, Batch, DeviceId, Identity, Inventory, License, Metric, PROTOCOL_VERSION, Record,
};

const T0: i64 = 1_780_000_000_000;
const HOUR: i64 = 3_600_000;

/// One collector's data directory: its store, delivery store and archive.
struct Shard {
    dir: PathBuf,
    store: Store,
    delivery: DeliveryStore,
    archive: Archive,
}

impl Shard {
    fn d(&self) -> Delivery<'_> {
        Delivery { store: &self.delivery, archive: &self.archive }
    }
}

fn shard(dir: &Path) -> Shard {
    Shard {
        dir: dir.to_owned(),
        store: Store::open(&dir.join("store"), StoreOptions::default()).unwrap(),
        delivery: DeliveryStore::open(&dir.join("delivery")).unwrap(),
        archive: Archive::new(&dir.join("archive")),
    }
}

fn pending(tenant: &str, device: &str, seq: u64, records: Vec<Record>) -> PendingBatch {
    let identity = Identity { tenant: TenantId::new(tenant).unwrap(), device: DeviceId::new(device).unwrap() };
    PendingBatch { identity, batch: Batch { version: PROTOCOL_VERSION, seq, sender: None, records }, received_ms: T0 }
}

fn metric(ts: i64, name: &str, labels: &[(&str, &str)], value: f64) -> Record {
    let labels = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    Record::Metric(Metric { ts, name: name.into(), labels, value })
}

fn alert(ts: i64, sig: &str) -> Record {
    Record::Alert(Alert::new(ts, AlertSource::Ids, 1, sig.into(), AlertAction::Allowed))
}

fn license(ts: i64) -> Record {
    Record::License(License {
        ts,
        product: "UTM".into(),
        model: String::new(),
        serial: "S1".into(),
        licensed: true,
        expires: Some(ts + 86_400_000),
        features: vec![],
        unknown_reason: None,
    })
}

fn inventory(ts: i64) -> Record {
    Record::Inventory(Inventory {
        ts,
        hostname: "fw".into(),
        model: String::new(),
        firmware: String::new(),
        os: "Debian".into(),
        kernel: String::new(),
        agent_version: "0.1".into(),
        uptime_s: 5,
    })
}

/// acme's two devices and globex's one, with folded data, data still in the log, alerts,
/// licence and inventory history.
fn source(dir: &Path) -> Shard {
    let shard = shard(dir);
    let s = &shard.store;
    let cpu = |dev: &str, seq: u64, from: i64| {
        let records = (0..200).map(|i| metric(from + i * 60_000, "cpu.usage_percent", &[], (i % 97) as f64)).collect();
        pending("acme", dev, seq, records)
    };
    s.commit(&[
        cpu("fw-1", 1, T0),
        pending("acme", "fw-1", 2, vec![metric(T0, "disk.used", &[("mount", "/var")], 1.5), alert(T0 + 5, "ET SCAN"), license(T0)]),
        pending("acme", "fw-2", 7, vec![inventory(T0), alert(T0 + 9, "ET POLICY"), metric(T0 + 1, "mem", &[], 3.0)]),
        pending("globex", "gx-1", 1, vec![metric(T0, "cpu.usage_percent", &[], 9.0), alert(T0, "ET OTHER")]),
    ])
    .unwrap();
    s.fold_all().unwrap();
    // Left in the ingest log: a later stretch, a repeated timestamp (the stored one wins), an
    // alert, a newer licence.
    s.commit(&[
        cpu("fw-1", 3, T0 + 200 * 60_000),
        pending("acme", "fw-1", 4, vec![metric(T0, "disk.used", &[("mount", "/var")], 99.0), alert(T0 + 7, "ET SCAN"), license(T0 + 9)]),
    ])
    .unwrap();
    delivery::fill_source(&shard);
    shard
}

/// A series as readers see it: device, name, labels, raw points, hour and day buckets.
type SeriesView = (String, String, Vec<(String, String)>, Vec<(i64, f64)>, Vec<Aggregate>, Vec<Aggregate>);

/// Everything of a tenant a reader of the store can see.
#[derive(Debug, PartialEq)]
struct View {
    devices: Vec<(String, DeviceRecord)>,
    series: Vec<SeriesView>,
    alerts: Vec<crate::store::StoredAlert>,
    summary: crate::store::AlertSummary,
    states: Vec<crate::store::DeviceState>,
    seqs: Vec<Option<u64>>,
}

fn view(s: &Store, tenant: &str) -> View {
    let devices = s.devices(Some(tenant)).unwrap();
    let mut series = Vec::new();
    let (mut states, mut seqs) = (Vec::new(), Vec::new());
    for (d, _) in &devices {
        for (name, labels, id) in s.series_of(d).unwrap() {
            let pts = s.points(id, i64::MIN, i64::MAX).unwrap();
            let hours = s.points_step(id, T0 - 10 * HOUR, T0 + 20 * HOUR, HOUR).unwrap();
            let days = s.points_step(id, T0 - 86_400_000 * 5, T0 + 86_400_000 * 5, 86_400_000).unwrap();
            series.push((d.clone(), name, labels, pts, hours, days));
        }
        states.push(s.device_state_at(d, T0 + 5).unwrap());
        states.push(s.device_state_at(d, i64::MAX).unwrap());
        seqs.push(s.high_seq(d).unwrap());
    }
    let alerts = s.alerts(tenant, i64::MIN, i64::MAX).unwrap();
    let summary = s.alert_summary(tenant, T0 - 86_400_000, T0 + 86_400_000, 10).unwrap();
    View { devices, series, alerts, summary, states, seqs }
}

fn export_to(s: &Shard, tenant: &str, dir: &Path) -> PathBuf {
    let out = dir.join(format!("{tenant}.ampel-tenant"));
    export(&s.store, s.d(), &BTreeSet::new(), &TenantId::new(tenant).unwrap(), Some("eu-1"), T0, &out).unwrap();
    out
}

fn import_into(s: &Shard, file: &Path) -> Result<Imported, TenantIoError> {
    import(&s.store, s.d(), file)
}

#[test]
fn export_then_import_carries_every_kind_of_record_and_nothing_of_other_tenants() {
    let tmp = tempfile::tempdir().unwrap();
    let a = source(&tmp.path().join("a"));
    let file = export_to(&a, "acme", tmp.path());
    let (header, totals) = verify(&file).unwrap();
    assert_eq!((header.tenant.as_str(), header.shard.as_deref()), ("acme", Some("eu-1")));
    assert_eq!((totals.devices, totals.points, totals.alerts, totals.states), (2, 402, 3, 3));

    let b = shard(&tmp.path().join("b"));
    let done = import_into(&b, &file).unwrap();
    assert_eq!((done.added.devices, done.added.points, done.added.alerts, done.added.states), (2, 402, 3, 3));
    let before = view(&a.store, "acme");
    assert_eq!((before.alerts.len(), before.series.len(), before.summary.total), (3, 3, 3));
    assert_eq!(view(&b.store, "acme"), before);
    assert!(b.store.devices(Some("globex")).unwrap().is_empty());
    // Folding either side changes nothing readers see: the log's tail travelled as if folded.
    b.store.fold_all().unwrap();
    assert_eq!(view(&b.store, "acme"), before);
    a.store.fold_all().unwrap();
    assert_eq!(view(&a.store, "acme"), before);
    // The dedupe marks came along: a batch the old shard stored is a duplicate here...
    let resent = b.store.commit(&[pending("acme", "fw-1", 3, vec![metric(T0 + 1, "x", &[], 1.0)])]).unwrap();
    assert_eq!(resent[0].0, AckStatus::Duplicate);
    // ...and one it never saw is stored.
    let fresh = b.store.commit(&[pending("acme", "fw-2", 8, vec![metric(T0 + 2, "mem", &[], 4.0)])]).unwrap();
    assert_eq!(fresh[0].0, AckStatus::Committed);
}

#[test]
fn importing_the_same_file_twice_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let a = source(&tmp.path().join("a"));
    let file = export_to(&a, "acme", tmp.path());
    let b = shard(&tmp.path().join("b"));
    import_into(&b, &file).unwrap();
    // The tenant goes on streaming to its new shard before the file is imported again.
    b.store
        .commit(&[pending("acme", "fw-1", 5, vec![metric(T0 + 500 * 60_000, "cpu.usage_percent", &[], 1.0), alert(T0 + 11, "ET NEW")])])
        .unwrap();
    b.store.fold_all().unwrap();
    let once = view(&b.store, "acme");
    let again = import_into(&b, &file).unwrap();
    assert_eq!((again.added.points, again.added.buckets, again.added.alerts, again.added.states), (0, 0, 0, 0));
    assert!(again.added.kept > 0);
    assert_eq!(view(&b.store, "acme"), once);
    assert_eq!(b.store.high_seq("fw-1").unwrap(), Some(5));
}

fn assert_untouched(b: &Shard) {
    assert!(b.store.devices(None).unwrap().is_empty());
    assert_eq!(b.store.total_points().unwrap(), 0);
    assert!(b.delivery.reports().unwrap().is_empty() && b.delivery.recipients().unwrap().is_empty());
    assert!(b.delivery.consent_log().unwrap().is_empty());
    assert!(std::fs::read_dir(b.dir.join("archive")).map_or(true, |mut d| d.next().is_none()), "no file left in the archive");
}

#[test]
fn a_damaged_file_is_refused_and_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let a = source(&tmp.path().join("a"));
    let file = export_to(&a, "acme", tmp.path());
    let good = std::fs::read(&file).unwrap();
    let b = shard(&tmp.path().join("b"));
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("a flipped byte", {
            let mut x = good.clone();
            let mid = x.len() / 2;
            x[mid] ^= 0x40;
            x
        }),
        ("cut short", good[..good.len() - 40].to_vec()),
        ("no checksum", good[..good.len() - 32].to_vec()),
        ("bytes after the end", [good.clone(), vec![0]].concat()),
        ("an oversized frame", [good[..12].to_vec(), (MAX_FRAME + 1).to_be_bytes().to_vec(), good[16..].to_vec()].concat()),
        ("not an export", b"hello world, not a tenant".to_vec()),
    ];
    for (what, bytes) in cases {
        let bad = tmp.path().join("bad");
        std::fs::write(&bad, &bytes).unwrap();
        let e = import_into(&b, &bad).unwrap_err();
        assert!(matches!(e, TenantIoError::Damaged { .. } | TenantIoError::NotAnExport { .. }), "{what}: {e}");
        assert_untouched(&b);
    }
}

#[test]
fn a_file_of_another_format_version_is_refused_and_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let a = source(&tmp.path().join("a"));
    let file = export_to(&a, "acme", tmp.path());
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[8..12].copy_from_slice(&3u32.to_be_bytes());
    std::fs::write(&file, &bytes).unwrap();
    let b = shard(&tmp.path().join("b"));
    let e = import_into(&b, &file).unwrap_err();
    assert!(matches!(e, TenantIoError::ForeignVersion { found: 3, .. }), "{e}");
    assert_untouched(&b);
}

#[test]
fn an_import_clashing_with_a_device_of_another_tenant_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let a = source(&tmp.path().join("a"));
    let file = export_to(&a, "acme", tmp.path());
    let b = shard(&tmp.path().join("b"));
    b.store.commit(&[pending("globex", "fw-2", 1, vec![metric(T0, "mem", &[], 1.0)])]).unwrap();
    let e = import_into(&b, &file).unwrap_err();
    assert!(matches!(e, TenantIoError::Store(StoreError::ForeignDevice { .. })), "{e}");
    assert!(b.store.devices(Some("acme")).unwrap().is_empty());
    assert_eq!(b.store.total_points().unwrap(), 1);
}

#[test]
fn an_export_never_overwrites_a_file() {
    let tmp = tempfile::tempdir().unwrap();
    let a = source(&tmp.path().join("a"));
    let file = export_to(&a, "acme", tmp.path());
    let e = export(&a.store, a.d(), &BTreeSet::new(), &TenantId::new("acme").unwrap(), None, T0, &file).unwrap_err();
    assert!(matches!(e, TenantIoError::Io { .. }), "{e}");
    verify(&file).unwrap();
}

#[test]
fn deleting_a_moved_tenant_leaves_nothing_of_it_and_everything_of_the_others() {
    let tmp = tempfile::tempdir().unwrap();
    let a = source(&tmp.path().join("a"));
    let globex = view(&a.store, "globex");
    let gone = a.store.delete_tenant("acme").unwrap();
    assert_eq!((gone.devices, gone.series, gone.points, gone.alerts), (2, 3, 402, 3));
    let empty = view(&a.store, "acme");
    assert!(empty.devices.is_empty() && empty.alerts.is_empty() && empty.summary.total == 0, "{empty:?}");
    for d in ["fw-1", "fw-2"] {
        assert!(a.store.series_of(d).unwrap().is_empty() && a.store.high_seq(d).unwrap().is_none());
        assert_eq!(a.store.device_state_at(d, i64::MAX).unwrap(), crate::store::DeviceState::default());
    }
    assert_eq!(view(&a.store, "globex"), globex);
    assert_eq!(a.store.total_points().unwrap(), 1);
    // The same devices may come back: as new devices, with nothing of the old data.
    let again = a.store.commit(&[pending("acme", "fw-1", 1, vec![metric(T0, "cpu.usage_percent", &[], 7.0)])]).unwrap();
    assert_eq!(again[0].0, AckStatus::Committed);
    a.store.fold_all().unwrap();
    let (_, _, id) = a.store.series_of("fw-1").unwrap().remove(0);
    assert_eq!(a.store.points(id, i64::MIN, i64::MAX).unwrap(), [(T0, 7.0)]);
}
