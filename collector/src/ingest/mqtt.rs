//! MQTT ingest: the collector subscribes to `ampel/v1/+/+/up` at a broker (mutual TLS, QoS 1,
//! persistent session) and acknowledges each message to the broker only after the writer has
//! committed it — so while the collector is down, the broker holds the data.
//!
//! Identity: the broker makes the certificate CN the username and lets a client publish only
//! where the device level equals it, so the device level *is* the authenticated device. The
//! tenant level is only a claim: it must equal the registry's tenant for that device, and a
//! device the registry does not know is refused too (over MQTT nothing else vouches for the
//! tenant). Refused messages are acknowledged (a resend would be refused again), counted in
//! `batches_rejected` and logged.
//!
//! One task polls the rumqttc event loop and never awaits a client call; each message is
//! committed and acknowledged by a task of its own.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use ampel_protocol::logsafe::esc;
use ampel_protocol::{AckStatus, Identity, Limits, codec, tls, topic};
use rumqttc::{AsyncClient, Event, Incoming, Publish, QoS, TlsConfiguration};
use serde::Deserialize;
use tokio::sync::watch;

use super::Writer;
use super::quic::now_ms;
use crate::cluster::live::LiveMap;
use crate::cluster::{self, Route, ShardMap};
use crate::files;
use crate::store::{Store, StoreError};

/// `[mqtt]`: the broker to subscribe to. Absent: no MQTT ingest.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct MqttConfig {
    /// `host:port` of the broker's TLS listener.
    pub broker: String,
    /// Name the broker's certificate must carry; default: the host part of `broker`.
    #[serde(default)]
    pub server_name: Option<String>,
    /// MQTT client id; keep it stable — the broker keeps the session (and the queued messages)
    /// under it. Default "ampel-collector", with `[cluster]` "ampel-collector-<shard>" (one
    /// session per shard).
    #[serde(default)]
    pub client_id: Option<String>,
    /// Topic filter; default every device of every tenant (`ampel/v1/+/+/up`), with
    /// `[cluster]` one `ampel/v1/<tenant>/+/up` per tenant of this shard (and per tenant moving
    /// away from it, see [`subscriptions`]), following the map as it is reloaded.
    #[serde(default)]
    pub topic: Option<String>,
    /// The CA the broker's certificate must chain to; default `<pki-dir>/ca.pem`.
    #[serde(default)]
    pub ca: Option<PathBuf>,
    /// The collector's client certificate for the broker (its CN is the broker username the
    /// ACL lets read every uplink).
    pub cert: PathBuf,
    /// Its key.
    pub key: PathBuf,
    /// Messages the broker may have in flight to us (unacknowledged) at once. Default 100.
    #[serde(default = "default_inflight")]
    pub inflight: u16,
}

impl MqttConfig {
    /// The client id the broker keeps this collector's session under.
    pub fn client_id(&self, cluster: Option<&ShardMap>) -> String {
        match (&self.client_id, cluster) {
            (Some(id), _) => id.clone(),
            (None, Some(map)) => format!("ampel-collector-{}", map.own().name),
            (None, None) => "ampel-collector".into(),
        }
    }
}

/// The topic filters to subscribe to under `map`: a hand-set `topic`; without `[cluster]` every
/// uplink; with it, the uplinks of the tenants the map gives this shard (moving here or not)
/// and of those moving away whose devices this store holds — the old owner keeps storing a
/// moving tenant's messages until the move is done (see [`take`]).
pub fn subscriptions(cfg: &MqttConfig, map: Option<&ShardMap>, store: &Store) -> Result<Vec<String>, StoreError> {
    let Some(map) = map.filter(|_| cfg.topic.is_none()) else {
        return Ok(vec![cfg.topic.clone().unwrap_or_else(|| topic::ALL_UPLINKS.into())]);
    };
    let mut topics = map.uplink_topics();
    let held = store.tenants()?;
    for (tenant, _, moving) in map.tenants() {
        if moving && !matches!(map.route(tenant), Route::Own) && held.iter().any(|t| t == tenant.as_str()) {
            let t = topic::tenant_uplinks(tenant);
            if !topics.contains(&t) {
                topics.push(t);
            }
        }
    }
    Ok(topics)
}

/// What this shard does with the messages of a tenant, by the map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Take {
    /// Store them.
    Store,
    /// The tenant is moving here: hold them unacknowledged (the broker keeps them in this
    /// shard's session) until the move is done and the import's dedupe marks are in.
    Hold,
    /// The tenant is moving away: store them if this store holds the device (the old owner
    /// keeps storing until the move is done; the new owner's session holds copies of all
    /// that arrives from its reload on, and the imported marks make what both got a
    /// duplicate there), else refuse as foreign.
    StoreIfHeld,
    /// Another shard's or nobody's: acknowledge without storing.
    Foreign,
}

fn take(map: Option<&ShardMap>, tenant: &ampel_protocol::TenantId) -> Take {
    match cluster::route(map, tenant) {
        Route::Own => Take::Store,
        Route::Moving(to) if map.is_some_and(|m| m.own().name == to.name) => Take::Hold,
        Route::Moving(_) => Take::StoreIfHeld,
        Route::Elsewhere(_) | Route::Unowned => Take::Foreign,
    }
}

/// Whether some tenant held under `old` is to be stored under `new`: the messages held for it
/// are with the broker, which sends them again only on a new connection of the session.
fn released(old: Option<&ShardMap>, new: Option<&ShardMap>) -> bool {
    old.is_some_and(|m| m.tenants().any(|(t, _, _)| take(old, t) == Take::Hold && take(new, t) == Take::Store))
}

fn default_inflight() -> u16 {
    100
}

/// Why the MQTT ingest could not start.
#[derive(Debug, thiserror::Error)]
pub enum MqttError {
    /// A certificate or key could not be read or parsed.
    #[error("{}: {message}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The TLS material does not fit together.
    #[error("MQTT TLS configuration: {0}")]
    Tls(String),
    /// `broker` is not `host:port`.
    #[error("mqtt.broker {0:?} is not host:port")]
    Broker(String),
}

fn read(key: &str, path: &Path, max: u64) -> Result<Vec<u8>, MqttError> {
    crate::files::read_limited(path, max).map_err(|e| MqttError::File { path: path.to_owned(), message: format!("mqtt.{key}: {e}") })
}

/// Builds the client options: persistent session under [`MqttConfig::client_id`], manual acks,
/// mutual TLS.
pub fn options(cfg: &MqttConfig, pki_dir: &Path, cluster: Option<&ShardMap>) -> Result<rumqttc::MqttOptions, MqttError> {
    tls::install_provider();
    let ca_path = cfg.ca.clone().unwrap_or_else(|| pki_dir.join("ca.pem"));
    let bad = |p: &Path| {
        let path = p.to_owned();
        move |e: tls::TlsError| MqttError::File { path, message: e.to_string() }
    };
    let ca = tls::parse_certs(&read("ca", &ca_path, files::CERT_MAX)?).map_err(bad(&ca_path))?;
    let chain = tls::parse_certs(&read("cert", &cfg.cert, files::CERT_MAX)?).map_err(bad(&cfg.cert))?;
    let key = tls::parse_key(&read("key", &cfg.key, files::KEY_MAX)?).map_err(bad(&cfg.key))?;
    let tls_config = tls::client_config(&ca, chain, key, &[]).map_err(|e| MqttError::Tls(e.to_string()))?;
    let (host, port) = cfg.broker.rsplit_once(':').ok_or_else(|| MqttError::Broker(cfg.broker.clone()))?;
    let port: u16 = port.parse().map_err(|_| MqttError::Broker(cfg.broker.clone()))?;
    let host = cfg.server_name.clone().unwrap_or_else(|| host.trim_matches(['[', ']']).to_owned());
    let mut o = rumqttc::MqttOptions::new(cfg.client_id(cluster), host, port);
    o.set_transport(rumqttc::Transport::tls_with_config(TlsConfiguration::Rustls(Arc::new(tls_config))))
        .set_clean_session(false)
        .set_manual_acks(true)
        .set_keep_alive(Duration::from_secs(15))
        .set_inflight(cfg.inflight.max(1))
        .set_max_packet_size(16 << 20, 16 << 20);
    Ok(o)
}

/// What every message task needs.
#[derive(Clone)]
pub struct Ingest {
    /// The store's writer.
    pub writer: Writer,
    /// The store, for the device registry.
    pub store: Store,
    /// The shard map in force; messages of tenants this shard does not own are refused.
    pub cluster: LiveMap,
}

/// Subscribes and ingests until `shutdown` turns true. Reconnects on its own (rumqttc keeps
/// polling); the persistent session means nothing queued at the broker is lost meanwhile. A
/// reloaded shard map changes the subscriptions at once (see [`subscriptions`]).
pub async fn serve(cfg: MqttConfig, options: rumqttc::MqttOptions, ingest: Ingest, mut shutdown: watch::Receiver<bool>) {
    let (client, mut eventloop) = AsyncClient::new(options, 1024);
    let limits = Limits::default();
    let mut reloads = ingest.cluster.changes();
    let mut map = ingest.cluster.current();
    let mut topics = subscriptions(&cfg, map.as_deref(), &ingest.store).unwrap_or_else(|e| {
        tracing::error!(error = %e, "cannot read the store's tenants; subscribing to this shard's own tenants only");
        map.as_deref().map_or_else(|| vec![topic::ALL_UPLINKS.into()], ShardMap::uplink_topics)
    });
    tracing::info!(topics = %topics.join(" "), "MQTT subscriptions");
    let mut failures = 0u32;
    loop {
        tokio::select! {
            event = eventloop.poll() => match event {
                Ok(Event::Incoming(Incoming::ConnAck(ack))) => {
                    failures = 0;
                    tracing::info!(broker = %cfg.broker, session_present = ack.session_present, "connected to MQTT broker");
                    subscribe(&client, &[], &topics);
                }
                Ok(Event::Incoming(Incoming::Publish(p))) => {
                    let (client, ingest) = (client.clone(), ingest.clone());
                    tokio::spawn(async move { message(p, client, ingest, limits).await });
                }
                Ok(Event::Incoming(Incoming::SubAck(_))) => {
                    // From here on the broker queues these topics in the session: what a move
                    // waits for before the export (README "Moving a tenant").
                    tracing::info!(topics = %topics.join(" "), "MQTT subscribed");
                }
                Ok(_) => {}
                Err(e) => {
                    failures += 1;
                    if failures == 1 || failures.is_power_of_two() {
                        tracing::warn!(broker = %cfg.broker, error = %e, attempt = failures, "MQTT broker unreachable; retrying");
                    }
                    let wait = Duration::from_millis(200u64.saturating_mul(u64::from(failures.min(10))));
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = shutdown.changed() => if *shutdown.borrow() { break },
                    }
                }
            },
            Ok(()) = reloads.changed() => {
                let next = ingest.cluster.current();
                match subscriptions(&cfg, next.as_deref(), &ingest.store) {
                    Ok(t) if t != topics => {
                        tracing::info!(topics = %t.join(" "), "MQTT subscriptions changed with the shard map");
                        subscribe(&client, &topics, &t);
                        topics = t;
                    }
                    Ok(_) => {}
                    Err(e) => tracing::error!(error = %e, "cannot read the store's tenants; MQTT subscriptions unchanged"),
                }
                if released(map.as_deref(), next.as_deref()) {
                    // Reconnect, so that the broker sends the held messages again.
                    tracing::info!("a tenant moved here is ours now; reconnecting to receive its held messages");
                    let _ = client.try_disconnect();
                }
                map = next;
            }
            _ = shutdown.changed() => if *shutdown.borrow() { break },
        }
    }
    tracing::info!("MQTT ingest stopping");
    // Let commits that are under way acknowledge, then leave (the session stays at the broker).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _ = client.try_disconnect();
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        while let Ok(ev) = eventloop.poll().await {
            if matches!(ev, Event::Outgoing(rumqttc::Outgoing::Disconnect)) {
                break;
            }
        }
    })
    .await;
}

/// Moves the subscriptions from `old` to `topics` (not awaited: the caller polls the event
/// loop): unsubscribes what `old` has and `topics` not, subscribes all of `topics` (again, on a
/// reconnect). A persistent session keeps its subscriptions across restarts, so a collector
/// that now subscribes per tenant drops the catch-all filter an earlier configuration may have
/// left in its session.
fn subscribe(client: &AsyncClient, old: &[String], topics: &[String]) {
    let catch_all = [topic::ALL_UPLINKS.to_owned()];
    for gone in old.iter().chain(&catch_all).filter(|t| !topics.contains(t)) {
        if let Err(e) = client.try_unsubscribe(gone.clone()) {
            tracing::error!(error = %e, topic = %gone, "cannot unsubscribe");
        }
    }
    let filters = topics.iter().map(|t| rumqttc::SubscribeFilter::new(t.clone(), QoS::AtLeastOnce));
    if let Err(e) = client.try_subscribe_many(filters) {
        tracing::error!(error = %e, "cannot subscribe");
    }
}

/// Checks, commits and acknowledges one message.
async fn message(p: Publish, client: AsyncClient, ingest: Ingest, limits: Limits) {
    let Ingest { writer, store, cluster } = ingest;
    // Topics are the publisher's words: escaped, and refusals logged at a bounded rate.
    let topic = p.topic.as_str();
    let refuse = |reason: String| {
        if writer.stats().log_throttle.allow("mqtt", topic) {
            tracing::warn!(topic = %esc(topic), reason = %esc(&reason), "MQTT message refused");
        }
    };
    match check(&p, &store, cluster.current().as_deref(), &limits) {
        Err(Refusal::Foreign(reason)) => {
            // Another shard's collector gets its own copy through its own subscription.
            writer.stats().foreign_tenant.fetch_add(1, Ordering::Relaxed);
            refuse(reason);
        }
        Err(Refusal::Bad(reason)) => {
            writer.stats().batches_rejected.fetch_add(1, Ordering::Relaxed);
            refuse(reason);
        }
        Err(Refusal::Held(reason)) => {
            if writer.stats().log_throttle.allow("mqtt-held", topic) {
                tracing::info!(topic = %esc(topic), reason = %esc(&reason), "MQTT message held with the broker until the move is done");
            }
            return;
        }
        Err(Refusal::NotNow(reason)) => {
            tracing::error!(topic = %esc(topic), reason = %esc(&reason), "MQTT message not checked; not acknowledged");
            return;
        }
        // The writer counted it.
        Ok((identity, batch)) => match writer.submit(identity, batch, now_ms()).await {
            Ok(AckStatus::Rejected(reason)) => refuse(reason),
            Ok(_) => {}
            Err(e) => {
                // Not stored: no PUBACK, so the broker delivers it again after a reconnect.
                tracing::error!(topic = %esc(topic), error = %e, "MQTT message not stored; not acknowledged");
                return;
            }
        },
    }
    if let Err(e) = client.ack(&p).await {
        tracing::debug!(error = %e, "cannot acknowledge to the broker (disconnected); it will redeliver");
    }
}

/// Why a message is not stored.
enum Refusal {
    /// Refused for good: acknowledged, counted as rejected.
    Bad(String),
    /// Another shard (or none) owns the tenant: acknowledged, counted as foreign.
    Foreign(String),
    /// Cannot tell now: left unacknowledged, so the broker redelivers.
    NotNow(String),
    /// The tenant is moving here: left unacknowledged until the move is done.
    Held(String),
}

/// The identity from the topic, checked against the shard map and the registry, and the
/// decoded batch.
fn check(p: &Publish, store: &Store, cluster: Option<&ShardMap>, limits: &Limits) -> Result<(Identity, ampel_protocol::Batch), Refusal> {
    let (tenant, device) = topic::parse_uplink(&p.topic).map_err(|e| Refusal::Bad(e.to_string()))?;
    let taken = take(cluster, &tenant);
    match (taken, cluster::route(cluster, &tenant)) {
        (Take::Store | Take::StoreIfHeld, _) => {}
        (Take::Hold, _) => return Err(Refusal::Held(format!("tenant {tenant} is moving here from another shard"))),
        (Take::Foreign, Route::Elsewhere(owner)) => {
            return Err(Refusal::Foreign(format!("tenant {tenant} belongs to shard {}", owner.name)));
        }
        (Take::Foreign, _) => return Err(Refusal::Foreign(format!("no shard owns tenant {tenant}"))),
    }
    match store.device(device.as_str()) {
        Ok(Some(rec)) if rec.tenant == tenant.as_str() => {}
        Ok(Some(rec)) => {
            return Err(Refusal::Bad(format!("device {device} published under tenant {tenant}, but is registered to {}", rec.tenant)));
        }
        Ok(None) if taken == Take::StoreIfHeld => {
            return Err(Refusal::Foreign(format!("tenant {tenant} is moving to another shard and device {device} is not stored here")));
        }
        Ok(None) => return Err(Refusal::Bad(format!("device {device} is not registered (issue its certificate with `pki issue`)"))),
        Err(e) => return Err(Refusal::NotNow(format!("registry: {e}"))),
    }
    let batch = codec::decode_batch(&p.payload, limits).map_err(|e| Refusal::Bad(e.to_string()))?;
    Ok((Identity { tenant, device }, batch))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use ampel_protocol::TenantId;

    /// eu-1 and eu-2; `acme` under the shard named by `acme_at`, moving if `moving`.
    fn map(own: &str, acme_at: &str, moving: bool) -> ShardMap {
        let (eu1, eu2) = if acme_at == "eu-1" { ("\"acme\", \"globex\"", "\"initech\"") } else { ("\"globex\"", "\"initech\", \"acme\"") };
        let moving = if moving { "\"acme\"" } else { "" };
        let src = format!(
            "shard = \"{own}\"\nmoving = [{moving}]\n\
             [[shards]]\nname = \"eu-1\"\nquic = \"127.0.0.1:4433\"\ntenants = [{eu1}]\n\
             [[shards]]\nname = \"eu-2\"\nquic = \"127.0.0.1:4434\"\ntenants = [{eu2}]\n"
        );
        toml::from_str(&src).unwrap()
    }

    fn config(topic: Option<&str>) -> MqttConfig {
        MqttConfig {
            broker: "127.0.0.1:8883".into(),
            server_name: None,
            client_id: None,
            topic: topic.map(str::to_owned),
            ca: None,
            cert: "c.pem".into(),
            key: "k.pem".into(),
            inflight: 100,
        }
    }

    /// A store holding device fw-a of acme.
    fn store_with_acme(dir: &Path) -> Store {
        let store = Store::open(dir, crate::store::StoreOptions::default()).unwrap();
        store.register_device(&TenantId::new("acme").unwrap(), &ampel_protocol::DeviceId::new("fw-a").unwrap(), 0).unwrap();
        store
    }

    #[test]
    fn a_moving_tenant_is_kept_by_its_old_shard_and_held_by_its_new_one_until_the_move_is_done() {
        let acme = TenantId::new("acme").unwrap();
        let (before, during, after) = (map("eu-1", "eu-1", false), map("eu-1", "eu-2", true), map("eu-1", "eu-2", false));
        assert_eq!([&before, &during, &after].map(|m| take(Some(m), &acme)), [Take::Store, Take::StoreIfHeld, Take::Foreign]);
        let (before, during, after) = (map("eu-2", "eu-1", false), map("eu-2", "eu-2", true), map("eu-2", "eu-2", false));
        assert_eq!([&before, &during, &after].map(|m| take(Some(m), &acme)), [Take::Foreign, Take::Hold, Take::Store]);
        assert_eq!(take(None, &acme), Take::Store, "without [cluster] every tenant is stored");
        // Only the end of the hold asks the broker for the held messages again.
        assert!(released(Some(&during), Some(&after)));
        assert!(!released(Some(&before), Some(&during)) && !released(Some(&after), Some(&after)) && !released(None, None));
    }

    #[test]
    fn subscriptions_follow_the_map_and_the_old_owner_listens_until_the_move_is_done() {
        let dir = tempfile::tempdir().unwrap();
        let old_owner = store_with_acme(dir.path());
        let other = tempfile::tempdir().unwrap();
        let new_owner = Store::open(other.path(), crate::store::StoreOptions::default()).unwrap();
        let cfg = config(None);
        let subs =
            |own: &str, acme_at: &str, moving: bool, store: &Store| subscriptions(&cfg, Some(&map(own, acme_at, moving)), store).unwrap();
        let (acme, globex, initech) = ("ampel/v1/acme/+/up", "ampel/v1/globex/+/up", "ampel/v1/initech/+/up");
        assert_eq!(subs("eu-1", "eu-1", false, &old_owner), [acme, globex]);
        assert_eq!(subs("eu-1", "eu-2", true, &old_owner), [globex, acme], "the old owner keeps acme while it moves");
        assert_eq!(subs("eu-1", "eu-2", false, &old_owner), [globex]);
        assert_eq!(subs("eu-2", "eu-2", true, &new_owner), [initech, acme], "the new owner queues acme from the first reload on");
        assert_eq!(subs("eu-1", "eu-2", true, &new_owner), [globex], "a shard holding none of acme does not listen");
        assert_eq!(subscriptions(&cfg, None, &old_owner).unwrap(), [topic::ALL_UPLINKS]);
        let hand_set = config(Some("ampel/v1/+/+/up"));
        assert_eq!(subscriptions(&hand_set, Some(&map("eu-1", "eu-1", false)), &old_owner).unwrap(), ["ampel/v1/+/+/up"]);
    }
}
