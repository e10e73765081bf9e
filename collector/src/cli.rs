//! The command line of `ampel-collector`. `main.rs` parses it and calls [`run`].

use std::path::{Path, PathBuf};

use ampel_protocol::{DeviceId, TenantId};
use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};

use crate::assess::{self, Period};
use crate::config::{self, Config};
use crate::ingest::quic::now_ms;
use crate::pki::{InitOptions, Pki};
use crate::report::{Lang, catalogue};
use crate::server::Server;
use crate::store::Store;

/// Ampel collector: ingests agent data over QUIC with mutual TLS, stores it in LMDB, scores
/// risk as a traffic light and mails PDF reports.
#[derive(Debug, Parser)]
#[command(name = "ampel-collector", version, about, long_about = None)]
pub struct Cli {
    /// Configuration file.
    #[arg(long, short, global = true, default_value = config::DEFAULT_PATH, env = "AMPEL_COLLECTOR_CONFIG")]
    pub config: PathBuf,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the collector: QUIC listener, store writer (SIGHUP reloads; SIGINT/SIGTERM stop).
    Serve,
    /// Check the configuration file and exit (exit code 78 when it is wrong).
    CheckConfig,
    /// Manage the deployment's certificate authority.
    #[command(subcommand)]
    Pki(PkiCommand),
    /// List registered devices with tenant, first/last seen and point counts.
    Devices(DevicesArgs),
    /// Print one metric of a device as stored: raw points, or buckets of a step (JSON lines).
    Query(QueryArgs),
    /// Show risk findings and traffic lights.
    #[command(subcommand)]
    Risk(RiskCommand),
    /// Render and send reports.
    #[command(subcommand)]
    Report(ReportCommand),
    /// Check mail delivery.
    #[command(subcommand)]
    Mail(MailCommand),
    /// List report recipients and their opt-in state (or the consent log).
    Recipients(RecipientsArgs),
    /// Move a tenant between shards: export its stored data to a file, import it elsewhere.
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Manage console users.
    #[command(subcommand)]
    User(UserCommand),
    /// Run a self-contained demo: throw-away PKI, collector and three agents on loopback,
    /// reports rendered and mailed into an output directory.
    Demo(DemoArgs),
}

/// `tenant` subcommands (see "Moving a tenant" in the README).
#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Write everything stored of a tenant (devices, points, rollups, alerts, states, dedupe
    /// marks, archived reports with their PDFs, its recipients' opt-in states and consent log)
    /// to a new file. Works beside a running collector, from one consistent snapshot.
    Export {
        /// The tenant.
        tenant: TenantId,
        /// The file to create (an existing one is refused).
        #[arg(short = 'o', long = "output")]
        output: PathBuf,
    },
    /// Check an export file and merge it into this collector's store, all or nothing, then into
    /// its delivery store and archive; importing it again changes nothing. The collector must be
    /// stopped (its store is locked while it runs).
    Import {
        /// The file `tenant export` wrote.
        file: PathBuf,
    },
    /// Remove everything stored of a tenant (the old shard's copy after a move), its archived
    /// reports and their PDFs included; recipients' opt-in states stay. Refused for a tenant
    /// `[cluster]` lists under this shard. The collector must be stopped.
    Delete {
        /// The tenant.
        tenant: TenantId,
    },
}

/// `user` subcommands.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Read a password (without echo on a terminal; one line from stdin otherwise) and print
    /// its argon2id hash as a line for the user's `[[users]]` entry in the config.
    Passwd {
        /// The user's name.
        name: String,
    },
    /// Make an API token for a `[[users]]` entry and print it once; only its SHA-256 is kept
    /// (in <data-dir>/console/tokens.json).
    Token {
        /// The user's name.
        name: String,
        /// How long the token works, e.g. 30d, 90d; at most 365d.
        #[arg(long, default_value = "90d")]
        ttl: config::Duration,
    },
    /// List the API tokens: id, user, created, expires (never the tokens themselves).
    Tokens,
    /// Revoke an API token by the id `user tokens` lists; it is refused at the next request.
    RevokeToken {
        /// The token's id.
        id: String,
    },
}

/// `pki` subcommands.
#[derive(Debug, Subcommand)]
pub enum PkiCommand {
    /// Create the CA, the collector's server certificate and an empty CRL.
    Init {
        /// Server name for the certificate: DNS name or IP address (repeat for several).
        #[arg(long = "name", required = true)]
        names: Vec<String>,
        /// Replace an existing CA (every issued device certificate stops working).
        #[arg(long)]
        force: bool,
    },
    /// Issue a device certificate and register the device under its tenant.
    Issue {
        /// Tenant (certificate O).
        #[arg(long)]
        tenant: TenantId,
        /// Device id (certificate CN), unique across the deployment.
        #[arg(long)]
        device: DeviceId,
        /// Directory to write <device>.pem, <device>.key and ca.pem into.
        #[arg(long)]
        out: PathBuf,
        /// Certificate lifetime in days (default: [pki] device-days).
        #[arg(long)]
        days: Option<u32>,
    },
    /// Make a one-time enrollment token for a device: give it to `ampel-agent enroll --token`.
    /// The token carries the CA's fingerprint, so the agent can pin the collector.
    Token {
        /// Tenant the device joins (certificate O).
        #[arg(long)]
        tenant: TenantId,
        /// Device id (certificate CN), unique across the deployment.
        #[arg(long)]
        device: DeviceId,
        /// How long the token is valid, e.g. 30m, 24h, 7d; at most 30d (default: [pki] token-ttl).
        #[arg(long)]
        ttl: Option<config::TokenTtl>,
    },
    /// CA rollover in two steps: --start creates the next CA (trusted at once, handed to agents
    /// at renewal); --finish, after a renewal period, makes it current and re-issues the server
    /// certificate. Devices of the previous CA are accepted until they renew; delete
    /// ca-previous.pem to end the window.
    Rollover {
        /// Create the next CA.
        #[arg(long, conflicts_with = "finish", required_unless_present = "finish")]
        start: bool,
        /// Make the next CA current.
        #[arg(long)]
        finish: bool,
        /// Lifetime of the next CA, in days.
        #[arg(long, default_value_t = 3650)]
        ca_days: u32,
    },
    /// Revoke every certificate of a device: the CRL is re-signed, the running collector picks
    /// it up within seconds and closes the device's sessions.
    Revoke {
        /// The device: every certificate issued to it (recorded in issued.txt).
        #[arg(long, required_unless_present = "cert", conflicts_with = "cert")]
        device: Option<DeviceId>,
        /// Or one certificate file (e.g. issued before issued.txt existed).
        #[arg(long)]
        cert: Option<PathBuf>,
    },
}

/// `devices` arguments.
#[derive(Debug, Args)]
pub struct DevicesArgs {
    /// Only this tenant's devices.
    #[arg(long)]
    pub tenant: Option<TenantId>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `query` arguments.
#[derive(Debug, Args)]
pub struct QueryArgs {
    /// The device.
    pub device: DeviceId,
    /// The metric name, e.g. `cpu.usage_percent`.
    pub metric: String,
    /// Start, RFC 3339 (`2026-11-02T00:00:00Z`) or Unix ms.
    #[arg(long, value_parser = parse_instant)]
    pub from: i64,
    /// End (exclusive), RFC 3339 or Unix ms.
    #[arg(long, value_parser = parse_instant)]
    pub to: i64,
    /// Bucket width (`1m`, `1h`, `1d`, ...): min, max, sum, count and last per bucket instead
    /// of raw points.
    #[arg(long)]
    pub step: Option<crate::config::Duration>,
}

fn parse_instant(s: &str) -> std::result::Result<i64, String> {
    if let Ok(ms) = s.parse::<i64>() {
        return Ok(ms);
    }
    s.parse::<jiff::Timestamp>()
        .map(|t| t.as_millisecond())
        .map_err(|e| format!("{s:?} is neither RFC 3339 (2026-11-02T00:00:00Z) nor Unix ms: {e}"))
}

/// `risk` subcommands.
#[derive(Debug, Subcommand)]
pub enum RiskCommand {
    /// Show a tenant's light, score, lights per service, findings and the change since the
    /// previous period.
    Show {
        /// The tenant.
        #[arg(long)]
        tenant: TenantId,
        /// Period judged: last-24h, last-7d; day, week, month (the last complete one in the
        /// report time zone); or 2026-03-29, 2026-W13, 2026-03.
        #[arg(long, default_value = "last-24h")]
        period: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run the rules over scenario files (*.toml, *.json: device data and expected findings)
    /// and report mismatches; exits non-zero when any scenario fails.
    Test {
        /// Directory of scenario files.
        dir: PathBuf,
        /// Also print the findings of passing scenarios.
        #[arg(long, short)]
        verbose: bool,
    },
}

/// `report` subcommands.
#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// Render a tenant's report to a PDF file, or a report job's as the scheduler would.
    Preview {
        /// The tenant (with --job: default the job's first tenant).
        #[arg(long)]
        tenant: Option<TenantId>,
        /// Render as report job NAME does: its period, language, widgets and time zone.
        #[arg(long, value_name = "NAME")]
        job: Option<String>,
        /// Period, in the [report] time zone: last-24h, last-7d; day, week, month (the last
        /// complete one); 2026-03-29, 2026-W13, 2026-03; 2026-03-01..2026-03-15.
        #[arg(long, default_value = "last-7d")]
        period: String,
        /// End of the period as an RFC 3339 time (default: now). The same end gives the same
        /// report, byte for byte.
        #[arg(long)]
        end: Option<jiff::Timestamp>,
        /// Output file.
        #[arg(long)]
        out: PathBuf,
        /// Language, depth and false positives instead of the defaults or the job's.
        #[command(flatten)]
        choices: ReportChoices,
    },
    /// Render a tenant's report and mail it as an attachment; or, with --job, send a report
    /// job's report of the period ending now to its confirmed recipients, archived as a
    /// scheduled run is (the console's "send now").
    Send {
        /// The tenant (with --job: only this one of the job's tenants; default all of them).
        #[arg(long, required_unless_present = "job")]
        tenant: Option<TenantId>,
        /// Send as report job NAME does, through the scheduler: its period ending now, its
        /// language, its confirmed recipients, recorded in the archive.
        #[arg(long, value_name = "NAME", conflicts_with_all = ["to", "end", "language", "depth", "false_positives"])]
        job: Option<String>,
        /// Period, in the [report] time zone: last-24h, last-7d; day, week, month (the last
        /// complete one); 2026-03-29, 2026-W13, 2026-03; 2026-03-01..2026-03-15.
        #[arg(long, default_value = "last-7d")]
        period: String,
        /// End of the period as an RFC 3339 time (default: now).
        #[arg(long)]
        end: Option<jiff::Timestamp>,
        /// Recipient (repeat for several).
        #[arg(long = "to", required_unless_present = "job")]
        to: Vec<String>,
        /// Language, depth and false positives instead of the defaults or the job's.
        #[command(flatten)]
        choices: ReportChoices,
    },
    /// List archived scheduled reports with their delivery status.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Deliver an archived report again to its job's confirmed recipients.
    Resend {
        /// The report id from `report list`.
        id: u64,
    },
}

/// What a report from the command line is made of, beside tenant and period; each given one
/// overrides the default (English, full, false positives in the appendix) or, with `--job`, the
/// job's choice — so `--job daily --language de --depth summary` previews what a German summary
/// recipient of the job gets.
#[derive(Debug, Clone, Default, Args)]
pub struct ReportChoices {
    /// Language of the report and its mail: en, de.
    #[arg(long, value_name = "LANG", value_parser = parse_choice::<crate::report::Lang>)]
    pub language: Option<crate::report::Lang>,
    /// How much of it: full, summary.
    #[arg(long, value_parser = parse_choice::<crate::report::Depth>)]
    pub depth: Option<crate::report::Depth>,
    /// What to do with [[suppress]]ed false positives: appendix, exclude, include.
    #[arg(long, value_name = "MODE", value_parser = parse_choice::<crate::assess::suppress::FalsePositives>)]
    pub false_positives: Option<crate::assess::suppress::FalsePositives>,
}

/// Parses a command-line value the way the configuration file spells it (`de`, `summary`).
fn parse_choice<T: serde::de::DeserializeOwned>(s: &str) -> Result<T, String> {
    use serde::de::IntoDeserializer;
    let de: serde::de::value::StrDeserializer<'_, serde::de::value::Error> = s.into_deserializer();
    T::deserialize(de).map_err(|e| e.to_string())
}

/// `recipients` arguments.
#[derive(Debug, Args)]
pub struct RecipientsArgs {
    /// Invite or remove an address (without: list the recipients).
    #[command(subcommand)]
    pub action: Option<RecipientsAction>,
    /// Print the consent log (who confirmed or unsubscribed, when, from where) instead.
    #[arg(long)]
    pub log: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `recipients invite|remove`.
#[derive(Debug, Subcommand)]
pub enum RecipientsAction {
    /// Mail ADDRESS an invitation for job J now (again, after `expired`, `unsubscribed` or
    /// `remove`); it gets the job's reports once it confirms. Needs the HTTP listener's URL.
    Invite {
        /// The address, as listed in the job's `to` or `cc`.
        address: String,
        /// The job.
        #[arg(long)]
        job: String,
    },
    /// Stop sending job J's reports to ADDRESS (its other jobs go on); `invite` undoes it.
    Remove {
        /// The address.
        address: String,
        /// The job.
        #[arg(long)]
        job: String,
    },
}

/// `mail` subcommands.
#[derive(Debug, Subcommand)]
pub enum MailCommand {
    /// Connect to the SMTP server (TLS, login) without sending; names the step that fails.
    Test,
}

/// `demo` arguments.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Directory for the demo's files, reports and mails (created; must be empty if it exists).
    #[arg(long, default_value = "ampel-demo")]
    pub out: PathBuf,
    /// Seconds of live data to collect.
    #[arg(long, default_value_t = 15)]
    pub seconds: u64,
    /// The ampel-agent binary (default: next to this binary).
    #[arg(long)]
    pub agent: Option<PathBuf>,
    /// After the reports, keep the collector, the agents and the web console running (the
    /// console's address and a login are printed) until Ctrl-C.
    #[arg(long)]
    pub keep_running: bool,
}

/// Loads the config, marking errors so that `main` exits with 78.
pub fn load_config(path: &Path) -> Result<Config> {
    Ok(Config::load(path)?)
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Demo(args) => crate::demo::run(args).await,
        Command::CheckConfig => {
            let cfg = load_config(&cli.config)?;
            let notes = cfg.check_runtime(false)?;
            println!("{}: ok", cfg.source.display());
            for note in notes.into_iter().chain(cfg.suppress_notes()) {
                eprintln!("note: {note}");
            }
            Ok(())
        }
        Command::Serve => {
            let cfg = load_config(&cli.config)?;
            cfg.check_runtime(true)?;
            serve(cfg).await
        }
        Command::Pki(cmd) => pki(&load_config(&cli.config)?, cmd),
        Command::Devices(args) => devices(&load_config(&cli.config)?, &args),
        Command::Query(args) => query(&load_config(&cli.config)?, &args),
        Command::Risk(RiskCommand::Show { tenant, period, json }) => risk_show(&load_config(&cli.config)?, &tenant, &period, json),
        Command::Report(cmd @ (ReportCommand::List { .. } | ReportCommand::Resend { .. })) => {
            crate::schedule::commands::report(&load_config(&cli.config)?, cmd).await
        }
        Command::Risk(RiskCommand::Test { dir, verbose }) => risk_test(&dir, verbose),
        Command::Report(cmd) => crate::reporting::command(&load_config(&cli.config)?, cmd).await,
        Command::Mail(MailCommand::Test) => crate::reporting::mail_test(&load_config(&cli.config)?).await,
        Command::User(UserCommand::Passwd { name }) => {
            // The config is read only to tell an existing user from a new one.
            let cfg = Config::load(&cli.config);
            if let Err(e) = &cfg {
                eprintln!("note: {e}");
            }
            crate::console::passwd::run(&name, cfg.as_ref().ok().map(|c| c.users.as_slice()))
        }
        Command::User(UserCommand::Token { name, ttl }) => crate::console::tokens::create_command(&load_config(&cli.config)?, &name, ttl),
        Command::User(UserCommand::Tokens) => crate::console::tokens::list_command(&load_config(&cli.config)?),
        Command::User(UserCommand::RevokeToken { id }) => crate::console::tokens::revoke_command(&load_config(&cli.config)?, &id),
        Command::Recipients(args) => crate::schedule::commands::recipients(&load_config(&cli.config)?, args).await,
        Command::Tenant(cmd) => crate::tenant_io::command::run(&load_config(&cli.config)?, cmd),
    }
}

async fn serve(cfg: Config) -> Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut hup = signal(SignalKind::hangup()).context("installing the SIGHUP handler")?;
    let server = Server::start(&cfg).context("starting the collector")?;
    // Start returns once the store is open and the listeners are bound: only now is it ready.
    let systemd = ampel_os::systemd::Notifier::from_env();
    let status = format!("listening on {} (QUIC)", server.local_addr);
    systemd.ready(&status);
    let mut watchdog = ampel_os::systemd::WatchdogTimer::from_env();
    let mut running = RunningConfig::new(cfg);
    loop {
        tokio::select! {
            r = tokio::signal::ctrl_c() => { r.context("waiting for SIGINT")?; break }
            _ = term.recv() => break,
            _ = hup.recv() => {
                systemd.reloading();
                running.reload(&server);
                systemd.ready(&status);
            }
            () = watchdog.tick() => systemd.watchdog(),
        }
    }
    systemd.stopping();
    tracing::info!("shutting down");
    server.stop().await;
    Ok(())
}

/// The configuration `serve` runs with, and its file's parsed text, to tell what a reload
/// changed.
struct RunningConfig {
    cfg: Config,
    table: toml::Table,
}

impl RunningConfig {
    fn new(cfg: Config) -> RunningConfig {
        let table = read_table(&cfg.source).unwrap_or_default();
        RunningConfig { cfg, table }
    }

    /// SIGHUP: re-reads and validates the file and the certificates. A bad file is refused
    /// with its error and the collector keeps running as it was; certificates and CRL take
    /// effect at once; other changed keys are named and need a restart.
    fn reload(&mut self, server: &Server) {
        let path = self.cfg.source.clone();
        let new = match Config::load(&path) {
            Ok(new) => new,
            Err(e) => {
                tracing::error!(error = %e, "reload refused: configuration invalid; still running with the previous one");
                return;
            }
        };
        if let Err(e) = server.check_cluster(&new) {
            tracing::error!(error = %e, "reload refused: still running with the previous configuration");
            return;
        }
        if let Err(e) = server.reload_tls(&new) {
            tracing::error!(error = %e, "reload refused: certificates unusable; still running with the previous ones");
            return;
        }
        server.reload_users(&new);
        if let Err(e) = server.reload_cluster(&new) {
            // Checked above; nothing else swaps the map.
            tracing::error!(error = %e, "shard map not reloaded");
        }
        let table = read_table(&path).unwrap_or_default();
        // `[[users]]` and `[cluster]` apply at once (above); every other change needs a restart.
        let changed: Vec<String> = ampel_os::systemd::changed_keys(&self.table, &table)
            .into_iter()
            .filter(|k| k != "users" && k != "cluster" && !k.starts_with("cluster."))
            .collect();
        if changed.is_empty() {
            tracing::info!(config = %path.display(), "reloaded: certificates and CRL re-read; configuration unchanged");
        } else {
            tracing::warn!(
                config = %path.display(),
                changed = %changed.join(", "),
                "reloaded: certificates and CRL re-read; changed settings take effect after a restart (systemctl restart ampel-collector)"
            );
        }
        self.table = table;
        self.cfg = new;
    }
}

/// The config file as a TOML table (it parsed a moment ago; `None` if it changed under us).
fn read_table(path: &Path) -> Option<toml::Table> {
    crate::files::read_limited_to_string(path, crate::files::CONFIG_MAX).ok()?.parse().ok()
}

/// Waits for SIGINT or SIGTERM.
pub async fn wait_for_shutdown_signal() -> Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r.context("waiting for SIGINT")?,
        _ = term.recv() => {}
    }
    Ok(())
}

/// Opens the store of `cfg`, creating its directories with explicit modes first.
pub fn open_store(cfg: &Config) -> Result<Store> {
    // With explicit modes, before the store creates them with whatever the umask allows.
    crate::files::create_dir_all(&cfg.store_dir()).with_context(|| format!("creating {}", cfg.store_dir().display()))?;
    Store::open(&cfg.store_dir(), cfg.store_options()).with_context(|| format!("opening the store in {}", cfg.store_dir().display()))
}

fn pki(cfg: &Config, cmd: PkiCommand) -> Result<()> {
    match cmd {
        PkiCommand::Init { names, force } => {
            let opts = InitOptions { names, force, ..InitOptions::default() };
            let pki = Pki::init(&cfg.pki_dir(), &opts).context("creating the certificate authority")?;
            println!("CA created in {}", pki.dir().display());
            println!("  CA certificate:     {}", pki.ca_path().display());
            println!("  server certificate: {}", pki.server_cert_path().display());
            println!("  CRL:                {}", pki.crl_path().display());
            println!("  CA fingerprint:     sha256:{}", pki.ca_fingerprint());
            Ok(())
        }
        PkiCommand::Token { tenant, device, ttl } => {
            let pki = Pki::open(&cfg.pki_dir()).context("opening the certificate authority")?;
            let ttl = ttl.unwrap_or(cfg.pki.token_ttl);
            let issued = crate::enroll::tokens::issue(&pki, &open_store(cfg)?, (&tenant, &device), ttl, now_ms() / 1000)?;
            eprintln!("one-time token for device {device} of tenant {tenant}, valid until {}", fmt_time(Some(issued.expires_at * 1000)));
            // The only place the secret is shown: stdout, for the operator to pass on.
            println!("{}", issued.token.to_text());
            Ok(())
        }
        PkiCommand::Rollover { start, finish: _, ca_days } => {
            let pki = Pki::open(&cfg.pki_dir()).context("opening the certificate authority")?;
            if start {
                let fp = pki.rollover_start(ca_days).context("starting the CA rollover")?;
                println!("next CA created: {}", pki.dir().join(crate::pki::NEXT_CA_FILE).display());
                println!("  fingerprint: sha256:{fp}");
                println!("agents learn it at their next renewal; then run `pki rollover --finish`");
            } else {
                let pki = pki.rollover_finish(825).context("finishing the CA rollover")?;
                println!("the next CA is now current; fingerprint sha256:{}", pki.ca_fingerprint());
                println!("  devices of the previous CA are accepted until they renew;");
                println!("  delete {} to end the window", pki.dir().join(crate::pki::PREVIOUS_CA_FILE).display());
            }
            Ok(())
        }
        PkiCommand::Revoke { device, cert } => {
            let pki = Pki::open(&cfg.pki_dir()).context("opening the certificate authority")?;
            let (what, serials) = match (device, cert) {
                (Some(device), _) => (format!("device {device}"), pki.revoke_device(&device).context("revoking")?),
                (None, Some(path)) => {
                    let pem =
                        crate::files::read_limited(&path, crate::files::CERT_MAX).with_context(|| format!("reading {}", path.display()))?;
                    (path.display().to_string(), pki.revoke_cert(&pem).context("revoking")?)
                }
                (None, None) => bail!("name --device or --cert"),
            };
            if serials.is_empty() {
                println!("{what}: no unrevoked certificates found; CRL re-signed");
            } else {
                println!("{what}: revoked {} certificate(s): {}", serials.len(), serials.join(", "));
            }
            println!("  CRL: {}", pki.crl_path().display());
            Ok(())
        }
        PkiCommand::Issue { tenant, device, out, days } => {
            let pki = Pki::open(&cfg.pki_dir()).context("opening the certificate authority")?;
            let store = open_store(cfg)?;
            if let Some(existing) = store.device(device.as_str())? {
                bail!("device {device} is already registered (tenant {}); device ids must be unique", existing.tenant);
            }
            let issued = pki.issue_device(&tenant, &device, days.unwrap_or(cfg.pki.device_days)).context("issuing the certificate")?;
            let files = issued.write_to(&out).context("writing the device files")?;
            store.register_device(&tenant, &device, now_ms()).context("registering the device")?;
            println!("device {device} of tenant {tenant} registered");
            println!("  certificate: {}", files.cert.display());
            println!("  key:         {}", files.key.display());
            println!("  CA:          {}", files.ca.display());
            Ok(())
        }
    }
}

/// Formats Unix ms as an RFC 3339 UTC time, to the second.
pub fn fmt_time(ms: Option<i64>) -> String {
    match ms.and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok()) {
        Some(ts) => ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        None => "never".to_owned(),
    }
}

fn devices(cfg: &Config, args: &DevicesArgs) -> Result<()> {
    let store = open_store(cfg)?;
    let list = store.devices(args.tenant.as_ref().map(|t| t.as_str()))?;
    if args.json {
        let rows: Vec<serde_json::Value> = list
            .iter()
            .map(|(id, r)| {
                serde_json::json!({
                    "device": id, "tenant": r.tenant, "first_seen_ms": r.first_seen_ms,
                    "last_seen_ms": r.last_seen_ms, "points": r.points, "alerts": r.alerts, "batches": r.batches,
                    "hostname": r.inventory.as_ref().map(|i| i.hostname.clone()),
                    "agent_version": r.inventory.as_ref().map(|i| i.agent_version.clone()),
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    println!("{:<24} {:<16} {:<21} {:<21} {:>10}", "DEVICE", "TENANT", "FIRST SEEN", "LAST SEEN", "POINTS");
    for (id, r) in &list {
        println!("{:<24} {:<16} {:<21} {:<21} {:>10}", id, r.tenant, fmt_time(r.first_seen_ms), fmt_time(r.last_seen_ms), r.points);
    }
    if list.is_empty() {
        println!("(no devices registered; add one with `ampel-collector pki issue`)");
    }
    Ok(())
}

fn query(cfg: &Config, args: &QueryArgs) -> Result<()> {
    let store = open_store(cfg)?;
    let labels = |l: &crate::store::Labels| -> serde_json::Map<String, serde_json::Value> {
        l.iter().map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone()))).collect()
    };
    let step = args.step.as_ref().map(|d| i64::try_from(d.0.as_millis()).unwrap_or(i64::MAX));
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    use std::io::Write as _;
    match step {
        None => {
            for (l, points) in store.metric(args.device.as_str(), &args.metric, args.from, args.to)? {
                for (ts, v) in points {
                    writeln!(out, "{}", serde_json::json!({"labels": labels(&l), "ts": ts, "value": v}))?;
                }
            }
        }
        Some(step) => {
            for (l, buckets) in store.metric_step(args.device.as_str(), &args.metric, args.from, args.to, step)? {
                for a in buckets {
                    let row = serde_json::json!({"labels": labels(&l), "ts": a.ts, "min": a.min, "max": a.max,
                        "sum": a.sum, "count": a.count, "last": a.last, "last_ts": a.last_ts});
                    writeln!(out, "{row}")?;
                }
            }
        }
    }
    out.flush()?;
    Ok(())
}

fn risk_show(cfg: &Config, tenant: &TenantId, period: &str, json: bool) -> Result<()> {
    let store = open_store(cfg)?;
    let period = Period::parse(period, now_ms(), &cfg.report.time_zone.0)?;
    let a = assess::assess_with_changes(&store, cfg, tenant.as_str(), &period, assess::suppress::FalsePositives::default())?;
    let tz = jiff::tz::TimeZone::get(&cfg.report.time_zone.0).with_context(|| format!("time zone {}", cfg.report.time_zone.0))?;
    if json {
        let devices: Vec<serde_json::Value> = a
            .devices
            .iter()
            .map(|d| serde_json::json!({"device": d.device, "light": d.light, "score": d.score, "services": d.services, "findings": d.findings}))
            .collect();
        let previous = a.previous.as_ref().map(|p| serde_json::json!({"label": p.label(), "start_ms": p.start_ms, "end_ms": p.end_ms}));
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "tenant": a.tenant, "light": a.light, "score": a.score,
                "period": {"label": period.label(), "start_ms": period.start_ms, "end_ms": period.end_ms},
                "services": a.services, "devices": devices, "previous_period": previous, "changes": a.changes,
                "suppressed": suppressed_json(&a.suppressed),
            }))?
        );
        return Ok(());
    }
    println!(
        "tenant {}: {} (score {}), {} to {}",
        a.tenant,
        a.light.as_str().to_uppercase(),
        a.score,
        fmt_time(Some(period.start_ms)),
        fmt_time(Some(period.end_ms))
    );
    let services = |s: &[crate::risk::ServiceLight]| {
        s.iter().map(|s| format!("{} {} {}", s.service, s.light.as_str(), s.score)).collect::<Vec<_>>().join(", ")
    };
    println!("  services: {}", services(&a.services));
    print_suppressed(&a.suppressed);
    for d in &a.devices {
        println!("  {}: {} (score {})", d.device, d.light.as_str(), d.score);
        println!("    services: {}", services(&d.services));
        for f in &d.findings {
            let change = f.change.map(|c| format!(" ({})", c.as_str())).unwrap_or_default();
            println!("    [{}] {}{change}: {}", f.level.as_str(), f.rule, catalogue::evidence(f, Lang::En, &tz));
            println!("        -> {}", catalogue::recommendation(f, Lang::En));
        }
    }
    if let Some(prev) = &a.previous {
        let count = |c: crate::risk::Change| a.changes.iter().filter(|x| x.change == c).count();
        use crate::risk::Change::{Fixed, New, StillOpen};
        println!(
            "  since {} to {}: {} new, {} still open, {} fixed",
            fmt_time(Some(prev.start_ms)),
            fmt_time(Some(prev.end_ms)),
            count(New),
            count(StillOpen),
            count(Fixed)
        );
        for c in a.changes.iter().filter(|c| c.change == Fixed) {
            let subject = c.subject.as_ref().map(|s| format!(" [{s}]")).unwrap_or_default();
            println!(
                "    fixed: {} {}{subject} (was {})",
                c.device.as_deref().unwrap_or("-"),
                c.rule,
                c.previous.map_or("?", |l| l.as_str())
            );
        }
    }
    Ok(())
}

/// What `[[suppress]]` took away, for `risk show --json`.
fn suppressed_json(s: &assess::suppress::Suppressed) -> serde_json::Value {
    let applied: Vec<serde_json::Value> = s
        .applied
        .iter()
        .map(|a| {
            serde_json::json!({"entry": a.index, "matches": a.what, "reason": a.reason, "alerts": a.alerts,
                "findings": a.findings, "devices": a.devices, "signatures": a.signatures})
        })
        .collect();
    let expired: Vec<serde_json::Value> = s
        .expired
        .iter()
        .map(|e| serde_json::json!({"entry": e.index, "matches": e.what, "reason": e.reason, "until_ms": e.until_ms}))
        .collect();
    serde_json::json!({"alerts": s.alerts(), "findings": s.findings(), "applied": applied, "expired": expired})
}

/// What `[[suppress]]` took away, for `risk show`: one line in all, one per entry.
fn print_suppressed(s: &assess::suppress::Suppressed) {
    if s.applied.is_empty() && s.expired.is_empty() {
        return;
    }
    println!("  suppressed as false positives: {} alerts, {} findings", s.alerts(), s.findings());
    for a in &s.applied {
        println!("    #{} {} ({}): {} alerts, {} findings on {}", a.index, a.what, a.reason, a.alerts, a.findings, a.devices.join(", "));
    }
    for e in &s.expired {
        println!("    #{} {} ({}): expired {}, no longer applied", e.index, e.what, e.reason, fmt_time(Some(e.until_ms)));
    }
}

fn risk_test(dir: &Path, verbose: bool) -> Result<()> {
    let outcomes = crate::risk::scenario::run_dir(dir)?;
    let failed = outcomes.iter().filter(|o| !o.mismatches.is_empty()).count();
    for o in &outcomes {
        let name = o.path.file_name().map_or_else(|| o.path.display().to_string(), |n| n.to_string_lossy().into_owned());
        if o.mismatches.is_empty() {
            println!("ok   {name}");
            if verbose {
                for f in &o.findings {
                    println!("       [{}] {} ({}): {}", f.level.as_str(), f.rule, f.advice(), catalogue::evidence(f, Lang::En, &o.zone));
                }
            }
        } else {
            println!("FAIL {name}: {}", o.description);
            for m in &o.mismatches {
                println!("       {m}");
            }
        }
    }
    println!("{} scenarios, {} passed, {failed} failed", outcomes.len(), outcomes.len() - failed);
    if failed > 0 {
        bail!("{failed} of {} risk scenarios in {} do not match", outcomes.len(), dir.display());
    }
    if outcomes.is_empty() {
        bail!("no scenario files (*.toml, *.json) in {}", dir.display());
    }
    Ok(())
}
