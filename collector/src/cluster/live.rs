//! The shard map in force, replaced on SIGHUP.
//!
//! The QUIC listener reads [`LiveMap::current`] once per data connection; a reload swaps the
//! map and the server then closes the connections of tenants this shard no longer takes
//! ([`ShardMap::route`] is no longer `Own`), so nothing of them reaches the writer after the
//! swap but batches already handed to it. The MQTT ingest reads it per message and waits on
//! [`LiveMap::changes`] to subscribe and unsubscribe tenants. A reload may change owners,
//! tenants and `moving`, not which shard this collector is nor whether it has a map at all:
//! those name its MQTT session and need a restart.

use std::sync::{Arc, PoisonError, RwLock};

use tokio::sync::watch;

use super::{Route, ShardMap};

/// The map in force, shared by the listeners and the reload. `None`: no `[cluster]`.
#[derive(Debug, Clone)]
pub struct LiveMap {
    map: Arc<RwLock<Option<Arc<ShardMap>>>>,
    /// Counts the replacements; its receivers wake on each.
    replaced: Arc<watch::Sender<u64>>,
}

impl Default for LiveMap {
    fn default() -> LiveMap {
        LiveMap::new(None)
    }
}

/// Why a reloaded map is not applied.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReloadError {
    /// `[cluster]` was added or removed.
    #[error("[cluster] was added or removed; that needs a restart")]
    Presence,
    /// `[cluster] shard` changed.
    #[error("[cluster] shard changed from {from:?} to {to:?}; that needs a restart")]
    OwnShard {
        /// The shard in force.
        from: String,
        /// The shard the file names now.
        to: String,
    },
}

impl LiveMap {
    /// A live map starting with `map`.
    pub fn new(map: Option<ShardMap>) -> LiveMap {
        LiveMap { map: Arc::new(RwLock::new(map.map(Arc::new))), replaced: Arc::new(watch::channel(0).0) }
    }

    /// The map in force.
    pub fn current(&self) -> Option<Arc<ShardMap>> {
        self.map.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Wakes (`changed()`) each time a reload puts a map in force.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.replaced.subscribe()
    }

    /// Checks that `next` may replace the map in force without a restart.
    pub fn check(&self, next: Option<&ShardMap>) -> Result<(), ReloadError> {
        match (self.current().as_deref(), next) {
            (None, None) => Ok(()),
            (Some(old), Some(new)) if old.own().name == new.own().name => Ok(()),
            (Some(old), Some(new)) => Err(ReloadError::OwnShard { from: old.own().name.clone(), to: new.own().name.clone() }),
            _ => Err(ReloadError::Presence),
        }
    }

    /// Puts `next` in force (after [`LiveMap::check`]) and says, one line per tenant, what
    /// changed for this shard.
    pub fn replace(&self, next: Option<ShardMap>) -> Result<Vec<String>, ReloadError> {
        self.check(next.as_ref())?;
        let next = next.map(Arc::new);
        let old = std::mem::replace(&mut *self.map.write().unwrap_or_else(PoisonError::into_inner), next.clone());
        self.replaced.send_modify(|n| *n += 1);
        Ok(changes(old.as_deref(), next.as_deref()))
    }
}

/// How a tenant is routed, in words.
fn describe(route: Route<'_>) -> String {
    match route {
        Route::Own => "stored here".to_owned(),
        Route::Elsewhere(s) => format!("sent to shard {}", s.name),
        Route::Unowned => "owned by no shard".to_owned(),
        Route::Moving(s) => format!("moving to shard {}, refused everywhere", s.name),
    }
}

/// The tenants whose route differs between two maps: "tenant: before -> after".
pub fn changes(old: Option<&ShardMap>, new: Option<&ShardMap>) -> Vec<String> {
    let mut tenants: Vec<_> = old.into_iter().chain(new).flat_map(|m| m.tenants().map(|(t, _, _)| t.clone())).collect();
    tenants.sort();
    tenants.dedup();
    tenants
        .into_iter()
        .filter_map(|t| {
            let (a, b) = (describe(super::route(old, &t)), describe(super::route(new, &t)));
            (a != b).then(|| format!("{t}: {a} -> {b}"))
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use ampel_protocol::TenantId;

    fn map(own: &str, eu1: &str, eu2: &str, moving: &str) -> ShardMap {
        let src = format!(
            "shard = \"{own}\"\nmoving = [{moving}]\n\
             [[shards]]\nname = \"eu-1\"\nquic = \"eu-1.example.net:4433\"\ntenants = [{eu1}]\n\
             [[shards]]\nname = \"eu-2\"\nquic = \"eu-2.example.net:4433\"\ntenants = [{eu2}]\n"
        );
        toml::from_str(&src).unwrap()
    }

    #[test]
    fn a_reload_moves_a_tenant_through_moving_and_names_each_step() {
        let live = LiveMap::new(Some(map("eu-1", "\"acme\", \"globex\"", "\"initech\"", "")));
        let step1 = live.replace(Some(map("eu-1", "\"globex\"", "\"initech\", \"acme\"", "\"acme\""))).unwrap();
        assert_eq!(step1, ["acme: stored here -> moving to shard eu-2, refused everywhere"]);
        let acme = TenantId::new("acme").unwrap();
        assert!(matches!(live.current().unwrap().route(&acme), Route::Moving(s) if s.name == "eu-2"));
        let step2 = live.replace(Some(map("eu-1", "\"globex\"", "\"initech\", \"acme\"", ""))).unwrap();
        assert_eq!(step2, ["acme: moving to shard eu-2, refused everywhere -> sent to shard eu-2"]);
        assert!(live.replace(Some(map("eu-1", "\"globex\"", "\"initech\", \"acme\"", ""))).unwrap().is_empty());
    }

    #[test]
    fn a_reload_that_renames_this_shard_or_drops_the_map_is_refused_and_changes_nothing() {
        let first = map("eu-1", "\"acme\"", "\"initech\"", "");
        let live = LiveMap::new(Some(first.clone()));
        let renamed = live.replace(Some(map("eu-2", "\"acme\"", "\"initech\"", "")));
        assert_eq!(renamed, Err(ReloadError::OwnShard { from: "eu-1".into(), to: "eu-2".into() }));
        assert_eq!(live.replace(None), Err(ReloadError::Presence));
        assert_eq!(live.current().as_deref(), Some(&first));
        assert_eq!(LiveMap::new(None).replace(Some(first)), Err(ReloadError::Presence));
    }
}
