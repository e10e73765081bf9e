//! Mail delivery with lettre: a file outbox (the default) or SMTP.
//!
//! # Layout
//!
//! - `config`: [`MailConfig`] and its value types; `mail.example.toml` documents the defaults.
//! - `error`: [`MailError`] and [`MailTestError`].

mod config;
mod error;

pub use config::{
    DEFAULT_FROM, DEFAULT_OUTBOX, DEFAULT_TIMEOUT, HeloName, Host, MailConfig, Security, Timeout,
    TransportKind, Username,
};
pub use error::{MailError, MailTestError};
