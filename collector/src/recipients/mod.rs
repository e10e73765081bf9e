//! Opt-in of report recipients: invitations, signed confirm / unsubscribe links, states and
//! the consent log.
//!
//! Opt-in is per address, across jobs: an address listed in any job's `to` or `cc` is invited
//! once; after confirming it gets the reports of every job that lists it, until it
//! unsubscribes (which stops all of them, and it is not invited again). Every change is logged
//! with time and origin (the HTTP client's address, `scheduler` or `cli`) in the same LMDB
//! transaction as the state change.
//!
//! # Layout
//!
//! - `token`: [`LinkKey`], signed expiring tokens.
//! - this file: [`Links`] (URLs), [`invitation`], [`confirm`], [`unsubscribe`].

pub mod token;

pub use token::{KeyError, LinkKey, TokenError, TokenKind};

use crate::mail::OutgoingMail;
use crate::schedule::{ConsentEvent, DeliveryStore, DeliveryStoreError, Language, RecipientState};

/// Why an opt-in action failed.
#[derive(Debug, thiserror::Error)]
pub enum OptInError {
    /// The link is malformed, tampered, expired or of another kind.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// The delivery store failed.
    #[error(transparent)]
    Store(#[from] DeliveryStoreError),
}

/// Builds signed links under the collector's public URL.
#[derive(Debug, Clone)]
pub struct Links {
    /// e.g. `https://ampel.example.org` (no trailing slash).
    pub public_url: String,
    /// The signing key.
    pub key: LinkKey,
}

impl Links {
    /// The confirm link of an invitation.
    pub fn confirm_url(&self, address: &str, expires_ms: i64) -> String {
        format!("{}/confirm?t={}", self.public_url, self.key.sign(TokenKind::Confirm, &address.to_lowercase(), expires_ms))
    }

    /// The unsubscribe link; it does not expire (old mails keep working, RFC 8058).
    pub fn unsubscribe_url(&self, address: &str) -> String {
        format!("{}/unsubscribe?t={}", self.public_url, self.key.sign(TokenKind::Unsubscribe, &address.to_lowercase(), 0))
    }

    /// A download link for an archived report.
    pub fn download_url(&self, report_id: u64, expires_ms: i64) -> String {
        format!("{}/download?t={}", self.public_url, self.key.sign(TokenKind::Download, &report_id.to_string(), expires_ms))
    }
}

/// The invitation mail: what it is for, a confirm link and an unsubscribe link.
pub fn invitation(language: Language, address: &str, tenants: &[String], confirm_url: &str, unsubscribe_url: &str) -> OutgoingMail {
    let tenants = tenants.join(", ");
    let (subject, text) = match language {
        Language::En => (
            "Ampel: please confirm that you want security reports".to_owned(),
            format!(
                "Hello,\n\nthis address ({address}) was entered to receive Ampel security reports for: {tenants}.\n\n\
                 To receive them, confirm here:\n{confirm_url}\n\n\
                 If you do not want them, do nothing, or unsubscribe here:\n{unsubscribe_url}\n"
            ),
        ),
        Language::De => (
            "Ampel: Bitte bestätigen Sie den Empfang von Sicherheitsberichten".to_owned(),
            format!(
                "Guten Tag,\n\ndiese Adresse ({address}) wurde für Ampel-Sicherheitsberichte eingetragen: {tenants}.\n\n\
                 Um sie zu erhalten, bestätigen Sie hier:\n{confirm_url}\n\n\
                 Wenn Sie sie nicht wünschen, tun Sie nichts oder melden Sie sich hier ab:\n{unsubscribe_url}\n"
            ),
        ),
    };
    OutgoingMail {
        to: vec![address.to_owned()],
        subject,
        text,
        list_unsubscribe: Some(unsubscribe_url.to_owned()),
        ..OutgoingMail::default()
    }
}

/// Records that `address` was invited (unless it is known already). Returns whether an
/// invitation should go out.
pub fn record_invitation(store: &DeliveryStore, address: &str, job: &str, now_ms: i64) -> Result<bool, DeliveryStoreError> {
    if store.recipient(address)?.is_some() {
        return Ok(false);
    }
    let event = ConsentEvent {
        at_ms: now_ms,
        address: address.to_lowercase(),
        event: "invited".into(),
        source: "scheduler".into(),
        detail: format!("job {job}"),
    };
    store.set_recipient_state(address, RecipientState::Invited, event)?;
    Ok(true)
}

/// Confirms the address in a confirm token. Returns the address.
pub fn confirm(store: &DeliveryStore, key: &LinkKey, token: &str, source: &str, now_ms: i64) -> Result<String, OptInError> {
    let address = key.verify(token, TokenKind::Confirm, now_ms)?;
    if store.recipient(&address)?.is_none_or(|r| r.state != RecipientState::Confirmed) {
        let event = ConsentEvent {
            at_ms: now_ms,
            address: address.clone(),
            event: "confirmed".into(),
            source: source.into(),
            detail: "confirm link".into(),
        };
        store.set_recipient_state(&address, RecipientState::Confirmed, event)?;
    }
    Ok(address)
}

/// Unsubscribes the address in an unsubscribe token (`how`: `one-click` or `link`).
pub fn unsubscribe(store: &DeliveryStore, key: &LinkKey, token: &str, source: &str, how: &str, now_ms: i64) -> Result<String, OptInError> {
    let address = key.verify(token, TokenKind::Unsubscribe, now_ms)?;
    if store.recipient(&address)?.is_none_or(|r| r.state != RecipientState::Unsubscribed) {
        let event = ConsentEvent {
            at_ms: now_ms,
            address: address.clone(),
            event: "unsubscribed".into(),
            source: source.into(),
            detail: how.into(),
        };
        store.set_recipient_state(&address, RecipientState::Unsubscribed, event)?;
    }
    Ok(address)
}

/// The bare, lower-case address of a mailbox (`Ops <OPS@x.example>` → `ops@x.example`).
pub fn bare(mailbox: &str) -> String {
    mailbox.parse::<lettre::message::Mailbox>().map(|m| m.email.to_string()).unwrap_or_else(|_| mailbox.to_owned()).to_lowercase()
}

/// The confirmed addresses among `addresses` (mailboxes or bare addresses).
pub fn confirmed(store: &DeliveryStore, mailboxes: &[String]) -> Result<Vec<String>, DeliveryStoreError> {
    let mut out = Vec::new();
    for m in mailboxes {
        let bare = m.parse::<lettre::message::Mailbox>().map(|mb| mb.email.to_string()).unwrap_or_else(|_| m.clone());
        if store.recipient(&bare)?.is_some_and(|r| r.state == RecipientState::Confirmed) {
            out.push(m.clone());
        }
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn invite_confirm_unsubscribe_are_logged_and_not_repeated() {
        let dir = tempfile::tempdir().unwrap();
        let store = DeliveryStore::open(dir.path()).unwrap();
        let key = LinkKey::from_bytes(&[1; 32]);
        assert!(record_invitation(&store, "Ops@Example.org", "weekly", 10).unwrap());
        assert!(!record_invitation(&store, "ops@example.org", "weekly", 11).unwrap(), "invited once");
        let boxes = vec!["Ops <ops@example.org>".to_owned()];
        assert!(confirmed(&store, &boxes).unwrap().is_empty());
        let t = key.sign(TokenKind::Confirm, "ops@example.org", 100);
        assert!(matches!(confirm(&store, &key, &t, "192.0.2.7", 100), Err(OptInError::Token(TokenError::Expired))));
        assert_eq!(confirm(&store, &key, &t, "192.0.2.7", 50).unwrap(), "ops@example.org");
        assert_eq!(confirmed(&store, &boxes).unwrap(), boxes);
        let u = key.sign(TokenKind::Unsubscribe, "ops@example.org", 0);
        unsubscribe(&store, &key, &u, "192.0.2.8", "one-click", 60).unwrap();
        assert!(confirmed(&store, &boxes).unwrap().is_empty());
        assert!(!record_invitation(&store, "ops@example.org", "other", 70).unwrap(), "not invited again");
        let log: Vec<(String, String)> = store.consent_log().unwrap().into_iter().map(|e| (e.event, e.source)).collect();
        assert_eq!(
            log,
            vec![
                ("invited".into(), "scheduler".into()),
                ("confirmed".into(), "192.0.2.7".into()),
                ("unsubscribed".into(), "192.0.2.8".into())
            ]
        );
    }
}
