//! Device enrollment and renewal on the `ampel-enroll/1` ALPN.
//!
//! `pki token` and the console's enrollment page create a one-time [`tokens::TokenStore`] record
//! through [`tokens::issue`] and show the token once (format in [`ampel_protocol::enroll`]). An agent redeems it with a CSR; the collector signs a short-lived
//! certificate for the token's tenant and device. Later the agent renews with a new CSR over a
//! connection authenticated by its current certificate — no token needed.
//!
//! Refusals are decided before anything large is allocated: enrollment frames are bounded by
//! [`ampel_protocol::enroll::ENROLL_LIMITS`], and each source address gets
//! [`limit::PER_WINDOW`] requests per [`limit::WINDOW`].
//!
//! # Layout
//!
//! - [`tokens`]: the token records under `<pki-dir>/enroll/`, single use, expiring, bound.
//! - [`limit`]: the per-address rate limiter, plain data.
//! - [`service`]: one enrollment connection, from request to response.

pub mod limit;
pub mod service;
pub mod tokens;

pub use service::EnrollService;
pub use tokens::{Refusal, TokenStore};
