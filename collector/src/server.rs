//! `serve`: the store, the writer and the QUIC listener wired together, started and stopped as
//! one. The demo and the tests run the same [`Server`] in process.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ampel_protocol::{Limits, tls};
use tokio::sync::watch;

use crate::config::Config;
use crate::ingest::{IngestStats, Writer, quic};
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
    /// The listener could not start.
    #[error(transparent)]
    Listen(#[from] quic::ListenError),
    /// Scheduled delivery (delivery store, link key, mail setup) could not start.
    #[error("starting scheduled delivery: {0:#}")]
    Delivery(anyhow::Error),
    /// The HTTP listener could not start.
    #[error(transparent)]
    Http(#[from] crate::http::HttpError),
}

fn read(path: &Path) -> Result<Vec<u8>, ServeError> {
    std::fs::read(path).map_err(|e| ServeError::Tls {
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

type Delivery = (Option<crate::http::HttpServer>, Option<tokio::task::JoinHandle<()>>);

/// Starts the HTTP listener (when `[http] listen` is set) and the scheduler (when there are
/// `[[jobs]]`, which config validation ties to the listener).
fn start_delivery(cfg: &Config, store: &Store, ingest: &Arc<IngestStats>, shutdown: &watch::Receiver<bool>) -> Result<Delivery, ServeError> {
    use crate::schedule::{commands, runner};
    let Some(listen) = cfg.http.listen else { return Ok((None, None)) };
    let (delivery, key) = commands::open(cfg).map_err(ServeError::Delivery)?;
    let stats = Arc::new(runner::DeliveryStats::default());
    let state = crate::http::HttpState {
        store: delivery.clone(),
        key: key.clone(),
        archive: crate::archive::Archive::new(&cfg.archive_dir()),
        delivery: stats.clone(),
        ingest: Some(ingest.clone()),
    };
    let http = crate::http::HttpServer::start(listen, state, shutdown.clone())?;
    if cfg.jobs.is_empty() {
        return Ok((Some(http), None));
    }
    let render = runner::store_renderer(store.clone(), Arc::new(cfg.clone()));
    let sched = commands::scheduler(cfg, delivery, key, http.local_addr, render, stats).map_err(ServeError::Delivery)?;
    let task = tokio::spawn(sched.run_loop(shutdown.clone()));
    Ok((Some(http), Some(task)))
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
    shutdown: watch::Sender<bool>,
    /// A handle on the listening endpoint, to swap certificates in on reload.
    endpoint: quinn::Endpoint,
    listener: tokio::task::JoinHandle<()>,
    writer: std::thread::JoinHandle<()>,
}

impl Server {
    /// Opens the store, starts the writer and binds the listener. Call inside a tokio runtime.
    pub fn start(cfg: &Config) -> Result<Server, ServeError> {
        let tls = server_tls(&cfg.pki_dir(), &[ampel_protocol::ALPN_DATA])?;
        let store = Store::open(&cfg.store_dir(), cfg.store_options())?;
        let stats = Arc::new(IngestStats::default());
        let endpoint = quic::bind(cfg.quic.listen, tls, cfg.quic.max_streams)?;
        let local_addr = endpoint.local_addr().map_err(|source| quic::ListenError::Bind { addr: cfg.quic.listen, source })?;
        let (writer, writer_thread) = Writer::start(store.clone(), stats.clone());
        let (shutdown, rx) = watch::channel(false);
        let (http, scheduler) = match start_delivery(cfg, &store, &stats, &rx) {
            Ok(started) => started,
            Err(e) => {
                let _ = shutdown.send(true);
                return Err(e);
            }
        };
        let listener = tokio::spawn(quic::serve(endpoint.clone(), writer, Limits::default(), rx));
        tracing::info!(addr = %local_addr, store = %cfg.store_dir().display(), "collector listening (QUIC, mutual TLS)");
        let http_addr = http.as_ref().map(|h| h.local_addr);
        Ok(Server { local_addr, store, stats, http_addr, http, scheduler, shutdown, endpoint, listener, writer: writer_thread })
    }

    /// Re-reads the server certificate, key, CA and CRL from `cfg`'s PKI directory and uses
    /// them for new connections (a renewed certificate or a new CRL needs no restart). On
    /// error the running configuration stays.
    pub fn reload_tls(&self, cfg: &Config) -> Result<(), ServeError> {
        let tls = server_tls(&cfg.pki_dir(), &[ampel_protocol::ALPN_DATA])?;
        self.endpoint.set_server_config(Some(quic::server_config(tls, cfg.quic.max_streams)?));
        Ok(())
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
        drop(self.endpoint);
        let writer = self.writer;
        // The writer ends once the last connection task has dropped its handle.
        let _ = tokio::task::spawn_blocking(move || writer.join()).await;
        tracing::info!("collector stopped");
    }
}
