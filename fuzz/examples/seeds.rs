//! Writes the generated seeds of the binary targets into `fuzz/corpus/` (the text targets'
//! seeds are copies of the test fixtures and shipped configs): `cargo run -p ampel-fuzz
//! --example seeds`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use ampel_protocol::enroll::{self, EnrollRequest, EnrollResponse};
use ampel_protocol::{Batch, Limits, Metric, PROTOCOL_VERSION, Record, codec, frame};

fn put(target: &str, name: &str, bytes: &[u8]) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus").join(target);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name), bytes).unwrap();
}

fn main() {
    let metric = Record::Metric(Metric {
        ts: 1_774_800_000_000,
        name: "cpu.percent".into(),
        labels: vec![("core".into(), "0".into())],
        value: 12.5,
    });
    let batches = [
        Batch { version: PROTOCOL_VERSION, seq: 1, sender: Some("fw-1".into()), records: vec![metric.clone()] },
        Batch { version: PROTOCOL_VERSION, seq: 2, sender: None, records: vec![metric.clone(), metric] },
        Batch { version: PROTOCOL_VERSION, seq: 3, sender: None, records: vec![] },
    ];
    for (i, b) in batches.iter().enumerate() {
        let framed = frame::encode_frame(&codec::encode_batch(b).unwrap(), &Limits::default()).unwrap();
        put("frame_cbor", &format!("batch-{i}"), &framed);
    }
    let ack = codec::encode_ack(&ampel_protocol::Ack { seq: 7, status: ampel_protocol::AckStatus::Rejected("no".into()) }).unwrap();
    put("frame_cbor", "ack", &frame::encode_frame(&ack, &Limits::default()).unwrap());

    let req = EnrollRequest::Enroll {
        id: "0123456789abcdef".into(),
        secret: "ab".repeat(32),
        tenant: "acme".into(),
        device: "fw-1".into(),
        csr: vec![0x30, 0x82, 0x01, 0x00],
    };
    put("enroll_request", "enroll", &enroll::encode(&req).unwrap());
    put("enroll_request", "renew", &enroll::encode(&EnrollRequest::Renew { csr: vec![0x30, 0x03, 0x02, 0x01, 0x00] }).unwrap());
    let issued =
        EnrollResponse::Issued { cert_pem: "-----BEGIN CERTIFICATE-----\n".into(), ca_pem: String::new(), not_after: 1, shard: None };
    put("enroll_request", "issued", &enroll::encode(&issued).unwrap());
    put("enroll_request", "refused", &enroll::encode(&EnrollResponse::Refused("unknown token".into())).unwrap());

    let token = format!("ampel1:acme:fw-1:0123456789abcdef:{}:{}", "ab".repeat(32), "cd".repeat(32));
    put("enroll_token", "token", token.as_bytes());

    let key = ampel_collector::recipients::LinkKey::from_bytes(&[7; 32]);
    use ampel_collector::recipients::TokenKind;
    put("link_token", "confirm", key.sign(TokenKind::Confirm, "ops@example.org\n1774800000000", i64::MAX).as_bytes());
    put("link_token", "download", key.sign(TokenKind::Download, "42", 1).as_bytes());
    put("link_token", "subject", b"ops@example.org");

    // The renderer: NUL-separated strings as peers send them.
    put("report_pdf", "plain", b"acme\0fw-1\0gw1.acme.example\0UTM RC100\0Debian GNU/Linux 12\0 0.1.0");
    put("report_pdf", "empty", b"");
    let hostile = [
        "A".repeat(600),
        "\u{1b}[31mred\u{1b}[0m\r\nforged: line\u{7}".to_owned(),
        "\u{202e}txt.exe\u{202c} \u{0645}\u{0631}\u{062d}\u{0628}\u{0627}".to_owned(),
        "\u{1f525}\u{1f4a5} \u{4e2d}\u{6587} Gr\u{00fc}\u{00df}e \u{0301}\u{0301}\u{0301}".to_owned(),
        "%PDF-1.4 ) ( \\ endstream endobj".to_owned(),
        "x".repeat(80) + " " + &"y".repeat(80),
    ];
    put("report_pdf", "hostile", hostile.join("\0").as_bytes());
}
