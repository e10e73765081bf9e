//! Integration tests: the transport against an in-process collector stand-in, and the real
//! `ampel-agent` binary.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod cli;
mod support;
mod transport;
