//! Bad configuration: the error names file, line and key, and the exit code is 78.

use ampel_tests::{Cmd, Deployment};

#[test]
fn a_typo_in_the_collector_config_names_file_line_and_key_and_exits_78() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("collector.toml");
    std::fs::write(&cfg, "data-dir = \"/tmp/x\"\n\n[risk]\nsilent-yelow = \"10m\"\n").unwrap();
    let out = Cmd::new("ampel-collector").args(["--config", cfg.to_str().unwrap(), "check-config"]).output();
    assert_eq!(out.status.code(), Some(78));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("{}:4", cfg.display())) && err.contains("risk.silent-yelow"), "{err}");
}

#[test]
fn a_bad_value_in_the_collector_config_is_named_and_exits_78() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("collector.toml");
    std::fs::write(&cfg, "[report]\ntime-zone = \"Europe/Atlantis\"\n").unwrap();
    let out = Cmd::new("ampel-collector").args(["--config", cfg.to_str().unwrap(), "serve"]).output();
    assert_eq!(out.status.code(), Some(78));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(":2") && err.contains("report.time-zone") && err.contains("IANA"), "{err}");
}

#[test]
fn a_typo_in_the_agent_config_names_file_line_and_key_and_exits_78() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("agent.toml");
    std::fs::write(&cfg, "interval = \"1s\"\nintervall = \"2s\"\n").unwrap();
    let out = Cmd::new("ampel-agent").args(["check-config", "--config", cfg.to_str().unwrap()]).output();
    assert_eq!(out.status.code(), Some(78));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("agent.toml") && err.contains("intervall") && err.contains('2'), "{err}");
}

#[test]
fn unreadable_certificate_files_are_named() {
    let d = Deployment::new("");
    let dev = d.issue("acme", "fw-1");
    std::fs::remove_file(dev.join("fw-1.key")).unwrap();
    let cfg = d.agent_config(&dev, "fw-1", "1s");
    let out = Cmd::new("ampel-agent").args(["check-config", "--config", cfg.to_str().unwrap()]).output();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&dev.join("fw-1.key").display().to_string()), "{err}");

    // The collector without its CA files names the missing file.
    std::fs::remove_file(d.pki_dir().join("server.key")).unwrap();
    let out = d.collector(&["serve"]).output();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&d.pki_dir().join("server.key").display().to_string()), "{err}");
}

/// `check-config` refuses a bad `[[suppress]]` entry naming the entry (or the line and key)
/// and exits 78; a good one passes.
#[test]
fn a_bad_suppression_is_named_and_exits_78() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("collector.toml");
    let base = format!(
        "data-dir = \"{}\"\n[[suppress]]\ntenant = \"acme\"\nreason = \"scanner\"\nsignature-id = 1\n\n[[suppress]]\ntenant = \"acme\"\nreason = \"lab\"\n",
        dir.path().join("data").display()
    );
    let check = |extra: &str| {
        std::fs::write(&cfg, format!("{base}{extra}")).unwrap();
        let out = Cmd::new("ampel-collector").args(["--config", cfg.to_str().unwrap(), "check-config"]).output();
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    for (extra, what) in [
        ("rule = \"threats.ids\"\n", "[[suppress]] #2 (tenant acme): key \"rule\": unknown rule \"threats.ids\""),
        ("", "[[suppress]] #2 (tenant acme): nothing to match"),
        ("source = \"10.1.0.0/8\"\n", ":10: key \"suppress.source\""),
        ("signature-id = 2\nuntil = \"someday\"\n", ":11: key \"suppress.until\""),
    ] {
        let (code, err) = check(extra);
        assert_eq!(code, Some(78), "{extra}: {err}");
        assert!(err.contains(what), "{extra}: {err}");
    }
    let (code, err) = check("source = \"2001:db8::/32\"\nuntil = 2027-01-31\n");
    assert_eq!(code, Some(0), "{err}");
}
