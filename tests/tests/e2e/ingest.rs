//! Data from agents reaches the store under the identity of their certificate — and only then.

use std::time::Duration;

use ampel_protocol::{AckStatus, Batch, Metric, PROTOCOL_VERSION, Record};
use ampel_tests::{Deployment, send_batches, send_frames_on_one_stream, wait_until};

fn points(d: &Deployment, device: &str) -> u64 {
    d.device(device).and_then(|v| v["points"].as_u64()).unwrap_or(0)
}

#[test]
fn points_from_an_agent_arrive_under_the_tenant_of_its_certificate() {
    let d = Deployment::new("");
    let dev = d.issue("acme", "fw-1");
    let mut collector = d.serve();
    let mut agent = d.agent(&dev, "fw-1", "250ms");
    let arrived = wait_until(Duration::from_secs(30), || (points(&d, "fw-1") >= 20).then_some(()));
    assert!(arrived.is_some(), "no points arrived within 30 s\nagent log:\n{}\ncollector log:\n{}", agent.log(), collector.log());
    assert!(agent.stop(), "agent did not stop cleanly:\n{}", agent.log());
    assert!(collector.stop(), "collector did not stop cleanly:\n{}", collector.log());
    let row = d.device("fw-1").unwrap();
    assert_eq!(row["tenant"], "acme");
    assert!(row["last_seen_ms"].as_i64().unwrap() >= row["first_seen_ms"].as_i64().unwrap());
    assert_eq!(row["hostname"].as_str().map(str::is_empty), Some(false), "inventory stored: {row}");
    // The table view tells the same.
    let table = d.collector(&["devices", "--tenant", "acme"]).ok();
    assert!(table.contains("fw-1") && table.contains("acme"), "{table}");
}

#[test]
fn a_client_certificate_from_another_ca_is_refused_and_nothing_is_stored() {
    let d = Deployment::new("");
    d.issue("acme", "fw-1");
    // A second, unrelated deployment issues a certificate with the same names.
    let rogue = Deployment::new("");
    let rogue_dev = rogue.issue("acme", "fw-1");
    // Make the rogue agent trust the real collector so only the client side is wrong.
    std::fs::copy(d.pki_dir().join("ca.pem"), rogue_dev.join("ca.pem")).unwrap();
    let mut collector = d.serve();
    let rogue_cfg = rogue.agent_config(&rogue_dev, "fw-1", "250ms");
    let text = std::fs::read_to_string(&rogue_cfg).unwrap().replace(&format!(":{}", rogue.port), &format!(":{}", d.port));
    std::fs::write(&rogue_cfg, text).unwrap();
    let mut agent = ampel_tests::Proc::start("ampel-agent", "rogue", &["run", "--config", rogue_cfg.to_str().unwrap()]);
    std::thread::sleep(Duration::from_secs(4));
    agent.stop();
    collector.stop();
    assert_eq!(points(&d, "fw-1"), 0, "rogue data stored!\ncollector log:\n{}", collector.log());
    let log = agent.log().to_lowercase();
    assert!(
        log.contains("certificate") || log.contains("refused") || log.contains("alert"),
        "the agent should say why it is refused:\n{}",
        agent.log()
    );
}

fn recent_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64 - 3_600_000
}

fn claiming_batch(seq: u64) -> Batch {
    Batch {
        version: PROTOCOL_VERSION,
        seq,
        sender: Some("fw-2".into()),
        records: vec![Record::Metric(Metric {
            // Recent: a point older than the raw retention (35 days) would be counted as
            // expired and not stored.
            ts: recent_ms() + seq as i64,
            name: "cpu.usage_percent".into(),
            labels: vec![("tenant".into(), "globex".into()), ("device".into(), "fw-2".into())],
            value: 42.0,
        })],
    }
}

#[test]
fn a_payload_claiming_another_device_or_tenant_lands_only_under_its_own_identity() {
    let d = Deployment::new("");
    let dev1 = d.issue("acme", "fw-1");
    d.issue("globex", "fw-2");
    let mut collector = d.serve();
    let addr = format!("127.0.0.1:{}", d.port).parse().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let acks = rt
        .block_on(send_batches(
            addr,
            &dev1.join("ca.pem"),
            &dev1.join("fw-1.pem"),
            &dev1.join("fw-1.key"),
            &[claiming_batch(1), claiming_batch(2), claiming_batch(1)],
        ))
        .unwrap_or_else(|e| panic!("{e}\ncollector log:\n{}", collector.log()));
    let statuses: Vec<AckStatus> = acks.into_iter().map(|a| a.status).collect();
    assert_eq!(statuses, vec![AckStatus::Committed, AckStatus::Committed, AckStatus::Duplicate]);
    collector.stop();
    assert_eq!(points(&d, "fw-1"), 2, "points land under the certificate's device");
    assert_eq!(points(&d, "fw-2"), 0, "nothing lands under the claimed device");
    assert_eq!(d.device("fw-1").unwrap()["tenant"], "acme");
    assert!(collector.log().contains("payload names another sender"), "the mismatch is logged:\n{}", collector.log());
}

#[test]
fn a_certificate_whose_tenant_differs_from_the_registry_is_rejected() {
    let d = Deployment::new("");
    d.issue("acme", "fw-1");
    // Same CA, same device id, other tenant: issued behind the registry's back.
    let pki = ampel_collector::pki::Pki::open(&d.pki_dir()).unwrap();
    let forged =
        pki.issue_device(&"globex".parse().unwrap(), &"fw-1".parse().unwrap(), 1).unwrap().write_to(&d.dir.path().join("forged")).unwrap();
    let mut collector = d.serve();
    let addr = format!("127.0.0.1:{}", d.port).parse().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let acks = rt.block_on(send_batches(addr, &forged.ca, &forged.cert, &forged.key, &[claiming_batch(1)])).unwrap();
    collector.stop();
    assert!(matches!(&acks[0].status, AckStatus::Rejected(r) if r.contains("another tenant")), "{acks:?}");
    assert_eq!(points(&d, "fw-1"), 0);
}

#[test]
fn one_stream_carries_frame_after_frame_and_a_broken_length_ends_only_that_stream() {
    use ampel_protocol::{Limits, codec, frame};
    let d = Deployment::new("");
    let dev = d.issue("acme", "fw-1");
    let mut collector = d.serve();
    let addr = format!("127.0.0.1:{}", d.port).parse().unwrap();
    let good = |seq| frame::encode_frame(&codec::encode_batch(&claiming_batch(seq)).unwrap(), &Limits::default()).unwrap();
    // A frame of the right length whose payload is not CBOR: refused, the stream goes on.
    let garbage = frame::encode_frame(&[0xff; 16], &Limits::default()).unwrap();
    // A length far above the limit: refused, and the stream cannot be read further.
    let mut oversized = (u32::MAX).to_be_bytes().to_vec();
    oversized.extend_from_slice(&[0; 8]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (acks, ended_early) = rt
        .block_on(send_frames_on_one_stream(addr, &dev, "fw-1", &[good(1), good(2), good(1), garbage, good(3), oversized, good(4)]))
        .unwrap_or_else(|e| panic!("{e}\ncollector log:\n{}", collector.log()));
    let statuses = format!("{acks:?}");
    assert_eq!(acks.len(), 6, "{statuses:?}");
    assert_eq!(
        acks.iter().take(3).map(|a| (a.seq, a.status.clone())).collect::<Vec<_>>(),
        [(1, AckStatus::Committed), (2, AckStatus::Committed), (1, AckStatus::Duplicate)]
    );
    assert!(matches!(acks[3].status, AckStatus::Rejected(_)), "{statuses:?}");
    assert_eq!((acks[4].seq, acks[4].status.clone()), (3, AckStatus::Committed));
    assert!(matches!(acks[5].status, AckStatus::Rejected(_)), "{statuses:?}");
    assert!(ended_early, "after a length it cannot trust, the collector ends the stream");
    // The connection survives; batch 4 was never taken.
    collector.stop();
    assert_eq!(points(&d, "fw-1"), 3);
}
