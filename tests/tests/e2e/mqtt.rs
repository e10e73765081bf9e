//! MQTT end to end: agent -> real mosquitto (started with the shipped
//! `packaging/mosquitto/ampel.conf`) -> collector, with mutual TLS everywhere.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use ampel_tests::{Deployment, Proc, free_tcp_port, require, wait_until};

use crate::spool::{assert_exactly_once, counter_config, points, start_ms};

/// A mosquitto running the shipped config, templated to a temporary directory and a port.
pub struct Broker {
    pub port: u16,
    /// Holds the templated config, certificates and persistence; removed on drop.
    _dir: tempfile::TempDir,
    conf: PathBuf,
    proc: Option<Proc>,
}

impl Broker {
    /// Copies the deployment's CA and server certificate next to the templated config.
    pub fn new(d: &Deployment) -> Broker {
        Broker::with_config(d, "", "")
    }

    /// [`Broker::new`] with `extra` appended to the shipped config (e.g. a bridge) and `acl` to
    /// the shipped ACL.
    pub fn with_config(d: &Deployment, extra: &str, acl: &str) -> Broker {
        require("mosquitto", "mosquitto");
        let dir = tempfile::tempdir().unwrap();
        let port = free_tcp_port();
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().join("packaging/mosquitto");
        let etc = dir.path().join("etc");
        let var = dir.path().join("var");
        std::fs::create_dir_all(&etc).unwrap();
        std::fs::create_dir_all(&var).unwrap();
        for f in ["ca.pem", "server.pem", "server.key", "crl.pem"] {
            std::fs::copy(d.pki_dir().join(f), etc.join(f)).unwrap();
        }
        let shipped_acl = std::fs::read_to_string(root.join("ampel.acl")).expect("packaging/mosquitto/ampel.acl");
        std::fs::write(etc.join("ampel.acl"), format!("{shipped_acl}\n{acl}")).unwrap();
        let shipped = std::fs::read_to_string(root.join("ampel.conf")).expect("packaging/mosquitto/ampel.conf");
        assert!(shipped.contains("listener 8883\n"), "the shipped config changed its listener line; update the test");
        let mut conf = shipped
            .replace("listener 8883\n", &format!("listener {port} 127.0.0.1\n"))
            .replace("/etc/ampel/mosquitto/", &format!("{}/", etc.display()))
            .replace("/var/lib/ampel/mosquitto/", &format!("{}/", var.display()));
        // Started as root, mosquitto would drop to the `mosquitto` user, who cannot read our
        // private temporary directory.
        if nix::unistd::Uid::effective().is_root() {
            conf.push_str("user root\n");
        }
        conf.push_str(extra);
        let path = dir.path().join("ampel.conf");
        std::fs::write(&path, conf).unwrap();
        let mut b = Broker { port, _dir: dir, conf: path, proc: None };
        b.start();
        b
    }

    /// Starts mosquitto and waits until it accepts TCP connections.
    pub fn start(&mut self) {
        let child = Command::new(require("mosquitto", "mosquitto"))
            .args(["-c", self.conf.to_str().unwrap()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mosquitto");
        self.proc = Some(Proc::adopt("mosquitto", child));
        let up = wait_until(Duration::from_secs(10), || std::net::TcpStream::connect(("127.0.0.1", self.port)).ok());
        assert!(up.is_some(), "mosquitto did not listen on {} within 10 s (config {})", self.port, self.conf.display());
    }

    /// Kills the broker with SIGKILL: what it had not saved yet is gone.
    pub fn kill9(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.kill9();
        }
    }

    /// Orderly stop (SIGTERM: mosquitto writes its persistence file).
    pub fn stop(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.stop();
        }
    }
}

/// Issues the collector's broker client certificate (CN ampel-collector, not registered as a
/// device) and enables `[mqtt]` in the collector config.
pub fn enable_mqtt(d: &Deployment, broker: &Broker) {
    let pki = ampel_collector::pki::Pki::open(&d.pki_dir()).unwrap();
    let files = pki
        .issue_device(&"ampel".parse().unwrap(), &"ampel-collector".parse().unwrap(), 1)
        .unwrap()
        .write_to(&d.dir.path().join("collector-mqtt"))
        .unwrap();
    let mut text = std::fs::read_to_string(&d.config).unwrap();
    text.push_str(&format!(
        "\n[mqtt]\nbroker = \"127.0.0.1:{}\"\ncert = \"{}\"\nkey = \"{}\"\n",
        broker.port,
        files.cert.display(),
        files.key.display()
    ));
    std::fs::write(&d.config, text).unwrap();
}

#[test]
fn mqtt_restarting_the_broker_with_the_collector_away_loses_nothing_and_stores_nothing_twice() {
    const TOTAL: u64 = 20_000;
    let d = Deployment::new("");
    let dev = d.issue("acme", "fw-1");
    let mut broker = Broker::new(&d);
    enable_mqtt(&d, &broker);
    // The collector's first visit creates its persistent session; then it goes away.
    let mut collector = d.serve();
    collector.wait_for_log("connected to MQTT broker", Duration::from_secs(20));
    std::thread::sleep(Duration::from_millis(300));
    assert!(collector.stop());
    let start = start_ms();
    let cfg = counter_config(&dev, "fw-1", "mqtt", &format!("127.0.0.1:{}", broker.port), TOTAL, start);
    let mut agent = Proc::start("ampel-agent", "fw-1", &["run", "--config", cfg.to_str().unwrap()]);
    agent.wait_for_log("connected to MQTT broker", Duration::from_secs(20));
    std::thread::sleep(Duration::from_millis(1500));
    broker.stop();
    // The agent keeps spooling while the broker is down, and is killed once for good measure.
    std::thread::sleep(Duration::from_millis(700));
    agent.kill9();
    broker.start();
    let mut agent = Proc::start("ampel-agent", "fw-1", &["run", "--config", cfg.to_str().unwrap()]);
    std::thread::sleep(Duration::from_secs(2));
    let mut collector = d.serve();
    let done = wait_until(Duration::from_secs(60), || (points(&d, "fw-1") >= TOTAL).then_some(()));
    assert!(
        done.is_some(),
        "only {} of {TOTAL} points\nagent log:\n{}\ncollector log:\n{}",
        points(&d, "fw-1"),
        agent.log(),
        collector.log()
    );
    std::thread::sleep(Duration::from_millis(500));
    assert!(agent.stop(), "{}", agent.log());
    assert!(collector.stop(), "{}", collector.log());
    assert_exactly_once(&d, "fw-1", start, TOTAL);
}

#[test]
fn mqtt_tenant_matrix_foreign_topics_are_refused_and_nothing_is_stored() {
    let d = Deployment::new("");
    let dev1 = d.issue("acme", "fw-1");
    d.issue("globex", "fw-2");
    let broker = Broker::new(&d);
    enable_mqtt(&d, &broker);
    let mut collector = d.serve();
    collector.wait_for_log("connected to MQTT broker", Duration::from_secs(20));
    let batch = ampel_protocol::codec::encode_batch(&ampel_protocol::Batch {
        version: ampel_protocol::PROTOCOL_VERSION,
        seq: 1,
        sender: None,
        records: vec![ampel_protocol::Record::Metric(ampel_protocol::Metric {
            ts: start_ms(),
            name: "cpu.usage_percent".into(),
            labels: vec![],
            value: 1.0,
        })],
    })
    .unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    // fw-1 on fw-2's topic: the broker's ACL refuses (MQTT 3.1.1 still PUBACKs, and drops it).
    // fw-1 on its own id under another tenant: the broker lets it through, the collector refuses.
    for topic in ["ampel/v1/globex/fw-2/up", "ampel/v1/globex/fw-1/up"] {
        rt.block_on(ampel_tests::mqtt_publish(
            broker.port,
            &dev1.join("ca.pem"),
            &dev1.join("fw-1.pem"),
            &dev1.join("fw-1.key"),
            "fw-1",
            topic,
            batch.clone(),
        ))
        .unwrap_or_else(|e| panic!("publish on {topic}: {e}"));
    }
    collector.wait_for_log("MQTT message refused", Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(500));
    assert!(collector.stop());
    let log = collector.log();
    assert!(log.contains("published under tenant globex, but is registered to acme"), "{log}");
    assert_eq!(log.matches("MQTT message refused").count(), 1, "only the tenant-level message reaches the collector:\n{log}");
    assert_eq!(points(&d, "fw-1"), 0);
    assert_eq!(points(&d, "fw-2"), 0);
}
