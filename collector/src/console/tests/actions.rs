//! The reporting and administration pages and their actions over a real listener: jobs with
//! preview and "send now", recipients with invite and remove, enrollment tokens and
//! revocation — each for every role on own and foreign tenants, with CSRF and the audit log.

use std::sync::Arc;

use ampel_protocol::{DeviceId, TenantId};
use tempfile::TempDir;
use tokio::sync::watch;

use super::super::Console;
use super::{PASSWORD, Resp, api, json_of, request, request_with, session};
use crate::config::Config;
use crate::http::{HttpServer, HttpState};
use crate::recipients::LinkKey;
use crate::schedule::{ConsentEvent, DeliveryStore, RecipientState};
use crate::store::{Store, StoreOptions};

/// A console with three jobs: `acme-daily` (acme), `globex-daily` (globex) and `shared`
/// (both), a CA, the real renderer and a file outbox.
struct Rig {
    addr: std::net::SocketAddr,
    console: Arc<Console>,
    delivery: DeliveryStore,
    dir: TempDir,
    _shutdown: watch::Sender<bool>,
}

fn config(dir: &std::path::Path) -> Config {
    std::fs::create_dir_all(dir.join("outbox")).unwrap();
    let hash = super::hash_password(PASSWORD).unwrap();
    let h = hash.as_str();
    let job = |name: &str, tenants: &str, to: &str| {
        format!(
            "[[jobs]]\nname = \"{name}\"\ntenants = [{tenants}]\nperiod = \"day\"\nsend = [\"daily 08:00\"]\ntime-zone = \"Europe/Berlin\"\nto = [{to}]\n"
        )
    };
    let src = format!(
        "data-dir = \"{0}\"\n[http]\nlisten = \"127.0.0.1:0\"\n\
         [mail]\nfrom = \"Ampel <ampel@localhost>\"\ntransport = \"file\"\noutbox = \"{0}/outbox\"\n\
         {1}{2}{3}\
         [[users]]\nname = \"admin\"\nrole = \"administrator\"\ntenants = \"*\"\npassword-hash = \"{h}\"\n\
         [[users]]\nname = \"manager\"\nrole = \"tenant-manager\"\ntenants = [\"acme\"]\npassword-hash = \"{h}\"\n\
         [[users]]\nname = \"analyst\"\nrole = \"analyst\"\ntenants = [\"acme\"]\npassword-hash = \"{h}\"\n",
        dir.display(),
        job("acme-daily", "\"acme\"", "\"ops@example.org\", \"Boss <boss@example.org>\""),
        job("globex-daily", "\"globex\"", "\"sec@example.net\""),
        job("shared", "\"acme\", \"globex\"", "\"it@example.org\""),
    );
    Config::parse(&dir.join("collector.toml"), &src).unwrap()
}

impl Rig {
    async fn new() -> Rig {
        let dir = TempDir::new().unwrap();
        let cfg = config(dir.path());
        let pki = crate::pki::InitOptions { names: vec!["localhost".into()], ..crate::pki::InitOptions::default() };
        crate::pki::Pki::init(&cfg.pki_dir(), &pki).unwrap();
        let store = Store::open(&dir.path().join("store"), StoreOptions::default()).unwrap();
        for (tenant, device) in [("acme", "fw-acme"), ("globex", "fw-globex")] {
            store.register_device(&tenant.parse::<TenantId>().unwrap(), &device.parse::<DeviceId>().unwrap(), 0).unwrap();
        }
        let delivery = DeliveryStore::open(&cfg.delivery_dir()).unwrap();
        let confirmed = ConsentEvent {
            at_ms: 0,
            address: "it@example.org".into(),
            event: "confirmed".into(),
            source: "test".into(),
            detail: "job globex-daily".into(),
        };
        delivery.set_recipient_state("it@example.org", RecipientState::Confirmed, confirmed).unwrap();
        let cfg = Arc::new(cfg);
        let console = Arc::new(Console::new(cfg.clone(), store.clone()).unwrap());
        let key = LinkKey::load_or_create(&cfg.delivery_dir().join("link.key")).unwrap();
        let (shutdown, rx) = watch::channel(false);
        let state = HttpState {
            connections: Arc::default(),
            store: delivery.clone(),
            key: key.clone(),
            archive: crate::archive::Archive::new(&cfg.archive_dir()),
            delivery: Arc::default(),
            ingest: None,
            trust: None,
            console: Some(console.clone()),
        };
        let limits = crate::http::HttpConfig::default().limits(crate::rlimit::nofile());
        let addr = HttpServer::start("127.0.0.1:0".parse().unwrap(), limits, state, rx).unwrap().local_addr;
        let render = crate::schedule::runner::store_renderer(store, cfg.clone());
        console.set_resender(crate::schedule::commands::scheduler(&cfg, delivery.clone(), key, addr, render, Arc::default()).unwrap());
        Rig { addr, console, delivery, dir, _shutdown: shutdown }
    }

    fn outbox(&self) -> usize {
        std::fs::read_dir(self.dir.path().join("outbox")).unwrap().count()
    }

    /// The page's CSRF token of a logged-in user.
    async fn csrf(&self, cookie: &str) -> String {
        request(self.addr, "GET", "/console/", cookie, "").await.csrf()
    }

    /// The last audit event as (user, action, target).
    fn last_audit(&self) -> (String, String, String) {
        let e = self.console.audit.tail(1).unwrap().pop().expect("an audit event");
        (e.user, e.action, e.target)
    }
}

#[tokio::test]
async fn the_new_pages_for_every_role_on_own_and_foreign_tenants() {
    let rig = Rig::new().await;
    // (route, admin, manager, analyst); the manager and the analyst have acme only.
    let matrix: [(&str, u16, u16, u16); 10] = [
        ("/console/jobs", 200, 200, 404),
        ("/console/recipients", 200, 200, 404),
        ("/console/enrollment", 200, 404, 404),
        ("/console/jobs/acme-daily/preview", 200, 200, 404),
        ("/console/jobs/shared/preview?tenant=acme", 200, 200, 404),
        ("/console/jobs/shared/preview?tenant=globex", 200, 404, 404),
        ("/console/jobs/globex-daily/preview", 200, 404, 404),
        ("/console/jobs/nosuch/preview", 404, 404, 404),
        ("/api/v1/jobs", 200, 200, 404),
        ("/api/v1/recipients", 200, 200, 404),
    ];
    let users = ["admin", "manager", "analyst"];
    let mut cookies = Vec::new();
    for user in users {
        cookies.push(session(rig.addr, user).await);
    }
    for (i, (user, cookie)) in users.into_iter().zip(&cookies).enumerate() {
        let token = api_token_of(&rig, user);
        // The user's page for a thing that does not exist (with the user's navigation).
        let not_found = request(rig.addr, "GET", "/console/tenants/nosuch", cookie, "").await.body;
        for (route, a, m, n) in matrix {
            let want = [a, m, n][i];
            let r = if route.starts_with("/api/") {
                api(rig.addr, "GET", route, &token).await
            } else {
                request(rig.addr, "GET", route, cookie, "").await
            };
            assert_eq!(r.status, want, "{user} GET {route}: {}", r.body);
            if user != "admin" {
                assert!(!r.body.contains("globex"), "{user} GET {route} names the foreign tenant: {}", r.body);
            }
            if r.status == 404 && route.starts_with("/console/") {
                assert_eq!(r.body, not_found, "{user} GET {route}: a refusal looks like a thing that does not exist");
            }
        }
        let fleet = request(rig.addr, "GET", "/console/", cookie, "").await.body;
        assert_eq!(fleet.contains("/console/jobs\"") && fleet.contains("/console/recipients\""), user != "analyst", "{user}'s links");
        assert_eq!(fleet.contains("/console/enrollment\""), user == "admin", "{user}'s links");
    }
    // Every state change needs the CSRF token, for every role; without it nothing happens.
    let posts = [
        ("/console/jobs/acme-daily/send", ""),
        ("/console/recipients/invite", "job=acme-daily&address=ops%40example.org"),
        ("/console/recipients/remove", "job=shared&address=it%40example.org"),
        ("/console/enrollment/token", "tenant=acme&device=fw-new"),
        ("/console/enrollment/revoke", "device=fw-acme"),
    ];
    let changes = || rig.console.audit.tail(1000).unwrap().into_iter().filter(|e| e.action != "login").count();
    let before = changes();
    for (user, cookie) in users.into_iter().zip(&cookies) {
        for (route, form) in posts {
            let r = request(rig.addr, "POST", route, cookie, form).await;
            assert_eq!(r.status, 403, "{user} POST {route} without the CSRF token");
        }
    }
    // With it, what is not theirs is 404 like what does not exist (the analyst's own job too).
    let refusals = [
        ("manager", "/console/jobs/globex-daily/send", ""),
        ("manager", "/console/recipients/invite", "job=globex-daily&address=sec%40example.net"),
        ("manager", "/console/recipients/remove", "job=globex-daily&address=sec%40example.net"),
        ("manager", "/console/recipients/remove", "job=acme-daily&address=stranger%40example.com"),
        ("manager", "/console/enrollment/token", "tenant=acme&device=fw-new"),
        ("manager", "/console/enrollment/revoke", "device=fw-acme"),
        ("analyst", "/console/jobs/acme-daily/send", ""),
        ("analyst", "/console/recipients/invite", "job=acme-daily&address=ops%40example.org"),
        ("analyst", "/console/recipients/remove", "job=shared&address=it%40example.org"),
        ("analyst", "/console/enrollment/token", "tenant=acme&device=fw-new"),
        ("analyst", "/console/enrollment/revoke", "device=fw-acme"),
    ];
    for (user, route, form) in refusals {
        let cookie = &cookies[users.iter().position(|u| *u == user).unwrap()];
        let body = format!("csrf={}&{form}", rig.csrf(cookie).await);
        let r = request(rig.addr, "POST", route, cookie, &body).await;
        let not_found = request(rig.addr, "GET", "/console/tenants/nosuch", cookie, "").await.body;
        assert_eq!((r.status, &r.body), (404, &not_found), "{user} POST {route} {form}");
    }
    // The API's actions likewise (no CSRF there: the bearer token is no ambient credential).
    let invite_foreign = r#"{"job": "globex-daily", "address": "sec@example.net"}"#;
    let invite_own = r#"{"job": "acme-daily", "address": "ops@example.org"}"#;
    for (user, method, route, body) in [
        ("manager", "POST", "/api/v1/jobs/globex-daily/send", ""),
        ("manager", "POST", "/api/v1/recipients", invite_foreign),
        ("manager", "DELETE", "/api/v1/recipients/globex-daily/sec@example.net", ""),
        ("analyst", "POST", "/api/v1/jobs/acme-daily/send", ""),
        ("analyst", "POST", "/api/v1/recipients", invite_own),
        ("analyst", "DELETE", "/api/v1/recipients/shared/it@example.org", ""),
    ] {
        let auth = format!("Authorization: Bearer {}\r\n", api_token_of(&rig, user));
        let r = request_with(rig.addr, method, route, &auth, body).await;
        assert_eq!((r.status, json_of(&r)), (404, serde_json::json!({ "error": "not found" })), "{user} {method} {route}");
    }
    assert_eq!(changes(), before, "refused requests change nothing and audit nothing");
    assert_eq!(rig.outbox(), 0, "nothing was sent by a refused request");
}

/// An API token of `user`.
fn api_token_of(rig: &Rig, user: &str) -> String {
    let name = super::super::users::UserName::parse(user).unwrap();
    let now = super::super::now_ms();
    rig.console.tokens.create(&name, now, now + 86_400_000).unwrap().0
}

#[tokio::test]
async fn jobs_show_their_next_run_and_the_preview_is_the_pdf_a_recipient_gets() {
    let rig = Rig::new().await;
    let manager = session(rig.addr, "manager").await;
    let page = request(rig.addr, "GET", "/console/jobs", &manager, "").await;
    assert!(page.body.contains("acme-daily") && page.body.contains("shared"), "{}", page.body);
    let token = api_token_of(&rig, "manager");
    let jobs = json_of(&api(rig.addr, "GET", "/api/v1/jobs", &token).await);
    let names: Vec<&str> = jobs.as_array().unwrap().iter().map(|j| j["job"].as_str().unwrap()).collect();
    assert_eq!(names, ["acme-daily", "shared"]);
    assert_eq!(jobs[1]["tenants"], serde_json::json!(["acme"]), "the job's other tenant is not named");
    assert_eq!(jobs[0]["recipients"], 2);
    // The next run is the scheduler's: 08:00 Berlin after now, shown in the job's zone.
    let now = jiff::Timestamp::now();
    let next = crate::schedule::due::next_slot(&rig.console.cfg.jobs[0], now).unwrap();
    assert_eq!(jobs[0]["next_run_ms"], next.as_millisecond());
    let local = jobs[0]["next_run"].as_str().unwrap();
    assert!(local.ends_with("08:00 CET") || local.ends_with("08:00 CEST"), "{local}");
    assert!(page.body.contains(local), "the page shows the next run: {}", page.body);

    let pdf = request(rig.addr, "GET", "/console/jobs/acme-daily/preview", &manager, "").await;
    assert_eq!(pdf.status, 200);
    assert_eq!(pdf.header("content-type"), ["application/pdf"]);
    assert!(pdf.header("content-disposition")[0].starts_with("inline; filename=\"ampel-acme-"), "{:?}", pdf.header("content-disposition"));
    assert!(pdf.body.starts_with("%PDF"), "a PDF");
    // The bytes the scheduler would render for a run now (a day job: yesterday in Berlin).
    let req = crate::reporting::ReportRequest::of_job(&rig.console.cfg.jobs[0], "acme", jiff::Timestamp::now()).unwrap();
    let (_, expected) = crate::reporting::report(&rig.console.store, &rig.console.cfg, &req).unwrap();
    assert_eq!(pdf.body, String::from_utf8_lossy(&expected), "the preview is the report a recipient gets");
}

#[tokio::test]
async fn send_now_runs_the_scheduler_for_the_viewers_tenants_and_is_audited() {
    let rig = Rig::new().await;
    let manager = session(rig.addr, "manager").await;
    let csrf = rig.csrf(&manager).await;
    let r = request(rig.addr, "POST", "/console/jobs/shared/send", &manager, &format!("csrf={csrf}")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("of acme for") && r.body.contains("sent, to 1 recipient(s)"), "{}", r.body);
    assert!(!r.body.contains("globex"), "{}", r.body);
    let reports = rig.delivery.reports().unwrap();
    let made: Vec<(&str, &str)> = reports.iter().map(|r| (r.job.as_str(), r.tenant.as_str())).collect();
    assert_eq!(made, [("shared", "acme")], "archived for the manager's tenant only");
    assert_eq!(rig.outbox(), 1, "mailed to the confirmed recipient");
    let archived = rig.console.cfg.archive_dir().join(&reports[0].file);
    assert!(std::fs::read(archived).unwrap().starts_with(b"%PDF"));
    assert_eq!(rig.last_audit(), ("manager".into(), "send-now".into(), "job shared (acme)".into()));
    // The job's cursor is the scheduler loop's: untouched.
    assert!(rig.delivery.cursors().unwrap().is_empty());
    // Through the API: the same path, no CSRF, the reports in the answer; nobody confirmed
    // for acme-daily, so the report is archived and reaches nobody.
    let token = api_token_of(&rig, "admin");
    let sent = api(rig.addr, "POST", "/api/v1/jobs/acme-daily/send", &token).await;
    assert_eq!(sent.status, 200, "{}", sent.body);
    let sent = json_of(&sent);
    assert_eq!((sent[0]["tenant"].as_str(), sent[0]["status"].as_str()), (Some("acme"), Some("no-recipients")));
    assert_eq!(rig.last_audit(), ("admin".into(), "send-now".into(), "job acme-daily (acme)".into()));
    assert_eq!(api(rig.addr, "POST", "/api/v1/jobs/acme-daily/send", &api_token_of(&rig, "analyst")).await.status, 404);
}

/// The recipients of `job` as `GET /api/v1/recipients` lists them for `token`.
async fn recipients_of(rig: &Rig, token: &str, job: &str) -> Vec<serde_json::Value> {
    let list = json_of(&api(rig.addr, "GET", "/api/v1/recipients", token).await);
    let job = list.as_array().unwrap().iter().find(|j| j["job"] == job).unwrap_or_else(|| panic!("job {job} in {list}"));
    job["recipients"].as_array().unwrap().clone()
}

#[tokio::test]
async fn invite_then_the_recipient_is_invited_and_remove_takes_it_off_the_job() {
    let rig = Rig::new().await;
    let manager = session(rig.addr, "manager").await;
    let csrf = rig.csrf(&manager).await;
    let token = api_token_of(&rig, "manager");
    let ops = |list: &[serde_json::Value]| list.iter().find(|r| r["address"] == "ops@example.org").unwrap().clone();
    assert_eq!(ops(&recipients_of(&rig, &token, "acme-daily").await)["state"], serde_json::Value::Null);

    let invite = format!("csrf={csrf}&job=acme-daily&address=ops%40example.org");
    let r = request(rig.addr, "POST", "/console/recipients/invite", &manager, &invite).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("Invitation for job acme-daily sent to ops@example.org"), "{}", r.body);
    assert_eq!(rig.outbox(), 1, "the invitation mail");
    assert_eq!(rig.last_audit(), ("manager".into(), "invite".into(), "ops@example.org for job acme-daily".into()));
    let invited = ops(&recipients_of(&rig, &token, "acme-daily").await);
    assert_eq!(invited["state"], "invited");
    assert_eq!(invited["consent"][0]["event"], "invited");
    assert_eq!(invited["consent"][0]["source"], "console (manager, 127.0.0.1)");
    let page = request(rig.addr, "GET", "/console/recipients", &manager, "").await;
    assert!(page.body.contains("<th scope=\"row\">ops@example.org</th><td>to</td><td>invited</td>"), "{}", page.body);
    // An address that is not the job's is refused, with the reason.
    let stranger = format!("csrf={csrf}&job=acme-daily&address=stranger%40example.com");
    let r = request(rig.addr, "POST", "/console/recipients/invite", &manager, &stranger).await;
    assert_eq!(r.status, 409);
    assert!(r.body.contains("is not among the to and cc addresses of job"), "{}", r.body);

    let remove = format!("csrf={csrf}&job=acme-daily&address=ops%40example.org");
    let r = request(rig.addr, "POST", "/console/recipients/remove", &manager, &remove).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(rig.last_audit(), ("manager".into(), "remove".into(), "ops@example.org from job acme-daily".into()));
    let removed = ops(&recipients_of(&rig, &token, "acme-daily").await);
    assert_eq!(removed["removed_from_job"], true);
    assert_eq!(removed["consent"][1]["event"], "removed");
    let page = request(rig.addr, "GET", "/console/recipients", &manager, "").await;
    assert!(page.body.contains("<td>removed from this job</td>"), "{}", page.body);

    // The API: the same two actions, JSON in, no CSRF.
    let boss = |list: &[serde_json::Value]| list.iter().find(|r| r["address"] == "boss@example.org").unwrap().clone();
    let r = api(rig.addr, "DELETE", "/api/v1/recipients/acme-daily/boss@example.org", &token).await;
    assert_eq!(r.status, 409, "never invited: {}", r.body);
    let body = r#"{"job": "acme-daily", "address": "boss@example.org"}"#;
    let auth = format!("Authorization: Bearer {token}\r\n");
    let r = request_with(rig.addr, "POST", "/api/v1/recipients", &auth, body).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(boss(&recipients_of(&rig, &token, "acme-daily").await)["state"], "invited");
    let r = api(rig.addr, "DELETE", "/api/v1/recipients/acme-daily/boss@example.org", &token).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(boss(&recipients_of(&rig, &token, "acme-daily").await)["removed_from_job"], true);
    let r = request_with(rig.addr, "POST", "/api/v1/recipients", &auth, "{\"job\": 1}").await;
    assert_eq!(r.status, 400, "{}", r.body);
    let r = request_with(rig.addr, "POST", "/api/v1/recipients", &auth, r#"{"job": "globex-daily", "address": "sec@example.net"}"#).await;
    assert_eq!(r.status, 404);
    // The consent log does not name a job the manager does not see.
    let shared = recipients_of(&rig, &token, "shared").await;
    assert_eq!(shared[0]["consent"][0]["detail"], "another job");
}

/// The token on the answer page.
fn token_of(page: &Resp) -> ampel_protocol::enroll::Token {
    let at = page.body.find("ampel1:").expect("a token on the page");
    let end = at + page.body[at..].find('<').unwrap();
    ampel_protocol::enroll::Token::parse(&page.body[at..end]).unwrap()
}

#[tokio::test]
async fn an_enrollment_token_made_in_the_console_enrolls_and_a_revoke_lands_in_the_crl() {
    ampel_protocol::tls::install_provider();
    let rig = Rig::new().await;
    let admin = session(rig.addr, "admin").await;
    let csrf = rig.csrf(&admin).await;
    let r = request(rig.addr, "POST", "/console/enrollment/token", &admin, &format!("csrf={csrf}&tenant=acme&device=fw-new")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let token = token_of(&r);
    assert_eq!((token.tenant.as_str(), token.device.as_str()), ("acme", "fw-new"));
    let (user, action, target) = rig.last_audit();
    assert_eq!((user.as_str(), action.as_str()), ("admin", "enroll-token"));
    assert!(target.starts_with("device fw-new of tenant acme"), "{target}");
    let audit = std::fs::read_to_string(rig.dir.path().join("console").join(super::super::audit::FILE)).unwrap();
    assert!(!audit.contains(&token.secret), "the secret is not audited");
    // A device id of another tenant is refused without naming it.
    let taken = request(rig.addr, "POST", "/console/enrollment/token", &admin, &format!("csrf={csrf}&tenant=acme&device=fw-globex")).await;
    assert_eq!(taken.status, 400);
    assert!(taken.body.contains("is taken") && !taken.body.contains("tenant globex"), "{}", taken.body);
    let bad = request(rig.addr, "POST", "/console/enrollment/token", &admin, &format!("csrf={csrf}&tenant=acme&device=")).await;
    assert_eq!(bad.status, 400);

    // The agent enrolls with it, as over the enroll ALPN.
    let pki_dir = rig.console.cfg.pki_dir();
    let service = crate::enroll::EnrollService::new(crate::pki::Pki::open(&pki_dir).unwrap(), 3600, Arc::default());
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let csr = rcgen::CertificateParams::default().serialize_request(&key).unwrap().der().to_vec();
    let request_of = |token: &ampel_protocol::enroll::Token| ampel_protocol::enroll::EnrollRequest::Enroll {
        id: token.id.clone(),
        secret: token.secret.clone(),
        tenant: token.tenant.to_string(),
        device: token.device.to_string(),
        csr: csr.clone(),
    };
    let remote = "192.0.2.1:5000".parse().unwrap();
    let ampel_protocol::enroll::EnrollResponse::Issued { cert_pem, .. } = service.answer(request_of(&token), remote, None) else {
        panic!("the token did not enroll");
    };
    assert!(matches!(service.answer(request_of(&token), remote, None), ampel_protocol::enroll::EnrollResponse::Refused(_)), "once");

    // It connects, its first data registers it; then the administrator revokes it.
    let chain = ampel_protocol::tls::parse_certs(cert_pem.as_bytes()).unwrap();
    let trust = crate::ingest::trust::Trust::load(&pki_dir).unwrap();
    assert!(trust.verifier.still_valid(&chain));
    rig.console.store.register_device(&token.tenant, &token.device, 0).unwrap();
    let r = request(rig.addr, "POST", "/console/enrollment/revoke", &admin, &format!("csrf={csrf}&device=fw-new")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("1 certificate(s) revoked"), "{}", r.body);
    assert_eq!(rig.last_audit(), ("admin".into(), "revoke".into(), "device fw-new of tenant acme".into()));
    // The CRL holds its serial; the watcher's reload refuses its next handshake.
    let der =
        ampel_protocol::tls::parse_crls(&std::fs::read(crate::pki::Pki::open(&pki_dir).unwrap().crl_path()).unwrap()).unwrap().remove(0);
    let (_, crl) = x509_parser::parse_x509_crl(&der).unwrap();
    let (_, cert) = x509_parser::parse_x509_certificate(&chain[0]).unwrap();
    assert!(crl.iter_revoked_certificates().any(|r| r.raw_serial() == cert.raw_serial()), "the serial is on the CRL");
    trust.reload().unwrap();
    assert!(!trust.verifier.still_valid(&chain), "refused after the CRL reload");
    let page = request(rig.addr, "GET", "/console/enrollment", &admin, "").await;
    assert!(page.body.contains("<th scope=\"row\">fw-new</th><td>acme</td>"), "{}", page.body);
    assert!(page.body.contains("1 (revoked)"), "listed as revoked: {}", page.body);
    let none = request(rig.addr, "POST", "/console/enrollment/revoke", &admin, &format!("csrf={csrf}&device=nosuch")).await;
    assert_eq!(none.status, 404);
}

#[tokio::test]
async fn a_state_change_runs_to_its_end_when_the_client_goes_away() {
    let (go, wait) = tokio::sync::oneshot::channel::<()>();
    let (finished, done) = tokio::sync::oneshot::channel::<&str>();
    let change = super::super::to_completion(async move {
        wait.await.unwrap();
        finished.send("delivered").unwrap();
    });
    // The request is polled once, then dropped: the client went away mid-delivery.
    assert!(tokio::time::timeout(std::time::Duration::ZERO, change).await.is_err());
    go.send(()).unwrap();
    assert_eq!(done.await.unwrap(), "delivered", "the change ran to its end");
}
