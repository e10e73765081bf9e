//! MQTT transport: QoS 1 publishes to `ampel/v1/<tenant>/<device>/up` through a broker, with
//! mutual TLS. Tenant and device come from the agent's certificate; the broker lets a device
//! publish only where the device level equals its certificate CN.
//!
//! A batch leaves the spool only when its PUBACK arrives — `publish` succeeding only means
//! "queued". This task alone polls the rumqttc [`EventLoop`] and never awaits a client call (that
//! deadlocks): it hands publishes over with the non-blocking `try_publish`, never more than the
//! event loop's in-flight window, so the request channel can not be full.
//!
//! rumqttc numbers publishes in the order they are requested, and reports each as
//! `Outgoing::Publish(pkid)`: a FIFO of seqs maps packet ids back to batches. Every connection
//! starts a fresh event loop with a clean session: whatever was unacknowledged is resent from the
//! spool in sequence order, and the collector drops duplicates by `(device, seq)`.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use ampel_protocol::{tls, topic};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rumqttc::{AsyncClient, Event, EventLoop, Incoming, Outgoing, QoS, TlsConfiguration};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::outbox::Outbox;
use super::{Credentials, SharedSpool, Status, Transport, TransportError, forget, next_batch, spooled};
use crate::backoff::{Backoff, BackoffConfig};
use crate::config::{CollectorAddress, CollectorConfig};

/// Tuning of the MQTT transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MqttOptions {
    /// Publishes awaiting their PUBACK at once (at most 65535).
    pub max_in_flight: u16,
    /// MQTT keep-alive.
    pub keep_alive: Duration,
    /// How long a connection attempt (TCP + TLS + CONNACK) may take, in seconds.
    pub connect_timeout_s: u64,
    /// On shutdown, how long to wait for outstanding PUBACKs.
    pub drain_timeout: Duration,
    /// Acknowledged seqs are deleted from the spool in groups of up to this many (one LMDB
    /// commit each), or at the latest after `flush_every`.
    pub flush_batch: usize,
    /// See `flush_batch`.
    pub flush_every: Duration,
    /// Reconnect backoff.
    pub backoff: BackoffConfig,
    /// Largest publish accepted from or sent to the broker.
    pub max_packet: usize,
}

impl Default for MqttOptions {
    fn default() -> Self {
        MqttOptions {
            max_in_flight: 100,
            keep_alive: Duration::from_secs(15),
            connect_timeout_s: 10,
            drain_timeout: Duration::from_secs(2),
            flush_batch: 256,
            flush_every: Duration::from_millis(20),
            backoff: BackoffConfig::default(),
            max_packet: 16 << 20,
        }
    }
}

/// The MQTT transport.
pub struct MqttTransport {
    address: CollectorAddress,
    topic: String,
    client_id: String,
    tls: Arc<rustls::ClientConfig>,
    options: MqttOptions,
    status: watch::Sender<Status>,
}

impl MqttTransport {
    /// Builds the TLS configuration and the topic from the certificate. Does no I/O.
    pub fn new(collector: &CollectorConfig, creds: Credentials, options: MqttOptions) -> Result<MqttTransport, TransportError> {
        tls::install_provider();
        let identity = creds.identity.clone().ok_or_else(|| TransportError::NoIdentity { cert: collector.cert.clone() })?;
        let tls = tls::client_config(&creds.ca, creds.chain, creds.key, &[]).map_err(|error| TransportError::Tls {
            cert: collector.cert.clone(),
            key: collector.key.clone(),
            error,
        })?;
        let (status, _) = watch::channel(Status::default());
        Ok(MqttTransport {
            address: collector.address.clone(),
            topic: topic::uplink(&identity.tenant, &identity.device),
            client_id: identity.device.to_string(),
            tls: Arc::new(tls),
            options,
            status,
        })
    }

    /// The topic this agent publishes on.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    fn event_loop(&self) -> (AsyncClient, EventLoop) {
        let host = self.address.host().to_str().into_owned();
        let mut o = rumqttc::MqttOptions::new(self.client_id.clone(), host, self.address.port());
        o.set_transport(rumqttc::Transport::tls_with_config(TlsConfiguration::Rustls(self.tls.clone())))
            .set_keep_alive(self.options.keep_alive)
            .set_clean_session(true)
            .set_inflight(self.options.max_in_flight.max(1))
            .set_max_packet_size(self.options.max_packet, self.options.max_packet)
            .set_request_channel_capacity(usize::from(self.options.max_in_flight) + 8);
        let (client, mut eventloop) = AsyncClient::new(o, usize::from(self.options.max_in_flight) + 8);
        eventloop.network_options.set_connection_timeout(self.options.connect_timeout_s);
        (client, eventloop)
    }

    async fn run_inner(self, spool: SharedSpool, mut wake: mpsc::Receiver<u64>) {
        let spool_handle = spool.clone();
        let mut st = State {
            spool,
            outbox: Outbox::new(),
            status: Status::default(),
            backoff: Backoff::new(self.options.backoff),
            acked: Vec::new(),
            queued: spooled(&spool_handle),
            drain_until: None,
        };
        let mut rng = StdRng::from_os_rng();
        loop {
            let error = self.connection(&mut st, &mut wake).await;
            self.flush(&mut st);
            st.outbox.requeue_all();
            st.status.connected = false;
            let Some(error) = error else { break };
            if st.drain_until.is_some() {
                break;
            }
            let delay = st.backoff.failed(std::time::Instant::now(), &mut rng);
            if delay.log {
                tracing::warn!(
                    broker = %self.address,
                    error = %error,
                    attempt = delay.failures,
                    retry_in_ms = delay.wait.as_millis() as u64,
                    "cannot deliver to the MQTT broker; retrying with backoff",
                );
            }
            st.status.last_error = Some(error);
            self.publish_status(&st);
            let pause = tokio::time::sleep(delay.wait);
            tokio::pin!(pause);
            while st.drain_until.is_none() {
                tokio::select! {
                    _ = &mut pause => break,
                    b = wake.recv() => self.take(&mut st, b),
                }
            }
            if st.drain_until.is_some() {
                break;
            }
        }
        self.flush(&mut st);
        let left = st.queued;
        if left > 0 {
            tracing::info!(
                batches = left,
                "stopping with unacknowledged batches; they stay in the spool and are sent after the next start"
            );
        }
        self.publish_status(&st);
    }

    /// One connection, from CONNECT until it fails (`Some(reason)`) or the agent stops (`None`).
    async fn connection(&self, st: &mut State, wake: &mut mpsc::Receiver<u64>) -> Option<String> {
        let (client, mut eventloop) = self.event_loop();
        // Seqs handed to rumqttc, waiting for their packet id; then packet id -> seq.
        let mut requested: VecDeque<u64> = VecDeque::new();
        let mut by_pkid: HashMap<u16, u64> = HashMap::new();
        let mut connected = false;
        let mut flush = tokio::time::interval(self.options.flush_every);
        let result = loop {
            if connected && st.drain_until.is_none() {
                let mut failed = None;
                while let Some((seq, payload)) = next_batch(&st.spool, &mut st.outbox, usize::from(self.options.max_in_flight)) {
                    // Never blocks: at most max_in_flight requests are outstanding and the
                    // channel holds more than that.
                    if let Err(e) = client.try_publish(self.topic.clone(), QoS::AtLeastOnce, false, payload) {
                        st.outbox.requeue(seq);
                        failed = Some(format!("cannot hand a publish to the MQTT client: {e}"));
                        break;
                    }
                    requested.push_back(seq);
                }
                if failed.is_some() {
                    break failed;
                }
            }
            self.publish_status(st);
            if st.drain_until.is_some() && (st.outbox.in_flight() == 0 || !connected) {
                break None;
            }
            let deadline = st.drain_until.unwrap_or_else(|| Instant::now() + Duration::from_secs(86_400));
            tokio::select! {
                event = eventloop.poll() => match event {
                    Ok(Event::Incoming(Incoming::ConnAck(_))) => {
                        connected = true;
                        st.status.connected = true;
                        st.status.last_error = None;
                        let failures = st.backoff.succeeded();
                        tracing::info!(broker = %self.address, topic = %self.topic, failed_attempts = failures, "connected to MQTT broker");
                    }
                    Ok(Event::Outgoing(Outgoing::Publish(pkid))) => {
                        if let Some(seq) = requested.pop_front() {
                            by_pkid.insert(pkid, seq);
                        }
                    }
                    Ok(Event::Incoming(Incoming::PubAck(ack))) => {
                        if let Some(seq) = by_pkid.remove(&ack.pkid) {
                            st.outbox.release(seq);
                            st.status.acked += 1;
                            st.acked.push(seq);
                            if st.acked.len() >= self.options.flush_batch {
                                self.flush(st);
                            }
                        }
                    }
                    Ok(_) => {}
                    Err(e) => break Some(e.to_string()),
                },
                _ = flush.tick() => self.flush(st),
                b = wake.recv(), if st.drain_until.is_none() => self.take(st, b),
                _ = tokio::time::sleep_until(deadline), if st.drain_until.is_some() => break None,
            }
        };
        if result.is_none() && connected {
            // Send DISCONNECT and keep polling until it is out (rumqttc's documented way).
            let _ = client.try_disconnect();
            let _ = tokio::time::timeout(Duration::from_secs(1), async {
                loop {
                    match eventloop.poll().await {
                        Ok(Event::Outgoing(Outgoing::Disconnect)) | Err(_) => break,
                        Ok(Event::Incoming(Incoming::PubAck(ack))) => {
                            if let Some(seq) = by_pkid.remove(&ack.pkid) {
                                st.outbox.release(seq);
                                st.status.acked += 1;
                                st.acked.push(seq);
                            }
                        }
                        Ok(_) => {}
                    }
                }
            })
            .await;
        }
        result
    }

    /// Deletes the acknowledged batches from the spool in one transaction.
    fn flush(&self, st: &mut State) {
        if !st.acked.is_empty() {
            forget(&st.spool, &st.acked);
            st.acked.clear();
        }
        st.queued = spooled(&st.spool);
    }

    fn take(&self, st: &mut State, b: Option<u64>) {
        if b.is_none() {
            st.drain_until = Some(Instant::now() + self.options.drain_timeout);
        }
        st.queued = spooled(&st.spool);
    }

    fn publish_status(&self, st: &State) {
        let mut s = st.status.clone();
        // Cached: counting the spool on every event would cost a read transaction each.
        s.queued = st.queued;
        s.in_flight = st.outbox.in_flight();
        self.status.send_if_modified(|old| {
            let changed = *old != s;
            if changed {
                *old = s;
            }
            changed
        });
    }
}

struct State {
    spool: SharedSpool,
    outbox: Outbox,
    status: Status,
    backoff: Backoff,
    /// Acknowledged seqs not yet deleted from the spool.
    acked: Vec<u64>,
    /// Batches in the spool, as of the last flush.
    queued: usize,
    drain_until: Option<Instant>,
}

impl Transport for MqttTransport {
    fn status(&self) -> watch::Receiver<Status> {
        self.status.subscribe()
    }

    fn run(self, spool: SharedSpool, spooled: mpsc::Receiver<u64>) -> impl Future<Output = ()> + Send {
        self.run_inner(spool, spooled)
    }
}
