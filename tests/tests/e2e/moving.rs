//! Moving a tenant between shards while its agents stream (README "Moving a tenant"): every
//! point of the moved tenant ends up at its new shard exactly once, nothing changes for the
//! tenant that stays, and the old shard's copy can be deleted afterwards.

use std::time::Duration;

use ampel_tests::{Deployment, Proc, free_tcp_port, http_request, wait_until};

use crate::enroll::{bare_agent, enroll, token};
use crate::hostile::metric;
use crate::mqtt::Broker;
use crate::shards::{cluster, mqtt_section, two_shards};
use crate::spool::{assert_exactly_once, counter_config, points, start_ms};

/// The map of `shards::cluster` with acme listed under eu-2, and as moving if `moving`.
fn acme_on_eu2(own: &str, eu1: u16, eu2: u16, moving: bool) -> String {
    let moving = if moving { "moving = [\"acme\"]\n" } else { "" };
    cluster(own, eu1, eu2)
        .replace("[\"acme\", \"globex\"]", "[\"globex\"]")
        .replace("[\"initech\", \"umbrella\"]", "[\"initech\", \"umbrella\", \"acme\"]")
        .replacen("\n\n[[cluster.shards]]", &format!("\n{moving}\n[[cluster.shards]]"), 1)
}

/// Replaces the `[cluster]` part of a deployment's config (it is the file's last part).
fn set_map(d: &Deployment, map: &str) {
    let text = std::fs::read_to_string(&d.config).unwrap();
    let start = text.find("[cluster]").unwrap();
    std::fs::write(&d.config, format!("{}{map}", &text[..start])).unwrap();
}

/// `systemctl reload`: SIGHUP, then waits for the reloaded map to be logged.
fn reload(collector: &mut Proc, expect: &str) {
    let pid = nix::unistd::Pid::from_raw(collector.pid() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGHUP).unwrap();
    collector.wait_for_log(expect, Duration::from_secs(10));
}

/// Step 1 (`moving`: acme listed under eu-2 and moving) or step 4 (moved) of README "Moving a
/// tenant" on both shards: each map written, each collector reloaded (eu-1 first), and the
/// change each logs awaited.
fn move_acme([eu1, eu2]: [&Deployment; 2], [c1, c2]: [&mut Proc; 2], moving: bool) {
    let (p1, p2) = (eu1.port, eu2.port);
    set_map(eu1, &acme_on_eu2("eu-1", p1, p2, moving));
    set_map(eu2, &acme_on_eu2("eu-2", p1, p2, moving));
    if moving {
        reload(c1, "acme: stored here -> moving to shard eu-2");
        reload(c2, "acme: sent to shard eu-1 -> moving to shard eu-2");
    } else {
        reload(c1, "acme: moving to shard eu-2, refused everywhere -> sent to shard eu-2");
        reload(c2, "acme: moving to shard eu-2, refused everywhere -> stored here");
    }
}

/// Waits until eu-2 holds all of acme's points and eu-1 all of globex's; fails with their
/// counts and `logs` otherwise.
fn wait_for_all(eu1: &Deployment, eu2: &Deployment, total: u64, logs: impl Fn() -> String) {
    let done = wait_until(Duration::from_secs(150), || (points(eu2, "fw-a") >= total && points(eu1, "fw-b") >= total).then_some(()));
    assert!(done.is_some(), "eu-2 has {} of acme's points, eu-1 {} of globex's\n{}", points(eu2, "fw-a"), points(eu1, "fw-b"), logs());
}

#[test]
fn a_tenant_moved_between_shards_during_the_stream_keeps_every_point_exactly_once() {
    const TOTAL: u64 = 60_000;
    let (eu1, eu2) = two_shards(free_tcp_port());
    let moved = eu1.issue("acme", "fw-a");
    let stays = eu1.issue("globex", "fw-b");
    let start = start_ms();
    let eu1_addr = format!("127.0.0.1:{}", eu1.port);
    let (cfg_a, cfg_b) =
        (counter_config(&moved, "fw-a", "quic", &eu1_addr, TOTAL, start), counter_config(&stays, "fw-b", "quic", &eu1_addr, TOTAL, start));
    let (mut c1, mut c2) = (eu1.serve(), eu2.serve());
    let mut agent_a = Proc::start("ampel-agent", "fw-a", &["run", "--config", cfg_a.to_str().unwrap()]);
    let mut agent_b = Proc::start("ampel-agent", "fw-b", &["run", "--config", cfg_b.to_str().unwrap()]);
    let streaming = wait_until(Duration::from_secs(60), || (points(&eu1, "fw-a") >= TOTAL / 5).then_some(()));
    assert!(streaming.is_some(), "acme never streamed to eu-1\n{}", agent_a.log());

    // 1. acme belongs to eu-2 but is moving: nobody takes it.
    move_acme([&eu1, &eu2], [&mut c1, &mut c2], true);
    // 2. Export on the old shard, beside the running collector.
    let file = eu1.dir.path().join("acme.tenant");
    let out = eu1.collector(&["tenant", "export", "acme", "-o", file.to_str().unwrap()]).ok();
    assert!(out.contains("exported tenant acme: 1 devices"), "{out}");
    // 3. Import on the new one: refused while it runs, done once it is stopped.
    let busy = eu2.collector(&["tenant", "import", file.to_str().unwrap()]).output();
    assert!(!busy.status.success() && String::from_utf8_lossy(&busy.stderr).contains("stop it first"), "{busy:?}");
    assert!(c2.stop(), "{}", c2.log());
    let out = eu2.collector(&["tenant", "import", file.to_str().unwrap()]).ok();
    assert!(out.contains("imported tenant acme (exported from shard eu-1)"), "{out}");
    c2 = eu2.serve();
    let exported = points(&eu1, "fw-a");
    assert!(exported < TOTAL, "acme had finished before the move ({exported} points): make TOTAL larger");
    // 4. The move is done: eu-2 takes acme, eu-1 sends its agents there.
    move_acme([&eu1, &eu2], [&mut c1, &mut c2], false);

    wait_for_all(&eu1, &eu2, TOTAL, || format!("fw-a log:\n{}\neu-2 log:\n{}", agent_a.log(), c2.log()));
    assert!(agent_a.log().contains("collector sent us to the shard owning our tenant"), "{}", agent_a.log());
    assert!(agent_a.stop() && agent_b.stop());
    assert!(c1.stop() && c2.stop());
    // Every point of acme once at eu-2, from before and after the move; eu-1 kept what it had
    // stored before the move and nothing after; globex never left eu-1.
    assert_exactly_once(&eu2, "fw-a", start, TOTAL);
    assert_eq!(points(&eu1, "fw-a"), exported, "eu-1 stored acme after the move");
    assert_exactly_once(&eu1, "fw-b", start, TOTAL);
    assert!(eu2.device("fw-b").is_none(), "globex reached eu-2");

    // The old shard's copy goes with `tenant delete`; the new shard refuses to delete its own.
    let own = eu2.collector(&["tenant", "delete", "acme"]).output();
    assert!(!own.status.success() && String::from_utf8_lossy(&own.stderr).contains("move it away first"), "{own:?}");
    let out = eu1.collector(&["tenant", "delete", "acme"]).ok();
    assert!(out.contains("deleted tenant acme: 1 devices"), "{out}");
    assert!(eu1.device("fw-a").is_none());
    assert_exactly_once(&eu1, "fw-b", start, TOTAL);
    assert_exactly_once(&eu2, "fw-a", start, TOTAL);
}

#[test]
fn an_agent_enrolled_at_another_shard_goes_straight_to_its_own() {
    let http = free_tcp_port();
    let (eu1, eu2) = two_shards(http);
    let (mut c1, mut c2) = (eu1.serve(), eu2.serve());
    // initech is eu-2's; the agent enrolls at eu-1, which is also its configured collector.
    let (dir, cfg) = bare_agent(&eu1, "fw-e", "200ms");
    let out = enroll(&eu1, &cfg, &token(&eu1, "initech", "fw-e", "1h"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let saved = std::fs::read_to_string(dir.join("state/shard")).unwrap();
    assert!(saved.contains(&format!("eu-2 127.0.0.1:{}", eu2.port)), "{saved}");
    let mut agent = Proc::start("ampel-agent", "fw-e", &["run", "--config", cfg.to_str().unwrap()]);
    let arrived = wait_until(Duration::from_secs(30), || (points(&eu2, "fw-e") >= 5).then_some(()));
    assert!(arrived.is_some(), "no points at eu-2\nagent:\n{}\neu-2:\n{}", agent.log(), c2.log());
    assert!(agent.log().contains("connecting to the shard a collector sent us to earlier"), "{}", agent.log());
    // eu-1 never had to turn a data connection of it away.
    let refused = metric(&http_request(http, "GET", "/metrics", "").unwrap().1, "ampel_ingest_foreign_tenant_total");
    assert_eq!(refused.unwrap_or(0), 0, "the agent knocked at eu-1 first");
    assert!(agent.stop());
    assert!(c1.stop() && c2.stop());
}

/// Puts `section` into a deployment's config before its `[cluster]` part, which [`set_map`]
/// replaces.
fn insert_before_map(d: &Deployment, section: &str) {
    let text = std::fs::read_to_string(&d.config).unwrap();
    let at = text.find("[cluster]").unwrap();
    std::fs::write(&d.config, format!("{}{section}\n{}", &text[..at], &text[at..])).unwrap();
}

/// The same move over MQTT, both collectors running except eu-2 for the import: eu-2 subscribes
/// to acme as soon as the map says acme is moving to it and holds acme's messages with the
/// broker; eu-1 keeps storing acme until the move is done, so no message falls between the two.
#[test]
fn an_mqtt_tenant_moved_during_the_stream_keeps_every_point_exactly_once() {
    const TOTAL: u64 = 100_000;
    let (eu1, eu2) = two_shards(free_tcp_port());
    let broker = Broker::new(&eu1);
    let certs = tempfile::tempdir().unwrap();
    let pki = ampel_collector::pki::Pki::open(&eu1.pki_dir()).unwrap();
    let reader = pki
        .issue_device(&"ampel".parse().unwrap(), &"ampel-collector".parse().unwrap(), 1)
        .unwrap()
        .write_to(&certs.path().join("r"))
        .unwrap();
    for d in [&eu1, &eu2] {
        insert_before_map(d, &mqtt_section(broker.port, &reader));
    }
    let moved = eu1.issue("acme", "fw-a");
    let stays = eu1.issue("globex", "fw-b");
    let (mut c1, mut c2) = (eu1.serve(), eu2.serve());
    c1.wait_for_log("MQTT subscribed", Duration::from_secs(20));
    c2.wait_for_log("MQTT subscribed", Duration::from_secs(20));
    let start = start_ms();
    let at = format!("127.0.0.1:{}", broker.port);
    let (cfg_a, cfg_b) =
        (counter_config(&moved, "fw-a", "mqtt", &at, TOTAL, start), counter_config(&stays, "fw-b", "mqtt", &at, TOTAL, start));
    let mut agent_a = Proc::start("ampel-agent", "fw-a", &["run", "--config", cfg_a.to_str().unwrap()]);
    let mut agent_b = Proc::start("ampel-agent", "fw-b", &["run", "--config", cfg_b.to_str().unwrap()]);
    let streaming = wait_until(Duration::from_secs(60), || (points(&eu1, "fw-a") >= TOTAL / 5).then_some(()));
    assert!(streaming.is_some(), "acme never streamed to eu-1\n{}\n{}", agent_a.log(), c1.log());

    // 1. acme is moving to eu-2. The old shard is reloaded first: it keeps storing acme, so the
    //    order of the reloads does not matter. eu-2 subscribes to acme and holds what comes.
    move_acme([&eu1, &eu2], [&mut c1, &mut c2], true);
    c2.wait_for_log("MQTT subscribed topics=ampel/v1/initech/+/up ampel/v1/umbrella/+/up ampel/v1/acme/+/up", Duration::from_secs(10));
    // 2. Export on the old shard once eu-2's session queues acme.
    std::thread::sleep(Duration::from_millis(500));
    let file = eu1.dir.path().join("acme.tenant");
    let out = eu1.collector(&["tenant", "export", "acme", "-o", file.to_str().unwrap()]).ok();
    assert!(out.contains("exported tenant acme: 1 devices"), "{out}");
    assert!(points(&eu1, "fw-a") < TOTAL, "acme had finished before the move: make TOTAL larger");
    // 3. Import on the new shard, stopped for it; it still holds acme after the restart.
    assert!(c2.stop(), "{}", c2.log());
    let out = eu2.collector(&["tenant", "import", file.to_str().unwrap()]).ok();
    assert!(out.contains("imported tenant acme (exported from shard eu-1)"), "{out}");
    c2 = eu2.serve();
    c2.wait_for_log("MQTT subscribed", Duration::from_secs(20));
    // 4. Done: eu-2 stores acme, beginning with what the broker held for it; eu-1 lets go.
    move_acme([&eu1, &eu2], [&mut c1, &mut c2], false);
    c2.wait_for_log("reconnecting to receive its held messages", Duration::from_secs(10));

    wait_for_all(&eu1, &eu2, TOTAL, || format!("eu-1 log:\n{}\neu-2 log:\n{}", c1.log(), c2.log()));
    assert!(agent_a.stop() && agent_b.stop());
    assert!(c1.stop() && c2.stop());
    assert_exactly_once(&eu2, "fw-a", start, TOTAL);
    assert_exactly_once(&eu1, "fw-b", start, TOTAL);
    assert!(eu2.device("fw-b").is_none(), "globex reached eu-2");
    assert!(c2.log().contains("MQTT message held with the broker until the move is done"), "{}", c2.log());
}
