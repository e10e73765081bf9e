//! Mail delivery with lettre: a file outbox (the default) or SMTP.
//!
//! # Layout
//!
//! - `config`: [`MailConfig`] and its value types; `mail.example.toml` documents the defaults.
//! - `message`: [`OutgoingMail`] → lettre message; refuses header injection and bad addresses.
//! - `error`: [`MailError`] and [`MailTestError`].

mod config;
mod error;
mod message;

pub use config::{
    DEFAULT_FROM, DEFAULT_OUTBOX, DEFAULT_TIMEOUT, HeloName, Host, MailConfig, Security, Timeout,
    TransportKind, Username,
};
pub use error::{MailError, MailTestError};
pub use message::OutgoingMail;
