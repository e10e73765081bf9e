//! CA rollover in two steps, so that no agent ever sees a collector it does not trust.
//!
//! 1. `pki rollover --start` creates the next CA (`ca-next.pem`, `ca-next.key`). The listener
//!    trusts it for client certificates at once, and every enrollment and renewal answer carries
//!    both CAs, so agents learn the next CA at their next renewal.
//! 2. `pki rollover --finish` (after at least one renewal period) makes the next CA current:
//!    the old one becomes `ca-previous.pem`/`.key`, the server certificate is re-issued by the
//!    new CA with the same names and key, and the running collector picks both up. Devices
//!    still holding a certificate of the previous CA are accepted until they renew; delete
//!    `ca-previous.pem` to end the window (open sessions of such devices are then closed).
//!
//! `crl.pem` holds one CRL per CA whose key is present, each listing every revoked serial, so
//! revocation works for certificates of either CA.

use std::net::IpAddr;
use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair,
    KeyUsagePurpose, PKCS_ECDSA_P256_SHA256,
};

use super::files::{self, KEY_MODE, PUBLIC_MODE};
use super::{
    CA_CERT_FILE, CA_KEY_FILE, Pki, PkiError, SECS_PER_DAY, SERVER_CERT_FILE, SERVER_KEY_FILE, leaf_params, now_unix, random_serial,
    set_validity,
};

/// The next CA's certificate during a rollover.
pub const NEXT_CA_FILE: &str = "ca-next.pem";
/// The next CA's key during a rollover.
pub const NEXT_KEY_FILE: &str = "ca-next.key";
/// The previous CA's certificate after a rollover (still trusted for device certificates).
pub const PREVIOUS_CA_FILE: &str = "ca-previous.pem";
/// The previous CA's key (kept to sign its CRL).
pub const PREVIOUS_KEY_FILE: &str = "ca-previous.key";

fn read(path: &Path) -> Result<String, PkiError> {
    crate::files::read_limited_to_string(path, crate::files::CERT_MAX).map_err(PkiError::io("read", path))
}

/// Loads an extra CA (certificate and key) as an issuer, if both files exist.
pub(crate) fn extra_issuer(dir: &Path, cert: &str, key: &str) -> Result<Option<Issuer<'static, KeyPair>>, PkiError> {
    let (cert_path, key_path) = (dir.join(cert), dir.join(key));
    if !cert_path.exists() || !key_path.exists() {
        return Ok(None);
    }
    let bad = |path: &Path, reason: String| PkiError::BadFile { path: path.to_owned(), what: "CA", reason };
    let der = ampel_protocol::tls::parse_certs(read(&cert_path)?.as_bytes())
        .map_err(|e| bad(&cert_path, e.to_string()))?
        .into_iter()
        .next()
        .ok_or_else(|| bad(&cert_path, "no certificate".into()))?;
    let key = KeyPair::from_pem(&read(&key_path)?).map_err(|e| bad(&key_path, e.to_string()))?;
    Issuer::from_ca_cert_der(&der, key).map(Some).map_err(|e| bad(&cert_path, e.to_string()))
}

impl Pki {
    /// Step 1: creates the next CA, valid `ca_days`, and re-signs the CRL. Refuses while a
    /// rollover is in progress.
    pub fn rollover_start(&self, ca_days: u32) -> Result<String, PkiError> {
        let next = self.dir.join(NEXT_CA_FILE);
        if next.exists() {
            return Err(PkiError::InvalidOption(format!("a rollover is in progress ({} exists); finish it first", next.display())));
        }
        if ca_days == 0 {
            return Err(PkiError::InvalidOption("the CA must be valid for at least one day".into()));
        }
        let now = now_unix()?;
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(PkiError::generate("generate the next CA key"))?;
        let mut ca = CertificateParams::default();
        ca.distinguished_name = DistinguishedName::new();
        // A distinct name: CRLs are matched to certificates by issuer name, so two CAs of the
        // same name would have their CRLs confused.
        ca.distinguished_name.push(DnType::CommonName, format!("Ampel CA {now}"));
        ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        ca.key_identifier_method = KeyIdMethod::Sha256;
        ca.serial_number = Some(random_serial().0);
        set_validity(&mut ca, now, now + i64::from(ca_days) * SECS_PER_DAY)?;
        let cert = ca.self_signed(&key).map_err(PkiError::generate("sign the next CA certificate"))?;
        files::write_new(&self.dir.join(NEXT_KEY_FILE), key.serialize_pem().as_bytes(), KEY_MODE)?;
        files::write_new(&next, cert.pem().as_bytes(), PUBLIC_MODE)?;
        self.resign_crl()?;
        let fp = super::hex(ring::digest::digest(&ring::digest::SHA256, cert.der()).as_ref());
        tracing::info!(fingerprint = %fp, "next CA created; rollover started");
        Ok(fp)
    }

    /// Step 2: makes the next CA current, keeps the current one as previous, re-issues the
    /// server certificate under the new CA with the same names and key. Returns the new CA,
    /// opened.
    pub fn rollover_finish(self, server_days: u32) -> Result<Pki, PkiError> {
        let dir = self.dir.clone();
        let Some(next) = extra_issuer(&dir, NEXT_CA_FILE, NEXT_KEY_FILE)? else {
            return Err(PkiError::InvalidOption("no rollover in progress: run `pki rollover --start` first".into()));
        };
        let server_path = dir.join(SERVER_CERT_FILE);
        let names = server_names(&server_path)?;
        let server_key = KeyPair::from_pem(&read(&dir.join(SERVER_KEY_FILE))?).map_err(|e| PkiError::BadFile {
            path: dir.join(SERVER_KEY_FILE),
            what: "server key",
            reason: e.to_string(),
        })?;
        let now = now_unix()?;
        let mut server = leaf_params(now, now + i64::from(server_days.max(1)) * SECS_PER_DAY)?;
        if let Some(first) = names.first() {
            server.distinguished_name.push(DnType::CommonName, first.as_str());
        }
        server.subject_alt_names = names.iter().map(|n| super::san(n)).collect::<Result<_, _>>()?;
        // Client authentication too: a shard asks the others for their fleet rows with it.
        server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
        let server_cert = server.signed_by(&server_key, &next).map_err(PkiError::generate("sign the server certificate"))?;

        // Current -> previous, next -> current. Keys before certificates, as in `init`.
        let copy = |from: &str, to: &str, mode| -> Result<(), PkiError> {
            files::write_replace(&dir.join(to), read(&dir.join(from))?.as_bytes(), mode)
        };
        copy(CA_KEY_FILE, PREVIOUS_KEY_FILE, KEY_MODE)?;
        copy(CA_CERT_FILE, PREVIOUS_CA_FILE, PUBLIC_MODE)?;
        copy(NEXT_KEY_FILE, CA_KEY_FILE, KEY_MODE)?;
        copy(NEXT_CA_FILE, CA_CERT_FILE, PUBLIC_MODE)?;
        files::write_replace(&server_path, server_cert.pem().as_bytes(), PUBLIC_MODE)?;
        for f in [NEXT_CA_FILE, NEXT_KEY_FILE] {
            std::fs::remove_file(dir.join(f)).map_err(PkiError::io("remove", dir.join(f)))?;
        }
        drop(self);
        let pki = Pki::open(&dir)?;
        pki.resign_crl()?;
        tracing::info!(fingerprint = %pki.ca_fingerprint(), "rollover finished: the next CA is current");
        Ok(pki)
    }

    /// Issuers whose CRLs `crl.pem` must hold besides the current CA.
    pub(crate) fn other_issuers(&self) -> Result<Vec<Issuer<'static, KeyPair>>, PkiError> {
        Ok([(NEXT_CA_FILE, NEXT_KEY_FILE), (PREVIOUS_CA_FILE, PREVIOUS_KEY_FILE)]
            .into_iter()
            .map(|(c, k)| extra_issuer(&self.dir, c, k))
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .flatten()
            .collect())
    }
}

/// The DNS names and IP addresses of a server certificate, CN first.
fn server_names(path: &Path) -> Result<Vec<String>, PkiError> {
    let bad = |reason: String| PkiError::BadFile { path: path.to_owned(), what: "server certificate", reason };
    let der = ampel_protocol::tls::parse_certs(read(path)?.as_bytes())
        .map_err(|e| bad(e.to_string()))?
        .into_iter()
        .next()
        .ok_or_else(|| bad("no certificate".into()))?;
    let (_, cert) = x509_parser::parse_x509_certificate(&der).map_err(|e| bad(e.to_string()))?;
    let mut names = Vec::new();
    if let Ok(Some(sans)) = cert.subject_alternative_name() {
        for n in &sans.value.general_names {
            match n {
                x509_parser::extensions::GeneralName::DNSName(d) => names.push((*d).to_owned()),
                x509_parser::extensions::GeneralName::IPAddress(b) => {
                    let ip = match b.len() {
                        4 => <[u8; 4]>::try_from(*b).ok().map(IpAddr::from),
                        16 => <[u8; 16]>::try_from(*b).ok().map(IpAddr::from),
                        _ => None,
                    };
                    names.extend(ip.map(|ip| ip.to_string()));
                }
                _ => {}
            }
        }
    }
    let cn = cert.subject().iter_common_name().next().and_then(|c| c.as_str().ok()).map(str::to_owned);
    if let Some(cn) = cn {
        names.retain(|n| *n != cn);
        names.insert(0, cn);
    }
    if names.is_empty() {
        return Err(bad("it names no server".into()));
    }
    Ok(names)
}
