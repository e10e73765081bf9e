//! Hostile peers against the real collector: forged log lines, floods of refusals.

use std::time::Duration;

use ampel_tests::{Deployment, free_tcp_port, http_request};

/// A counter's value in `/metrics` text.
pub fn metric(text: &str, name: &str) -> Option<u64> {
    text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

#[test]
fn a_forged_newline_in_an_enrollment_field_appears_escaped_in_the_log() {
    use ampel_protocol::enroll::{self, ALPN_ENROLL, EnrollRequest};
    let d = Deployment::new("");
    let mut collector = d.serve();
    let addr = format!("127.0.0.1:{}", d.port).parse().unwrap();
    let forged = "2026-01-01T00:00:00.000000Z ERROR ampel_collector: forged entry";
    let request = EnrollRequest::Enroll {
        id: "0123456789abcdef".into(),
        secret: "0".repeat(64),
        tenant: format!("acme\n{forged}"),
        device: "fw\x1b[2J\x07\r-1".into(),
        csr: vec![1, 2, 3],
    };
    let bytes = ampel_protocol::frame::encode_frame(&enroll::encode(&request).unwrap(), &enroll::ENROLL_LIMITS).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let answer = rt.block_on(ampel_tests::anonymous(addr, &d.pki_dir().join("ca.pem"), ALPN_ENROLL, bytes));
    assert!(answer.is_ok(), "the collector answers the refusal: {answer:?}");
    collector.wait_for_log("enrollment refused", Duration::from_secs(10));
    let log = collector.log();
    assert!(log.contains(&format!("acme\\n{forged}")), "the newline is written as \\n:\n{log}");
    assert!(!log.lines().any(|l| l.starts_with(forged)), "no forged entry of its own:\n{log}");
    assert!(log.contains("fw\\u{1b}[2J\\u{7}\\r-1"), "ESC, BEL and CR escaped:\n{log}");
    assert!(!log.contains(['\x1b', '\x07', '\r']), "no raw control characters:\n{log:?}");
    collector.stop();
}

#[test]
fn rejected_batches_are_logged_at_a_bounded_rate_per_device_and_all_counted() {
    let http = free_tcp_port();
    let d = Deployment::new(&format!("[http]\nlisten = \"127.0.0.1:{http}\"\n"));
    let dev = d.issue("acme", "fw-1");
    let mut collector = d.serve();
    let addr = format!("127.0.0.1:{}", d.port).parse().unwrap();
    // Frames of a valid length whose payload is not a batch: each is refused, the stream goes on.
    let garbage: Vec<Vec<u8>> = (0..40).map(|i| ampel_protocol::frame::encode_frame(&[0xff, i], &Default::default()).unwrap()).collect();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (acks, _) = rt.block_on(ampel_tests::send_frames_on_one_stream(addr, &dev, "fw-1", &garbage)).unwrap();
    assert_eq!(acks.len(), 40);
    collector.wait_for_log("batch rejected", Duration::from_secs(5));
    let logged = collector.log().matches("batch rejected").count();
    assert_eq!(logged, ampel_collector::logthrottle::PER_WINDOW as usize, "{}", collector.log());
    let (status, body) = http_request(http, "GET", "/metrics", "").unwrap();
    assert_eq!(status, 200);
    assert_eq!(metric(&body, "ampel_ingest_batches_rejected_total"), Some(40), "{body}");
    assert_eq!(metric(&body, "ampel_log_lines_suppressed_total"), Some(35), "{body}");
    collector.stop();
}
