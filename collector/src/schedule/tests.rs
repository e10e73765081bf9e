//! End-to-end tests of scheduled delivery: a real aiosmtpd with STARTTLS and AUTH (the mail
//! module's test server), the real HTTP listener on 127.0.0.1:0 spoken to over TCP, and a
//! simulated clock driving [`Scheduler::tick`]. The PDF renderer is a fake.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use jiff::{Timestamp, ToSpan};
use serde_json::Value;
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

use super::runner::{DeliveryStats, RenderFn, Rendered, Scheduler};
use super::{ArchiveStatus, DeliveryConfig, DeliveryStore, JobConfig, RecipientState};
use crate::archive::Archive;
use crate::http::{HttpServer, HttpState};
use crate::mail::tests::{PASSWORD, SmtpServer, TestPki, smtp_config, test_pki, with_login};
use crate::mail::{MailConfig, Mailer, Security};
use crate::recipients::{LinkKey, Links, TokenKind};

/// Everything a scheduler test needs, torn down on drop.
struct Rig {
    _pki: TestPki,
    smtp: SmtpServer,
    dir: TempDir,
    store: DeliveryStore,
    key: LinkKey,
    http: std::net::SocketAddr,
    stats: Arc<DeliveryStats>,
    _shutdown: watch::Sender<bool>,
}

fn pdf(len: usize) -> Vec<u8> {
    let mut p = b"%PDF-1.4\n".to_vec();
    p.extend((0..len).map(|i| (i * 31 % 251) as u8));
    p
}

/// A renderer that returns a green report of `len` bytes and counts its calls; tenants in
/// `fail` make it fail.
fn fake_renderer(len: usize, calls: Arc<AtomicUsize>, fail: &'static [&'static str]) -> RenderFn {
    Arc::new(move |req| {
        calls.fetch_add(1, Ordering::SeqCst);
        if fail.contains(&req.tenant.as_str()) {
            return Err("renderer crashed".into());
        }
        Ok(Rendered { light: "green".into(), score: 100, findings: Vec::new(), pdf: pdf(len) })
    })
}

fn mail_config(pki: &TestPki, smtp: &SmtpServer) -> MailConfig {
    let mut cfg = smtp_config("localhost", smtp.port, Security::Starttls);
    cfg.ca_file = Some(pki.ca.clone());
    cfg.from = "Ampel <ampel@example.org>".parse().unwrap();
    with_login(cfg, smtp.dir.path(), PASSWORD)
}

impl Rig {
    fn new(size: u64) -> Rig {
        let pki = test_pki();
        let smtp = SmtpServer::with_auth_size(&pki, "starttls", size);
        let dir = TempDir::new().unwrap();
        let store = DeliveryStore::open(&dir.path().join("delivery")).unwrap();
        let key = LinkKey::load_or_create(&dir.path().join("delivery/link.key")).unwrap();
        let stats = Arc::new(DeliveryStats::default());
        let (shutdown, rx) = watch::channel(false);
        let state = HttpState {
            connections: Arc::default(),
            store: store.clone(),
            key: key.clone(),
            archive: Archive::new(&dir.path().join("archive")),
            delivery: stats.clone(),
            ingest: None,
            trust: None,
            console: None,
        };
        let limits = crate::http::HttpConfig::default().limits(crate::rlimit::nofile());
        let http = HttpServer::start("127.0.0.1:0".parse().unwrap(), limits, state, rx).unwrap().local_addr;
        Rig { _pki: pki, smtp, dir, store, key, http, stats, _shutdown: shutdown }
    }

    fn scheduler(&self, jobs: &str, delivery: DeliveryConfig, render: RenderFn) -> Scheduler {
        #[derive(serde::Deserialize)]
        struct Jobs {
            jobs: Vec<JobConfig>,
        }
        let jobs: Jobs = toml::from_str(jobs).unwrap();
        Scheduler {
            jobs: jobs.jobs,
            delivery,
            store: self.store.clone(),
            archive: Archive::new(&self.dir.path().join("archive")),
            mailer: Arc::new(Mailer::new(&mail_config(&self._pki, &self.smtp)).unwrap()),
            links: Links { public_url: format!("http://{}", self.http), key: self.key.clone() },
            render,
            stats: self.stats.clone(),
        }
    }

    fn received(&self) -> Vec<Value> {
        self.smtp.received()
    }

    /// Report mails (not invitations) received so far, by the envelope-visible `To`.
    fn reports(&self) -> Vec<Value> {
        self.received()
            .into_iter()
            .filter(|m| {
                let subject = m["subject"].as_str().unwrap();
                subject.contains("security report for") || subject.contains("Sicherheitsbericht für")
            })
            .collect()
    }
}

/// A minimal HTTP/1.1 request: returns status and body.
async fn http(addr: std::net::SocketAddr, method: &str, target: &str, body: &str) -> (u16, Vec<u8>) {
    http_with(addr, method, target, body, "").await
}

/// [`http`] with extra header lines (each ending in CRLF).
async fn http_with(addr: std::net::SocketAddr, method: &str, target: &str, body: &str, headers: &str) -> (u16, Vec<u8>) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{headers}Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status: u16 = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let mut body = raw[split + 4..].to_vec();
    if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        body = dechunk(&body);
    }
    (status, body)
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = b.windows(2).position(|w| w == b"\r\n").unwrap();
        let n = usize::from_str_radix(std::str::from_utf8(&b[..line_end]).unwrap().trim(), 16).unwrap();
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&b[line_end + 2..line_end + 2 + n]);
        b = &b[line_end + 2 + n + 2..];
    }
}

/// The path and query of the first link in `text` containing `needle`.
fn link(text: &str, needle: &str) -> String {
    let line = text.split_whitespace().find(|l| l.contains(needle)).unwrap_or_else(|| panic!("no {needle} link in {text}"));
    let rest = line.trim_start_matches('<').trim_start_matches("http://");
    rest[rest.find('/').unwrap()..].trim_end_matches('>').to_owned()
}

fn token(path: &str) -> String {
    path.split("t=").nth(1).unwrap().split('&').next().unwrap().to_owned()
}

/// Today at `hh:mm` UTC: the clock is simulated, but near the real time so that the HTTP
/// listener (which checks expiry against the real clock) accepts the links.
fn today_at(h: i8, m: i8) -> Timestamp {
    let today = Timestamp::now().to_zoned(jiff::tz::TimeZone::UTC).date();
    today.at(h, m, 0, 0).to_zoned(jiff::tz::TimeZone::UTC).unwrap().timestamp()
}

const DAILY: &str = r#"
[[jobs]]
name = "daily"
tenants = ["acme"]
period = "day"
send = ["daily 08:00"]
message = "Good morning."
to = "Ops Team <ops@example.org>; sec@example.org"
"#;

fn fast() -> DeliveryConfig {
    DeliveryConfig { retry_backoff: "0s".parse().unwrap(), attempts: 2, ..DeliveryConfig::default() }
}

#[tokio::test]
async fn opt_in_flow_end_to_end() {
    let rig = Rig::new(33_554_432);
    let calls = Arc::new(AtomicUsize::new(0));
    let sched = rig.scheduler(DAILY, fast(), fake_renderer(3000, calls.clone(), &[]));

    // 07:00: the job is new: invitations go out, no report.
    sched.tick(today_at(7, 0)).await.unwrap();
    let invites = rig.received();
    assert_eq!(invites.len(), 2, "{invites:?}\n{}", rig.smtp.log());
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    let ops = invites.iter().find(|m| m["to"].as_str().unwrap().contains("ops@example.org")).unwrap();
    assert!(ops["list_unsubscribe"].as_str().unwrap().contains("/unsubscribe?t="), "{ops}");
    let confirm = link(ops["text"].as_str().unwrap(), "/confirm?t=");
    // Ticking again does not invite twice.
    sched.tick(today_at(7, 30)).await.unwrap();
    assert_eq!(rig.received().len(), 2);

    // Tampered and expired links are refused; a GET changes nothing.
    let mut tampered = token(&confirm);
    let last = tampered.pop().unwrap();
    tampered.push(if last == '0' { '1' } else { '0' });
    let tampered = format!("/confirm?t={tampered}&l=en");
    assert_eq!(http(rig.http, "GET", &tampered, "").await.0, 403);
    assert_eq!(http(rig.http, "POST", "/confirm", &format!("t={}", token(&tampered))).await.0, 403);
    let expired = crate::recipients::confirm_token(&rig.key, "ops@example.org", 0, today_at(0, 0).as_millisecond());
    assert_eq!(http(rig.http, "POST", "/confirm", &format!("t={expired}")).await.0, 403);
    let wrong_kind = rig.key.sign(TokenKind::Unsubscribe, "ops@example.org", 0);
    assert_eq!(http(rig.http, "POST", "/confirm", &format!("t={wrong_kind}")).await.0, 403);
    let (status, page) = http(rig.http, "GET", &confirm, "").await;
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&page).contains("method=\"post\""));
    assert_eq!(rig.store.recipient("ops@example.org").unwrap().unwrap().state, RecipientState::Invited);

    // Confirm over HTTP (POST, as the page's button does).
    let (status, page) = http(rig.http, "POST", "/confirm", &format!("t={}", token(&confirm))).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&page));
    assert_eq!(rig.store.recipient("ops@example.org").unwrap().unwrap().state, RecipientState::Confirmed);

    // 08:00: the report goes to the confirmed recipient only; sec@ never confirmed.
    let ids = sched.tick(today_at(8, 0)).await.unwrap();
    assert_eq!(ids.len(), 1);
    let reports = rig.reports();
    assert_eq!(reports.len(), 1, "{reports:?}");
    let r = &reports[0];
    let yesterday = today_at(8, 0).to_zoned(jiff::tz::TimeZone::UTC).date().yesterday().unwrap();
    let named = crate::report::strings::Strings::get(crate::report::Lang::En).date(yesterday);
    assert_eq!(r["subject"], format!("acme: security report for {named}"));
    assert!(r["to"].as_str().unwrap().contains("ops@example.org") && !r["to"].as_str().unwrap().contains("sec@"), "{r}");
    assert_eq!(r["attachments"][0]["filename"], format!("ampel-acme-{yesterday}.pdf"));
    assert_eq!(std::fs::read(r["attachments"][0]["path"].as_str().unwrap()).unwrap(), pdf(3000));
    let text = r["text"].as_str().unwrap();
    assert!(text.starts_with("Good morning.") && text.contains("GREEN") && text.contains("No findings"), "{text}");
    assert!(text.contains(&format!("Period: {named} ({named} 00:00 – ")) && text.contains(" UTC)"), "{text}");
    assert!(r["html"].as_str().unwrap().contains("#2e7d32"), "{r}");
    assert_eq!(r["list_unsubscribe_post"], "List-Unsubscribe=One-Click");
    let rec = rig.store.report(ids[0]).unwrap().unwrap();
    assert_eq!((rec.status, rec.mode.as_str(), rec.recipients.len()), (ArchiveStatus::Sent, "attachment", 1));

    // The same slot again: nothing more.
    sched.tick(today_at(8, 5)).await.unwrap();
    assert_eq!(rig.reports().len(), 1);

    // One-click unsubscribe, as a mail client does it (RFC 8058).
    let unsub = link(r["list_unsubscribe"].as_str().unwrap(), "/unsubscribe?t=");
    let (status, _) = http(rig.http, "POST", &unsub, "List-Unsubscribe=One-Click").await;
    assert_eq!(status, 200);
    assert_eq!(rig.store.recipient("ops@example.org").unwrap().unwrap().state, RecipientState::Unsubscribed);
    // The invitation's confirm link, still within invite-ttl, replayed: refused, still unsubscribed.
    let (status, _) = http(rig.http, "POST", "/confirm", &format!("t={}", token(&confirm))).await;
    assert_eq!(status, 403, "a replayed confirm after an unsubscribe is refused");
    assert_eq!(rig.store.recipient("ops@example.org").unwrap().unwrap().state, RecipientState::Unsubscribed);

    // Next day: archived, but nobody receives it.
    let ids = sched.tick(today_at(8, 0).checked_add(24.hours()).unwrap()).await.unwrap();
    assert_eq!(rig.reports().len(), 1, "no mail after unsubscribing");
    assert_eq!(rig.store.report(ids[0]).unwrap().unwrap().status, ArchiveStatus::NoRecipients);

    let log: Vec<(String, String, String)> = rig.store.consent_log().unwrap().into_iter().map(|e| (e.address, e.event, e.source)).collect();
    assert!(log.contains(&("ops@example.org".into(), "confirmed".into(), "127.0.0.1".into())), "{log:?}");
    assert!(log.contains(&("ops@example.org".into(), "unsubscribed".into(), "127.0.0.1".into())), "{log:?}");
    assert_eq!(log.iter().filter(|e| e.1 == "invited").count(), 2);

    let (status, body) = http(rig.http, "GET", "/healthz", "").await;
    assert_eq!((status, body.as_slice()), (200, &b"ok\n"[..]));
    let (_, metrics) = http(rig.http, "GET", "/metrics", "").await;
    let metrics = String::from_utf8(metrics).unwrap();
    assert!(metrics.contains("ampel_report_mails_sent_total 1") && metrics.contains("ampel_invitations_sent_total 2"), "{metrics}");
}

fn confirm_all(store: &DeliveryStore, addresses: &[&str]) {
    for a in addresses {
        let ev =
            super::ConsentEvent { at_ms: 0, address: (*a).into(), event: "confirmed".into(), source: "test".into(), detail: String::new() };
        store.set_recipient_state(a, RecipientState::Confirmed, ev).unwrap();
    }
}

#[tokio::test]
async fn a_restart_in_the_middle_of_a_run_neither_resends_nor_skips() {
    let rig = Rig::new(33_554_432);
    confirm_all(&rig.store, &["ops@example.org", "sec@example.org"]);
    let jobs = DAILY.replace("tenants = [\"acme\"]", "tenants = [\"alpha\", \"beta\"]");
    let calls = Arc::new(AtomicUsize::new(0));
    // First life: beta's render "crashes" after alpha was mailed.
    let first = rig.scheduler(&jobs, fast(), fake_renderer(1000, calls.clone(), &["beta"]));
    first.tick(today_at(7, 0)).await.unwrap();
    let err = first.tick(today_at(8, 0)).await.unwrap_err();
    assert!(err.to_string().contains("beta"), "{err}");
    assert!(super::runner::error_chain(&err).ends_with("failed: renderer crashed"), "the cause is kept: {err:?}");
    assert_eq!(rig.reports().len(), 2, "alpha went to both recipients");
    drop(first);

    // Second life, 20 minutes later: only beta is sent, marked late.
    let second = rig.scheduler(&jobs, fast(), fake_renderer(1000, calls.clone(), &[]));
    second.tick(today_at(8, 20)).await.unwrap();
    let reports = rig.reports();
    assert_eq!(reports.len(), 4, "{reports:?}");
    let per_tenant = |t: &str| reports.iter().filter(|m| m["attachments"][0]["filename"].as_str().unwrap().contains(t)).count();
    assert_eq!((per_tenant("alpha"), per_tenant("beta")), (2, 2));
    let beta = rig.store.reports().unwrap().into_iter().find(|r| r.tenant == "beta").unwrap();
    assert!(beta.late && beta.status == ArchiveStatus::Sent);
    second.tick(today_at(8, 30)).await.unwrap();
    assert_eq!(rig.reports().len(), 4, "the finished slot is not sent again");

    // Down for three days: the latest missed run is sent once, marked late.
    let later = today_at(9, 0).checked_add(72.hours()).unwrap();
    let ids = second.tick(later).await.unwrap();
    assert_eq!(ids.len(), 2);
    let reports = rig.reports();
    assert_eq!(reports.len(), 8);
    assert!(reports.iter().filter(|m| m["text"].as_str().unwrap().contains("delivered late")).count() >= 4);
    assert_eq!(rig.stats.runs_skipped.load(Ordering::Relaxed), 2);
}

#[tokio::test]
async fn send_now_runs_the_chosen_tenants_of_a_job_and_leaves_its_schedule_alone() {
    let rig = Rig::new(33_554_432);
    confirm_all(&rig.store, &["ops@example.org", "sec@example.org"]);
    let jobs = DAILY.replace("tenants = [\"acme\"]", "tenants = [\"alpha\", \"beta\"]");
    let calls = Arc::new(AtomicUsize::new(0));
    let sched = rig.scheduler(&jobs, fast(), fake_renderer(1000, calls.clone(), &[]));
    let now = today_at(6, 0);
    // Only the tenants asked for (gamma is not the job's: ignored), at slot = now.
    let done = sched.send_now("daily", &["beta".into(), "gamma".into()], now).await.unwrap();
    let made: Vec<(&str, ArchiveStatus, i64)> = done.iter().map(|r| (r.tenant.as_str(), r.status, r.slot_ms)).collect();
    assert_eq!(made, [("beta", ArchiveStatus::Sent, now.as_millisecond())]);
    assert_eq!(calls.load(Ordering::SeqCst), 1, "rendered once");
    assert_eq!(rig.reports().len(), 2, "mailed to both confirmed recipients");
    assert!(rig.store.cursors().unwrap().is_empty(), "the job's cursor is the loop's");
    let err = sched.send_now("nosuch", &["beta".into()], now).await.unwrap_err();
    assert!(matches!(err, super::runner::ScheduleError::UnknownJob(ref j) if j == "nosuch"), "{err}");
    // The scheduled run still comes, for every tenant.
    sched.tick(today_at(7, 0)).await.unwrap();
    assert_eq!(sched.tick(today_at(8, 0)).await.unwrap().len(), 2);
    assert_eq!(rig.reports().len(), 6);
}

#[tokio::test]
async fn auto_delivery_switches_to_a_signed_link_above_the_servers_size() {
    let rig = Rig::new(40_000);
    confirm_all(&rig.store, &["ops@example.org", "sec@example.org"]);
    let calls = Arc::new(AtomicUsize::new(0));
    let small = rig.scheduler(DAILY, fast(), fake_renderer(2000, calls.clone(), &[]));
    small.tick(today_at(7, 0)).await.unwrap();
    small.tick(today_at(8, 0)).await.unwrap();
    let reports = rig.reports();
    assert_eq!(reports.len(), 2);
    assert!(reports.iter().all(|m| m["attachments"].as_array().unwrap().len() == 1), "small: attached");

    let big = rig.scheduler(DAILY, fast(), fake_renderer(40_000, calls.clone(), &[]));
    let ids = big.tick(today_at(8, 0).checked_add(24.hours()).unwrap()).await.unwrap();
    let rec = rig.store.report(ids[0]).unwrap().unwrap();
    assert_eq!((rec.mode.as_str(), rec.status), ("link", ArchiveStatus::Sent));
    let reports = rig.reports();
    let linked: Vec<&Value> = reports.iter().filter(|m| m["attachments"].as_array().unwrap().is_empty()).collect();
    assert_eq!(linked.len(), 2, "{reports:?}");
    let download = link(linked[0]["text"].as_str().unwrap(), "/download?t=");
    let (status, body) = http(rig.http, "GET", &download, "").await;
    assert_eq!(status, 200);
    assert_eq!(body, pdf(40_000));
    // Expired, tampered and wrong-kind download links are refused.
    let expired = rig.key.sign(TokenKind::Download, &rec.id.to_string(), today_at(0, 0).as_millisecond());
    assert_eq!(http(rig.http, "GET", &format!("/download?t={expired}"), "").await.0, 403);
    let forged = rig.key.sign(TokenKind::Unsubscribe, &rec.id.to_string(), 0);
    assert_eq!(http(rig.http, "GET", &format!("/download?t={forged}"), "").await.0, 403);
    let other = LinkKey::from_bytes(&[9; 32]).sign(TokenKind::Download, &rec.id.to_string(), 0);
    assert_eq!(http(rig.http, "GET", &format!("/download?t={other}"), "").await.0, 403);

    // The configured limit switches too, even when the server would take the mail.
    let strict = DeliveryConfig { max_attachment_bytes: 1000, ..fast() };
    let limited = rig.scheduler(DAILY, strict, fake_renderer(2000, calls.clone(), &[]));
    let ids = limited.tick(today_at(8, 0).checked_add(48.hours()).unwrap()).await.unwrap();
    assert_eq!(rig.store.report(ids[0]).unwrap().unwrap().mode, "link");
    // `delivery = "attachment"` never switches.
    let attach = DAILY.replace("message = ", "delivery = \"attachment\"\nmessage = ");
    let forced = rig.scheduler(&attach, fast(), fake_renderer(2000, calls.clone(), &[]));
    let ids = forced.tick(today_at(8, 0).checked_add(72.hours()).unwrap()).await.unwrap();
    assert_eq!(rig.store.report(ids[0]).unwrap().unwrap().mode, "attachment");
}

#[tokio::test]
async fn delivery_failures_are_retried_and_recorded() {
    let rig = Rig::new(33_554_432);
    confirm_all(&rig.store, &["ops@example.org"]);
    let mut sched = rig.scheduler(
        &DAILY.replace("Ops Team <ops@example.org>; sec@example.org", "ops@example.org"),
        fast(),
        fake_renderer(100, Arc::new(AtomicUsize::new(0)), &[]),
    );
    // A server that is not there.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    sched.mailer = Arc::new(Mailer::new(&smtp_config("127.0.0.1", closed, Security::None)).unwrap());
    sched.tick(today_at(7, 0)).await.unwrap();
    let ids = sched.tick(today_at(8, 0)).await.unwrap();
    let rec = rig.store.report(ids[0]).unwrap().unwrap();
    assert_eq!((rec.status, rec.attempts), (ArchiveStatus::Failed, 2));
    assert!(rec.last_error.as_deref().unwrap().contains("connect"), "{rec:?}");

    // `report resend` once the server is back.
    sched.mailer = Arc::new(Mailer::new(&mail_config(&rig._pki, &rig.smtp)).unwrap());
    let rec = sched.resend(rec.id, today_at(9, 0), "cli (test)").await.unwrap();
    assert_eq!(rec.status, ArchiveStatus::Failed, "the scheduled delivery stays as it was");
    assert_eq!(rec.resends.len(), 1);
    let r = &rec.resends[0];
    assert_eq!((r.status, r.mode.as_str(), r.by.as_str(), r.recipients.len()), (ArchiveStatus::Sent, "attachment", "cli (test)", 1));
    assert_eq!(rig.reports().len(), 1);
    assert_eq!(rig.store.report(rec.id).unwrap().unwrap(), rec, "recorded");

    // Nobody confirmed: nothing to send is an error, and nothing is recorded.
    let ev = super::ConsentEvent {
        at_ms: 0,
        address: "ops@example.org".into(),
        event: "unsubscribed".into(),
        source: "test".into(),
        detail: String::new(),
    };
    rig.store.set_recipient_state("ops@example.org", RecipientState::Unsubscribed, ev).unwrap();
    let err = sched.resend(rec.id, today_at(9, 5), "cli (test)").await.unwrap_err();
    assert!(matches!(err, super::runner::ScheduleError::NobodyToSend { .. }), "{err}");
    assert_eq!(rig.store.report(rec.id).unwrap().unwrap().resends.len(), 1);
}

#[tokio::test]
async fn the_loop_stops_promptly_on_shutdown() {
    let rig = Rig::new(33_554_432);
    confirm_all(&rig.store, &["ops@example.org", "sec@example.org"]);
    let sched = rig.scheduler(DAILY, fast(), fake_renderer(10, Arc::new(AtomicUsize::new(0)), &[]));
    let (tx, rx) = watch::channel(false);
    let task = tokio::spawn(sched.run_loop(rx));
    // The first tick gives the new job its cursor: "now", so nothing from the past is sent.
    let cursor = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        loop {
            if let Some(c) = rig.store.cursors().unwrap().get("daily").copied() {
                return c;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap();
    assert!((Timestamp::now().as_millisecond() - cursor).abs() < 10_000);
    tx.send(true).unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(5), task).await.expect("the scheduler did not stop").unwrap();
    assert!(rig.reports().is_empty());
}

#[tokio::test]
async fn with_only_a_cc_address_confirmed_the_mail_goes_to_it_as_cc() {
    let rig = Rig::new(33_554_432);
    confirm_all(&rig.store, &["noc@example.org"]);
    let jobs =
        DAILY.replace("to = \"Ops Team <ops@example.org>; sec@example.org\"", "to = \"ops@example.org\"\ncc = \"NOC <noc@example.org>\"");
    let sched = rig.scheduler(&jobs, fast(), fake_renderer(100, Arc::new(AtomicUsize::new(0)), &[]));
    sched.tick(today_at(7, 0)).await.unwrap();
    sched.tick(today_at(8, 0)).await.unwrap();
    let reports = rig.reports();
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert_eq!(reports[0]["cc"], "NOC <noc@example.org>");
    assert!(reports[0]["to"].is_null(), "the unconfirmed To address is not shown as a recipient: {}", reports[0]);
}

const GERMAN: &str = r#"
[[jobs]]
name = "nyc"
tenants = ["acme"]
period = "day"
send = ["daily 08:00"]
time-zone = "America/New_York"
language = "de"
to = "Ops <ops@example.org>"
"#;

/// Pieces of the English mail and page texts long enough to be a sentence's part, split at
/// placeholders and line breaks.
fn english_phrases() -> Vec<String> {
    let en = crate::report::mail::MailStrings::get(crate::report::Lang::En);
    en.all()
        .iter()
        .flat_map(|t| t.split(['{', '}', '\n', ':', '(', ')']))
        .map(str::trim)
        .filter(|p| p.len() >= 10 && p.contains(' '))
        .map(str::to_owned)
        .collect()
}

fn assert_no_english(what: &str, text: &str) {
    for phrase in english_phrases() {
        assert!(!text.contains(&phrase), "{what} contains the English {phrase:?}: {text}");
    }
}

/// A German job's invitation, confirm page, report mail (subject, text, HTML, file name) and
/// unsubscribe page: no English sentence, the period named in German in the job's zone, no
/// internal label.
#[tokio::test]
async fn a_german_jobs_mails_and_pages_are_german_and_name_the_period() {
    let rig = Rig::new(33_554_432);
    let sched = rig.scheduler(GERMAN, fast(), fake_renderer(500, Arc::new(AtomicUsize::new(0)), &[]));
    let slot = super::due::next_slot(&sched.jobs[0], today_at(0, 0)).unwrap();
    sched.tick(slot.checked_sub(1.hour()).unwrap()).await.unwrap();
    let invite = &rig.received()[0];
    assert!(invite["subject"].as_str().unwrap().contains("Bitte bestätigen"), "{invite}");
    assert_no_english("the invitation", invite["text"].as_str().unwrap());
    assert_no_english("the invitation's subject", invite["subject"].as_str().unwrap());

    let confirm = link(invite["text"].as_str().unwrap(), "/confirm?t=");
    let (status, page) = http(rig.http, "GET", &confirm, "").await;
    let page = String::from_utf8(page).unwrap();
    assert!(status == 200 && page.contains("Sicherheitsberichte bestätigen") && page.contains("lang=\"de\""), "{page}");
    assert_no_english("the confirm page", &page);
    let (status, page) = http(rig.http, "POST", "/confirm?l=de", &format!("t={}", token(&confirm))).await;
    let page = String::from_utf8(page).unwrap();
    assert!(status == 200 && page.contains("Bestätigt"), "{page}");
    assert_no_english("the confirmed page", &page);

    sched.tick(slot).await.unwrap();
    let reports = rig.reports();
    assert_eq!(reports.len(), 1, "{reports:?}");
    let r = &reports[0];
    let job = &sched.jobs[0];
    let period = crate::period::Period::ending_at(job.window(), job.week_start.0, slot, &job.time_zone.0).unwrap();
    let day = period.name(crate::report::Lang::De);
    assert!(day.len() == 10 && day.as_bytes()[2] == b'.', "a German date: {day}");
    assert_eq!(r["subject"], format!("acme: Sicherheitsbericht für {day}"));
    assert_eq!(r["attachments"][0]["filename"], format!("ampel-acme-{}.pdf", period.label()));
    let (text, html) = (r["text"].as_str().unwrap(), r["html"].as_str().unwrap());
    assert!(text.contains(&format!("Zeitraum: {day} ({day} 00:00 – ")) && text.contains("America/New_York)"), "{text}");
    assert!(text.contains("GRÜN") && text.contains("Keine Befunde"), "{text}");
    for (what, body) in [("the subject", r["subject"].as_str().unwrap()), ("the text", text), ("the HTML", html)] {
        assert_no_english(what, body);
        assert!(!body.contains(&period.label()), "{what} shows the internal label {}: {body}", period.label());
    }

    let unsubscribe = link(r["list_unsubscribe"].as_str().unwrap(), "/unsubscribe?t=");
    let (status, page) = http(rig.http, "GET", &unsubscribe, "").await;
    let page = String::from_utf8(page).unwrap();
    assert!(status == 200 && page.contains("Von Sicherheitsberichten abmelden"), "{page}");
    assert_no_english("the unsubscribe page", &page);
    // A link that carries no language: the browser's preference decides.
    let (status, page) = http_with(rig.http, "GET", "/confirm?t=forged", "", "Accept-Language: de-DE,de;q=0.9,en;q=0.8\r\n").await;
    let page = String::from_utf8(page).unwrap();
    assert!(status == 403 && page.contains("Link ungültig"), "{page}");
    assert_no_english("the error page", &page);
    let (_, page) = http_with(rig.http, "GET", "/download?t=forged", "", "Accept-Language: en-GB\r\n").await;
    assert!(String::from_utf8(page).unwrap().contains("Link not valid"));
}

/// A renderer whose PDF says which edition it is, counting its calls.
fn edition_renderer(calls: Arc<AtomicUsize>) -> RenderFn {
    Arc::new(move |req| {
        calls.fetch_add(1, Ordering::SeqCst);
        let mut p = pdf(100);
        p.extend(format!("{} {}", req.lang.code(), req.depth.name()).bytes());
        Ok(Rendered { light: "green".into(), score: 100, findings: Vec::new(), pdf: p })
    })
}

const MIXED: &str = r#"
[[jobs]]
name = "mixed"
tenants = ["acme"]
period = "day"
send = ["daily 08:00"]
to = [{ address = "Chefin <chefin@example.org>", language = "de", depth = "summary" }, "ops@example.org"]
cc = [{ address = "noc@example.org", depth = "full" }]
"#;

/// A German-summary and an English-full recipient: one render per edition, each recipient
/// their own PDF in their own language, and a resend sends each the one they got.
#[tokio::test]
async fn each_recipient_gets_their_own_language_and_depth_and_a_resend_the_same() {
    let rig = Rig::new(33_554_432);
    let calls = Arc::new(AtomicUsize::new(0));
    let sched = rig.scheduler(MIXED, fast(), edition_renderer(calls.clone()));
    sched.tick(today_at(7, 0)).await.unwrap();
    let invites = rig.received();
    let invite_to = |who: &str| invites.iter().find(|m| m["rcpt_to"].as_str().unwrap().contains(who)).unwrap()["subject"].clone();
    assert!(invite_to("chefin@").as_str().unwrap().contains("Bitte bestätigen"), "her invitation is in her language");
    assert!(invite_to("ops@").as_str().unwrap().contains("please confirm"));
    confirm_all(&rig.store, &["chefin@example.org", "ops@example.org", "noc@example.org"]);
    let ids = sched.tick(today_at(8, 0)).await.unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 2, "one render per distinct language and depth (noc@ shares ops@'s)");

    let got = |reports: &[Value], who: &str| -> (String, Vec<u8>) {
        let r = reports.iter().find(|m| m["rcpt_to"].as_str().unwrap().contains(who)).unwrap_or_else(|| panic!("no mail to {who}"));
        (r["subject"].as_str().unwrap().to_owned(), std::fs::read(r["attachments"][0]["path"].as_str().unwrap()).unwrap())
    };
    let check = |reports: &[Value]| {
        let (subject, pdf) = got(reports, "chefin@");
        assert!(subject.starts_with("acme: Sicherheitsbericht für ") && pdf.ends_with(b"de summary"), "{subject}");
        for who in ["ops@", "noc@"] {
            let (subject, pdf) = got(reports, who);
            assert!(subject.starts_with("acme: security report for ") && pdf.ends_with(b"en full"), "{who}: {subject}");
        }
    };
    let reports = rig.reports();
    assert_eq!(reports.len(), 3, "{reports:?}");
    check(&reports);
    let rec = rig.store.report(ids[0]).unwrap().unwrap();
    assert_eq!(rec.editions.len(), 2);
    assert_eq!(rec.delivered.len(), 3);

    // Resent: the same rendering to each, not the job's own to all.
    sched.resend(rec.id, today_at(9, 0), "cli (test)").await.unwrap();
    // The maildir lists messages in no particular order: the resent ones are the new ids.
    let first: Vec<Value> = reports.iter().map(|m| m["message_id"].clone()).collect();
    let resent: Vec<Value> = rig.reports().into_iter().filter(|m| !first.contains(&m["message_id"])).collect();
    assert_eq!(resent.len(), 3);
    check(&resent);
}

/// An archive record as the previous release wrote it (one rendering, no editions) still reads,
/// and its one rendering is its file in the job's language.
#[test]
fn an_archive_record_of_the_previous_release_still_reads() {
    let old = r#"{"id":7,"job":"daily","tenant":"acme","slot_ms":1796630400000,"period_start_ms":1796544000000,
        "period_end_ms":1796630400000,"period_label":"1d-2026-12-07T0800","created_ms":1796630400000,
        "file":"1796630400000-daily-ampel-acme-1d-2026-12-07T0800.pdf","bytes":1234,"light":"green","score":100,
        "late":false,"mode":"attachment","recipients":["ops@example.org"],"status":"sent","attempts":1,
        "last_error":null,"message_id":"<x@example.org>","link_reason":null,"resends":[]}"#;
    let rec: super::ArchiveRecord = serde_json::from_str(old).unwrap();
    let own = crate::report::Edition { lang: crate::report::Lang::De, depth: crate::report::Depth::Full };
    let r = rec.renderings(own);
    assert_eq!((r.len(), r[0].edition, r[0].file.as_str(), r[0].bytes), (1, own, rec.file.as_str(), 1234));
    let period = crate::period::Period::of_record(rec.period_start_ms, rec.period_end_ms, &rec.period_label, "UTC").unwrap();
    assert_eq!(period.name(crate::report::Lang::De), "06.12.2026 08:00 – 07.12.2026 08:00");
}

#[test]
fn recipients_are_addresses_or_tables_and_a_misspelt_key_is_named() {
    let job = |to: &str| {
        toml::from_str::<JobConfig>(&format!("name = \"j\"\ntenants = [\"a\"]\nperiod = \"day\"\nsend = [\"daily 08:00\"]\nto = {to}\n"))
    };
    let j = job(r#"["a@example.org", { address = "B <b@example.org>", language = "de" }]"#).unwrap();
    assert_eq!(j.to.0, vec!["a@example.org".to_owned(), "B <b@example.org>".to_owned()]);
    let de = crate::report::Edition { lang: crate::report::Lang::De, depth: crate::report::Depth::Full };
    assert_eq!((j.edition_of("b@example.org"), j.edition_of("a@example.org").lang), (de, crate::report::Lang::En));
    assert_eq!(j.editions().len(), 2);
    let err = job(r#"[{ address = "b@example.org", langauge = "de" }]"#).unwrap_err().to_string();
    assert!(err.contains("langauge"), "{err}");
    assert!(job(r#"[{ address = "b@example.org", depth = "brief" }]"#).is_err());
    assert!(job("\"a@example.org; b@example.org\"").unwrap().to.1.is_empty());
}

#[tokio::test]
async fn a_report_moved_here_with_its_tenant_is_resent_to_its_confirmed_recipients_without_an_invitation() {
    use crate::tenant_io::{Delivery, export, import};
    let invitations = |rig: &Rig| rig.received().iter().filter(|m| m["subject"].as_str().unwrap().contains("please confirm")).count();
    let time_series = |rig: &Rig| crate::store::Store::open(&rig.dir.path().join("store"), Default::default()).unwrap();
    let archive = |rig: &Rig| Archive::new(&rig.dir.path().join("archive"));
    // eu-1 mailed acme's report to its two confirmed recipients.
    let eu1 = Rig::new(33_554_432);
    confirm_all(&eu1.store, &["ops@example.org", "sec@example.org"]);
    let source = eu1.scheduler(DAILY, fast(), fake_renderer(2000, Arc::default(), &[]));
    let moved = source.send_now("daily", &["acme".into()], today_at(8, 0)).await.unwrap().remove(0);
    let file = eu1.dir.path().join("acme.tenant");
    let (eu1_store, eu1_archive) = (time_series(&eu1), archive(&eu1));
    let d = Delivery { store: &eu1.store, archive: &eu1_archive };
    export(&eu1_store, d, &Default::default(), &"acme".parse().unwrap(), Some("eu-1"), 0, &file).unwrap();

    // eu-2 made a report of its own (id 1) and invited the same addresses for it.
    let eu2 = Rig::new(33_554_432);
    let jobs = DAILY.replace("tenants = [\"acme\"]", "tenants = [\"acme\", \"initech\"]");
    let sched = eu2.scheduler(&jobs, fast(), fake_renderer(1000, Arc::default(), &[]));
    sched.tick(today_at(7, 0)).await.unwrap();
    assert_eq!(sched.send_now("daily", &["initech".into()], today_at(7, 30)).await.unwrap()[0].id, 1);
    let invited = invitations(&eu2);
    assert_eq!(invited, 2);

    let (eu2_store, eu2_archive) = (time_series(&eu2), archive(&eu2));
    let done = import(&eu2_store, Delivery { store: &eu2.store, archive: &eu2_archive }, &file).unwrap();
    assert_eq!(done.delivery.merge.remapped, [(moved.id, 2)]);
    let rec = sched.resend(2, today_at(9, 0), "cli (test)").await.unwrap();
    assert_eq!((rec.tenant.as_str(), rec.resends.len(), rec.resends[0].recipients.len()), ("acme", 1, 2));
    let pdf = eu1_archive.read(&moved.file).unwrap();
    let resent = eu2.reports();
    assert_eq!(resent.len(), 2, "to both, confirmed at eu-1");
    for m in &resent {
        assert_eq!(std::fs::read(m["attachments"][0]["path"].as_str().unwrap()).unwrap(), pdf, "eu-1's PDF, byte for byte");
    }
    assert_eq!(invitations(&eu2), invited, "no new invitation");
}

/// A delivery store as the previous release left it — its five databases, no `moved` — opens
/// under this one: the table is added, the old record reads, and the next report gets the id
/// after it.
#[test]
fn a_delivery_store_of_the_previous_release_opens_and_goes_on_numbering() {
    use heed::types::Bytes;
    let dir = tempfile::tempdir().unwrap();
    let old = r#"{"id":7,"job":"daily","tenant":"acme","slot_ms":1796630400000,"period_start_ms":1796544000000,
        "period_end_ms":1796630400000,"period_label":"1d-2026-12-07T0800","created_ms":1796630400000,
        "file":"1796630400000-daily-ampel-acme-1d-2026-12-07T0800.pdf","bytes":1234,"light":"green","score":100,
        "late":false,"mode":"attachment","recipients":["ops@example.org"],"status":"sent","attempts":1,
        "last_error":null,"message_id":"<x@example.org>","link_reason":null,"resends":[]}"#;
    {
        let mut options = heed::EnvOpenOptions::new();
        options.map_size(1 << 24).max_dbs(8);
        // SAFETY: opened once, by this test, and closed before the store opens it.
        #[allow(unsafe_code)]
        let env = unsafe { options.open(dir.path()) }.unwrap();
        let wtxn = env.write_txn().unwrap();
        let made = env
            .create_databases_and_commit(wtxn, |opener, wtxn| -> Result<_, heed::Error> {
                for name in ["cursors", "recipients", "consent", "runs"] {
                    opener.create_database::<Bytes, Bytes>(wtxn, Some(name))?;
                }
                let archive = opener.create_database::<Bytes, Bytes>(wtxn, Some("archive"))?;
                archive.put(wtxn, &7u64.to_be_bytes(), old.as_bytes())?;
                Ok(heed::CommitOrAbort::<(), ()>::Commit(()))
            })
            .unwrap();
        assert!(matches!(made, heed::CommitOrAbort::Commit(())));
        env.prepare_for_closing().wait();
    }
    let store = super::DeliveryStore::open(dir.path()).unwrap();
    let kept = store.report(7).unwrap().unwrap();
    assert_eq!((kept.tenant.as_str(), kept.bytes), ("acme", 1234));
    let next = store.add_report(super::ArchiveRecord { id: 0, ..kept }).unwrap();
    assert_eq!(next, 8, "a new report never takes an id the old store gave");
    assert_eq!(store.reports().unwrap().len(), 2);
}
