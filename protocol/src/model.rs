//! The data model. Timestamps are UTC Unix milliseconds (`i64`).
//!
//! Every record kind is a variant of [`Record`]. A record kind this build does not know (sent by a
//! newer agent) decodes as [`Record::Unknown`] so the collector can count and skip it instead of
//! refusing the whole batch.

use std::fmt;

use serde::de::{self, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

/// Version of the batch format this build writes.
pub const PROTOCOL_VERSION: u16 = 1;

/// One unit of transfer: the records an agent gathered in one interval.
///
/// `seq` is the agent's persisted, monotonically increasing sequence number; the collector
/// acknowledges by it and uses it to drop duplicates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Batch {
    /// Format version ([`PROTOCOL_VERSION`] when written by this build).
    pub version: u16,
    /// Sequence number, unique and increasing per device.
    pub seq: u64,
    /// What the agent believes its device id is. Informational only: the collector takes the
    /// identity from the authenticated certificate and merely counts a disagreement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender: Option<String>,
    /// The records, in the order they were gathered.
    #[serde(deserialize_with = "records")]
    pub records: Vec<Record>,
}

/// Most records reserved for before they are decoded (as serde's own bound does).
const RECORDS_PREALLOC: usize = 4096;

/// Decodes the records of a batch, each straight into its place in the vector: a `Record` is a
/// few hundred bytes (the size of an `Alert`), and handing thousands of them back through
/// serde's `Result<Option<Record>>` layers moved each several times.
fn records<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<Record>, D::Error> {
    struct Push<'v>(&'v mut Vec<Record>);

    impl<'de> de::DeserializeSeed<'de> for Push<'_> {
        type Value = ();
        fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
            self.0.push(Record::deserialize(deserializer)?);
            Ok(())
        }
    }

    struct Records;

    impl<'de> Visitor<'de> for Records {
        type Value = Vec<Record>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an array of records")
        }
        fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<Record>, A::Error> {
            let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(RECORDS_PREALLOC));
            while seq.next_element_seed(Push(&mut out))?.is_some() {}
            Ok(out)
        }
    }

    deserializer.deserialize_seq(Records)
}

/// One observation from a device.
///
/// On the wire: a map `{"kind": <name>, "data": <record>}`, kind first.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", content = "data", rename_all = "snake_case")]
pub enum Record {
    /// A numeric sample (CPU, memory, disk, counters).
    Metric(Metric),
    /// A security event: IDS, antivirus, mail quarantine, authentication.
    Alert(Alert),
    /// License state of the appliance.
    License(License),
    /// What the device is and runs.
    Inventory(Inventory),
    /// Byte and packet counters of an interface or traffic category over an interval.
    Traffic(Traffic),
    /// A record kind unknown to this build; counted and skipped by the collector.
    Unknown,
}

// Written by hand because serde's `#[serde(other)]` cannot skip the content of an unknown
// adjacently tagged variant: a newer record kind must decode as `Unknown`, not fail the batch.
impl<'de> Deserialize<'de> for Record {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct RecordVisitor;

        impl<'de> Visitor<'de> for RecordVisitor {
            type Value = Record;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a record map {kind, data}")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Record, A::Error> {
                // Keys and the kind are matched without allocating: this runs once per record.
                let key: Name = map.next_key()?.ok_or_else(|| de::Error::missing_field("kind"))?;
                if key != Name::Kind {
                    return Err(de::Error::custom("record: \"kind\" must be the first key"));
                }
                let kind: Kind = map.next_value()?;
                let mut record = None;
                while let Some(key) = map.next_key::<Name>()? {
                    if key != Name::Data || record.is_some() {
                        map.next_value::<IgnoredAny>()?;
                        continue;
                    }
                    record = Some(match kind {
                        Kind::Metric => Record::Metric(map.next_value()?),
                        Kind::Alert => Record::Alert(map.next_value()?),
                        Kind::License => Record::License(map.next_value()?),
                        Kind::Inventory => Record::Inventory(map.next_value()?),
                        Kind::Traffic => Record::Traffic(map.next_value()?),
                        Kind::Unknown | Kind::Other => {
                            map.next_value::<IgnoredAny>()?;
                            Record::Unknown
                        }
                    });
                }
                match record {
                    Some(r) => Ok(r),
                    None if matches!(kind, Kind::Unknown | Kind::Other) => Ok(Record::Unknown),
                    None => Err(de::Error::missing_field("data")),
                }
            }
        }

        deserializer.deserialize_map(RecordVisitor)
    }
}

/// A key of a record map, read without allocating.
#[derive(PartialEq, Eq)]
enum Name {
    Kind,
    Data,
    Other,
}

impl<'de> Deserialize<'de> for Name {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Name;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a record key")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Name, E> {
                Ok(match v {
                    "kind" => Name::Kind,
                    "data" => Name::Data,
                    _ => Name::Other,
                })
            }
        }
        deserializer.deserialize_str(V)
    }
}

/// The kind named by a record, read without allocating.
#[derive(Clone, Copy)]
enum Kind {
    Metric,
    Alert,
    License,
    Inventory,
    Traffic,
    /// Written as `unknown` (a record an older build could not read and passed on).
    Unknown,
    /// A kind this build does not know.
    Other,
}

impl<'de> Deserialize<'de> for Kind {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Kind;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a record kind")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Kind, E> {
                Ok(match v {
                    "metric" => Kind::Metric,
                    "alert" => Kind::Alert,
                    "license" => Kind::License,
                    "inventory" => Kind::Inventory,
                    "traffic" => Kind::Traffic,
                    "unknown" => Kind::Unknown,
                    _ => Kind::Other,
                })
            }
        }
        deserializer.deserialize_str(V)
    }
}

impl Record {
    /// The record's kind as a short lowercase name, for counters and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Record::Metric(_) => "metric",
            Record::Alert(_) => "alert",
            Record::License(_) => "license",
            Record::Inventory(_) => "inventory",
            Record::Traffic(_) => "traffic",
            Record::Unknown => "unknown",
        }
    }

    /// Timestamp of the record, if it has one.
    pub fn ts(&self) -> Option<i64> {
        match self {
            Record::Metric(m) => Some(m.ts),
            Record::Alert(a) => Some(a.ts),
            Record::License(l) => Some(l.ts),
            Record::Inventory(i) => Some(i.ts),
            Record::Traffic(t) => Some(t.ts),
            Record::Unknown => None,
        }
    }
}

/// A numeric sample of one series. The series is `name` plus `labels`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metric {
    /// Sample time, Unix ms UTC.
    pub ts: i64,
    /// Metric name, e.g. `cpu.usage_percent`.
    pub name: String,
    /// Label pairs that tell series of one name apart (e.g. `mount=/var`), sorted by key.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<(String, String)>,
    /// The value.
    pub value: f64,
}

/// Where an alert came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertSource {
    /// Intrusion detection / prevention (Suricata).
    Ids,
    /// Antivirus (ClamAV).
    Antivirus,
    /// Mail filter and quarantine (rspamd, amavis, Postfix).
    Mail,
    /// Authentication events.
    Auth,
    /// Packet filter events.
    Firewall,
    /// Anything else.
    #[serde(other)]
    Other,
}

/// What the device did about an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertAction {
    /// Let through; only reported.
    Allowed,
    /// Blocked or dropped.
    Blocked,
    /// Moved to quarantine.
    Quarantined,
    /// Rejected (mail).
    Rejected,
    /// Not stated by the source.
    #[serde(other)]
    Unknown,
}

/// A security event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Event time, Unix ms UTC.
    pub ts: i64,
    /// Which subsystem raised it.
    pub source: AlertSource,
    /// Severity, 1 = most severe (Suricata's scale: 1..=4).
    pub severity: u8,
    /// Signature id, where the source has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature_id: Option<u64>,
    /// Signature or detection name.
    pub signature: String,
    /// Category (IDS classtype, mail reason).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// What was done.
    pub action: AlertAction,
    /// Source address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub src: Option<String>,
    /// Destination address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dst: Option<String>,
    /// Free-form detail (file path, mail id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Source port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub src_port: Option<u16>,
    /// Destination port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dst_port: Option<u16>,
    /// Transport protocol (`TCP`, `UDP`, `ICMP`), as the source names it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    /// Application protocol (`http`, `tls`, `smtp`), as the source names it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_proto: Option<String>,
    /// Revision of the signature, where the source has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature_rev: Option<u32>,
    /// MD5 of the file concerned, lowercase hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub md5: Option<String>,
    /// SHA-1 of the file concerned, lowercase hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha1: Option<String>,
    /// SHA-256 of the file concerned, lowercase hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

impl Alert {
    /// An alert with only the required fields set; the optional ones are `None`.
    pub fn new(ts: i64, source: AlertSource, severity: u8, signature: String, action: AlertAction) -> Alert {
        Alert {
            ts,
            source,
            severity,
            signature_id: None,
            signature,
            category: None,
            action,
            src: None,
            dst: None,
            detail: None,
            src_port: None,
            dst_port: None,
            protocol: None,
            app_proto: None,
            signature_rev: None,
            md5: None,
            sha1: None,
            sha256: None,
        }
    }
}

/// One licensed feature with its own expiry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LicenseFeature {
    /// Feature name, e.g. `ids`.
    pub name: String,
    /// Expiry, Unix ms UTC, if it expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<i64>,
}

/// License state of the appliance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct License {
    /// When the state was read, Unix ms UTC.
    pub ts: i64,
    /// Product name.
    pub product: String,
    /// Appliance model.
    #[serde(default)]
    pub model: String,
    /// Serial number.
    #[serde(default)]
    pub serial: String,
    /// Whether the license is valid according to the appliance.
    pub licensed: bool,
    /// Expiry of the license, Unix ms UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<i64>,
    /// Licensed features.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub features: Vec<LicenseFeature>,
    /// Set when the license could not be read: why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unknown_reason: Option<String>,
}

/// What the device is and runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Inventory {
    /// When it was read, Unix ms UTC.
    pub ts: i64,
    /// Host name.
    pub hostname: String,
    /// Appliance model, if configured or known.
    #[serde(default)]
    pub model: String,
    /// Firmware version, if configured or known.
    #[serde(default)]
    pub firmware: String,
    /// Operating system name and version.
    #[serde(default)]
    pub os: String,
    /// Kernel release.
    #[serde(default)]
    pub kernel: String,
    /// Version of `ampel-agent`.
    pub agent_version: String,
    /// Seconds since boot.
    pub uptime_s: u64,
}

/// Counters of an interface or traffic category over `interval_ms`, as deltas.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Traffic {
    /// End of the interval, Unix ms UTC.
    pub ts: i64,
    /// Length of the interval the deltas cover.
    pub interval_ms: u64,
    /// Interface name.
    pub interface: String,
    /// Traffic category (application protocol, nftables counter), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
    /// Packets received.
    pub rx_packets: u64,
    /// Packets sent.
    pub tx_packets: u64,
    /// Receive errors.
    #[serde(default)]
    pub rx_errors: u64,
    /// Transmit errors.
    #[serde(default)]
    pub tx_errors: u64,
}

/// The collector's answer to one batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    /// Sequence number of the batch answered.
    pub seq: u64,
    /// What became of it.
    pub status: AckStatus,
}

/// What became of a batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AckStatus {
    /// Durably committed.
    Committed,
    /// Already committed earlier; nothing was written again.
    Duplicate,
    /// Refused for good (malformed, over limits); the agent must not resend it.
    Rejected(String),
}
