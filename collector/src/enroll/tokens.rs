//! One-time enrollment tokens, kept as small files under `<pki-dir>/enroll/`.
//!
//! A record `<id>.token` (mode 0600) holds `tenant device expires_at sha256(secret)`: the secret
//! itself is never stored, so reading the directory does not let anyone enroll. Redeeming checks
//! expiry, binding and secret, then renames the record to `<id>.used`; rename is atomic, so of
//! two concurrent redemptions exactly one wins, and a replay finds no `.token` file.
//!
//! Files rather than an LMDB environment: tokens are few, written by the CLI and read by the
//! server, and a rename gives single use for free.

use std::path::{Path, PathBuf};

use ampel_protocol::enroll::Token;
use ampel_protocol::{DeviceId, TenantId};

use crate::pki::PkiError;

/// Name of the token directory inside the PKI directory.
pub const TOKEN_DIR: &str = "enroll";

/// Why a token was refused. The agent is told only [`Refusal::public`], which does not say
/// whether the id or the secret was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// No record with that id, or the secret does not match.
    #[error("unknown token or wrong secret")]
    Unknown,
    /// The token was redeemed already.
    #[error("token already used")]
    Used,
    /// The token expired.
    #[error("token expired")]
    Expired,
    /// The request names another tenant or device than the token was made for.
    #[error("token was issued for another tenant or device")]
    WrongBinding,
    /// The record could not be read or marked used.
    #[error("token store unavailable")]
    Store,
}

/// The token records of one deployment.
#[derive(Debug, Clone)]
pub struct TokenStore {
    dir: PathBuf,
}

fn sha256_hex(s: &str) -> String {
    ring::digest::digest(&ring::digest::SHA256, s.as_bytes()).as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

fn random_hex(bytes: usize) -> String {
    (0..bytes).map(|_| format!("{:02x}", rand::random::<u8>())).collect()
}

impl TokenStore {
    /// The store in `pki_dir`.
    pub fn new(pki_dir: &Path) -> TokenStore {
        TokenStore { dir: pki_dir.join(TOKEN_DIR) }
    }

    /// Creates a token for `device` of `tenant`, valid until `expires_at` (Unix seconds), for a
    /// CA with fingerprint `ca_sha256`. The returned token holds the only copy of the secret.
    pub fn create(&self, tenant: &TenantId, device: &DeviceId, expires_at: i64, ca_sha256: &str) -> Result<Token, PkiError> {
        crate::pki::create_private_dir(&self.dir)?;
        let id = random_hex(8);
        let secret = random_hex(32);
        let record = format!("{tenant} {device} {expires_at} {}\n", sha256_hex(&secret));
        crate::pki::write_new_private(&self.dir.join(format!("{id}.token")), record.as_bytes())?;
        Ok(Token { tenant: tenant.clone(), device: device.clone(), id, secret, ca_sha256: ca_sha256.to_owned() })
    }

    /// Redeems a token: checks it and marks it used. `now` in Unix seconds.
    pub fn redeem(&self, id: &str, secret: &str, tenant: &str, device: &str, now: i64) -> Result<(TenantId, DeviceId), Refusal> {
        // The id names a file: only 16 hex digits may get that far.
        if id.len() != 16 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Refusal::Unknown);
        }
        let live = self.dir.join(format!("{id}.token"));
        let used = self.dir.join(format!("{id}.used"));
        let text = match crate::files::read_limited_to_string(&live, crate::files::SMALL_MAX) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(if used.exists() { Refusal::Used } else { Refusal::Unknown });
            }
            Err(e) => {
                tracing::error!(path = %live.display(), error = %e, "cannot read token record");
                return Err(Refusal::Store);
            }
        };
        let mut f = text.split_ascii_whitespace();
        let (Some(t), Some(d), Some(exp), Some(hash)) = (f.next(), f.next(), f.next(), f.next()) else {
            tracing::error!(path = %live.display(), "malformed token record");
            return Err(Refusal::Store);
        };
        // Compare digests: their bytes tell an attacker nothing about the secret.
        if sha256_hex(secret) != hash {
            return Err(Refusal::Unknown);
        }
        if t != tenant || d != device {
            return Err(Refusal::WrongBinding);
        }
        if exp.parse::<i64>().map_or(true, |exp| now >= exp) {
            return Err(Refusal::Expired);
        }
        let (Ok(tenant), Ok(device)) = (TenantId::new(t), DeviceId::new(d)) else { return Err(Refusal::Store) };
        match std::fs::rename(&live, &used) {
            Ok(()) => Ok((tenant, device)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Refusal::Used),
            Err(e) => {
                tracing::error!(path = %live.display(), error = %e, "cannot mark token used");
                Err(Refusal::Store)
            }
        }
    }
}

/// A token made by [`issue`]: its text form holds the only copy of the secret.
#[derive(Debug)]
pub struct Issued {
    /// The token; [`Token::to_text`] is what the operator hands to the device.
    pub token: Token,
    /// When it stops working, Unix seconds.
    pub expires_at: i64,
}

/// Why [`issue`] made no token.
#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    /// The device id is registered under another tenant: device ids are unique.
    #[error("device {device} is registered under tenant {tenant}; device ids must be unique")]
    DeviceTaken {
        /// The device asked for.
        device: DeviceId,
        /// The tenant it is registered under.
        tenant: String,
    },
    /// Looking the device up in the store failed.
    #[error("looking up device {device}")]
    Store {
        /// The device.
        device: DeviceId,
        /// What the store said.
        source: crate::store::StoreError,
    },
    /// Writing the token record failed.
    #[error("creating the token")]
    Pki(#[from] PkiError),
}

/// `pki token` and the console's enrollment page: a one-time token for `device` of `tenant`,
/// valid for `ttl` from `now` (Unix seconds), for the CA of `pki`. A device id already
/// registered under another tenant is refused.
pub fn issue(
    pki: &crate::pki::Pki,
    store: &crate::store::Store,
    (tenant, device): (&TenantId, &DeviceId),
    ttl: crate::config::TokenTtl,
    now: i64,
) -> Result<Issued, IssueError> {
    let existing = store.device(device.as_str()).map_err(|source| IssueError::Store { device: device.clone(), source })?;
    if let Some(existing) = existing.filter(|d| d.tenant != tenant.as_str()) {
        return Err(IssueError::DeviceTaken { device: device.clone(), tenant: existing.tenant });
    }
    // At most 30 days: no overflow.
    let expires_at = now.saturating_add(i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX / 2));
    let token = TokenStore::new(pki.dir()).create(tenant, device, expires_at, &pki.ca_fingerprint())?;
    Ok(Issued { token, expires_at })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_single_use_bound_and_expiring() {
        let dir = tempfile::tempdir().unwrap();
        let s = TokenStore::new(dir.path());
        let (t, d) = ("acme".parse().unwrap(), "fw-1".parse().unwrap());
        let tok = s.create(&t, &d, 1000, &"0".repeat(64)).unwrap();
        assert_eq!(s.redeem(&tok.id, &"f".repeat(64), "acme", "fw-1", 10), Err(Refusal::Unknown));
        assert_eq!(s.redeem(&tok.id, &tok.secret, "globex", "fw-1", 10), Err(Refusal::WrongBinding));
        assert_eq!(s.redeem(&tok.id, &tok.secret, "acme", "fw-2", 10), Err(Refusal::WrongBinding));
        assert_eq!(s.redeem(&tok.id, &tok.secret, "acme", "fw-1", 1000), Err(Refusal::Expired));
        assert!(s.redeem(&tok.id, &tok.secret, "acme", "fw-1", 999).is_ok());
        assert_eq!(s.redeem(&tok.id, &tok.secret, "acme", "fw-1", 999), Err(Refusal::Used));
        assert_eq!(s.redeem("../../etc/passw", &tok.secret, "acme", "fw-1", 999), Err(Refusal::Unknown));
        let record = std::fs::read_to_string(dir.path().join(TOKEN_DIR).join(format!("{}.used", tok.id))).unwrap();
        assert!(!record.contains(&tok.secret), "the secret is not stored");
    }

    #[test]
    fn issue_binds_the_token_to_the_ca_and_refuses_a_device_id_of_another_tenant() {
        let dir = tempfile::tempdir().unwrap();
        let opts = crate::pki::InitOptions { names: vec!["localhost".into()], ..crate::pki::InitOptions::default() };
        let pki = crate::pki::Pki::init(&dir.path().join("pki"), &opts).unwrap();
        let store = crate::store::Store::open(&dir.path().join("store"), crate::store::StoreOptions::default()).unwrap();
        let (acme, globex, fw): (TenantId, TenantId, DeviceId) =
            ("acme".parse().unwrap(), "globex".parse().unwrap(), "fw-1".parse().unwrap());
        store.register_device(&acme, &fw, 0).unwrap();
        let ttl: crate::config::TokenTtl = "1h".parse().unwrap();
        let issued = issue(&pki, &store, (&acme, &fw), ttl, 1_000).unwrap();
        assert_eq!((issued.expires_at, issued.token.ca_sha256.as_str()), (4_600, pki.ca_fingerprint().as_str()));
        let redeemed = TokenStore::new(pki.dir()).redeem(&issued.token.id, &issued.token.secret, "acme", "fw-1", 4_599);
        assert_eq!(redeemed, Ok((acme, fw.clone())));
        let taken = issue(&pki, &store, (&globex, &fw), ttl, 1_000).unwrap_err();
        assert!(matches!(&taken, IssueError::DeviceTaken { tenant, .. } if tenant == "acme"), "{taken}");
    }
}
