//! Ingest: the QUIC listener and the writer task that commits batches to the store.
