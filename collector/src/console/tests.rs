//! The console over a real listener on a loopback port chosen at run time: the role matrix,
//! sessions, CSRF, the login rate limit and the reload of `[[users]]`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;

use ampel_protocol::{DeviceId, TenantId};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

use super::Console;
use super::session::MAX_FAILURES;
use super::users::hash_password;
use crate::archive::Archive;
use crate::config::Config;
use crate::http::{HttpServer, HttpState};
use crate::recipients::LinkKey;
use crate::schedule::runner::RenderFn;
use crate::schedule::{ArchiveRecord, ArchiveStatus, ConsentEvent, DeliveryStore, RecipientState};
use crate::store::{Store, StoreOptions};

mod actions;
mod lang;

const PASSWORD: &str = "correct horse battery staple";

struct Rig {
    addr: SocketAddr,
    console: Arc<Console>,
    /// Report ids: (acme, globex).
    reports: (u64, u64),
    /// The delivery store the fleet summary reads the last reports from.
    delivery: DeliveryStore,
    dir: TempDir,
    _shutdown: watch::Sender<bool>,
}

/// The config of the tests; `http` goes into `[http]` after `listen`.
fn config(dir: &std::path::Path, http: &str) -> Config {
    std::fs::create_dir_all(dir.join("outbox")).unwrap();
    let hash = hash_password(PASSWORD).unwrap();
    let h = hash.as_str();
    let src = format!(
        "data-dir = \"{0}\"\n[http]\nlisten = \"127.0.0.1:0\"\n{http}\n\
         [mail]\nfrom = \"Ampel <ampel@localhost>\"\ntransport = \"file\"\noutbox = \"{0}/outbox\"\n\
         [[jobs]]\nname = \"weekly\"\ntenants = [\"acme\", \"globex\"]\nperiod = \"week\"\nsend = [\"mon 08:00\"]\nto = [\"it@example.org\"]\n\
         [[users]]\nname = \"admin\"\nrole = \"administrator\"\ntenants = \"*\"\npassword-hash = \"{h}\"\n\
         [[users]]\nname = \"manager\"\nrole = \"tenant-manager\"\ntenants = [\"acme\"]\npassword-hash = \"{h}\"\n\
         [[users]]\nname = \"analyst\"\nrole = \"analyst\"\ntenants = [\"acme\"]\npassword-hash = \"{h}\"\n",
        dir.display(),
    );
    Config::parse(&dir.join("collector.toml"), &src).unwrap()
}

fn archived(delivery: &DeliveryStore, archive: &Archive, tenant: &str) -> u64 {
    let file = crate::archive::file_name("weekly", 0, tenant, "2026-W13");
    archive.write(&file, b"%PDF-1.4 test").unwrap();
    // The mail's finding lines, archived beside the PDF as the scheduler does.
    archive.write(&format!("{file}.summary"), b"[Endangered] fw-acme: evidence \xe2\x80\x94 advice").unwrap();
    let rec = ArchiveRecord {
        id: 0,
        job: "weekly".into(),
        tenant: tenant.into(),
        slot_ms: 0,
        period_start_ms: 0,
        period_end_ms: 1,
        period_label: "2026-W13".into(),
        created_ms: 1,
        file,
        bytes: 13,
        light: "green".into(),
        score: 100,
        late: false,
        mode: "attachment".into(),
        recipients: vec!["it@example.org".into()],
        status: ArchiveStatus::Sent,
        attempts: 1,
        last_error: None,
        message_id: None,
        link_reason: None,
        resends: Vec::new(),
        editions: Vec::new(),
        delivered: Default::default(),
    };
    delivery.add_report(rec).unwrap()
}

impl Rig {
    async fn new() -> Rig {
        Rig::with_http("").await
    }

    /// With `http` added to `[http]`.
    async fn with_http(http: &str) -> Rig {
        let dir = TempDir::new().unwrap();
        let cfg = config(dir.path(), http);
        let store = Store::open(&dir.path().join("store"), StoreOptions::default()).unwrap();
        for (tenant, device) in [("acme", "fw-acme"), ("globex", "fw-globex")] {
            store.register_device(&tenant.parse::<TenantId>().unwrap(), &device.parse::<DeviceId>().unwrap(), 0).unwrap();
        }
        let delivery = DeliveryStore::open(&dir.path().join("delivery")).unwrap();
        let event = ConsentEvent {
            at_ms: 0,
            address: "it@example.org".into(),
            event: "confirmed".into(),
            source: "test".into(),
            detail: String::new(),
        };
        delivery.set_recipient_state("it@example.org", RecipientState::Confirmed, event).unwrap();
        let archive = Archive::new(&dir.path().join("archive"));
        let reports = (archived(&delivery, &archive, "acme"), archived(&delivery, &archive, "globex"));
        let console = Arc::new(Console::new(Arc::new(cfg.clone()), store).unwrap());
        let key = LinkKey::load_or_create(&dir.path().join("delivery/link.key")).unwrap();
        let (shutdown, rx) = watch::channel(false);
        super::fleet::refresh(&console, &delivery, &rx).await.unwrap();
        let state = HttpState {
            connections: Arc::default(),
            store: delivery.clone(),
            key: key.clone(),
            archive,
            delivery: Arc::default(),
            ingest: None,
            trust: None,
            console: Some(console.clone()),
        };
        let limits = crate::http::HttpConfig::default().limits(crate::rlimit::nofile());
        let addr = HttpServer::start("127.0.0.1:0".parse().unwrap(), limits, state, rx).unwrap().local_addr;
        let no_render: RenderFn = Arc::new(|_| Err("resend does not render".into()));
        console.set_resender(crate::schedule::commands::scheduler(&cfg, delivery.clone(), key, addr, no_render, Arc::default()).unwrap());
        Rig { addr, console, reports, delivery, dir, _shutdown: shutdown }
    }
}

/// A response as the tests read it.
struct Resp {
    status: u16,
    head: String,
    body: String,
}

impl Resp {
    fn header(&self, name: &str) -> Vec<&str> {
        let prefix = format!("{}:", name.to_ascii_lowercase());
        self.head.lines().filter(|l| l.to_ascii_lowercase().starts_with(&prefix)).map(|l| l[prefix.len()..].trim()).collect()
    }

    /// The value of cookie `name` this response sets.
    fn set_cookie(&self, name: &str) -> Option<String> {
        self.header("set-cookie").into_iter().find_map(|c| c.strip_prefix(&format!("{name}="))?.split(';').next().map(str::to_owned))
    }

    /// The first hidden `csrf` field of the page.
    fn csrf(&self) -> String {
        let at = self.body.find("name=\"csrf\" value=\"").expect("a csrf field") + 19;
        self.body[at..at + 64].to_owned()
    }
}

async fn request(addr: SocketAddr, method: &str, target: &str, cookie: &str, body: &str) -> Resp {
    request_with(addr, method, target, &format!("Cookie: {cookie}\r\n"), body).await
}

/// A request with extra header lines (each ending in CRLF).
async fn request_with(addr: SocketAddr, method: &str, target: &str, headers: &str, body: &str) -> Resp {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{headers}\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let mut body = raw[split + 4..].to_vec();
    if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        body = dechunk(&body);
    }
    Resp { status, head, body: String::from_utf8_lossy(&body).into_owned() }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let end = b.windows(2).position(|w| w == b"\r\n").unwrap();
        let n = usize::from_str_radix(std::str::from_utf8(&b[..end]).unwrap().trim(), 16).unwrap();
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&b[end + 2..end + 2 + n]);
        b = &b[end + 2 + n + 2..];
    }
}

/// Logs in through the form; returns the `Cookie` header value of the session.
async fn login(addr: SocketAddr, user: &str, password: &str) -> Resp {
    let form = request(addr, "GET", "/console/login", "", "").await;
    let token = form.set_cookie("ampel_login").unwrap();
    assert_eq!(form.csrf(), token, "double-submit: the field carries the cookie's value");
    let body = format!("user={user}&password={}&csrf={token}", password.replace(' ', "+"));
    request(addr, "POST", "/console/login", &format!("ampel_login={token}"), &body).await
}

async fn session(addr: SocketAddr, user: &str) -> String {
    let r = login(addr, user, PASSWORD).await;
    assert_eq!(r.status, 303, "{user} logs in: {}", r.body);
    format!("ampel_session={}", r.set_cookie("ampel_session").unwrap())
}

#[tokio::test]
async fn every_route_for_every_role_on_own_and_foreign_tenants() {
    let rig = Rig::new().await;
    let (own, foreign) = rig.reports;
    // (route, admin, manager, analyst); the own tenant is acme, the foreign one globex.
    let matrix: Vec<(String, u16, u16, u16)> = vec![
        ("/console/".into(), 200, 200, 200),
        ("/console/tenants/acme".into(), 200, 200, 200),
        ("/console/tenants/acme?period=week".into(), 200, 200, 200),
        ("/console/tenants/acme?period=forever".into(), 400, 400, 400),
        ("/console/tenants/globex".into(), 200, 404, 404),
        ("/console/tenants/nosuch".into(), 404, 404, 404),
        ("/console/devices/fw-acme".into(), 200, 200, 200),
        ("/console/devices/fw-globex".into(), 200, 404, 404),
        ("/console/devices/nosuch".into(), 404, 404, 404),
        ("/console/reports".into(), 200, 200, 404),
        (format!("/console/reports/{own}/pdf"), 200, 200, 404),
        (format!("/console/reports/{foreign}/pdf"), 200, 404, 404),
        ("/console/reports/999999/pdf".into(), 404, 404, 404),
        ("/console/audit".into(), 200, 404, 404),
    ];
    for (i, user) in ["admin", "manager", "analyst"].into_iter().enumerate() {
        let cookie = session(rig.addr, user).await;
        // The user's page for a thing that does not exist (with the user's navigation).
        let not_found = request(rig.addr, "GET", "/console/tenants/nosuch", &cookie, "").await.body;
        for (route, a, m, n) in &matrix {
            let want = [a, m, n][i];
            let r = request(rig.addr, "GET", route, &cookie, "").await;
            assert_eq!(r.status, *want, "{user} GET {route}");
            if user != "admin" {
                assert!(!r.body.contains("globex"), "{user} GET {route} shows the foreign tenant");
            }
            if r.status == 404 {
                assert_eq!(r.body, not_found, "{user} GET {route}: a refusal looks like a thing that does not exist");
            }
            assert_eq!(r.header("content-security-policy"), [super::CSP], "{user} GET {route}");
        }
        let fleet = request(rig.addr, "GET", "/console/", &cookie, "").await;
        assert!(fleet.body.contains("acme"));
        assert_eq!(fleet.body.contains("globex"), user == "admin", "{user}'s fleet");
        assert_eq!(fleet.body.contains("/console/reports\""), user != "analyst", "reports link for {user}");
    }
    // Without a session every route leads to the login page.
    for (route, ..) in &matrix {
        let r = request(rig.addr, "GET", route, "", "").await;
        assert_eq!((r.status, r.header("location")), (303, vec!["/console/login"]), "anonymous GET {route}");
    }
}

#[tokio::test]
async fn cookies_are_strict_and_state_changes_need_the_csrf_token() {
    let rig = Rig::new().await;
    let r = login(rig.addr, "manager", PASSWORD).await;
    let set = r.header("set-cookie").into_iter().find(|c| c.starts_with("ampel_session=")).unwrap().to_owned();
    assert!(set.contains("HttpOnly") && set.contains("SameSite=Strict") && !set.contains("Secure"), "{set}");
    let cookie = format!("ampel_session={}", r.set_cookie("ampel_session").unwrap());
    let page = request(rig.addr, "GET", "/console/", &cookie, "").await;
    let csrf = page.csrf();
    // Logout without the token, or with another, is refused and the session lives on.
    for body in ["", "csrf=", &format!("csrf={}", "0".repeat(64))] {
        let r = request(rig.addr, "POST", "/console/logout", &cookie, body).await;
        assert_eq!(r.status, 403, "logout with {body:?}");
        assert_eq!(request(rig.addr, "GET", "/console/", &cookie, "").await.status, 200);
    }
    let r = request(rig.addr, "POST", "/console/logout", &cookie, &format!("csrf={csrf}")).await;
    assert_eq!((r.status, r.header("location")), (303, vec!["/console/login"]));
    assert_eq!(request(rig.addr, "GET", "/console/", &cookie, "").await.status, 303, "logged out");
    // A login without the form's cookie (a cross-site POST) is refused.
    let form = request(rig.addr, "GET", "/console/login", "", "").await;
    let r = request(rig.addr, "POST", "/console/login", "", &format!("user=manager&password=x&csrf={}", form.csrf())).await;
    assert_eq!(r.status, 403);
    // Login and logout are in the audit log with who and from where; the password is not.
    let events = rig.console.audit.tail(10).unwrap();
    let seen: Vec<(&str, &str, &str)> = events.iter().map(|e| (e.user.as_str(), e.action.as_str(), e.client.as_str())).collect();
    assert_eq!(seen, [("manager", "login", "127.0.0.1"), ("manager", "logout", "127.0.0.1")]);
    let raw = std::fs::read_to_string(rig.dir.path().join("console").join(super::audit::FILE)).unwrap();
    assert!(!raw.contains("horse"));
    let admin = session(rig.addr, "admin").await;
    let audit = request(rig.addr, "GET", "/console/audit", &admin, "").await;
    assert!(audit.body.contains("logout"), "{}", audit.body);
}

#[tokio::test]
async fn logins_are_rate_limited_per_address_and_name() {
    let rig = Rig::new().await;
    for _ in 0..MAX_FAILURES {
        assert_eq!(login(rig.addr, "analyst", "wrong password!").await.status, 401);
    }
    // The right password no longer helps, for this name or from this address.
    assert_eq!(login(rig.addr, "analyst", PASSWORD).await.status, 429);
    assert_eq!(login(rig.addr, "manager", PASSWORD).await.status, 429);
    // An unknown name is refused like a wrong password.
    let other = Rig::new().await;
    let r = login(other.addr, "nobody", PASSWORD).await;
    assert_eq!(r.status, 401);
    assert!(r.body.contains("Unknown user or wrong password"));
}

#[tokio::test]
async fn a_user_removed_by_a_reload_is_out_at_the_next_request() {
    let rig = Rig::new().await;
    let analyst = session(rig.addr, "analyst").await;
    let manager = session(rig.addr, "manager").await;
    let mut users = rig.console.users().to_vec();
    users.retain(|u| u.name.as_str() != "analyst");
    // The manager now also sees globex: changed tenants apply without a new login.
    users.iter_mut().filter(|u| u.name.as_str() == "manager").for_each(|u| u.tenants = super::users::Tenants::All);
    rig.console.set_users(users);
    assert_eq!(request(rig.addr, "GET", "/console/", &analyst, "").await.status, 303);
    assert_eq!(login(rig.addr, "analyst", PASSWORD).await.status, 401);
    assert_eq!(request(rig.addr, "GET", "/console/tenants/globex", &manager, "").await.status, 200);
    assert_eq!(rig.console.sessions.len(), 1, "the removed user's session is gone");
}

#[tokio::test]
async fn tenant_managers_resend_their_reports_through_the_scheduler_and_it_is_audited() {
    let rig = Rig::new().await;
    let (own, foreign) = rig.reports;
    let outbox = || std::fs::read_dir(rig.dir.path().join("outbox")).unwrap().count();
    let manager = session(rig.addr, "manager").await;
    let csrf = request(rig.addr, "GET", "/console/reports", &manager, "").await.csrf();
    let post = |cookie: String, id: u64, body: String| async move {
        request(rig.addr, "POST", &format!("/console/reports/{id}/resend"), &cookie, &body).await
    };
    // Refused: a foreign report (404, like none), no CSRF token (403), an analyst (404).
    assert_eq!(post(manager.clone(), foreign, format!("csrf={csrf}")).await.status, 404);
    assert_eq!(post(manager.clone(), own, String::new()).await.status, 403);
    let analyst = session(rig.addr, "analyst").await;
    let analyst_csrf = request(rig.addr, "GET", "/console/", &analyst, "").await.csrf();
    assert_eq!(post(analyst, own, format!("csrf={analyst_csrf}")).await.status, 404);
    assert_eq!(outbox(), 0, "nothing was sent by a refused request");
    let r = post(manager.clone(), own, format!("csrf={csrf}")).await;
    assert_eq!(r.status, 200);
    assert!(r.body.contains("resent to 1 recipient(s)"), "{}", r.body);
    assert_eq!(outbox(), 1);
    let events = rig.console.audit.tail(10).unwrap();
    let last = events.last().unwrap();
    assert_eq!((last.user.as_str(), last.action.as_str()), ("manager", "resend"));
    assert!(last.target.contains(&format!("report {own}")), "{}", last.target);
    let history = request(rig.addr, "GET", "/console/reports", &manager, "").await;
    assert!(history.body.contains("<td class=\"num\">2</td>"), "two deliveries shown: {}", history.body);
}

#[tokio::test]
async fn a_proxy_header_is_believed_from_proxy_addresses_only() {
    let trusted = Rig::with_http("trust-proxy-header = \"X-Remote-User\"\nproxy-addresses = [\"127.0.0.1\"]").await;
    let as_manager = "X-Remote-User: manager\r\n";
    let fleet = request_with(trusted.addr, "GET", "/console/", as_manager, "").await;
    assert_eq!(fleet.status, 200);
    assert!(fleet.body.contains("manager (tenant-manager)") && !fleet.body.contains("globex"));
    assert_eq!(request_with(trusted.addr, "GET", "/console/tenants/globex", as_manager, "").await.status, 404);
    let stranger = request_with(trusted.addr, "GET", "/console/", "X-Remote-User: mallory\r\n", "").await;
    assert_eq!(stranger.status, 403);
    // State changes still need the token shown on the page; another user's token does not do.
    let csrf = fleet.csrf();
    let admin_csrf = request_with(trusted.addr, "GET", "/console/", "X-Remote-User: admin\r\n", "").await.csrf();
    assert_ne!(csrf, admin_csrf);
    let (own, _) = trusted.reports;
    let target = format!("/console/reports/{own}/resend");
    assert_eq!(request_with(trusted.addr, "POST", &target, as_manager, &format!("csrf={admin_csrf}")).await.status, 403);
    assert_eq!(request_with(trusted.addr, "POST", &target, as_manager, &format!("csrf={csrf}")).await.status, 200);
    // From an address that is not a proxy the header means nothing: log in first.
    let elsewhere = Rig::with_http("trust-proxy-header = \"X-Remote-User\"\nproxy-addresses = [\"127.0.0.2\"]").await;
    let r = request_with(elsewhere.addr, "GET", "/console/", as_manager, "").await;
    assert_eq!((r.status, r.header("location")), (303, vec!["/console/login"]));
}

#[test]
fn users_need_the_http_listener() {
    let dir = TempDir::new().unwrap();
    let mut cfg = config(dir.path(), "").users;
    cfg.truncate(1);
    let hash = cfg[0].password_hash.as_str().to_owned();
    let src = format!("[[users]]\nname = \"a\"\nrole = \"analyst\"\ntenants = []\npassword-hash = \"{hash}\"\n");
    let err = Config::parse(&dir.path().join("c.toml"), &src).unwrap_err().to_string();
    assert!(err.contains("set [http] listen"), "{err}");
}

#[test]
fn a_proxy_header_needs_proxy_addresses_and_the_other_way_round() {
    let dir = TempDir::new().unwrap();
    let parse = |http: &str| Config::parse(&dir.path().join("c.toml"), &format!("[http]\nlisten = \"127.0.0.1:0\"\n{http}\n"));
    parse("trust-proxy-header = \"X-Remote-User\"\nproxy-addresses = [\"10.0.0.1\"]").unwrap();
    for lone in ["trust-proxy-header = \"X-Remote-User\"", "proxy-addresses = [\"10.0.0.1\"]"] {
        assert!(parse(lone).unwrap_err().to_string().contains("go together"), "{lone}");
    }
}

/// The fleet page and `GET /api/v1/tenants` answer from the summary: a tenant that appears
/// after a pass is not there until the next one, no request assesses anything, and each row
/// says how old it is.
#[tokio::test]
async fn the_fleet_page_and_api_read_the_summary_and_say_how_old_it_is() {
    let rig = Rig::new().await;
    let assessed = rig.console.fleet.assessments();
    assert_eq!(assessed, 2, "the rig's pass assessed acme and globex");
    rig.console.store.register_device(&"initech".parse::<TenantId>().unwrap(), &"fw-initech".parse::<DeviceId>().unwrap(), 0).unwrap();
    let admin = session(rig.addr, "admin").await;
    let token = api_token(&rig, "admin");
    let fleet = request(rig.addr, "GET", "/console/", &admin, "").await;
    assert!(fleet.body.contains("acme") && !fleet.body.contains("initech"), "the new tenant waits for the next pass: {}", fleet.body);
    assert!(fleet.body.contains("summary as of ") && fleet.body.contains(">As of<"), "{}", fleet.body);
    let api_rows = json_of(&api(rig.addr, "GET", "/api/v1/tenants", &token).await);
    assert!(api_rows.as_array().unwrap().iter().all(|r| r["tenant"] != "initech" && r["as_of_ms"].as_i64().unwrap() > 0), "{api_rows}");
    assert_eq!(rig.console.fleet.assessments(), assessed, "requests do not assess");
    super::fleet::refresh(&rig.console, &rig.delivery, &watch::channel(true).1).await.unwrap();
    let fleet = request(rig.addr, "GET", "/console/", &admin, "").await;
    assert!(!fleet.body.contains("initech"), "a pass stopped by the shutdown publishes nothing");
    super::fleet::refresh(&rig.console, &rig.delivery, &watch::channel(false).1).await.unwrap();
    assert_eq!(rig.console.fleet.assessments(), assessed + 3, "every tenant once, none by the stopped pass");
    let fleet = request(rig.addr, "GET", "/console/", &admin, "").await;
    assert!(fleet.body.contains("/console/tenants/initech"), "{}", fleet.body);
    let manager = session(rig.addr, "manager").await;
    let theirs = request(rig.addr, "GET", "/console/", &manager, "").await;
    assert!(theirs.body.contains("acme") && !theirs.body.contains("initech") && !theirs.body.contains("globex"));
}

/// Rows as another shard would send them: the viewer's filter applies to them, their links go
/// to that shard's console, an unreachable shard's tenants are grey with the reason, and a
/// long fleet is paged worst first.
#[tokio::test]
async fn the_fleet_page_filters_links_and_pages_the_rows_worst_first() {
    use super::fleet::{FleetRow, PAGE_ROWS};
    use crate::risk::Light;
    let rig = Rig::new().await;
    let mut rows: Vec<FleetRow> = (0..PAGE_ROWS + 20)
        .map(|i| FleetRow { light: Light::Green, ..FleetRow::unknown(&format!("t{i:04}"), String::new(), 1) })
        .map(|r| FleetRow { unknown: None, ..r })
        .collect();
    rows.push(FleetRow { light: Light::Red, unknown: None, ..FleetRow::unknown("zz-red", String::new(), 1) });
    let mut far = FleetRow::unknown("acme", "shard eu-2 unreachable since 12:03:10".into(), 1);
    far.console_url = Some("https://eu-2.example.net".into());
    far.shard = Some("eu-2".into());
    rows.push(far);
    rig.console.fleet.publish(rows, super::now_ms());
    let admin = session(rig.addr, "admin").await;
    let first = request(rig.addr, "GET", "/console/", &admin, "").await;
    let red = first.body.find("zz-red").unwrap();
    let green = first.body.find("t0000").unwrap();
    assert!(red < green, "worst first");
    assert_eq!(first.body.matches("<tr>").count(), PAGE_ROWS + 1, "a header and {PAGE_ROWS} rows");
    assert!(first.body.contains("href=\"/console/?page=2\""));
    let second = request(rig.addr, "GET", "/console/?page=2", &admin, "").await;
    assert!(second.body.contains("t0119") && !second.body.contains("zz-red"));
    let manager = session(rig.addr, "manager").await;
    let theirs = request(rig.addr, "GET", "/console/", &manager, "").await;
    assert!(!theirs.body.contains("t0000") && !theirs.body.contains("zz-red"), "only their tenants, wherever they live");
    assert!(theirs.body.contains("href=\"https://eu-2.example.net/console/tenants/acme\""), "{}", theirs.body);
    assert!(
        theirs.body.contains("unknown: shard eu-2 unreachable since 12:03:10") && theirs.body.contains("light grey"),
        "{}",
        theirs.body
    );
}

/// Failed token attempts count per client address: after the limit, that address gets 429
/// (even with a good token) and the refusals are on `/metrics`; other addresses go on.
#[tokio::test]
async fn failed_token_attempts_are_throttled_per_address() {
    use super::session::MAX_FAILURES;
    let rig = Rig::new().await;
    let token = api_token(&rig, "admin");
    let guesser: std::net::IpAddr = "127.0.0.3".parse().unwrap();
    for i in 0..MAX_FAILURES {
        let r = api_from(guesser, rig.addr, "/api/v1/tenants", &format!("ampel_guess{i}")).await;
        assert_eq!(r.status, 401);
    }
    let blocked = api_from(guesser, rig.addr, "/api/v1/tenants", &token).await;
    assert_eq!(blocked.status, 429, "{}", blocked.body);
    assert!(json_of(&blocked)["error"].as_str().unwrap().contains("too many failed token attempts"));
    assert_eq!(blocked.header("retry-after"), ["900"]);
    assert_eq!(api(rig.addr, "GET", "/api/v1/tenants", &token).await.status, 200, "another address goes on");
    let metrics = request(rig.addr, "GET", "/metrics", "", "").await.body;
    assert!(metrics.contains(&format!("ampel_api_token_failures_total {MAX_FAILURES}")), "{metrics}");
    assert!(metrics.contains("ampel_api_token_throttled_total 1"), "{metrics}");
}

/// An API request from another loopback address than 127.0.0.1.
async fn api_from(src: std::net::IpAddr, addr: SocketAddr, target: &str, token: &str) -> Resp {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(src, 0)).unwrap();
    let mut s = socket.connect(addr).await.unwrap();
    let req = format!("GET {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nAuthorization: Bearer {token}\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    Resp { status: head.split_whitespace().nth(1).unwrap().parse().unwrap(), head: head.to_owned(), body: body.to_owned() }
}

#[tokio::test]
async fn the_device_page_charts_the_stored_samples_and_the_tenant_page_judges_them() {
    use ampel_protocol::{Batch, Identity, Metric, PROTOCOL_VERSION, Record};
    let rig = Rig::new().await;
    let now = super::now_ms();
    let me = Identity { tenant: "acme".parse().unwrap(), device: "fw-acme".parse().unwrap() };
    // Three hours of a sample a minute, CPU at 97 %: high all the time.
    let records: Vec<Record> = (0..180)
        .flat_map(|m| {
            let ts = now - (180 - m) * 60_000;
            ["cpu.usage_percent", "memory.used_percent"]
                .map(|name| Record::Metric(Metric { ts, name: name.into(), labels: Vec::new(), value: 97.0 }))
        })
        .collect();
    let batch = Batch { version: PROTOCOL_VERSION, seq: 1, sender: None, records };
    rig.console.store.commit(&[crate::store::PendingBatch { identity: me, batch, received_ms: now }]).unwrap();
    let manager = session(rig.addr, "manager").await;
    let device = request(rig.addr, "GET", "/console/devices/fw-acme", &manager, "").await;
    assert_eq!(device.status, 200);
    let polylines = device.body.matches("<polyline points=\"").count();
    assert_eq!(polylines, 2, "CPU and memory charts: {}", device.body);
    assert_eq!(device.body.matches("<svg class=\"chart\"").count(), 2, "{}", device.body);
    // No disk samples: said, not drawn.
    assert_eq!(device.body.matches("No samples in this period").count(), 1, "{}", device.body);
    let tenant = request(rig.addr, "GET", "/console/tenants/acme", &manager, "").await;
    let period = crate::assess::Period::range(now - 86_400_000, now + 1, "UTC").unwrap();
    let fp = crate::assess::suppress::FalsePositives::default();
    let expected = crate::assess::assess(&rig.console.store, &rig.console.cfg, "acme", &period, fp).unwrap();
    let cpu = expected.findings().into_iter().find(|f| f.rule == crate::risk::Rule::Cpu).expect("a CPU finding");
    // Up to the window, which names the minute the page was asked for.
    let evidence = crate::report::catalogue::evidence(&cpu, crate::report::Lang::En, &jiff::tz::TimeZone::UTC);
    let stable = evidence.split(" from ").next().unwrap();
    assert!(stable.contains("180 samples"), "{stable}");
    assert!(tenant.body.contains(&maud::html! { (stable) }.into_string()), "the assessment's evidence is shown: {}", tenant.body);
}

#[tokio::test]
async fn cookies_are_secure_when_the_console_is_reached_over_https() {
    let rig = Rig::with_http("public-url = \"https://ampel.example.org\"").await;
    let form = request(rig.addr, "GET", "/console/login", "", "").await;
    assert!(form.header("set-cookie").iter().all(|c| c.contains("; Secure")), "{:?}", form.header("set-cookie"));
    let r = login(rig.addr, "admin", PASSWORD).await;
    let set = r.header("set-cookie").into_iter().find(|c| c.starts_with("ampel_session=")).unwrap().to_owned();
    assert!(set.contains("HttpOnly") && set.contains("SameSite=Strict") && set.contains("; Secure"), "{set}");
}

/// A token for `user` of the rig's config, valid for a day.
fn api_token(rig: &Rig, user: &str) -> String {
    let name = super::users::UserName::parse(user).unwrap();
    let now = super::now_ms();
    rig.console.tokens.create(&name, now, now + 86_400_000).unwrap().0
}

async fn api(addr: SocketAddr, method: &str, target: &str, token: &str) -> Resp {
    request_with(addr, method, target, &format!("Authorization: Bearer {token}\r\n"), "").await
}

fn json_of(r: &Resp) -> serde_json::Value {
    serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", r.body))
}

#[tokio::test]
async fn every_api_route_for_every_role_on_own_and_foreign_tenants() {
    let rig = Rig::new().await;
    let (own, foreign) = rig.reports;
    let matrix: Vec<(String, u16, u16, u16)> = vec![
        ("/api/v1/tenants".into(), 200, 200, 200),
        ("/api/v1/tenants/acme".into(), 200, 200, 200),
        ("/api/v1/tenants/acme?period=week".into(), 200, 200, 200),
        ("/api/v1/tenants/acme?period=forever".into(), 400, 400, 400),
        ("/api/v1/tenants/globex".into(), 200, 404, 404),
        ("/api/v1/tenants/nosuch".into(), 404, 404, 404),
        ("/api/v1/devices/fw-acme".into(), 200, 200, 200),
        ("/api/v1/devices/fw-globex".into(), 200, 404, 404),
        ("/api/v1/devices/nosuch".into(), 404, 404, 404),
        ("/api/v1/reports".into(), 200, 200, 404),
        (format!("/api/v1/reports/{own}/pdf"), 200, 200, 404),
        (format!("/api/v1/reports/{foreign}/pdf"), 200, 404, 404),
        ("/api/v1/reports/999999/pdf".into(), 404, 404, 404),
        ("/api/v1/reports/x/pdf".into(), 404, 404, 404),
        ("/api/v1/recipients".into(), 200, 200, 404),
    ];
    for (i, user) in ["admin", "manager", "analyst"].into_iter().enumerate() {
        let token = api_token(&rig, user);
        for (route, a, m, n) in &matrix {
            let r = api(rig.addr, "GET", route, &token).await;
            assert_eq!(r.status, *[a, m, n][i], "{user} GET {route}: {}", r.body);
            if user != "admin" {
                assert!(!r.body.contains("globex"), "{user} GET {route} shows the foreign tenant: {}", r.body);
            }
            if r.status == 404 {
                assert_eq!(json_of(&r), serde_json::json!({ "error": "not found" }), "{user} GET {route}");
            } else if r.status != 200 {
                assert!(json_of(&r)["error"].is_string(), "{user} GET {route}");
            }
            assert!(r.header("set-cookie").is_empty(), "{user} GET {route}: a token request sets no cookie");
        }
        let tenants = json_of(&api(rig.addr, "GET", "/api/v1/tenants", &token).await);
        let names: Vec<&str> = tenants.as_array().unwrap().iter().map(|t| t["tenant"].as_str().unwrap()).collect();
        assert_eq!(names, if user == "admin" { vec!["acme", "globex"] } else { vec!["acme"] }, "{user}");
        assert_eq!(tenants[0]["devices"], 1);
    }
    let manager = api_token(&rig, "manager");
    let pdf = api(rig.addr, "GET", &format!("/api/v1/reports/{own}/pdf"), &manager).await;
    assert_eq!((pdf.header("content-type"), pdf.body.as_str()), (vec!["application/pdf"], "%PDF-1.4 test"));
    let reports = json_of(&api(rig.addr, "GET", "/api/v1/reports", &manager).await);
    assert_eq!(reports.as_array().unwrap().iter().map(|r| r["id"].as_u64().unwrap()).collect::<Vec<_>>(), [own]);
    let recipients = json_of(&api(rig.addr, "GET", "/api/v1/recipients", &manager).await);
    assert_eq!(
        recipients,
        serde_json::json!([{ "job": "weekly", "tenants": ["acme"], "recipients": [
            { "address": "it@example.org", "field": "to", "state": "confirmed", "removed_from_job": false,
              "consent": [{ "at_ms": 0, "event": "confirmed", "source": "test", "detail": "" }] }
        ] }])
    );
    assert_eq!(rig.console.sessions.len(), 0, "token requests make no session");
}

#[tokio::test]
async fn api_resend_goes_through_the_scheduler_without_csrf_and_is_audited() {
    let rig = Rig::new().await;
    let (own, foreign) = rig.reports;
    let outbox = || std::fs::read_dir(rig.dir.path().join("outbox")).unwrap().count();
    let manager = api_token(&rig, "manager");
    let analyst = api_token(&rig, "analyst");
    let resend = |token: String, id: u64| async move { api(rig.addr, "POST", &format!("/api/v1/reports/{id}/resend"), &token).await };
    assert_eq!(resend(manager.clone(), foreign).await.status, 404);
    assert_eq!(resend(analyst, own).await.status, 404);
    assert_eq!(outbox(), 0, "nothing was sent by a refused request");
    let r = resend(manager.clone(), own).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(json_of(&r)["report"], own);
    assert!(json_of(&r)["message"].as_str().unwrap().contains("resent to 1 recipient(s)"), "{}", r.body);
    assert_eq!(outbox(), 1);
    let last = rig.console.audit.tail(1).unwrap().pop().unwrap();
    assert_eq!((last.user.as_str(), last.action.as_str()), ("manager", "resend"));
    let reports = json_of(&api(rig.addr, "GET", "/api/v1/reports", &manager).await);
    assert_eq!(reports[0]["deliveries"], 2);
}

#[tokio::test]
async fn api_findings_carry_rule_facts_and_the_catalogue_texts() {
    use ampel_protocol::{Batch, Identity, Metric, PROTOCOL_VERSION, Record};
    let rig = Rig::new().await;
    let now = super::now_ms();
    let me = Identity { tenant: "acme".parse().unwrap(), device: "fw-acme".parse().unwrap() };
    let records: Vec<Record> = (0..180)
        .map(|m| Record::Metric(Metric { ts: now - (180 - m) * 60_000, name: "cpu.usage_percent".into(), labels: Vec::new(), value: 97.0 }))
        .collect();
    let batch = Batch { version: PROTOCOL_VERSION, seq: 1, sender: None, records };
    rig.console.store.commit(&[crate::store::PendingBatch { identity: me, batch, received_ms: now }]).unwrap();
    let token = api_token(&rig, "analyst");
    let cpu_rule = serde_json::to_value(crate::risk::Rule::Cpu).unwrap();
    for route in ["/api/v1/tenants/acme", "/api/v1/devices/fw-acme"] {
        let body = json_of(&api(rig.addr, "GET", route, &token).await);
        let findings = body["findings"].as_array().unwrap();
        let cpu = findings.iter().find(|f| f["rule"] == cpu_rule).unwrap_or_else(|| panic!("{route}: no CPU finding in {body}"));
        assert_eq!(cpu["device"], "fw-acme");
        assert!(cpu["facts"].is_object(), "{route}: typed facts: {cpu}");
        assert!(cpu["evidence"].as_str().unwrap().contains("180 samples"), "{route}: {cpu}");
        assert!(!cpu["recommendation"].as_str().unwrap().is_empty(), "{route}: {cpu}");
    }
    let tenant = json_of(&api(rig.addr, "GET", "/api/v1/tenants/acme", &token).await);
    assert_eq!(tenant["devices"][0]["device"], "fw-acme");
    assert!(tenant["services"].as_array().unwrap().iter().any(|s| s["light"] != "green"), "{tenant}");
}

#[tokio::test]
async fn api_tokens_stop_working_when_revoked_expired_or_their_user_is_removed() {
    let rig = Rig::new().await;
    let ok = |r: &Resp| r.status == 200;
    let refused = |r: &Resp| r.status == 401 && r.header("www-authenticate") == ["Bearer"] && json_of(r)["error"].is_string();
    // Made on the command line: printed once, audited, stored as a hash only.
    crate::console::tokens::create_command(&rig.console.cfg, "analyst", "30d".parse().unwrap()).unwrap();
    let listed = rig.console.tokens.list().unwrap();
    assert_eq!(listed.len(), 1);
    let cli_id = listed[0].id.clone();
    let token = api_token(&rig, "analyst");
    assert!(ok(&api(rig.addr, "GET", "/api/v1/tenants", &token).await));
    for wrong in [String::new(), "ampel_nosuch".into(), format!("{token}x")] {
        assert!(refused(&api(rig.addr, "GET", "/api/v1/tenants", &wrong).await), "token {wrong:?}");
    }
    let basic = request_with(rig.addr, "GET", "/api/v1/tenants", &format!("Authorization: Basic {token}\r\n"), "").await;
    assert!(refused(&basic));
    assert!(refused(&request_with(rig.addr, "GET", "/api/v1/tenants", "", "").await));
    // A session cookie is no API credential, and a token is no console session.
    let cookie = session(rig.addr, "analyst").await;
    assert!(refused(&request(rig.addr, "GET", "/api/v1/tenants", &cookie, "").await));
    let page = request_with(rig.addr, "GET", "/console/", &format!("Authorization: Bearer {token}\r\n"), "").await;
    assert_eq!(page.status, 303);
    let raw = std::fs::read_to_string(rig.console.tokens.path()).unwrap();
    let audit = std::fs::read_to_string(rig.dir.path().join("console").join(super::audit::FILE)).unwrap();
    assert!(!raw.contains(&token[6..]) && !audit.contains(&token[6..]), "a token in clear at rest");
    // Revoked.
    let id = rig.console.tokens.list().unwrap().into_iter().find(|t| t.id != cli_id).unwrap().id;
    crate::console::tokens::revoke_command(&rig.console.cfg, &id).unwrap();
    assert!(refused(&api(rig.addr, "GET", "/api/v1/tenants", &token).await), "revoked");
    let actions: Vec<String> = rig.console.audit.tail(10).unwrap().into_iter().map(|e| format!("{} {}", e.action, e.target)).collect();
    assert!(actions.contains(&format!("token-create token {cli_id} of analyst")), "{actions:?}");
    assert!(actions.contains(&format!("token-revoke token {id} of analyst")), "{actions:?}");
    // Expired.
    let name = super::users::UserName::parse("manager").unwrap();
    let (expired, _) = rig.console.tokens.create(&name, 0, super::now_ms() - 1).unwrap();
    // From another address: 127.0.0.1 has used 4 of its 5 failed attempts.
    assert!(refused(&api_from("127.0.0.2".parse().unwrap(), rig.addr, "/api/v1/tenants", &expired).await), "expired");
    // The user removed by a reload.
    let manager = api_token(&rig, "manager");
    assert!(ok(&api(rig.addr, "GET", "/api/v1/tenants", &manager).await));
    let mut users = rig.console.users().to_vec();
    users.retain(|u| u.name.as_str() != "manager");
    rig.console.set_users(users);
    assert!(refused(&api(rig.addr, "GET", "/api/v1/tenants", &manager).await), "user removed");
    // A damaged token file refuses everyone (500), it does not let anyone in.
    std::fs::write(rig.console.tokens.path(), "{").unwrap();
    assert_eq!(api(rig.addr, "GET", "/api/v1/tenants", &manager).await.status, 500);
}

#[tokio::test]
async fn the_openapi_description_matches_the_router() {
    let rig = Rig::new().await;
    let doc = super::api::openapi();
    assert_eq!(doc["openapi"], "3.1.0");
    let described: std::collections::BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, ops)| ops.as_object().unwrap().keys().map(move |m| (m.to_uppercase(), path.clone())))
        .collect();
    let routed: std::collections::BTreeSet<(String, String)> =
        super::api::endpoints().into_iter().map(|(m, p, _)| (m.to_string(), p.to_owned())).collect();
    assert_eq!(described, routed, "every route is described and every description is routed");
    // The listener answers every described operation (401 without a token, not the router's
    // 404 or 405), and serves the description itself.
    for (method, path) in &described {
        let target = path
            .replace("{tenant}", "acme")
            .replace("{device}", "fw-acme")
            .replace("{id}", "1")
            .replace("{job}", "weekly")
            .replace("{address}", "it@example.org");
        let r = request_with(rig.addr, method, &target, "", "").await;
        if path.ends_with("openapi.json") {
            assert_eq!((r.status, json_of(&r)), (200, doc.clone()));
        } else {
            assert_eq!(r.status, 401, "{method} {target}: {}", r.body);
        }
        let ops = &doc["paths"][path][method.to_lowercase()];
        assert!(ops["responses"]["200"].is_object(), "{method} {path} describes its answer");
        let params: Vec<&str> =
            ops["parameters"].as_array().into_iter().flatten().filter(|p| p["in"] == "path").map(|p| p["name"].as_str().unwrap()).collect();
        let in_path: Vec<&str> = path.split('/').filter_map(|s| s.strip_prefix('{')?.strip_suffix('}')).collect();
        assert_eq!(params, in_path, "{method} {path}: path parameters");
    }
    let undescribed = request_with(rig.addr, "DELETE", "/api/v1/tenants", "", "").await;
    assert_eq!(undescribed.status, 405);
}

/// A custom period from the form's two dates is shown with its name in the heading and the
/// dates back in the form; a reversed, half-filled or too long one is a 400 that says why, on
/// the pages and in the API.
#[tokio::test]
async fn a_custom_period_is_shown_and_a_bad_one_is_refused_with_a_reason() {
    let rig = Rig::new().await;
    let manager = session(rig.addr, "manager").await;
    let page = request(rig.addr, "GET", "/console/tenants/acme?from=2026-03-01&to=2026-03-15", &manager, "").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("<h1>Tenant acme \u{b7} 1 Mar 2026 \u{2013} 15 Mar 2026</h1>"), "{}", page.body);
    assert!(page.body.contains("name=\"from\" type=\"date\" required value=\"2026-03-01\""), "{}", page.body);
    assert!(page.body.contains("<label for=\"to\">to</label> <input id=\"to\""), "{}", page.body);
    let device = request(rig.addr, "GET", "/console/devices/fw-acme?period=2026-03-01..2026-03-15", &manager, "").await;
    assert_eq!(device.status, 200, "{}", device.body);
    assert!(device.body.contains("<h1>Device fw-acme \u{b7} 1 Mar 2026 \u{2013} 15 Mar 2026</h1>"), "{}", device.body);
    for (query, reason) in [
        ("from=2026-03-15&to=2026-03-01", "The period ends on 2026-03-01, before it starts on 2026-03-15"),
        ("from=2026-03-15&to=", "needs both a first and a last day"),
        ("from=2026-13-01&to=2026-03-01", "is not a date"),
        ("from=2020-01-01&to=2026-01-01", "a page covers at most 400 days"),
        ("period=forever", "There is no period"),
    ] {
        let r = request(rig.addr, "GET", &format!("/console/tenants/acme?{query}"), &manager, "").await;
        assert_eq!(r.status, 400, "{query}: {}", r.body);
        assert!(r.body.contains(&maud::html! { (reason) }.into_string()), "{query}: {}", r.body);
    }
    let token = api_token(&rig, "manager");
    let ok = json_of(&api(rig.addr, "GET", "/api/v1/tenants/acme?period=2026-03-01..2026-03-15", &token).await);
    assert_eq!(ok["period"]["label"], "20260301T0000-20260316T0000", "{ok}");
    let reversed = api(rig.addr, "GET", "/api/v1/devices/fw-acme?period=2026-03-15..2026-03-01", &token).await;
    assert_eq!(reversed.status, 400);
    assert!(json_of(&reversed)["error"].as_str().unwrap().contains("before it starts"), "{}", reversed.body);
}

/// The device page draws disks and per-interface traffic from the stored figures — the
/// traffic as a rate, broken where the device was silent — and lists the licence's change at
/// the local time it was read.
#[tokio::test]
async fn the_device_page_charts_disks_and_traffic_and_lists_licence_changes_in_local_time() {
    use ampel_protocol::{Batch, Identity, License, Metric, PROTOCOL_VERSION, Record, Traffic};
    let rig = Rig::with_http("[report]\ntime-zone = \"Europe/Berlin\"").await;
    const MIN: i64 = 60_000;
    // Three hours of minutes ending at a five-minute edge, with the 30 minutes in the middle
    // silent: 60 kB a minute received, 6 kB sent.
    let end = super::now_ms() / (5 * MIN) * (5 * MIN);
    let minutes: Vec<i64> = (1..=180).rev().map(|k| end - k * MIN).filter(|t| !(end - 120 * MIN..end - 90 * MIN).contains(t)).collect();
    let mut records = Vec::new();
    for &ts in &minutes {
        let disk = |mount: &str, value: f64| {
            Record::Metric(Metric { ts, name: "disk.used_percent".into(), labels: vec![("mount".into(), mount.into())], value })
        };
        records.push(disk("/", 40.0));
        records.push(disk("/var", 70.0));
        records.push(Record::Traffic(Traffic {
            ts,
            interval_ms: 60_000,
            interface: "eth0".into(),
            category: None,
            rx_bytes: 60_000,
            tx_bytes: 6_000,
            rx_packets: 40,
            tx_packets: 4,
            rx_errors: 0,
            tx_errors: 0,
        }));
    }
    let license = |ts: i64, licensed: bool| {
        Record::License(License {
            ts,
            product: "UTM".into(),
            model: "RC100".into(),
            serial: "S1".into(),
            licensed,
            expires: None,
            features: Vec::new(),
            unknown_reason: None,
        })
    };
    let lapsed_at = end - 47 * MIN;
    records.extend([license(end - 170 * MIN, true), license(end - 100 * MIN, true), license(lapsed_at, false)]);
    let me = Identity { tenant: "acme".parse().unwrap(), device: "fw-acme".parse().unwrap() };
    let batch = Batch { version: PROTOCOL_VERSION, seq: 1, sender: None, records };
    rig.console.store.commit(&[crate::store::PendingBatch { identity: me, batch, received_ms: end }]).unwrap();
    let manager = session(rig.addr, "manager").await;
    let page = request(rig.addr, "GET", "/console/devices/fw-acme", &manager, "").await;
    assert_eq!(page.status, 200, "{}", page.body);
    let body = &page.body;
    std::fs::write(rig.dir.path().join("device.html"), body).unwrap();
    if let Ok(to) = std::env::var("AMPEL_SAVE_DEVICE_PAGE") {
        std::fs::write(to, body).unwrap();
    }
    assert!(body.contains("<figcaption>Disk usage per mount (percent)</figcaption>"), "{body}");
    assert!(body.contains("<figcaption>Traffic on eth0 (bits per second)</figcaption>"), "{body}");
    // 60 kB a minute is 8 kbit/s in every five-minute bucket; 6 kB is 800 bit/s.
    let row = |name: &str, v: &str| format!("{name}</th><td class=\"num\">{v}</td><td class=\"num\">{v}</td><td class=\"num\">{v}</td>");
    assert!(body.contains(&row("received", "8.0 kbit/s")), "{body}");
    assert!(body.contains(&row("sent", "800 bit/s")), "{body}");
    assert!(body.contains(&row("/var", "70.0 %")), "{body}");
    // The silence is a gap in both traffic lines and both disk lines: two runs each.
    assert!(body.contains("aria-label=\"Traffic on eth0 in bits per second (received, sent) from"), "{body}");
    assert_eq!(body.matches("with 2 gaps in the data; ").count(), 4, "disks and traffic, in label and title: {body}");
    let local = jiff::Timestamp::from_millisecond(lapsed_at).unwrap().to_zoned(jiff::tz::TimeZone::get("Europe/Berlin").unwrap());
    let change = format!("<li><time>{}</time>: Licensed yes \u{2192} no</li>", local.strftime("%Y-%m-%d %H:%M"));
    assert!(body.contains(&change), "{change} in {body}");
    // The report two hours before lapsing changed nothing and is not listed.
    assert_eq!(body.matches("<li><time>").count(), 2, "the first report and the lapse: {body}");
    assert!(body.contains(": first report: Licensed yes; Licence expiry none; Product UTM;"), "{body}");
}

/// After a rotation the audit page still shows the events of the rotated file, newest first,
/// below those of the new live file.
#[tokio::test]
async fn the_audit_page_reads_across_the_rotation_boundary() {
    let rig = Rig::new().await;
    let dir = rig.dir.path().join("console");
    std::fs::create_dir_all(&dir).unwrap();
    let rotated = super::audit::AuditEvent {
        at_ms: 1_000,
        user: "admin".into(),
        action: "token-create".into(),
        target: "before the rotation".into(),
        client: "127.0.0.1".into(),
    };
    std::fs::write(dir.join(format!("{}.1", super::audit::FILE)), format!("{}\n", serde_json::to_string(&rotated).unwrap())).unwrap();
    let admin = session(rig.addr, "admin").await;
    let page = request(rig.addr, "GET", "/console/audit", &admin, "").await;
    assert_eq!(page.status, 200, "{}", page.body);
    let (login, old) = (page.body.find("<td>login</td>"), page.body.find("<td>before the rotation</td>"));
    assert!(login.is_some() && old.is_some() && login < old, "the new live file's login first, then the rotated event: {}", page.body);
}
