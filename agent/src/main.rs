//! `ampel-agent`: thin command line around the `ampel_agent` library.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use ampel_agent::{Agent, AgentConfig};
use anyhow::Context;
use clap::{Parser, Subcommand};
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Exit code for an unusable configuration (EX_CONFIG from sysexits.h), so systemd and
/// packaging scripts can tell "fix the config" from "something broke".
const EX_CONFIG: u8 = 78;

/// Ampel agent: gathers performance and inventory data on this host and streams it to the
/// Ampel collector over QUIC with mutual TLS.
///
/// Logs go to stderr; set RUST_LOG (e.g. RUST_LOG=debug or RUST_LOG=ampel_agent=debug) to
/// change what is logged (default: info).
#[derive(Debug, Parser)]
#[command(name = "ampel-agent", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Gather a batch every interval and send it to the collector until SIGINT or SIGTERM;
    /// SIGHUP re-checks the configuration and certificates.
    Run {
        /// The configuration file.
        #[arg(short, long, value_name = "FILE", default_value = "/etc/ampel/agent.toml")]
        config: PathBuf,
    },
    /// Gather one batch, print it as JSON and exit. Sends nothing, writes nothing.
    Once {
        /// The configuration file.
        #[arg(short, long, value_name = "FILE", default_value = "/etc/ampel/agent.toml")]
        config: PathBuf,
    },
    /// Read a whole file with a source's parser and print one JSON record per line, or with
    /// --summary only the counts. Exits 0 when the file was read, even with malformed lines.
    Parse {
        /// The file's format.
        #[arg(long, value_enum)]
        format: ampel_agent::parse_cmd::Format,
        /// Print only {"lines", "records", "event_types" (eve), "malformed"}.
        #[arg(long)]
        summary: bool,
        /// The file to read.
        file: PathBuf,
    },
    /// Enroll this device with a one-time token from `ampel-collector pki token`: make a key
    /// here, have the collector sign it, and write key, certificate and CA to the paths in the
    /// configuration's [collector] section. The collector is pinned by the CA fingerprint in
    /// the token.
    Enroll {
        /// The collector, HOST:PORT (its QUIC port).
        #[arg(long, value_name = "HOST:PORT")]
        server: String,
        /// The token (ampel1:...). Also read from AMPEL_ENROLL_TOKEN, which keeps it out of
        /// the process list.
        #[arg(long, env = "AMPEL_ENROLL_TOKEN", hide_env_values = true)]
        token: String,
        /// The configuration file.
        #[arg(short, long, value_name = "FILE", default_value = "/etc/ampel/agent.toml")]
        config: PathBuf,
    },
    /// Check the configuration and that the certificate and key files load. Prints
    /// "FILE: ok" or the problem; exits with 78 when the configuration is unusable.
    CheckConfig {
        /// The configuration file.
        #[arg(short, long, value_name = "FILE", default_value = "/etc/ampel/agent.toml")]
        config: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    match cli.command {
        Command::CheckConfig { config } => match prepare(&config) {
            Ok(_) => {
                println!("{}: ok", config.display());
                ExitCode::SUCCESS
            }
            Err(e) => bad_config(e),
        },
        Command::Run { config } => match prepare(&config) {
            Ok(agent) => finish(run(agent, &config)),
            Err(e) => bad_config(e),
        },
        Command::Parse { format, summary, file } => {
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            finish(ampel_agent::parse_cmd::run(format, &file, summary, &mut out).map(|_| ()).map_err(anyhow::Error::from))
        }
        Command::Enroll { server, token, config } => match AgentConfig::load(&config) {
            Ok(config) => finish(enroll(&config, &server, &token)),
            Err(e) => bad_config(e.into()),
        },
        // `once` needs no certificates: it only gathers.
        Command::Once { config } => match AgentConfig::load(&config) {
            Ok(config) => finish(once(&config)),
            Err(e) => bad_config(e.into()),
        },
    }
}

/// Logs to stderr, filtered by `RUST_LOG` (`info`, `ampel_agent=debug,warn`, ...), default info.
///
/// `Targets` understands the usual `target=level` lists; unlike `EnvFilter` it needs no regex
/// engine, which keeps a few hundred KiB out of the binary.
fn init_logging() {
    let spec = std::env::var("RUST_LOG").ok();
    let parsed = spec.as_deref().map(str::parse::<Targets>);
    let filter = match &parsed {
        Some(Ok(t)) => t.clone(),
        _ => Targets::new().with_default(LevelFilter::INFO),
    };
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                // Colour codes only for a person at a terminal, not for the journal.
                .with_ansi(std::io::stderr().is_terminal()),
        )
        .with(filter)
        .init();
    if let (Some(spec), Some(Err(e))) = (spec, parsed) {
        tracing::warn!(rust_log = %spec, error = %e, "RUST_LOG not understood; logging at info");
    }
}

fn bad_config(e: anyhow::Error) -> ExitCode {
    eprintln!("error: {e:#}");
    ExitCode::from(EX_CONFIG)
}

fn finish(outcome: anyhow::Result<()>) -> ExitCode {
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Loads the configuration and everything it names; any failure here is a configuration error.
fn prepare(path: &Path) -> anyhow::Result<Agent> {
    let config = AgentConfig::load(path)?;
    Agent::new(config).with_context(|| format!("{}: unusable configuration", path.display()))
}

fn run(agent: Agent, path: &Path) -> anyhow::Result<()> {
    // Argument and configuration parsing, certificates, sources: done, and their code is not
    // run again (see `resident`); dropping it here keeps it from adding to the runtime's start.
    ampel_agent::resident::release();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().context("starting the runtime")?;
    rt.block_on(async {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
        let hup = signal(SignalKind::hangup()).context("installing the SIGHUP handler")?;
        let shutdown = async move {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
                _ = term.recv() => tracing::info!("SIGTERM received"),
            }
        };
        tokio::select! {
            r = agent.run(shutdown) => r.context("agent stopped"),
            () = reloads(hup, path) => Ok(()),
        }
    })
}

fn enroll(config: &AgentConfig, server: &str, token: &str) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().context("starting the runtime")?;
    let done = rt.block_on(ampel_agent::enroll::enroll(config, server, token)).context("enrolling")?;
    println!(
        "enrolled as device {} of tenant {}; certificate valid until unix time {}",
        done.identity.device, done.identity.tenant, done.not_after
    );
    println!("  key:         {}", config.collector.key.display());
    println!("  certificate: {}", config.collector.cert.display());
    println!("  CA:          {}", config.collector.ca.display());
    Ok(())
}

/// SIGHUP: re-reads the configuration and the certificate files and checks them as
/// `check-config` does. A bad file is refused with its error and the agent keeps running as it
/// was; otherwise the changed keys are logged (they take effect at the next restart).
async fn reloads(mut hup: tokio::signal::unix::Signal, path: &Path) {
    let systemd = ampel_os::systemd::Notifier::from_env();
    let read_table =
        || -> Option<toml::Table> { ampel_agent::files::read_limited_to_string(path, ampel_agent::files::CONFIG_MAX).ok()?.parse().ok() };
    let mut table = read_table().unwrap_or_default();
    while hup.recv().await.is_some() {
        systemd.reloading();
        match prepare(path) {
            Err(e) => tracing::error!(error = %format!("{e:#}"), "reload refused; still running with the previous configuration"),
            Ok(_) => {
                let new = read_table().unwrap_or_default();
                let changed = ampel_os::systemd::changed_keys(&table, &new);
                if changed.is_empty() {
                    tracing::info!(config = %path.display(), "reloaded: configuration and certificates valid, nothing changed");
                } else {
                    tracing::warn!(
                        config = %path.display(),
                        changed = %changed.join(", "),
                        "reloaded: valid; changed settings take effect after a restart (systemctl restart ampel-agent)"
                    );
                }
                table = new;
            }
        }
        systemd.ready("running");
    }
}

fn once(config: &AgentConfig) -> anyhow::Result<()> {
    let batch = ampel_agent::run::once(config).context("gathering a batch")?;
    let json = serde_json::to_string_pretty(&batch).context("formatting the batch as JSON")?;
    println!("{json}");
    Ok(())
}
