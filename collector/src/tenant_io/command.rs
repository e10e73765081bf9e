//! The `tenant` subcommands over [`super::export`], [`super::import`] and the deletes.

use std::collections::BTreeSet;

use ampel_protocol::TenantId;
use anyhow::{Context, Result, bail};

use super::Delivery;
use crate::archive::Archive;
use crate::cli::{TenantCommand, open_store};
use crate::cluster::Route;
use crate::config::Config;
use crate::ingest::quic::now_ms;
use crate::schedule::DeliveryStore;
use crate::store::{Store, exclusive};

/// Runs one `tenant` subcommand and prints what it did.
pub fn run(cfg: &Config, cmd: TenantCommand) -> Result<()> {
    match cmd {
        TenantCommand::Export { tenant, output } => {
            let store = open_store(cfg)?;
            let (delivery, archive) = open_delivery(cfg)?;
            let shard = cfg.cluster.as_ref().map(|m| m.own().name.as_str());
            let d = Delivery { store: &delivery, archive: &archive };
            let done = super::export(&store, d, &job_addresses(cfg, &tenant), &tenant, shard, now_ms(), &output)
                .with_context(|| format!("exporting tenant {tenant} to {}", output.display()))?;
            let t = &done.totals;
            println!(
                "exported tenant {tenant}: {} devices, {} points, {} rollup buckets, {} alerts, {} states ({} items); \
                 {} archived reports ({} runs, {} PDF files, {} bytes), {} recipients, {} consent log entries to {}",
                t.devices,
                t.points,
                t.buckets,
                t.alerts,
                t.states,
                t.items,
                t.reports,
                t.runs,
                t.files,
                t.file_bytes,
                t.recipients,
                t.consent,
                output.display()
            );
            for name in &done.missing {
                println!("WARNING: archive file {name} is missing here; its record travels without it");
            }
            Ok(())
        }
        TenantCommand::Import { file } => {
            // Held until the import is committed: no collector starts on the store meanwhile.
            let (_lock, store) = locked_store(cfg, "importing")?;
            let (delivery, archive) = open_delivery(cfg)?;
            let d = Delivery { store: &delivery, archive: &archive };
            let done = super::import(&store, d, &file).with_context(|| format!("importing {}", file.display()))?;
            print_import(&done);
            Ok(())
        }
        TenantCommand::Delete { tenant } => {
            let mut to = None;
            if let Some(map) = &cfg.cluster {
                let here = match map.route(&tenant) {
                    Route::Own => true,
                    Route::Moving(shard) | Route::Elsewhere(shard) if shard.name != map.own().name => {
                        to = Some(shard.name.clone());
                        false
                    }
                    Route::Moving(_) => true,
                    Route::Elsewhere(_) => false,
                    Route::Unowned => false,
                };
                if here {
                    bail!("tenant {tenant} is listed under this shard ({}) in [cluster]: move it away first", map.own().name);
                }
            }
            let (_lock, store) = locked_store(cfg, "deleting a tenant")?;
            let gone = store.delete_tenant(tenant.as_str()).with_context(|| format!("deleting tenant {tenant}"))?;
            let (delivery, archive) = open_delivery(cfg)?;
            let d = Delivery { store: &delivery, archive: &archive };
            let archived = super::delete_archive(d, &tenant, to.as_deref(), now_ms())
                .with_context(|| format!("deleting the archived reports of tenant {tenant}"))?;
            println!(
                "deleted tenant {tenant}: {} devices, {} series, {} points, {} alerts, {} archived reports ({} PDF files); \
                 recipients' opt-in states are kept (other tenants' jobs may name the same addresses)",
                gone.devices, gone.series, gone.points, gone.alerts, archived.reports, archived.files
            );
            Ok(())
        }
    }
}

fn print_import(done: &super::Imported) {
    let (h, a, d) = (&done.header, &done.added, &done.delivery);
    let m = &d.merge;
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
    println!(
        "archive: {} reports added ({} there already), {} runs added ({} kept: made here), {} PDF files placed ({} there already); \
         recipients: {} new, {} changed by the merge; {} consent log entries appended",
        m.reports, m.reports_kept, m.runs, m.runs_kept, d.files, d.files_kept, m.recipients, m.recipients_changed, m.consent
    );
    for (theirs, ours) in &m.remapped {
        println!("report {theirs} of shard {} is report {ours} here (its id was taken)", h.shard.as_deref().unwrap_or("-"));
    }
    for (theirs, ours) in &d.renamed {
        println!("archive file {theirs} is {ours} here (another file had its name)");
    }
}

/// The delivery store and the archive of `cfg`.
fn open_delivery(cfg: &Config) -> Result<(DeliveryStore, Archive)> {
    let dir = cfg.delivery_dir();
    let store = DeliveryStore::open(&dir).with_context(|| format!("opening the delivery store in {}", dir.display()))?;
    Ok((store, Archive::new(&cfg.archive_dir())))
}

/// The bare, lower-case addresses of the jobs covering `tenant`.
fn job_addresses(cfg: &Config, tenant: &TenantId) -> BTreeSet<String> {
    let jobs = cfg.jobs.iter().filter(|j| j.tenants.contains(tenant));
    jobs.flat_map(|j| j.to.0.iter().chain(&j.cc.0)).map(|m| crate::recipients::bare(m)).collect()
}

/// The store, with its writer lock held (refused while `serve` runs).
fn locked_store(cfg: &Config, doing: &str) -> Result<(exclusive::WriterLock, Store)> {
    let dir = cfg.store_dir();
    crate::files::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let lock = exclusive::lock(&dir).with_context(|| format!("{doing} needs the collector stopped"))?;
    Ok((lock, open_store(cfg)?))
}
