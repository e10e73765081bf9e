//! One enrollment connection: read one bounded request, answer it, close.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ampel_protocol::enroll::{self, ENROLL_LIMITS, EnrollRequest, EnrollResponse};
use ampel_protocol::logsafe::esc;
use ampel_protocol::{DeviceId, Identity, TenantId, frame, shard};

use super::limit::RateLimiter;
use super::tokens::TokenStore;
use crate::cluster::{self, Route, ShardMap, live::LiveMap};
use crate::ingest::IngestStats;
use crate::pki::Pki;

/// How long an enrolling peer may take to send its request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Signs CSRs for token holders and for devices renewing their current certificate.
pub struct EnrollService {
    /// Opened per request: a CA rollover changes the signing CA under the running collector.
    pki_dir: std::path::PathBuf,
    tokens: TokenStore,
    lifetime_secs: u64,
    limiter: Mutex<RateLimiter>,
    /// Refusals are counted here and logged within its per-address budget: the requests are
    /// unauthenticated.
    stats: Arc<IngestStats>,
    /// The shard map in force, to name the owning shard in the answer.
    cluster: LiveMap,
}

/// The redirect text naming the shard that owns `tenant`, when that is not this one (a tenant
/// on its way to a shard is sent there: it is refused here, and there once the move is done).
fn owner_elsewhere(map: Option<&ShardMap>, tenant: &TenantId) -> Option<String> {
    let owner = match cluster::route(map, tenant) {
        Route::Elsewhere(s) => s,
        Route::Moving(s) if map.is_some_and(|m| m.own().name != s.name) => s,
        Route::Own | Route::Moving(_) | Route::Unowned => return None,
    };
    let redirect = shard::Redirect { shard: owner.name.clone(), address: owner.quic.to_string() };
    Some(String::from_utf8_lossy(&redirect.encode()).into_owned())
}

impl std::fmt::Debug for EnrollService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnrollService").field("pki_dir", &self.pki_dir).field("lifetime_secs", &self.lifetime_secs).finish_non_exhaustive()
    }
}

impl EnrollService {
    /// A service signing with `pki`, issuing certificates valid for `lifetime_secs`, counting
    /// refusals in `stats`.
    pub fn new(pki: Pki, lifetime_secs: u64, stats: Arc<IngestStats>) -> EnrollService {
        let tokens = TokenStore::new(pki.dir());
        let limiter = Mutex::new(RateLimiter::default());
        EnrollService { pki_dir: pki.dir().to_owned(), tokens, lifetime_secs, limiter, stats, cluster: LiveMap::default() }
    }

    /// Answers with the owning shard's address (in force at each answer) when another shard
    /// owns the device's tenant.
    pub fn with_cluster(self, cluster: LiveMap) -> EnrollService {
        EnrollService { cluster, ..self }
    }

    /// Counts a refusal of `remote`; whether to log it (within the address's log budget).
    fn refused(&self, remote: SocketAddr) -> bool {
        self.stats.enroll_refused.fetch_add(1, Ordering::Relaxed);
        self.stats.log_throttle.allow("enroll", &remote.ip().to_string())
    }

    /// Serves one connection on the enroll ALPN. `peer` is the identity of a verified client
    /// certificate, if the peer presented one (renewal).
    pub async fn handle(&self, conn: quinn::Connection, remote: SocketAddr, peer: Option<Identity>) {
        let allowed = match self.limiter.lock() {
            Ok(mut l) => l.allow(remote.ip(), Instant::now()),
            Err(_) => false,
        };
        if !allowed {
            if self.refused(remote) {
                tracing::warn!(%remote, "enrollment refused: too many requests from this address");
            }
            conn.close(quinn::VarInt::from_u32(4), b"rate limited");
            return;
        }
        let response = match tokio::time::timeout(REQUEST_TIMEOUT, self.exchange(&conn, remote, peer)).await {
            Ok(Ok(())) => {
                // Let the response reach the peer; it closes when it has read it.
                let _ = tokio::time::timeout(REQUEST_TIMEOUT, conn.closed()).await;
                return;
            }
            Ok(Err(e)) => e,
            Err(_) => "request timed out".to_owned(),
        };
        tracing::debug!(%remote, error = %esc(&response), "enrollment connection ended");
        conn.close(quinn::VarInt::from_u32(1), b"enrollment failed");
    }

    async fn exchange(&self, conn: &quinn::Connection, remote: SocketAddr, peer: Option<Identity>) -> Result<(), String> {
        let (mut send, mut recv) = conn.accept_bi().await.map_err(|e| e.to_string())?;
        let mut header = [0u8; frame::HEADER_LEN];
        recv.read_exact(&mut header).await.map_err(|e| e.to_string())?;
        let response = match frame::payload_len(header, &ENROLL_LIMITS) {
            Err(e) => {
                self.stats.enroll_refused.fetch_add(1, Ordering::Relaxed);
                EnrollResponse::Refused(e.to_string())
            }
            Ok(len) => {
                let payload = recv.read_to_end(len).await.map_err(|e| e.to_string())?;
                match enroll::decode_request(&payload) {
                    Err(e) => {
                        self.stats.enroll_refused.fetch_add(1, Ordering::Relaxed);
                        EnrollResponse::Refused(format!("malformed request: {e}"))
                    }
                    Ok(req) => self.answer(req, remote, peer),
                }
            }
        };
        let bytes = enroll::encode(&response).and_then(|b| frame::encode_frame(&b, &ENROLL_LIMITS)).map_err(|e| e.to_string())?;
        send.write_all(&bytes).await.map_err(|e| e.to_string())?;
        send.finish().map_err(|e| e.to_string())?;
        Ok(())
    }

    /// Decides a request. Plain code over data: no I/O but the PKI's files.
    pub fn answer(&self, req: EnrollRequest, remote: SocketAddr, peer: Option<Identity>) -> EnrollResponse {
        let (tenant, device, csr, what) = match req {
            EnrollRequest::Enroll { id, secret, tenant, device, csr } => {
                match self.tokens.redeem(&id, &secret, &tenant, &device, unix_now()) {
                    Ok((t, d)) => (t, d, csr, "enrolled"),
                    Err(refusal) => {
                        // Tenant, device and id are the unauthenticated peer's words.
                        if self.refused(remote) {
                            tracing::warn!(%remote, tenant = %esc(&tenant), device = %esc(&device), token = %esc(&id), reason = %refusal, "enrollment refused");
                        }
                        return EnrollResponse::Refused(refusal.to_string());
                    }
                }
            }
            EnrollRequest::Renew { csr } => match peer {
                Some(id) => (id.tenant, id.device, csr, "renewed"),
                None => {
                    self.stats.enroll_refused.fetch_add(1, Ordering::Relaxed);
                    return EnrollResponse::Refused("renewal needs the current client certificate".into());
                }
            },
        };
        self.sign(&tenant, &device, &csr, what, remote)
    }

    fn sign(&self, tenant: &TenantId, device: &DeviceId, csr: &[u8], what: &str, remote: SocketAddr) -> EnrollResponse {
        let signed = Pki::open(&self.pki_dir).and_then(|pki| Ok((pki.sign_csr(tenant, device, csr, self.lifetime_secs)?, pki)));
        match signed {
            Ok((signed, pki)) => {
                tracing::info!(%remote, %tenant, %device, serial = %signed.serial_hex, not_after = signed.not_after_unix, "device {what}");
                let shard = owner_elsewhere(self.cluster.current().as_deref(), tenant);
                EnrollResponse::Issued { cert_pem: signed.cert_pem, ca_pem: trusted_cas(&pki), not_after: signed.not_after_unix, shard }
            }
            Err(e) => {
                self.stats.enroll_refused.fetch_add(1, Ordering::Relaxed);
                // The error may quote the peer's CSR.
                tracing::warn!(%remote, %tenant, %device, error = %esc(&e), "cannot sign the device's CSR");
                EnrollResponse::Refused(format!("cannot sign: {e}"))
            }
        }
    }
}

/// The CA certificates an agent should trust: the current CA, and the next or previous one
/// during a rollover.
fn trusted_cas(pki: &Pki) -> String {
    let mut pem = pki.ca_pem();
    for extra in [crate::pki::NEXT_CA_FILE, crate::pki::PREVIOUS_CA_FILE] {
        if let Ok(more) = crate::files::read_limited_to_string(&pki.dir().join(extra), crate::files::CERT_MAX) {
            pem.push_str(&more);
        }
    }
    pem
}

fn unix_now() -> i64 {
    crate::ingest::quic::now_ms() / 1000
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn an_enrollment_answer_names_the_shard_of_a_tenant_owned_elsewhere() {
        let map = |moving: &str| -> ShardMap {
            toml::from_str(&format!(
                "shard = \"eu-1\"\nmoving = [{moving}]\n\
                 [[shards]]\nname = \"eu-1\"\nquic = \"eu-1.example.net:4433\"\ntenants = [\"acme\"]\n\
                 [[shards]]\nname = \"eu-2\"\nquic = \"eu-2.example.net:4433\"\ntenants = [\"initech\"]\n"
            ))
            .unwrap()
        };
        let t = |s: &str| TenantId::new(s).unwrap();
        let elsewhere = owner_elsewhere(Some(&map("")), &t("initech")).unwrap();
        let r = shard::Redirect::decode(elsewhere.as_bytes()).unwrap();
        assert_eq!((r.shard.as_str(), r.address.as_str()), ("eu-2", "eu-2.example.net:4433"));
        assert_eq!(owner_elsewhere(Some(&map("")), &t("acme")), None, "our own tenant");
        assert_eq!(owner_elsewhere(Some(&map("")), &t("umbrella")), None, "nobody's tenant");
        assert_eq!(owner_elsewhere(None, &t("initech")), None, "no [cluster]");
        assert!(owner_elsewhere(Some(&map("\"initech\"")), &t("initech")).is_some(), "moving to eu-2: go there");
        assert_eq!(owner_elsewhere(Some(&map("\"acme\"")), &t("acme")), None, "moving here");
    }
}
