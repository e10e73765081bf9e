//! Device lifecycle with the real binaries: enrollment by one-time token, renewal under a
//! running stream, revocation that takes effect within seconds, a malformed CRL refused.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ampel_tests::{Cmd, Deployment, Proc, wait_until};

fn points(d: &Deployment, device: &str) -> u64 {
    d.device(device).and_then(|v| v["points"].as_u64()).unwrap_or(0)
}

/// An agent directory with a config naming ca.pem, device.pem and device.key that do not exist yet.
pub(crate) fn bare_agent(d: &Deployment, name: &str, interval: &str) -> (PathBuf, PathBuf) {
    let dir = d.dir.path().join("agents").join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("agent.toml");
    std::fs::write(
        &cfg,
        format!(
            "interval = \"{interval}\"\nstate-dir = \"state\"\n\n[collector]\ntransport = \"quic\"\naddress = \"127.0.0.1:{}\"\n\
             server-name = \"localhost\"\nca = \"ca.pem\"\ncert = \"device.pem\"\nkey = \"device.key\"\n\n\
             [sources.performance]\nenabled = true\nmounts = [\"/\"]\n",
            d.port
        ),
    )
    .unwrap();
    (dir, cfg)
}

pub(crate) fn token(d: &Deployment, tenant: &str, device: &str, ttl: &str) -> String {
    d.collector(&["pki", "token", "--tenant", tenant, "--device", device, "--ttl", ttl]).ok().trim().to_owned()
}

pub(crate) fn enroll(d: &Deployment, cfg: &Path, token: &str) -> std::process::Output {
    Cmd::new("ampel-agent")
        .args(["enroll", "--server", &format!("127.0.0.1:{}", d.port), "--token", token, "--config", cfg.to_str().unwrap()])
        .output()
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn a_device_enrolls_with_a_token_and_bad_tokens_are_refused() {
    let d = Deployment::new("[pki]\nenrolled-lifetime = \"1h\"\n");
    let mut collector = d.serve();
    let good = token(&d, "acme", "fw-1", "24h");
    assert!(good.starts_with("ampel1:acme:fw-1:"), "{good}");
    let fingerprint = good.rsplit(':').next().unwrap().to_owned();

    // A token whose CA fingerprint is wrong: the agent refuses the collector before sending it.
    let (_, cfg_pin) = bare_agent(&d, "pin", "250ms");
    let mut wrong_ca = good.clone();
    wrong_ca.replace_range(wrong_ca.len() - 64.., &"0".repeat(64));
    let out = enroll(&d, &cfg_pin, &wrong_ca);
    assert!(!out.status.success() && stderr(&out).contains("fingerprint"), "{}", stderr(&out));

    // Tampered secret and another tenant are refused and do not use the token up.
    let (_, cfg_bad) = bare_agent(&d, "bad", "250ms");
    let parts: Vec<&str> = good.split(':').collect();
    let tampered = format!("ampel1:acme:fw-1:{}:{}:{fingerprint}", parts[3], "f".repeat(64));
    let out = enroll(&d, &cfg_bad, &tampered);
    assert!(!out.status.success() && stderr(&out).contains("unknown token"), "{}", stderr(&out));
    let other_tenant = good.replacen(":acme:", ":globex:", 1);
    let out = enroll(&d, &cfg_bad, &other_tenant);
    assert!(!out.status.success() && stderr(&out).contains("another tenant"), "{}", stderr(&out));
    assert!(!cfg_bad.with_file_name("device.key").exists(), "no key is kept after a refusal");

    // The real thing.
    let (dir, cfg) = bare_agent(&d, "fw-1", "250ms");
    let out = enroll(&d, &cfg, &good);
    assert!(out.status.success(), "enroll failed:\n{}\ncollector:\n{}", stderr(&out), collector.log());
    let key_mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(dir.join("device.key")).unwrap().permissions());
    assert_eq!(key_mode & 0o777, 0o600);
    assert!(dir.join("state/cert-expires-at").exists());
    assert!(!collector.log().contains(&parts[4][..16]), "the secret must never be logged");

    // Replayed (from another device directory): refused.
    let (_, cfg_replay) = bare_agent(&d, "replay", "250ms");
    let out = enroll(&d, &cfg_replay, &good);
    assert!(!out.status.success() && stderr(&out).contains("already used"), "{}", stderr(&out));

    // Expired.
    let short = token(&d, "acme", "fw-3", "1s");
    std::thread::sleep(Duration::from_millis(2100));
    let out = enroll(&d, &cfg_replay, &short);
    assert!(!out.status.success() && stderr(&out).contains("expired"), "{}", stderr(&out));

    // The enrolled agent streams under the token's tenant.
    let mut agent = Proc::start("ampel-agent", "fw-1", &["run", "--config", cfg.to_str().unwrap()]);
    let arrived = wait_until(Duration::from_secs(30), || (points(&d, "fw-1") >= 5).then_some(()));
    assert!(arrived.is_some(), "no points\nagent:\n{}\ncollector:\n{}", agent.log(), collector.log());
    assert_eq!(d.device("fw-1").unwrap()["tenant"], "acme");
    agent.stop();
    collector.stop();
}

#[test]
fn an_agent_renews_its_short_lived_certificate_without_restart_or_gap() {
    // 15 s certificates: renewal every 10 s.
    let d = Deployment::new("[pki]\nenrolled-lifetime = \"15s\"\n");
    let mut collector = d.serve();
    let (dir, cfg) = bare_agent(&d, "fw-1", "250ms");
    let out = enroll(&d, &cfg, &token(&d, "acme", "fw-1", "1h"));
    assert!(out.status.success(), "{}", stderr(&out));
    let first_cert = std::fs::read(dir.join("device.pem")).unwrap();
    let mut agent = Proc::start("ampel-agent", "fw-1", &["run", "--config", cfg.to_str().unwrap()]);

    // Sample the point count for 40 s: past two renewals and past the first certificate's expiry.
    let start = Instant::now();
    let mut last = (Instant::now(), 0u64);
    let mut longest_stall = Duration::ZERO;
    while start.elapsed() < Duration::from_secs(40) {
        let p = points(&d, "fw-1");
        if p > last.1 {
            last = (Instant::now(), p);
        } else if last.1 > 0 {
            longest_stall = longest_stall.max(last.0.elapsed());
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let log = agent.log();
    let renewals = log.matches("certificate renewed").count();
    assert!(renewals >= 2, "expected two renewals in 40 s, saw {renewals}\nagent:\n{log}\ncollector:\n{}", collector.log());
    assert_ne!(std::fs::read(dir.join("device.pem")).unwrap(), first_cert, "the certificate file was replaced");
    assert!(longest_stall < Duration::from_secs(5), "data stalled for {longest_stall:?}\nagent:\n{log}");
    assert!(collector.log().matches("agent connected").count() >= 3, "reconnected with each new certificate:\n{}", collector.log());
    assert!(!log.contains("agent started") || log.matches("agent started").count() == 1, "no restart");
    assert!(agent.stop(), "agent did not stop cleanly:\n{}", agent.log());
    collector.stop();
}

#[test]
fn a_revoked_device_is_refused_within_seconds_and_a_malformed_crl_keeps_the_old_one() {
    let d = Deployment::new("");
    let dev1 = d.issue("acme", "fw-1");
    let dev2 = d.issue("acme", "fw-2");
    let mut collector = d.serve();
    let mut a1 = d.agent(&dev1, "fw-1", "250ms");
    let mut a2 = d.agent(&dev2, "fw-2", "250ms");
    let both = wait_until(Duration::from_secs(30), || (points(&d, "fw-1") > 0 && points(&d, "fw-2") > 0).then_some(()));
    assert!(both.is_some(), "agents did not start streaming\n{}\n{}", a1.log(), a2.log());

    let out = d.collector(&["pki", "revoke", "--device", "fw-1"]).ok();
    assert!(out.contains("revoked 1 certificate"), "{out}");
    let revoked_at = Instant::now();
    collector.wait_for_log("closing session", Duration::from_secs(10));
    assert!(revoked_at.elapsed() < Duration::from_secs(10));
    std::thread::sleep(Duration::from_secs(2));
    let frozen = points(&d, "fw-1");
    let before = points(&d, "fw-2");
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(points(&d, "fw-1"), frozen, "a revoked device must not deliver\n{}", a1.log());
    assert!(points(&d, "fw-2") > before, "the other device keeps streaming\n{}", a2.log());

    // A malformed CRL is refused; the revocation stays in force, fw-2 keeps going.
    std::fs::write(d.pki_dir().join("crl.pem"), "-----BEGIN X509 CRL-----\nbm90IGEgQ1JM\n-----END X509 CRL-----\n").unwrap();
    collector.wait_for_log("keeping the trust in force", Duration::from_secs(10));
    let before = points(&d, "fw-2");
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(points(&d, "fw-1"), frozen, "the old CRL still applies\n{}", a1.log());
    assert!(points(&d, "fw-2") > before, "the other device keeps streaming\n{}", a2.log());
    let log = a1.log().to_lowercase();
    assert!(log.contains("revoked"), "the agent says why it is refused:\n{}", a1.log());
    a1.stop();
    a2.stop();
    collector.stop();
}

#[test]
fn a_ca_rollover_keeps_both_anchors_trusted_and_agents_switch_without_restart() {
    let openssl = ampel_tests::require("openssl", "openssl");
    // 12 s certificates: renewal every 8 s.
    let d = Deployment::new("[pki]\nenrolled-lifetime = \"12s\"\n");
    let old_dev = d.issue("acme", "fw-2");
    let mut collector = d.serve();
    let (dir, cfg) = bare_agent(&d, "fw-1", "250ms");
    let out = enroll(&d, &cfg, &token(&d, "acme", "fw-1", "1h"));
    assert!(out.status.success(), "{}", stderr(&out));
    let mut agent = Proc::start("ampel-agent", "fw-1", &["run", "--config", cfg.to_str().unwrap()]);
    assert!(wait_until(Duration::from_secs(30), || (points(&d, "fw-1") > 0).then_some(())).is_some(), "{}", agent.log());
    let renewals = |a: &Proc| a.log().matches("certificate renewed").count();

    // Step 1: the next CA. The agent learns it at its next renewal.
    let out = d.collector(&["pki", "rollover", "--start"]).ok();
    assert!(out.contains("next CA created"), "{out}");
    let seen = renewals(&agent);
    assert!(wait_until(Duration::from_secs(20), || (renewals(&agent) > seen).then_some(())).is_some(), "no renewal:\n{}", agent.log());
    let ca_text = std::fs::read_to_string(dir.join("ca.pem")).unwrap();
    assert_eq!(ca_text.matches("BEGIN CERTIFICATE").count(), 2, "the agent trusts both CAs now");

    // Step 2: the next CA becomes current; the server certificate changes under the running
    // collector and the agent's next renewal brings a certificate of the new CA.
    let out = d.collector(&["pki", "rollover", "--finish"]).ok();
    assert!(out.contains("now current"), "{out}");
    let seen = renewals(&agent);
    assert!(
        wait_until(Duration::from_secs(20), || (renewals(&agent) > seen).then_some(())).is_some(),
        "no renewal after finish:\n{}\ncollector:\n{}",
        agent.log(),
        collector.log()
    );
    let new_ca = d.pki_dir().join("ca.pem");
    let verify = std::process::Command::new(&openssl)
        .args(["verify", "-CAfile", new_ca.to_str().unwrap(), dir.join("device.pem").to_str().unwrap()])
        .output()
        .unwrap();
    assert!(verify.status.success(), "the renewed certificate is issued by the new CA: {}", String::from_utf8_lossy(&verify.stdout));
    let before = points(&d, "fw-1");
    std::thread::sleep(Duration::from_secs(3));
    assert!(points(&d, "fw-1") > before, "the agent keeps streaming after the rollover\n{}", agent.log());
    assert_eq!(agent.log().matches("agent started").count(), 1, "no restart");

    // A device certificate of the previous CA is still accepted on a new connection.
    let addr = format!("127.0.0.1:{}", d.port).parse().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let batch = ampel_protocol::Batch { version: ampel_protocol::PROTOCOL_VERSION, seq: 1, sender: None, records: vec![] };
    let acks = rt
        .block_on(ampel_tests::send_batches(
            addr,
            &new_ca,
            &old_dev.join("fw-2.pem"),
            &old_dev.join("fw-2.key"),
            std::slice::from_ref(&batch),
        ))
        .unwrap_or_else(|e| panic!("{e}\ncollector:\n{}", collector.log()));
    assert_eq!(acks[0].status, ampel_protocol::AckStatus::Committed);

    // Ending the window: certificates of the previous CA are refused from then on.
    let reloads = |c: &Proc| c.log().matches("reloaded CA and CRL").count();
    let seen = reloads(&collector);
    std::fs::remove_file(d.pki_dir().join("ca-previous.pem")).unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || (reloads(&collector) > seen).then_some(())).is_some(),
        "no reload:\n{}",
        collector.log()
    );
    let refused = rt.block_on(ampel_tests::send_batches(
        addr,
        &new_ca,
        &old_dev.join("fw-2.pem"),
        &old_dev.join("fw-2.key"),
        &[ampel_protocol::Batch { seq: 2, ..batch }],
    ));
    assert!(refused.is_err(), "a certificate of the dropped CA must be refused: {refused:?}");
    let before = points(&d, "fw-1");
    std::thread::sleep(Duration::from_secs(2));
    assert!(points(&d, "fw-1") > before, "the renewed agent is unaffected\n{}", agent.log());
    agent.stop();
    collector.stop();
}

#[test]
fn anonymous_peers_get_no_data_channel_and_hostile_enrollment_is_refused_early() {
    use ampel_protocol::enroll::{self, ALPN_ENROLL, EnrollRequest, EnrollResponse};
    let d = Deployment::new("");
    let mut collector = d.serve();
    let addr = format!("127.0.0.1:{}", d.port).parse().unwrap();
    let ca = d.pki_dir().join("ca.pem");
    let rt = tokio::runtime::Runtime::new().unwrap();

    // The data ALPN without a client certificate: closed before anything is read.
    let batch = ampel_protocol::Batch { version: ampel_protocol::PROTOCOL_VERSION, seq: 1, sender: Some("fw-1".into()), records: vec![] };
    let framed = ampel_protocol::frame::encode_frame(&ampel_protocol::codec::encode_batch(&batch).unwrap(), &Default::default()).unwrap();
    let r = rt.block_on(ampel_tests::anonymous(addr, &ca, ampel_protocol::ALPN_DATA, framed));
    assert!(r.is_err(), "an anonymous data connection must be refused: {r:?}");
    assert!(d.device("fw-1").is_none(), "nothing stored");

    // A 4 GiB length prefix on the enroll ALPN: refused from the header alone.
    let r = rt.block_on(ampel_tests::anonymous(addr, &ca, ALPN_ENROLL, vec![0xff; 4])).unwrap();
    let body = r.get(ampel_protocol::frame::HEADER_LEN..).unwrap();
    match enroll::decode_response(body).unwrap() {
        EnrollResponse::Refused(reason) => assert!(reason.contains("exceeds the limit"), "{reason}"),
        other => panic!("{other:?}"),
    }

    // Renewal without a certificate is refused; and past the per-address quota, the collector
    // stops answering this address.
    let renew = enroll::encode(&EnrollRequest::Renew { csr: vec![1, 2, 3] }).unwrap();
    let renew = ampel_protocol::frame::encode_frame(&renew, &enroll::ENROLL_LIMITS).unwrap();
    let mut outcomes = Vec::new();
    for _ in 0..12 {
        outcomes.push(rt.block_on(ampel_tests::anonymous(addr, &ca, ALPN_ENROLL, renew.clone())));
    }
    let first = outcomes[0].as_ref().unwrap();
    assert!(
        matches!(enroll::decode_response(&first[4..]).unwrap(), EnrollResponse::Refused(r) if r.contains("current client certificate"))
    );
    assert!(outcomes.last().unwrap().is_err(), "the 12th request within a minute gets no answer: {:?}", outcomes.last());
    assert!(collector.log().contains("too many requests"), "{}", collector.log());
    collector.stop();
}
