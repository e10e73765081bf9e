//! Turning an [`OutgoingMail`] into a lettre [`Message`], refusing anything that could inject
//! headers. Pure: no I/O, no clock except the `Date` header lettre stamps.

use std::time::{SystemTime, UNIX_EPOCH};

use lettre::Message;
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};

use super::config::parse_mailbox;
use super::error::MailError;

/// One report mail as the report scheduler hands it over.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OutgoingMail {
    /// Recipients, each `user@example.org` or `Name <user@example.org>`; at least one here or
    /// in `cc`.
    pub to: Vec<String>,
    /// The subject line: one line, no control characters.
    pub subject: String,
    /// The plain-text body (UTF-8; line breaks allowed).
    pub text: String,
    /// An optional attachment: file name and PDF bytes, sent as `application/pdf`.
    pub attachment: Option<(String, Vec<u8>)>,
    /// CC recipients, same form as `to`.
    pub cc: Vec<String>,
    /// An HTML alternative of `text`; the mail then carries both (multipart/alternative).
    pub html: Option<String>,
    /// An `https:`/`http:` one-click unsubscribe URL: adds `List-Unsubscribe: <url>` and
    /// `List-Unsubscribe-Post: List-Unsubscribe=One-Click` (RFC 8058).
    pub list_unsubscribe: Option<String>,
    /// Deliver to this one address only (the SMTP envelope), while `To`/`Cc` show everyone:
    /// each recipient gets their own copy with their own unsubscribe link.
    pub envelope_to: Option<String>,
}

/// Makes a fresh Message-ID in the sender's domain: milliseconds since the epoch (so ids sort
/// by time) and 64 random bits (so two collectors never collide).
pub(crate) fn new_message_id(from: &Mailbox) -> String {
    let millis = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0);
    let random: u64 = rand::random();
    format!("<{millis}.{random:016x}@{}>", from.email.domain())
}

/// Refuses control characters (CR, LF, TAB, NUL, …) in a value that becomes a header.
fn one_line(field: &'static str, value: &str) -> Result<(), MailError> {
    match value.chars().find(|c| c.is_control()) {
        Some(found) => Err(MailError::HeaderInjection { field, found }),
        None => Ok(()),
    }
}

/// Builds the message with the given Message-ID, after validating every header value.
pub(crate) fn build(from: &Mailbox, mail: &OutgoingMail, message_id: &str) -> Result<Message, MailError> {
    // A mail may go to Cc recipients only (RFC 5322 requires neither To nor Cc).
    if mail.to.is_empty() && mail.cc.is_empty() {
        return Err(MailError::NoRecipients);
    }
    one_line("subject", &mail.subject)?;

    let mut builder =
        Message::builder().from(from.clone()).subject(mail.subject.as_str()).message_id(Some(message_id.to_owned())).date_now();
    for address in &mail.to {
        let mailbox = parse_mailbox(address).map_err(|reason| MailError::InvalidRecipient { address: address.clone(), reason })?;
        builder = builder.to(mailbox);
    }
    for address in &mail.cc {
        let mailbox = parse_mailbox(address).map_err(|reason| MailError::InvalidRecipient { address: address.clone(), reason })?;
        builder = builder.cc(mailbox);
    }
    if let Some(url) = &mail.list_unsubscribe {
        one_line("List-Unsubscribe URL", url)?;
        if !(url.starts_with("https://") || url.starts_with("http://")) || url.contains(['<', '>', ' ', ',']) {
            return Err(MailError::Build(format!("List-Unsubscribe URL {url:?} is not a plain http(s) URL")));
        }
        let name = |n: &str| HeaderName::new_from_ascii(n.to_owned()).map_err(|e| MailError::Build(e.to_string()));
        builder = builder
            .raw_header(HeaderValue::new(name("List-Unsubscribe")?, format!("<{url}>")))
            .raw_header(HeaderValue::new(name("List-Unsubscribe-Post")?, "List-Unsubscribe=One-Click".to_owned()));
    }

    let text: MultiPart = match &mail.html {
        Some(html) => MultiPart::alternative().singlepart(SinglePart::plain(mail.text.clone())).singlepart(SinglePart::html(html.clone())),
        None => MultiPart::mixed().singlepart(SinglePart::plain(mail.text.clone())),
    };
    let built = match &mail.attachment {
        None if mail.html.is_some() => builder.multipart(text),
        None => builder.singlepart(SinglePart::plain(mail.text.clone())),
        Some((name, pdf)) => {
            one_line("attachment file name", name)?;
            if name.trim().is_empty() {
                return Err(MailError::EmptyField { field: "attachment file name" });
            }
            let pdf_type = ContentType::parse("application/pdf").map_err(|e| MailError::Build(e.to_string()))?;
            let attachment = Attachment::new(name.clone()).body(pdf.clone(), pdf_type);
            let body = if mail.html.is_some() {
                MultiPart::mixed().multipart(text).singlepart(attachment)
            } else {
                MultiPart::mixed().singlepart(SinglePart::plain(mail.text.clone())).singlepart(attachment)
            };
            builder.multipart(body)
        }
    };
    built.map_err(|e| MailError::Build(e.to_string()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn from() -> Mailbox {
        "Ampel <ampel@example.org>".parse().unwrap()
    }

    fn mail() -> OutgoingMail {
        OutgoingMail {
            to: vec!["Ops <ops@example.org>".into(), "sec@example.org".into()],
            subject: "Weekly risk report".into(),
            text: "Hello,\nthe report is attached.\n".into(),
            attachment: Some(("report.pdf".into(), b"%PDF-1.4\n\x00\xff".to_vec())),
            ..OutgoingMail::default()
        }
    }

    #[test]
    fn builds_multipart_with_pdf() {
        let id = new_message_id(&from());
        assert!(id.starts_with('<') && id.ends_with("@example.org>"), "{id}");
        let msg = build(&from(), &mail(), &id).unwrap();
        let text = String::from_utf8(msg.formatted()).unwrap();
        assert!(text.contains("Subject: Weekly risk report"), "{text}");
        assert!(text.contains(&format!("Message-ID: {id}")), "{text}");
        assert!(text.contains("Content-Type: application/pdf"), "{text}");
        assert!(text.contains("filename=\"report.pdf\""), "{text}");
        assert_eq!(msg.envelope().to().len(), 2);
    }

    #[test]
    fn header_injection_is_refused() {
        for subject in ["Report\r\nBcc: victim@example.org", "Report\nX: y", "a\tb", "a\0b"] {
            let m = OutgoingMail { subject: subject.into(), ..mail() };
            let err = build(&from(), &m, "<x@example.org>").unwrap_err();
            assert!(matches!(err, MailError::HeaderInjection { field: "subject", .. }), "{subject:?}: {err}");
        }
        let m = OutgoingMail { attachment: Some(("r.pdf\r\nX-Evil: 1".into(), vec![1])), ..mail() };
        assert!(matches!(
            build(&from(), &m, "<x@example.org>").unwrap_err(),
            MailError::HeaderInjection { field: "attachment file name", .. }
        ));
    }

    #[test]
    fn list_unsubscribe_html_and_cc() {
        let m = OutgoingMail {
            cc: vec!["noc@example.org".into()],
            html: Some("<p>green</p>".into()),
            list_unsubscribe: Some("https://ampel.example/unsubscribe?t=ab.cd".into()),
            ..mail()
        };
        let text = String::from_utf8(build(&from(), &m, "<x@example.org>").unwrap().formatted()).unwrap();
        assert!(text.contains("List-Unsubscribe: <https://ampel.example/unsubscribe?t=ab.cd>"), "{text}");
        assert!(text.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"), "{text}");
        assert!(text.contains("Cc: noc@example.org") && text.contains("multipart/alternative") && text.contains("text/html"), "{text}");
        for bad in ["https://x.example/u\r\nBcc: a@b.example", "javascript:alert(1)", "https://x/>, <mailto:a@b"] {
            let m = OutgoingMail { list_unsubscribe: Some(bad.into()), ..mail() };
            assert!(build(&from(), &m, "<x@example.org>").is_err(), "{bad:?}");
        }
    }

    #[test]
    fn bad_recipients_are_named() {
        for bad in ["not-an-address", "Bob\r\nBcc: x@y.org <bob@example.org>", ""] {
            let m = OutgoingMail { to: vec!["ok@example.org".into(), bad.into()], ..mail() };
            match build(&from(), &m, "<x@example.org>").unwrap_err() {
                MailError::InvalidRecipient { address, .. } => assert_eq!(address, bad),
                other => panic!("{bad:?}: unexpected {other}"),
            }
        }
        let m = OutgoingMail { to: vec![], ..mail() };
        assert!(matches!(build(&from(), &m, "<x@example.org>").unwrap_err(), MailError::NoRecipients));
    }
}
