//! Hostile peers against the real collector: forged log lines, floods of refusals.

use std::time::Duration;

use ampel_tests::{Deployment, free_tcp_port, http_request};

/// A counter's value in `/metrics` text.
pub fn metric(text: &str, name: &str) -> Option<u64> {
    text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

#[test]
fn a_forged_newline_in_an_enrollment_field_appears_escaped_in_the_log() {
    use ampel_protocol::enroll::{self, ALPN_ENROLL, EnrollRequest};
    let d = Deployment::new("");
    let mut collector = d.serve();
    let addr = format!("127.0.0.1:{}", d.port).parse().unwrap();
    let forged = "2026-01-01T00:00:00.000000Z ERROR ampel_collector: forged entry";
    let request = EnrollRequest::Enroll {
        id: "0123456789abcdef".into(),
        secret: "0".repeat(64),
        tenant: format!("acme\n{forged}"),
        device: "fw\x1b[2J\x07\r-1".into(),
        csr: vec![1, 2, 3],
    };
    let bytes = ampel_protocol::frame::encode_frame(&enroll::encode(&request).unwrap(), &enroll::ENROLL_LIMITS).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let answer = rt.block_on(ampel_tests::anonymous(addr, &d.pki_dir().join("ca.pem"), ALPN_ENROLL, bytes));
    assert!(answer.is_ok(), "the collector answers the refusal: {answer:?}");
    collector.wait_for_log("enrollment refused", Duration::from_secs(10));
    let log = collector.log();
    assert!(log.contains(&format!("acme\\n{forged}")), "the newline is written as \\n:\n{log}");
    assert!(!log.lines().any(|l| l.starts_with(forged)), "no forged entry of its own:\n{log}");
    assert!(log.contains("fw\\u{1b}[2J\\u{7}\\r-1"), "ESC, BEL and CR escaped:\n{log}");
    assert!(!log.contains(['\x1b', '\x07', '\r']), "no raw control characters:\n{log:?}");
    collector.stop();
}

#[test]
fn rejected_batches_are_logged_at_a_bounded_rate_per_device_and_all_counted() {
    let http = free_tcp_port();
    let d = Deployment::new(&format!("[http]\nlisten = \"127.0.0.1:{http}\"\n"));
    let dev = d.issue("acme", "fw-1");
    let mut collector = d.serve();
    let addr = format!("127.0.0.1:{}", d.port).parse().unwrap();
    // Frames of a valid length whose payload is not a batch: each is refused, the stream goes on.
    let garbage: Vec<Vec<u8>> = (0..40).map(|i| ampel_protocol::frame::encode_frame(&[0xff, i], &Default::default()).unwrap()).collect();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (acks, _) = rt.block_on(ampel_tests::send_frames_on_one_stream(addr, &dev, "fw-1", &garbage)).unwrap();
    assert_eq!(acks.len(), 40);
    collector.wait_for_log("batch rejected", Duration::from_secs(5));
    let logged = collector.log().matches("batch rejected").count();
    assert_eq!(logged, ampel_collector::logthrottle::PER_WINDOW as usize, "{}", collector.log());
    let (status, body) = http_request(http, "GET", "/metrics", "").unwrap();
    assert_eq!(status, 200);
    assert_eq!(metric(&body, "ampel_ingest_batches_rejected_total"), Some(40), "{body}");
    assert_eq!(metric(&body, "ampel_log_lines_suppressed_total"), Some(35), "{body}");
    collector.stop();
}

/// How long until the collector closes `s` (reads until EOF or an error); `None` if it is still
/// open after `limit`.
fn closed_after(s: &mut std::net::TcpStream, limit: Duration) -> Option<Duration> {
    use std::io::Read;
    let start = std::time::Instant::now();
    s.set_read_timeout(Some(limit)).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return Some(start.elapsed()),
            Ok(_) => {}
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => return None,
            Err(_) => return Some(start.elapsed()),
        }
    }
}

#[test]
fn idle_and_partial_http_connections_are_closed_within_the_timeout_and_counted() {
    use std::io::Write;
    use std::net::TcpStream;
    let http = free_tcp_port();
    let d = Deployment::new(&format!(
        "[http]\nlisten = \"127.0.0.1:{http}\"\nheader-timeout = \"1s\"\nidle-timeout = \"2s\"\nmax-connections-per-address = 4\n"
    ));
    let mut collector = d.serve();
    let connect = || TcpStream::connect(("127.0.0.1", http)).unwrap();
    let within = |what: &str, s: &mut TcpStream, timeout: Duration| {
        let took = closed_after(s, timeout + Duration::from_secs(3));
        let took = took.unwrap_or_else(|| panic!("{what}: still open {:?} after its timeout", Duration::from_secs(3)));
        assert!(took >= timeout - Duration::from_millis(200), "{what}: closed too early ({took:?})");
    };

    // Sends nothing: closed by the header timeout.
    let mut silent = connect();
    within("a silent connection", &mut silent, Duration::from_secs(1));
    // Half a request: the same.
    let mut partial = connect();
    partial.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n").unwrap();
    within("a partial request", &mut partial, Duration::from_secs(1));
    // Headers complete, the body stalls: closed when nothing moved for idle-timeout.
    let mut stalled = connect();
    stalled.write_all(b"POST /confirm HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\nt=01").unwrap();
    within("a stalled body", &mut stalled, Duration::from_secs(2));

    // Four idle connections from this address: a fifth is closed at once.
    let mut held: Vec<TcpStream> = (0..4).map(|_| connect()).collect();
    std::thread::sleep(Duration::from_millis(200));
    let mut fifth = connect();
    let took = closed_after(&mut fifth, Duration::from_millis(500));
    assert!(took.is_some(), "a fifth connection from one address is refused at once");
    // Once the header timeout has closed them, the address is served again.
    for s in &mut held {
        assert!(closed_after(s, Duration::from_secs(4)).is_some());
    }
    let (status, body) = http_request(http, "GET", "/metrics", "").unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(metric(&body, "ampel_http_header_timeouts_total").is_some_and(|n| n >= 6), "{body}");
    assert!(metric(&body, "ampel_http_idle_timeouts_total").is_some_and(|n| n >= 1), "{body}");
    assert!(body.contains("ampel_http_connections_refused_total{reason=\"max-connections-per-address\"} 1"), "{body}");
    let (status, _) = http_request(http, "GET", "/healthz", "").unwrap();
    assert_eq!(status, 200);
    collector.stop();
}

fn points(d: &Deployment, device: &str) -> u64 {
    d.device(device).and_then(|v| v["points"].as_u64()).unwrap_or(0)
}

/// The lowest descriptor number `pid` does not use: with the soft limit there, every `open`
/// fails with EMFILE while what is open keeps working.
fn lowest_free_fd(pid: u32) -> u64 {
    let used: std::collections::HashSet<u64> =
        std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap().filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect();
    (0..).find(|n| !used.contains(n)).unwrap()
}

fn soft_nofile(pid: u32) -> String {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits.lines().find(|l| l.starts_with("Max open files")).unwrap();
    line.split_whitespace().nth(3).unwrap().to_owned()
}

#[test]
fn a_revocation_during_descriptor_exhaustion_takes_effect_once_descriptors_are_free() {
    let prlimit = ampel_tests::require("prlimit", "util-linux");
    let http = free_tcp_port();
    let d = Deployment::new(&format!("[http]\nlisten = \"127.0.0.1:{http}\"\n"));
    let (dev1, dev2) = (d.issue("acme", "fw-1"), d.issue("acme", "fw-2"));
    let mut collector = d.serve();
    let (mut a1, mut a2) = (d.agent(&dev1, "fw-1", "250ms"), d.agent(&dev2, "fw-2", "250ms"));
    let both = ampel_tests::wait_until(Duration::from_secs(30), || (points(&d, "fw-1") > 0 && points(&d, "fw-2") > 0).then_some(()));
    assert!(both.is_some(), "agents did not start streaming\n{}\n{}", a1.log(), a2.log());

    // Out of descriptors: nothing can be opened, what is open keeps working.
    let pid = collector.pid().to_string();
    let soft = soft_nofile(collector.pid());
    let limit = |soft: &str| {
        let out = std::process::Command::new(&prlimit).args(["--pid", &pid, &format!("--nofile={soft}:")]).output().unwrap();
        assert!(out.status.success(), "prlimit: {}", String::from_utf8_lossy(&out.stderr));
    };
    limit(&lowest_free_fd(collector.pid()).to_string());
    let out = d.collector(&["pki", "revoke", "--device", "fw-1"]).ok();
    assert!(out.contains("revoked 1 certificate"), "{out}");
    collector.wait_for_log("keeping the trust in force", Duration::from_secs(10));
    std::thread::sleep(Duration::from_secs(5));
    let log = collector.log();
    assert!(log.contains("Too many open files"), "the reload failed for want of descriptors:\n{log}");
    assert_eq!(log.matches("keeping the trust in force").count(), 1, "one ERROR, not one per retry:\n{log}");

    // Descriptors free again: the retried reload puts the revocation in force.
    limit(&soft);
    let freed = std::time::Instant::now();
    collector.wait_for_log("closing session", Duration::from_secs(10));
    assert!(freed.elapsed() < Duration::from_secs(5), "retried within a poll or two");
    assert!(collector.log().contains("trust reload succeeded again"), "{}", collector.log());
    std::thread::sleep(Duration::from_secs(2));
    let (frozen, before) = (points(&d, "fw-1"), points(&d, "fw-2"));
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(points(&d, "fw-1"), frozen, "the revoked device delivers nothing more\n{}", a1.log());
    assert!(points(&d, "fw-2") > before, "the other device keeps streaming\n{}", a2.log());
    let (status, body) = http_request(http, "GET", "/metrics", "").unwrap();
    assert_eq!(status, 200);
    assert!(metric(&body, "ampel_trust_reload_failures_total").is_some_and(|n| n >= 2), "retried: {body}");
    assert_eq!(metric(&body, "ampel_trust_reload_failing"), Some(0), "{body}");

    // A broken CRL: /healthz and /metrics say so while the last good trust stays in force.
    let crl = d.pki_dir().join("crl.pem");
    let good = std::fs::read(&crl).unwrap();
    std::fs::write(&crl, "-----BEGIN X509 CRL-----\nbm90IGEgQ1JM\n-----END X509 CRL-----\n").unwrap();
    let failing = ampel_tests::wait_until(Duration::from_secs(10), || {
        http_request(http, "GET", "/healthz", "").filter(|(s, b)| *s == 503 && b.contains("trust reload failing"))
    });
    assert!(failing.is_some(), "/healthz reports the failing reload");
    let (_, body) = http_request(http, "GET", "/metrics", "").unwrap();
    assert_eq!(metric(&body, "ampel_trust_reload_failing"), Some(1), "{body}");
    std::fs::write(&crl, good).unwrap();
    let healthy = ampel_tests::wait_until(Duration::from_secs(10), || http_request(http, "GET", "/healthz", "").filter(|(s, _)| *s == 200));
    assert!(healthy.is_some(), "healthy again once the CRL loads");
    a1.stop();
    a2.stop();
    collector.stop();
}

/// Runs a workspace binary to its end (killed after 10 s) and returns its stderr, how long it
/// took and the highest peak RSS seen (kB, sampled from /proc while it runs).
fn run_watched(bin: &str, args: &[&str]) -> (Option<i32>, String, Duration, u64) {
    use std::io::Read;
    let start = std::time::Instant::now();
    let mut child = std::process::Command::new(ampel_tests::bin(bin))
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut peak_kb = 0;
    let status = loop {
        if let Ok(status) = std::fs::read_to_string(format!("/proc/{}/status", child.id())) {
            let hwm = status.lines().find_map(|l| l.strip_prefix("VmHWM:")?.trim().strip_suffix("kB")?.trim().parse().ok());
            peak_kb = peak_kb.max(hwm.unwrap_or(0));
        }
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > Duration::from_secs(10) {
            child.kill().unwrap();
            break child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let took = start.elapsed();
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    (status.code(), err, took, peak_kb)
}

/// `check(bin, args, what)`: exits 78 within a second, with bounded memory, naming `what`.
fn refused_at_once(bin: &str, args: &[&str], what: &str) {
    let (code, err, took, peak_kb) = run_watched(bin, args);
    assert_eq!(code, Some(78), "{what}: exit code; stderr:\n{err}");
    assert!(err.contains(what), "{what}: the error names it:\n{err}");
    assert!(err.contains("character device") || err.contains("not a regular file") || err.contains("not a directory"), "{what}:\n{err}");
    assert!(took < Duration::from_secs(1), "{what}: took {took:?}");
    assert!(peak_kb < 200_000, "{what}: peak RSS {peak_kb} kB");
}

#[test]
fn dev_zero_as_each_configured_file_gets_a_clear_error_within_a_second_and_bounded_memory() {
    let d = Deployment::new("");
    let dir = d.dir.path();
    let pki = d.pki_dir().display().to_string();
    let collector = |name: &str, toml: &str, what: &str| {
        let cfg = dir.join(format!("{name}.toml"));
        std::fs::write(&cfg, format!("data-dir = \"data\"\n\n[pki]\ndir = \"{pki}\"\n\n{toml}")).unwrap();
        refused_at_once("ampel-collector", &["--config", cfg.to_str().unwrap(), "check-config"], what);
    };
    refused_at_once("ampel-collector", &["--config", "/dev/zero", "check-config"], "/dev/zero");
    let cfg = dir.join("data-dir.toml");
    std::fs::write(&cfg, "data-dir = \"/dev/zero\"\n").unwrap();
    refused_at_once("ampel-collector", &["--config", cfg.to_str().unwrap(), "check-config"], "data-dir");
    refused_at_once("ampel-collector", &["--config", cfg.to_str().unwrap(), "serve"], "data-dir");
    std::fs::write(&cfg, "data-dir = \"data\"\n[pki]\ndir = \"/dev/zero\"\n").unwrap();
    refused_at_once("ampel-collector", &["--config", cfg.to_str().unwrap(), "check-config"], "pki.dir");
    let smtp = "[mail]\ntransport = \"smtp\"\nhost = \"127.0.0.1\"\nsecurity = \"starttls\"\n";
    collector("password", &format!("{smtp}username = \"u\"\npassword-file = \"/dev/zero\"\n"), "password-file");
    collector("smtp-ca", &format!("{smtp}ca-file = \"/dev/zero\"\n"), "ca-file");
    collector("outbox", "[mail]\noutbox = \"/dev/zero\"\n", "mail.outbox");
    collector("logo", "[branding]\nuse-branding = true\nlogo = \"/dev/zero\"\n", "branding.logo");
    let mqtt = |key: &str| {
        let files: Vec<String> = ["ca", "cert", "key"]
            .iter()
            .map(|k| {
                format!(
                    "{k} = \"{}\"\n",
                    if *k == key { "/dev/zero".into() } else { format!("{pki}/server.{}", if *k == "key" { "key" } else { "pem" }) }
                )
            })
            .collect();
        collector(&format!("mqtt-{key}"), &format!("[mqtt]\nbroker = \"127.0.0.1:8883\"\n{}", files.concat()), &format!("mqtt.{key}"));
    };
    for key in ["ca", "cert", "key"] {
        mqtt(key);
    }
    // A PKI file replaced by a device (the PKI directory is not named key by key).
    let copy = dir.join("pki-copy");
    std::fs::create_dir(&copy).unwrap();
    for f in std::fs::read_dir(d.pki_dir()).unwrap().flatten().filter(|f| f.path().is_file()) {
        std::fs::copy(f.path(), copy.join(f.file_name())).unwrap();
    }
    std::fs::remove_file(copy.join("crl.pem")).unwrap();
    std::os::unix::fs::symlink("/dev/zero", copy.join("crl.pem")).unwrap();
    let cfg = dir.join("pki-file.toml");
    std::fs::write(&cfg, format!("data-dir = \"data\"\n[pki]\ndir = \"{}\"\n", copy.display())).unwrap();
    refused_at_once("ampel-collector", &["--config", cfg.to_str().unwrap(), "check-config"], "crl.pem");
    let (_, err, _, _) = run_watched("ampel-collector", &["--config", d.config.to_str().unwrap(), "check-config"]);
    assert!(!err.contains("error"), "the deployment itself is fine: {err}");

    // The agent: its config, its certificates, every source's input.
    let dev = d.issue("acme", "fw-1");
    let agent = |name: &str, toml: &str, what: &str| {
        let cfg = dev.join(format!("{name}.toml"));
        let collector = if toml.contains("[collector]") {
            ""
        } else {
            "[collector]\ntransport = \"quic\"\naddress = \"127.0.0.1:4433\"\nserver-name = \"localhost\"\nca = \"ca.pem\"\ncert = \"fw-1.pem\"\nkey = \"fw-1.key\"\n"
        };
        std::fs::write(&cfg, format!("state-dir = \"state\"\n{collector}\n{toml}")).unwrap();
        refused_at_once("ampel-agent", &["check-config", "--config", cfg.to_str().unwrap()], what);
    };
    refused_at_once("ampel-agent", &["check-config", "--config", "/dev/zero"], "/dev/zero");
    for key in ["ca", "cert", "key"] {
        let files: String = [("ca", "ca.pem"), ("cert", "fw-1.pem"), ("key", "fw-1.key")]
            .iter()
            .map(|(k, f)| format!("{k} = \"{}\"\n", if *k == key { "/dev/zero" } else { f }))
            .collect();
        agent(
            &format!("collector-{key}"),
            &format!("[collector]\ntransport = \"quic\"\naddress = \"127.0.0.1:4433\"\nserver-name = \"localhost\"\n{files}"),
            "/dev/zero",
        );
    }
    agent("license", "[sources.license]\nenabled = true\npath = \"/dev/zero\"\n", "sources.license.path");
    agent("nft", "[sources.nft]\nenabled = true\npath = \"/dev/zero\"\n", "sources.nft.path");
    agent("netdev", "[sources.netdev]\nenabled = true\npath = \"/dev/zero\"\n", "sources.netdev.path");
    agent("eve", "[sources.eve]\nenabled = true\npath = \"/dev/zero\"\n", "sources.eve.path");
    agent("clamav", "[sources.clamav]\nenabled = true\npath = \"/dev/zero\"\n", "sources.clamav.path");
    agent("mail-log", "[sources.mail]\nenabled = true\nlog = \"/dev/zero\"\n", "sources.mail.log");
    agent(
        "rspamd-history",
        "[sources.mail]\nenabled = true\nlog = \"none.log\"\nrspamd-history = \"/dev/zero\"\n",
        "sources.mail.rspamd-history",
    );
    agent(
        "rspamd-password",
        "[sources.mail]\nenabled = true\nlog = \"none.log\"\nrspamd-controller = \"http://127.0.0.1:11334\"\nrspamd-password-file = \"/dev/zero\"\n",
        "sources.mail.rspamd-password-file",
    );
}

/// Runs a workspace binary under umask 000.
fn under_umask_000(bin: &str, args: &[&str]) -> std::process::Command {
    let mut cmd = std::process::Command::new("/bin/sh");
    cmd.args(["-c", "umask 000; exec \"$0\" \"$@\""]).arg(ampel_tests::bin(bin)).args(args).env("RUST_LOG", "info");
    cmd
}

/// Asserts that `path` grants nothing beyond `allowed` (e.g. 0o750).
fn at_most(path: &std::path::Path, allowed: u32) {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).permissions().mode() & 0o777;
    assert_eq!(mode & !allowed, 0, "{} has mode {mode:o}, more than {allowed:o}", path.display());
}

#[test]
fn under_umask_000_data_and_mails_keep_explicit_modes_and_a_token_lives_at_most_30_days() {
    use std::process::Stdio;
    let http = free_tcp_port();
    let d = Deployment::new(&format!("[http]\nlisten = \"127.0.0.1:{http}\"\n\n[mail]\noutbox = \"outbox\"\n"));
    let cfg = d.config.to_str().unwrap();
    let out = under_umask_000("ampel-collector", &["--config", cfg, "report", "send", "--tenant", "acme", "--to", "ops@example.org"])
        .output()
        .unwrap();
    assert!(out.status.success(), "report send: {}", String::from_utf8_lossy(&out.stderr));
    let child =
        under_umask_000("ampel-collector", &["--config", cfg, "serve"]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let mut collector = ampel_tests::Proc::adopt("collector", child);
    let up = ampel_tests::wait_until(Duration::from_secs(20), || http_request(http, "GET", "/healthz", "").filter(|(s, _)| *s == 200));
    assert!(up.is_some(), "serve under umask 000 did not come up");
    collector.stop();
    let data = d.dir.path().join("data");
    for dir in [data.clone(), data.join("store"), data.join("delivery"), d.dir.path().join("outbox")] {
        at_most(&dir, 0o750);
    }
    let emls: Vec<_> = std::fs::read_dir(d.dir.path().join("outbox")).unwrap().flatten().map(|e| e.path()).collect();
    assert!(!emls.is_empty(), "report send wrote no .eml");
    for eml in &emls {
        at_most(eml, 0o640);
    }

    // The agent's state under umask 000.
    let dev = d.issue("acme", "fw-1");
    let agent_cfg = d.agent_config(&dev, "fw-1", "250ms");
    let child = under_umask_000("ampel-agent", &["run", "--config", agent_cfg.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut agent = ampel_tests::Proc::adopt("agent", child);
    let state = dev.join("state");
    assert!(ampel_tests::wait_until(Duration::from_secs(10), || state.join("seq").exists().then_some(())).is_some(), "no agent state");
    agent.stop();
    at_most(&state, 0o750);
    at_most(&state.join("seq"), 0o640);

    // Enrollment tokens: at most 30 days.
    let out = d.collector(&["pki", "token", "--tenant", "acme", "--device", "fw-9", "--ttl", "99999999999d"]).output();
    assert!(!out.status.success(), "a token valid for 274 million years is refused");
    assert!(String::from_utf8_lossy(&out.stderr).contains("30d"), "{}", String::from_utf8_lossy(&out.stderr));
    d.collector(&["pki", "token", "--tenant", "acme", "--device", "fw-9", "--ttl", "30d"]).ok();
}

fn rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status.lines().find_map(|l| l.strip_prefix("VmRSS:")?.trim().strip_suffix("kB")?.trim().parse().ok()).unwrap_or(0)
}

/// One device floods: `conns` connections, 16 streams each, every stream announcing a 4 MiB
/// frame and sending 1 MiB of it, never the rest.
async fn flood(addr: std::net::SocketAddr, dev: &std::path::Path, conns: usize) -> Vec<(quinn::Endpoint, quinn::Connection)> {
    let mut open = Vec::new();
    for _ in 0..conns {
        let c = ampel_tests::connect_device(addr, &dev.join("ca.pem"), &dev.join("fw-1.pem"), &dev.join("fw-1.key")).await.unwrap();
        for _ in 0..16 {
            let conn = c.1.clone();
            tokio::spawn(async move {
                let Ok((mut send, _recv)) = conn.open_bi().await else { return };
                let mut bytes = (4u32 << 20).to_be_bytes().to_vec();
                bytes.resize(4 + (1 << 20), 0);
                let _ = send.write_all(&bytes).await;
                // Hold the stream open, frame unfinished, until the connection goes.
                let _ = conn.closed().await;
            });
        }
        open.push(c);
    }
    open
}

#[test]
fn a_flood_of_partial_frames_from_one_device_stays_within_its_budget_while_another_streams() {
    let http = free_tcp_port();
    let d = Deployment::new(&format!("[http]\nlisten = \"127.0.0.1:{http}\"\n"));
    let text = std::fs::read_to_string(&d.config).unwrap();
    std::fs::write(&d.config, text.replace("[quic]\n", "[quic]\nframe-budget-mib = 64\nmax-connections-per-device = 2\n")).unwrap();
    let (attacker, honest) = (d.issue("acme", "fw-1"), d.issue("acme", "fw-2"));
    let mut collector = d.serve();
    let mut agent = d.agent(&honest, "fw-2", "250ms");
    let streaming = ampel_tests::wait_until(Duration::from_secs(30), || (points(&d, "fw-2") > 0).then_some(()));
    assert!(streaming.is_some(), "fw-2 does not stream:\n{}", agent.log());
    let pid = collector.pid();
    let before = rss_kb(pid);

    // Eight connections of 16 streams, 1 MiB each: 128 MiB if all were buffered.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let addr = format!("127.0.0.1:{}", d.port).parse().unwrap();
    let open = rt.block_on(flood(addr, &attacker, 8));
    let honest_before = points(&d, "fw-2");
    let (mut peak, mut held_peak) = (before, 0);
    let started = std::time::Instant::now();
    while started.elapsed() < Duration::from_secs(7) {
        peak = peak.max(rss_kb(pid));
        if let Some((200, body)) = http_request(http, "GET", "/metrics", "") {
            held_peak = held_peak.max(metric(&body, "ampel_quic_partial_frame_bytes").unwrap_or(0));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let (_, body) = http_request(http, "GET", "/metrics", "").unwrap();
    assert!(points(&d, "fw-2") > honest_before, "the other device keeps streaming during the flood\n{}", agent.log());
    assert!(held_peak <= 8 << 20, "one device holds at most its share (8 MiB of 64): {held_peak}");
    assert!(metric(&body, "ampel_quic_connections_superseded_total").is_some_and(|n| n >= 6), "{body}");
    assert!(metric(&body, "ampel_quic_frames_over_budget_total").is_some_and(|n| n >= 1), "{body}");
    let grew_mib = peak.saturating_sub(before) / 1024;
    assert!(grew_mib < 64, "the collector grew by {grew_mib} MiB during the flood (before {before} kB, peak {peak} kB)");
    rt.block_on(async {
        for (ep, conn) in open {
            conn.close(0u32.into(), b"done");
            let _ = tokio::time::timeout(Duration::from_secs(2), ep.wait_idle()).await;
        }
    });
    drop(rt);
    std::thread::sleep(Duration::from_secs(1));
    let (_, body) = http_request(http, "GET", "/metrics", "").unwrap();
    assert_eq!(metric(&body, "ampel_quic_partial_frame_bytes"), Some(0), "all given back: {body}");
    eprintln!("collector RSS: before {before} kB, peak during the flood {peak} kB, after {} kB", rss_kb(pid));
    agent.stop();
    collector.stop();
}
