//! The deployment's certificate authority, built on rcgen.
//!
//! The collector is the CA of its deployment. `pki init` creates a CA, the collector's server
//! certificate and an empty CRL in a directory (for example `/var/lib/ampel/pki`); `pki issue`
//! signs a certificate for one device, with CN = device id and O = tenant id, which is what
//! [`ampel_protocol::Identity::from_cert_der`] reads back on the other end of mutual TLS.
//!
//! All keys are ECDSA P-256. Serial numbers are 126 random bits, so they are unique without a
//! counter file that two concurrent `pki issue` runs could race on. Every validity period starts
//! [`BACKDATE_SECS`] in the past, so a device whose clock runs a little behind accepts it.
//!
//! # Files in the PKI directory
//!
//! | file         | mode | what                                                        |
//! | ------------ | ---- | ----------------------------------------------------------- |
//! | `ca.pem`     | 0644 | the CA certificate: agents trust it, the collector checks devices against it |
//! | `ca.key`     | 0600 | the CA's private key                                        |
//! | `server.pem` | 0644 | the collector's (and broker's) server certificate           |
//! | `server.key` | 0600 | its private key                                             |
//! | `crl.pem`    | 0644 | the CA's revocation list, served from the start (empty until revocation exists) |
//!
//! The directory is created with mode 0700. Files are replaced atomically (temporary file,
//! fsync, rename), so the collector or mosquitto never read half a file.
//!
//! # Layout
//!
//! - this file: [`Pki`] (init, open, issue) and [`InitOptions`].
//! - `device`: [`IssuedDevice`], a signed device certificate with its key, and
//!   [`IssuedDevice::write_to`], which writes the files an operator copies to the device.
//! - `lifecycle`: certificates from a device's CSR, the index of issued serials, revocation
//!   and the CRL ([`Pki::sign_csr`], [`Pki::revoke_device`]).
//! - `rollover`: two trust anchors during a CA rollover ([`Pki::rollover_start`],
//!   [`Pki::rollover_finish`]).
//! - `files`: atomic, mode-setting file writes.
//! - `error`: [`PkiError`].

mod device;
mod error;
mod files;
mod lifecycle;
mod rollover;

use std::fmt;
use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use ampel_protocol::{DeviceId, TenantId, tls};
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
    KeyIdMethod, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, SanType, SerialNumber,
};
use rustls_pki_types::{CertificateDer, ServerName};
use time::OffsetDateTime;

pub use device::{DeviceFiles, IssuedDevice};
pub use error::PkiError;
use files::{KEY_MODE, PUBLIC_MODE};
pub use lifecycle::{ISSUED_FILE, REVOKED_FILE, Revoked, SignedCsr};
pub use rollover::{NEXT_CA_FILE, NEXT_KEY_FILE, PREVIOUS_CA_FILE, PREVIOUS_KEY_FILE};

/// File name of the CA certificate in the PKI directory.
pub const CA_CERT_FILE: &str = "ca.pem";
/// File name of the CA private key in the PKI directory.
pub const CA_KEY_FILE: &str = "ca.key";
/// File name of the server certificate in the PKI directory.
pub const SERVER_CERT_FILE: &str = "server.pem";
/// File name of the server private key in the PKI directory.
pub const SERVER_KEY_FILE: &str = "server.key";
/// File name of the certificate revocation list in the PKI directory.
pub const CRL_FILE: &str = "crl.pem";

/// How far every notBefore lies in the past, against clocks that run behind.
pub const BACKDATE_SECS: i64 = 5 * 60;

const SECS_PER_DAY: i64 = 86_400;

/// What `pki init` creates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitOptions {
    /// The names agents use to reach the collector: DNS names or IP literals. The first becomes
    /// the server certificate's CN; all become subject alternative names (an IP literal as an
    /// IP SAN, as needed to connect to `127.0.0.1`). At least one is required.
    pub names: Vec<String>,
    /// The CA's common name, shown by tools that display the certificate.
    pub ca_name: String,
    /// How long the CA is valid, in days. Every certificate stops working when it expires.
    pub ca_days: u32,
    /// How long the server certificate is valid, in days; at most `ca_days`.
    pub server_days: u32,
    /// Replace an existing CA. Every certificate the old CA issued stops being accepted.
    pub force: bool,
}

impl Default for InitOptions {
    /// No names (the caller must supply them), "Ampel CA", 10 years, 825 days (the longest
    /// server-certificate lifetime Apple clients accept), no force.
    fn default() -> Self {
        InitOptions { names: Vec::new(), ca_name: "Ampel CA".into(), ca_days: 3650, server_days: 825, force: false }
    }
}

impl InitOptions {
    /// Checks the options across fields; returns the server certificate's CN and its SANs.
    fn validate(&self) -> Result<(&str, Vec<SanType>), PkiError> {
        let bad = |msg: String| Err(PkiError::InvalidOption(msg));
        let Some(first) = self.names.first() else {
            return bad("at least one server name is needed: the DNS name or IP address agents connect to".into());
        };
        if self.ca_name.trim().is_empty() || self.ca_name.chars().count() > 64 {
            return bad(format!("CA name {:?} must be 1 to 64 characters", self.ca_name));
        }
        if self.ca_days == 0 || self.server_days == 0 {
            return bad("validity periods must be at least one day".into());
        }
        if self.server_days > self.ca_days {
            return bad(format!("the server certificate ({} days) cannot outlive the CA ({} days)", self.server_days, self.ca_days));
        }
        let sans = self.names.iter().map(|name| san(name)).collect::<Result<_, _>>()?;
        Ok((first, sans))
    }
}

/// A server name as a SAN, if a TLS client could ask for it.
fn san(name: &str) -> Result<SanType, PkiError> {
    let invalid = || PkiError::InvalidOption(format!("server name {name:?} is neither a DNS name nor an IP address"));
    // Accept exactly what rustls accepts as a server name, so every name is usable by agents.
    ServerName::try_from(name).map_err(|_| invalid())?;
    Ok(match name.parse::<IpAddr>() {
        Ok(ip) => SanType::IpAddress(ip),
        Err(_) => SanType::DnsName(name.to_owned().try_into().map_err(|_| invalid())?),
    })
}

/// The deployment's CA: its directory, certificate and signing key, loaded and checked.
pub struct Pki {
    dir: PathBuf,
    ca_pem: String,
    ca_der: CertificateDer<'static>,
    ca_not_after: i64,
    issuer: Issuer<'static, KeyPair>,
}

impl fmt::Debug for Pki {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pki")
            .field("dir", &self.dir)
            .field("ca_fingerprint", &self.ca_fingerprint())
            .field("ca_not_after", &self.ca_not_after)
            .finish_non_exhaustive()
    }
}

impl Pki {
    /// Creates a new CA, server certificate and empty CRL in `dir` (created with mode 0700).
    ///
    /// Refuses with [`PkiError::AlreadyInitialized`] if `ca.pem` or `ca.key` exists, unless
    /// `opts.force`; a refusal changes nothing. `ca.pem` is written last, so an interrupted run
    /// never leaves a CA certificate without its key.
    pub fn init(dir: &Path, opts: &InitOptions) -> Result<Pki, PkiError> {
        let (server_cn, sans) = opts.validate()?;
        if !opts.force {
            for name in [CA_CERT_FILE, CA_KEY_FILE] {
                let path = dir.join(name);
                if std::fs::symlink_metadata(&path).is_ok() {
                    return Err(PkiError::AlreadyInitialized { path });
                }
            }
        }
        files::create_private_dir(dir)?;
        let now = now_unix()?;

        let ca_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(PkiError::generate("generate the CA key"))?;
        let ca_not_after = now + i64::from(opts.ca_days) * SECS_PER_DAY;
        let mut ca = CertificateParams::default();
        ca.distinguished_name = DistinguishedName::new();
        ca.distinguished_name.push(DnType::CommonName, opts.ca_name.as_str());
        // Path length 0: the CA signs end-entity certificates only, never another CA.
        ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        ca.key_identifier_method = KeyIdMethod::Sha256;
        ca.serial_number = Some(random_serial().0);
        set_validity(&mut ca, now, ca_not_after)?;
        let ca_cert = ca.self_signed(&ca_key).map_err(PkiError::generate("sign the CA certificate"))?;
        let ca_key_pem = ca_key.serialize_pem();
        let issuer = Issuer::new(ca, ca_key);

        let server_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(PkiError::generate("generate the server key"))?;
        let mut server = leaf_params(now, now + i64::from(opts.server_days) * SECS_PER_DAY)?;
        server.distinguished_name.push(DnType::CommonName, server_cn);
        server.subject_alt_names = sans;
        // Client authentication too: a shard asks the others for their fleet rows with it.
        server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
        let server_cert = server.signed_by(&server_key, &issuer).map_err(PkiError::generate("sign the server certificate"))?;

        let crl_pem = sign_crl(&issuer, now, ca_not_after)?;

        let write = |name: &str, text: &str, mode| files::write_replace(&dir.join(name), text.as_bytes(), mode);
        write(SERVER_KEY_FILE, &server_key.serialize_pem(), KEY_MODE)?;
        write(SERVER_CERT_FILE, &server_cert.pem(), PUBLIC_MODE)?;
        write(CRL_FILE, &crl_pem, PUBLIC_MODE)?;
        write(CA_KEY_FILE, &ca_key_pem, KEY_MODE)?;
        write(CA_CERT_FILE, &ca_cert.pem(), PUBLIC_MODE)?;

        // Load back what is on disk: proves the files are complete and consistent.
        let pki = Pki::open(dir)?;
        tracing::info!(dir = %dir.display(), fingerprint = %pki.ca_fingerprint(), names = ?opts.names, "created CA");
        Ok(pki)
    }

    /// Loads the CA from `dir` and checks that `ca.key` belongs to `ca.pem` and that `ca.pem` is
    /// a CA certificate. A missing file gives [`PkiError::NotInitialized`]; every error names
    /// the file involved.
    pub fn open(dir: &Path) -> Result<Pki, PkiError> {
        let ca_path = dir.join(CA_CERT_FILE);
        let key_path = dir.join(CA_KEY_FILE);
        const CERT: &str = "CA certificate";
        const KEY: &str = "CA private key";
        let bad = |path: &Path, what, reason: String| PkiError::BadFile { path: path.to_owned(), what, reason };

        let ca_pem = read_text(&ca_path, CERT)?;
        let ca_der = tls::parse_certs(ca_pem.as_bytes())
            .map_err(|e| bad(&ca_path, CERT, e.to_string()))?
            .into_iter()
            .next()
            .ok_or_else(|| bad(&ca_path, CERT, "no certificate in it".into()))?;
        let (ca_not_after, ca_public_key) = {
            let (_, cert) = x509_parser::parse_x509_certificate(&ca_der).map_err(|e| bad(&ca_path, CERT, e.to_string()))?;
            match cert.basic_constraints() {
                Ok(Some(bc)) if bc.value.ca => {}
                _ => {
                    return Err(bad(&ca_path, CERT, "it is not a CA certificate (no basicConstraints CA:TRUE)".into()));
                }
            }
            (cert.validity().not_after.timestamp(), cert.public_key().subject_public_key.data.to_vec())
        };

        let key_pem = read_text(&key_path, KEY)?;
        warn_if_exposed(&key_path);
        // rcgen's error text describes the failure, never the key bytes.
        let key = KeyPair::from_pem(&key_pem).map_err(|e| bad(&key_path, KEY, e.to_string()))?;
        if key.public_key_raw() != ca_public_key.as_slice() {
            return Err(PkiError::KeyMismatch { key: key_path, cert: ca_path });
        }
        let issuer = Issuer::from_ca_cert_der(&ca_der, key).map_err(|e| bad(&ca_path, CERT, e.to_string()))?;
        Ok(Pki { dir: dir.to_owned(), ca_pem, ca_der, ca_not_after, issuer })
    }

    /// The PKI directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The CA certificate, PEM: what agents trust to recognise the collector.
    pub fn ca_pem(&self) -> String {
        self.ca_pem.clone()
    }

    /// The CA certificate, DER: the trust anchor for client certificates on the listener.
    pub fn ca_der(&self) -> &CertificateDer<'static> {
        &self.ca_der
    }

    /// When the CA expires, in seconds since the Unix epoch. No certificate outlives it.
    pub fn ca_not_after_unix(&self) -> i64 {
        self.ca_not_after
    }

    /// Path of `ca.pem`.
    pub fn ca_path(&self) -> PathBuf {
        self.dir.join(CA_CERT_FILE)
    }

    /// Path of `server.pem`, the collector's (and broker's) certificate.
    pub fn server_cert_path(&self) -> PathBuf {
        self.dir.join(SERVER_CERT_FILE)
    }

    /// Path of `server.key`.
    pub fn server_key_path(&self) -> PathBuf {
        self.dir.join(SERVER_KEY_FILE)
    }

    /// Path of `crl.pem`, for the QUIC listener and the broker's `crlfile`.
    pub fn crl_path(&self) -> PathBuf {
        self.dir.join(CRL_FILE)
    }

    /// SHA-256 of the CA certificate's DER, lowercase hex without separators: lets an agent
    /// check, from an enrollment token, that it trusts the right CA. Equals
    /// `openssl x509 -noout -fingerprint -sha256` without the colons, lowercased.
    pub fn ca_fingerprint(&self) -> String {
        hex(ring::digest::digest(&ring::digest::SHA256, &self.ca_der).as_ref())
    }

    /// Issues a client certificate for `device` of `tenant`, valid for `days` (but never past
    /// the CA's own expiry), with a fresh key. The CA keeps no copy of the key: write it out
    /// with [`IssuedDevice::write_to`]. Whether the device id is already registered is the
    /// store's business, not this function's.
    pub fn issue_device(&self, tenant: &TenantId, device: &DeviceId, days: u32) -> Result<IssuedDevice, PkiError> {
        self.issue_device_at(tenant, device, days, now_unix()?)
    }

    fn issue_device_at(&self, tenant: &TenantId, device: &DeviceId, days: u32, now: i64) -> Result<IssuedDevice, PkiError> {
        device::check_device_file_name(device)?;
        if days == 0 {
            return Err(PkiError::InvalidOption("a device certificate must be valid for at least one day".into()));
        }
        if now >= self.ca_not_after {
            return Err(PkiError::CaExpired { path: self.ca_path(), not_after: self.ca_not_after });
        }
        let wanted = now + i64::from(days) * SECS_PER_DAY;
        let not_after = wanted.min(self.ca_not_after);
        if not_after < wanted {
            tracing::warn!(%device, days, ca_not_after = self.ca_not_after, "device certificate shortened to the CA's expiry");
        }

        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(PkiError::generate("generate a device key"))?;
        let mut params = leaf_params(now, not_after)?;
        params.distinguished_name.push(DnType::CommonName, device.as_str());
        params.distinguished_name.push(DnType::OrganizationName, tenant.as_str());
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let (serial, serial_hex) = random_serial();
        params.serial_number = Some(serial);
        let cert = params.signed_by(&key, &self.issuer).map_err(PkiError::generate("sign the device certificate"))?;
        self.record_issued(tenant, device, &serial_hex, not_after)?;
        tracing::info!(%tenant, %device, serial = %serial_hex, not_after, "issued device certificate");
        Ok(IssuedDevice {
            tenant: tenant.clone(),
            device: device.clone(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            ca_pem: self.ca_pem.clone(),
            serial_hex,
            not_after_unix: not_after,
        })
    }
}

/// Parameters shared by the server and device certificates: an end entity (CA:FALSE) whose key
/// signs TLS handshakes, naming its issuer's key, with a random serial.
fn leaf_params(now: i64, not_after: i64) -> Result<CertificateParams, PkiError> {
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.use_authority_key_identifier_extension = true;
    params.serial_number = Some(random_serial().0);
    set_validity(&mut params, now, not_after)?;
    Ok(params)
}

/// Sets notBefore to [`BACKDATE_SECS`] before `now`, and notAfter.
fn set_validity(params: &mut CertificateParams, now: i64, not_after: i64) -> Result<(), PkiError> {
    params.not_before = datetime(now - BACKDATE_SECS)?;
    params.not_after = datetime(not_after)?;
    Ok(())
}

/// Signs an empty CRL. Its nextUpdate is the CA's expiry: the file is re-signed whenever a
/// certificate is revoked, not on a schedule, and OpenSSL (hence mosquitto) refuses every client
/// once a CRL's nextUpdate has passed. The CRL number is the issue time, so it grows without a
/// counter file.
fn sign_crl(issuer: &Issuer<'_, KeyPair>, now: i64, next_update: i64) -> Result<String, PkiError> {
    let params = CertificateRevocationListParams {
        this_update: datetime(now - BACKDATE_SECS)?,
        next_update: datetime(next_update)?,
        crl_number: SerialNumber::from(now.unsigned_abs()),
        issuing_distribution_point: None,
        revoked_certs: Vec::new(),
        key_identifier_method: KeyIdMethod::Sha256,
    };
    let crl = params.signed_by(issuer).map_err(PkiError::generate("sign the CRL"))?;
    crl.pem().map_err(PkiError::generate("encode the CRL"))
}

/// A positive serial of 16 bytes with a non-zero first byte (so the DER integer is exactly
/// these bytes and `serial_hex` matches what tools print), and its hex form.
fn random_serial() -> (SerialNumber, String) {
    let mut bytes: [u8; 16] = rand::random();
    bytes[0] = (bytes[0] & 0x7f).max(1);
    (SerialNumber::from_slice(&bytes), hex(&bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn now_unix() -> Result<i64, PkiError> {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).map_err(|_| PkiError::Clock)?;
    i64::try_from(since.as_secs()).map_err(|_| PkiError::Clock)
}

fn datetime(unix: i64) -> Result<OffsetDateTime, PkiError> {
    OffsetDateTime::from_unix_timestamp(unix)
        .map_err(|_| PkiError::InvalidOption(format!("validity ends at unix time {unix}, beyond year 9999")))
}

/// Reads a PEM file; a missing file means the PKI was never initialised.
fn read_text(path: &Path, what: &'static str) -> Result<String, PkiError> {
    crate::files::read_limited_to_string(path, crate::files::CRL_MAX).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => PkiError::NotInitialized { path: path.to_owned() },
        // Not UTF-8, too large, or not a regular file: say which.
        std::io::ErrorKind::InvalidData | std::io::ErrorKind::InvalidInput => {
            PkiError::BadFile { path: path.to_owned(), what, reason: format!("{e} (PEM expected)") }
        }
        _ => PkiError::io("read", path)(e),
    })
}

/// Warns when a key file can be read by group or others (someone copied it with `cp -p` from a
/// laxer place, or changed the mode): the CA key is the keys to the whole deployment.
fn warn_if_exposed(path: &Path) {
    if let Ok(meta) = std::fs::metadata(path) {
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            tracing::warn!(path = %path.display(), mode = format_args!("{mode:o}"), "private key is readable by others; chmod 600 it");
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;

/// Creates a directory with mode 0700 (for the enrollment token records).
pub(crate) fn create_private_dir(dir: &Path) -> Result<(), PkiError> {
    files::create_private_dir(dir)
}

/// Writes a new file readable by its owner only, refusing to replace one (token records).
pub(crate) fn write_new_private(path: &Path, bytes: &[u8]) -> Result<(), PkiError> {
    files::write_new(path, bytes, KEY_MODE)
}
