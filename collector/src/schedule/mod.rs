//! Scheduled delivery: report jobs from `[[jobs]]`, "what is due" as a plain function, the
//! scheduler loop, and the delivery store it keeps its state in.
//!
//! # Layout
//!
//! - `commands`: `recipients`, `report list`, `report resend`, and the wiring for `serve`.
//! - `config`: [`JobConfig`] (`[[jobs]]`) and [`DeliveryConfig`] (`[delivery]`).
//! - `due`: slots in the job's time zone, periods, and [`due`](due::due) over
//!   (jobs, cursors, now) — unit-tested with a simulated clock.
//! - `runner`: [`Scheduler`](runner::Scheduler): render, archive, deliver; the loop.
//! - `store`: [`DeliveryStore`], the LMDB environment at `<data-dir>/delivery/`.

pub mod commands;
pub mod config;
pub mod due;
pub mod runner;
pub mod store;
#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests;

pub use config::{DeliveryConfig, DeliveryMode, JobConfig};
pub use store::{ArchiveRecord, ArchiveStatus, ConsentEvent, DeliveryStore, DeliveryStoreError, Recipient, RecipientState, Resend};
