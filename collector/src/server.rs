//! `serve`: the store, the writer and the QUIC listener wired together, started and stopped as
//! one. The demo and the tests run the same [`Server`] in process.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ampel_protocol::{Limits, tls};
use tokio::sync::watch;

use crate::config::Config;
use crate::ingest::{IngestStats, Writer, mqtt, quic};
use crate::store::{Store, StoreError};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// A certificate, key or CRL file could not be read or used.
    #[error("{path}: {message}")]
    Tls {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The TLS material does not fit together.
    #[error("TLS configuration from {dir}: {message}")]
    TlsConfig {
        /// The PKI directory.
        dir: PathBuf,
        /// What rustls said.
        message: String,
    },
    /// The store could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The store is locked by another collector or a `tenant import`.
    #[error(transparent)]
    StoreLock(#[from] crate::store::exclusive::LockError),
    /// A data directory could not be created.
    #[error("cannot create {}: {source}", path.display())]
    Dir {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The listener could not start.
    #[error(transparent)]
    Listen(#[from] quic::ListenError),
    /// The MQTT subscriber could not be set up.
    #[error(transparent)]
    Mqtt(#[from] crate::ingest::mqtt::MqttError),
    /// Scheduled delivery (delivery store, link key, mail setup) could not start.
    #[error("starting scheduled delivery: {0:#}")]
    Delivery(anyhow::Error),
    /// The HTTP listener could not start.
    #[error(transparent)]
    Http(#[from] crate::http::HttpError),
}

fn read(path: &Path) -> Result<Vec<u8>, ServeError> {
    let max = if path.ends_with("crl.pem") { crate::files::CRL_MAX } else { crate::files::CERT_MAX };
    crate::files::read_limited(path, max).map_err(|e| ServeError::Tls {
        path: path.to_owned(),
        message: format!("cannot read: {e} (run `ampel-collector pki init` to create the CA and server certificate)"),
    })
}

/// The collector's server TLS configuration from the PKI directory: `server.pem`, `server.key`,
/// client certificates verified against `ca.pem` and, when present, `crl.pem`.
pub fn server_tls(pki_dir: &Path, alpn: &[&[u8]]) -> Result<rustls::ServerConfig, ServeError> {
    let bad = |path: PathBuf| move |e: tls::TlsError| ServeError::Tls { path, message: e.to_string() };
    let cert_path = pki_dir.join("server.pem");
    let key_path = pki_dir.join("server.key");
    let ca_path = pki_dir.join("ca.pem");
    let crl_path = pki_dir.join("crl.pem");
    let chain = tls::parse_certs(&read(&cert_path)?).map_err(bad(cert_path))?;
    let key = tls::parse_key(&read(&key_path)?).map_err(bad(key_path))?;
    let cas = tls::parse_certs(&read(&ca_path)?).map_err(bad(ca_path))?;
    let crls = if crl_path.exists() { tls::parse_crls(&read(&crl_path)?).map_err(bad(crl_path))? } else { Vec::new() };
    tls::server_config(chain, key, &cas, crls, alpn).map_err(|e| ServeError::TlsConfig { dir: pki_dir.to_owned(), message: e.to_string() })
}

/// Like [`server_tls`], but from the live [`Trust`](crate::ingest::trust::Trust): client
/// certificates are judged by its reloadable verifier (client certificates optional — see
/// [`crate::ingest::trust`]) and the server certificate, sent with its CA so an enrolling agent
/// can pin it, is replaced when `server.pem` changes.
pub fn server_tls_with(pki_dir: &Path, alpn: &[&[u8]], trust: &crate::ingest::trust::Trust) -> Result<rustls::ServerConfig, ServeError> {
    let tls_err = |e: rustls::Error| ServeError::TlsConfig { dir: pki_dir.to_owned(), message: e.to_string() };
    let mut cfg = rustls::ServerConfig::builder_with_provider(tls::provider())
        .with_safe_default_protocol_versions()
        .map_err(tls_err)?
        .with_client_cert_verifier(trust.verifier.clone())
        .with_cert_resolver(trust.server_cert.clone());
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    // No session resumption: a resumed TLS 1.3 session skips the client-certificate check, so
    // a revoked device could reconnect on its old ticket. A full handshake costs a millisecond.
    cfg.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    cfg.send_tls13_tickets = 0;
    Ok(cfg)
}

/// What [`start_delivery`] started: the listener, the scheduler and the console.
struct Delivery {
    http: Option<crate::http::HttpServer>,
    scheduler: Option<tokio::task::JoinHandle<()>>,
    console: Option<Arc<crate::console::Console>>,
}

/// Starts the HTTP listener (when `[http] listen` is set) and the scheduler (when there are
/// `[[jobs]]`, which config validation ties to the listener).
fn start_delivery(
    cfg: &Config,
    store: &Store,
    ingest: &Arc<IngestStats>,
    trust: &crate::ingest::trust::Trust,
    cluster: &crate::cluster::live::LiveMap,
    shutdown: &watch::Receiver<bool>,
) -> Result<Delivery, ServeError> {
    use crate::schedule::{commands, runner};
    let Some(listen) = cfg.http.listen else { return Ok(Delivery { http: None, scheduler: None, console: None }) };
    let (delivery, key) = commands::open(cfg).map_err(ServeError::Delivery)?;
    let stats = Arc::new(runner::DeliveryStats::default());
    let console = crate::console::Console::new(Arc::new(cfg.clone()), store.clone()).map_err(|e| ServeError::Delivery(e.into()))?;
    let console = Arc::new(console.with_shard_map(cluster.clone()));
    let state = crate::http::HttpState {
        connections: Arc::default(),
        store: delivery.clone(),
        key: key.clone(),
        archive: crate::archive::Archive::new(&cfg.archive_dir()),
        delivery: stats.clone(),
        ingest: Some(ingest.clone()),
        trust: Some(trust.health.clone()),
        console: Some(console.clone()),
    };
    let limits = cfg.http.limits(crate::rlimit::nofile());
    // With [cluster] the port also speaks TLS, for the other shards' fleet requests.
    let tls = match cfg.cluster {
        Some(_) => Some(Arc::new(server_tls_with(&cfg.pki_dir(), &[b"http/1.1"], trust)?)),
        None => None,
    };
    let http = crate::http::HttpServer::start_with_tls(listen, limits, state, tls, shutdown.clone())?;
    // The fleet page and `GET /api/v1/tenants` read the summary this task keeps.
    tokio::spawn(crate::console::fleet::run(console.clone(), delivery.clone(), shutdown.clone()));
    if cfg.jobs.is_empty() {
        return Ok(Delivery { http: Some(http), scheduler: None, console: Some(console) });
    }
    // The console resends, sends now and invites through a scheduler of its own with the same
    // renderer, store and counters (its runs never touch the job cursors the loop owns).
    let render = runner::store_renderer(store.clone(), Arc::new(cfg.clone()));
    let console_scheduler = commands::scheduler(cfg, delivery.clone(), key.clone(), http.local_addr, render.clone(), stats.clone())
        .map_err(ServeError::Delivery)?;
    console.set_resender(console_scheduler);
    let sched = commands::scheduler(cfg, delivery, key, http.local_addr, render, stats).map_err(ServeError::Delivery)?;
    // Reports due right after the start wait (up to the grace) for the agents that were sending
    // before to deliver what they spooled; see `ingest::catchup`.
    match crate::ingest::catchup::expected_devices(store) {
        Ok(devices) => ingest.catch_up.expect(crate::ingest::quic::now_ms(), devices),
        Err(e) => tracing::warn!(error = %e, "cannot list the devices that were sending before the restart; reports do not wait for them"),
    }
    let grace = cfg.delivery.startup_grace.0;
    let (ingest, mut first_wait) = (ingest.clone(), shutdown.clone());
    let shutdown = shutdown.clone();
    let task = tokio::spawn(async move {
        ingest.catch_up.settle_logged(grace, &mut first_wait).await;
        sched.run_loop(shutdown).await;
    });
    Ok(Delivery { http: Some(http), scheduler: Some(task), console: Some(console) })
}

/// A running collector.
pub struct Server {
    /// The bound QUIC address (useful when the config asked for port 0).
    pub local_addr: SocketAddr,
    /// The store, for reading while running.
    pub store: Store,
    /// Live counters.
    pub stats: Arc<IngestStats>,
    /// The bound HTTP address, when `[http] listen` is set.
    pub http_addr: Option<SocketAddr>,
    http: Option<crate::http::HttpServer>,
    scheduler: Option<tokio::task::JoinHandle<()>>,
    /// The web console, when the HTTP listener runs.
    console: Option<Arc<crate::console::Console>>,
    shutdown: watch::Sender<bool>,
    /// A handle on the listening endpoint, to swap certificates in on reload.
    endpoint: quinn::Endpoint,
    /// The live trust (CA, CRL, server certificate), reloaded on SIGHUP and on file changes.
    trust: crate::ingest::trust::Trust,
    listener: tokio::task::JoinHandle<()>,
    mqtt: Option<tokio::task::JoinHandle<()>>,
    writer: std::thread::JoinHandle<()>,
    /// The shard map in force, swapped by [`Server::reload_cluster`].
    cluster: crate::cluster::live::LiveMap,
    /// Held while the server lives: writers from outside (`tenant import`) are refused.
    _store_lock: crate::store::exclusive::WriterLock,
}

impl Server {
    /// Opens the store, starts the writer and binds the listener. Call inside a tokio runtime.
    pub fn start(cfg: &Config) -> Result<Server, ServeError> {
        let trust = crate::ingest::trust::Trust::load(&cfg.pki_dir())
            .map_err(|e| ServeError::TlsConfig { dir: cfg.pki_dir(), message: e.to_string() })?;
        let tls = server_tls_with(&cfg.pki_dir(), &[ampel_protocol::ALPN_DATA, ampel_protocol::enroll::ALPN_ENROLL], &trust)?;
        let stats = Arc::new(IngestStats::default());
        // The shard map in force: QUIC routing and enrollment answers follow reloads.
        let live_map = crate::cluster::live::LiveMap::new(cfg.cluster.clone());
        let enroll = match crate::pki::Pki::open(&cfg.pki_dir()) {
            Ok(pki) => Some(Arc::new(
                crate::enroll::EnrollService::new(pki, cfg.pki.enrolled_lifetime.0.as_secs(), stats.clone()).with_cluster(live_map.clone()),
            )),
            Err(e) => {
                tracing::warn!(error = %e, "enrollment disabled: the CA cannot be opened");
                None
            }
        };
        let mqtt_options = match &cfg.mqtt {
            Some(m) => Some((m.clone(), mqtt::options(m, &cfg.pki_dir(), cfg.cluster.as_ref())?)),
            None => None,
        };
        // The data and store directories with explicit modes, before the store creates them.
        crate::files::create_dir_all(&cfg.store_dir()).map_err(|source| ServeError::Dir { path: cfg.store_dir(), source })?;
        // Before the store opens: no second collector, and no import beside this one.
        let store_lock = crate::store::exclusive::lock(&cfg.store_dir())?;
        let store = Store::open(&cfg.store_dir(), cfg.store_options())?;
        let endpoint = quic::bind(cfg.quic.listen, tls, cfg.quic.max_streams)?;
        let local_addr = endpoint.local_addr().map_err(|source| quic::ListenError::Bind { addr: cfg.quic.listen, source })?;
        let (writer, writer_thread) = Writer::start(store.clone(), stats.clone());
        let (shutdown, rx) = watch::channel(false);
        let Delivery { http, scheduler, console } = match start_delivery(cfg, &store, &stats, &trust, &live_map, &rx) {
            Ok(started) => started,
            Err(e) => {
                let _ = shutdown.send(true);
                return Err(e);
            }
        };
        // MQTT and QUIC both follow reloads of the map.
        let mqtt = mqtt_options.map(|(m, o)| {
            tracing::info!(broker = %m.broker, client_id = %m.client_id(cfg.cluster.as_ref()), "MQTT ingest enabled");
            let ingest = mqtt::Ingest { writer: writer.clone(), store: store.clone(), cluster: live_map.clone() };
            tokio::spawn(mqtt::serve(m, o, ingest, rx.clone()))
        });
        tokio::spawn(trust.clone().watch(rx.clone()));
        let limits = Limits::default();
        let shared = quic::Shared {
            writer,
            limits,
            trust: trust.clone(),
            enroll,
            budget: crate::ingest::budget::FrameBudget::new(cfg.quic.frame_budget_mib.bytes(), limits.max_frame),
            max_connections_per_device: cfg.quic.max_connections_per_device.0 as usize,
            cluster: live_map.clone(),
        };
        let listener = tokio::spawn(quic::serve(endpoint.clone(), shared, rx));
        tracing::info!(
            addr = %local_addr,
            store = %cfg.store_dir().display(),
            nofile = crate::rlimit::nofile(),
            "collector listening (QUIC, mutual TLS)"
        );
        let http_addr = http.as_ref().map(|h| h.local_addr);
        Ok(Server {
            local_addr,
            store,
            stats,
            http_addr,
            http,
            scheduler,
            console,
            shutdown,
            endpoint,
            trust,
            listener,
            mqtt,
            writer: writer_thread,
            _store_lock: store_lock,
            cluster: live_map,
        })
    }

    /// Re-reads the server certificate, key, CA (with rollover anchors) and CRL from the PKI
    /// directory and uses them from the next handshake on, closing sessions whose device no
    /// longer verifies. The trust also polls these files by itself; SIGHUP makes it immediate.
    /// On error the running trust stays. A changed `data-dir` needs a restart.
    pub fn reload_tls(&self, cfg: &Config) -> Result<(), ServeError> {
        let closed = self.trust.reload().map_err(|e| ServeError::TlsConfig { dir: cfg.pki_dir(), message: e.to_string() })?;
        if closed > 0 {
            tracing::info!(closed, "closed sessions of devices that no longer verify");
        }
        Ok(())
    }

    /// Whether the `[cluster]` of a reloaded configuration can be applied without a restart.
    pub fn check_cluster(&self, cfg: &Config) -> Result<(), crate::cluster::live::ReloadError> {
        self.cluster.check(cfg.cluster.as_ref())
    }

    /// Puts the `[cluster]` of a reloaded configuration in force: logs each tenant whose route
    /// changed and closes the QUIC connections of tenants no longer taken here (with the answer
    /// a new connection would get); the MQTT ingest changes its subscriptions itself.
    pub fn reload_cluster(&self, cfg: &Config) -> Result<(), crate::cluster::live::ReloadError> {
        let changes = self.cluster.replace(cfg.cluster.clone())?;
        let map = self.cluster.current();
        let closed = self.trust.sessions.close_refused(|id| crate::cluster::quic_refusal(map.as_deref(), &id.tenant));
        for change in &changes {
            tracing::warn!(change = %change, "shard map reloaded");
        }
        if !changes.is_empty() {
            tracing::warn!(tenants = changes.len(), connections_closed = closed, "shard map in force");
        }
        Ok(())
    }

    /// Applies the `[[users]]` of a reloaded configuration to the console: removed users and
    /// changed passwords end their sessions at once.
    pub fn reload_users(&self, cfg: &Config) {
        if let Some(c) = &self.console {
            c.set_users(cfg.users.clone());
        }
    }

    /// Refreshes the console's fleet summary now and waits for it (no-op without a console).
    pub async fn refresh_fleet(&self) {
        if let Some(c) = &self.console {
            c.fleet.refreshed().await;
        }
    }

    /// Stops accepting, lets in-flight batches commit and waits for the writer to finish.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        if let Some(s) = self.scheduler {
            let _ = s.await;
        }
        if let Some(h) = self.http {
            h.stopped().await;
        }
        if let Err(e) = self.listener.await {
            tracing::error!(error = %e, "listener task failed");
        }
        if let Some(m) = self.mqtt
            && let Err(e) = m.await
        {
            tracing::error!(error = %e, "MQTT ingest task failed");
        }
        drop(self.endpoint);
        let writer = self.writer;
        // The writer ends once the last connection task has dropped its handle.
        let _ = tokio::task::spawn_blocking(move || writer.join()).await;
        tracing::info!("collector stopped");
    }
}
