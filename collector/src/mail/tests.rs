//! End-to-end tests of [`Mailer`] against a real SMTP server: aiosmtpd (Debian's
//! `python3-aiosmtpd`), started per test on a loopback port chosen at run time and killed when
//! the test ends. A missing aiosmtpd fails the test with a hint; it never passes silently.
//! Received mail is read back with Python's `email` module (`testdata/extract.py`).

use std::fs;
use std::net::{TcpListener, TcpStream};
use std::num::NonZeroU16;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose};
use serde_json::Value;
use tempfile::TempDir;

use super::*;

/// Debian's interpreter, which has `python3-aiosmtpd`; a pyenv `python3` on PATH may not.
const PYTHON: &str = "/usr/bin/python3";
const AUTH_SERVER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src/mail/testdata/auth_server.py");
const EXTRACT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src/mail/testdata/extract.py");
const USER: &str = "reports";
pub(crate) const PASSWORD: &str = "s3cret-Pa55word";

/// A private CA and a server certificate for `localhost` / `127.0.0.1`, as PEM files.
pub(crate) struct TestPki {
    _dir: TempDir,
    pub(crate) ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

pub(crate) fn test_pki() -> TestPki {
    let dir = TempDir::new().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca_params.distinguished_name.push(DnType::CommonName, "Ampel mail test CA");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();

    let mut params = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
    params.distinguished_name.push(DnType::CommonName, "localhost");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &ca).unwrap();

    let pki = TestPki { ca: dir.path().join("ca.pem"), cert: dir.path().join("server.pem"), key: dir.path().join("server.key"), _dir: dir };
    fs::write(&pki.ca, ca.pem()).unwrap();
    fs::write(&pki.cert, cert.pem()).unwrap();
    fs::write(&pki.key, key.serialize_pem()).unwrap();
    pki
}

/// A port nobody listens on right now (bound, then released).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A running aiosmtpd; killed and reaped on drop.
pub(crate) struct SmtpServer {
    child: Child,
    pub(crate) port: u16,
    maildir: PathBuf,
    pub(crate) dir: TempDir,
}

impl SmtpServer {
    /// Plain SMTP, no TLS, no login.
    fn plain() -> SmtpServer {
        Self::spawn(|port, maildir| {
            let mut cmd = aiosmtpd_cli(port);
            cmd.arg(maildir);
            cmd
        })
    }

    /// STARTTLS offered (not required) with the given certificate, no login.
    fn starttls(pki: &TestPki) -> SmtpServer {
        Self::spawn(|port, maildir| {
            let mut cmd = aiosmtpd_cli(port);
            cmd.arg("--tlscert").arg(&pki.cert).arg("--tlskey").arg(&pki.key).arg(maildir);
            cmd
        })
    }

    /// `testdata/auth_server.py`: TLS (`mode` "starttls" or "tls") and a required login.
    pub(crate) fn with_auth(pki: &TestPki, mode: &str) -> SmtpServer {
        Self::with_auth_size(pki, mode, 33_554_432)
    }

    /// Like [`SmtpServer::with_auth`], advertising `SIZE size`.
    pub(crate) fn with_auth_size(pki: &TestPki, mode: &str, size: u64) -> SmtpServer {
        Self::spawn(|port, maildir| {
            let mut cmd = Command::new(PYTHON);
            cmd.arg(AUTH_SERVER)
                .arg("127.0.0.1")
                .arg(port.to_string())
                .arg(&pki.cert)
                .arg(&pki.key)
                .arg(maildir)
                .arg(USER)
                .arg(PASSWORD)
                .arg(mode)
                .arg(size.to_string());
            cmd
        })
    }

    fn spawn(command: impl FnOnce(u16, &Path) -> Command) -> SmtpServer {
        assert!(
            Path::new(PYTHON).exists(),
            "{PYTHON} is missing: these tests need Debian's python3 with python3-aiosmtpd \
             (apt install python3-aiosmtpd)"
        );
        let dir = TempDir::new().unwrap();
        let maildir = dir.path().join("Maildir");
        let log = fs::File::create(dir.path().join("server.log")).unwrap();
        let port = free_port();
        let child = command(port, &maildir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {PYTHON}: {e}"));
        let mut server = SmtpServer { child, port, maildir, dir };
        server.wait_until_listening();
        server
    }

    fn wait_until_listening(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "the SMTP test server exited ({status}) before listening on port {}. Is \
                     python3-aiosmtpd installed (apt install python3-aiosmtpd)?\n{}",
                    self.port,
                    self.log()
                );
            }
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            assert!(Instant::now() < deadline, "the SMTP test server did not listen on port {} within 20s\n{}", self.port, self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub(crate) fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// The messages received so far, parsed by Python's `email` module.
    pub(crate) fn received(&self) -> Vec<Value> {
        extract(&self.maildir, self.dir.path())
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn aiosmtpd_cli(port: u16) -> Command {
    let mut cmd = Command::new(PYTHON);
    cmd.args(["-m", "aiosmtpd", "-n", "-l"]).arg(format!("127.0.0.1:{port}")).args(["-c", "aiosmtpd.handlers.Mailbox"]);
    cmd
}

/// Runs `testdata/extract.py` on a Maildir or an .eml file.
fn extract(source: &Path, outdir: &Path) -> Vec<Value> {
    let out = Command::new(PYTHON).arg(EXTRACT).arg(source).arg(outdir).output().unwrap();
    assert!(out.status.success(), "extract.py failed: {}", String::from_utf8_lossy(&out.stderr));
    match serde_json::from_slice(&out.stdout).unwrap() {
        Value::Array(messages) => messages,
        other => panic!("extract.py printed {other}"),
    }
}

/// A stand-in PDF holding every byte value, CR/LF pairs and a line of dots, so any
/// transfer-encoding or dot-stuffing mistake shows up as a difference.
fn pdf_bytes() -> Vec<u8> {
    let mut pdf = b"%PDF-1.4\r\n%\xe2\xe3\xcf\xd3\n.\r\n..\n".to_vec();
    pdf.extend(0..=255u8);
    pdf.extend((0..5000u32).map(|i| (i * 7 % 251) as u8));
    pdf.extend(b"\r\n.\r\n%%EOF\n");
    pdf
}

fn report_mail(subject: &str) -> OutgoingMail {
    OutgoingMail {
        to: vec!["Security Team <security@example.org>".into(), "ops@example.org".into()],
        subject: subject.into(),
        text: "Guten Tag,\n\nthe weekly Ampel report is attached. Status: grün.\n".into(),
        attachment: Some(("ampel-report-2024-w23.pdf".into(), pdf_bytes())),
        ..OutgoingMail::default()
    }
}

pub(crate) fn smtp_config(host: &str, port: u16, security: Security) -> MailConfig {
    MailConfig {
        transport: TransportKind::Smtp,
        host: Some(host.parse().unwrap()),
        port: NonZeroU16::new(port),
        security,
        helo_name: Some("collector.test".parse().unwrap()),
        timeout: "10s".parse().unwrap(),
        ..MailConfig::default()
    }
}

/// Adds the test login; the password file lives in `dir`.
pub(crate) fn with_login(mut cfg: MailConfig, dir: &Path, password: &str) -> MailConfig {
    let file = dir.join("smtp-password");
    fs::write(&file, format!("{password}\n")).unwrap();
    cfg.username = Some(USER.parse().unwrap());
    cfg.password_file = Some(file);
    cfg
}

fn assert_delivered(server: &SmtpServer, delivery: &Delivery, subject: &str) {
    let received = server.received();
    assert_eq!(received.len(), 1, "{received:?}\n{}", server.log());
    let msg = &received[0];
    assert_eq!(msg["subject"], subject);
    assert_eq!(msg["message_id"], delivery.message_id.as_str());
    assert!(msg["text"].as_str().unwrap().contains("Status: grün."), "{msg}");
    let attachment = &msg["attachments"][0];
    assert_eq!(attachment["filename"], "ampel-report-2024-w23.pdf");
    assert_eq!(attachment["content_type"], "application/pdf");
    let got = fs::read(attachment["path"].as_str().unwrap()).unwrap();
    assert!(got == pdf_bytes(), "the received PDF differs from the one sent");
    assert_eq!(delivery.file, None);
}

#[tokio::test]
async fn file_transport_writes_eml_with_pdf() {
    let dir = TempDir::new().unwrap();
    let outbox = dir.path().join("var/lib/ampel/outbox"); // does not exist yet
    let cfg = MailConfig { outbox: outbox.clone(), ..MailConfig::default() };
    let mailer = Mailer::new(&cfg).unwrap();
    let ok = mailer.test_connection().await.unwrap();
    eprintln!("test_connection: {ok}");
    assert!(ok.contains("is writable"), "{ok}");

    let delivery = mailer.send(&report_mail("Ampel report: week 23")).await.unwrap();
    let file = delivery.file.clone().unwrap();
    assert_eq!(file.parent(), Some(outbox.as_path()));
    assert_eq!(file.extension().unwrap(), "eml");
    let entries: Vec<_> = fs::read_dir(&outbox).unwrap().collect();
    assert_eq!(entries.len(), 1, "only the .eml, no temporary or probe file");

    let raw = fs::read_to_string(&file).unwrap();
    assert!(raw.contains("Subject: Ampel report: week 23"), "{raw}");
    assert!(raw.contains("Content-Type: application/pdf"), "{raw}");
    let msg = &extract(&file, dir.path())[0];
    assert_eq!(msg["message_id"], delivery.message_id.as_str());
    assert_eq!(msg["from"], config::DEFAULT_FROM);
    let attachment = &msg["attachments"][0];
    assert_eq!(attachment["content_type"], "application/pdf");
    assert!(fs::read(attachment["path"].as_str().unwrap()).unwrap() == pdf_bytes());
}

#[tokio::test]
async fn plain_smtp_delivers() {
    let server = SmtpServer::plain();
    let mailer = Mailer::new(&smtp_config("127.0.0.1", server.port, Security::None)).unwrap();
    let ok = mailer.test_connection().await.unwrap();
    eprintln!("test_connection: {ok}");
    assert!(ok.starts_with(&format!("connected to 127.0.0.1:{}", server.port)), "{ok}");
    assert!(server.received().is_empty(), "test_connection must not send mail");

    let delivery = mailer.send(&report_mail("Plain report")).await.unwrap();
    assert_delivered(&server, &delivery, "Plain report");
}

#[tokio::test]
async fn starttls_with_private_ca_delivers_identical_attachment() {
    let pki = test_pki();
    let server = SmtpServer::starttls(&pki);
    // "localhost" exercises resolution and the DNS name in the certificate.
    let cfg = MailConfig { ca_file: Some(pki.ca.clone()), ..smtp_config("localhost", server.port, Security::Starttls) };
    let mailer = Mailer::new(&cfg).unwrap();
    let ok = mailer.test_connection().await.unwrap();
    eprintln!("test_connection: {ok}");
    assert!(ok.contains("STARTTLS ok"), "{ok}");

    let delivery = mailer.send(&report_mail("Encrypted report")).await.unwrap();
    assert_delivered(&server, &delivery, "Encrypted report");
}

#[tokio::test]
async fn starttls_without_the_ca_fails_at_the_tls_step() {
    let pki = test_pki();
    let server = SmtpServer::starttls(&pki);
    let mailer = Mailer::new(&smtp_config("127.0.0.1", server.port, Security::Starttls)).unwrap();

    let err = mailer.test_connection().await.unwrap_err();

    eprintln!("test_connection: {err}");
    assert_eq!(err.step(), "tls", "{err}");
    let text = err.to_string();
    assert!(text.starts_with(&format!("TLS handshake with 127.0.0.1:{} failed:", server.port)), "{text}");
    assert!(text.ends_with("failed: invalid peer certificate: UnknownIssuer"), "{text}");

    let err = mailer.send(&report_mail("never")).await.unwrap_err();
    assert!(matches!(err, MailError::Connection(MailTestError::Tls { .. })), "{err}");
    assert!(server.received().is_empty());
}

#[tokio::test]
async fn starttls_not_offered_fails_at_the_tls_step() {
    let server = SmtpServer::plain();
    let mailer = Mailer::new(&smtp_config("127.0.0.1", server.port, Security::Starttls)).unwrap();
    let err = mailer.test_connection().await.unwrap_err();
    eprintln!("test_connection: {err}");
    assert_eq!(err.step(), "tls", "{err}");
    assert!(err.to_string().contains("does not offer STARTTLS"), "{err}");
}

#[tokio::test]
async fn closed_port_fails_at_the_connect_step() {
    let port = free_port();
    let mailer = Mailer::new(&smtp_config("127.0.0.1", port, Security::None)).unwrap();
    let err = mailer.test_connection().await.unwrap_err();
    eprintln!("test_connection: {err}");
    assert_eq!(err.step(), "connect", "{err}");
    assert!(err.to_string().starts_with(&format!("TCP connect to 127.0.0.1:{port} failed:")), "{err}");
}

#[tokio::test]
async fn unresolvable_host_fails_at_the_resolve_step() {
    let mailer = Mailer::new(&smtp_config("nonexistent.invalid", 25, Security::None)).unwrap();
    let err = mailer.test_connection().await.unwrap_err();
    eprintln!("test_connection: {err}");
    assert_eq!(err.step(), "resolve", "{err}");
    assert!(err.to_string().starts_with("cannot resolve nonexistent.invalid:"), "{err}");
}

#[tokio::test]
async fn silent_server_times_out_at_the_greeting() {
    // The kernel completes the TCP handshake from the backlog; nobody ever says 220.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let cfg = MailConfig { timeout: "300ms".parse().unwrap(), ..smtp_config("127.0.0.1", port, Security::None) };
    let started = Instant::now();
    let err = Mailer::new(&cfg).unwrap().test_connection().await.unwrap_err();
    eprintln!("test_connection: {err}");
    assert_eq!(err.step(), "other", "{err}");
    assert!(err.to_string().contains("failed: timed out after 300ms"), "{err}");
    assert!(err.to_string().contains("try security = \"tls\""), "a silent greeting hints at implicit TLS: {err}");
    assert!(started.elapsed() < Duration::from_secs(5));
    drop(listener);
}

#[tokio::test]
async fn login_after_starttls() {
    let pki = test_pki();
    let server = SmtpServer::with_auth(&pki, "starttls");
    let base = MailConfig { ca_file: Some(pki.ca.clone()), ..smtp_config("localhost", server.port, Security::Starttls) };

    let dir = TempDir::new().unwrap();
    let right = Mailer::new(&with_login(base.clone(), dir.path(), PASSWORD)).unwrap();
    let ok = right.test_connection().await.unwrap();
    eprintln!("test_connection: {ok}");
    assert!(ok.contains("STARTTLS ok, login ok as reports"), "{ok}");
    let delivery = right.send(&report_mail("Authenticated report")).await.unwrap();
    assert_delivered(&server, &delivery, "Authenticated report");

    let wrong = Mailer::new(&with_login(base.clone(), dir.path(), "wrong-password")).unwrap();
    let err = wrong.test_connection().await.unwrap_err();
    eprintln!("test_connection: {err}");
    assert_eq!(err.step(), "auth", "{err}");
    let text = err.to_string();
    assert!(text.starts_with("login as reports at localhost:"), "{text}");
    assert!(text.contains("535"), "{text}");
    assert!(!text.contains("wrong-password"), "{text}");

    // Without a login the server refuses the mail; that is a send error, not a crash.
    let anonymous = Mailer::new(&base).unwrap();
    let err = anonymous.send(&report_mail("anonymous")).await.unwrap_err();
    assert!(matches!(err, MailError::Send { .. }), "{err}");
    assert_eq!(server.received().len(), 1);
}

#[tokio::test]
async fn implicit_tls_with_login() {
    let pki = test_pki();
    let server = SmtpServer::with_auth(&pki, "tls");
    let dir = TempDir::new().unwrap();
    let cfg = with_login(
        MailConfig { ca_file: Some(pki.ca.clone()), ..smtp_config("127.0.0.1", server.port, Security::Tls) },
        dir.path(),
        PASSWORD,
    );
    let mailer = Mailer::new(&cfg).unwrap();
    let ok = mailer.test_connection().await.unwrap();
    eprintln!("test_connection: {ok}");
    assert!(ok.contains("TLS ok (TLSv1.3)") && ok.contains("login ok"), "{ok}");
    let delivery = mailer.send(&report_mail("Report over SMTPS")).await.unwrap();
    assert_delivered(&server, &delivery, "Report over SMTPS");

    // Same server without the CA: the handshake itself fails.
    let untrusted = Mailer::new(&MailConfig { ca_file: None, ..cfg.clone() }).unwrap();
    let err = untrusted.test_connection().await.unwrap_err();
    eprintln!("test_connection: {err}");
    assert_eq!(err.step(), "tls", "{err}");
    assert!(err.to_string().contains("UnknownIssuer"), "{err}");
}

#[tokio::test]
async fn header_injection_is_refused_before_anything_is_written() {
    let dir = TempDir::new().unwrap();
    let mailer = Mailer::new(&MailConfig { outbox: dir.path().join("outbox"), ..MailConfig::default() }).unwrap();
    let err = mailer.send(&report_mail("Report\r\nBcc: attacker@example.com")).await.unwrap_err();
    assert!(matches!(err, MailError::HeaderInjection { field: "subject", found: '\r' }), "{err}");
    let mut bad_recipient = report_mail("ok");
    bad_recipient.to.push("attacker@example.com\nBcc: x@example.com".into());
    let err = mailer.send(&bad_recipient).await.unwrap_err();
    assert!(err.to_string().contains("attacker@example.com"), "{err}");
    assert!(!dir.path().join("outbox").exists());
}

#[test]
fn debug_output_never_shows_the_password() {
    let dir = TempDir::new().unwrap();
    let cfg = with_login(smtp_config("smtp.example.org", 587, Security::Starttls), dir.path(), PASSWORD);
    let config_debug = format!("{cfg:?}");
    assert!(config_debug.contains("smtp-password"), "the path may show: {config_debug}");
    let mailer = Mailer::new(&cfg).unwrap();
    let mailer_debug = format!("{mailer:?} {mailer:#?}");
    assert!(mailer_debug.contains("<redacted>"), "{mailer_debug}");
    for text in [config_debug, mailer_debug] {
        assert!(!text.contains(PASSWORD), "password leaked: {text}");
    }
}

#[test]
fn new_names_the_file_it_cannot_use() {
    let dir = TempDir::new().unwrap();
    let missing = dir.path().join("no-such-password");
    let cfg = MailConfig {
        username: Some(USER.parse().unwrap()),
        password_file: Some(missing.clone()),
        ..smtp_config("smtp.example.org", 587, Security::Starttls)
    };
    let err = Mailer::new(&cfg).unwrap_err();
    assert!(err.to_string().contains(&missing.display().to_string()), "{err}");

    let empty = dir.path().join("empty-password");
    fs::write(&empty, "\n").unwrap();
    let err = Mailer::new(&MailConfig { password_file: Some(empty), ..cfg.clone() }).unwrap_err();
    assert!(matches!(err, MailError::EmptyPassword { .. }), "{err}");

    let not_pem = dir.path().join("ca.pem");
    fs::write(&not_pem, "this is not a certificate\n").unwrap();
    let err = Mailer::new(&MailConfig { ca_file: Some(not_pem.clone()), ..smtp_config("smtp.example.org", 587, Security::Starttls) })
        .unwrap_err();
    assert!(matches!(err, MailError::CaFile { .. }), "{err}");
    assert!(err.to_string().contains(&not_pem.display().to_string()), "{err}");

    let err = Mailer::new(&MailConfig { transport: TransportKind::Smtp, ..MailConfig::default() }).unwrap_err();
    assert!(matches!(err, MailError::Config(_)), "{err}");
}

#[test]
fn password_file_keeps_inner_whitespace_and_drops_the_newline() {
    let dir = TempDir::new().unwrap();
    let file = dir.path().join("pw");
    fs::write(&file, " pass word \r\n").unwrap();
    let secret = smtp::Secret::read(&file).unwrap();
    assert_eq!(secret.expose(), " pass word ");
}

#[tokio::test]
async fn the_advertised_size_limit_is_read_from_ehlo() {
    let pki = test_pki();
    let server = SmtpServer::with_auth(&pki, "starttls");
    let mut cfg = smtp_config("localhost", server.port, Security::Starttls);
    cfg.ca_file = Some(pki.ca.clone());
    let cfg = with_login(cfg, server.dir.path(), PASSWORD);
    let mailer = Mailer::new(&cfg).unwrap();
    // The Controller's default data size limit, advertised as "SIZE 33554432".
    assert_eq!(mailer.size_limit().await.unwrap(), Some(33_554_432));
    // The CLI server advertises none.
    let plain = SmtpServer::plain();
    let mailer = Mailer::new(&smtp_config("127.0.0.1", plain.port, Security::None)).unwrap();
    assert_eq!(mailer.size_limit().await.unwrap(), None);
    let file = Mailer::new(&MailConfig::default()).unwrap();
    assert_eq!(file.size_limit().await.unwrap(), None);
}
