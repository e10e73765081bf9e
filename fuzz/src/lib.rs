//! Fuzz targets: every decoder and parser that reads bytes someone else chose.
//!
//! The harnesses are plain functions over `&[u8]` with no fuzzer in them, so that the
//! workspace builds and tests them like any code: `tests/corpus.rs` replays every committed
//! input (`fuzz/corpus/<target>/`) through its target on every `cargo test`, some 7 s in a
//! debug build for the ~11 600 inputs — the smoke `tests/run` runs. The coverage-guided fuzzing itself is `fuzz/run`:
//! AFL++ through `cargo afl` on the stable toolchain (`fuzz/afl/`, outside the workspace
//! because the `afl` crate only builds under `cargo afl`).
//!
//! A target panics only where a property is broken (a round trip that does not come back);
//! everything a hostile input may legitimately cause is an `Err` and ignored.
//!
//! # Layout
//!
//! - [`TARGETS`]: name → harness.
//! - one `fn` per target below.

use std::path::Path;

use ampel_agent::sources::tail::LineParser;
use ampel_agent::sources::{clamav, eve, license, mail, netdev, nft, text::Counts};
use ampel_protocol::{Limits, codec, enroll, frame};

/// A harness: takes any bytes; panics only on a broken property.
pub type Harness = fn(&[u8]);

/// Every target: its name (the corpus folder) and its harness.
pub const TARGETS: &[(&str, Harness)] = &[
    ("frame_cbor", frame_cbor),
    ("enroll_request", enroll_request),
    ("enroll_token", enroll_token),
    ("eve", eve_lines),
    ("clamav", clamav_lines),
    ("mail", mail_lines),
    ("rspamd", rspamd),
    ("nft", nft_json),
    ("netdev", proc_net_dev),
    ("license", license_file),
    ("agent_config", agent_config),
    ("collector_config", collector_config),
    ("link_token", link_token),
    ("report_pdf", report_pdf),
];

/// The harness of `name`.
pub fn target(name: &str) -> Option<Harness> {
    TARGETS.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
}

/// A fixed "now" (2026-03-30): parsers that date lines need one, and a fuzzer wants runs to
/// repeat.
const NOW_MS: i64 = 1_774_800_000_000;

/// A frame as the QUIC listener reads it: header, bounded length, batch decode; whatever
/// decodes must encode, decode and encode to the same bytes. Acks too.
pub fn frame_cbor(data: &[u8]) {
    let limits = Limits::default();
    let Some((header, payload)) = data.split_first_chunk::<{ frame::HEADER_LEN }>() else { return };
    if frame::payload_len(*header, &limits).is_err() {
        return;
    }
    // Compared as bytes: a NaN value is not equal to itself, but encodes the same.
    if let Ok(batch) = codec::decode_batch(payload, &limits)
        && let Ok(again) = codec::encode_batch(&batch)
    {
        let back = codec::decode_batch(&again, &limits).map(|b| codec::encode_batch(&b));
        assert!(matches!(&back, Ok(Ok(bytes)) if *bytes == again), "a batch did not survive a round trip: {back:?}");
    }
    let _ = codec::decode_ack(payload, &limits);
}

/// An enrollment request and response, as the collector and the agent decode them.
pub fn enroll_request(data: &[u8]) {
    if let Ok(req) = enroll::decode_request(data) {
        let _ = format!("{req:?}");
    }
    let _ = enroll::decode_response(data);
}

/// An enrollment token as `ampel-agent enroll --token` parses it.
pub fn enroll_token(data: &[u8]) {
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = enroll::Token::parse(s);
    }
}

fn lines(parser: &mut dyn LineParser, data: &[u8]) {
    let mut out = Vec::new();
    for line in data.split(|b| *b == b'\n') {
        parser.line(line, NOW_MS, &mut out);
    }
    parser.flush(NOW_MS, 60_000, &mut out);
}

/// Suricata EVE lines.
pub fn eve_lines(data: &[u8]) {
    lines(&mut eve::EveParser::default(), data);
}

/// ClamAV log lines.
pub fn clamav_lines(data: &[u8]) {
    lines(&mut clamav::ClamavParser::default(), data);
}

/// Postfix / amavis mail log lines.
pub fn mail_lines(data: &[u8]) {
    lines(&mut mail::MailParser::default(), data);
}

/// rspamd's history JSON.
pub fn rspamd(data: &[u8]) {
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = mail::parse_rspamd(s, &mut Counts::default());
    }
}

/// `nft -j list counters` output.
pub fn nft_json(data: &[u8]) {
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = nft::parse(s);
    }
}

/// `/proc/net/dev`.
pub fn proc_net_dev(data: &[u8]) {
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = netdev::parse(s);
    }
}

/// The licence file.
pub fn license_file(data: &[u8]) {
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = license::parse(s, "license.toml", NOW_MS);
    }
}

/// `agent.toml`. Paths resolve below a folder that does not exist: nothing is read.
pub fn agent_config(data: &[u8]) {
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = ampel_agent::AgentConfig::parse(s, Path::new("/nonexistent/ampel-fuzz/agent.toml"));
    }
}

/// `collector.toml`, with its checks across fields. Paths resolve below a folder that does
/// not exist.
pub fn collector_config(data: &[u8]) {
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = ampel_collector::config::Config::parse(Path::new("/nonexistent/ampel-fuzz/collector.toml"), s);
    }
}

/// Opt-in and download link tokens as the HTTP listener checks them; a subject signed must
/// verify to itself.
pub fn link_token(data: &[u8]) {
    use ampel_collector::recipients::{LinkKey, TokenKind};
    let key = LinkKey::from_bytes(&[7; 32]);
    let Ok(s) = std::str::from_utf8(data) else { return };
    for kind in [TokenKind::Confirm, TokenKind::Unsubscribe, TokenKind::Download] {
        let _ = key.verify(s, kind, 0);
    }
    if s.len() <= 320 {
        let token = key.sign(TokenKind::Download, s, i64::MAX);
        assert_eq!(key.verify(&token, TokenKind::Download, 0).as_deref(), Ok(s), "a signed subject did not verify to itself");
    }
}

/// The PDF renderer over a report whose peer-supplied strings — tenant, device ids, host names,
/// models, operating systems, agent versions, signatures, addresses, file names — are the
/// input's NUL-separated pieces (lossy UTF-8: control characters, right-to-left text, 500-byte
/// tokens, emoji) and whose counts and language are its bytes. Any data renders
/// (`ReportError` is a fault of the build, not of the data).
pub fn report_pdf(data: &[u8]) {
    use ampel_collector::report::{self, Lang, synthetic};
    // Bounded like a report's real strings (agents send at most `max_string`): a fuzzer's
    // megabyte token would only measure the font subsetter.
    let mut pieces = data.split(|b| *b == 0).map(|p| String::from_utf8_lossy(&p[..p.len().min(600)]).into_owned());
    let mut next = |fallback: &str| pieces.next().unwrap_or_else(|| fallback.to_owned());
    // One device, one day in 6-hour steps: every section and table, few chart points, so an
    // exec costs a render and not a long report.
    let mut r = synthetic::rich(1, 1, 6 * 3_600_000);
    r.tenant = next("acme");
    for d in &mut r.devices {
        d.device = next("fw-1");
        d.hostname = next("gw");
        d.model = next("UTM");
        d.os = next("Linux");
        d.agent_version = next("0.1.0");
    }
    for f in &mut r.findings {
        f.device = Some(next("fw-1"));
        f.subject = Some(next("/var"));
    }
    for stats in [&mut r.threats, &mut r.malware, &mut r.mail] {
        for (i, list) in [&mut stats.signatures, &mut stats.sources, &mut stats.destinations, &mut stats.categories, &mut stats.devices]
            .into_iter()
            .enumerate()
        {
            let count = data.get(i).map_or(3, |b| u64::from(*b) * 1_000_003);
            list.push((next("ET POLICY"), count));
        }
    }
    for row in &mut r.file_hashes {
        row.name = Some(next("invoice.pdf.exe"));
        row.verdict = Some(next("Win.Test.EICAR_HDB-1"));
    }
    // The language from the input too: each exec renders one.
    let lang = if data.first().is_some_and(|b| b % 2 == 1) { Lang::De } else { Lang::En };
    let pdf = report::render_in(&r, lang);
    assert!(matches!(&pdf, Ok(bytes) if bytes.starts_with(b"%PDF-")), "a report did not render: {:?}", pdf.err());
}
