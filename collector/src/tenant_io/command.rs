//! The `tenant` subcommands over [`super::export`] and [`super::import`].

use anyhow::{Context, Result, bail};

use crate::cli::{TenantCommand, open_store};
use crate::cluster::Route;
use crate::config::Config;
use crate::ingest::quic::now_ms;
use crate::store::{Store, exclusive};

/// Runs one `tenant` subcommand and prints what it did.
pub fn run(cfg: &Config, cmd: TenantCommand) -> Result<()> {
    match cmd {
        TenantCommand::Export { tenant, output } => {
            let store = open_store(cfg)?;
            let shard = cfg.cluster.as_ref().map(|m| m.own().name.as_str());
            let t = super::export(&store, &tenant, shard, now_ms(), &output)
                .with_context(|| format!("exporting tenant {tenant} to {}", output.display()))?;
            println!(
                "exported tenant {tenant}: {} devices, {} points, {} rollup buckets, {} alerts, {} states ({} items) to {}",
                t.devices,
                t.points,
                t.buckets,
                t.alerts,
                t.states,
                t.items,
                output.display()
            );
            Ok(())
        }
        TenantCommand::Import { file } => {
            // Held until the import is committed: no collector starts on the store meanwhile.
            let (_lock, store) = locked_store(cfg, "importing")?;
            let done = super::import(&store, &file).with_context(|| format!("importing {}", file.display()))?;
            let (h, a) = (&done.header, &done.added);
            println!(
                "imported tenant {} (exported from shard {}): new here {} points, {} rollup buckets, {} alerts, {} states; {} items found stored already",
                h.tenant,
                h.shard.as_deref().unwrap_or("-"),
                a.points,
                a.buckets,
                a.alerts,
                a.states,
                a.kept
            );
            Ok(())
        }
        TenantCommand::Delete { tenant } => {
            if let Some(map) = &cfg.cluster {
                let here = match map.route(&tenant) {
                    Route::Own => true,
                    Route::Moving(to) => to.name == map.own().name,
                    Route::Elsewhere(_) | Route::Unowned => false,
                };
                if here {
                    bail!("tenant {tenant} is listed under this shard ({}) in [cluster]: move it away first", map.own().name);
                }
            }
            let (_lock, store) = locked_store(cfg, "deleting a tenant")?;
            let gone = store.delete_tenant(tenant.as_str()).with_context(|| format!("deleting tenant {tenant}"))?;
            println!(
                "deleted tenant {tenant}: {} devices, {} series, {} points, {} alerts",
                gone.devices, gone.series, gone.points, gone.alerts
            );
            Ok(())
        }
    }
}

/// The store, with its writer lock held (refused while `serve` runs).
fn locked_store(cfg: &Config, doing: &str) -> Result<(exclusive::WriterLock, Store)> {
    let dir = cfg.store_dir();
    crate::files::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let lock = exclusive::lock(&dir).with_context(|| format!("{doing} needs the collector stopped"))?;
    Ok((lock, open_store(cfg)?))
}
