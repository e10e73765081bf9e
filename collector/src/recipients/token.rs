//! Opaque, signed, expiring link tokens.
//!
//! A token is `hex(version 2 | kind | expires-ms u64 BE | nonce[12] | AES-256-GCM(subject))`
//! with the first 10 bytes as associated data: the subject (an address or a report id) is
//! encrypted, so a link shows nobody the address it is for, and the GCM tag signs the whole.
//! Every kind expires, unsubscribe included (re-issued with every mail, long enough for a
//! monthly cycle). The AEAD key is derived from the 32 random bytes generated once into
//! `<data-dir>/delivery/link.key` (mode 0600); losing it invalidates every link sent. Tokens
//! are never logged.
//!
//! Before version 2, tokens were `hex(payload) "." hex(HMAC-SHA256(payload))` with the
//! address readable and unsubscribe links that never expired. Those are still accepted for
//! unsubscribing only, so mails already sent keep their one-click unsubscribe working.

use std::io::Write;
use std::path::{Path, PathBuf};

use ring::{aead, hmac};

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

    fn byte(self) -> u8 {
        match self {
            TokenKind::Confirm => 1,
            TokenKind::Unsubscribe => 2,
            TokenKind::Download => 3,
        }
    }
}

/// Token format version (the first byte).
const VERSION: u8 = 2;
/// Version, kind and expiry: the associated data.
const HEADER: usize = 10;

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

/// The keys for link tokens: the HMAC key of the old format and the AEAD key derived from it.
#[derive(Clone)]
pub struct LinkKey {
    hmac: hmac::Key,
    aead: std::sync::Arc<aead::LessSafeKey>,
}

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
        let hmac = hmac::Key::new(hmac::HMAC_SHA256, bytes);
        // A separate key for encryption, derived so the one key file serves both.
        let derived = hmac::sign(&hmac, b"ampel link token encryption v2");
        let unbound = aead::UnboundKey::new(&aead::AES_256_GCM, derived.as_ref()).unwrap_or_else(|_| unreachable!("32-byte key"));
        LinkKey { hmac, aead: std::sync::Arc::new(aead::LessSafeKey::new(unbound)) }
    }

    /// Loads `path`, or creates it (32 random bytes, mode 0600) when missing.
    pub fn load_or_create(path: &Path) -> Result<LinkKey, KeyError> {
        let io = |source| KeyError::Io { path: path.to_owned(), source };
        match crate::files::read_limited(path, crate::files::SMALL_MAX) {
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

    /// An opaque token for `subject`, valid until `expires_ms`.
    pub fn sign(&self, kind: TokenKind, subject: &str, expires_ms: i64) -> String {
        let mut token = Vec::with_capacity(HEADER + aead::NONCE_LEN + subject.len() + aead::MAX_TAG_LEN);
        token.push(VERSION);
        token.push(kind.byte());
        token.extend_from_slice(&expires_ms.to_be_bytes());
        let nonce: [u8; aead::NONCE_LEN] = rand::random();
        token.extend_from_slice(&nonce);
        let mut sealed = subject.as_bytes().to_vec();
        let aad = aead::Aad::from(token.get(..HEADER).unwrap_or_default().to_vec());
        // Sealing in memory cannot fail for inputs this small.
        let _ = self.aead.seal_in_place_append_tag(aead::Nonce::assume_unique_for_key(nonce), aad, &mut sealed);
        token.extend_from_slice(&sealed);
        hex(&token)
    }

    /// Checks a token and returns its subject.
    pub fn verify(&self, token: &str, kind: TokenKind, now_ms: i64) -> Result<String, TokenError> {
        let token = token.trim();
        if token.contains('.') {
            return self.verify_v1(token, kind, now_ms);
        }
        let mut bytes = unhex(token).ok_or(TokenError::Malformed)?;
        if bytes.len() < HEADER + aead::NONCE_LEN + aead::MAX_TAG_LEN || bytes.first() != Some(&VERSION) {
            return Err(TokenError::Malformed);
        }
        let mut sealed = bytes.split_off(HEADER + aead::NONCE_LEN);
        let nonce: [u8; aead::NONCE_LEN] = bytes.get(HEADER..).and_then(|n| n.try_into().ok()).ok_or(TokenError::Malformed)?;
        let header = bytes.get(..HEADER).ok_or(TokenError::Malformed)?.to_vec();
        let subject = self
            .aead
            .open_in_place(aead::Nonce::assume_unique_for_key(nonce), aead::Aad::from(header.as_slice()), &mut sealed)
            .map_err(|_| TokenError::BadSignature)?;
        let subject = String::from_utf8(subject.to_vec()).map_err(|_| TokenError::Malformed)?;
        if header.get(1) != Some(&kind.byte()) {
            return Err(TokenError::WrongKind);
        }
        let expires = i64::from_be_bytes(header.get(2..HEADER).and_then(|e| e.try_into().ok()).ok_or(TokenError::Malformed)?);
        if now_ms >= expires {
            return Err(TokenError::Expired);
        }
        Ok(subject)
    }

    /// The old format, `hex(kind \n expires-ms \n subject) "." hex(HMAC)`: accepted for
    /// unsubscribing only (see the module docs).
    fn verify_v1(&self, token: &str, kind: TokenKind, now_ms: i64) -> Result<String, TokenError> {
        if kind != TokenKind::Unsubscribe {
            return Err(TokenError::Malformed);
        }
        let (payload, tag) = token.split_once('.').ok_or(TokenError::Malformed)?;
        let payload = unhex(payload).ok_or(TokenError::Malformed)?;
        let tag = unhex(tag).ok_or(TokenError::Malformed)?;
        hmac::verify(&self.hmac, &payload, &tag).map_err(|_| TokenError::BadSignature)?;
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

    /// A token in the old format (tests of the transition).
    #[cfg(test)]
    pub(crate) fn sign_v1(&self, kind: TokenKind, subject: &str, expires_ms: i64) -> String {
        let payload = format!("{}\n{expires_ms}\n{subject}", kind.tag());
        let tag = hmac::sign(&self.hmac, payload.as_bytes());
        format!("{}.{}", hex(payload.as_bytes()), hex(tag.as_ref()))
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
        // Opaque: neither the address nor its hex form is in the token; two tokens differ.
        assert!(!t.contains("ops") && !t.contains(&hex(b"ops@example.org")), "{t}");
        assert_ne!(t, key.sign(TokenKind::Confirm, "ops@example.org", 1000));
        // Any changed byte (kind, expiry, nonce, ciphertext, tag) is refused.
        let raw = unhex(&t).unwrap();
        for i in 0..raw.len() {
            let mut bad = raw.clone();
            bad[i] ^= 1;
            assert!(key.verify(&hex(&bad), TokenKind::Confirm, 0).is_err(), "byte {i}");
        }
        let other = LinkKey::from_bytes(&[8; 32]).sign(TokenKind::Confirm, "ops@example.org", 1000);
        assert_eq!(key.verify(&other, TokenKind::Confirm, 0), Err(TokenError::BadSignature));
        for bad in ["", ".", "zz.zz", "abc", &"a".repeat(5000), "02"] {
            assert!(key.verify(bad, TokenKind::Confirm, 0).is_err(), "{bad:?}");
        }
        // Unsubscribe links expire like every other kind.
        let u = key.sign(TokenKind::Unsubscribe, "x@example.org", 5000);
        assert_eq!(key.verify(&u, TokenKind::Unsubscribe, 5000), Err(TokenError::Expired));
    }

    #[test]
    fn old_tokens_only_unsubscribe() {
        let key = LinkKey::from_bytes(&[7; 32]);
        let old = key.sign_v1(TokenKind::Unsubscribe, "x@example.org", 0);
        assert_eq!(key.verify(&old, TokenKind::Unsubscribe, i64::MAX).unwrap(), "x@example.org");
        let old_confirm = key.sign_v1(TokenKind::Confirm, "x@example.org", i64::MAX);
        assert!(key.verify(&old_confirm, TokenKind::Confirm, 0).is_err());
        let forged = LinkKey::from_bytes(&[8; 32]).sign_v1(TokenKind::Unsubscribe, "x@example.org", 0);
        assert_eq!(key.verify(&forged, TokenKind::Unsubscribe, 0), Err(TokenError::BadSignature));
    }

    #[test]
    fn the_key_is_created_once_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("delivery/link.key");
        let a = LinkKey::load_or_create(&path).unwrap();
        let t = a.sign(TokenKind::Download, "1", 10);
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
