//! Scheduled delivery through the real binary: `serve` starts the HTTP listener and the
//! scheduler, new recipients are invited, confirming over HTTP shows in `recipients`, and a
//! job with a bad address or without a listener is refused at load with exit code 78.

use std::io::{Read, Write};
use std::time::Duration;

use ampel_tests::{Cmd, Deployment, free_tcp_port, wait_until};

fn request(port: u16, method: &str, target: &str, body: &str) -> Option<(u16, String)> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    let req = format!(
        "{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let status = out.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, out))
}

fn job(port: u16, to: &str) -> String {
    format!(
        "[mail]\noutbox = \"outbox\"\n\n[http]\nlisten = \"127.0.0.1:{port}\"\n\n[[jobs]]\nname = \"weekly\"\ntenants = [\"acme\"]\n\
         period = \"week\"\nsend = [\"mon 08:00\"]\ntime-zone = \"Europe/Berlin\"\nto = \"{to}\"\n"
    )
}

#[test]
fn serve_invites_recipients_and_confirming_over_http_shows_in_recipients() {
    let port = free_tcp_port();
    let d = Deployment::new(&job(port, "Ops <ops@example.org>"));
    let mut c = d.serve();
    let (status, body) = wait_until(Duration::from_secs(20), || request(port, "GET", "/healthz", "")).expect("no HTTP listener");
    assert_eq!(status, 200, "{body}");
    let outbox = d.dir.path().join("outbox");
    let eml = wait_until(Duration::from_secs(20), || {
        let entry = std::fs::read_dir(&outbox).ok()?.flatten().find(|e| e.path().extension().is_some_and(|x| x == "eml"))?;
        std::fs::read_to_string(entry.path()).ok()
    })
    .expect("no invitation in the outbox");
    assert!(eml.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"), "{eml}");
    // The confirm link in the (quoted-printable or plain) text body.
    let unfolded = eml.replace("=\r\n", "").replace("=\n", "").replace("=3D", "=");
    let at = unfolded.find("/confirm?t=").expect("no confirm link");
    let token: String = unfolded[at + "/confirm?t=".len()..].chars().take_while(|c| c.is_ascii_hexdigit() || *c == '.').collect();
    assert!(d.collector(&["recipients"]).ok().contains("invited"));
    let (status, page) = request(port, "POST", "/confirm", &format!("t={token}")).unwrap();
    assert_eq!(status, 200, "{page}");
    let (_, metrics) = request(port, "GET", "/metrics", "").unwrap();
    assert!(metrics.contains("ampel_invitations_sent_total 1") && metrics.contains("ampel_ingest_points_total"), "{metrics}");
    c.stop();
    let list = d.collector(&["recipients"]).ok();
    assert!(list.contains("ops@example.org") && list.contains("confirmed"), "{list}");
    let log = d.collector(&["recipients", "--log"]).ok();
    assert!(log.contains("confirmed") && log.contains("127.0.0.1"), "{log}");
    assert!(d.collector(&["report", "list"]).ok().contains("no reports"));
}

#[test]
fn a_job_with_an_injected_header_or_without_a_listener_exits_78() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("collector.toml");
    std::fs::write(&cfg, job(8080, "ops@example.org\\r\\nBcc: evil@example.org")).unwrap();
    let out = Cmd::new("ampel-collector").args(["--config", cfg.to_str().unwrap(), "check-config"]).output();
    assert_eq!(out.status.code(), Some(78));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("jobs.to") && err.contains("control character"), "{err}");
    std::fs::write(&cfg, job(8080, "ops@example.org").replace("[http]\nlisten = \"127.0.0.1:8080\"\n", "")).unwrap();
    let out = Cmd::new("ampel-collector").args(["--config", cfg.to_str().unwrap(), "check-config"]).output();
    assert_eq!(out.status.code(), Some(78));
    assert!(String::from_utf8_lossy(&out.stderr).contains("[http] listen"));
}
