//! Turning an [`OutgoingMail`] into a lettre [`Message`], refusing anything that could inject
//! headers. Pure: no I/O, no clock except the `Date` header lettre stamps.

use std::time::{SystemTime, UNIX_EPOCH};

use lettre::Message;
use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};

use super::config::parse_mailbox;
use super::error::MailError;

/// One report mail as the report scheduler hands it over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingMail {
    /// Recipients, each `user@example.org` or `Name <user@example.org>`; at least one.
    pub to: Vec<String>,
    /// The subject line: one line, no control characters.
    pub subject: String,
    /// The plain-text body (UTF-8; line breaks allowed).
    pub text: String,
    /// An optional attachment: file name and PDF bytes, sent as `application/pdf`.
    pub attachment: Option<(String, Vec<u8>)>,
}

/// Makes a fresh Message-ID in the sender's domain: milliseconds since the epoch (so ids sort
/// by time) and 64 random bits (so two collectors never collide).
pub(crate) fn new_message_id(from: &Mailbox) -> String {
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
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
pub(crate) fn build(
    from: &Mailbox,
    mail: &OutgoingMail,
    message_id: &str,
) -> Result<Message, MailError> {
    if mail.to.is_empty() {
        return Err(MailError::NoRecipients);
    }
    one_line("subject", &mail.subject)?;

    let mut builder = Message::builder()
        .from(from.clone())
        .subject(mail.subject.as_str())
        .message_id(Some(message_id.to_owned()))
        .date_now();
    for address in &mail.to {
        let mailbox = parse_mailbox(address).map_err(|reason| MailError::InvalidRecipient {
            address: address.clone(),
            reason,
        })?;
        builder = builder.to(mailbox);
    }

    let text = SinglePart::plain(mail.text.clone());
    let built = match &mail.attachment {
        None => builder.singlepart(text),
        Some((name, pdf)) => {
            one_line("attachment file name", name)?;
            if name.trim().is_empty() {
                return Err(MailError::EmptyField {
                    field: "attachment file name",
                });
            }
            let pdf_type = ContentType::parse("application/pdf")
                .map_err(|e| MailError::Build(e.to_string()))?;
            builder.multipart(
                MultiPart::mixed()
                    .singlepart(text)
                    .singlepart(Attachment::new(name.clone()).body(pdf.clone(), pdf_type)),
            )
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
        for subject in [
            "Report\r\nBcc: victim@example.org",
            "Report\nX: y",
            "a\tb",
            "a\0b",
        ] {
            let m = OutgoingMail {
                subject: subject.into(),
                ..mail()
            };
            let err = build(&from(), &m, "<x@example.org>").unwrap_err();
            assert!(
                matches!(
                    err,
                    MailError::HeaderInjection {
                        field: "subject",
                        ..
                    }
                ),
                "{subject:?}: {err}"
            );
        }
        let m = OutgoingMail {
            attachment: Some(("r.pdf\r\nX-Evil: 1".into(), vec![1])),
            ..mail()
        };
        assert!(matches!(
            build(&from(), &m, "<x@example.org>").unwrap_err(),
            MailError::HeaderInjection {
                field: "attachment file name",
                ..
            }
        ));
    }

    #[test]
    fn bad_recipients_are_named() {
        for bad in [
            "not-an-address",
            "Bob\r\nBcc: x@y.org <bob@example.org>",
            "",
        ] {
            let m = OutgoingMail {
                to: vec!["ok@example.org".into(), bad.into()],
                ..mail()
            };
            match build(&from(), &m, "<x@example.org>").unwrap_err() {
                MailError::InvalidRecipient { address, .. } => assert_eq!(address, bad),
                other => panic!("{bad:?}: unexpected {other}"),
            }
        }
        let m = OutgoingMail {
            to: vec![],
            ..mail()
        };
        assert!(matches!(
            build(&from(), &m, "<x@example.org>").unwrap_err(),
            MailError::NoRecipients
        ));
    }
}
