//! Mail delivery with lettre: a file outbox (the default) or SMTP.
//!
//! The collector mails PDF reports. [`MailConfig`] is the `[mail]` table of `collector.toml`;
//! [`Mailer::new`] turns it into a ready [`Mailer`] (reading the password and CA files once),
//! [`Mailer::send`] delivers an [`OutgoingMail`], and [`Mailer::test_connection`] backs
//! `mail test`: it walks the SMTP connection step by step and, on failure, says which step
//! broke ([`MailTestError`]).
//!
//! # Layout
//!
//! - `config`: [`MailConfig`] and its value types; `mail.example.toml` documents the defaults.
//! - `message`: [`OutgoingMail`] → lettre message; refuses header injection and bad addresses.
//! - `smtp`: the SMTP client, one function per step (resolve, connect, TLS, EHLO, STARTTLS,
//!   AUTH), each under the configured timeout; passwords live in a redacting wrapper.
//! - `error`: [`MailError`] and [`MailTestError`].
//! - `tests`: end-to-end tests against a real aiosmtpd on a loopback port.

mod config;
mod error;
mod message;
mod smtp;
#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod tests;

use std::path::{Path, PathBuf};

use lettre::message::Mailbox;

pub use config::{DEFAULT_FROM, DEFAULT_OUTBOX, DEFAULT_TIMEOUT, HeloName, Host, MailConfig, Security, Timeout, TransportKind, Username};
pub use error::{MailError, MailTestError};
pub use message::OutgoingMail;

use smtp::SmtpClient;

/// The result of a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The `Message-ID` header of the sent message, with its angle brackets, e.g.
    /// `<1718000000000.9f3c2a1b4d5e6f70@example.org>`; lets a bounce be matched to a report.
    pub message_id: String,
    /// File transport: the `.eml` file written. `None` for SMTP.
    pub file: Option<PathBuf>,
}

/// Delivers report mails as configured. Cheap to share behind an `Arc`; every delivery opens
/// its own SMTP connection.
#[derive(Debug)]
pub struct Mailer {
    from: Mailbox,
    backend: Backend,
}

#[derive(Debug)]
enum Backend {
    File { outbox: PathBuf },
    Smtp(SmtpClient),
}

impl Mailer {
    /// Validates `cfg` and prepares delivery. For SMTP this reads the password file and the
    /// CA file now, so a missing or bad file is reported at start, naming its path. Needs no
    /// async runtime and opens no connection.
    pub fn new(cfg: &MailConfig) -> Result<Mailer, MailError> {
        cfg.validate()?;
        let backend = match cfg.transport {
            TransportKind::File => Backend::File { outbox: cfg.outbox.clone() },
            TransportKind::Smtp => Backend::Smtp(SmtpClient::new(cfg)?),
        };
        Ok(Mailer { from: cfg.from.clone(), backend })
    }

    /// Validates and delivers one message. For SMTP, `Ok` means the server accepted it for
    /// every recipient; for the file transport, that the `.eml` file is complete on disk.
    pub async fn send(&self, mail: &OutgoingMail) -> Result<Delivery, MailError> {
        let message_id = message::new_message_id(&self.from);
        let message = message::build(&self.from, mail, &message_id)?;
        let bytes = message.formatted();
        let envelope = match &mail.envelope_to {
            Some(rcpt) => {
                let to = config::parse_mailbox(rcpt).map_err(|reason| MailError::InvalidRecipient { address: rcpt.clone(), reason })?;
                lettre::address::Envelope::new(Some(self.from.email.clone()), vec![to.email])
                    .map_err(|e| MailError::Build(e.to_string()))?
            }
            None => message.envelope().clone(),
        };
        let file = match &self.backend {
            Backend::File { outbox } => Some(write_eml(outbox, &message_id, &bytes).await?),
            Backend::Smtp(client) => {
                client.send(&envelope, &bytes).await?;
                None
            }
        };
        tracing::info!(
            message_id = %message_id,
            recipients = mail.to.len(),
            bytes = bytes.len(),
            "mail delivered"
        );
        Ok(Delivery { message_id, file })
    }

    /// The largest message the SMTP server accepts, from the `SIZE` keyword of its EHLO
    /// reply (RFC 1870); `None` when it names no limit or for the file transport.
    pub async fn size_limit(&self) -> Result<Option<u64>, MailError> {
        match &self.backend {
            Backend::File { .. } => Ok(None),
            Backend::Smtp(client) => Ok(client.size_limit().await?),
        }
    }

    /// Checks that mail could be delivered, without sending any: for SMTP it resolves,
    /// connects, does TLS, logs in and sends NOOP; for the file transport it creates the outbox
    /// and writes and removes a probe file. Returns what succeeded, e.g. `"connected to
    /// smtp.example.org:587 (192.0.2.1), STARTTLS ok, login ok as reports, server ready"`.
    pub async fn test_connection(&self) -> Result<String, MailTestError> {
        match &self.backend {
            Backend::Smtp(client) => client.test().await,
            Backend::File { outbox } => {
                let fail =
                    |reason: String| MailTestError::Other { step: "outbox write test", target: outbox.display().to_string(), reason };
                let probe = outbox.join(".ampel-write-test");
                tokio::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(crate::files::DIR_MODE)
                    .create(outbox)
                    .await
                    .map_err(|e| fail(e.to_string()))?;
                tokio::fs::write(&probe, b"probe").await.map_err(|e| fail(e.to_string()))?;
                tokio::fs::remove_file(&probe).await.map_err(|e| fail(e.to_string()))?;
                Ok(format!("outbox {} is writable", outbox.display()))
            }
        }
    }
}

/// Writes one message into the outbox as `<id>.eml`, named after its Message-ID so files sort
/// by time. Written to a hidden temporary name, synced, then renamed: whoever picks files up
/// from the outbox never sees half a message. (lettre's file transport writes in place.)
async fn write_eml(outbox: &Path, message_id: &str, bytes: &[u8]) -> Result<PathBuf, MailError> {
    let io_err = |path: &Path| {
        let path = path.to_owned();
        move |source| MailError::Outbox { path, source }
    };
    // The .eml files carry bearer links (unsubscribe, download): 0750 / 0640 whatever the umask.
    tokio::fs::DirBuilder::new().recursive(true).mode(crate::files::DIR_MODE).create(outbox).await.map_err(io_err(outbox))?;
    // "<1718000000000.9f3c2a1b4d5e6f70@example.org>" -> "1718000000000.9f3c2a1b4d5e6f70"
    let stem = message_id.trim_start_matches('<').split('@').next().unwrap_or_default();
    let file = outbox.join(format!("{stem}.eml"));
    let tmp = outbox.join(format!(".{stem}.eml.tmp"));
    let write = async {
        let mut f = tokio::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(crate::files::FILE_MODE).open(&tmp).await?;
        f.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(crate::files::FILE_MODE)).await?;
        tokio::io::AsyncWriteExt::write_all(&mut f, bytes).await?;
        f.sync_all().await?;
        tokio::fs::rename(&tmp, &file).await
    };
    if let Err(e) = write.await {
        let _ = tokio::fs::remove_file(&tmp).await;
        return Err(io_err(&file)(e));
    }
    Ok(file)
}
