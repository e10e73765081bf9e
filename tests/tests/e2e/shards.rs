//! Fleets across collectors (`[cluster]`): each shard stores only its tenants, and a QUIC agent
//! that reaches the wrong shard is sent to the right one and loses nothing.

use std::time::Duration;

use ampel_tests::{Deployment, Proc, free_tcp_port, free_udp_port, http_request, wait_until};

use crate::hostile::metric;
use crate::mqtt::Broker;
use crate::spool::{assert_exactly_once, counter_config, points, start_ms};

/// The shard map both collectors read: eu-1 owns acme and globex, eu-2 initech and umbrella.
pub(crate) fn cluster(own: &str, eu1: u16, eu2: u16) -> String {
    format!(
        "[cluster]\nshard = \"{own}\"\n\n\
         [[cluster.shards]]\nname = \"eu-1\"\nquic = \"127.0.0.1:{eu1}\"\ntenants = [\"acme\", \"globex\"]\n\n\
         [[cluster.shards]]\nname = \"eu-2\"\nquic = \"127.0.0.1:{eu2}\"\ntenants = [\"initech\", \"umbrella\"]\n"
    )
}

/// Two collectors sharing one CA (the second reads the first's PKI directory); `eu1` serves
/// HTTP on `http` for `/metrics`.
pub(crate) fn two_shards(http: u16) -> (Deployment, Deployment) {
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
    let dev = eu1.issue("initech", "fw-g");
    let start = start_ms();
    // Configured with eu-1, which does not own initech.
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
    assert_eq!(points(&eu1, "fw-g"), 0, "eu-1 stored a batch of initech");
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

/// The ACL lines that let the bridges' certificate (CN ampel-bridge) carry every uplink.
const BRIDGE_ACL: &str = "user ampel-bridge\ntopic readwrite ampel/v1/#\n";

/// A mosquitto bridge from a leaf broker to the hub: every uplink both ways, QoS 1, with a
/// persistent bridge session and mutual TLS.
fn bridge(name: &str, hub: u16, ca: &std::path::Path, files: &ampel_collector::pki::DeviceFiles) -> String {
    format!(
        "\nconnection {name}\naddress 127.0.0.1:{hub}\ntopic ampel/v1/# both 1\ncleansession false\n\
         remote_clientid {name}\nlocal_clientid {name}-local\ntry_private true\n\
         bridge_cafile {}\nbridge_certfile {}\nbridge_keyfile {}\n",
        ca.display(),
        files.cert.display(),
        files.key.display()
    )
}

/// `[mqtt]` for a collector at `broker` with the shared reader certificate.
pub(crate) fn mqtt_section(broker: u16, files: &ampel_collector::pki::DeviceFiles) -> String {
    format!("\n[mqtt]\nbroker = \"127.0.0.1:{broker}\"\ncert = \"{}\"\nkey = \"{}\"\n", files.cert.display(), files.key.display())
}

fn append(path: &std::path::Path, text: &str) {
    let mut all = std::fs::read_to_string(path).unwrap();
    all.push_str(text);
    std::fs::write(path, all).unwrap();
}

/// Two shards behind three bridged mosquitto brokers — a hub and two leaves, a message crossing
/// up to two bridges — eu-1 reading from leaf-b and eu-2 from leaf-c, and one agent of each of
/// four tenants streaming `total` numbered points through a different broker. Each device is
/// registered at its own shard only (`pki issue` through that shard's config).
/// Fields drop in this order: agents, collectors, brokers, then the directories.
struct Bridged {
    agents: Vec<Proc>,
    collectors: [Proc; 2],
    /// The leaf eu-2 reads from (`leaf-c`); the hub and leaf-b only need to live.
    leaf_c: Broker,
    _brokers: [Broker; 2],
    shards: [Deployment; 2],
    start: i64,
    _certs: tempfile::TempDir,
}

/// The four devices: tenant, device, owning shard (index into [`Bridged::shards`]).
const BRIDGED_DEVICES: [(&str, &str, usize); 4] =
    [("acme", "fw-a", 0), ("globex", "fw-b", 0), ("initech", "fw-c", 1), ("umbrella", "fw-d", 1)];

impl Bridged {
    fn start(http: u16, total: u64) -> Bridged {
        let (eu1, eu2) = two_shards(http);
        let pki = ampel_collector::pki::Pki::open(&eu1.pki_dir()).unwrap();
        let certs = tempfile::tempdir().unwrap();
        let issue = |cn: &str| {
            pki.issue_device(&"ampel".parse().unwrap(), &cn.parse().unwrap(), 1).unwrap().write_to(&certs.path().join(cn)).unwrap()
        };
        let (bridge_cert, reader_cert) = (issue("ampel-bridge"), issue("ampel-collector"));
        let ca = eu1.pki_dir().join("ca.pem");
        let hub = Broker::with_config(&eu1, "", BRIDGE_ACL);
        let leaf_b = Broker::with_config(&eu1, &bridge("leaf-b", hub.port, &ca, &bridge_cert), BRIDGE_ACL);
        let leaf_c = Broker::with_config(&eu1, &bridge("leaf-c", hub.port, &ca, &bridge_cert), BRIDGE_ACL);
        append(&eu1.config, &mqtt_section(leaf_b.port, &reader_cert));
        append(&eu2.config, &mqtt_section(leaf_c.port, &reader_cert));
        let (mut c1, mut c2) = (eu1.serve(), eu2.serve());
        c1.wait_for_log("connected to MQTT broker", Duration::from_secs(20));
        c2.wait_for_log("connected to MQTT broker", Duration::from_secs(20));
        // The bridges connect at broker start; give them a moment before the first publish.
        std::thread::sleep(Duration::from_secs(2));
        let start = start_ms();
        let brokers = [hub.port, leaf_c.port, leaf_b.port, hub.port];
        let shards = [eu1, eu2];
        let mut agents = Vec::new();
        for ((tenant, device, shard), broker) in BRIDGED_DEVICES.into_iter().zip(brokers) {
            let dev = shards[shard].issue(tenant, device);
            let cfg = counter_config(&dev, device, "mqtt", &format!("127.0.0.1:{broker}"), total, start);
            agents.push(Proc::start("ampel-agent", device, &["run", "--config", cfg.to_str().unwrap()]));
        }
        Bridged { shards, leaf_c, _brokers: [hub, leaf_b], collectors: [c1, c2], agents, start, _certs: certs }
    }
}

/// Through bridged brokers each shard stores exactly its tenants' points, each once, and is
/// subscribed to nothing else.
#[test]
fn mqtt_two_shards_through_three_bridged_brokers_each_store_exactly_their_tenants_once() {
    const TOTAL: u64 = 10_000;
    let http = free_tcp_port();
    let mut rig = Bridged::start(http, TOTAL);
    for (_, device, shard) in BRIDGED_DEVICES {
        let d = &rig.shards[shard];
        let done = wait_until(Duration::from_secs(90), || (points(d, device) >= TOTAL).then_some(()));
        let [c1, c2] = &rig.collectors;
        assert!(done.is_some(), "{device}: only {} of {TOTAL} points\neu-1:\n{}\neu-2:\n{}", points(d, device), c1.log(), c2.log());
    }
    std::thread::sleep(Duration::from_millis(500));
    // Subscribed only to its tenants, eu-1 never even receives eu-2's uplinks to refuse them.
    let (_, body) = http_request(http, "GET", "/metrics", "").unwrap();
    assert_eq!(metric(&body, "ampel_ingest_foreign_tenant_total"), Some(0), "{body}");
    for mut a in std::mem::take(&mut rig.agents) {
        assert!(a.stop(), "{}", a.log());
    }
    let [c1, c2] = &mut rig.collectors;
    assert!(c1.stop() && c2.stop());
    assert!(
        c1.log().contains("topics=ampel/v1/acme/+/up ampel/v1/globex/+/up") && c1.log().contains("client_id=ampel-collector-eu-1"),
        "{}",
        c1.log()
    );
    for (_, device, shard) in BRIDGED_DEVICES {
        assert_exactly_once(&rig.shards[shard], device, rig.start, TOTAL);
        assert!(rig.shards[1 - shard].device(device).is_none(), "{device} reached the other shard's registry");
    }
}

/// Measurement, not a pass/fail test: bridged mosquitto routes but does not replicate. eu-2 is
/// away while its tenants stream, so their uplinks queue in its session at leaf-c; leaf-c is
/// killed -9 and restarted. Prints how many points each shard got; on this machine the
/// killed node's unsaved queue was lost (README "Fleets and shards").
#[test]
#[ignore = "measurement: prints what a kill -9 of a bridged mosquitto node loses"]
fn measure_kill_9_of_a_bridged_broker_node_holding_a_stopped_shards_queue() {
    const TOTAL: u64 = 20_000;
    let mut rig = Bridged::start(free_tcp_port(), TOTAL);
    // eu-2 is away: its uplinks queue in its session at leaf-c, which is killed mid-stream.
    assert!(rig.collectors[1].stop());
    std::thread::sleep(Duration::from_millis(2300));
    rig.leaf_c.kill9();
    rig.leaf_c.start();
    rig.collectors[1] = rig.shards[1].serve();
    for (_, device, shard) in BRIDGED_DEVICES {
        let d = &rig.shards[shard];
        let done = wait_until(Duration::from_secs(60), || (points(d, device) >= TOTAL).then_some(()));
        eprintln!(
            "{device}: {} of {TOTAL} points at its shard{}",
            points(d, device),
            if done.is_some() { "" } else { " (gave up after 60 s)" }
        );
    }
    for mut a in std::mem::take(&mut rig.agents) {
        a.stop();
    }
    let [c1, c2] = &mut rig.collectors;
    assert!(c1.stop() && c2.stop());
}

/// A three-node `nats-server` cluster: JetStream on every node, the MQTT listener with mutual
/// TLS mapping the certificate subject to a user, every MQTT stream (sessions, QoS 1 messages)
/// replicated on all three nodes. Devices may publish only their own uplink subject.
struct NatsCluster {
    dir: tempfile::TempDir,
    /// MQTT port of each node.
    mqtt: Vec<u16>,
    nodes: Vec<Option<Proc>>,
}

impl NatsCluster {
    fn new(pki: &std::path::Path, devices: &[(&str, &str)]) -> NatsCluster {
        ampel_tests::require("nats-server", "nats-server");
        let dir = tempfile::tempdir().unwrap();
        let routes: Vec<u16> = (0..3).map(|_| free_tcp_port()).collect();
        let mqtt: Vec<u16> = (0..3).map(|_| free_tcp_port()).collect();
        let route_urls: Vec<String> = routes.iter().map(|p| format!("nats-route://127.0.0.1:{p}")).collect();
        let mut users: Vec<String> = devices
            .iter()
            .map(|(tenant, device)| {
                format!(
                    "{{ user: \"O={tenant},CN={device}\", permissions: {{ publish: {{ allow: [\"ampel.v1.{tenant}.{device}.up\", \"$MQTT.>\"] }}, \
                     subscribe: {{ allow: [\"$MQTT.>\", \"_INBOX.>\"] }} }} }}"
                )
            })
            .collect();
        users.push("{ user: \"O=ampel,CN=ampel-collector\" }".into());
        for i in 0..3 {
            let conf = format!(
                "server_name: n{i}\nlisten: \"127.0.0.1:-1\"\njetstream {{ store_dir: \"{store}\" }}\n\
                 cluster {{ name: ampel, listen: \"127.0.0.1:{route}\", routes: [{routes}] }}\n\
                 mqtt {{ listen: \"127.0.0.1:{port}\", stream_replicas: 3,\n  tls {{ cert_file: \"{pki}/server.pem\", key_file: \"{pki}/server.key\", ca_file: \"{pki}/ca.pem\", verify_and_map: true }} }}\n\
                 authorization {{ users = [\n{users}\n] }}\n",
                store = dir.path().join(format!("js{i}")).display(),
                route = routes[i],
                routes = route_urls.join(", "),
                port = mqtt[i],
                pki = pki.display(),
                users = users.join("\n"),
            );
            std::fs::write(dir.path().join(format!("n{i}.conf")), conf).unwrap();
        }
        let mut c = NatsCluster { dir, mqtt, nodes: vec![None, None, None] };
        for i in 0..3 {
            c.start(i);
        }
        let elected = wait_until(Duration::from_secs(20), || (0..3).any(|i| c.log(i).contains("metadata leader")).then_some(()));
        assert!(elected.is_some(), "no JetStream metadata leader within 20 s:\n{}", c.log(0));
        c
    }

    fn log(&self, i: usize) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("n{i}.log"))).unwrap_or_default()
    }

    /// Starts node `i` (again) and waits until its MQTT listener accepts connections.
    fn start(&mut self, i: usize) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.dir.path().join(format!("n{i}.log"))).unwrap();
        let child = std::process::Command::new(ampel_tests::require("nats-server", "nats-server"))
            .args(["-c", self.dir.path().join(format!("n{i}.conf")).to_str().unwrap()])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start nats-server");
        self.nodes[i] = Some(Proc::adopt("nats-server", child));
        let up = wait_until(Duration::from_secs(10), || std::net::TcpStream::connect(("127.0.0.1", self.mqtt[i])).ok());
        assert!(up.is_some(), "nats-server n{i} did not listen on {} within 10 s:\n{}", self.mqtt[i], self.log(i));
    }

    fn kill9(&mut self, i: usize) {
        if let Some(mut p) = self.nodes[i].take() {
            p.kill9();
        }
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for mut p in self.nodes.iter_mut().filter_map(Option::take) {
            p.kill9();
        }
    }
}

#[test]
fn mqtt_two_shards_through_a_three_node_nats_cluster_lose_nothing_when_a_node_is_killed() {
    const TOTAL: u64 = 20_000;
    let http = free_tcp_port();
    let (eu1, eu2) = two_shards(http);
    let pki = ampel_collector::pki::Pki::open(&eu1.pki_dir()).unwrap();
    let certs = tempfile::tempdir().unwrap();
    let reader =
        pki.issue_device(&"ampel".parse().unwrap(), &"ampel-collector".parse().unwrap(), 1).unwrap().write_to(certs.path()).unwrap();
    let devices = [("acme", "fw-a", &eu1, 2), ("globex", "fw-b", &eu1, 1), ("initech", "fw-c", &eu2, 0), ("umbrella", "fw-d", &eu2, 2)];
    let names: Vec<(&str, &str)> = devices.iter().map(|(t, d, _, _)| (*t, *d)).collect();
    let mut nats = NatsCluster::new(&eu1.pki_dir(), &names);
    append(&eu1.config, &mqtt_section(nats.mqtt[0], &reader));
    append(&eu2.config, &mqtt_section(nats.mqtt[1], &reader));
    let (mut c1, mut c2) = (eu1.serve(), eu2.serve());
    c1.wait_for_log("connected to MQTT broker", Duration::from_secs(30));
    c2.wait_for_log("connected to MQTT broker", Duration::from_secs(30));
    // Until a collector's subscription exists, the broker has nowhere to keep its tenants' data.
    std::thread::sleep(Duration::from_secs(1));
    let start = start_ms();
    let mut agents = Vec::new();
    for (tenant, device, shard, node) in devices {
        let dev = shard.issue(tenant, device);
        let cfg = counter_config(&dev, device, "mqtt", &format!("127.0.0.1:{}", nats.mqtt[node]), TOTAL, start);
        agents.push(Proc::start("ampel-agent", device, &["run", "--config", cfg.to_str().unwrap()]));
    }
    // Mid-stream, kill the node eu-1 reads from and fw-c publishes to; it comes back a second later.
    std::thread::sleep(Duration::from_millis(1500));
    nats.kill9(0);
    std::thread::sleep(Duration::from_secs(1));
    nats.start(0);
    for (_, device, shard, _) in devices {
        let done = wait_until(Duration::from_secs(90), || (points(shard, device) >= TOTAL).then_some(()));
        assert!(
            done.is_some(),
            "{device}: only {} of {TOTAL} points\neu-1:\n{}\neu-2:\n{}\nn0:\n{}",
            points(shard, device),
            c1.log(),
            c2.log(),
            nats.log(0)
        );
    }
    std::thread::sleep(Duration::from_millis(500));
    let (_, body) = http_request(http, "GET", "/metrics", "").unwrap();
    assert_eq!(metric(&body, "ampel_ingest_foreign_tenant_total"), Some(0), "{body}");
    for mut a in agents {
        assert!(a.stop(), "{}", a.log());
    }
    assert!(c1.stop() && c2.stop());
    // The kill was felt: eu-1 lost its broker node and came back to its session.
    assert!(c1.log().matches("connected to MQTT broker").count() >= 2, "{}", c1.log());
    for (_, device, shard, _) in devices {
        assert_exactly_once(shard, device, start, TOTAL);
        let other = if std::ptr::eq(shard, &eu1) { &eu2 } else { &eu1 };
        assert!(other.device(device).is_none(), "{device} reached the other shard's registry");
    }
}

/// Two shards, each with its HTTP listener named in the map and a fleet summary refreshed
/// every second; an administrator and a manager of acme and initech (one tenant per shard).
fn fleet_shards() -> ([Deployment; 2], [u16; 2]) {
    let https = [free_tcp_port(), free_tcp_port()];
    let (eu1, eu2) = two_shards(https[0]);
    let hash = ampel_collector::console::users::hash_password("correct horse battery staple").unwrap();
    let users = format!(
        "\n[[users]]\nname = \"admin\"\nrole = \"administrator\"\ntenants = \"*\"\npassword-hash = \"{0}\"\n\
         [[users]]\nname = \"manager\"\nrole = \"tenant-manager\"\ntenants = [\"acme\", \"initech\"]\npassword-hash = \"{0}\"\n",
        hash.as_str()
    );
    for (i, d) in [&eu1, &eu2].into_iter().enumerate() {
        let text = std::fs::read_to_string(&d.config).unwrap();
        let text = text
            .replace("tenants = [\"acme\"", &format!("http = \"127.0.0.1:{}\"\ntenants = [\"acme\"", https[0]))
            .replace("tenants = [\"initech\"", &format!("http = \"127.0.0.1:{}\"\ntenants = [\"initech\"", https[1]));
        let text = if i == 0 {
            text.replace("[http]\n", "[http]\nfleet-refresh = \"1s\"\n")
        } else {
            text.replace("[pki]", &format!("[http]\nlisten = \"127.0.0.1:{}\"\nfleet-refresh = \"1s\"\n\n[pki]", https[1]))
        };
        std::fs::write(&d.config, format!("{text}{users}")).unwrap();
    }
    ([eu1, eu2], https)
}

/// `GET /api/v1/tenants` of the collector at `port` as `token`'s user, as JSON.
fn tenants_json(port: u16, token: &str) -> serde_json::Value {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let req = format!("GET /api/v1/tenants HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nAuthorization: Bearer {token}\r\n\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{out}");
    serde_json::from_str(body).unwrap()
}

/// The fleet of the collector at `port` as `token`'s user: (tenant, shard, unknown), by tenant.
fn fleet_of(port: u16, token: &str) -> Vec<(String, String, Option<String>)> {
    let rows = tenants_json(port, token);
    let mut out: Vec<(String, String, Option<String>)> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (r["tenant"].as_str().unwrap().to_owned(), r["shard"].as_str().unwrap().to_owned(), r["unknown"].as_str().map(str::to_owned))
        })
        .collect();
    out.sort();
    out
}

/// `GET /cluster/v1/fleet` over TLS to the collector at `port`, trusting `ca_pem`, with a client
/// certificate and key (PEM) when given: the raw answer.
fn fleet_over_tls(port: u16, ca_pem: &[u8], client: Option<(Vec<u8>, Vec<u8>)>) -> String {
    use ampel_protocol::tls;
    use std::io::{Read, Write};
    let mut roots = rustls::RootCertStore::empty();
    for ca in tls::parse_certs(ca_pem).unwrap() {
        roots.add(ca).unwrap();
    }
    let builder = rustls::ClientConfig::builder_with_provider(tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let cfg = match client {
        Some((cert, key)) => builder.with_client_auth_cert(tls::parse_certs(&cert).unwrap(), tls::parse_key(&key).unwrap()).unwrap(),
        None => builder.with_no_client_auth(),
    };
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let conn = rustls::ClientConnection::new(std::sync::Arc::new(cfg), name).unwrap();
    let mut stream = rustls::StreamOwned::new(conn, std::net::TcpStream::connect(("127.0.0.1", port)).unwrap());
    stream.write_all(b"GET /cluster/v1/fleet HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").unwrap();
    let mut out = Vec::new();
    // The server closes without close_notify after its answer: what was read counts.
    let _ = stream.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether `rows` are the four tenants, each with its shard, eu-2's marked unknown with a
/// reason starting `eu2_unknown` (`None`: not unknown).
fn all_four(rows: &[(String, String, Option<String>)], eu2_unknown: Option<&str>) -> bool {
    let names: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    names == ["acme", "globex", "initech", "umbrella"]
        && rows.iter().all(|r| r.1 == if ["acme", "globex"].contains(&r.0.as_str()) { "eu-1" } else { "eu-2" })
        && rows.iter().filter(|r| r.1 == "eu-2").all(|r| r.2.as_deref().and_then(|u| u.split(" since ").next()) == eu2_unknown)
}

/// Issue 18 point 5: the fleet view of either shard shows the tenants of both (a user only
/// theirs, wherever they live); after one shard stops, the other shows its tenants grey as
/// unreachable; the internal endpoint refuses a client without a collector certificate.
#[test]
fn the_fleet_view_of_either_shard_shows_all_tenants_and_grey_for_a_stopped_shard() {
    let ([eu1, eu2], https) = fleet_shards();
    for (d, tenant, device) in
        [(&eu1, "acme", "fw-acme"), (&eu1, "globex", "fw-globex"), (&eu2, "initech", "fw-initech"), (&eu2, "umbrella", "fw-umbrella")]
    {
        d.issue(tenant, device);
    }
    let mut collectors = [eu1.serve(), eu2.serve()];
    for c in &mut collectors {
        c.wait_for_log("fleet summary ready", Duration::from_secs(20));
    }
    let token = |d: &Deployment, user: &str| d.collector(&["user", "token", user, "--ttl", "1d"]).ok().trim().to_owned();
    let admins = [token(&eu1, "admin"), token(&eu2, "admin")];
    for (port, admin) in https.iter().zip(&admins) {
        let seen = wait_until(Duration::from_secs(30), || Some(fleet_of(*port, admin)).filter(|rows| all_four(rows, None)));
        assert!(seen.is_some(), "the fleet of :{port} shows all four tenants, none unknown: {:?}", fleet_of(*port, admin));
    }
    let manager = token(&eu1, "manager");
    let theirs: Vec<String> = fleet_of(https[0], &manager).into_iter().map(|r| r.0).collect();
    assert_eq!(theirs, ["acme", "initech"], "a manager sees their tenants on both shards, no other");
    let (status, body) = http_request(https[0], "GET", "/cluster/v1/fleet", "").unwrap();
    assert_eq!(status, 403, "plain HTTP: {body}");
    let device = eu1.issue("acme", "fw-probe");
    let ca = std::fs::read(device.join("ca.pem")).unwrap();
    let with_device = Some((std::fs::read(device.join("fw-probe.pem")).unwrap(), std::fs::read(device.join("fw-probe.key")).unwrap()));
    for (client, what) in [(None, "TLS without a client certificate"), (with_device, "TLS with a device certificate")] {
        let answer = fleet_over_tls(https[0], &ca, client);
        assert!(answer.starts_with("HTTP/1.1 403"), "{what}: {answer}");
    }
    collectors[1].stop();
    let grey = wait_until(Duration::from_secs(30), || {
        Some(fleet_of(https[0], &admins[0])).filter(|rows| all_four(rows, Some("shard eu-2 unreachable")))
    });
    assert!(grey.is_some(), "the stopped shard's tenants are unknown: {:?}", fleet_of(https[0], &admins[0]));
    let rows = tenants_json(https[0], &admins[0]);
    for row in rows.as_array().unwrap().iter().filter(|r| r["shard"] == "eu-2") {
        assert_eq!(row["light"], "grey", "{row}");
    }
    drop(collectors);
}
