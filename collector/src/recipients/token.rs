//! Signed, expiring link tokens: `hex(payload) "." hex(HMAC-SHA256(payload))`.
//!
//! The payload is `kind \n expires-ms \n subject` (subject: an address or a report id). The
//! key is 32 random bytes generated once into `<data-dir>/delivery/link.key` with mode 0600;
//! losing it invalidates every link sent. Tokens are never logged.

use std::io::Write;
use std::path::{Path, PathBuf};

use ring::hmac;

/// What a token allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// Confirm a subscription (invitation link).
    Confirm,
    /// Unsubscribe (in invitations and every report mail).
    Unsubscribe,
    /// Download an archived report.
    Download,
}

impl TokenKind {
    fn tag(self) -> &'static str {
        match self {
            TokenKind::Confirm => "confirm",
            TokenKind::Unsubscribe => "unsubscribe",
            TokenKind::Download => "download",
        }
    }
}

/// Why a token was refused. The HTTP listener answers all of these alike, without detail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not of the token form.
    #[error("the link is malformed")]
    Malformed,
    /// The signature does not match (tampered, or signed with another key).
    #[error("the link's signature is not valid")]
    BadSignature,
    /// A valid token of another kind (e.g. a download token used to unsubscribe).
    #[error("the link is not meant for this")]
    WrongKind,
    /// Past its expiry.
    #[error("the link has expired")]
    Expired,
}

/// Why the key could not be loaded or created.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Reading, creating or restricting the key file failed.
    #[error("link key {}: {source}", path.display())]
    Io {
        /// The key file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not 32 bytes.
    #[error("link key {}: holds {len} bytes, expected 32; delete it to make a new one (every link sent so far stops working)", path.display())]
    Length {
        /// The key file.
        path: PathBuf,
        /// Its length.
        len: usize,
    },
}

/// The HMAC key for link tokens.
#[derive(Clone)]
pub struct LinkKey(hmac::Key);

impl std::fmt::Debug for LinkKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LinkKey(<redacted>)")
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || s.len() > 2048 {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
}

impl LinkKey {
    /// A key from raw bytes (tests).
    pub fn from_bytes(bytes: &[u8]) -> LinkKey {
        LinkKey(hmac::Key::new(hmac::HMAC_SHA256, bytes))
    }

    /// Loads `path`, or creates it (32 random bytes, mode 0600) when missing.
    pub fn load_or_create(path: &Path) -> Result<LinkKey, KeyError> {
        let io = |source| KeyError::Io { path: path.to_owned(), source };
        match std::fs::read(path) {
            Ok(bytes) if bytes.len() == 32 => {
                restrict(path).map_err(io)?;
                Ok(LinkKey::from_bytes(&bytes))
            }
            Ok(bytes) => Err(KeyError::Length { path: path.to_owned(), len: bytes.len() }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir).map_err(io)?;
                }
                let bytes: [u8; 32] = rand::random();
                let mut opts = std::fs::OpenOptions::new();
                opts.write(true).create_new(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
                let mut f = opts.open(path).map_err(io)?;
                f.write_all(&bytes).and_then(|()| f.sync_all()).map_err(io)?;
                tracing::info!(file = %path.display(), "created the link signing key");
                Ok(LinkKey::from_bytes(&bytes))
            }
            Err(e) => Err(io(e)),
        }
    }

    /// Signs a token for `subject`, valid until `expires_ms` (0: never expires).
    pub fn sign(&self, kind: TokenKind, subject: &str, expires_ms: i64) -> String {
        let payload = format!("{}\n{expires_ms}\n{subject}", kind.tag());
        let tag = hmac::sign(&self.0, payload.as_bytes());
        format!("{}.{}", hex(payload.as_bytes()), hex(tag.as_ref()))
    }

    /// Checks a token and returns its subject.
    pub fn verify(&self, token: &str, kind: TokenKind, now_ms: i64) -> Result<String, TokenError> {
        let (payload, tag) = token.trim().split_once('.').ok_or(TokenError::Malformed)?;
        let payload = unhex(payload).ok_or(TokenError::Malformed)?;
        let tag = unhex(tag).ok_or(TokenError::Malformed)?;
        hmac::verify(&self.0, &payload, &tag).map_err(|_| TokenError::BadSignature)?;
        let payload = String::from_utf8(payload).map_err(|_| TokenError::Malformed)?;
        let mut parts = payload.splitn(3, '\n');
        let (Some(k), Some(exp), Some(subject)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(TokenError::Malformed);
        };
        if k != kind.tag() {
            return Err(TokenError::WrongKind);
        }
        let exp: i64 = exp.parse().map_err(|_| TokenError::Malformed)?;
        if exp != 0 && now_ms >= exp {
            return Err(TokenError::Expired);
        }
        Ok(subject.to_owned())
    }
}

#[cfg(unix)]
fn restrict(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)?.permissions().mode();
    if mode & 0o077 != 0 {
        tracing::warn!(file = %path.display(), "the link key was readable by others; restricting it to 0600");
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

#[cfg(not(unix))]
fn restrict(_path: &Path) -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_refuse_tampering_expiry_and_other_kinds() {
        let key = LinkKey::from_bytes(&[7; 32]);
        let t = key.sign(TokenKind::Confirm, "ops@example.org", 1000);
        assert_eq!(key.verify(&t, TokenKind::Confirm, 999).unwrap(), "ops@example.org");
        assert_eq!(key.verify(&t, TokenKind::Confirm, 1000), Err(TokenError::Expired));
        assert_eq!(key.verify(&t, TokenKind::Unsubscribe, 0), Err(TokenError::WrongKind));
        // Tamper with the subject, keeping the signature.
        let forged = LinkKey::from_bytes(&[7; 32]).sign(TokenKind::Confirm, "eve@example.org", 1000);
        let mixed = format!("{}.{}", forged.split('.').next().unwrap(), t.split('.').nth(1).unwrap());
        assert_eq!(key.verify(&mixed, TokenKind::Confirm, 0), Err(TokenError::BadSignature));
        let other = LinkKey::from_bytes(&[8; 32]).sign(TokenKind::Confirm, "ops@example.org", 1000);
        assert_eq!(key.verify(&other, TokenKind::Confirm, 0), Err(TokenError::BadSignature));
        for bad in ["", ".", "zz.zz", "abc", &"a".repeat(5000)] {
            assert!(key.verify(bad, TokenKind::Confirm, 0).is_err(), "{bad:?}");
        }
        let forever = key.sign(TokenKind::Unsubscribe, "x@example.org", 0);
        assert!(key.verify(&forever, TokenKind::Unsubscribe, i64::MAX).is_ok());
    }

    #[test]
    fn the_key_is_created_once_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("delivery/link.key");
        let a = LinkKey::load_or_create(&path).unwrap();
        let t = a.sign(TokenKind::Download, "1", 0);
        let b = LinkKey::load_or_create(&path).unwrap();
        assert!(b.verify(&t, TokenKind::Download, 0).is_ok(), "the same key after a restart");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        std::fs::write(&path, b"short").unwrap();
        assert!(matches!(LinkKey::load_or_create(&path), Err(KeyError::Length { len: 5, .. })));
    }
}
