//! What can go wrong while creating, loading or using the deployment's CA.

use std::path::PathBuf;

/// Why a PKI operation failed. Every variant that concerns a file names it, so that the CLI can
/// print one line that tells the operator where to look. No variant ever carries key material.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// A file or directory could not be read, written, created or renamed.
    #[error("cannot {action} {path}: {source}")]
    Io {
        /// What we were doing: "read", "write", "create directory", ...
        action: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// `open` found no CA: the directory or its `ca.pem`/`ca.key` is missing.
    #[error("no CA at {path}: run `ampel-collector pki init` first")]
    NotInitialized {
        /// The missing file.
        path: PathBuf,
    },
    /// `init` found an existing CA and was not told to replace it.
    #[error(
        "a CA already exists at {path}; pass --force to replace it \
         (every certificate it issued will stop working)"
    )]
    AlreadyInitialized {
        /// The existing CA file.
        path: PathBuf,
    },
    /// A PEM file exists but does not hold what it should (truncated, wrong type, garbage).
    #[error("{path} is not a valid {what}: {reason}")]
    BadFile {
        /// The offending file.
        path: PathBuf,
        /// What it should hold: "CA certificate", "CA private key", ...
        what: &'static str,
        /// What is wrong with it (never contains key bytes).
        reason: String,
    },
    /// `ca.key` does not belong to `ca.pem`: certificates signed with it would not verify.
    #[error("{key} does not match the public key in {cert}")]
    KeyMismatch {
        /// The private key file.
        key: PathBuf,
        /// The certificate file.
        cert: PathBuf,
    },
    /// The CA certificate has expired, so nothing it signs would verify.
    #[error("the CA certificate {path} expired at unix time {not_after}; run `pki init --force` to create a new CA")]
    CaExpired {
        /// The CA certificate file.
        path: PathBuf,
        /// Its notAfter, in seconds since the Unix epoch.
        not_after: i64,
    },
    /// `write_to` would overwrite an existing file (a device key is never silently replaced).
    #[error("{path} already exists; refusing to overwrite it")]
    FileExists {
        /// The existing file.
        path: PathBuf,
    },
    /// The device id would collide with the CA file written beside the device's files.
    #[error("device id {device:?} is reserved: its files would collide with ca.pem")]
    ReservedDeviceId {
        /// The device id.
        device: String,
    },
    /// An option is out of range: no server names, an invalid name, zero days, ...
    #[error("invalid PKI option: {0}")]
    InvalidOption(String),
    /// The system clock is before 1970, so no sensible validity period can be set.
    #[error("the system clock is before 1970; fix the clock before issuing certificates")]
    Clock,
    /// rcgen could not generate a key or sign a certificate or CRL.
    #[error("cannot {what}: {source}")]
    Generate {
        /// What we were generating: "generate the CA key", "sign the CRL", ...
        what: &'static str,
        /// rcgen's reason.
        source: rcgen::Error,
    },
}

impl PkiError {
    /// Wraps an I/O error with what we were doing and the path involved.
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> PkiError {
        let path = path.into();
        move |source| PkiError::Io { action, path, source }
    }

    /// Wraps an rcgen error with what we were generating.
    pub(crate) fn generate(what: &'static str) -> impl FnOnce(rcgen::Error) -> PkiError {
        move |source| PkiError::Generate { what, source }
    }
}
