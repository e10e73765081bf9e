//! The Ampel agent: gathers data on a firewall or host and streams it to the collector.
//!
//! Every interval the agent asks each enabled source for records, puts them into a [`Batch`]
//! with a persisted, ever-growing sequence number and hands it to the transport, which keeps it
//! until the collector acknowledges it. The whole agent runs on one thread and aims at a few
//! MiB of memory: appliance operators should not notice it.
//!
//! [`Batch`]: ampel_protocol::Batch
//!
//! # Layout
//!
//! - [`config`]: the TOML configuration, parsed into types that cannot hold a bad value.
//! - [`sources`]: the [`Source`](sources::Source) trait, the registry, one folder per source
//!   ([`sources::performance`], [`sources::inventory`], [`sources::license`], [`sources::eve`],
//!   [`sources::clamav`], [`sources::mail`], [`sources::netdev`], [`sources::nft`],
//!   [`sources::counter`]).
//! - [`transport`]: the [`Transport`](transport::Transport) trait, the
//!   [`Outbox`](transport::Outbox) of batches in flight, QUIC in [`transport::quic`], MQTT in
//!   [`transport::mqtt`].
//! - [`enroll`]: `enroll` with a one-time token, renewal, certificate hot-swap.
//! - [`backoff`]: jittered exponential reconnect backoff, a pure state machine.
//! - [`seq`]: sequence numbers persisted in blocks.
//! - [`spool`]: the persistent, bounded LMDB spool of unacknowledged batches.
//! - [`run`]: the main loop, and `once`.
//! - [`parse_cmd`]: `ampel-agent parse`, a source's parser run over a whole file.
//! - [`resident`]: gives back resident pages of code no longer in use, and free heap.
//! - systemd readiness, watchdog and reload notifications come from `ampel_os::systemd`.
//! - [`files`]: files named by the configuration, read with a size limit.

pub mod backoff;
pub mod config;
pub mod enroll;
pub mod files;
pub mod parse_cmd;
pub mod resident;
pub mod run;
pub mod seq;
pub mod sources;
pub mod spool;
pub mod transport;

pub use config::AgentConfig;
pub use run::{Agent, RunError};
