//! End-to-end tests: the real `ampel-collector` and `ampel-agent` binaries, real QUIC with
//! mutual TLS on loopback, real LMDB files, a real SMTP server, real PDF tools.
//!
//! Build the binaries first: `cargo build --workspace --bins` (tests/run does it).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod bench;
mod config;
mod console;
mod delivery;
mod demo;
mod enroll;
mod hostile;
mod ingest;
mod moving;
mod mqtt;
mod operator;
mod packaging;
mod report;
mod schedule;
mod shards;
mod spool;
