//! Packages and services: the .deb and .rpm files built by `packaging/build`, the systemd
//! units, the shipped default configurations and the sd_notify protocol as systemd sees it.
//!
//! The package tests need `packaging/build` to have run (tests/run does it) and lintian, rpm,
//! systemd-analyze and dpkg; each fails with a clear message when something is missing.

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use ampel_tests::{Cmd, Deployment, Proc, bin, require};

const VERSION: &str = env!("CARGO_PKG_VERSION");

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_owned()
}

/// A package built by `packaging/build`: `target/packages/<name><sep><version>...<ext>`.
fn package(name: &str, ext: &str) -> PathBuf {
    let dir = repo().join("target/packages");
    let sep = if ext == "deb" { '_' } else { '-' };
    let prefix = format!("{name}{sep}{VERSION}-");
    let found = std::fs::read_dir(&dir).ok().and_then(|entries| {
        entries.filter_map(Result::ok).map(|e| e.path()).find(|p| {
            let f = p.file_name().and_then(|f| f.to_str()).unwrap_or("");
            f.starts_with(&prefix) && f.ends_with(&format!(".{ext}"))
        })
    });
    found.unwrap_or_else(|| panic!("no {prefix}*.{ext} in {}: run `packaging/build` first (tests/run does it)", dir.display()))
}

fn run(program: &Path, args: &[&str]) -> Output {
    Command::new(program).args(args).stdin(Stdio::null()).output().unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()))
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

fn run_ok(program: &Path, args: &[&str]) -> String {
    let out = run(program, args);
    assert!(out.status.success(), "`{} {}` failed with {}:\n{}", program.display(), args.join(" "), out.status, text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_shipped_default_configs_parse() {
    let collector = repo().join("packaging/collector.toml");
    Cmd::new("ampel-collector").args(["--config", collector.to_str().unwrap(), "check-config"]).ok();
    // The agent's check-config also loads the certificates, which a fresh install lacks; `once`
    // parses the file and builds every source it enables, without network or state.
    let agent = repo().join("packaging/agent.toml");
    let batch = Cmd::new("ampel-agent").args(["once", "--config", agent.to_str().unwrap()]).ok();
    assert!(batch.contains("records"), "`ampel-agent once` with the shipped config printed no batch:\n{batch}");
}

#[test]
fn lintian_finds_no_errors_or_warnings_in_the_debs() {
    let lintian = require("lintian", "lintian");
    for name in ["ampel-agent", "ampel-collector"] {
        let deb = package(name, "deb");
        let out = run(&lintian, &["--fail-on", "error,warning", "--no-tag-display-limit", deb.to_str().unwrap()]);
        assert!(out.status.success(), "lintian reports errors or warnings for {}:\n{}", deb.display(), text(&out));
    }
}

#[test]
fn the_rpms_carry_binary_unit_config_users_and_docs() {
    let rpm = require("rpm", "rpm");
    for (name, short) in [("ampel-agent", "agent"), ("ampel-collector", "collector")] {
        let file = package(name, "rpm");
        let f = file.to_str().unwrap();
        let list = run_ok(&rpm, &["-qpl", f]);
        let mut expected = vec![
            format!("/usr/bin/{name}"),
            format!("/usr/lib/systemd/system/{name}.service"),
            format!("/etc/ampel/{short}.toml"),
            format!("/usr/lib/sysusers.d/{name}.conf"),
            format!("/usr/lib/tmpfiles.d/{name}.conf"),
            format!("/usr/share/man/man1/{name}.1.gz"),
            format!("/usr/share/doc/{name}/changelog"),
            format!("/usr/share/licenses/{name}/copyright"),
        ];
        if short == "collector" {
            expected.push("/usr/share/doc/ampel-collector/examples/mosquitto/ampel.conf".into());
            expected.push("/usr/share/doc/ampel-collector/examples/mosquitto/ampel.acl".into());
        }
        for path in &expected {
            assert!(list.lines().any(|l| l == path), "{f} lacks {path}; rpm -qpl lists:\n{list}");
        }
        // An edited config survives an upgrade: it is a %config(noreplace) file.
        let config = run_ok(&rpm, &["-qp", "--configfiles", f]);
        assert!(config.lines().any(|l| l == format!("/etc/ampel/{short}.toml")), "{f}: config file not marked as such:\n{config}");
        let scripts = run_ok(&rpm, &["-qp", "--scripts", f]);
        assert!(scripts.contains(&format!("systemd-sysusers {name}.conf")), "{f}: post-install does not create the user:\n{scripts}");
    }
}

/// `systemd-analyze security` output: "→ Overall exposure level for X.service: 1.2 OK".
fn exposure(report: &str) -> Option<f64> {
    let line = report.lines().find(|l| l.contains("Overall exposure level"))?;
    line.rsplit_once(": ")?.1.split_whitespace().next()?.parse().ok()
}

#[test]
fn each_unit_scores_at_most_2_in_systemd_analyze_security() {
    let analyze = require("systemd-analyze", "systemd");
    for name in ["ampel-agent", "ampel-collector"] {
        let unit = repo().join(format!("systemd/{name}.service"));
        let out = run(&analyze, &["security", "--offline=yes", "--no-pager", unit.to_str().unwrap()]);
        let report = text(&out);
        let score = exposure(&report).unwrap_or_else(|| panic!("no exposure level in `systemd-analyze security` output:\n{report}"));
        assert!(score <= 2.0, "{name}.service is exposed at {score} (at most 2.0 wanted):\n{report}");
    }
}

#[test]
fn the_units_pass_systemd_analyze_verify() {
    // verify needs the ExecStart binaries at their paths: point the units at the built ones.
    let analyze = require("systemd-analyze", "systemd");
    let dir = tempfile::tempdir().unwrap();
    for name in ["ampel-agent", "ampel-collector"] {
        let unit = std::fs::read_to_string(repo().join(format!("systemd/{name}.service"))).unwrap();
        let unit = unit.replace(&format!("/usr/bin/{name}"), bin(name).to_str().unwrap());
        let path = dir.path().join(format!("{name}.service"));
        std::fs::write(&path, unit).unwrap();
        let out = run(&analyze, &["verify", "--man=no", path.to_str().unwrap()]);
        assert!(out.status.success() && out.stderr.is_empty(), "systemd-analyze verify {name}.service:\n{}", text(&out));
    }
}

/// Reads datagrams from a NOTIFY_SOCKET until `until` returns true or `timeout` passes.
fn notifications(sock: &UnixDatagram, timeout: Duration, mut until: impl FnMut(&str) -> bool) -> Vec<String> {
    let start = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while start.elapsed() < timeout {
        sock.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        if let Ok(n) = sock.recv(&mut buf) {
            let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
            let done = until(&msg);
            got.push(msg);
            if done {
                break;
            }
        }
    }
    got
}

fn signal(pid: u32, sig: nix::sys::signal::Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), sig).unwrap();
}

#[test]
fn the_collector_notifies_ready_feeds_the_watchdog_and_the_pings_stop_when_it_hangs() {
    let d = Deployment::new("");
    let sock_path = d.dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    let log = d.dir.path().join("collector.log");
    let child = Command::new(bin("ampel-collector"))
        .args(["--config", d.config.to_str().unwrap(), "serve"])
        .env("NOTIFY_SOCKET", &sock_path)
        .env("WATCHDOG_USEC", "400000") // systemd would ping-check every 400 ms; we ping every 200
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut proc = Proc::adopt("collector", child);
    let logged = || std::fs::read_to_string(&log).unwrap_or_default();

    let got = notifications(&sock, Duration::from_secs(20), |m| m.contains("READY=1"));
    assert!(got.iter().any(|m| m.starts_with("READY=1")), "no READY=1 within 20 s; got {got:?}; log:\n{}", logged());
    // READY=1 only once the listener is bound: the log line comes before.
    assert!(logged().contains("collector listening"), "READY=1 before the listener was up; log:\n{}", logged());

    let pings = notifications(&sock, Duration::from_millis(1500), |_| false);
    let n = pings.iter().filter(|m| *m == "WATCHDOG=1").count();
    assert!(n >= 4, "expected a WATCHDOG=1 about every 200 ms, got {n} in 1.5 s: {pings:?}");

    // A hung process (SIGSTOP) stops pinging: systemd would declare it failed after 400 ms.
    signal(pid, nix::sys::signal::Signal::SIGSTOP);
    let _ = notifications(&sock, Duration::from_millis(300), |_| false); // pings already in flight
    let silent = notifications(&sock, Duration::from_millis(1200), |_| false);
    signal(pid, nix::sys::signal::Signal::SIGCONT);
    assert!(silent.is_empty(), "a stopped collector still pinged the watchdog: {silent:?}");
    let resumed = notifications(&sock, Duration::from_secs(2), |m| m == "WATCHDOG=1");
    assert!(resumed.iter().any(|m| m == "WATCHDOG=1"), "pings did not resume after SIGCONT: {resumed:?}");

    // SIGHUP with a broken config: refused, logged, still running and still ready.
    let good = std::fs::read_to_string(&d.config).unwrap();
    std::fs::write(&d.config, format!("{good}\n[risk]\nsilent-yelow = \"1m\"\n")).unwrap();
    signal(pid, nix::sys::signal::Signal::SIGHUP);
    let got = notifications(&sock, Duration::from_secs(10), |m| m.starts_with("READY=1"));
    assert!(got.iter().any(|m| m.starts_with("RELOADING=1")), "no RELOADING=1 on SIGHUP: {got:?}");
    assert!(got.iter().any(|m| m.starts_with("READY=1")), "no READY=1 after a refused reload: {got:?}");
    let l = logged();
    assert!(l.contains("reload refused") && l.contains("silent-yelow"), "refused reload not explained; log:\n{l}");

    // SIGHUP with a valid change: the changed key is named.
    std::fs::write(&d.config, format!("{good}\n[risk]\nsilent-yellow = \"1m\"\n")).unwrap();
    signal(pid, nix::sys::signal::Signal::SIGHUP);
    let got = notifications(&sock, Duration::from_secs(10), |m| m.starts_with("READY=1"));
    assert!(got.iter().any(|m| m.starts_with("READY=1")), "no READY=1 after a reload: {got:?}");
    let l = logged();
    assert!(l.contains("reloaded") && l.contains("risk.silent-yellow"), "the changed key is not logged; log:\n{l}");

    // SIGTERM: STOPPING=1, then a clean exit.
    signal(pid, nix::sys::signal::Signal::SIGTERM);
    let got = notifications(&sock, Duration::from_secs(10), |m| m.starts_with("STOPPING=1"));
    assert!(got.iter().any(|m| m.starts_with("STOPPING=1")), "no STOPPING=1 on SIGTERM: {got:?}; log:\n{}", logged());
    assert!(proc.stop(), "the collector did not exit cleanly; log:\n{}", logged());
}

#[test]
fn the_agent_notifies_ready_and_feeds_the_watchdog_from_its_loop() {
    let d = Deployment::new("");
    let dev = d.issue("acme", "fw-1");
    let cfg = d.agent_config(&dev, "fw-1", "1s");
    let sock_path = d.dir.path().join("agent-notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    let child = Command::new(bin("ampel-agent"))
        .args(["run", "--config", cfg.to_str().unwrap()])
        .env("NOTIFY_SOCKET", &sock_path)
        .env("WATCHDOG_USEC", "400000")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut proc = Proc::adopt("agent", child);
    let got = notifications(&sock, Duration::from_secs(20), |m| m.starts_with("READY=1"));
    assert!(got.iter().any(|m| m.starts_with("READY=1")), "the agent sent no READY=1: {got:?}");
    let pings = notifications(&sock, Duration::from_millis(1500), |_| false);
    assert!(pings.iter().filter(|m| *m == "WATCHDOG=1").count() >= 4, "the agent does not feed the watchdog: {pings:?}");
    signal(pid, nix::sys::signal::Signal::SIGTERM);
    let got = notifications(&sock, Duration::from_secs(10), |m| m.starts_with("STOPPING=1"));
    assert!(got.iter().any(|m| m.starts_with("STOPPING=1")), "no STOPPING=1 on SIGTERM: {got:?}");
    proc.stop();
}

/// Serialises dpkg use by concurrent test runs on one machine (dpkg fails on a held lock).
fn dpkg_lock() -> nix::fcntl::Flock<std::fs::File> {
    let f = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open("/tmp/ampel-packaging-test.lock").unwrap();
    nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusive).map_err(|(_, e)| e).unwrap()
}

fn dpkg_version(dpkg_query: &Path, name: &str) -> Option<String> {
    let out = run(dpkg_query, &["-W", "-f", "${Status} ${Version}", name]);
    let s = String::from_utf8_lossy(&out.stdout).into_owned();
    s.strip_prefix("install ok installed ").map(str::to_owned)
}

/// Puts the store written by ampel-collector 0.1.0 (the collector crate's test fixture) in `dir`.
fn unpack_old_store(dir: &Path) {
    use std::io::Read;
    let gz = repo().join("collector/tests/fixtures/store-0.1.0/data.mdb.gz");
    let mut raw = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(&gz).unwrap()).read_to_end(&mut raw).unwrap();
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("data.mdb"), raw).unwrap();
}

/// What the installed collector says about the store: its devices and one metric, raw and by
/// the hour.
fn store_answers() -> String {
    let bin = Path::new("/usr/bin/ampel-collector");
    let conf = ["--config", "/etc/ampel/collector.toml"];
    let mut out = run_ok(bin, &[&conf[..], &["devices", "--json"]].concat());
    for step in [None, Some("1h"), Some("1m"), Some("1d")] {
        let mut a = vec!["query", "fw-1", "cpu.usage_percent", "--from", "2026-11-01T00:00:00Z", "--to", "2026-11-06T00:00:00Z"];
        a.extend(step.iter().flat_map(|s| ["--step", s]));
        out += &run_ok(bin, &[&conf[..], &a[..]].concat());
    }
    out
}

#[test]
fn deb_install_keeps_edited_config_and_data_across_upgrade_and_remove_and_purge_removes_config() {
    assert!(nix::unistd::Uid::effective().is_root(), "this test installs packages with dpkg and must run as root (CI does)");
    let dpkg = require("dpkg", "dpkg");
    let dpkg_query = require("dpkg-query", "dpkg");
    let analyze = require("systemd-analyze", "systemd");
    let _lock = dpkg_lock();
    let names = ["ampel-agent", "ampel-collector"];
    let v1: Vec<PathBuf> = names.iter().map(|n| package(n, "deb")).collect();

    // A newer build of the same binaries: the version comes from AMPEL_PKG_VERSION.
    let newer = tempfile::tempdir().unwrap();
    let out = Command::new(repo().join("packaging/build"))
        .args(["--no-build", "deb"])
        .env("AMPEL_PKG_VERSION", format!("{VERSION}+upgrade-1"))
        .env("AMPEL_PKG_OUT", newer.path())
        .env("AMPEL_PKG_FAST", "1")
        .output()
        .unwrap();
    assert!(out.status.success(), "packaging/build of the upgrade failed:\n{}", text(&out));
    let v2: Vec<PathBuf> = std::fs::read_dir(newer.path()).unwrap().filter_map(Result::ok).map(|e| e.path()).collect();
    assert_eq!(v2.len(), 2, "expected two upgrade packages, got {v2:?}");

    let had_state = Path::new("/var/lib/ampel").exists();
    let _ = run(&dpkg, &["--purge", "ampel-agent", "ampel-collector"]); // leftovers of an aborted run
    let args = |cmd: &str, files: &[PathBuf]| -> Vec<String> {
        std::iter::once(cmd.to_owned()).chain(files.iter().map(|f| f.display().to_string())).collect()
    };
    let dpkg_ok = |a: Vec<String>| run_ok(&dpkg, &a.iter().map(String::as_str).collect::<Vec<_>>());

    // Install: binaries, units, configs, the system user and the state directory.
    dpkg_ok(args("-i", &v1));
    for n in names {
        assert_eq!(dpkg_version(&dpkg_query, n).as_deref(), Some(format!("{VERSION}-1").as_str()), "{n} not installed");
        assert!(Path::new(&format!("/usr/bin/{n}")).exists(), "/usr/bin/{n} missing after install");
        let unit = ["/lib/systemd/system", "/usr/lib/systemd/system"]
            .iter()
            .map(|d| PathBuf::from(format!("{d}/{n}.service")))
            .find(|p| p.exists())
            .unwrap_or_else(|| panic!("{n}.service not installed"));
        let out = run(&analyze, &["verify", "--man=no", unit.to_str().unwrap()]);
        assert!(out.status.success() && out.stderr.is_empty(), "installed {}: {}", unit.display(), text(&out));
    }
    let passwd = run_ok(&require("getent", "libc-bin"), &["passwd", "ampel"]);
    assert!(passwd.contains("/var/lib/ampel"), "system user ampel not created: {passwd}");
    let meta = std::fs::metadata("/var/lib/ampel").expect("/var/lib/ampel created");
    use std::os::unix::fs::MetadataExt;
    assert_eq!(meta.uid(), passwd.split(':').nth(2).unwrap().parse::<u32>().unwrap(), "/var/lib/ampel not owned by ampel");
    let installed = run_ok(Path::new("/usr/bin/ampel-collector"), &["--config", "/etc/ampel/collector.toml", "check-config"]);
    assert!(installed.contains("ok"), "{installed}");

    // The admin edits the config; the service leaves data behind: a store as ampel-collector
    // 0.1.0 wrote it (collector/tests/fixtures/store-0.1.0), where the packaged config keeps it.
    let edited = std::fs::read_to_string("/etc/ampel/collector.toml").unwrap().replace("max-streams = 16", "max-streams = 32");
    std::fs::write("/etc/ampel/collector.toml", &edited).unwrap();
    std::fs::write("/var/lib/ampel/ampel-test-data", "keep me").unwrap();
    let store_existed = Path::new("/var/lib/ampel/store").exists();
    if !store_existed {
        unpack_old_store(Path::new("/var/lib/ampel/store"));
    }
    let before = store_answers();

    // Upgrade: new version, edited config and data untouched, the same answers from the store.
    dpkg_ok(args("-i", &v2));
    for n in names {
        assert_eq!(dpkg_version(&dpkg_query, n), Some(format!("{VERSION}+upgrade-1")), "{n} not upgraded");
    }
    assert_eq!(std::fs::read_to_string("/etc/ampel/collector.toml").unwrap(), edited, "the upgrade replaced the edited config");
    assert!(Path::new("/var/lib/ampel/ampel-test-data").exists(), "the upgrade lost data");
    if !store_existed {
        assert_eq!(store_answers(), before, "the store gives other answers after the upgrade");
        assert!(before.contains("\"points\": 17280"), "the 0.1.0 store's devices are not listed: {before}");
        assert!(before.contains("\"count\":60"), "the 0.1.0 store's hour buckets are missing: {before}");
    }

    // Remove: binaries go, config and data stay.
    dpkg_ok(vec!["--remove".into(), "ampel-agent".into(), "ampel-collector".into()]);
    assert!(!Path::new("/usr/bin/ampel-collector").exists(), "binary left after remove");
    assert_eq!(std::fs::read_to_string("/etc/ampel/collector.toml").ok().as_deref(), Some(edited.as_str()), "remove touched the config");
    assert!(Path::new("/var/lib/ampel/ampel-test-data").exists(), "remove lost data");

    // Purge: config goes, data stays (a CA and a security history are not deleted by accident).
    dpkg_ok(vec!["--purge".into(), "ampel-agent".into(), "ampel-collector".into()]);
    assert!(!Path::new("/etc/ampel/collector.toml").exists(), "purge left /etc/ampel/collector.toml");
    assert!(!Path::new("/etc/ampel/agent.toml").exists(), "purge left /etc/ampel/agent.toml");
    assert!(Path::new("/var/lib/ampel/ampel-test-data").exists(), "purge deleted data");

    let _ = std::fs::remove_file("/var/lib/ampel/ampel-test-data");
    if !store_existed {
        let _ = std::fs::remove_dir_all("/var/lib/ampel/store");
    }
    if !had_state {
        let _ = std::fs::remove_dir_all("/var/lib/ampel");
    }
}
