//! Server-side sessions in memory and the login rate limit: plain data and functions over a
//! clock passed in, so expiry and limits are tested without waiting.
//!
//! A session is found by the SHA-256 of its cookie, never by the cookie itself: a map lookup
//! compares keys byte by byte, and comparing hashes leaks nothing useful about the token.

use std::collections::HashMap;
use std::sync::Mutex;

/// Longest a session may go unused.
pub const IDLE_MS: i64 = 30 * 60 * 1000;
/// Longest a session lives, used or not.
pub const ABSOLUTE_MS: i64 = 12 * 3600 * 1000;
/// Most sessions held at once; at the limit the oldest is dropped (a flood of logins cannot
/// grow memory without bound).
pub const MAX_SESSIONS: usize = 10_000;

/// One logged-in user's session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The user's name.
    pub user: String,
    /// Fingerprint of the password hash at login: a changed password ends the session.
    pub credential: String,
    /// The token every state-changing form carries.
    pub csrf: String,
    /// When the session began, Unix ms.
    pub created_ms: i64,
    /// When it was last used, Unix ms.
    pub used_ms: i64,
}

/// The sessions of the console.
#[derive(Debug, Default)]
pub struct Sessions {
    map: Mutex<HashMap<[u8; 32], Session>>,
}

/// A random token of 32 bytes as 64 hex digits.
pub fn random_token() -> String {
    let bytes: [u8; 32] = rand::random();
    hex(&bytes)
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn key(token: &str) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    let mut k = [0u8; 32];
    k.copy_from_slice(digest.as_ref());
    k
}

/// Whether two strings are equal, in time that depends on their length only.
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Session {
    fn expired(&self, now_ms: i64) -> bool {
        now_ms.saturating_sub(self.used_ms) >= IDLE_MS || now_ms.saturating_sub(self.created_ms) >= ABSOLUTE_MS
    }
}

impl Sessions {
    /// Starts a session for `user`; returns the cookie token.
    pub fn create(&self, user: &str, credential: &str, now_ms: i64) -> String {
        let token = random_token();
        let session =
            Session { user: user.to_owned(), credential: credential.to_owned(), csrf: random_token(), created_ms: now_ms, used_ms: now_ms };
        let mut map = self.lock();
        map.retain(|_, s| !s.expired(now_ms));
        if map.len() >= MAX_SESSIONS
            && let Some(oldest) = map.iter().min_by_key(|(_, s)| s.used_ms).map(|(k, _)| *k)
        {
            map.remove(&oldest);
        }
        map.insert(key(&token), session);
        token
    }

    /// The live session of `token`, marked as used at `now_ms`; an expired one is removed.
    pub fn touch(&self, token: &str, now_ms: i64) -> Option<Session> {
        let mut map = self.lock();
        let k = key(token);
        let s = map.get_mut(&k)?;
        if s.expired(now_ms) {
            map.remove(&k);
            return None;
        }
        s.used_ms = now_ms;
        Some(s.clone())
    }

    /// Ends the session of `token`.
    pub fn remove(&self, token: &str) {
        self.lock().remove(&key(token));
    }

    /// Ends every session of users for whom `keep` says no (removed users, changed passwords).
    pub fn retain(&self, keep: impl Fn(&Session) -> bool) {
        self.lock().retain(|_, s| keep(s));
    }

    /// Sessions held now (expired ones included until next cleaned).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    // A panic while holding the lock cannot leave the map half-changed (every change is one
    // call on the map), so a poisoned lock is still usable.
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Session>> {
        self.map.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Failed logins allowed per client address, and per user name, within [`WINDOW_MS`].
pub const MAX_FAILURES: u32 = 5;
/// The window failures are counted in; the limit lifts when it has passed since the first.
pub const WINDOW_MS: i64 = 15 * 60 * 1000;
/// Most keys the limiter tracks; at the limit, expired ones go, then the oldest.
const MAX_KEYS: usize = 100_000;

/// Counts failed logins per key (`addr:` + address, `user:` + name).
#[derive(Debug, Default)]
pub struct LoginLimiter {
    map: Mutex<HashMap<String, (i64, u32)>>,
}

impl LoginLimiter {
    /// Whether any of `keys` has used up its failures at `now_ms`.
    pub fn blocked(&self, keys: &[String], now_ms: i64) -> bool {
        let map = self.lock();
        keys.iter().any(|k| map.get(k).is_some_and(|&(first, n)| now_ms.saturating_sub(first) < WINDOW_MS && n >= MAX_FAILURES))
    }

    /// Counts a failure against each of `keys`.
    pub fn failed(&self, keys: &[String], now_ms: i64) {
        let mut map = self.lock();
        if map.len() + keys.len() > MAX_KEYS {
            map.retain(|_, (first, _)| now_ms.saturating_sub(*first) < WINDOW_MS);
        }
        for k in keys {
            if map.len() >= MAX_KEYS
                && let Some(oldest) = map.iter().min_by_key(|(_, v)| v.0).map(|(k, _)| k.clone())
            {
                map.remove(&oldest);
            }
            let entry = map.entry(k.clone()).or_insert((now_ms, 0));
            if now_ms.saturating_sub(entry.0) >= WINDOW_MS {
                *entry = (now_ms, 0);
            }
            entry.1 += 1;
        }
    }

    /// Forgets the failures of the user name after a successful login (not the address's:
    /// one good password must not reset a guesser's budget for other names).
    pub fn succeeded(&self, user_key: &str) {
        self.lock().remove(user_key);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (i64, u32)>> {
        self.map.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn sessions_expire_when_idle_and_after_their_lifetime() {
        let s = Sessions::default();
        let t = s.create("ann", "c", 0);
        assert_eq!(s.touch(&t, IDLE_MS - 1).unwrap().user, "ann");
        // Used just now: idle counts from the last use.
        assert!(s.touch(&t, 2 * IDLE_MS - 2).is_some());
        assert!(s.touch(&t, 3 * IDLE_MS).is_none(), "idle too long");
        let t = s.create("ann", "c", 0);
        let mut now = 0;
        while now + IDLE_MS / 2 < ABSOLUTE_MS {
            now += IDLE_MS / 2;
            assert!(s.touch(&t, now).is_some());
        }
        assert!(s.touch(&t, ABSOLUTE_MS).is_none(), "absolute lifetime over, however busy");
        assert!(s.touch("not a token", 0).is_none());
    }

    #[test]
    fn logout_and_retain_end_sessions() {
        let s = Sessions::default();
        let a = s.create("ann", "c", 0);
        let b = s.create("bob", "c", 0);
        s.remove(&a);
        assert!(s.touch(&a, 1).is_none());
        s.retain(|x| x.user != "bob");
        assert!(s.touch(&b, 1).is_none());
        assert!(s.is_empty());
    }

    #[test]
    fn the_limiter_blocks_after_max_failures_per_key_until_the_window_passes() {
        let l = LoginLimiter::default();
        let keys = ["addr:10.0.0.1".to_owned(), "user:ann".to_owned()];
        for _ in 0..MAX_FAILURES {
            assert!(!l.blocked(&keys, 0));
            l.failed(&keys, 0);
        }
        assert!(l.blocked(&keys, 1));
        // Another address, same user: still blocked (per user).
        assert!(l.blocked(&["addr:10.0.0.2".into(), "user:ann".into()], 1));
        // Same address, another user: blocked (per address).
        assert!(l.blocked(&["addr:10.0.0.1".into(), "user:bob".into()], 1));
        assert!(!l.blocked(&["addr:10.0.0.2".into(), "user:bob".into()], 1));
        assert!(!l.blocked(&keys, WINDOW_MS));
        assert!(same("abc", "abc") && !same("abc", "abd") && !same("abc", "ab"));
    }
}
