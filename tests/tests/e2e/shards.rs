//! Fleets across collectors (`[cluster]`): each shard stores only its tenants, and a QUIC agent
//! that reaches the wrong shard is sent to the right one and loses nothing.

use std::time::Duration;

use ampel_tests::{Deployment, Proc, free_tcp_port, free_udp_port, http_request, wait_until};

use crate::hostile::metric;
use crate::spool::{assert_exactly_once, counter_config, points, start_ms};

/// The shard map both collectors read: eu-1 owns acme, eu-2 owns globex.
fn cluster(own: &str, eu1: u16, eu2: u16) -> String {
    format!(
        "[cluster]\nshard = \"{own}\"\n\n\
         [[cluster.shards]]\nname = \"eu-1\"\nquic = \"127.0.0.1:{eu1}\"\ntenants = [\"acme\"]\n\n\
         [[cluster.shards]]\nname = \"eu-2\"\nquic = \"127.0.0.1:{eu2}\"\ntenants = [\"globex\"]\n"
    )
}

/// Two collectors sharing one CA (the second reads the first's PKI directory); `eu1` serves
/// HTTP on `http` for `/metrics`.
fn two_shards(http: u16) -> (Deployment, Deployment) {
    let eu1 = Deployment::new(&format!("[http]\nlisten = \"127.0.0.1:{http}\"\n\n"));
    let eu2_port = free_udp_port();
    let mut text = std::fs::read_to_string(&eu1.config).unwrap();
    text.push_str(&cluster("eu-1", eu1.port, eu2_port));
    std::fs::write(&eu1.config, text).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("collector.toml");
    let pki = eu1.pki_dir();
    let own = format!(
        "data-dir = \"data\"\n\n[quic]\nlisten = \"127.0.0.1:{eu2_port}\"\n\n[pki]\ndir = \"{}\"\n\n{}",
        pki.display(),
        cluster("eu-2", eu1.port, eu2_port)
    );
    std::fs::write(&config, own).unwrap();
    (eu1, Deployment { dir, config, port: eu2_port })
}

#[test]
fn a_quic_agent_pointed_at_the_wrong_shard_ends_up_at_its_own_and_loses_nothing() {
    const TOTAL: u64 = 20_000;
    let http = free_tcp_port();
    let (eu1, eu2) = two_shards(http);
    eu1.collector(&["check-config"]).ok();
    eu2.collector(&["check-config"]).ok();
    let dev = eu1.issue("globex", "fw-g");
    let start = start_ms();
    // Configured with eu-1, which does not own globex.
    let cfg = counter_config(&dev, "fw-g", "quic", &format!("127.0.0.1:{}", eu1.port), TOTAL, start);
    let cfg = cfg.to_str().unwrap();
    let (mut c1, mut c2) = (eu1.serve(), eu2.serve());
    let mut agent = Proc::start("ampel-agent", "fw-g", &["run", "--config", cfg]);
    let done = wait_until(Duration::from_secs(90), || (points(&eu2, "fw-g") >= TOTAL).then_some(()));
    assert!(
        done.is_some(),
        "only {} of {TOTAL} points at eu-2\nagent log:\n{}\neu-1 log:\n{}",
        points(&eu2, "fw-g"),
        agent.log(),
        c1.log()
    );
    assert!(agent.log().contains("collector sent us to the shard owning our tenant"), "{}", agent.log());
    let (_, body) = http_request(http, "GET", "/metrics", "").unwrap();
    assert!(metric(&body, "ampel_ingest_foreign_tenant_total").is_some_and(|n| n >= 1), "{body}");
    assert!(agent.stop(), "{}", agent.log());

    // Restarted, the agent goes straight to eu-2: eu-1 refuses no second connection.
    let refused = metric(&http_request(http, "GET", "/metrics", "").unwrap().1, "ampel_ingest_foreign_tenant_total");
    let mut again = Proc::start("ampel-agent", "fw-g", &["run", "--config", cfg]);
    again.wait_for_log("connected to collector", Duration::from_secs(20));
    assert!(again.log().contains("connecting to the shard a collector sent us to earlier"), "{}", again.log());
    let after = metric(&http_request(http, "GET", "/metrics", "").unwrap().1, "ampel_ingest_foreign_tenant_total");
    assert_eq!(after, refused, "the restarted agent knocked at eu-1 again");
    assert!(again.stop(), "{}", again.log());

    assert!(c1.stop() && c2.stop());
    // `pki issue` registered the device at eu-1; no batch of it may have been stored there.
    assert_eq!(points(&eu1, "fw-g"), 0, "eu-1 stored a batch of globex");
    assert_exactly_once(&eu2, "fw-g", start, TOTAL);
}

#[test]
fn check_config_refuses_a_tenant_with_two_shards() {
    let d = Deployment::new("");
    let mut text = std::fs::read_to_string(&d.config).unwrap();
    text.push_str(
        "[cluster]\nshard = \"eu-1\"\n\n\
         [[cluster.shards]]\nname = \"eu-1\"\nquic = \"eu-1.example.net:4433\"\ntenants = [\"acme\"]\n\n\
         [[cluster.shards]]\nname = \"eu-2\"\nquic = \"eu-2.example.net:4433\"\ntenants = [\"globex\", \"acme\"]\n",
    );
    std::fs::write(&d.config, text).unwrap();
    let out = d.collector(&["check-config"]).output();
    assert_eq!(out.status.code(), Some(78), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("collector.toml:") && stderr.contains("tenant \"acme\" is owned by both \"eu-1\" and \"eu-2\""), "{stderr}");
}
