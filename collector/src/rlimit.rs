//! The descriptor limit (`RLIMIT_NOFILE`) the collector sizes its own caps from.

/// Assumed when the limit cannot be read: systemd's and most shells' default soft limit.
pub const DEFAULT_NOFILE: u64 = 1024;

/// The soft limit on open descriptors of this process.
pub fn nofile() -> u64 {
    nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).map_or(DEFAULT_NOFILE, |(soft, _)| soft)
}
