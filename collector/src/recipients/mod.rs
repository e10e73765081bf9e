//! Opt-in of report recipients: invitations, signed confirm / unsubscribe links, states and
//! the consent log.
//!
//! Opt-in is per address, across jobs: an address listed in any job's `to` or `cc` is invited
//! once; after confirming it gets the reports of every job that lists it, until it
//! unsubscribes (which stops all of them, and it is not invited again). Every change is logged
//! with time and origin (the HTTP client's address, `scheduler` or `cli`) in the same LMDB
//! transaction as the state change.
//!
//! A valid signature is not enough to confirm: the state must allow it. A confirm token names
//! the invitation it came with (the address's `invited_ms`), and confirms only an address that
//! is `invited` by that very invitation — so it works once, and never after an unsubscribe, an
//! expiry or a newer invitation, however long it is still within `invite-ttl`. Confirm tokens
//! signed before they named their invitation are accepted only while the address is `invited`.
//! Unsubscribing is allowed from every state.
//!
//! # Layout
//!
//! - `token`: [`LinkKey`], signed expiring tokens.
//! - this file: [`Links`] (URLs), [`invitation`], [`confirm`] (checked state transitions),
//!   [`unsubscribe`].

pub mod token;

pub use token::{KeyError, LinkKey, TokenError, TokenKind};

use crate::mail::OutgoingMail;
use crate::report::Lang;
use crate::report::mail::{MailStrings, fill};
use crate::schedule::{ConsentEvent, DeliveryStore, DeliveryStoreError, Recipient, RecipientState};

/// Why an opt-in action failed.
#[derive(Debug, thiserror::Error)]
pub enum OptInError {
    /// The link is malformed, tampered, expired or of another kind.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// The token is genuine, but the address is not awaiting this confirmation: it
    /// unsubscribed, expired, was invited again since, or was never invited.
    #[error("the address is not awaiting this confirmation (it is {})", .0.map_or("unknown", RecipientState::as_str))]
    NotAwaiting(Option<RecipientState>),
    /// The delivery store failed.
    #[error(transparent)]
    Store(#[from] DeliveryStoreError),
}

/// What a valid confirm link did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Confirmation {
    /// The address went from `invited` to `confirmed`.
    Confirmed,
    /// It was confirmed already (the link used a second time): nothing changed.
    AlreadyConfirmed,
}

/// The subject of a confirm token: the address and the invitation it answers.
fn confirm_subject(address: &str, invited_ms: i64) -> String {
    format!("{}\n{invited_ms}", address.to_lowercase())
}

/// The address and, for tokens that name one, the invitation of a confirm token's subject.
fn parse_confirm_subject(subject: &str) -> (&str, Option<i64>) {
    match subject.split_once('\n') {
        Some((address, invited)) => (address, Some(invited.parse().unwrap_or(i64::MIN))),
        None => (subject, None),
    }
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
    /// The confirm link of the invitation of `address` recorded at `invited_ms` (the
    /// reminder carries the same invitation's); its page speaks `lang`.
    pub fn confirm_url(&self, address: &str, invited_ms: i64, expires_ms: i64, lang: Lang) -> String {
        format!("{}/confirm?t={}&l={}", self.public_url, confirm_token(&self.key, address, invited_ms, expires_ms), lang.code())
    }

    /// The unsubscribe link, valid until `expires_ms` (`[delivery] unsubscribe-ttl` from
    /// each mail; every mail carries a fresh one); its page speaks `lang`.
    pub fn unsubscribe_url(&self, address: &str, expires_ms: i64, lang: Lang) -> String {
        let token = self.key.sign(TokenKind::Unsubscribe, &address.to_lowercase(), expires_ms);
        format!("{}/unsubscribe?t={token}&l={}", self.public_url, lang.code())
    }

    /// A download link for rendering `edition` (its index in the record's renderings; 0: the
    /// job's own) of an archived report; its error pages speak `lang`.
    pub fn download_url(&self, report_id: u64, edition: usize, expires_ms: i64, lang: Lang) -> String {
        let subject = if edition == 0 { report_id.to_string() } else { format!("{report_id}/{edition}") };
        let token = self.key.sign(TokenKind::Download, &subject, expires_ms);
        format!("{}/download?t={token}&l={}", self.public_url, lang.code())
    }
}

/// The invitation mail (or, with `reminder`, the one reminder): what it is for, a confirm
/// link and an unsubscribe link. `mailbox` is the address as configured, display name
/// included (`Ops Team <ops@example.org>`).
pub fn invitation(lang: Lang, mailbox: &str, tenants: &[String], confirm_url: &str, unsubscribe_url: &str, reminder: bool) -> OutgoingMail {
    let m = MailStrings::get(lang);
    let tenants = tenants.join(", ");
    let address = bare(mailbox);
    let mut subject = m.invite_subject.to_owned();
    let mut text =
        fill(m.invite_text, &[("address", &address), ("tenants", &tenants), ("confirm", confirm_url), ("unsubscribe", unsubscribe_url)]);
    if reminder {
        subject.insert_str(0, m.reminder_prefix);
        text.insert_str(0, m.reminder_note);
    }
    OutgoingMail {
        to: vec![mailbox.to_owned()],
        subject,
        text,
        list_unsubscribe: Some(unsubscribe_url.to_owned()),
        ..OutgoingMail::default()
    }
}

fn event(address: &str, what: &str, source: &str, detail: String, at_ms: i64) -> ConsentEvent {
    ConsentEvent { at_ms, address: address.to_lowercase(), event: what.into(), source: source.into(), detail }
}

/// Records the one reminder of a still invited `address`. Returns whether it was recorded
/// (false: it confirmed, unsubscribed or was reminded meanwhile).
pub fn record_reminder(store: &DeliveryStore, address: &str, job: &str, now_ms: i64) -> Result<bool, DeliveryStoreError> {
    let e = event(address, "reminded", "scheduler", format!("job {job}"), now_ms);
    let written = store.update_recipient(address, e, |r| {
        let mut r = r.filter(|r| r.state == RecipientState::Invited && r.reminded_ms.is_none())?;
        r.reminded_ms = Some(now_ms);
        Some(r)
    })?;
    Ok(written.is_some())
}

/// Marks a reminded, still unconfirmed `address` as expired.
pub fn expire(store: &DeliveryStore, address: &str, now_ms: i64) -> Result<bool, DeliveryStoreError> {
    let e = event(address, "expired", "scheduler", "no confirmation after the reminder".into(), now_ms);
    let written = store.update_recipient(address, e, |r| {
        let mut r = r.filter(|r| r.state == RecipientState::Invited && r.reminded_ms.is_some())?;
        r.state = RecipientState::Expired;
        r.changed_ms = now_ms;
        Some(r)
    })?;
    Ok(written.is_some())
}

/// `recipients invite ADDRESS --job J`: (re)starts the opt-in of `address` for `job` — state
/// `invited` from now, reminder not yet sent, `job` no longer removed. A confirmed address
/// stays confirmed. Returns the state it had.
pub fn reinvite(
    store: &DeliveryStore,
    address: &str,
    job: &str,
    source: &str,
    now_ms: i64,
) -> Result<Option<RecipientState>, DeliveryStoreError> {
    let mut before = None;
    let e = event(address, "invited", source, format!("job {job}"), now_ms);
    store.update_recipient(address, e, |r| {
        before = r.as_ref().map(|r| r.state);
        let mut r = r.unwrap_or_else(|| Recipient {
            address: address.to_lowercase(),
            state: RecipientState::Invited,
            invited_ms: now_ms,
            changed_ms: now_ms,
            reminded_ms: None,
            removed_jobs: Vec::new(),
        });
        r.removed_jobs.retain(|j| j != job);
        if r.state != RecipientState::Confirmed {
            r.state = RecipientState::Invited;
            r.invited_ms = now_ms;
            r.changed_ms = now_ms;
            r.reminded_ms = None;
        }
        Some(r)
    })?;
    Ok(before)
}

/// `recipients remove ADDRESS --job J`: `address` gets no more reports of `job` (its other
/// jobs go on). Returns whether it was known.
pub fn remove(store: &DeliveryStore, address: &str, job: &str, source: &str, now_ms: i64) -> Result<bool, DeliveryStoreError> {
    let e = event(address, "removed", source, format!("job {job}"), now_ms);
    let written = store.update_recipient(address, e, |r| {
        let mut r = r?;
        if !r.removed_jobs.iter().any(|j| j == job) {
            r.removed_jobs.push(job.to_owned());
        }
        Some(r)
    })?;
    Ok(written.is_some())
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

/// A confirm token for the invitation of `address` recorded at `invited_ms`.
pub fn confirm_token(key: &LinkKey, address: &str, invited_ms: i64, expires_ms: i64) -> String {
    key.sign(TokenKind::Confirm, &confirm_subject(address, invited_ms), expires_ms)
}

/// Confirms the address in a confirm token, if its state allows (see the module docs): read,
/// checked and written in one transaction. Returns the address and what happened.
pub fn confirm(store: &DeliveryStore, key: &LinkKey, token: &str, source: &str, now_ms: i64) -> Result<(String, Confirmation), OptInError> {
    let subject = key.verify(token, TokenKind::Confirm, now_ms)?;
    let (address, invitation) = parse_confirm_subject(&subject);
    let address = address.to_owned();
    let event = event(&address, "confirmed", source, "confirm link".into(), now_ms);
    let mut outcome = Err(OptInError::NotAwaiting(None));
    store.update_recipient(&address, event, |r| {
        let mut r = r?;
        let answers = invitation.is_none_or(|at| at == r.invited_ms);
        match r.state {
            RecipientState::Invited if answers => {
                r.state = RecipientState::Confirmed;
                r.changed_ms = now_ms;
                outcome = Ok(Confirmation::Confirmed);
                Some(r)
            }
            RecipientState::Confirmed if answers => {
                outcome = Ok(Confirmation::AlreadyConfirmed);
                None
            }
            state => {
                outcome = Err(OptInError::NotAwaiting(Some(state)));
                None
            }
        }
    })?;
    outcome.map(|how| (address, how))
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

/// `text` (an error, an SMTP server's reply) with the local part of every mail address in it
/// replaced by `…` (`550 <ops@example.org> unknown` → `550 <…@example.org> unknown`): addresses
/// are personal data and appear in logs at debug level only; the domain is kept because it
/// tells which server or configuration is at fault.
pub fn redact_addresses(text: &str) -> String {
    let boundary = |c: char| c.is_whitespace() || "<>\"'(),;:[]".contains(c);
    let mut out = String::with_capacity(text.len());
    for (i, piece) in text.split('@').enumerate() {
        if i == 0 {
            out.push_str(piece);
            continue;
        }
        // `out` ends with what came before this '@': cut its local part.
        let kept = out.trim_end_matches(|c: char| !boundary(c)).len();
        if kept < out.len() && !piece.starts_with(boundary) && !piece.is_empty() {
            out.truncate(kept);
            out.push('…');
        }
        out.push('@');
        out.push_str(piece);
    }
    out
}

/// The bare, lower-case address of a mailbox (`Ops <OPS@x.example>` → `ops@x.example`).
pub fn bare(mailbox: &str) -> String {
    mailbox.parse::<lettre::message::Mailbox>().map(|m| m.email.to_string()).unwrap_or_else(|_| mailbox.to_owned()).to_lowercase()
}

/// The mailboxes among `mailboxes` that confirmed and were not removed from `job`.
pub fn confirmed(store: &DeliveryStore, job: &str, mailboxes: &[String]) -> Result<Vec<String>, DeliveryStoreError> {
    let mut out = Vec::new();
    for m in mailboxes {
        if store.recipient(&bare(m))?.is_some_and(|r| r.state == RecipientState::Confirmed && !r.removed_jobs.iter().any(|j| j == job)) {
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
        assert!(confirmed(&store, "weekly", &boxes).unwrap().is_empty());
        let t = confirm_token(&key, "ops@example.org", 10, 100);
        assert!(matches!(confirm(&store, &key, &t, "192.0.2.7", 100), Err(OptInError::Token(TokenError::Expired))));
        assert_eq!(confirm(&store, &key, &t, "192.0.2.7", 50).unwrap(), ("ops@example.org".into(), Confirmation::Confirmed));
        assert_eq!(confirmed(&store, "weekly", &boxes).unwrap(), boxes);
        assert!(remove(&store, "ops@example.org", "weekly", "cli", 55).unwrap());
        assert!(confirmed(&store, "weekly", &boxes).unwrap().is_empty(), "removed from weekly");
        assert_eq!(confirmed(&store, "daily", &boxes).unwrap(), boxes, "but not from daily");
        assert_eq!(reinvite(&store, "ops@example.org", "weekly", "cli", 56).unwrap(), Some(RecipientState::Confirmed));
        assert_eq!(confirmed(&store, "weekly", &boxes).unwrap(), boxes, "invited back, still confirmed");
        let u = key.sign(TokenKind::Unsubscribe, "ops@example.org", 1000);
        unsubscribe(&store, &key, &u, "192.0.2.8", "one-click", 60).unwrap();
        assert!(confirmed(&store, "weekly", &boxes).unwrap().is_empty());
        assert!(!record_invitation(&store, "ops@example.org", "other", 70).unwrap(), "not invited again");
        let log: Vec<(String, String)> = store.consent_log().unwrap().into_iter().map(|e| (e.event, e.source)).collect();
        assert_eq!(
            log,
            vec![
                ("invited".into(), "scheduler".into()),
                ("confirmed".into(), "192.0.2.7".into()),
                ("removed".into(), "cli".into()),
                ("invited".into(), "cli".into()),
                ("unsubscribed".into(), "192.0.2.8".into())
            ]
        );
    }

    #[test]
    fn a_confirm_link_works_once_and_never_after_an_unsubscribe_or_for_an_older_invitation() {
        let dir = tempfile::tempdir().unwrap();
        let store = DeliveryStore::open(dir.path()).unwrap();
        let key = LinkKey::from_bytes(&[1; 32]);
        let state = || store.recipient("ops@example.org").unwrap().unwrap().state;
        let t = confirm_token(&key, "ops@example.org", 10, 1_000);
        assert!(matches!(confirm(&store, &key, &t, "192.0.2.7", 5), Err(OptInError::NotAwaiting(None))), "never invited");
        record_invitation(&store, "ops@example.org", "weekly", 10).unwrap();
        assert_eq!(confirm(&store, &key, &t, "192.0.2.7", 20).unwrap().1, Confirmation::Confirmed);
        assert_eq!(confirm(&store, &key, &t, "192.0.2.7", 21).unwrap().1, Confirmation::AlreadyConfirmed, "used again: nothing changes");

        // Unsubscribed: the same, still unexpired confirm link is refused.
        unsubscribe(&store, &key, &key.sign(TokenKind::Unsubscribe, "ops@example.org", 1_000), "192.0.2.8", "one-click", 30).unwrap();
        let replay = confirm(&store, &key, &t, "192.0.2.9", 40);
        assert!(matches!(replay, Err(OptInError::NotAwaiting(Some(RecipientState::Unsubscribed)))), "{replay:?}");
        assert_eq!(state(), RecipientState::Unsubscribed);

        // Invited again by the administrator: only the new invitation's link confirms.
        reinvite(&store, "ops@example.org", "weekly", "cli", 50).unwrap();
        assert!(matches!(confirm(&store, &key, &t, "192.0.2.9", 60), Err(OptInError::NotAwaiting(Some(RecipientState::Invited)))));
        assert_eq!(state(), RecipientState::Invited);
        let fresh = confirm_token(&key, "ops@example.org", 50, 1_000);
        assert_eq!(confirm(&store, &key, &fresh, "192.0.2.7", 70).unwrap().1, Confirmation::Confirmed);

        // A link signed before tokens named their invitation: only while invited.
        let unbound = key.sign(TokenKind::Confirm, "ops@example.org", 1_000);
        unsubscribe(&store, &key, &key.sign(TokenKind::Unsubscribe, "ops@example.org", 1_000), "192.0.2.8", "link", 80).unwrap();
        assert!(confirm(&store, &key, &unbound, "192.0.2.9", 90).is_err());
        let events: Vec<String> = store.consent_log().unwrap().into_iter().map(|e| e.event).collect();
        assert_eq!(events, ["invited", "confirmed", "unsubscribed", "invited", "confirmed", "unsubscribed"], "refusals change nothing");
    }

    #[test]
    fn addresses_in_errors_keep_only_their_domain() {
        assert_eq!(
            redact_addresses("550 5.1.1 <ops@example.org>: Recipient address rejected; also \"x.y+z@b.example\", a@b"),
            "550 5.1.1 <…@example.org>: Recipient address rejected; also \"…@b.example\", …@b"
        );
        assert_eq!(redact_addresses("invalid recipient \"ops@\": no domain"), "invalid recipient \"ops@\": no domain");
        assert_eq!(redact_addresses("no address here, @ alone"), "no address here, @ alone");
    }

    #[test]
    fn one_reminder_then_expired_and_a_reinvitation_starts_over() {
        let dir = tempfile::tempdir().unwrap();
        let store = DeliveryStore::open(dir.path()).unwrap();
        record_invitation(&store, "a@example.org", "j", 0).unwrap();
        assert!(!expire(&store, "a@example.org", 5).unwrap(), "not before the reminder");
        assert!(record_reminder(&store, "a@example.org", "j", 10).unwrap());
        assert!(!record_reminder(&store, "a@example.org", "j", 11).unwrap(), "once");
        assert!(expire(&store, "a@example.org", 20).unwrap());
        assert_eq!(store.recipient("a@example.org").unwrap().unwrap().state, RecipientState::Expired);
        assert_eq!(reinvite(&store, "a@example.org", "j", "cli", 30).unwrap(), Some(RecipientState::Expired));
        let r = store.recipient("a@example.org").unwrap().unwrap();
        assert_eq!((r.state, r.invited_ms, r.reminded_ms), (RecipientState::Invited, 30, None));
        let mail = invitation(Lang::En, "Alice <a@example.org>", &["acme".into()], "http://c", "http://u", true);
        assert_eq!(mail.to, vec!["Alice <a@example.org>".to_owned()], "the display name is kept");
        assert!(mail.subject.starts_with("Reminder: ") && mail.text.contains("only reminder"));
    }
}
