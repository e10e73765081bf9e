//! Files named by the collector's configuration or kept in its data directory: the bounded
//! reads and explicit modes of [`ampel_os::files`], with the limits of the files only the
//! collector reads.

pub use ampel_os::files::*;

/// A PEM CRL: 16 MiB is some 300 000 revoked certificates.
pub const CRL_MAX: u64 = 16 << 20;
/// A small file of our own (a key of a few bytes, a token record).
pub const SMALL_MAX: u64 = 4 << 10;
