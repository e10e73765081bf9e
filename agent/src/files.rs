//! Files named by the agent's configuration: the bounded reads and explicit modes of
//! [`ampel_os::files`], with the limits of the files only the agent reads.

pub use ampel_os::files::*;

/// A licence file (a few lines of TOML).
pub const LICENSE_MAX: u64 = 1 << 20;
/// `/proc/net/dev` or a copy: a few hundred bytes per interface.
pub const NETDEV_MAX: u64 = 4 << 20;
/// `nft -j list counters` output saved to a file.
pub const NFT_MAX: u64 = 16 << 20;
/// rspamd's history as JSON (rspamd keeps 200 rows by default; each is well under 64 KiB).
pub const RSPAMD_HISTORY_MAX: u64 = 16 << 20;
