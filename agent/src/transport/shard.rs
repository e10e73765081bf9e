//! Which collector to connect to: the configured one, or the shard it sent us to.
//!
//! A collector that does not own our tenant closes the connection with a redirect naming the
//! owning shard ([`ampel_protocol::shard`]). The QUIC transport accepts it only from a
//! connection whose handshake completed — the collector's certificate verified against our CA
//! — and hands it to [`ShardTarget::redirected`], which remembers it in `<state-dir>/shard`
//! (one short line, written atomically) so a restarted agent goes straight to its shard.
//! When the remembered shard cannot be reached for [`FALLBACK_AFTER`], the agent forgets it
//! and goes back to the configured address, which sends it on again if the map still says so.
//! The state is plain data: callers pass the time in.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ampel_protocol::shard::{REASON_MAX, Redirect};

use crate::config::{AddressError, CollectorAddress};
use crate::files;

/// How long a remembered shard may fail without a working connection before the agent goes
/// back to its configured address.
pub const FALLBACK_AFTER: Duration = Duration::from_secs(10 * 60);

/// Name of the file in the state directory.
pub const FILE: &str = "shard";

/// Why a redirect was not taken.
#[derive(Debug, thiserror::Error)]
pub enum ShardError {
    /// The redirect names no usable address.
    #[error("redirect to shard {shard}: {source}")]
    Address {
        /// The shard named.
        shard: String,
        /// What is wrong with its address.
        source: AddressError,
    },
    /// It could not be saved; it is followed anyway until the agent restarts.
    #[error("cannot save the redirect to {}: {source}", path.display())]
    Save {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

/// The shard we were sent to.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Remembered {
    shard: String,
    address: CollectorAddress,
}

/// Where the transport connects, and the memory of a redirect.
#[derive(Debug)]
pub struct ShardTarget {
    configured: CollectorAddress,
    file: Option<PathBuf>,
    remembered: Option<Remembered>,
    /// First failure at the remembered address since its last working connection.
    failing_since: Option<Instant>,
}

impl ShardTarget {
    /// The configured address, and the redirect remembered in `state_dir` (if any). A file that
    /// cannot be read or parsed is reported and removed: the configured collector redirects
    /// again if it must.
    pub fn load(configured: CollectorAddress, state_dir: Option<&Path>) -> ShardTarget {
        let file = state_dir.map(|d| d.join(FILE));
        let remembered = file.as_deref().and_then(read);
        if let Some(r) = &remembered {
            tracing::info!(shard = %r.shard, collector = %r.address, "connecting to the shard a collector sent us to earlier");
        }
        ShardTarget { configured, file, remembered, failing_since: None }
    }

    /// The address to connect to now.
    pub fn address(&self) -> &CollectorAddress {
        self.remembered.as_ref().map_or(&self.configured, |r| &r.address)
    }

    /// The shard we were sent to, if any.
    pub fn shard(&self) -> Option<&str> {
        self.remembered.as_ref().map(|r| r.shard.as_str())
    }

    /// Follows a redirect that came over a verified connection: the next connection goes to
    /// the named shard. Returns an error when the address is unusable (the current target
    /// stays) or when it could not be saved (it is followed anyway).
    pub fn redirected(&mut self, redirect: Redirect) -> Result<(), ShardError> {
        let address: CollectorAddress =
            redirect.address.parse().map_err(|source| ShardError::Address { shard: redirect.shard.clone(), source })?;
        let line = redirect.encode();
        self.remembered = Some(Remembered { shard: redirect.shard, address });
        self.failing_since = None;
        let Some(path) = &self.file else { return Ok(()) };
        files::write_atomic(path, &line, files::FILE_MODE, true).map_err(|source| ShardError::Save { path: path.clone(), source })
    }

    /// A connection to the current target works.
    pub fn connected(&mut self) {
        self.failing_since = None;
    }

    /// A connection to the current target failed at `now`. Returns true when the remembered
    /// shard has failed for [`FALLBACK_AFTER`] and was forgotten: the next attempt goes to the
    /// configured address.
    pub fn failed(&mut self, now: Instant) -> bool {
        if self.remembered.is_none() {
            return false;
        }
        let since = *self.failing_since.get_or_insert(now);
        if now.saturating_duration_since(since) < FALLBACK_AFTER {
            return false;
        }
        self.forget();
        true
    }

    fn forget(&mut self) {
        self.remembered = None;
        self.failing_since = None;
        if let Some(path) = &self.file
            && let Err(e) = std::fs::remove_file(path)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(file = %path.display(), error = %e, "cannot remove the remembered shard");
        }
    }
}

/// Reads the remembered redirect; a missing file is none, a bad one is reported and removed.
fn read(path: &Path) -> Option<Remembered> {
    let bytes = match files::read_limited(path, REASON_MAX as u64) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            tracing::warn!(file = %path.display(), error = %e, "cannot read the remembered shard; using the configured collector");
            return None;
        }
    };
    let parsed = Redirect::decode(&bytes).map_err(|e| e.to_string()).and_then(|r| {
        let address = r.address.parse::<CollectorAddress>().map_err(|e| e.to_string())?;
        Ok(Remembered { shard: r.shard, address })
    });
    match parsed {
        Ok(r) => Some(r),
        Err(e) => {
            tracing::warn!(file = %path.display(), error = %e, "remembered shard unreadable; removing it and using the configured collector");
            let _ = std::fs::remove_file(path);
            None
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn addr(s: &str) -> CollectorAddress {
        s.parse().unwrap()
    }

    fn redirect(shard: &str, address: &str) -> Redirect {
        Redirect { shard: shard.into(), address: address.into() }
    }

    #[test]
    fn a_redirect_is_followed_and_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let mut t = ShardTarget::load(addr("collector.example.net:4433"), Some(dir.path()));
        assert_eq!(t.address(), &addr("collector.example.net:4433"));
        t.redirected(redirect("eu-2", "eu-2.example.net:4433")).unwrap();
        assert_eq!((t.address(), t.shard()), (&addr("eu-2.example.net:4433"), Some("eu-2")));
        let again = ShardTarget::load(addr("collector.example.net:4433"), Some(dir.path()));
        assert_eq!((again.address(), again.shard()), (&addr("eu-2.example.net:4433"), Some("eu-2")));
    }

    #[test]
    fn a_redirect_without_a_usable_address_is_not_taken() {
        let mut t = ShardTarget::load(addr("192.0.2.1:4433"), None);
        assert!(matches!(t.redirected(redirect("eu-2", "no-port")), Err(ShardError::Address { .. })));
        assert_eq!((t.address(), t.shard()), (&addr("192.0.2.1:4433"), None));
    }

    #[test]
    fn a_shard_failing_for_long_is_forgotten_and_a_working_connection_resets_the_clock() {
        let dir = tempfile::tempdir().unwrap();
        let mut t = ShardTarget::load(addr("192.0.2.1:4433"), Some(dir.path()));
        t.redirected(redirect("eu-2", "[2001:db8::2]:4433")).unwrap();
        let t0 = Instant::now();
        assert!(!t.failed(t0));
        assert!(!t.failed(t0 + FALLBACK_AFTER / 2));
        t.connected();
        assert!(!t.failed(t0 + FALLBACK_AFTER), "the clock starts again after a working connection");
        assert!(t.failed(t0 + FALLBACK_AFTER * 2));
        assert_eq!((t.address(), t.shard()), (&addr("192.0.2.1:4433"), None));
        assert!(!dir.path().join(FILE).exists(), "forgotten on disk too");
        assert!(!t.failed(t0 + FALLBACK_AFTER * 5), "the configured address is never given up");
    }

    #[test]
    fn a_damaged_memory_file_is_removed_and_the_configured_address_used() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE), b"shard eu-2 not an address at all").unwrap();
        let t = ShardTarget::load(addr("192.0.2.1:4433"), Some(dir.path()));
        assert_eq!(t.address(), &addr("192.0.2.1:4433"));
        assert!(!dir.path().join(FILE).exists());
    }
}
