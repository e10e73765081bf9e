//! The delivery part of a move: archived reports with their PDFs, runs, recipients and their
//! consent log, from a shard with two tenants into one with reports of its own.

use std::collections::BTreeMap;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;
use crate::archive::{file_name, summary_name};
use crate::recipients::{LinkKey, Links, bare, confirmed, record_invitation};
use crate::report::{Depth, Edition, Lang};
use crate::schedule::store::{ArchivedEdition, merge_recipient};
use crate::schedule::{ArchiveStatus, RecipientState, Resend};

const SLOT1: i64 = T0 + 86_400_000;
const SLOT2: i64 = SLOT1 + 7 * 86_400_000;
const DE_SUMMARY: Edition = Edition { lang: Lang::De, depth: Depth::Summary };

fn pdf(seed: u8, len: usize) -> Vec<u8> {
    let mut p = b"%PDF-1.4\n".to_vec();
    p.extend((0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)));
    p
}

fn record(tenant: &str, slot_ms: i64, created_ms: i64, file: &str, bytes: usize, to: &[&str]) -> ArchiveRecord {
    ArchiveRecord {
        id: 0,
        job: "weekly".into(),
        tenant: tenant.into(),
        slot_ms,
        period_start_ms: slot_ms - 7 * 86_400_000,
        period_end_ms: slot_ms,
        period_label: format!("week-{slot_ms}"),
        created_ms,
        file: file.into(),
        bytes: bytes as u64,
        light: "yellow".into(),
        score: 71,
        late: false,
        mode: "attachment".into(),
        recipients: to.iter().map(|s| s.to_string()).collect(),
        status: ArchiveStatus::Sent,
        attempts: 1,
        last_error: None,
        message_id: Some(format!("<{created_ms}@ampel>")),
        link_reason: None,
        resends: Vec::new(),
        editions: Vec::new(),
        delivered: BTreeMap::new(),
    }
}

/// Archives `rec` with `pdf` as its file; returns its id.
fn archive(s: &Shard, rec: ArchiveRecord, pdf: &[u8]) -> u64 {
    s.archive.write(&rec.file, pdf).unwrap();
    s.archive.write(&summary_name(&rec.file), format!("{} findings", rec.tenant).as_bytes()).unwrap();
    s.delivery.add_report(rec).unwrap()
}

fn consent(s: &Shard, address: &str, state: RecipientState, at_ms: i64) {
    let event =
        ConsentEvent { at_ms, address: address.into(), event: state.as_str().into(), source: "192.0.2.7".into(), detail: String::new() };
    s.delivery.set_recipient_state(address, state, event).unwrap();
}

fn state(s: &Shard, address: &str) -> Option<RecipientState> {
    s.delivery.recipient(address).unwrap().map(|r| r.state)
}

/// Source shard eu-1: acme's report 1 (two editions, a resend) and 3 (a PDF of three
/// pieces), globex's report 2; acme's and globex's recipients.
pub(super) fn fill_source(s: &Shard) {
    let f1 = file_name("weekly", SLOT1, "acme", "week-1");
    let mut r1 = record("acme", SLOT1, SLOT1 + 60_000, &f1, 4_000, &["Ops <ops@acme.example>", "Chef <chef@acme.example>"]);
    let de = f1.replace(".pdf", "-de-summary.pdf");
    s.archive.write(&de, &pdf(2, 1_000)).unwrap();
    s.archive.write(&summary_name(&de), "acme Befunde".as_bytes()).unwrap();
    r1.editions = vec![
        ArchivedEdition { edition: Edition::default(), file: f1.clone(), bytes: 4_009 },
        ArchivedEdition { edition: DE_SUMMARY, file: de, bytes: 1_009 },
    ];
    r1.delivered.insert("Chef <chef@acme.example>".into(), DE_SUMMARY);
    r1.resends.push(Resend {
        at_ms: SLOT1 + 3_600_000,
        by: "cli (root)".into(),
        mode: "link".into(),
        link_reason: Some("size".into()),
        recipients: vec!["Ops <ops@acme.example>".into()],
        status: ArchiveStatus::Sent,
        error: None,
    });
    assert_eq!(archive(s, r1, &pdf(1, 4_000)), 1);
    let g = file_name("weekly", SLOT1, "globex", "week-1");
    assert_eq!(archive(s, record("globex", SLOT1, SLOT1 + 70_000, &g, 10, &["gx@globex.example"]), &pdf(9, 10)), 2);
    let big = (2 * FILE_PIECE + 5) as usize;
    let f3 = file_name("weekly", SLOT2, "acme", "week-2");
    assert_eq!(archive(s, record("acme", SLOT2, SLOT2 + 60_000, &f3, big, &["Ops <ops@acme.example>"]), &pdf(3, big)), 3);
    for (address, st, at) in [
        ("ops@acme.example", RecipientState::Invited, 10),
        ("ops@acme.example", RecipientState::Confirmed, 20),
        ("chef@acme.example", RecipientState::Confirmed, 20),
        ("gone@acme.example", RecipientState::Unsubscribed, 30),
        ("boss@acme.example", RecipientState::Invited, 40),
        ("gx@globex.example", RecipientState::Confirmed, 20),
    ] {
        consent(s, address, st, at);
    }
}

/// The addresses of eu-1's jobs covering acme: two its reports never went to.
fn acme_jobs() -> BTreeSet<String> {
    ["gone@acme.example", "boss@acme.example"].into_iter().map(String::from).collect()
}

fn export_acme(a: &Shard, dir: &Path) -> PathBuf {
    let out = dir.join("acme.ampel-tenant");
    export(&a.store, a.d(), &acme_jobs(), &TenantId::new("acme").unwrap(), Some("eu-1"), T0, &out).unwrap();
    out
}

/// Target shard eu-2: initech's report 1, and its own report 2 of acme's first slot under
/// the same file name as eu-1's (it ran the job before the move); it invited chef (not yet
/// confirmed) and has gone confirmed, before gone unsubscribed at eu-1.
fn target(dir: &Path) -> Shard {
    let b = shard(dir);
    let i = file_name("weekly", SLOT1, "initech", "week-1");
    assert_eq!(archive(&b, record("initech", SLOT1, SLOT1 + 1, &i, 5, &["it@initech.example"]), &pdf(7, 5)), 1);
    let f1 = file_name("weekly", SLOT1, "acme", "week-1");
    assert_eq!(archive(&b, record("acme", SLOT1, SLOT1 + 99, &f1, 6, &[]), &pdf(8, 6)), 2);
    consent(&b, "chef@acme.example", RecipientState::Invited, 50);
    consent(&b, "gone@acme.example", RecipientState::Confirmed, 25);
    b
}

/// The length of every frame of an export file.
fn frame_lengths(bytes: &[u8]) -> Vec<u64> {
    let (mut at, end, mut out) = (12, bytes.len() - 32, Vec::new());
    while at < end {
        let len = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        out.push(len as u64);
        at += 4 + len;
    }
    assert_eq!(at, end);
    out
}

fn files_in(s: &Shard) -> Vec<String> {
    let mut out: Vec<String> =
        std::fs::read_dir(s.dir.join("archive")).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    out.sort();
    out
}

#[test]
fn reports_runs_pdfs_and_opt_ins_move_without_touching_the_targets_own() {
    let tmp = tempfile::tempdir().unwrap();
    let a = source(&tmp.path().join("a"));
    let file = export_acme(&a, tmp.path());
    let (_, totals) = verify(&file).unwrap();
    let big = 2 * FILE_PIECE + 5 + 9;
    assert_eq!(
        (totals.reports, totals.runs, totals.files, totals.file_bytes),
        (2, 2, 6, 4_009 + 1_009 + big + 38),
        "three PDFs, each with its mail summary"
    );
    // ops, chef (delivered to), gone, boss (the jobs); not globex's.
    assert_eq!((totals.recipients, totals.consent), (4, 5));
    // The PDF of 8 MiB went in pieces: no frame is much larger than one.
    let lengths = frame_lengths(&std::fs::read(&file).unwrap());
    assert!(lengths.iter().all(|l| *l <= FILE_PIECE + 64), "{lengths:?}");
    assert_eq!(lengths.iter().filter(|l| **l > FILE_PIECE / 2).count(), 2, "two full pieces, then the rest");

    let b = target(&tmp.path().join("b"));
    let own = b.delivery.reports().unwrap();
    let own_pdf = b.archive.read(&own[1].file).unwrap();
    let done = import_into(&b, &file).unwrap();
    let m = &done.delivery.merge;
    assert_eq!((m.reports, m.reports_kept, m.runs, m.runs_kept), (2, 0, 1, 1));
    assert_eq!(m.remapped, [(1, 3), (3, 4)], "both ids were taken here");
    assert_eq!((m.recipients, m.recipients_changed, m.consent), (2, 2, 5));
    assert_eq!((done.delivery.files, done.delivery.files_kept), (6, 0));
    let f1 = file_name("weekly", SLOT1, "acme", "week-1");
    let f1_here = f1.replace(".pdf", "-from-eu-1.pdf");
    assert_eq!(
        done.delivery.renamed,
        [(f1.clone(), f1_here.clone()), (summary_name(&f1), summary_name(&f1_here))],
        "the summary follows its PDF"
    );

    // The target's own reports and file are as they were.
    let all = b.delivery.reports().unwrap();
    assert_eq!(all[..2], own[..]);
    assert_eq!(b.archive.read(&f1).unwrap(), own_pdf);
    // The moved records are the source's, under their ids and file names here.
    for (src_id, id) in [(1, 3), (3, 4)] {
        let mut want = a.delivery.report(src_id).unwrap().unwrap();
        want.id = id;
        crate::schedule::store::renamed(&mut want, &[(f1.clone(), f1_here.clone())].into());
        let got = b.delivery.report(id).unwrap().unwrap();
        assert_eq!(got, want);
        for (theirs, ours) in files_of(&a.delivery.report(src_id).unwrap().unwrap()).iter().zip(files_of(&got)) {
            assert_eq!(b.archive.read(&ours).unwrap(), a.archive.read(theirs).unwrap(), "{ours}");
            assert_eq!(b.archive.read(&summary_name(&ours)).unwrap(), a.archive.read(&summary_name(theirs)).unwrap(), "{ours}");
        }
    }
    // What `report resend` and the console look up: the run made here stays this shard's.
    assert_eq!(b.delivery.report_of_run("weekly", SLOT1, "acme").unwrap().unwrap().id, 2);
    assert_eq!(b.delivery.report_of_run("weekly", SLOT2, "acme").unwrap().unwrap().id, 4);
    let acme: Vec<u64> = b.delivery.reports().unwrap().iter().filter(|r| r.tenant == "acme").map(|r| r.id).collect();
    assert_eq!(acme, [2, 3, 4]);
    assert!(b.delivery.reports().unwrap().iter().all(|r| r.tenant != "globex"));

    // Confirmed stays confirmed and is not invited again; an unsubscribe stays one.
    assert_eq!(state(&b, "ops@acme.example"), Some(RecipientState::Confirmed));
    assert!(!record_invitation(&b.delivery, "ops@acme.example", "weekly", T0).unwrap());
    let boxes: Vec<String> = ["Ops <ops@acme.example>", "Chef <chef@acme.example>", "gone@acme.example"].map(String::from).into();
    assert_eq!(confirmed(&b.delivery, "weekly", &boxes).unwrap(), boxes[..2], "chef's confirmation beats eu-2's later invitation");
    assert_eq!(state(&b, "gone@acme.example"), Some(RecipientState::Unsubscribed), "the later unsubscribe wins");
    assert_eq!(state(&b, "boss@acme.example"), Some(RecipientState::Invited));
    assert_eq!(state(&b, "gx@globex.example"), None);
    let imported: Vec<(String, String)> =
        b.delivery.consent_log().unwrap().into_iter().skip(2).map(|e| (bare(&e.address), e.source)).collect();
    assert_eq!(imported.len(), 5);
    assert!(imported.iter().all(|(a, s)| a.ends_with("@acme.example") && s == "shard eu-1: 192.0.2.7"), "{imported:?}");

    // Again: nothing new, nothing renamed twice.
    let files = files_in(&b);
    let again = import_into(&b, &file).unwrap();
    let m = &again.delivery.merge;
    assert_eq!((m.reports, m.reports_kept, m.runs, m.runs_kept, m.recipients, m.recipients_changed, m.consent), (0, 2, 0, 2, 0, 0, 0));
    assert_eq!((again.delivery.files, again.delivery.files_kept), (0, 6));
    assert_eq!(files_in(&b), files);
    assert_eq!(b.delivery.reports().unwrap().len(), 4);
}

#[test]
fn the_recipients_act_beats_the_collectors_and_the_later_act_wins() {
    let r = |state, changed_ms, removed: &[&str]| Recipient {
        address: "x@example.org".into(),
        state,
        invited_ms: 1,
        changed_ms,
        reminded_ms: None,
        removed_jobs: removed.iter().map(|s| s.to_string()).collect(),
    };
    use RecipientState::*;
    let merged = |ours: &Recipient, theirs: &Recipient| merge_recipient(ours, theirs).unwrap_or_else(|| ours.clone()).state;
    assert_eq!(merged(&r(Invited, 90, &[]), &r(Confirmed, 10, &[])), Confirmed, "a later invitation does not undo a confirmation");
    assert_eq!(merged(&r(Confirmed, 10, &[]), &r(Expired, 90, &[])), Confirmed);
    assert_eq!(merged(&r(Confirmed, 10, &[]), &r(Unsubscribed, 20, &[])), Unsubscribed);
    assert_eq!(merged(&r(Unsubscribed, 10, &[]), &r(Confirmed, 5, &[])), Unsubscribed, "an older confirmation never resubscribes");
    assert_eq!(merged(&r(Unsubscribed, 10, &[]), &r(Confirmed, 20, &[])), Confirmed, "confirmed a newer invitation");
    assert_eq!(merged(&r(Confirmed, 10, &[]), &r(Unsubscribed, 10, &[])), Unsubscribed, "a tie unsubscribes");
    assert_eq!(merged(&r(Invited, 10, &[]), &r(Expired, 20, &[])), Expired);
    assert_eq!(merge_recipient(&r(Confirmed, 10, &["a"]), &r(Confirmed, 10, &["a"])), None, "the same: nothing to write");
    let both = merge_recipient(&r(Confirmed, 10, &["a"]), &r(Invited, 5, &["b"])).unwrap();
    assert_eq!((both.state, both.removed_jobs), (Confirmed, vec!["a".to_owned(), "b".to_owned()]), "removals from both sides");
}

#[test]
fn a_file_damaged_after_its_check_leaves_no_pdf_and_no_record() {
    let tmp = tempfile::tempdir().unwrap();
    let a = source(&tmp.path().join("a"));
    let file = export_acme(&a, tmp.path());
    let mut bytes = std::fs::read(&file).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&file, &bytes).unwrap();
    let b = shard(&tmp.path().join("b"));
    // The delivery pass alone, as if the file changed after `verify` and the store's pass.
    let header = Header { tenant: TenantId::new("acme").unwrap(), shard: Some("eu-1".into()), created_ms: T0 };
    let e = import_delivery(b.d(), &file, &header).unwrap_err();
    assert!(matches!(e, TenantIoError::Damaged { what: Damage::Checksum, .. }), "{e}");
    assert_untouched(&b);
}

/// A file as the previous release wrote it: format 1, no delivery part.
fn write_v1(s: &Store, tenant: &str, out: &Path) {
    #[derive(Serialize)]
    enum V1Frame {
        Header(Header),
        Item(Box<Item>),
        End(V1Totals),
    }
    #[derive(Serialize)]
    struct V1Totals {
        items: u64,
        devices: u64,
        points: u64,
        buckets: u64,
        alerts: u64,
        states: u64,
    }
    let mut bytes = MAGIC.to_vec();
    bytes.extend(1u32.to_be_bytes());
    let mut frame = |f: &V1Frame| {
        let body = serde_cbor::to_vec(f).unwrap();
        bytes.extend((body.len() as u32).to_be_bytes());
        bytes.extend(body);
    };
    frame(&V1Frame::Header(Header { tenant: TenantId::new(tenant).unwrap(), shard: Some("eu-1".into()), created_ms: T0 }));
    let mut items = Vec::new();
    let c = s
        .export_tenant(tenant, &mut |i| {
            items.push(i);
            Ok(())
        })
        .unwrap();
    let n = items.len() as u64;
    items.into_iter().for_each(|i| frame(&V1Frame::Item(Box::new(i))));
    frame(&V1Frame::End(V1Totals {
        items: n,
        devices: c.devices,
        points: c.points,
        buckets: c.buckets,
        alerts: c.alerts,
        states: c.states,
    }));
    let sum = ring::digest::digest(&ring::digest::SHA256, &bytes);
    bytes.extend_from_slice(sum.as_ref());
    std::fs::write(out, bytes).unwrap();
}

#[test]
fn a_file_of_the_previous_format_still_imports() {
    let tmp = tempfile::tempdir().unwrap();
    let a = source(&tmp.path().join("a"));
    let file = tmp.path().join("acme.v1");
    write_v1(&a.store, "acme", &file);
    let b = target(&tmp.path().join("b"));
    let before = b.delivery.reports().unwrap();
    let done = import_into(&b, &file).unwrap();
    assert_eq!((done.totals.points, done.added.points, done.totals.reports), (402, 402, 0));
    assert_eq!(done.delivery, DeliveryImported::default());
    assert_eq!(view(&b.store, "acme"), view(&a.store, "acme"));
    assert_eq!(b.delivery.reports().unwrap(), before);
}

async fn get(addr: std::net::SocketAddr, target: &str) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    (text.split_whitespace().nth(1).unwrap().parse().unwrap(), text)
}

#[tokio::test]
async fn delete_removes_the_archive_part_and_old_links_say_where_it_went() {
    let tmp = tempfile::tempdir().unwrap();
    let a = source(&tmp.path().join("a"));
    let key = LinkKey::from_bytes(&[5; 32]);
    let (_shutdown, rx) = tokio::sync::watch::channel(false);
    let http_state = crate::http::HttpState {
        connections: Default::default(),
        store: a.delivery.clone(),
        key: key.clone(),
        archive: a.archive.clone(),
        delivery: Default::default(),
        ingest: None,
        trust: None,
        console: None,
    };
    let limits = crate::http::HttpConfig::default().limits(crate::rlimit::nofile());
    let http = crate::http::HttpServer::start("127.0.0.1:0".parse().unwrap(), limits, http_state, rx).unwrap().local_addr;
    let links = Links { public_url: String::new(), key };
    let link = |id, edition, lang| links.download_url(id, edition, T0 * 2, lang);
    assert_eq!(get(http, &link(1, 1, Lang::En)).await.0, 200, "before the move");

    let globex = a.archive.read(&a.delivery.report(2).unwrap().unwrap().file).unwrap();
    let removed = delete_archive(a.d(), &TenantId::new("acme").unwrap(), Some("eu-2"), T0).unwrap();
    assert_eq!((removed.reports, removed.files), (2, 3));
    let g = file_name("weekly", SLOT1, "globex", "week-1");
    assert_eq!(files_in(&a), [g.clone(), summary_name(&g)]);
    assert_eq!(a.archive.read(&files_in(&a)[0]).unwrap(), globex);
    assert_eq!(a.delivery.reports().unwrap().iter().map(|r| r.id).collect::<Vec<_>>(), [2]);
    assert!(a.delivery.report_of_run("weekly", SLOT2, "acme").unwrap().is_none());
    assert_eq!(a.delivery.report_of_run("weekly", SLOT1, "globex").unwrap().unwrap().id, 2);
    assert_eq!(state(&a, "ops@acme.example"), Some(RecipientState::Confirmed), "opt-ins stay: other tenants may use them");

    // A link mailed before the move: a page that says where the report went, in its language.
    let (status, page) = get(http, &link(1, 1, Lang::En)).await;
    assert_eq!(status, 410);
    assert!(page.contains("moved with the other reports of acme") && page.contains("shard eu-2"), "{page}");
    let (status, page) = get(http, &link(3, 0, Lang::De)).await;
    assert!(status == 410 && page.contains("umgezogen (Shard eu-2)"), "{page}");
    assert_eq!(get(http, &link(2, 0, Lang::En)).await.0, 200, "globex's report is still here");
    // Its id is never given again: the link can never fetch another tenant's report.
    let next = a.delivery.add_report(record("globex", SLOT2, SLOT2, "g2.pdf", 1, &[])).unwrap();
    assert_eq!(next, 4);
    assert_eq!(get(http, &link(3, 0, Lang::En)).await.0, 410);
    // A tenant deleted with no shard to go to: its links find nothing, and say so.
    delete_archive(a.d(), &TenantId::new("globex").unwrap(), None, T0).unwrap();
    let (status, page) = get(http, &link(2, 0, Lang::En)).await;
    assert!(status == 404 && page.contains("no longer in the archive"), "{page}");
}
