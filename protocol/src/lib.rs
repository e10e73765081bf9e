//! The Ampel wire protocol: what an agent sends and what the collector answers.
//!
//! This crate does no I/O and reads no clock: callers pass bytes and timestamps in. That keeps
//! it fast to test and safe to fuzz; the agent and the collector wrap it in tokio and quinn.
//!
//! # Layout
//!
//! - [`model`]: the data model — [`Batch`], [`Record`] and its variants, [`Ack`].
//! - [`codec`]: the one place that knows the bytes are CBOR; every decode is bounded by
//!   [`Limits`] before it allocates.
//! - [`frame`]: length-prefixed frames as they travel on a QUIC stream.
//! - [`identity`]: tenant and device ids, and reading them from a verified certificate.
//! - [`topic`]: MQTT topic names.
//! - [`shard`]: the answer that sends an agent to the shard owning its tenant.
//! - [`enroll`]: enrollment and renewal messages, the enrollment token.
//! - [`tls`]: rustls configurations for both ends of mutual TLS.
//! - [`logsafe`]: peer-supplied text escaped for a log line ([`logsafe::esc`]).

pub mod codec;
pub mod enroll;
pub mod frame;
pub mod identity;
pub mod logsafe;
pub mod model;
pub mod shard;
pub mod tls;
pub mod topic;

pub use codec::{CodecError, Limits};
pub use identity::{DeviceId, Identity, TenantId};
pub use model::{
    Ack, AckStatus, Alert, AlertAction, AlertSource, Batch, Inventory, License, LicenseFeature, Metric, PROTOCOL_VERSION, Record, Traffic,
};

/// ALPN protocol id of the data channel (mutual TLS, batches up, acks down).
pub const ALPN_DATA: &[u8] = b"ampel/1";
