//! What the Ampel agent and collector share about the host they run on, beside the wire
//! protocol (which does no I/O):
//!
//! - [`files`]: configured files read with a size limit and only when they are regular files;
//!   directories and data files created with explicit modes, whatever the umask.
//! - [`systemd`]: the `sd_notify` protocol (ready, reloading, stopping, watchdog) without a
//!   dependency, and the keys a configuration reload changed.

pub mod files;
pub mod systemd;
