//! The certificate lifecycle after `issue`: certificates signed from a device's CSR (enrollment
//! and renewal), the index of issued serials, revocation and the CRL built from it.
//!
//! # Files
//!
//! | file          | mode | what                                                          |
//! | ------------- | ---- | ------------------------------------------------------------- |
//! | `issued.txt`  | 0644 | one line per issued device certificate: `serial device tenant not_after` |
//! | `revoked.txt` | 0644 | one line per revoked serial: `serial device revoked_at`        |
//!
//! `issued.txt` is appended to with `O_APPEND` (one short line per write, so concurrent writers
//! never interleave); `revoked.txt` and `crl.pem` are replaced atomically. Revocation names a
//! device; every certificate ever issued to it and still unexpired goes onto the CRL.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use ampel_protocol::{DeviceId, TenantId};
use rcgen::{
    CertificateRevocationListParams, CertificateSigningRequestParams, DnType, ExtendedKeyUsagePurpose, KeyIdMethod, RevokedCertParams,
    SerialNumber,
};
use rustls_pki_types::CertificateSigningRequestDer;

use super::files::{self, PUBLIC_MODE};
use super::{BACKDATE_SECS, Pki, PkiError, datetime, leaf_params, now_unix, random_serial};

/// File name of the index of issued device certificates.
pub const ISSUED_FILE: &str = "issued.txt";
/// File name of the list of revoked serials.
pub const REVOKED_FILE: &str = "revoked.txt";

/// A device certificate signed from the device's own CSR: the key never left the device.
#[derive(Debug, Clone)]
pub struct SignedCsr {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// Its serial, lowercase hex.
    pub serial_hex: String,
    /// When it expires, Unix seconds.
    pub not_after_unix: i64,
}

/// One revoked serial.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revoked {
    /// Serial, lowercase hex.
    pub serial_hex: String,
    /// The device it belonged to.
    pub device: String,
    /// When it was revoked, Unix seconds.
    pub revoked_at: i64,
}

impl Pki {
    /// Signs a certificate for `device` of `tenant` with the public key of `csr`, valid for
    /// `lifetime_secs` (never past the CA). Only the CSR's key is used — its signature proves
    /// the device holds the key; its subject is ignored, the names come from the caller, who
    /// checked the token or the current certificate.
    pub fn sign_csr(&self, tenant: &TenantId, device: &DeviceId, csr_der: &[u8], lifetime_secs: u64) -> Result<SignedCsr, PkiError> {
        let now = now_unix()?;
        if now >= self.ca_not_after {
            return Err(PkiError::CaExpired { path: self.ca_path(), not_after: self.ca_not_after });
        }
        let der = CertificateSigningRequestDer::from(csr_der.to_vec());
        let csr = CertificateSigningRequestParams::from_der(&der)
            .map_err(|e| PkiError::InvalidOption(format!("certificate signing request refused: {e}")))?;
        let lifetime = i64::try_from(lifetime_secs).unwrap_or(i64::MAX).max(1);
        let not_after = now.saturating_add(lifetime).min(self.ca_not_after);
        let mut params = leaf_params(now, not_after)?;
        params.distinguished_name.push(DnType::CommonName, device.as_str());
        params.distinguished_name.push(DnType::OrganizationName, tenant.as_str());
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let (serial, serial_hex) = random_serial();
        params.serial_number = Some(serial);
        let request = CertificateSigningRequestParams { params, public_key: csr.public_key };
        let cert = request.signed_by(&self.issuer).map_err(PkiError::generate("sign the device certificate"))?;
        self.record_issued(tenant, device, &serial_hex, not_after)?;
        tracing::info!(%tenant, %device, serial = %serial_hex, not_after, "signed device certificate from its CSR");
        Ok(SignedCsr { cert_pem: cert.pem(), serial_hex, not_after_unix: not_after })
    }

    /// Appends one line to `issued.txt`.
    pub(crate) fn record_issued(&self, tenant: &TenantId, device: &DeviceId, serial_hex: &str, not_after: i64) -> Result<(), PkiError> {
        let path = self.dir.join(ISSUED_FILE);
        let line = format!("{serial_hex} {device} {tenant} {not_after}\n");
        std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .mode(PUBLIC_MODE)
            .open(&path)
            .and_then(|mut f| f.write_all(line.as_bytes()).and_then(|()| f.sync_data()))
            .map_err(PkiError::io("append to", path))
    }

    /// Serials issued to `device` that have not expired at `now`.
    fn live_serials(&self, device: &DeviceId, now: i64) -> Result<Vec<String>, PkiError> {
        let text = read_optional(&self.dir.join(ISSUED_FILE))?;
        Ok(text
            .lines()
            .filter_map(|l| {
                let mut f = l.split_ascii_whitespace();
                let (serial, dev, _tenant, not_after) = (f.next()?, f.next()?, f.next()?, f.next()?);
                let live = not_after.parse::<i64>().ok()? > now - BACKDATE_SECS;
                (dev == device.as_str() && live).then(|| serial.to_owned())
            })
            .collect())
    }

    /// Every revoked serial, from `revoked.txt`.
    pub fn revoked(&self) -> Result<Vec<Revoked>, PkiError> {
        let path = self.dir.join(REVOKED_FILE);
        let text = read_optional(&path)?;
        Ok(text
            .lines()
            .filter_map(|l| {
                let mut f = l.split_ascii_whitespace();
                Some(Revoked { serial_hex: f.next()?.to_owned(), device: f.next()?.to_owned(), revoked_at: f.next()?.parse().ok()? })
            })
            .collect())
    }

    /// Revokes every unexpired certificate issued to `device` and re-signs `crl.pem`. Returns
    /// the serials newly revoked (empty if there were none, or all were revoked already; the
    /// CRL is re-signed either way).
    pub fn revoke_device(&self, device: &DeviceId) -> Result<Vec<String>, PkiError> {
        let serials = self.live_serials(device, now_unix()?)?;
        self.revoke_serials(device, serials)
    }

    /// Revokes the certificate in `cert_pem` (for certificates issued before `issued.txt`
    /// existed, or copied from a device). Returns its serial if newly revoked.
    pub fn revoke_cert(&self, cert_pem: &[u8]) -> Result<Vec<String>, PkiError> {
        let bad = |reason: String| PkiError::InvalidOption(format!("cannot revoke: {reason}"));
        let der = ampel_protocol::tls::parse_certs(cert_pem).map_err(|e| bad(e.to_string()))?.remove(0);
        let (_, cert) = x509_parser::parse_x509_certificate(&der).map_err(|e| bad(e.to_string()))?;
        let id = ampel_protocol::Identity::from_cert_der(&der).map_err(|e| bad(e.to_string()))?;
        let serial = super::hex(cert.raw_serial());
        self.revoke_serials(&id.device, vec![serial])
    }

    fn revoke_serials(&self, device: &DeviceId, serials: Vec<String>) -> Result<Vec<String>, PkiError> {
        let now = now_unix()?;
        let mut all: BTreeMap<String, Revoked> = self.revoked()?.into_iter().map(|r| (r.serial_hex.clone(), r)).collect();
        let mut added = Vec::new();
        for serial in serials {
            if !all.contains_key(&serial) {
                added.push(serial.clone());
                all.insert(serial.clone(), Revoked { serial_hex: serial, device: device.to_string(), revoked_at: now });
            }
        }
        let text: String = all.values().map(|r| format!("{} {} {}\n", r.serial_hex, r.device, r.revoked_at)).collect();
        files::write_replace(&self.dir.join(REVOKED_FILE), text.as_bytes(), PUBLIC_MODE)?;
        self.write_crl(now, all.values())?;
        tracing::info!(%device, serials = ?added, "revoked device certificates");
        Ok(added)
    }

    /// Re-signs `crl.pem` with `revoked`, atomically.
    fn write_crl<'a>(&self, now: i64, revoked: impl Iterator<Item = &'a Revoked>) -> Result<(), PkiError> {
        let mut certs = Vec::new();
        for r in revoked {
            let Some(bytes) = unhex(&r.serial_hex) else {
                tracing::warn!(serial = %r.serial_hex, "skipping a malformed serial in revoked.txt");
                continue;
            };
            certs.push(RevokedCertParams {
                serial_number: SerialNumber::from_slice(&bytes),
                revocation_time: datetime(r.revoked_at)?,
                reason_code: None,
                invalidity_date: None,
            });
        }
        let params = CertificateRevocationListParams {
            this_update: datetime(now - BACKDATE_SECS)?,
            next_update: datetime(self.ca_not_after)?,
            crl_number: SerialNumber::from(now.unsigned_abs()),
            issuing_distribution_point: None,
            revoked_certs: certs,
            key_identifier_method: KeyIdMethod::Sha256,
        };
        // One CRL per CA in use (see `rollover`): certificates of each are checked against
        // their own issuer's list.
        let mut pem = String::new();
        for issuer in std::iter::once(&self.issuer).chain(self.other_issuers()?.iter()) {
            let crl = params.signed_by(issuer).map_err(PkiError::generate("sign the CRL"))?;
            pem.push_str(&crl.pem().map_err(PkiError::generate("encode the CRL"))?);
        }
        files::write_replace(&self.crl_path(), pem.as_bytes(), PUBLIC_MODE)
    }

    /// Re-signs `crl.pem` from `revoked.txt` (after a CA change).
    pub fn resign_crl(&self) -> Result<(), PkiError> {
        let revoked = self.revoked()?;
        self.write_crl(now_unix()?, revoked.iter())
    }
}

fn read_optional(path: &std::path::Path) -> Result<String, PkiError> {
    match crate::files::read_limited_to_string(path, crate::files::CRL_MAX) {
        Ok(t) => Ok(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(PkiError::io("read", PathBuf::from(path))(e)),
    }
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || s.is_empty() {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::pki::InitOptions;

    fn pki(dir: &std::path::Path) -> Pki {
        Pki::init(dir, &InitOptions { names: vec!["localhost".into()], ..InitOptions::default() }).unwrap()
    }

    #[test]
    fn revoking_a_device_puts_its_serials_on_the_crl_and_only_its() {
        let dir = tempfile::tempdir().unwrap();
        let pki = pki(dir.path());
        let t: TenantId = "acme".parse().unwrap();
        let a = pki.issue_device(&t, &"fw-1".parse().unwrap(), 1).unwrap();
        let b = pki.issue_device(&t, &"fw-2".parse().unwrap(), 1).unwrap();
        let added = pki.revoke_device(&"fw-1".parse().unwrap()).unwrap();
        assert_eq!(added, vec![a.serial_hex.clone()]);
        let crl = std::fs::read(pki.crl_path()).unwrap();
        let der = ampel_protocol::tls::parse_crls(&crl).unwrap().remove(0);
        let (_, parsed) = x509_parser::parse_x509_crl(&der).unwrap();
        let serials: Vec<String> = parsed.iter_revoked_certificates().map(|r| super::super::hex(r.raw_serial())).collect();
        assert_eq!(serials, vec![a.serial_hex]);
        assert!(!serials.contains(&b.serial_hex));
        // Again: nothing new, CRL still holds it.
        assert!(pki.revoke_device(&"fw-1".parse().unwrap()).unwrap().is_empty());
        assert_eq!(pki.revoked().unwrap().len(), 1);
    }

    #[test]
    fn a_certificate_file_can_be_revoked_even_without_an_index_entry() {
        let dir = tempfile::tempdir().unwrap();
        let pki = pki(dir.path());
        let a = pki.issue_device(&"acme".parse().unwrap(), &"fw-1".parse().unwrap(), 1).unwrap();
        std::fs::remove_file(dir.path().join(ISSUED_FILE)).unwrap();
        assert!(pki.revoke_device(&"fw-1".parse().unwrap()).unwrap().is_empty());
        assert_eq!(pki.revoke_cert(a.cert_pem.as_bytes()).unwrap(), vec![a.serial_hex]);
        assert!(pki.revoke_cert(b"not a certificate").is_err());
    }

    #[test]
    fn a_csr_is_signed_with_the_callers_names_not_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let pki = pki(dir.path());
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut p = rcgen::CertificateParams::default();
        p.distinguished_name.push(DnType::CommonName, "evil");
        let csr = p.serialize_request(&key).unwrap();
        let signed = pki.sign_csr(&"acme".parse().unwrap(), &"fw-9".parse().unwrap(), csr.der(), 60).unwrap();
        let der = ampel_protocol::tls::parse_certs(signed.cert_pem.as_bytes()).unwrap().remove(0);
        let id = ampel_protocol::Identity::from_cert_der(&der).unwrap();
        assert_eq!((id.tenant.as_str(), id.device.as_str()), ("acme", "fw-9"));
        assert!(pki.sign_csr(&"acme".parse().unwrap(), &"fw-9".parse().unwrap(), b"garbage", 60).is_err());
    }
}
