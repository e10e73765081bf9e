//! Helpers for the end-to-end tests: run the real binaries, start real servers on loopback
//! ports chosen at run time, and clean up after.
//!
//! # Layout
//!
//! - [`bin`] finds a built binary; [`Cmd`] runs one to completion; [`Proc`] keeps one running
//!   (killed on drop) and collects its log.
//! - [`Deployment`] is a collector with its own CA in a temporary directory, plus agents.
//! - [`require`] fails a test with a clear message when a tool it needs is missing.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Path of a binary of this workspace, built by `cargo build --workspace --bins`.
pub fn bin(name: &str) -> PathBuf {
    // target/<profile>/deps/e2e-<hash> -> target/<profile>/<name>
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let p = dir.join(name);
    assert!(p.exists(), "{} is missing: build the binaries first (`cargo build --workspace --bins`, or run tests/run)", p.display());
    p
}

/// Fails with a clear message when a tool is not installed.
pub fn require(tool: &str, package: &str) -> PathBuf {
    for dir in ["/usr/bin", "/usr/sbin", "/usr/local/bin", "/bin", "/sbin"] {
        let p = Path::new(dir).join(tool);
        if p.exists() {
            return p;
        }
    }
    panic!("{tool} is required by this test but not installed: apt-get install {package} (tests/run installs it)");
}

/// A command run to completion.
pub struct Cmd {
    cmd: Command,
    shown: String,
}

impl Cmd {
    /// A command for a workspace binary.
    pub fn new(name: &str) -> Cmd {
        let mut cmd = Command::new(bin(name));
        cmd.env("RUST_LOG", "info");
        Cmd { cmd, shown: name.to_owned() }
    }

    /// Adds arguments.
    pub fn args<I: IntoIterator<Item = S>, S: AsRef<std::ffi::OsStr>>(mut self, args: I) -> Cmd {
        for a in args {
            self.shown.push(' ');
            self.shown.push_str(&a.as_ref().to_string_lossy());
            self.cmd.arg(a);
        }
        self
    }

    /// Runs and returns the output whatever the exit status.
    pub fn output(mut self) -> Output {
        self.cmd.stdin(Stdio::null()).output().unwrap_or_else(|e| panic!("cannot run {}: {e}", self.shown))
    }

    /// Runs, asserts success, returns stdout.
    pub fn ok(self) -> String {
        let shown = self.shown.clone();
        let out = self.output();
        assert!(
            out.status.success(),
            "`{shown}` failed with {}\nstdout:\n{}\nstderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// A long-running process, killed on drop, whose stderr is collected.
pub struct Proc {
    pub name: String,
    child: Child,
    log: Arc<Mutex<String>>,
}

impl Proc {
    /// Starts a workspace binary.
    pub fn start(name: &str, label: &str, args: &[&str]) -> Proc {
        Proc::start_with_env(name, label, args, &[])
    }

    /// Starts a workspace binary with extra environment variables (e.g. [`faketime`]).
    pub fn start_with_env(name: &str, label: &str, args: &[&str], env: &[(String, String)]) -> Proc {
        let mut cmd = Command::new(bin(name));
        cmd.args(args).env("RUST_LOG", "info").envs(env.iter().map(|(k, v)| (k, v)));
        Proc::spawn(cmd, label, name)
    }

    fn spawn(mut cmd: Command, label: &str, name: &str) -> Proc {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let log = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().expect("piped stderr");
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut l = sink.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        Proc { name: label.to_owned(), child, log }
    }

    /// Takes over a child started elsewhere (its stderr is not collected).
    pub fn adopt(label: &str, child: Child) -> Proc {
        Proc { name: label.to_owned(), child, log: Arc::new(Mutex::new(String::new())) }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// What the process logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits until the log contains `needle`; panics with the log after `timeout`.
    pub fn wait_for_log(&mut self, needle: &str, timeout: Duration) {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if self.log().contains(needle) {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("{} exited with {status} before logging {needle:?}; log:\n{}", self.name, self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("{} did not log {needle:?} within {timeout:?}; log:\n{}", self.name, self.log());
    }

    /// Sends SIGTERM and waits for the exit; returns whether it exited cleanly.
    pub fn stop(&mut self) -> bool {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        false
    }

    /// Kills with SIGKILL.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Environment that makes a program's wall clock start at `utc` (RFC 3339, e.g.
/// `2026-03-30T05:59:40Z`) and run on from there, through libfaketime (Debian's `faketime`).
/// The monotonic clock stays real, so timers and timeouts behave.
pub fn faketime(utc: &str) -> Vec<(String, String)> {
    let lib = Path::new("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1");
    assert!(lib.exists(), "libfaketime is required by this test but not installed: apt-get install faketime (tests/run installs it)");
    let at = utc.trim_end_matches('Z').replace('T', " ");
    vec![
        ("LD_PRELOAD".into(), lib.display().to_string()),
        ("FAKETIME".into(), format!("@{at}")),
        ("FAKETIME_DONT_FAKE_MONOTONIC".into(), "1".into()),
        ("TZ".into(), "UTC".into()),
    ]
}

/// A plain aiosmtpd (no TLS, no login) on a loopback port, storing mail in a Maildir; killed
/// on drop. Messages are read back with the mail module's `extract.py`.
pub struct Smtp {
    pub port: u16,
    pub maildir: PathBuf,
    _proc: Proc,
    out: tempfile::TempDir,
}

impl Smtp {
    /// Starts one; `size`: the message size limit it advertises and enforces (SMTP SIZE).
    pub fn start(maildir: &Path, size: Option<u64>) -> Smtp {
        let port = free_tcp_port();
        Smtp { port, maildir: maildir.to_owned(), _proc: Smtp::spawn(port, maildir, size), out: tempfile::tempdir().unwrap() }
    }

    /// Stops the server and starts it again on the same port and Maildir with another `size`.
    pub fn restart(&mut self, size: Option<u64>) {
        self._proc.kill9();
        self._proc = Smtp::spawn(self.port, &self.maildir, size);
    }

    fn spawn(port: u16, maildir: &Path, size: Option<u64>) -> Proc {
        let python = require("python3", "python3");
        let probe = Command::new(&python).args(["-c", "import aiosmtpd"]).output().unwrap();
        assert!(probe.status.success(), "aiosmtpd is required: apt-get install python3-aiosmtpd (tests/run installs it)");
        let mut cmd = Command::new(python);
        cmd.args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")]);
        if let Some(size) = size {
            cmd.args(["-s", &size.to_string()]);
        }
        cmd.args(["-c", "aiosmtpd.handlers.Mailbox"]).arg(maildir).stdin(Stdio::null()).stderr(Stdio::null());
        let proc = Proc::adopt("aiosmtpd", cmd.spawn().expect("start aiosmtpd"));
        let up = wait_until(Duration::from_secs(15), || std::net::TcpStream::connect(("127.0.0.1", port)).ok());
        assert!(up.is_some(), "aiosmtpd did not listen on port {port}");
        proc
    }

    /// `[mail]` for this server.
    pub fn mail_config(&self) -> String {
        format!(
            "[mail]\ntransport = \"smtp\"\nhost = \"127.0.0.1\"\nport = {}\nsecurity = \"none\"\nfrom = \"Ampel <ampel@example.org>\"\n",
            self.port
        )
    }

    /// Every message received so far: subject, to, cc, rcpt_to, text, html, attachments.
    pub fn messages(&self) -> Vec<serde_json::Value> {
        if !self.maildir.join("new").exists() {
            return Vec::new();
        }
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../collector/src/mail/testdata/extract.py");
        let out = Command::new("/usr/bin/python3").arg(script).arg(&self.maildir).arg(self.out.path()).output().unwrap();
        assert!(out.status.success(), "extract.py failed: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// Waits until `pred` holds for at least `n` messages; returns those.
    pub fn wait_for(&self, n: usize, timeout: Duration, pred: impl Fn(&serde_json::Value) -> bool) -> Vec<serde_json::Value> {
        wait_until(timeout, || {
            let m: Vec<_> = self.messages().into_iter().filter(|m| pred(m)).collect();
            (m.len() >= n).then_some(m)
        })
        .unwrap_or_else(|| panic!("fewer than {n} matching messages within {timeout:?}; received: {:#?}", self.messages()))
    }
}

/// The token of the first `<path>?t=` link in `text` (quoted-printable already undone).
pub fn link_token(text: &str, path: &str) -> Option<String> {
    let at = text.find(&format!("{path}?t="))? + path.len() + 3;
    Some(text[at..].chars().take_while(|c| c.is_ascii_alphanumeric() || "-_.".contains(*c)).collect())
}

/// One HTTP/1.1 request to the collector's listener; returns status and whole response.
pub fn http_request(port: u16, method: &str, target: &str, body: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
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

/// A free UDP port on loopback (bound, read, released).
pub fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A free TCP port on loopback (bound, read, released).
pub fn free_tcp_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Polls `f` until it returns `Some`, for at most `timeout`.
pub fn wait_until<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if start.elapsed() > timeout {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A collector deployment in a temporary directory: config, CA, store.
pub struct Deployment {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub port: u16,
}

impl Deployment {
    /// Writes `collector.toml` (with `extra` appended) and creates the CA.
    pub fn new(extra: &str) -> Deployment {
        let dir = tempfile::tempdir().unwrap();
        let port = free_udp_port();
        let config = dir.path().join("collector.toml");
        std::fs::write(&config, format!("data-dir = \"data\"\n\n[quic]\nlisten = \"127.0.0.1:{port}\"\n\n{extra}")).unwrap();
        let d = Deployment { dir, config, port };
        d.collector(&["pki", "init", "--name", "localhost", "--name", "127.0.0.1"]).ok();
        d
    }

    /// `ampel-collector --config <ours> args...`
    pub fn collector(&self, args: &[&str]) -> Cmd {
        Cmd::new("ampel-collector").args(["--config", self.config.to_str().unwrap()]).args(args)
    }

    /// The PKI directory.
    pub fn pki_dir(&self) -> PathBuf {
        self.dir.path().join("data/pki")
    }

    /// Issues a device certificate into `agents/<device>/` and returns that directory.
    pub fn issue(&self, tenant: &str, device: &str) -> PathBuf {
        let out = self.dir.path().join("agents").join(device);
        self.collector(&["pki", "issue", "--tenant", tenant, "--device", device, "--out", out.to_str().unwrap()]).ok();
        out
    }

    /// Starts `ampel-collector serve` and waits until it listens.
    pub fn serve(&self) -> Proc {
        self.serve_with_env(&[])
    }

    /// Starts `ampel-collector serve` with extra environment (e.g. [`faketime`]).
    pub fn serve_with_env(&self, env: &[(String, String)]) -> Proc {
        let mut p = Proc::start_with_env("ampel-collector", "collector", &["--config", self.config.to_str().unwrap(), "serve"], env);
        p.wait_for_log("collector listening", Duration::from_secs(20));
        p
    }

    /// Writes an agent config for a device directory made by [`issue`](Self::issue).
    pub fn agent_config(&self, device_dir: &Path, device: &str, interval: &str) -> PathBuf {
        let cfg = device_dir.join("agent.toml");
        std::fs::write(
            &cfg,
            format!(
                "interval = \"{interval}\"\nstate-dir = \"state\"\n\n[collector]\ntransport = \"quic\"\naddress = \"127.0.0.1:{}\"\n\
                 server-name = \"localhost\"\nca = \"ca.pem\"\ncert = \"{device}.pem\"\nkey = \"{device}.key\"\n\n\
                 [sources.performance]\nenabled = true\nmounts = [\"/\"]\n\n[sources.inventory]\nenabled = true\nmodel = \"TestBox\"\n",
                self.port
            ),
        )
        .unwrap();
        cfg
    }

    /// Starts an agent for a device directory.
    pub fn agent(&self, device_dir: &Path, device: &str, interval: &str) -> Proc {
        let cfg = self.agent_config(device_dir, device, interval);
        Proc::start("ampel-agent", device, &["run", "--config", cfg.to_str().unwrap()])
    }

    /// `devices --json`, parsed.
    pub fn devices(&self) -> Vec<serde_json::Value> {
        let out = self.collector(&["devices", "--json"]).ok();
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("devices --json printed no JSON ({e}):\n{out}"))
    }

    /// One device's row from `devices --json`.
    pub fn device(&self, id: &str) -> Option<serde_json::Value> {
        self.devices().into_iter().find(|d| d["device"] == id)
    }
}

/// A QUIC connection to the collector's data ALPN with the given device files (mutual TLS).
pub async fn connect_device(
    addr: std::net::SocketAddr,
    ca_pem: &Path,
    cert_pem: &Path,
    key_pem: &Path,
) -> Result<(quinn::Endpoint, quinn::Connection), String> {
    use ampel_protocol::tls;
    tls::install_provider();
    let read = |p: &Path| std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()));
    let cas = tls::parse_certs(&read(ca_pem)?).map_err(|e| e.to_string())?;
    let chain = tls::parse_certs(&read(cert_pem)?).map_err(|e| e.to_string())?;
    let key = tls::parse_key(&read(key_pem)?).map_err(|e| e.to_string())?;
    let cfg = tls::client_config(&cas, chain, key, &[ampel_protocol::ALPN_DATA]).map_err(|e| e.to_string())?;
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(cfg).map_err(|e| e.to_string())?;
    let mut endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).map_err(|e| e.to_string())?;
    endpoint.set_default_client_config(quinn::ClientConfig::new(Arc::new(crypto)));
    let conn = endpoint.connect(addr, "localhost").map_err(|e| e.to_string())?.await.map_err(|e| e.to_string())?;
    Ok((endpoint, conn))
}

/// A minimal QUIC agent for tests that need to send hand-made batches: connects with the given
/// device files and returns the collector's ack for each batch, or the error that ended it.
pub async fn send_batches(
    addr: std::net::SocketAddr,
    ca_pem: &Path,
    cert_pem: &Path,
    key_pem: &Path,
    batches: &[ampel_protocol::Batch],
) -> Result<Vec<ampel_protocol::Ack>, String> {
    use ampel_protocol::{Limits, codec, frame};
    let (endpoint, conn) = connect_device(addr, ca_pem, cert_pem, key_pem).await?;
    let limits = Limits::default();
    let mut acks = Vec::new();
    for b in batches {
        let (mut send, mut recv) = conn.open_bi().await.map_err(|e| e.to_string())?;
        let payload = codec::encode_batch(b).map_err(|e| e.to_string())?;
        send.write_all(&frame::encode_frame(&payload, &limits).map_err(|e| e.to_string())?).await.map_err(|e| e.to_string())?;
        send.finish().map_err(|e| e.to_string())?;
        let mut header = [0u8; frame::HEADER_LEN];
        recv.read_exact(&mut header).await.map_err(|e| e.to_string())?;
        let len = frame::payload_len(header, &limits).map_err(|e| e.to_string())?;
        let body = recv.read_to_end(len).await.map_err(|e| e.to_string())?;
        acks.push(codec::decode_ack(&body, &limits).map_err(|e| e.to_string())?);
    }
    conn.close(0u32.into(), b"done");
    endpoint.wait_idle().await;
    Ok(acks)
}

/// Like [`send_batches`], but writes every frame (raw bytes, so tests can send broken ones) on
/// one stream, frame after frame, reading each ack before the next. Returns the acks and whether
/// the collector ended the stream early (after an ack, before all frames were sent).
pub async fn send_frames_on_one_stream(
    addr: std::net::SocketAddr,
    device_dir: &Path,
    device: &str,
    frames: &[Vec<u8>],
) -> Result<(Vec<ampel_protocol::Ack>, bool), String> {
    use ampel_protocol::{Limits, codec, frame};
    let (endpoint, conn) = connect_device(
        addr,
        &device_dir.join("ca.pem"),
        &device_dir.join(format!("{device}.pem")),
        &device_dir.join(format!("{device}.key")),
    )
    .await?;
    let limits = Limits::default();
    let (mut send, mut recv) = conn.open_bi().await.map_err(|e| e.to_string())?;
    let mut acks = Vec::new();
    let mut ended_early = false;
    for (i, f) in frames.iter().enumerate() {
        if send.write_all(f).await.is_err() {
            ended_early = true;
            break;
        }
        let mut header = [0u8; frame::HEADER_LEN];
        match recv.read_exact(&mut header).await {
            Ok(()) => {}
            Err(quinn::ReadExactError::FinishedEarly(0)) if i > 0 => {
                ended_early = true;
                break;
            }
            Err(e) => return Err(format!("frame {i}: {e}")),
        }
        let len = frame::payload_len(header, &limits).map_err(|e| e.to_string())?;
        let mut body = vec![0u8; len];
        recv.read_exact(&mut body).await.map_err(|e| e.to_string())?;
        acks.push(codec::decode_ack(&body, &limits).map_err(|e| e.to_string())?);
    }
    if !ended_early {
        let _ = send.finish();
    }
    // Whatever comes next: the collector's end of the stream.
    let rest = recv.read_to_end(1 << 10).await.map_err(|e| e.to_string())?;
    if !rest.is_empty() {
        return Err(format!("{} unexpected bytes after the last ack", rest.len()));
    }
    conn.close(0u32.into(), b"done");
    endpoint.wait_idle().await;
    Ok((acks, ended_early))
}

/// Publishes one QoS 1 message with the given device files (mutual TLS) and waits for its
/// PUBACK. With MQTT 3.1.1 mosquitto acknowledges even a publish its ACL refuses (and drops it).
pub async fn mqtt_publish(
    port: u16,
    ca_pem: &Path,
    cert_pem: &Path,
    key_pem: &Path,
    client_id: &str,
    topic: &str,
    payload: Vec<u8>,
) -> Result<(), String> {
    use ampel_protocol::tls;
    use rumqttc::{AsyncClient, Event, Incoming, MqttOptions, QoS, TlsConfiguration, Transport};
    tls::install_provider();
    let read = |p: &Path| std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()));
    let cas = tls::parse_certs(&read(ca_pem)?).map_err(|e| e.to_string())?;
    let chain = tls::parse_certs(&read(cert_pem)?).map_err(|e| e.to_string())?;
    let key = tls::parse_key(&read(key_pem)?).map_err(|e| e.to_string())?;
    let cfg = tls::client_config(&cas, chain, key, &[]).map_err(|e| e.to_string())?;
    let mut o = MqttOptions::new(client_id, "127.0.0.1", port);
    o.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(Arc::new(cfg)))).set_max_packet_size(16 << 20, 16 << 20);
    let (client, mut el) = AsyncClient::new(o, 10);
    client.try_publish(topic, QoS::AtLeastOnce, false, payload).map_err(|e| e.to_string())?;
    let wait = async {
        loop {
            match el.poll().await {
                Ok(Event::Incoming(Incoming::PubAck(_))) => return Ok(()),
                Ok(_) => {}
                Err(e) => return Err(e.to_string()),
            }
        }
    };
    let r = tokio::time::timeout(Duration::from_secs(10), wait).await.map_err(|_| "no PUBACK within 10 s".to_string())?;
    let _ = client.try_disconnect();
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        while !matches!(el.poll().await, Ok(Event::Outgoing(rumqttc::Outgoing::Disconnect)) | Err(_)) {}
    })
    .await;
    r
}

/// Connects without a client certificate on `alpn`, sends `bytes`, returns what came back.
pub async fn anonymous(addr: std::net::SocketAddr, ca_pem: &Path, alpn: &[u8], bytes: Vec<u8>) -> Result<Vec<u8>, String> {
    use ampel_protocol::tls;
    tls::install_provider();
    let mut roots = rustls::RootCertStore::empty();
    for ca in tls::parse_certs(&std::fs::read(ca_pem).unwrap()).unwrap() {
        roots.add(ca).unwrap();
    }
    let mut cfg = rustls::ClientConfig::builder_with_provider(tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![alpn.to_vec()];
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(cfg).unwrap();
    let mut endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    endpoint.set_default_client_config(quinn::ClientConfig::new(std::sync::Arc::new(crypto)));
    let conn = endpoint.connect(addr, "localhost").map_err(|e| e.to_string())?.await.map_err(|e| e.to_string())?;
    let (mut send, mut recv) = conn.open_bi().await.map_err(|e| e.to_string())?;
    send.write_all(&bytes).await.map_err(|e| e.to_string())?;
    let _ = send.finish();
    let out = recv.read_to_end(64 << 10).await.map_err(|e| e.to_string());
    conn.close(0u32.into(), b"done");
    endpoint.wait_idle().await;
    out
}
