//! Ingest: the QUIC listener, the MQTT subscriber and the writer task that commits batches to
//! the store.

pub mod budget;
pub mod catchup;
pub mod mqtt;
pub mod quic;
pub mod trust;
pub mod writer;

pub use writer::{IngestStats, Writer};
