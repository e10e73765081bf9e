//! Shards: a fleet split across collectors by tenant.
//!
//! `[cluster]` in collector.toml names this collector's shard and the map every collector of
//! the deployment reads: each shard's name, its QUIC and HTTP addresses and the tenants it owns.
//! A collector stores only batches of the tenants its shard owns; a QUIC agent of another
//! tenant is told the owning shard's address ([`ShardMap::route`]), an MQTT collector subscribes
//! only to its tenants' topics ([`ShardMap::uplink_topics`]). Without `[cluster]` a collector
//! owns every tenant, as before.
//!
//! The map is parsed into a [`ShardMap`] that cannot hold a bad one: unique shard names, every
//! tenant owned by exactly one shard, this collector's shard in the map, addresses that parse.

pub mod fleet;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use ampel_protocol::{TenantId, shard, topic};
use rustls_pki_types::ServerName;
use serde::Deserialize;

pub mod live;

/// `[cluster]` as written in the file; [`ShardMap`] is what it becomes.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ClusterConfig {
    /// The name of this collector's shard.
    pub shard: String,
    /// Every shard of the deployment (`[[cluster.shards]]`).
    pub shards: Vec<ShardConfig>,
    /// Tenants being moved to the shard the map names for them: no shard accepts their
    /// batches until they are taken off this list (see "Moving a tenant" in the README).
    #[serde(default)]
    pub moving: Vec<TenantId>,
}

/// One `[[cluster.shards]]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ShardConfig {
    /// The shard's name, unique in the map.
    pub name: String,
    /// `host:port` agents reach the shard's QUIC listener at.
    pub quic: HostPort,
    /// `host:port` of the shard's HTTP listener (for the fleet view across shards).
    #[serde(default)]
    pub http: Option<HostPort>,
    /// The tenants the shard owns.
    pub tenants: Vec<TenantId>,
}

/// A `host:port` address: an IP address or a DNS name, and a port from 1 to 65535.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPort {
    host: String,
    port: u16,
}

impl HostPort {
    /// The host part, without brackets around an IPv6 address.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl std::str::FromStr for HostPort {
    type Err = String;

    fn from_str(s: &str) -> Result<HostPort, String> {
        let (host, port) = s.rsplit_once(':').ok_or_else(|| format!("{s:?} has no port: write host:port"))?;
        let port: u16 = port.parse().ok().filter(|p| *p != 0).ok_or_else(|| format!("{s:?} has an invalid port: use 1 to 65535"))?;
        let bare = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
        if bare.contains(':') && bare.len() == host.len() {
            return Err(format!("{s:?}: write an IPv6 address in brackets, e.g. \"[2001:db8::1]:4433\""));
        }
        ServerName::try_from(bare).map_err(|_| format!("{s:?}: {bare:?} is neither an IP address nor a valid DNS name"))?;
        Ok(HostPort { host: bare.to_owned(), port })
    }
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') { write!(f, "[{}]:{}", self.host, self.port) } else { write!(f, "{}:{}", self.host, self.port) }
    }
}

impl<'de> Deserialize<'de> for HostPort {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<HostPort, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

/// Why a `[cluster]` map is not usable.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ClusterError {
    /// Two `[[cluster.shards]]` carry the same name.
    #[error("shard {0:?} is named twice in [[cluster.shards]]")]
    DuplicateShard(String),
    /// A tenant is listed by two shards (or twice by one).
    #[error("tenant {tenant:?} is owned by both {first:?} and {second:?}; a tenant must have exactly one shard")]
    TwoOwners {
        /// The tenant.
        tenant: String,
        /// The shard that listed it first.
        first: String,
        /// The shard that listed it again.
        second: String,
    },
    /// `[cluster] shard` names no entry of the map.
    #[error("[cluster] shard = {0:?} is not one of the [[cluster.shards]]")]
    UnknownOwnShard(String),
    /// The map has no shards.
    #[error("[cluster] needs at least one [[cluster.shards]] entry")]
    Empty,
    /// `[cluster] moving` names a tenant no shard owns.
    #[error("[cluster] moving names tenant {0:?}, which no shard lists: list it under the shard it moves to")]
    MovingUnowned(String),
}

/// Where a tenant's batches belong, seen from this collector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route<'a> {
    /// This collector's shard owns the tenant: store.
    Own,
    /// Another shard owns it: do not store; the agent belongs there.
    Elsewhere(&'a ShardConfig),
    /// No shard owns it: do not store (the agent keeps its data until the map names an owner).
    Unowned,
    /// It is moving to the shard named: nobody stores it until the move is done (the agent
    /// keeps its data meanwhile).
    Moving(&'a ShardConfig),
}

/// The checked shard map and this collector's place in it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "ClusterConfig")]
pub struct ShardMap {
    own: usize,
    shards: Vec<ShardConfig>,
    owner: BTreeMap<TenantId, usize>,
    moving: BTreeSet<TenantId>,
}

impl TryFrom<ClusterConfig> for ShardMap {
    type Error = ClusterError;

    fn try_from(cfg: ClusterConfig) -> Result<ShardMap, ClusterError> {
        if cfg.shards.is_empty() {
            return Err(ClusterError::Empty);
        }
        let mut names = BTreeSet::new();
        for s in &cfg.shards {
            if !names.insert(s.name.as_str()) {
                return Err(ClusterError::DuplicateShard(s.name.clone()));
            }
        }
        let mut owner: BTreeMap<TenantId, usize> = BTreeMap::new();
        for (i, s) in cfg.shards.iter().enumerate() {
            for t in &s.tenants {
                if let Some(first) = owner.insert(t.clone(), i) {
                    let (first, second) = (cfg.shards[first].name.clone(), s.name.clone());
                    return Err(ClusterError::TwoOwners { tenant: t.to_string(), first, second });
                }
            }
        }
        if let Some(t) = cfg.moving.iter().find(|t| !owner.contains_key(*t)) {
            return Err(ClusterError::MovingUnowned(t.to_string()));
        }
        let own = cfg.shards.iter().position(|s| s.name == cfg.shard).ok_or(ClusterError::UnknownOwnShard(cfg.shard))?;
        Ok(ShardMap { own, shards: cfg.shards, owner, moving: cfg.moving.into_iter().collect() })
    }
}

impl ShardMap {
    /// This collector's shard.
    pub fn own(&self) -> &ShardConfig {
        &self.shards[self.own]
    }

    /// Every shard of the map, this one included.
    pub fn shards(&self) -> &[ShardConfig] {
        &self.shards
    }

    /// Where `tenant`'s batches belong.
    pub fn route(&self, tenant: &TenantId) -> Route<'_> {
        match self.owner.get(tenant) {
            Some(&i) if self.moving.contains(tenant) => Route::Moving(&self.shards[i]),
            Some(&i) if i == self.own => Route::Own,
            Some(&i) => Route::Elsewhere(&self.shards[i]),
            None => Route::Unowned,
        }
    }

    /// Every tenant the map lists, with its shard and whether it is moving.
    pub fn tenants(&self) -> impl Iterator<Item = (&TenantId, &ShardConfig, bool)> {
        self.owner.iter().map(|(t, &i)| (t, &self.shards[i], self.moving.contains(t)))
    }

    /// The MQTT topic filters of this shard's tenants: `ampel/v1/<tenant>/+/up` each.
    pub fn uplink_topics(&self) -> Vec<String> {
        self.own().tenants.iter().map(topic::tenant_uplinks).collect()
    }
}

/// What a collector does with a tenant's batches: with no `[cluster]` it owns every tenant.
pub fn route<'a>(map: Option<&'a ShardMap>, tenant: &TenantId) -> Route<'a> {
    map.map_or(Route::Own, |m| m.route(tenant))
}

/// How a QUIC data connection of `tenant` is closed when this collector must not store its
/// batches: the application close code and reason ([`ampel_protocol::shard`]). `None`: ours.
pub fn quic_refusal(map: Option<&ShardMap>, tenant: &TenantId) -> Option<(u32, Vec<u8>)> {
    match route(map, tenant) {
        Route::Own => None,
        Route::Elsewhere(owner) => {
            let redirect = shard::Redirect { shard: owner.name.clone(), address: owner.quic.to_string() };
            Some((shard::CLOSE_WRONG_SHARD, redirect.encode()))
        }
        Route::Unowned => Some((shard::CLOSE_NO_SHARD, b"no shard owns this tenant".to_vec())),
        // The same answer: the agent keeps its data and retries later.
        Route::Moving(_) => Some((shard::CLOSE_NO_SHARD, b"this tenant is moving between shards".to_vec())),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn map(src: &str) -> Result<ShardMap, String> {
        #[derive(Deserialize)]
        struct Top {
            cluster: ShardMap,
        }
        toml::from_str::<Top>(src).map(|t| t.cluster).map_err(|e| e.message().to_owned())
    }

    const TWO: &str = "[cluster]\nshard = \"eu-1\"\n\
        [[cluster.shards]]\nname = \"eu-1\"\nquic = \"eu-1.example.net:4433\"\nhttp = \"eu-1.example.net:8443\"\ntenants = [\"acme\", \"globex\"]\n\
        [[cluster.shards]]\nname = \"eu-2\"\nquic = \"[2001:db8::2]:4433\"\ntenants = [\"initech\"]\n";

    fn tenant(s: &str) -> TenantId {
        TenantId::new(s).unwrap()
    }

    #[test]
    fn a_map_routes_own_tenants_here_others_to_their_shard_and_unlisted_nowhere() {
        let m = map(TWO).unwrap();
        assert_eq!(m.own().name, "eu-1");
        assert_eq!(m.route(&tenant("acme")), Route::Own);
        let Route::Elsewhere(owner) = m.route(&tenant("initech")) else { panic!("initech is eu-2's") };
        assert_eq!((owner.name.as_str(), owner.quic.to_string()), ("eu-2", "[2001:db8::2]:4433".to_owned()));
        assert_eq!(m.route(&tenant("umbrella")), Route::Unowned);
        assert_eq!(route(None, &tenant("umbrella")), Route::Own, "without [cluster] every tenant is ours");
        assert_eq!(m.uplink_topics(), ["ampel/v1/acme/+/up", "ampel/v1/globex/+/up"]);
    }

    #[test]
    fn a_foreign_tenant_is_closed_with_the_owners_address_an_unowned_one_with_no_shard() {
        let m = map(TWO).unwrap();
        assert_eq!(quic_refusal(Some(&m), &tenant("acme")), None);
        assert_eq!(quic_refusal(None, &tenant("initech")), None);
        let (code, reason) = quic_refusal(Some(&m), &tenant("initech")).unwrap();
        assert_eq!(code, shard::CLOSE_WRONG_SHARD);
        let redirect = shard::Redirect::decode(&reason).unwrap();
        assert_eq!((redirect.shard.as_str(), redirect.address.as_str()), ("eu-2", "[2001:db8::2]:4433"));
        assert_eq!(quic_refusal(Some(&m), &tenant("umbrella")).map(|r| r.0), Some(shard::CLOSE_NO_SHARD));
    }

    #[test]
    fn a_tenant_with_two_owners_a_name_twice_or_a_missing_own_shard_is_refused() {
        let twice = TWO.replace("[\"initech\"]", "[\"initech\", \"acme\"]");
        assert!(map(&twice).unwrap_err().contains("tenant \"acme\" is owned by both \"eu-1\" and \"eu-2\""));
        let same_name = TWO.replace("name = \"eu-2\"", "name = \"eu-1\"");
        assert!(map(&same_name).unwrap_err().contains("shard \"eu-1\" is named twice"));
        let missing = TWO.replace("shard = \"eu-1\"", "shard = \"us-1\"");
        assert!(map(&missing).unwrap_err().contains("shard = \"us-1\" is not one of the [[cluster.shards]]"));
        assert!(map("[cluster]\nshard = \"a\"\nshards = []\n").unwrap_err().contains("at least one"));
    }

    #[test]
    fn a_moving_tenant_is_refused_by_every_shard_until_the_move_is_done() {
        let moving = TWO.replacen("[[cluster.shards]]", "moving = [\"initech\"]\n[[cluster.shards]]", 1);
        let m = map(&moving).unwrap();
        assert!(matches!(m.route(&tenant("initech")), Route::Moving(s) if s.name == "eu-2"));
        assert_eq!(m.route(&tenant("acme")), Route::Own);
        assert_eq!(quic_refusal(Some(&m), &tenant("initech")).map(|r| r.0), Some(shard::CLOSE_NO_SHARD));
        let unowned = TWO.replacen("[[cluster.shards]]", "moving = [\"umbrella\"]\n[[cluster.shards]]", 1);
        assert!(map(&unowned).unwrap_err().contains("moving names tenant \"umbrella\""));
    }

    #[test]
    fn the_shipped_example_map_parses_when_uncommented() {
        let shipped = include_str!("../../../packaging/collector.toml");
        let start = shipped.find("# [cluster]").unwrap();
        let end = start + shipped[start..].find("\n[pki]").unwrap();
        let keys = ["[cluster]", "[[cluster.shards]]", "shard =", "name =", "quic =", "http =", "tenants ="];
        let text: String = shipped[start..end]
            .lines()
            .filter_map(|l| l.strip_prefix("# ").filter(|l| keys.iter().any(|k| l.starts_with(k))))
            .map(|l| format!("{l}\n"))
            .collect();
        let m = map(&text).unwrap();
        assert_eq!((m.own().name.as_str(), m.own().http.as_ref().map(HostPort::port)), ("eu-1", Some(8443)));
        assert!(matches!(m.route(&tenant("initech")), Route::Elsewhere(s) if s.name == "eu-2"));
    }

    #[test]
    fn addresses_and_tenant_names_must_parse() {
        for (bad, says) in [
            ("eu-2.example.net", "has no port"),
            ("eu-2.example.net:0", "invalid port"),
            ("eu-2.example.net:99999", "invalid port"),
            ("2001:db8::2:4433", "in brackets"),
            ("bad host:4433", "neither an IP address nor a valid DNS name"),
        ] {
            let err = map(&TWO.replace("[2001:db8::2]:4433", bad)).unwrap_err();
            assert!(err.contains(says), "{bad}: {err}");
        }
        assert!(map(&TWO.replace("\"initech\"", "\"ini/tech\"")).is_err(), "a tenant id that could not be a topic level");
    }
}
