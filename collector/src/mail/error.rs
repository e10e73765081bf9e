//! Errors of the mail module.
//!
//! [`MailTestError`] names the step of an SMTP connection that failed (resolve, connect, TLS,
//! login), so an operator running `mail test` knows where to look. [`MailError`] covers
//! everything else and wraps a [`MailTestError`] when a delivery fails while connecting.

use std::path::PathBuf;

/// Why mail could not be configured, built or delivered.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// The `[mail]` table is inconsistent across fields; the text says what to change.
    #[error("invalid [mail] configuration: {0}")]
    Config(String),

    /// A file named in the configuration (password or CA file) could not be read.
    #[error("cannot read the {what} {}", path.display())]
    ReadFile {
        /// Which file this was, e.g. "password file".
        what: &'static str,
        /// The path from the configuration.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },

    /// The password file is empty (after trimming the trailing newline).
    #[error("the password file {} is empty", path.display())]
    EmptyPassword {
        /// The path from the configuration.
        path: PathBuf,
    },

    /// The CA file holds no usable certificate.
    #[error("the CA file {} is not usable: {reason}", path.display())]
    CaFile {
        /// The path from the configuration.
        path: PathBuf,
        /// What is wrong with its contents.
        reason: String,
    },

    /// The TLS client configuration could not be built (bad protocol settings or roots).
    #[error("cannot set up TLS for the SMTP connection: {0}")]
    TlsSetup(String),

    /// The message has no recipients.
    #[error("the message has no recipients")]
    NoRecipients,

    /// A recipient is not a valid mailbox.
    #[error("invalid recipient {address:?}: {reason}")]
    InvalidRecipient {
        /// The address as given.
        address: String,
        /// Why it was refused.
        reason: String,
    },

    /// A header value (subject, attachment file name) contains CR, LF or another control
    /// character, which could be used to inject header lines.
    #[error("the {field} contains the control character {found:?}; header values must be one line of text")]
    HeaderInjection {
        /// Which value, e.g. "subject".
        field: &'static str,
        /// The offending character.
        found: char,
    },

    /// A header value is empty where one is required (the attachment file name).
    #[error("the {field} is empty")]
    EmptyField {
        /// Which value, e.g. "attachment file name".
        field: &'static str,
    },

    /// lettre refused to assemble the message.
    #[error("cannot build the message: {0}")]
    Build(String),

    /// The file transport could not write into its outbox.
    #[error("cannot write to the outbox {}", path.display())]
    Outbox {
        /// The file or directory that could not be written.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },

    /// Delivery failed while connecting to the SMTP server; the inner error names the step.
    #[error(transparent)]
    Connection(#[from] MailTestError),

    /// The SMTP server did not accept the message (MAIL FROM, RCPT TO or DATA failed), or the
    /// connection broke during the transaction.
    #[error("{server} did not accept the message: {reason}")]
    Send {
        /// `host:port` of the server.
        server: String,
        /// The server's reply or the I/O error, e.g. "permanent error (550): no such user".
        reason: String,
    },
}

/// Which step of reaching the mail server failed, with what the server or the network said.
///
/// Returned by [`super::Mailer::test_connection`] and, inside [`MailError::Connection`], by
/// [`super::Mailer::send`]. No mail is sent by the test.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MailTestError {
    /// The host name did not resolve (DNS).
    #[error("cannot resolve {host}: {reason}")]
    Resolve {
        /// The host from the configuration.
        host: String,
        /// The resolver's answer, or a timeout.
        reason: String,
    },

    /// No TCP connection could be made to any resolved address.
    #[error("TCP connect to {server} failed: {reason}")]
    Connect {
        /// `host:port`.
        server: String,
        /// The error for each address tried.
        reason: String,
    },

    /// The TLS handshake failed (certificate not trusted, wrong name, protocol mismatch), or
    /// the server does not offer STARTTLS.
    #[error("TLS handshake with {server} failed: {reason}")]
    Tls {
        /// `host:port`.
        server: String,
        /// What rustls or the server said, e.g. "invalid peer certificate: UnknownIssuer".
        reason: String,
    },

    /// The server refused the login, or offers no mechanism we support.
    #[error("login as {user} at {server} failed: {reason}")]
    Auth {
        /// `host:port`.
        server: String,
        /// The login name (never the password).
        user: String,
        /// The server's reply.
        reason: String,
    },

    /// Any other step: the SMTP greeting or EHLO, the final NOOP, or the outbox check of the
    /// file transport.
    #[error("{step} with {target} failed: {reason}")]
    Other {
        /// What was being done, e.g. "SMTP greeting".
        step: &'static str,
        /// `host:port`, or the outbox path for the file transport.
        target: String,
        /// What went wrong.
        reason: String,
    },
}

impl MailTestError {
    /// A short machine-friendly name of the failed step: `resolve`, `connect`, `tls`, `auth`
    /// or `other`.
    pub fn step(&self) -> &'static str {
        match self {
            MailTestError::Resolve { .. } => "resolve",
            MailTestError::Connect { .. } => "connect",
            MailTestError::Tls { .. } => "tls",
            MailTestError::Auth { .. } => "auth",
            MailTestError::Other { .. } => "other",
        }
    }
}
