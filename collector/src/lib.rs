//! The Ampel collector: ingest -> store -> risk -> report -> mail.
//!
//! # Layout
//!
//! - [`config`]: `collector.toml`, parsed into types that cannot hold a bad value.
//! - [`pki`]: the deployment's certificate authority (`pki init`, `pki issue`).
//! - [`store`]: the LMDB store — device registry, points, alerts, sequence marks.
//! - [`ingest`]: the QUIC listener and the one writer task that group-commits.
//! - [`risk`]: rules, findings and traffic lights.
//! - [`report`]: PDF rendering with genpdf.
//! - [`mail`]: delivery through a file outbox or SMTP.

pub mod assess;
pub mod config;
pub mod ingest;
pub mod mail;
pub mod pki;
pub mod report;
pub mod risk;
pub mod store;
