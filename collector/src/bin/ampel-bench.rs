//! `ampel-bench`: throughput and latency figures of the collector's store and ingest path.
//!
//! ```text
//! ampel-bench store        # commit and fold throughput, 10 000 series, durable
//! ampel-bench query        # 30-day series at 1 h step, 30-day alert top-10 over 1 M alerts
//! ampel-bench ingest       # QUIC agents with mutual TLS -> listener -> writer -> store
//! ampel-bench connections  # many agents connecting at once, small batches
//! ampel-bench report       # render a 30-day, 50-device report: time, size, peak RSS
//! ampel-bench density      # bytes on disk per point: ingest bench data, a week of realistic agent data
//! ampel-bench console      # fleet page of 1,000 tenants, tenant page of 50 devices x 30 days: time, weight
//! ```
//!
//! Each prints `name: value unit` lines. Build with `--release` for figures worth recording.

#[path = "../bench/mod.rs"]
mod bench;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "ampel-bench", about = "Benchmarks of the Ampel collector's store, ingest path and reports")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Points per second through the durable group commit, then through the fold.
    Store(bench::store::StoreArgs),
    /// Report queries over a month of data and a million alerts.
    Query(bench::query::QueryArgs),
    /// Agents streaming over QUIC with mutual TLS into the real listener and writer.
    Ingest(bench::quic::IngestArgs),
    /// Many agents connecting at once, each sending small batches.
    Connections(bench::quic::ConnectionsArgs),
    /// Render time, PDF size and peak memory of a 30-day, 50-device report.
    Report(bench::report::ReportArgs),
    /// Bytes on disk per point, per database and in all, on generated or existing data.
    Density(bench::density::DensityArgs),
    /// Server time and weight of the console's fleet and tenant pages, against the real server.
    Console(bench::console::ConsoleArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Store(a) => bench::store::run(a),
        Command::Query(a) => bench::query::run(a),
        Command::Report(a) => bench::report::run(a),
        Command::Density(a) => bench::density::run(a),
        Command::Ingest(a) => runtime().and_then(|rt| rt.block_on(bench::quic::ingest(a))),
        Command::Connections(a) => runtime().and_then(|rt| rt.block_on(bench::quic::connections(a))),
        Command::Console(a) => runtime().and_then(|rt| rt.block_on(bench::console::run(a))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ampel-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().enable_all().build()?)
}
