//! The Ampel collector: ingest -> store -> risk -> report -> mail.
//!
//! # Layout
//!
//! - [`config`]: `collector.toml`, parsed into types that cannot hold a bad value.
//! - [`files`]: files named by the configuration, read with a size limit.
//! - [`pki`]: the deployment's certificate authority (`pki init`, `pki issue`, `pki token`, `pki revoke`).
//! - [`enroll`]: enrollment tokens and the `ampel-enroll/1` service (CSR in, certificate out).
//! - [`store`]: the LMDB store — device registry, points, alerts, sequence marks.
//! - [`tenant_io`]: `tenant export` / `tenant import`, one tenant's data in one checked file.
//! - [`http`]: the HTTP listener: opt-in links, downloads, `/healthz`, `/metrics`.
//! - [`console`]: the web console on that listener: users, roles, sessions, pages.
//! - [`ingest`]: the QUIC listener and the one writer task that group-commits.
//! - [`logthrottle`]: refusals logged at a bounded rate per peer.
//! - [`risk`]: rules, findings and traffic lights.
//! - [`report`]: PDF rendering with genpdf.
//! - [`mail`]: delivery through a file outbox or SMTP.
//! - [`archive`]: report PDFs kept under `<data-dir>/archive/`.
//! - [`period`]: the reporting period — calendar unit or range, in its time zone, named as people name it.
//! - [`assess`]: gathers a tenant's data, runs the rules, builds the report data.
//! - [`rlimit`]: the descriptor limit the caps are sized from.
//! - [`reporting`]: the one report path ([`reporting::ReportRequest`] → PDF), `report preview|send`, `mail test`.
//! - [`recipients`]: opt-in of report recipients, signed links, the consent log.
//! - [`schedule`]: report jobs, due times, the delivery store and the scheduler loop.
//! - [`server`]: `serve` — store, writer and listener started and stopped together.
//! - systemd readiness, watchdog and reload notifications come from `ampel_os::systemd`.
//! - [`demo`]: the embedded default: everything on loopback.
//! - [`cli`]: the command line.

pub mod archive;
pub mod assess;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod console;
pub mod demo;
pub mod enroll;
pub mod files;
pub mod http;
pub mod ingest;
pub mod logthrottle;
pub mod mail;
pub mod period;
pub mod pki;
pub mod recipients;
pub mod report;
pub mod reporting;
pub mod risk;
pub mod rlimit;
pub mod schedule;
pub mod server;
pub mod store;
pub mod tenant_io;
