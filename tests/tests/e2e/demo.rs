//! The embedded default: `ampel-collector demo` runs end to end from nothing.

use ampel_tests::{Cmd, require};

#[test]
fn demo_completes_and_leaves_pdfs_and_mails() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("demo");
    let stdout = Cmd::new("ampel-collector").args(["demo", "--seconds", "4", "--out", out_dir.to_str().unwrap()]).ok();
    assert!(stdout.contains("demo: done"), "{stdout}");
    for tenant in ["acme", "globex"] {
        let pdf = out_dir.join(format!("ampel-{tenant}-demo.pdf"));
        assert!(pdf.exists(), "{} missing; stdout:\n{stdout}", pdf.display());
        let text = std::process::Command::new(require("pdftotext", "poppler-utils")).arg(&pdf).arg("-").output().unwrap();
        let text = String::from_utf8_lossy(&text.stdout).split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(text.contains(tenant));
        // The demo's devices enrolled seconds ago: full coverage of seconds is not full
        // coverage of the period, and the report says the devices are new (issue 19).
        assert!(text.contains("% (new since "), "no device marked new in {tenant}'s report:\n{text}");
    }
    let emls: Vec<_> = std::fs::read_dir(out_dir.join("outbox"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
        .collect();
    assert_eq!(emls.len(), 2, "one mail per tenant");
    let eml = std::fs::read_to_string(emls[0].path()).unwrap();
    assert!(eml.contains("security report for") && eml.contains("application/pdf"), "{eml}");
    // Three real agents reported; the offline device is shown as such.
    assert!(stdout.contains("fw-lyon") && stdout.contains("left offline"), "{stdout}");
}

/// One HTTP/1.1 request with a `Cookie` header; the whole response (head and body).
fn request(port: u16, method: &str, target: &str, cookie: &str, body: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let req = format!(
        "{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nCookie: {cookie}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// The value of cookie `name` set by `response`.
fn set_cookie(response: &str, name: &str) -> String {
    let prefix = format!("set-cookie: {name}=");
    let line =
        response.lines().find(|l| l.to_ascii_lowercase().starts_with(&prefix)).unwrap_or_else(|| panic!("no {name} cookie in\n{response}"));
    line[prefix.len()..].split(';').next().unwrap().to_owned()
}

/// `demo --keep-running` prints the console's address and a login that works, shows both
/// tenants to that administrator, and stops collector and agents on Ctrl-C.
#[test]
fn demo_keeps_running_with_a_console_login_until_ctrl_c() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("demo");
    let mut child = std::process::Command::new(ampel_tests::bin("ampel-collector"))
        .args(["demo", "--seconds", "3", "--keep-running", "--out", out_dir.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in stdout.lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut seen = String::new();
    let console = loop {
        let line = rx.recv_timeout(std::time::Duration::from_secs(120)).unwrap_or_else(|_| panic!("no console line; stdout:\n{seen}"));
        seen.push_str(&line);
        seen.push('\n');
        if line.contains("web console on") {
            break line;
        }
    };
    // "demo: web console on http://127.0.0.1:PORT/console/ — log in as admin with password HEX"
    let port: u16 = console.split("127.0.0.1:").nth(1).and_then(|r| r.split('/').next()).and_then(|p| p.parse().ok()).expect("a port");
    let password = console.rsplit(' ').next().unwrap();
    assert!(seen.contains("-> ") && seen.contains("ampel-acme-demo.pdf"), "the reports come first:\n{seen}");

    let form = request(port, "GET", "/console/login", "", "");
    let csrf = set_cookie(&form, "ampel_login");
    let login =
        request(port, "POST", "/console/login", &format!("ampel_login={csrf}"), &format!("user=admin&password={password}&csrf={csrf}"));
    assert!(login.starts_with("HTTP/1.1 303"), "the printed login does not work:\n{login}");
    let session = set_cookie(&login, "ampel_session");
    let fleet = request(port, "GET", "/console/", &format!("ampel_session={session}"), "");
    assert!(fleet.contains("acme") && fleet.contains("globex"), "{fleet}");

    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGINT).unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "the demo did not end cleanly on Ctrl-C: {status}");
    let gone = std::net::TcpStream::connect(("127.0.0.1", port));
    assert!(gone.is_err(), "the console still answers after Ctrl-C");
}
