//! The collector as a child process (`ampel-collector serve`), so that its memory and CPU time
//! are measured apart from the load generator's, and CPU time per thread from `/proc`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ampel_collector::pki::{InitOptions, Pki};
use anyhow::Context;

/// A running `ampel-collector serve` on loopback with a fresh data directory.
pub struct ChildCollector {
    /// Where it listens (QUIC).
    pub addr: SocketAddr,
    child: std::process::Child,
    log: PathBuf,
}

impl ChildCollector {
    /// Creates a PKI and a config under `dir`, starts the collector binary that sits next to
    /// this one and waits until it listens. Returns the PKI too, to issue the agents'
    /// certificates.
    pub fn start(dir: &Path, max_streams: u32) -> anyhow::Result<(ChildCollector, Pki)> {
        ampel_protocol::tls::install_provider();
        let data = dir.join("data");
        let pki = Pki::init(&data.join("pki"), &InitOptions { names: vec!["127.0.0.1".into()], ..InitOptions::default() })?;
        // A free port: bound and released; the child binds it a moment later.
        let port = std::net::UdpSocket::bind("127.0.0.1:0")?.local_addr()?.port();
        let config = dir.join("collector.toml");
        std::fs::write(
            &config,
            format!("data-dir = \"{}\"\n\n[quic]\nlisten = \"127.0.0.1:{port}\"\nmax-streams = {max_streams}\n", data.display()),
        )?;
        let exe = std::env::current_exe()?.with_file_name("ampel-collector");
        let log = dir.join("collector.log");
        let child = Command::new(&exe)
            .arg("--config")
            .arg(&config)
            .arg("serve")
            .env("RUST_LOG", "warn,ampel_collector::server=info")
            .env_remove("NOTIFY_SOCKET")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?)
            .spawn()
            .with_context(|| format!("starting {} (build it: cargo build --release --bins)", exe.display()))?;
        let mut c = ChildCollector { addr: SocketAddr::from(([127, 0, 0, 1], port)), child, log };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if std::fs::read_to_string(&c.log).unwrap_or_default().contains("collector listening") {
                return Ok((c, pki));
            }
            if let Some(status) = c.child.try_wait()? {
                anyhow::bail!("ampel-collector exited with {status}: {}", std::fs::read_to_string(&c.log).unwrap_or_default());
            }
            anyhow::ensure!(Instant::now() < deadline, "ampel-collector did not start listening within 30 s");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident memory of the child, in bytes.
    pub fn rss(&self) -> anyhow::Result<u64> {
        rss(self.pid())
    }

    /// Stops the child with SIGTERM (it drains and commits what it holds) and waits for it.
    pub fn stop(mut self) -> anyhow::Result<()> {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.child.id())?);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM)?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.child.try_wait()?.is_none() {
            if Instant::now() > deadline {
                self.child.kill()?;
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }
}

impl Drop for ChildCollector {
    fn drop(&mut self) {
        // After `stop` this finds the child gone; on an early error it must not outlive us.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `VmRSS` of a process, in bytes.
pub fn rss(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .context("no VmRSS in /proc/PID/status")?;
    Ok(kb * 1024)
}

/// CPU seconds (user + system) per thread name of process `pid` (`self` for this one), summed
/// over threads of the same name.
pub fn cpu_by_thread(pid: &str) -> anyhow::Result<BTreeMap<String, f64>> {
    let ticks = clock_ticks();
    let mut out = BTreeMap::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        let Ok(stat) = std::fs::read_to_string(task?.path().join("stat")) else { continue };
        // `pid (comm) state ...`: comm may hold spaces, so split at the last parenthesis.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else { continue };
        let name = stat[open + 1..close].to_owned();
        let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        // After the comm: state is field 3 of stat(5), utime 14 and stime 15.
        let (Some(u), Some(s)) = (fields.get(11), fields.get(12)) else { continue };
        let secs = (u.parse::<f64>().unwrap_or(0.0) + s.parse::<f64>().unwrap_or(0.0)) / ticks;
        *out.entry(name).or_insert(0.0) += secs;
    }
    Ok(out)
}

fn clock_ticks() -> f64 {
    // USER_HZ is 100 on every Linux ABI Ampel runs on.
    100.0
}

/// Prints CPU seconds per thread name since `before`, as `cpu.<who>.<thread>` lines, and their
/// sum, which it returns. (A thread that ended in between is missing from both.)
pub fn report_cpu(who: &str, before: &BTreeMap<String, f64>, after: &BTreeMap<String, f64>) -> f64 {
    let mut total = 0.0;
    for (name, t) in after {
        let d = t - before.get(name).copied().unwrap_or(0.0);
        total += d;
        if d >= 0.01 {
            super::report(&format!("cpu.{who}.{}", name.replace(' ', "_")), d, "s");
        }
    }
    super::report(&format!("cpu.{who}"), total, "s");
    total
}

/// UDP datagrams the kernel dropped for want of receive buffer space, machine-wide
/// (`RcvbufErrors` in `/proc/net/snmp`; other programs' sockets count too).
pub fn udp_rcvbuf_errors() -> Option<u64> {
    let snmp = std::fs::read_to_string("/proc/net/snmp").ok()?;
    let mut udp = snmp.lines().filter(|l| l.starts_with("Udp:"));
    let (names, values) = (udp.next()?, udp.next()?);
    let i = names.split_whitespace().position(|n| n == "RcvbufErrors")?;
    values.split_whitespace().nth(i)?.parse().ok()
}
