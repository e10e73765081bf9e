//! Ingest: the QUIC listener and the writer task that commits batches to the store.

pub mod quic;
pub mod trust;
pub mod writer;

pub use writer::{IngestStats, Writer};
