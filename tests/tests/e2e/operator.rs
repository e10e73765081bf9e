//! What an operator reads: log lines without colour codes when stderr is not a terminal (a
//! file, the journal), and `mail test` errors that name the likely fix.

use std::process::{Command, Stdio};
use std::time::Duration;

use ampel_tests::{Deployment, Smtp, bin, wait_until};

/// Runs `bin args` with stderr going to a file until `needle` shows up in it, then stops it
/// and returns the file's text.
fn run_logging_to_file(dir: &std::path::Path, name: &str, args: &[&str], needle: &str) -> String {
    let log = dir.join(format!("{name}.log"));
    let file = std::fs::File::create(&log).unwrap();
    let mut child = Command::new(bin(name))
        .args(args)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(file))
        .spawn()
        .unwrap();
    let text = wait_until(Duration::from_secs(30), || std::fs::read_to_string(&log).ok().filter(|t| t.contains(needle)));
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGTERM);
    let _ = child.wait();
    let all = std::fs::read_to_string(&log).unwrap();
    assert!(text.is_some(), "{name} did not log {needle:?}:\n{all}");
    all
}

#[test]
fn stderr_to_a_file_has_no_escape_codes_for_both_binaries() {
    let d = Deployment::new("");
    let device = d.issue("acme", "fw-1");
    let config = d.config.to_str().unwrap().to_owned();
    let collector = run_logging_to_file(d.dir.path(), "ampel-collector", &["--config", &config, "serve"], "collector listening");
    assert!(collector.contains("INFO") && collector.contains("addr="), "{collector}");
    assert!(!collector.contains('\u{1b}'), "colour codes in a log file:\n{collector:?}");
    // The collector is stopped: the agent logs its failing connection attempts.
    let agent_cfg = d.agent_config(&device, "fw-1", "1s");
    let agent = run_logging_to_file(d.dir.path(), "ampel-agent", &["run", "--config", agent_cfg.to_str().unwrap()], "WARN");
    assert!(agent.contains("WARN"), "{agent}");
    assert!(!agent.contains('\u{1b}'), "colour codes in a log file:\n{agent:?}");
}

#[test]
fn mail_test_with_tls_against_a_plain_port_names_the_fix() {
    let mail = tempfile::tempdir().unwrap();
    let smtp = Smtp::start(&mail.path().join("Maildir"), None);
    let d = Deployment::new(&smtp.mail_config().replace("security = \"none\"", "security = \"tls\""));
    let out = d.collector(&["mail", "test"]).output();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("TLS handshake") && err.contains("try security = \"starttls\"") && err.contains("security = \"none\""), "{err}");
    // The right setting works.
    let fixed = d.collector(&["mail", "test"]);
    std::fs::write(&d.config, std::fs::read_to_string(&d.config).unwrap().replace("security = \"tls\"", "security = \"none\"")).unwrap();
    assert!(fixed.ok().contains("server ready"));
}
