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
//!   ([`sources::performance`], [`sources::inventory`]).
//! - [`transport`]: the [`Transport`](transport::Transport) trait, the bounded
//!   [`Outbox`](transport::Outbox) of unacknowledged batches, QUIC in [`transport::quic`].
//! - [`backoff`]: jittered exponential reconnect backoff, a pure state machine.
//! - [`seq`]: sequence numbers persisted in blocks.
//! - [`run`]: the main loop, and `once`.
//! - [`systemd`]: readiness, watchdog and reload notifications to systemd.

pub mod backoff;
pub mod config;
pub mod run;
pub mod seq;
pub mod sources;
pub mod systemd;
pub mod transport;

pub use config::AgentConfig;
pub use run::{Agent, RunError};
