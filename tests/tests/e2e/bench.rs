//! Figures, not checks: `cargo test -p ampel-tests --release --test e2e bench -- --ignored --nocapture`
//! prints `name: value unit` lines.
//!
//! - MQTT: agent (spool -> rumqttc, QoS 1) -> mosquitto -> subscriber, beside mosquitto alone
//!   (a bare rumqttc publisher, same payloads, same in-flight window) in the same run.
//! - QUIC: batches per second acknowledged by the collector (committed to LMDB).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ampel_agent::spool::Spool;
use ampel_protocol::{Batch, Metric, PROTOCOL_VERSION, Record, tls};
use ampel_tests::{Deployment, Proc, wait_until};
use rumqttc::{AsyncClient, Event, Incoming, MqttOptions, QoS, TlsConfiguration, Transport};

use crate::mqtt::{Broker, enable_mqtt};

const BATCHES: u64 = 5_000;
const POINTS: usize = 20;

static START_MS: std::sync::LazyLock<i64> = std::sync::LazyLock::new(|| {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64) - 3_600_000
});

fn batch(seq: u64) -> Batch {
    let records = (0..POINTS)
        .map(|i| {
            Record::Metric(Metric {
                // An hour ago: older points would be counted as expired, not stored.
                ts: *START_MS + (seq * POINTS as u64 + i as u64) as i64,
                name: "bench.value".into(),
                labels: vec![],
                value: i as f64,
            })
        })
        .collect();
    Batch { version: PROTOCOL_VERSION, seq, sender: None, records }
}

/// Fills the agent's spool with BATCHES batches and moves its seq counter past them.
fn prefill(dev: &Path) {
    let state = dev.join("state");
    let mut spool = Spool::open(&state.join("spool"), 256 << 20).unwrap();
    for seq in 1..=BATCHES {
        spool.append(&batch(seq), &[]).unwrap();
    }
    std::fs::write(state.join("seq"), format!("{}\n", BATCHES + 1)).unwrap();
}

fn agent_config(dev: &Path, device: &str, transport: &str, address: &str) -> std::path::PathBuf {
    let cfg = dev.join("agent.toml");
    std::fs::write(
        &cfg,
        format!(
            "interval = \"1h\"\nstate-dir = \"state\"\n[spool]\nmax-bytes = \"256MiB\"\n[collector]\ntransport = \"{transport}\"\naddress = \"{address}\"\n\
             server-name = \"localhost\"\nca = \"ca.pem\"\ncert = \"{device}.pem\"\nkey = \"{device}.key\"\n\
             [sources.performance]\nenabled = false\n[sources.inventory]\nenabled = false\n"
        ),
    )
    .unwrap();
    cfg
}

fn client(port: u16, dir: &Path, name: &str, id: &str, clean: bool) -> (AsyncClient, rumqttc::EventLoop) {
    tls::install_provider();
    let cas = tls::parse_certs(&std::fs::read(dir.join("ca.pem")).unwrap()).unwrap();
    let chain = tls::parse_certs(&std::fs::read(dir.join(format!("{name}.pem"))).unwrap()).unwrap();
    let key = tls::parse_key(&std::fs::read(dir.join(format!("{name}.key"))).unwrap()).unwrap();
    let cfg = tls::client_config(&cas, chain, key, &[]).unwrap();
    let mut o = MqttOptions::new(id, "127.0.0.1", port);
    o.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(Arc::new(cfg))))
        .set_max_packet_size(16 << 20, 16 << 20)
        .set_clean_session(clean)
        .set_inflight(100);
    AsyncClient::new(o, 200)
}

/// Subscribes as the collector and returns the seconds between the first and the `n`th message.
async fn receive(port: u16, dir: &Path, n: u64, ready: tokio::sync::oneshot::Sender<()>) -> f64 {
    let (c, mut el) = client(port, dir, "ampel-collector", "bench-sub", true);
    let mut ready = Some(ready);
    let mut got = 0u64;
    let mut first = None;
    loop {
        match el.poll().await.unwrap() {
            Event::Incoming(Incoming::ConnAck(_)) => c.try_subscribe("ampel/v1/+/+/up", QoS::AtLeastOnce).unwrap(),
            Event::Incoming(Incoming::SubAck(_)) => {
                if let Some(r) = ready.take() {
                    let _ = r.send(());
                }
            }
            Event::Incoming(Incoming::Publish(_)) => {
                got += 1;
                let t = *first.get_or_insert_with(Instant::now);
                if got == n {
                    return t.elapsed().as_secs_f64();
                }
            }
            _ => {}
        }
    }
}

#[test]
#[ignore = "a benchmark: run with --ignored --nocapture"]
fn bench_mqtt_path_beside_mosquitto_alone_and_quic_acked_batches() {
    let d = Deployment::new("");
    let dev = d.issue("acme", "fw-1");
    let broker = Broker::new(&d);
    enable_mqtt(&d, &broker);
    let collector_dir = d.dir.path().join("collector-mqtt");
    std::fs::copy(d.pki_dir().join("ca.pem"), collector_dir.join("ca.pem")).ok();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let payload = ampel_protocol::codec::encode_batch(&batch(1)).unwrap();
    println!("batch_payload: {} bytes", payload.len());

    // mosquitto alone: a bare rumqttc publisher, 100 in flight, QoS 1.
    let alone = rt.block_on(async {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let sub = tokio::spawn({
            let dir = collector_dir.clone();
            let port = broker.port;
            async move { receive(port, &dir, BATCHES, tx).await }
        });
        rx.await.unwrap();
        let (c, mut el) = client(broker.port, &dev, "fw-1", "fw-1", true);
        let p = payload.clone();
        tokio::spawn(async move {
            for _ in 0..BATCHES {
                c.publish("ampel/v1/acme/fw-1/up", QoS::AtLeastOnce, false, p.clone()).await.unwrap();
            }
        });
        let start = Instant::now();
        let mut acked = 0;
        while acked < BATCHES {
            if let Event::Incoming(Incoming::PubAck(_)) = el.poll().await.unwrap() {
                acked += 1;
            }
        }
        let pub_s = start.elapsed().as_secs_f64();
        let sub_s = sub.await.unwrap();
        (pub_s, sub_s)
    });
    let alone_rate = BATCHES as f64 / alone.0;
    println!("mosquitto_alone_qos1_publish: {alone_rate:.0} msg/s");
    println!("mosquitto_alone_delivered: {:.0} msg/s", BATCHES as f64 / alone.1);

    // The agent's MQTT path: a pre-filled spool drained through rumqttc to mosquitto.
    prefill(&dev);
    let cfg = agent_config(&dev, "fw-1", "mqtt", &format!("127.0.0.1:{}", broker.port));
    let agent_s = rt.block_on(async {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let sub = tokio::spawn({
            let dir = collector_dir.clone();
            let port = broker.port;
            async move { receive(port, &dir, BATCHES, tx).await }
        });
        rx.await.unwrap();
        let agent = Proc::start("ampel-agent", "fw-1", &["run", "--config", cfg.to_str().unwrap()]);
        let s = sub.await.unwrap();
        drop(agent);
        s
    });
    let agent_rate = BATCHES as f64 / agent_s;
    println!("agent_mqtt_path_delivered: {agent_rate:.0} batches/s");
    // Like for like: both rates are measured at the subscriber, first to last message.
    println!("agent_mqtt_vs_mosquitto_alone: {:.0} %", 100.0 * agent_rate / (BATCHES as f64 / alone.1));

    // QUIC: a pre-filled spool drained to the collector, each batch acknowledged after commit.
    let dev2 = d.issue("acme", "fw-2");
    prefill(&dev2);
    let mut collector = d.serve();
    let cfg = agent_config(&dev2, "fw-2", "quic", &format!("127.0.0.1:{}", d.port));
    let start = Instant::now();
    let agent = Proc::start("ampel-agent", "fw-2", &["run", "--config", cfg.to_str().unwrap()]);
    let batches = |d: &Deployment| d.device("fw-2").and_then(|v| v["batches"].as_u64()).unwrap_or(0);
    let done = wait_until(Duration::from_secs(120), || (batches(&d) >= BATCHES).then_some(()));
    let s = start.elapsed().as_secs_f64();
    assert!(done.is_some(), "QUIC drain incomplete: {}", agent.log());
    println!("agent_quic_acked: {:.0} batches/s ({} points each)", BATCHES as f64 / s, POINTS);
    collector.stop();
}
