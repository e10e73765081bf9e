//! rustls configurations for both ends of mutual TLS, built from PEM bytes.
//!
//! One crypto provider serves the whole workspace: ring. [`install_provider`] installs it as the
//! process default at start-up, and every builder here names it explicitly, so nothing can
//! switch providers behind our back. Reading the PEM files is the caller's business (it knows the
//! paths to put into error messages).

use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};

/// Why a TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The PEM text holds no certificate.
    #[error("no certificate found in PEM data")]
    NoCertificate,
    /// The PEM text holds no private key.
    #[error("no private key found in PEM data")]
    NoKey,
    /// The PEM text is malformed.
    #[error("malformed PEM: {0}")]
    Pem(String),
    /// rustls refused the material (mismatched key, bad CA, unusable CRL).
    #[error("{0}")]
    Rustls(String),
}

/// The workspace's one crypto provider (ring).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Installs ring as the process-wide default provider. Safe to call more than once.
pub fn install_provider() {
    // An error means a provider is installed already — by an earlier call of ours.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// All certificates in a PEM text, in order (leaf first for a chain).
pub fn parse_certs(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem).collect::<Result<Vec<_>, _>>().map_err(|e| TlsError::Pem(e.to_string()))?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate);
    }
    Ok(certs)
}

/// The first private key (PKCS#8, SEC1 or PKCS#1) in a PEM text.
pub fn parse_key(pem: &[u8]) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| match e {
        rustls_pki_types::pem::Error::NoItemsFound => TlsError::NoKey,
        other => TlsError::Pem(other.to_string()),
    })
}

/// All CRLs in a PEM text (possibly none).
pub fn parse_crls(pem: &[u8]) -> Result<Vec<CertificateRevocationListDer<'static>>, TlsError> {
    CertificateRevocationListDer::pem_slice_iter(pem).collect::<Result<Vec<_>, _>>().map_err(|e| TlsError::Pem(e.to_string()))
}

fn roots(cas: &[CertificateDer<'static>]) -> Result<RootCertStore, TlsError> {
    let mut store = RootCertStore::empty();
    for ca in cas {
        store.add(ca.clone()).map_err(|e| TlsError::Rustls(format!("trust anchor refused: {e}")))?;
    }
    Ok(store)
}

/// Server side: presents `chain`/`key`, requires a client certificate issued by one of
/// `client_cas` and not revoked by `crls`.
pub fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    client_cas: &[CertificateDer<'static>],
    crls: Vec<CertificateRevocationListDer<'static>>,
    alpn: &[&[u8]],
) -> Result<ServerConfig, TlsError> {
    let provider = provider();
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots(client_cas)?), provider.clone())
        .with_crls(crls)
        .build()
        .map_err(|e| TlsError::Rustls(e.to_string()))?;
    let mut cfg = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Rustls(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| TlsError::Rustls(e.to_string()))?;
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(cfg)
}

/// Client side: trusts only `server_cas` and authenticates with `chain`/`key`.
pub fn client_config(
    server_cas: &[CertificateDer<'static>],
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    alpn: &[&[u8]],
) -> Result<ClientConfig, TlsError> {
    let mut cfg = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Rustls(e.to_string()))?
        .with_root_certificates(roots(server_cas)?)
        .with_client_auth_cert(chain, key)
        .map_err(|e| TlsError::Rustls(e.to_string()))?;
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(cfg)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn empty_pem_is_named_as_such() {
        assert!(matches!(parse_certs(b""), Err(TlsError::NoCertificate)));
        assert!(matches!(parse_key(b"hello"), Err(TlsError::NoKey)));
        assert!(parse_crls(b"").unwrap().is_empty());
    }
}
