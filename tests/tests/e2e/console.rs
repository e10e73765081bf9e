//! The web console in a real browser: headless Chromium driven over WebDriver (chromedriver),
//! against `ampel-collector serve`. Fails with a clear message when Chromium is missing.
//!
//! Also `user passwd` as an operator runs it, with the password on stdin.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use ampel_tests::{Deployment, Proc, bin, free_tcp_port, require, wait_until};
use serde_json::{Value, json};

const PASSWORD: &str = "correct horse battery staple";

/// `user passwd NAME` with the password on stdin prints a `[[users]]` entry with an argon2id
/// hash of it, and never the password.
#[test]
fn user_passwd_prints_an_entry_with_the_hash_and_never_the_password() {
    let d = Deployment::new("");
    let mut child = Command::new(bin("ampel-collector"))
        .args(["--config", d.config.to_str().unwrap(), "user", "passwd", "ann"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(format!("{PASSWORD}\n").as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.starts_with("[[users]]\nname = \"ann\"\nrole = \"analyst\""), "{stdout}");
    assert!(!stdout.contains("horse") && !stderr.contains("horse"));
    // The entry goes into the config as printed and the collector accepts it.
    let mut cfg = std::fs::read_to_string(&d.config).unwrap();
    cfg.push_str(&format!("[http]\nlisten = \"127.0.0.1:{}\"\n{stdout}", free_tcp_port()));
    std::fs::write(&d.config, cfg).unwrap();
    d.collector(&["check-config"]).ok();
}

/// One request to chromedriver; returns the `value` of the answer.
fn wd(port: u16, method: &str, path: &str, body: Option<Value>) -> Value {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    // chromedriver keeps the connection open: read the headers, then Content-Length bytes.
    let mut raw = Vec::new();
    let mut buf = [0u8; 65536];
    let (split, len) = loop {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "chromedriver closed the connection on {method} {path}");
        raw.extend_from_slice(&buf[..n]);
        if let Some(at) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&raw[..at]).to_ascii_lowercase();
            let len = head.lines().find_map(|l| l.strip_prefix("content-length:")).and_then(|v| v.trim().parse::<usize>().ok());
            break (at + 4, len.expect("chromedriver answers with a Content-Length"));
        }
    };
    while raw.len() < split + len {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "chromedriver closed the connection early on {method} {path}");
        raw.extend_from_slice(&buf[..n]);
    }
    let v: Value = serde_json::from_slice(&raw[split..split + len]).unwrap_or_else(|e| panic!("chromedriver {method} {path}: {e}"));
    assert!(v["value"].get("error").is_none(), "chromedriver {method} {path}: {v}");
    v["value"].clone()
}

/// A browser session, closed on drop.
struct Browser {
    port: u16,
    id: String,
    _driver: Proc,
}

impl Browser {
    /// A browser whose language (UI and `Accept-Language`) is `lang`, e.g. `en-US`.
    fn start(lang: &str) -> Browser {
        let chromium = require("chromium", "chromium");
        let driver = require("chromedriver", "chromium-driver");
        let port = free_tcp_port();
        let child = Command::new(driver).arg(format!("--port={port}")).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        let proc = Proc::adopt("chromedriver", child);
        wait_until(Duration::from_secs(20), || std::net::TcpStream::connect(("127.0.0.1", port)).ok()).expect("chromedriver listens");
        let lang_arg = format!("--lang={lang}");
        let args = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,900", &lang_arg];
        let prefs = json!({ "intl.accept_languages": lang });
        let caps = json!({"capabilities": {"alwaysMatch": {"goog:chromeOptions": {"binary": chromium, "args": args, "prefs": prefs}}}});
        let id = wd(port, "POST", "/session", Some(caps))["sessionId"].as_str().unwrap().to_owned();
        Browser { port, id, _driver: proc }
    }

    fn go(&self, url: &str) {
        wd(self.port, "POST", &format!("/session/{}/url", self.id), Some(json!({ "url": url })));
    }

    fn source(&self) -> String {
        wd(self.port, "GET", &format!("/session/{}/source", self.id), None).as_str().unwrap().to_owned()
    }

    fn element(&self, css: &str) -> String {
        let v = wd(self.port, "POST", &format!("/session/{}/element", self.id), Some(json!({"using": "css selector", "value": css})));
        v.as_object().and_then(|o| o.values().next()).and_then(Value::as_str).unwrap().to_owned()
    }

    /// Logs in as `user` and waits for the fleet page, whose heading is `fleet`.
    fn login(&self, base: &str, user: &str, fleet: &str) {
        self.go(&format!("{base}/console/login"));
        for (css, text) in [("#user", user), ("#password", PASSWORD)] {
            let el = self.element(css);
            wd(self.port, "POST", &format!("/session/{}/element/{el}/value", self.id), Some(json!({ "text": text })));
        }
        let button = self.element("form.login button");
        wd(self.port, "POST", &format!("/session/{}/element/{button}/click", self.id), Some(json!({})));
        let heading = format!("<h1>{fleet}</h1>");
        wait_until(Duration::from_secs(10), || self.source().contains(&heading).then_some(()))
            .unwrap_or_else(|| panic!("{user} did not reach the fleet page: {}", self.source()));
    }

    fn logout(&self) {
        let button = self.element("header form button");
        wd(self.port, "POST", &format!("/session/{}/element/{button}/click", self.id), Some(json!({})));
    }

    fn screenshot(&self) -> Vec<u8> {
        let b64 = wd(self.port, "GET", &format!("/session/{}/screenshot", self.id), None);
        base64_decode(b64.as_str().unwrap())
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = std::panic::catch_unwind(|| wd(self.port, "DELETE", &format!("/session/{}", self.id), None));
    }
}

fn base64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        _ => 63,
    };
    let clean: Vec<u8> = s.bytes().filter(|c| !b"=\r\n".contains(c)).collect();
    let mut out = Vec::with_capacity(clean.len() * 3 / 4);
    for chunk in clean.chunks(4) {
        let n = chunk.iter().enumerate().fold(0u32, |acc, (i, c)| acc | (u32::from(val(*c)) << (18 - 6 * i)));
        out.extend_from_slice(&n.to_be_bytes()[1..chunk.len()]);
    }
    out
}

/// Distinct byte values in the inflated image data of a PNG: a blank page has a handful,
/// a page with text (anti-aliased) and coloured lights hundreds.
fn png_variety(png: &[u8]) -> usize {
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    let mut idat = Vec::new();
    let mut at = 8;
    while at + 8 <= png.len() {
        let len = u32::from_be_bytes(png[at..at + 4].try_into().unwrap()) as usize;
        if &png[at + 4..at + 8] == b"IDAT" {
            idat.extend_from_slice(&png[at + 8..at + 8 + len]);
        }
        at += 12 + len;
    }
    let mut raw = Vec::new();
    flate2::read::ZlibDecoder::new(&idat[..]).read_to_end(&mut raw).unwrap();
    let mut seen = [false; 256];
    raw.iter().for_each(|b| seen[usize::from(*b)] = true);
    seen.iter().filter(|s| **s).count()
}

/// A collector with the console on a free HTTP port and `users` (`[[users]]` tables whose
/// `password-hash` is written `HASH`, all with [`PASSWORD`]) and devices of `tenants`, serving
/// once its first fleet summary is ready.
fn console_with(users: &str, tenants: &[&str]) -> (u16, Deployment, Proc) {
    let http = free_tcp_port();
    let hash = ampel_collector::console::users::hash_password(PASSWORD).unwrap();
    let d = Deployment::new(&format!("[http]\nlisten = \"127.0.0.1:{http}\"\n{}", users.replace("HASH", hash.as_str())));
    for t in tenants {
        d.issue(t, &format!("fw-{t}"));
    }
    let mut collector = d.serve();
    collector.wait_for_log("fleet summary ready", Duration::from_secs(20));
    (http, d, collector)
}

#[test]
fn each_role_sees_exactly_its_tenants_in_chromium() {
    let (http, d, _collector) = console_with(
        "[[users]]\nname = \"admin\"\nrole = \"administrator\"\ntenants = \"*\"\npassword-hash = \"HASH\"\n\
         [[users]]\nname = \"manager\"\nrole = \"tenant-manager\"\ntenants = [\"acme\"]\npassword-hash = \"HASH\"\n\
         [[users]]\nname = \"analyst\"\nrole = \"analyst\"\ntenants = [\"acme\"]\npassword-hash = \"HASH\"\n",
        &["acme", "globex"],
    );
    let base = format!("http://127.0.0.1:{http}");
    let browser = Browser::start("en-US");
    for (user, globex, reports) in [("admin", true, true), ("manager", false, true), ("analyst", false, false)] {
        browser.login(&base, user, "Fleet");
        let fleet = browser.source();
        assert!(fleet.contains("/console/tenants/acme"), "{user}: {fleet}");
        assert_eq!(fleet.contains("globex"), globex, "{user} and the foreign tenant: {fleet}");
        assert_eq!(fleet.contains("/console/reports\""), reports, "{user}'s Reports link");
        if user == "manager" {
            let png = browser.screenshot();
            std::fs::write(d.dir.path().join("fleet.png"), &png).unwrap();
            let variety = png_variety(&png);
            assert!(variety > 50, "the fleet page screenshot looks blank ({variety} distinct values)");
        }
        browser.go(&format!("{base}/console/devices/fw-acme"));
        assert!(browser.source().contains("CPU usage"), "{user} opens a device");
        browser.go(&format!("{base}/console/devices/fw-globex"));
        assert_eq!(browser.source().contains("<h1>Not found</h1>"), !globex, "{user} opens the foreign device");
        browser.go(&format!("{base}/console/reports"));
        assert_eq!(browser.source().contains("<h1>Reports</h1>"), reports, "{user} opens the reports");
        browser.go(&format!("{base}/console/"));
        browser.logout();
        wait_until(Duration::from_secs(10), || browser.source().contains("<h1>Log in</h1>").then_some(())).expect("logged out");
    }
}

/// A German browser gets the console in German without a user setting; a user's `language`
/// beats the browser; a refused period is a page with the way back. Screenshots of the German
/// fleet and tenant pages are kept beside the deployment and are not blank.
#[test]
fn a_german_browser_gets_german_pages_in_chromium() {
    let (http, d, _collector) = console_with(
        "[[users]]\nname = \"admin\"\nrole = \"administrator\"\ntenants = \"*\"\npassword-hash = \"HASH\"\n\
         [[users]]\nname = \"ann\"\nrole = \"analyst\"\ntenants = [\"acme\"]\npassword-hash = \"HASH\"\nlanguage = \"en\"\n",
        &["acme"],
    );
    let base = format!("http://127.0.0.1:{http}");
    let browser = Browser::start("de-DE");
    browser.go(&format!("{base}/console/login"));
    assert!(browser.source().contains("<h1>Anmelden</h1>"), "{}", browser.source());
    browser.login(&base, "admin", "Übersicht");
    let fleet = browser.source();
    assert!(fleet.contains("<html lang=\"de\">") && fleet.contains(">Abmelden</button>") && !fleet.contains(">Log out<"), "{fleet}");
    for (page, path, words) in [
        ("fleet", "/console/", ["Offene Befunde", "Jetzt stumm"]),
        ("tenant", "/console/tenants/acme", ["<h2>Geräte</h2>", "Zuletzt gesehen"]),
    ] {
        browser.go(&format!("{base}{path}"));
        let source = browser.source();
        assert!(words.iter().all(|w| source.contains(w)), "the German {page} page: {source}");
        let png = browser.screenshot();
        std::fs::write(d.dir.path().join(format!("{page}-de.png")), &png).unwrap();
        let variety = png_variety(&png);
        assert!(variety > 50, "the German {page} page screenshot looks blank ({variety} distinct values)");
    }
    browser.go(&format!("{base}/console/tenants/acme?from=2026-03-15&to=2026-03-01"));
    let refused = browser.source();
    assert!(refused.contains("Der Zeitraum endet am 01.03.2026") && refused.contains(">Zur Übersicht</a>"), "{refused}");
    browser.logout();
    wait_until(Duration::from_secs(10), || browser.source().contains("<h1>Anmelden</h1>").then_some(())).expect("logged out");
    // `language = "en"` beats the German browser.
    browser.login(&base, "ann", "Fleet");
}

/// A GET with `Authorization: Bearer <token>`; returns status and body.
fn api_get(port: u16, target: &str, token: &str) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let req = format!("GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nAuthorization: Bearer {token}\r\n\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out.split_whitespace().nth(1).unwrap().parse().unwrap();
    let body = out.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body)
}

/// `user token` as an operator runs it beside `serve`: the printed token works on `/api/v1` at
/// once with its user's tenants, `user tokens` lists it without the token, `user revoke-token`
/// ends it at the next request, and the token is neither in the collector's log nor at rest.
#[test]
fn api_tokens_from_the_command_line_work_against_serve_until_revoked() {
    let (http, d, collector) = console_with(
        "[[users]]\nname = \"manager\"\nrole = \"tenant-manager\"\ntenants = [\"acme\"]\npassword-hash = \"HASH\"\n",
        &["acme", "globex"],
    );
    let token = d.collector(&["user", "token", "manager", "--ttl", "1d"]).ok().trim().to_owned();
    assert!(token.starts_with("ampel_") && !token.contains('\n'), "{token}");
    let (status, body) = api_get(http, "/api/v1/tenants", &token);
    assert_eq!(status, 200, "{body}");
    let tenants: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(tenants.as_array().unwrap().iter().map(|t| t["tenant"].clone()).collect::<Vec<_>>(), [json!("acme")]);
    assert_eq!(api_get(http, "/api/v1/devices/fw-globex", &token).0, 404);
    let listed = d.collector(&["user", "tokens"]).ok();
    assert!(listed.contains("manager") && !listed.contains(&token[6..]), "{listed}");
    let id = listed.lines().nth(1).and_then(|l| l.split_whitespace().next()).unwrap().to_owned();
    d.collector(&["user", "revoke-token", &id]).ok();
    assert_eq!(api_get(http, "/api/v1/tenants", &token).0, 401, "revoked");
    let console = d.dir.path().join("data/console");
    for file in ["tokens.json", "audit.jsonl"] {
        let raw = std::fs::read_to_string(console.join(file)).unwrap();
        assert!(!raw.contains(&token[6..]), "{file} holds the token");
    }
    assert!(std::fs::read_to_string(console.join("audit.jsonl")).unwrap().contains("token-revoke"));
    assert!(!collector.log().contains(&token[6..]), "the collector logged the token");
}
