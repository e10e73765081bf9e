//! The one module that knows the wire bytes are CBOR.
//!
//! Decoding never trusts a peer: [`scan`] walks the item structure first, without allocating,
//! and refuses anything over [`Limits`] — too many bytes, containers longer than the bytes that
//! follow could hold, strings over the limit, nesting deeper than the model needs, indefinite
//! lengths. Only a frame that passes is handed to serde.

use serde::{Serialize, de::DeserializeOwned};

use crate::model::{Ack, Batch};

/// Bounds applied to every decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest encoded message, in bytes.
    pub max_frame: usize,
    /// Most records in one batch (and most items in any one array or map).
    pub max_records: usize,
    /// Longest text or byte string, in bytes.
    pub max_string: usize,
    /// Deepest nesting of arrays, maps and tags.
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_frame: 4 << 20, max_records: 50_000, max_string: 16 << 10, max_depth: 8 }
    }
}

/// Why a message could not be encoded or decoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CodecError {
    /// The message is larger than [`Limits::max_frame`].
    #[error("message of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// Its size.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Nesting deeper than [`Limits::max_depth`].
    #[error("nesting deeper than {max} levels")]
    TooDeep {
        /// The limit.
        max: usize,
    },
    /// A string longer than [`Limits::max_string`].
    #[error("string of {len} bytes exceeds the limit of {max} bytes")]
    StringTooLong {
        /// Its length.
        len: u64,
        /// The limit.
        max: usize,
    },
    /// An array or map longer than [`Limits::max_records`] or than the remaining bytes allow.
    #[error("container of {len} items exceeds the limit of {max}")]
    TooManyItems {
        /// Its declared length.
        len: u64,
        /// The limit.
        max: usize,
    },
    /// Bytes ended inside an item.
    #[error("message truncated")]
    Truncated,
    /// Bytes after the one top-level item.
    #[error("{0} trailing bytes after the message")]
    Trailing(usize),
    /// CBOR the codec does not accept (indefinite lengths, reserved values).
    #[error("unsupported CBOR: {0}")]
    Unsupported(&'static str),
    /// Well-formed CBOR that is not a valid message.
    #[error("invalid message: {0}")]
    Invalid(String),
    /// The batch carries a format version this build cannot read.
    #[error("unsupported batch version {0}")]
    Version(u16),
}

/// Encodes any protocol message.
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, CodecError> {
    serde_cbor::to_vec(value).map_err(|e| CodecError::Invalid(e.to_string()))
}

/// Decodes a message after [`scan`] has accepted its structure.
pub fn decode<T: DeserializeOwned>(bytes: &[u8], limits: &Limits) -> Result<T, CodecError> {
    scan(bytes, limits)?;
    serde_cbor::from_slice(bytes).map_err(|e| CodecError::Invalid(e.to_string()))
}

/// Encodes a batch.
pub fn encode_batch(batch: &Batch) -> Result<Vec<u8>, CodecError> {
    encode(batch)
}

/// Decodes a batch: bounded, version-checked, record count checked.
pub fn decode_batch(bytes: &[u8], limits: &Limits) -> Result<Batch, CodecError> {
    let batch: Batch = decode(bytes, limits)?;
    if batch.version == 0 || batch.version > crate::model::PROTOCOL_VERSION {
        return Err(CodecError::Version(batch.version));
    }
    if batch.records.len() > limits.max_records {
        return Err(CodecError::TooManyItems { len: batch.records.len() as u64, max: limits.max_records });
    }
    Ok(batch)
}

/// Encodes an acknowledgement.
pub fn encode_ack(ack: &Ack) -> Result<Vec<u8>, CodecError> {
    encode(ack)
}

/// Decodes an acknowledgement.
pub fn decode_ack(bytes: &[u8], limits: &Limits) -> Result<Ack, CodecError> {
    decode(bytes, limits)
}

/// Walks the CBOR item structure of `bytes` without allocating and checks it against `limits`.
///
/// Exactly one top-level item must fill `bytes`. Every declared length is checked against the
/// bytes that remain, so no later stage can be tricked into reserving memory the message does not
/// back with bytes.
pub fn scan(bytes: &[u8], limits: &Limits) -> Result<(), CodecError> {
    if bytes.len() > limits.max_frame {
        return Err(CodecError::TooLarge { len: bytes.len(), max: limits.max_frame });
    }
    // `pending[d]` counts the items still expected inside the container at depth d. A fixed
    // array keeps the walk free of allocation; depth is bounded by `max_depth` anyway.
    const STACK: usize = 64;
    let max_depth = limits.max_depth.min(STACK - 1);
    let mut pending = [0u64; STACK];
    let mut depth = 0usize;
    pending[0] = 1;
    let mut pos = 0usize;
    loop {
        // Close finished containers.
        while pending[depth] == 0 {
            if depth == 0 {
                return if pos == bytes.len() { Ok(()) } else { Err(CodecError::Trailing(bytes.len() - pos)) };
            }
            depth -= 1;
        }
        pending[depth] -= 1;
        let initial = *bytes.get(pos).ok_or(CodecError::Truncated)?;
        pos += 1;
        let major = initial >> 5;
        let info = initial & 0x1f;
        let arg: u64 = match info {
            0..=23 => u64::from(info),
            24..=27 => {
                let n = 1usize << (info - 24);
                let raw = bytes.get(pos..pos + n).ok_or(CodecError::Truncated)?;
                pos += n;
                raw.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b))
            }
            31 if major == 7 => return Err(CodecError::Unsupported("unexpected break")),
            31 => return Err(CodecError::Unsupported("indefinite length")),
            _ => return Err(CodecError::Unsupported("reserved additional information")),
        };
        let remaining = (bytes.len() - pos) as u64;
        match major {
            0 | 1 => {}
            2 | 3 => {
                if arg > limits.max_string as u64 {
                    return Err(CodecError::StringTooLong { len: arg, max: limits.max_string });
                }
                if arg > remaining {
                    return Err(CodecError::Truncated);
                }
                pos += arg as usize;
            }
            4 | 5 => {
                let items = if major == 5 { arg.checked_mul(2).ok_or(CodecError::Truncated)? } else { arg };
                if arg > limits.max_records as u64 {
                    return Err(CodecError::TooManyItems { len: arg, max: limits.max_records });
                }
                // Every item takes at least one byte.
                if items > remaining {
                    return Err(CodecError::Truncated);
                }
                if items > 0 {
                    if depth + 1 > max_depth {
                        return Err(CodecError::TooDeep { max: limits.max_depth });
                    }
                    depth += 1;
                    pending[depth] = items;
                }
            }
            6 => {
                if depth + 1 > max_depth {
                    return Err(CodecError::TooDeep { max: limits.max_depth });
                }
                depth += 1;
                pending[depth] = 1;
            }
            _ => {
                // Simple values and floats: the argument bytes were the whole item.
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::model::*;
    use proptest::prelude::*;

    fn sample() -> Batch {
        Batch {
            version: PROTOCOL_VERSION,
            seq: 7,
            sender: Some("fw-1".into()),
            records: vec![
                Record::Metric(Metric { ts: 1, name: "cpu.usage_percent".into(), labels: vec![], value: 12.5 }),
                Record::Metric(Metric {
                    ts: 2,
                    name: "disk.used_percent".into(),
                    labels: vec![("mount".into(), "/var".into())],
                    value: 80.0,
                }),
                Record::Alert(Alert {
                    ts: 3,
                    source: AlertSource::Ids,
                    severity: 1,
                    signature_id: Some(2_024_792),
                    signature: "ET MALWARE Ünïcode".into(),
                    category: Some("A Network Trojan was detected".into()),
                    action: AlertAction::Blocked,
                    src: Some("10.0.0.1".into()),
                    dst: Some("192.0.2.7".into()),
                    detail: None,
                    ..Alert::new(0, AlertSource::Ids, 1, String::new(), AlertAction::Blocked)
                }),
                Record::License(License {
                    ts: 4,
                    product: "UTM".into(),
                    model: "RC100".into(),
                    serial: "X1".into(),
                    licensed: true,
                    expires: Some(1_800_000_000_000),
                    features: vec![LicenseFeature { name: "ids".into(), expires: None }],
                    unknown_reason: None,
                }),
                Record::Inventory(Inventory {
                    ts: 5,
                    hostname: "fw".into(),
                    model: String::new(),
                    firmware: String::new(),
                    os: "Debian 12".into(),
                    kernel: "6.1".into(),
                    agent_version: "0.1.0".into(),
                    uptime_s: 99,
                }),
                Record::Traffic(Traffic {
                    ts: 6,
                    interval_ms: 1000,
                    interface: "eth0".into(),
                    category: None,
                    rx_bytes: 1,
                    tx_bytes: 2,
                    rx_packets: 3,
                    tx_packets: 4,
                    rx_errors: 0,
                    tx_errors: 0,
                }),
            ],
        }
    }

    #[test]
    fn every_record_kind_round_trips() {
        let b = sample();
        let bytes = encode_batch(&b).unwrap();
        assert_eq!(decode_batch(&bytes, &Limits::default()).unwrap(), b);
    }

    #[test]
    fn ack_round_trips() {
        for status in [AckStatus::Committed, AckStatus::Duplicate, AckStatus::Rejected("bad".into())] {
            let ack = Ack { seq: u64::MAX, status };
            let bytes = encode_ack(&ack).unwrap();
            assert_eq!(decode_ack(&bytes, &Limits::default()).unwrap(), ack);
        }
    }

    /// A record as a newer agent would write it: kind first, then data of any shape.
    #[derive(serde::Serialize)]
    struct Raw<T> {
        kind: &'static str,
        data: T,
    }

    #[derive(serde::Serialize)]
    struct RawBatch<A, B> {
        version: u16,
        seq: u64,
        records: (Raw<A>, Raw<B>),
    }

    #[test]
    fn unknown_record_kind_from_a_newer_agent_is_kept_as_unknown() {
        let newer = RawBatch {
            version: 1,
            seq: 1,
            records: (
                Raw { kind: "hologram", data: serde_json::json!({"x": [1, 2, {"y": "z"}]}) },
                Raw { kind: "metric", data: serde_json::json!({"ts": 1, "name": "m", "value": 1.0}) },
            ),
        };
        let bytes = serde_cbor::to_vec(&newer).unwrap();
        let b = decode_batch(&bytes, &Limits::default()).unwrap();
        assert_eq!(b.records.len(), 2);
        assert_eq!(b.records[0], Record::Unknown);
        assert_eq!(b.records[1].kind(), "metric");
    }

    #[test]
    fn unknown_enum_values_decode_as_other() {
        let alert = serde_json::json!({"ts": 1, "source": "satellite", "severity": 2, "signature": "s", "action": "vaporised"});
        let newer = RawBatch { version: 1, seq: 1, records: (Raw { kind: "alert", data: alert }, Raw { kind: "future", data: 0 }) };
        let bytes = serde_cbor::to_vec(&newer).unwrap();
        let b = decode_batch(&bytes, &Limits::default()).unwrap();
        let Record::Alert(a) = &b.records[0] else { panic!("not an alert") };
        assert_eq!(a.source, AlertSource::Other);
        assert_eq!(a.action, AlertAction::Unknown);
    }

    #[test]
    fn newer_batch_version_is_refused() {
        let mut b = sample();
        b.version = PROTOCOL_VERSION + 1;
        let bytes = encode_batch(&b).unwrap();
        assert_eq!(decode_batch(&bytes, &Limits::default()), Err(CodecError::Version(PROTOCOL_VERSION + 1)));
    }

    #[test]
    fn deep_nesting_is_refused_before_serde_sees_it() {
        let mut bytes = vec![0x81u8; 10_000]; // 10,000 nested one-element arrays
        bytes.push(0x00);
        assert!(matches!(decode_batch(&bytes, &Limits::default()), Err(CodecError::TooDeep { .. })));
    }

    #[test]
    fn huge_declared_lengths_are_refused() {
        let limits = Limits::default();
        // Array claiming 2^32 items in a 9-byte message.
        let arr = [0x9b, 0, 0, 0, 1, 0, 0, 0, 0];
        assert!(matches!(scan(&arr, &limits), Err(CodecError::TooManyItems { .. })));
        // Array of 1,000 items backed by 3 bytes.
        let arr = [0x99, 0x03, 0xe8, 0x00, 0x00, 0x00];
        assert_eq!(scan(&arr, &limits), Err(CodecError::Truncated));
        // Text string claiming 4 GiB.
        let s = [0x7a, 0xff, 0xff, 0xff, 0xff, b'a'];
        assert!(matches!(scan(&s, &limits), Err(CodecError::StringTooLong { .. })));
        // Indefinite-length map.
        assert!(matches!(scan(&[0xbf, 0xff], &limits), Err(CodecError::Unsupported(_))));
    }

    #[test]
    fn oversized_message_is_refused() {
        let limits = Limits { max_frame: 16, ..Limits::default() };
        let bytes = encode_batch(&sample()).unwrap();
        assert!(matches!(decode_batch(&bytes, &limits), Err(CodecError::TooLarge { .. })));
    }

    #[test]
    fn too_many_records_are_refused() {
        let mut b = sample();
        b.records = vec![Record::Metric(Metric { ts: 1, name: "m".into(), labels: vec![], value: 0.0 }); 11];
        let bytes = encode_batch(&b).unwrap();
        let limits = Limits { max_records: 10, ..Limits::default() };
        assert!(matches!(decode_batch(&bytes, &limits), Err(CodecError::TooManyItems { .. })));
    }

    #[test]
    fn every_truncation_of_a_valid_batch_is_an_error() {
        let bytes = encode_batch(&sample()).unwrap();
        for cut in 0..bytes.len() {
            assert!(decode_batch(&bytes[..cut], &Limits::default()).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn trailing_bytes_are_refused() {
        let mut bytes = encode_batch(&sample()).unwrap();
        bytes.push(0);
        assert_eq!(decode_batch(&bytes, &Limits::default()), Err(CodecError::Trailing(1)));
    }

    fn arb_string() -> impl Strategy<Value = String> {
        proptest::string::string_regex("[a-zA-Z0-9 ./_äöü€-]{0,24}").unwrap()
    }

    fn arb_record() -> impl Strategy<Value = Record> {
        prop_oneof![
            (any::<i64>(), arb_string(), proptest::collection::vec((arb_string(), arb_string()), 0..3), any::<f64>())
                .prop_filter("NaN never equals itself", |t| !t.3.is_nan())
                .prop_map(|(ts, name, labels, value)| Record::Metric(Metric { ts, name, labels, value })),
            (any::<i64>(), 1u8..=4, any::<Option<u64>>(), arb_string(), proptest::option::of(arb_string())).prop_map(
                |(ts, severity, signature_id, signature, src)| Record::Alert(Alert {
                    ts,
                    source: AlertSource::Antivirus,
                    severity,
                    signature_id,
                    signature,
                    category: None,
                    action: AlertAction::Quarantined,
                    src,
                    dst: None,
                    detail: None,
                    ..Alert::new(0, AlertSource::Antivirus, 1, String::new(), AlertAction::Quarantined)
                })
            ),
            (any::<i64>(), arb_string(), any::<u64>(), any::<u64>()).prop_map(|(ts, interface, rx, tx)| {
                Record::Traffic(Traffic {
                    ts,
                    interval_ms: 1000,
                    interface,
                    category: None,
                    rx_bytes: rx,
                    tx_bytes: tx,
                    rx_packets: 0,
                    tx_packets: 0,
                    rx_errors: 0,
                    tx_errors: 0,
                })
            }),
        ]
    }

    proptest! {
        #[test]
        fn batches_round_trip(seq in any::<u64>(), records in proptest::collection::vec(arb_record(), 0..40)) {
            let b = Batch { version: PROTOCOL_VERSION, seq, sender: None, records };
            let bytes = encode_batch(&b).unwrap();
            prop_assert_eq!(decode_batch(&bytes, &Limits::default()).unwrap(), b);
        }

        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode_batch(&bytes, &Limits::default());
            let _ = decode_ack(&bytes, &Limits::default());
        }

        #[test]
        fn mutated_batches_never_panic(pos in any::<usize>(), byte in any::<u8>()) {
            let mut bytes = encode_batch(&sample()).unwrap();
            let i = pos % bytes.len();
            bytes[i] = byte;
            let _ = decode_batch(&bytes, &Limits::default());
        }
    }
}
