//! `ampel-collector`: thin binary over the `ampel_collector` library.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;

/// Exit code for a bad configuration (sysexits.h `EX_CONFIG`), which systemd units key on.
const EX_CONFIG: u8 = 78;

fn main() -> ExitCode {
    ampel_protocol::tls::install_provider();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal: the journal and log files get plain lines.
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let cli = ampel_collector::cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(ampel_collector::cli::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            if e.chain().any(|c| c.is::<ampel_collector::config::ConfigError>()) { ExitCode::from(EX_CONFIG) } else { ExitCode::FAILURE }
        }
    }
}
