//! Per-user API tokens: `ampel-collector user token NAME` makes one, prints it once and keeps
//! only its SHA-256 (with the user, a short id, creation and expiry) in
//! `<data-dir>/console/tokens.json` (mode 0600, replaced atomically, read with a size bound).
//!
//! A plain file rather than the delivery store: the CLI writes it while the server runs (the
//! LMDB environment is the server's). The server keeps what it read with the file's identity
//! (device, inode, size, modification time) and reads it again when that changes — the CLI
//! replaces the file by a rename, so every write is a new inode — so a token revoked on the
//! command line is refused at the next request, without a read and parse per request. The tokens are 256
//! random bits: their hashes are safe at rest, and a lookup compares hashes, never tokens.
//! Run as root, the command gives the file (and the console directory and audit log) the
//! owner of the directory they are in, so the server, running as its own user, reads them.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use super::session::{hex, random_token, same};
use super::users::UserName;

/// The file inside the console directory.
pub const FILE: &str = "tokens.json";
/// The most the file may hold (about 20 000 tokens).
const MAX_BYTES: u64 = 4 << 20;
/// What every token starts with, so that a leaked one is recognisable in a scan.
pub const PREFIX: &str = "ampel_";

/// One token as stored: never the token itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    /// Short id, shown by `user tokens` and given to `user revoke-token`.
    pub id: String,
    /// The user the token acts as (a [`UserName`]).
    pub user: String,
    /// SHA-256 of the token, lowercase hex.
    pub sha256: String,
    /// When it was made, Unix ms.
    pub created_ms: i64,
    /// When it stops working, Unix ms.
    pub expires_ms: i64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenFile {
    version: u32,
    tokens: Vec<TokenRecord>,
}

/// The file's format.
const VERSION: u32 = 1;

/// Why the token file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// Reading, writing or setting the mode failed.
    #[error("token file {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not a token file of this release (edited, cut short, newer).
    #[error("token file {} is damaged: {reason}", path.display())]
    Damaged {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// `user revoke-token` named an id that is not there.
    #[error("no token with id {0:?}; `ampel-collector user tokens` lists them")]
    NoSuchToken(String),
}

/// The token file of a data directory, with what was last read of it.
#[derive(Debug, Clone)]
pub struct Tokens {
    path: PathBuf,
    cache: Arc<Cache>,
}

/// The tokens as last read, with the identity of the file they came from.
#[derive(Debug, Default)]
struct Cache {
    read: Mutex<Option<(Stamp, Arc<Vec<TokenRecord>>)>>,
    /// Times the file was read and parsed, for the tests.
    reads: AtomicU64,
}

/// What tells one version of the file from another: a rename gives a new inode, an edit in
/// place a new size or modification time. `None` in [`Tokens::current`]: no file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime_ns: i128,
}

impl Stamp {
    fn of(meta: &std::fs::Metadata) -> Stamp {
        use std::os::unix::fs::MetadataExt;
        let mtime_ns = i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec());
        Stamp { dev: meta.dev(), ino: meta.ino(), size: meta.size(), mtime_ns }
    }
}

/// Gives `path` the owner of its directory when they differ: `user token` usually runs as
/// root, the server as the collector's own user, who must still read the file (and append to
/// the audit log). A no-op when both are the same, as for the server itself.
fn owned_like_parent(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let Some(parent) = path.parent() else { return Ok(()) };
    let (want, have) = (std::fs::metadata(parent)?, std::fs::metadata(path)?);
    if (want.uid(), want.gid()) == (have.uid(), have.gid()) {
        return Ok(());
    }
    std::os::unix::fs::chown(path, Some(want.uid()), Some(want.gid()))
}

fn sha256_hex(token: &str) -> String {
    hex(ring::digest::digest(&ring::digest::SHA256, token.as_bytes()).as_ref())
}

impl Tokens {
    /// The file under `<data-dir>/console/`.
    pub fn new(console_dir: &Path) -> Tokens {
        Tokens { path: console_dir.join(FILE), cache: Arc::default() }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn io(&self) -> impl Fn(std::io::Error) -> TokenError + '_ {
        |source| TokenError::Io { path: self.path.clone(), source }
    }

    /// Every stored token; no file yet is none.
    pub fn list(&self) -> Result<Vec<TokenRecord>, TokenError> {
        let bytes = match crate::files::read_limited(&self.path, MAX_BYTES) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(self.io()(e)),
        };
        let damaged = |reason: String| TokenError::Damaged { path: self.path.clone(), reason };
        let file: TokenFile = serde_json::from_slice(&bytes).map_err(|e| damaged(e.to_string()))?;
        if file.version != VERSION {
            return Err(damaged(format!("version {} (this release reads {VERSION})", file.version)));
        }
        Ok(file.tokens)
    }

    fn save(&self, tokens: Vec<TokenRecord>) -> Result<(), TokenError> {
        if let Some(dir) = self.path.parent() {
            crate::files::create_dir_all(dir).map_err(self.io())?;
            owned_like_parent(dir).map_err(self.io())?;
        }
        let bytes = serde_json::to_vec_pretty(&TokenFile { version: VERSION, tokens }).map_err(|e| self.io()(std::io::Error::other(e)))?;
        // Secret-adjacent (hashes of bearer tokens): 0600 from the first byte.
        crate::files::write_atomic(&self.path, &bytes, 0o600, true).map_err(self.io())?;
        owned_like_parent(&self.path).map_err(self.io())
    }

    /// Makes a token for `user` valid until `expires_ms`; returns it (the only time it is
    /// seen) with its record.
    pub fn create(&self, user: &UserName, now_ms: i64, expires_ms: i64) -> Result<(String, TokenRecord), TokenError> {
        let mut tokens = self.list()?;
        let token = format!("{PREFIX}{}", random_token());
        let id = loop {
            let id = hex(&rand::random::<[u8; 4]>());
            if !tokens.iter().any(|t| t.id == id) {
                break id;
            }
        };
        let record = TokenRecord { id, user: user.as_str().to_owned(), sha256: sha256_hex(&token), created_ms: now_ms, expires_ms };
        tokens.push(record.clone());
        self.save(tokens)?;
        Ok((token, record))
    }

    /// Removes the token `id`; returns what it was.
    pub fn revoke(&self, id: &str) -> Result<TokenRecord, TokenError> {
        let mut tokens = self.list()?;
        let at = tokens.iter().position(|t| t.id == id).ok_or_else(|| TokenError::NoSuchToken(id.to_owned()))?;
        let gone = tokens.remove(at);
        self.save(tokens)?;
        Ok(gone)
    }

    /// The record of `token` if it is stored and not expired at `now_ms`, from the file as it
    /// is now (read again only when it changed).
    pub fn verify(&self, token: &str, now_ms: i64) -> Result<Option<TokenRecord>, TokenError> {
        let digest = sha256_hex(token);
        Ok(self.current()?.iter().find(|t| same(&t.sha256, &digest) && now_ms < t.expires_ms).cloned())
    }

    /// The stored tokens: those read before while the file is the same, else read again. The
    /// identity is taken before the read, so a file replaced meanwhile is read again next time.
    fn current(&self) -> Result<Arc<Vec<TokenRecord>>, TokenError> {
        let stamp = match std::fs::metadata(&self.path) {
            Ok(meta) => Some(Stamp::of(&meta)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(self.io()(e)),
        };
        let mut read = self.cache.read.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(stamp) = stamp else {
            *read = None;
            return Ok(Arc::default());
        };
        if let Some((seen, tokens)) = read.as_ref()
            && *seen == stamp
        {
            return Ok(tokens.clone());
        }
        let tokens = Arc::new(self.list()?);
        self.cache.reads.fetch_add(1, Ordering::Relaxed);
        *read = Some((stamp, tokens.clone()));
        Ok(tokens)
    }
}

/// The longest a token may live: a year. An API token is a standing credential of a person;
/// one that never ends outlives the reason it was made.
pub const MAX_TTL: std::time::Duration = std::time::Duration::from_secs(365 * 86_400);

/// Records a token change made on the command line in the console's audit log.
fn audit(cfg: &crate::config::Config, action: &str, record: &TokenRecord) -> anyhow::Result<()> {
    let event = super::audit::AuditEvent {
        at_ms: super::now_ms(),
        user: "(command line)".to_owned(),
        action: action.to_owned(),
        target: format!("token {} of {}", record.id, record.user),
        client: "local".to_owned(),
    };
    let dir = cfg.data_dir.join("console");
    super::audit::AuditLog::new(&dir).append(&event)?;
    let file = dir.join(super::audit::FILE);
    owned_like_parent(&file).with_context(|| format!("giving {} the owner of its directory", file.display()))
}

fn utc(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms).map_or_else(|_| format!("{ms} ms"), |t| t.strftime("%Y-%m-%d %H:%M UTC").to_string())
}

/// `ampel-collector user token NAME --ttl`: makes a token for a `[[users]]` entry and prints
/// it once on stdout (what it is for goes to stderr).
pub fn create_command(cfg: &crate::config::Config, name: &str, ttl: crate::config::Duration) -> anyhow::Result<()> {
    let Some(user) = cfg.users.iter().find(|u| u.name.as_str() == name) else {
        anyhow::bail!("{name:?} is not in [[users]] of the config; add the user first");
    };
    if ttl.0.is_zero() || ttl.0 > MAX_TTL {
        anyhow::bail!("--ttl must be between 1s and 365d");
    }
    let now = super::now_ms();
    let (token, record) = Tokens::new(&cfg.data_dir.join("console")).create(&user.name, now, now.saturating_add(ttl.as_ms()))?;
    audit(cfg, "token-create", &record)?;
    eprintln!(
        "API token {} for {} ({}), valid until {}. It is shown only now:",
        record.id,
        name,
        user.role.as_str(),
        utc(record.expires_ms)
    );
    println!("{token}");
    Ok(())
}

/// `ampel-collector user tokens`: every token's id, user, creation and expiry (never the token).
pub fn list_command(cfg: &crate::config::Config) -> anyhow::Result<()> {
    let now = super::now_ms();
    println!("{:<10} {:<24} {:<22} {:<22}", "ID", "USER", "CREATED", "EXPIRES");
    for t in Tokens::new(&cfg.data_dir.join("console")).list()? {
        let expired = if t.expires_ms <= now { " (expired)" } else { "" };
        let gone = if cfg.users.iter().any(|u| u.name.as_str() == t.user) { "" } else { " (user not in [[users]])" };
        println!("{:<10} {:<24} {:<22} {}{expired}{gone}", t.id, t.user, utc(t.created_ms), utc(t.expires_ms));
    }
    Ok(())
}

/// `ampel-collector user revoke-token ID`: the token stops working at the next request.
pub fn revoke_command(cfg: &crate::config::Config, id: &str) -> anyhow::Result<()> {
    let record = Tokens::new(&cfg.data_dir.join("console")).revoke(id)?;
    audit(cfg, "token-revoke", &record)?;
    eprintln!("Token {} of {} revoked.", record.id, record.user);
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn tokens_verify_until_they_expire_or_are_revoked_and_only_hashes_are_stored() {
        let dir = tempfile::tempdir().unwrap();
        let tokens = Tokens::new(&dir.path().join("console"));
        assert!(tokens.list().unwrap().is_empty());
        let ann = UserName::parse("ann").unwrap();
        let (token, rec) = tokens.create(&ann, 0, 1000).unwrap();
        let (other, _) = tokens.create(&ann, 0, 1000).unwrap();
        assert!(token.starts_with(PREFIX) && token != other);
        assert_eq!(tokens.verify(&token, 999).unwrap(), Some(rec.clone()));
        assert_eq!(tokens.verify(&token, 1000).unwrap(), None, "expired");
        assert_eq!(tokens.verify("ampel_guess", 0).unwrap(), None);
        let raw = std::fs::read_to_string(tokens.path()).unwrap();
        assert!(!raw.contains(&token[PREFIX.len()..]) && raw.contains(&rec.sha256));
        assert_eq!(std::fs::metadata(tokens.path()).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(tokens.revoke(&rec.id).unwrap().id, rec.id);
        assert_eq!(tokens.verify(&token, 1).unwrap(), None, "revoked");
        assert!(tokens.verify(&other, 1).unwrap().is_some(), "the other token lives on");
        assert!(matches!(tokens.revoke(&rec.id), Err(TokenError::NoSuchToken(_))));
    }

    #[test]
    fn the_file_is_read_again_only_when_it_changed_and_a_revocation_applies_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let server = Tokens::new(dir.path());
        let cli = Tokens::new(dir.path());
        let ann = UserName::parse("ann").unwrap();
        let (token, rec) = cli.create(&ann, 0, 1000).unwrap();
        for _ in 0..3 {
            assert!(server.verify(&token, 1).unwrap().is_some());
        }
        assert_eq!(server.cache.reads.load(Ordering::Relaxed), 1, "one read for three requests");
        // Same size, written within the same instant: only the inode tells it apart.
        cli.revoke(&rec.id).unwrap();
        assert_eq!(server.verify(&token, 1).unwrap(), None, "revoked on the command line: refused at the next request");
        assert_eq!(server.cache.reads.load(Ordering::Relaxed), 2);
        std::fs::remove_file(server.path()).unwrap();
        assert_eq!(server.verify(&token, 1).unwrap(), None, "no file, no tokens");
    }

    #[test]
    fn a_damaged_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let tokens = Tokens::new(dir.path());
        std::fs::write(tokens.path(), b"{\"version\":1,\"tokens\":[").unwrap();
        let err = tokens.verify("ampel_x", 0).unwrap_err().to_string();
        assert!(err.contains(FILE) && err.contains("damaged"), "{err}");
        std::fs::write(tokens.path(), b"{\"version\":2,\"tokens\":[]}").unwrap();
        assert!(tokens.list().unwrap_err().to_string().contains("version 2"));
    }

    /// Prints what checking a token costs with many stored (the file is read at every API
    /// request). Run with `cargo test -p ampel-collector --lib console::tokens::tests::bench
    /// -- --ignored --nocapture`.
    #[test]
    #[ignore = "a benchmark: prints figures"]
    fn bench_verify() {
        let dir = tempfile::tempdir().unwrap();
        let tokens = Tokens::new(dir.path());
        let n = 1000;
        let records = (0..n)
            .map(|i| TokenRecord {
                id: format!("{i:08x}"),
                user: "ann".into(),
                sha256: sha256_hex(&format!("t{i}")),
                created_ms: 0,
                expires_ms: 1,
            })
            .collect();
        tokens.save(records).unwrap();
        let rounds = 200;
        let start = std::time::Instant::now();
        for _ in 0..rounds {
            assert!(tokens.verify("t999", 0).unwrap().is_some());
        }
        let bytes = std::fs::metadata(tokens.path()).unwrap().len();
        println!("token_verify_{n}_stored: {:?} per request, file {} KiB", start.elapsed() / rounds, bytes / 1024);
    }
}
