//! Making genpdf's output deterministic and small.
//!
//! printpdf 0.3 (under genpdf) writes three things a report must not depend on:
//! `/CreationDate` and `/ModDate` in the Info dictionary from the wall clock, and the two
//! `/ID` strings in the trailer from a process-wide counter (so even two renders in one process
//! differ). genpdf exposes none of them. It also stores every stream uncompressed in debug
//! builds and font files uncompressed always.
//!
//! [`finalize`] therefore reads the finished PDF back with lopdf (the same crate printpdf
//! wrote it with), sets the dates from `generated_at_ms`, deflates every stream that has no
//! filter yet, derives the ID from the content, and writes it again. Objects are written in id
//! order, so equal input gives equal bytes.
//!
//! lopdf 0.26 has a parser advisory (RUSTSEC-2026-0187: deep nesting overflows the stack). The
//! parser only ever sees the document genpdf has just written: device text reaches it as glyph
//! codes inside content streams, which are not parsed, and the title is a fixed string.

use std::io::Write as _;

use flate2::Compression;
use flate2::write::ZlibEncoder;
use lopdf::{Document, Object, StringFormat};

use super::ReportError;

/// Deflate level: 6 is within a few percent of 9 here at a fraction of the time.
const LEVEL: u32 = 6;

fn pdf_err(e: impl std::fmt::Display) -> ReportError {
    ReportError::Pdf(e.to_string())
}

/// A PDF date (`D:YYYYMMDDHHmmSS+00'00'`) for `ms`; the epoch if jiff cannot represent it.
fn pdf_date(ms: i64) -> String {
    let ts = jiff::Timestamp::from_millisecond(ms).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    let stamp = jiff::fmt::strtime::format("%Y%m%d%H%M%S", ts).unwrap_or_else(|_| "19700101000000".to_owned());
    format!("D:{stamp}+00'00'")
}

/// 64-bit FNV-1a, to derive a stable document id from the content.
fn fnv1a(seed: u64, data: &[u8]) -> u64 {
    data.iter().fold(seed, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01B3))
}

/// Rewrites genpdf's output: fixed dates, compressed streams, content-derived id.
pub(crate) fn finalize(raw: &[u8], generated_at_ms: i64) -> Result<Vec<u8>, ReportError> {
    let mut doc = Document::load_mem(raw).map_err(pdf_err)?;
    let date = pdf_date(generated_at_ms);

    let info = doc.trailer.get(b"Info").and_then(Object::as_reference);
    if let Ok(info) = info {
        let dict = doc.get_object_mut(info).and_then(Object::as_dict_mut).map_err(pdf_err)?;
        dict.set("CreationDate", Object::string_literal(date.clone()));
        dict.set("ModDate", Object::string_literal(date.clone()));
        dict.set("Producer", Object::string_literal("Ampel (genpdf)"));
    }

    let (mut h1, mut h2) = (0xcbf2_9ce4_8422_2325u64, 0x6c62_272e_07bb_0142u64);
    for object in doc.objects.values_mut() {
        if let Object::Stream(stream) = object {
            h1 = fnv1a(h1, &stream.content);
            h2 = fnv1a(h2, &stream.content);
            if stream.dict.get(b"Filter").is_ok() {
                continue;
            }
            let mut z = ZlibEncoder::new(Vec::new(), Compression::new(LEVEL));
            z.write_all(&stream.content).map_err(pdf_err)?;
            let packed = z.finish().map_err(pdf_err)?;
            if packed.len() < stream.content.len() {
                stream.dict.set("Filter", Object::Name(b"FlateDecode".to_vec()));
                stream.set_content(packed);
            }
        }
    }
    h1 = fnv1a(h1, date.as_bytes());
    let id: Vec<u8> = h1.to_be_bytes().into_iter().chain(h2.to_be_bytes()).collect();
    doc.trailer.set(
        "ID",
        Object::Array(vec![Object::String(id.clone(), StringFormat::Hexadecimal), Object::String(id, StringFormat::Hexadecimal)]),
    );

    let mut out = Vec::with_capacity(raw.len() / 2);
    doc.save_to(&mut out).map_err(pdf_err)?;
    Ok(out)
}
