//! The `tenant` subcommands over [`super::export`] and [`super::import`].

use anyhow::{Context, Result};

use crate::cli::{TenantCommand, open_store};
use crate::config::Config;
use crate::ingest::quic::now_ms;
use crate::store::exclusive;

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
            let dir = cfg.store_dir();
            crate::files::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            // Held until the import is committed: no collector starts on the store meanwhile.
            let _lock = exclusive::lock(&dir).context("importing needs the collector stopped")?;
            let store = open_store(cfg)?;
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
    }
}
