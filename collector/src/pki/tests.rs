//! Tests of the CA: files on disk, certificates as a TLS peer sees them, errors an operator reads.

use std::fs;
use std::sync::Arc;

use ampel_protocol::{ALPN_DATA, Identity};
use rustls::{ClientConfig, ClientConnection, ServerConfig, ServerConnection};
use rustls_pki_types::ServerName;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::*;

fn opts() -> InitOptions {
    InitOptions { names: vec!["localhost".into(), "127.0.0.1".into()], ..InitOptions::default() }
}

fn ids(tenant: &str, device: &str) -> (TenantId, DeviceId) {
    (TenantId::new(tenant).unwrap(), DeviceId::new(device).unwrap())
}

fn mode(p: &Path) -> u32 {
    fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn der_of(pem: &str) -> CertificateDer<'static> {
    tls::parse_certs(pem.as_bytes()).unwrap().remove(0)
}

/// The listener's TLS configuration, built from the files exactly as the collector will.
fn server_config(pki: &Pki) -> Arc<ServerConfig> {
    tls::install_provider();
    let chain = tls::parse_certs(&fs::read(pki.server_cert_path()).unwrap()).unwrap();
    let key = tls::parse_key(&fs::read(pki.server_key_path()).unwrap()).unwrap();
    let crls = tls::parse_crls(&fs::read(pki.crl_path()).unwrap()).unwrap();
    assert_eq!(crls.len(), 1, "crl.pem holds one CRL");
    let cas = tls::parse_certs(&fs::read(pki.ca_path()).unwrap()).unwrap();
    Arc::new(tls::server_config(chain, key, &cas, crls, &[ALPN_DATA]).unwrap())
}

/// An agent's TLS configuration from the files `write_to` produced.
fn client_config(files: &DeviceFiles) -> Arc<ClientConfig> {
    let cas = tls::parse_certs(&fs::read(&files.ca).unwrap()).unwrap();
    let chain = tls::parse_certs(&fs::read(&files.cert).unwrap()).unwrap();
    let key = tls::parse_key(&fs::read(&files.key).unwrap()).unwrap();
    Arc::new(tls::client_config(&cas, chain, key, &[ALPN_DATA]).unwrap())
}

/// Runs a TLS handshake in memory, passing bytes back and forth until both sides are done.
/// Returns the first error either side reports.
fn handshake(
    server_cfg: Arc<ServerConfig>,
    client_cfg: Arc<ClientConfig>,
    name: &str,
) -> Result<(ServerConnection, ClientConnection), rustls::Error> {
    let name = ServerName::try_from(name.to_owned()).unwrap();
    let mut server = ServerConnection::new(server_cfg)?;
    let mut client = ClientConnection::new(client_cfg, name)?;
    for _ in 0..10 {
        if !client.is_handshaking() && !server.is_handshaking() {
            return Ok((server, client));
        }
        let mut wire = Vec::new();
        client.write_tls(&mut wire).unwrap();
        let mut rd = &wire[..];
        while !rd.is_empty() {
            server.read_tls(&mut rd).unwrap();
            server.process_new_packets()?;
        }
        wire.clear();
        server.write_tls(&mut wire).unwrap();
        let mut rd = &wire[..];
        while !rd.is_empty() {
            client.read_tls(&mut rd).unwrap();
            client.process_new_packets()?;
        }
    }
    panic!("handshake did not finish in 10 round trips");
}

#[test]
fn init_creates_every_file_with_private_keys_and_a_private_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("var/lib/ampel/pki");
    let pki = Pki::init(&dir, &opts()).unwrap();
    assert_eq!(pki.dir(), dir);
    for (path, want) in [
        (pki.ca_path(), 0o644),
        (dir.join(CA_KEY_FILE), 0o600),
        (pki.server_cert_path(), 0o644),
        (pki.server_key_path(), 0o600),
        (pki.crl_path(), 0o644),
    ] {
        assert_eq!(mode(&path), want, "{}", path.display());
    }
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(fs::read_to_string(pki.ca_path()).unwrap(), pki.ca_pem());
    // Nothing but the five files (no temporary files left behind).
    assert_eq!(fs::read_dir(&dir).unwrap().count(), 5);
}

#[test]
fn init_again_refuses_without_force_and_leaves_the_ca_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let first = Pki::init(tmp.path(), &opts()).unwrap();
    let ca_before = fs::read(first.ca_path()).unwrap();
    let key_before = fs::read(tmp.path().join(CA_KEY_FILE)).unwrap();
    let server_before = fs::read(first.server_cert_path()).unwrap();

    let err = Pki::init(tmp.path(), &opts()).unwrap_err();
    assert!(matches!(&err, PkiError::AlreadyInitialized { path } if path == &first.ca_path()), "{err}");
    assert!(err.to_string().contains("--force"), "{err}");
    assert_eq!(fs::read(first.ca_path()).unwrap(), ca_before);
    assert_eq!(fs::read(tmp.path().join(CA_KEY_FILE)).unwrap(), key_before);
    assert_eq!(fs::read(first.server_cert_path()).unwrap(), server_before);

    let replaced = Pki::init(tmp.path(), &InitOptions { force: true, ..opts() }).unwrap();
    assert_ne!(replaced.ca_fingerprint(), first.ca_fingerprint());
    assert_eq!(mode(&tmp.path().join(CA_KEY_FILE)), 0o600);
}

#[test]
fn a_lone_ca_key_also_blocks_init() {
    // An interrupted init or a restore gone wrong: never overwrite a CA key silently.
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join(CA_KEY_FILE), "precious").unwrap();
    let err = Pki::init(tmp.path(), &opts()).unwrap_err();
    assert!(matches!(err, PkiError::AlreadyInitialized { .. }), "{err}");
    assert_eq!(fs::read_to_string(tmp.path().join(CA_KEY_FILE)).unwrap(), "precious");
}

#[test]
fn bad_options_are_refused_before_anything_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("pki");
    for bad in [
        InitOptions { names: vec![], ..opts() },
        InitOptions { names: vec!["collector example".into()], ..opts() },
        InitOptions { ca_days: 0, ..opts() },
        InitOptions { ca_days: 365, server_days: 825, ..opts() },
        InitOptions { ca_name: " ".into(), ..opts() },
    ] {
        let err = Pki::init(&dir, &bad).unwrap_err();
        assert!(matches!(err, PkiError::InvalidOption(_)), "{bad:?}: {err}");
    }
    assert!(!dir.exists());
}

#[test]
fn the_server_certificate_carries_the_names_agents_connect_to() {
    let tmp = tempfile::tempdir().unwrap();
    let names = vec!["collector.example.net".to_owned(), "10.0.0.7".to_owned(), "::1".to_owned()];
    let pki = Pki::init(tmp.path(), &InitOptions { names, ..opts() }).unwrap();
    let der = der_of(&fs::read_to_string(pki.server_cert_path()).unwrap());
    let (_, cert) = X509Certificate::from_der(&der).unwrap();
    let cn = cert.subject().iter_common_name().next().unwrap().as_str().unwrap();
    assert_eq!(cn, "collector.example.net");
    let san = cert.subject_alternative_name().unwrap().unwrap().value;
    use x509_parser::extensions::GeneralName;
    let shown: Vec<String> = san
        .general_names
        .iter()
        .map(|n| match n {
            GeneralName::DNSName(dns) => format!("DNS:{dns}"),
            GeneralName::IPAddress([a, b, c, d]) => {
                format!("IP:{}", std::net::Ipv4Addr::new(*a, *b, *c, *d))
            }
            GeneralName::IPAddress(bytes) => {
                format!("IP:{}", std::net::Ipv6Addr::from(<[u8; 16]>::try_from(*bytes).unwrap()))
            }
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(shown, ["DNS:collector.example.net", "IP:10.0.0.7", "IP:::1"]);
    assert!(!cert.is_ca());
}

#[test]
fn an_issued_device_certificate_reads_back_as_its_tenant_and_device() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::init(tmp.path(), &opts()).unwrap();
    let (tenant, device) = ids("acme", "fw-01");
    let before = now_unix().unwrap();
    let issued = pki.issue_device(&tenant, &device, 365).unwrap();

    let der = der_of(&issued.cert_pem);
    let identity = Identity::from_cert_der(&der).unwrap();
    assert_eq!(identity, Identity { tenant: tenant.clone(), device: device.clone() });
    assert_eq!((issued.tenant, issued.device), (tenant, device));
    assert_eq!(issued.ca_pem, pki.ca_pem());

    let (_, cert) = X509Certificate::from_der(&der).unwrap();
    assert_eq!(hex(cert.raw_serial()), issued.serial_hex);
    assert!(!cert.is_ca());
    let eku = cert.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.client_auth && !eku.server_auth);
    assert!(cert.key_usage().unwrap().unwrap().value.digital_signature());
    // Backdated against clock skew, and valid for the days asked.
    assert!(cert.validity().not_before.timestamp() <= before - 60);
    assert_eq!(cert.validity().not_after.timestamp(), issued.not_after_unix);
    assert!((issued.not_after_unix - (before + 365 * 86_400)).abs() < 60);
}

#[test]
fn serials_differ_between_certificates() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::init(tmp.path(), &opts()).unwrap();
    let (tenant, device) = ids("acme", "fw-01");
    let a = pki.issue_device(&tenant, &device, 1).unwrap();
    let b = pki.issue_device(&tenant, &device, 1).unwrap();
    assert_ne!(a.serial_hex, b.serial_hex);
    assert_eq!(a.serial_hex.len(), 32);
}

#[test]
fn device_certificates_never_outlive_the_ca_and_an_expired_ca_issues_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::init(tmp.path(), &InitOptions { ca_days: 2, server_days: 1, ..opts() }).unwrap();
    let (tenant, device) = ids("acme", "fw-01");
    let issued = pki.issue_device(&tenant, &device, 825).unwrap();
    assert_eq!(issued.not_after_unix, pki.ca_not_after_unix());

    let later = pki.ca_not_after_unix() + 1;
    let err = pki.issue_device_at(&tenant, &device, 30, later).unwrap_err();
    assert!(matches!(&err, PkiError::CaExpired { path, .. } if path == &pki.ca_path()), "{err}");
}

#[test]
fn mutual_tls_handshake_succeeds_by_dns_name_and_by_ip_address() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::init(&tmp.path().join("pki"), &opts()).unwrap();
    let (tenant, device) = ids("acme", "fw-01");
    let issued = pki.issue_device(&tenant, &device, 30).unwrap();
    let files = issued.write_to(&tmp.path().join("out")).unwrap();

    for name in ["localhost", "127.0.0.1"] {
        let (server, client) =
            handshake(server_config(&pki), client_config(&files), name).unwrap_or_else(|e| panic!("handshake as {name}: {e}"));
        let peer = server.peer_certificates().unwrap();
        assert_eq!(peer[0], der_of(&issued.cert_pem), "server sees the device certificate");
        assert_eq!(Identity::from_cert_der(&peer[0]).unwrap(), Identity { tenant: tenant.clone(), device: device.clone() });
        assert_eq!(client.alpn_protocol(), Some(ALPN_DATA));
    }
}

#[test]
fn the_agent_refuses_a_name_the_server_certificate_does_not_carry() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::init(&tmp.path().join("pki"), &opts()).unwrap();
    let (tenant, device) = ids("acme", "fw-01");
    let files = pki.issue_device(&tenant, &device, 30).unwrap().write_to(&tmp.path().join("out")).unwrap();
    let err = handshake(server_config(&pki), client_config(&files), "collector.example.net").unwrap_err();
    assert!(matches!(err, rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForNameContext { .. })), "{err:?}");
}

#[test]
fn a_device_certificate_from_another_ca_is_refused_by_the_server() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::init(&tmp.path().join("pki"), &opts()).unwrap();
    let rogue = Pki::init(&tmp.path().join("rogue"), &opts()).unwrap();
    let (tenant, device) = ids("acme", "fw-01");
    let forged = rogue.issue_device(&tenant, &device, 30).unwrap();

    // The agent trusts the real CA (so it accepts the server) but presents the rogue certificate.
    let cas = vec![pki.ca_der().clone()];
    let chain = tls::parse_certs(forged.cert_pem.as_bytes()).unwrap();
    let key = tls::parse_key(forged.key_pem.as_bytes()).unwrap();
    let client = Arc::new(tls::client_config(&cas, chain, key, &[ALPN_DATA]).unwrap());

    // Both CAs are called "Ampel CA", as a forger would arrange: the server finds the issuer by
    // name and then the signature does not verify. A differently named CA is simply unknown.
    let err = handshake(server_config(&pki), client, "localhost").unwrap_err();
    assert!(matches!(err, rustls::Error::InvalidCertificate(rustls::CertificateError::BadSignature)), "{err:?}");

    let other = Pki::init(&tmp.path().join("other"), &InitOptions { ca_name: "Other CA".into(), ..opts() }).unwrap();
    let foreign = other.issue_device(&tenant, &device, 30).unwrap();
    let chain = tls::parse_certs(foreign.cert_pem.as_bytes()).unwrap();
    let key = tls::parse_key(foreign.key_pem.as_bytes()).unwrap();
    let client = Arc::new(tls::client_config(&cas, chain, key, &[ALPN_DATA]).unwrap());
    let err = handshake(server_config(&pki), client, "localhost").unwrap_err();
    assert!(matches!(err, rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer)), "{err:?}");
}

#[test]
fn the_fingerprint_is_the_sha256_of_ca_pem_and_survives_reopening() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::init(tmp.path(), &opts()).unwrap();
    let fp = pki.ca_fingerprint();
    assert_eq!(fp.len(), 64);
    assert!(fp.chars().all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)), "{fp}");
    let on_disk = der_of(&fs::read_to_string(pki.ca_path()).unwrap());
    assert_eq!(fp, hex(ring::digest::digest(&ring::digest::SHA256, &on_disk).as_ref()));
    assert_eq!(Pki::open(tmp.path()).unwrap().ca_fingerprint(), fp);
}

#[test]
fn a_reopened_ca_issues_certificates_that_verify() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("pki");
    Pki::init(&dir, &opts()).unwrap();
    let pki = Pki::open(&dir).unwrap();
    let (tenant, device) = ids("acme", "fw-02");
    let files = pki.issue_device(&tenant, &device, 30).unwrap().write_to(&tmp.path().join("out")).unwrap();
    handshake(server_config(&pki), client_config(&files), "localhost").unwrap();
}

#[test]
fn open_on_a_missing_directory_names_the_file_it_looked_for() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("nowhere");
    let err = Pki::open(&dir).unwrap_err();
    assert!(matches!(&err, PkiError::NotInitialized { path } if path == &dir.join(CA_CERT_FILE)), "{err}");
    assert!(err.to_string().contains(&dir.join(CA_CERT_FILE).display().to_string()), "{err}");
}

#[test]
fn open_with_a_corrupt_ca_key_names_the_key_file() {
    let tmp = tempfile::tempdir().unwrap();
    Pki::init(tmp.path(), &opts()).unwrap();
    let key_path = tmp.path().join(CA_KEY_FILE);
    let pem = fs::read_to_string(&key_path).unwrap();
    fs::write(&key_path, &pem[..pem.len() / 2]).unwrap();
    let err = Pki::open(tmp.path()).unwrap_err();
    assert!(matches!(&err, PkiError::BadFile { path, .. } if path == &key_path), "{err}");
    assert!(err.to_string().contains(&key_path.display().to_string()), "{err}");
}

#[test]
fn open_with_a_corrupt_ca_certificate_names_it() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::init(tmp.path(), &opts()).unwrap();
    fs::write(pki.ca_path(), "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n").unwrap();
    let err = Pki::open(tmp.path()).unwrap_err();
    assert!(matches!(&err, PkiError::BadFile { path, .. } if path == &pki.ca_path()), "{err}");
}

#[test]
fn open_refuses_a_key_that_belongs_to_another_ca() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a");
    let b = tmp.path().join("b");
    Pki::init(&a, &opts()).unwrap();
    Pki::init(&b, &opts()).unwrap();
    fs::copy(b.join(CA_KEY_FILE), a.join(CA_KEY_FILE)).unwrap();
    let err = Pki::open(&a).unwrap_err();
    assert!(matches!(&err, PkiError::KeyMismatch { key, cert } if key == &a.join(CA_KEY_FILE) && cert == &a.join(CA_CERT_FILE)), "{err}");
}

#[test]
fn open_refuses_a_leaf_certificate_as_ca() {
    // An operator who copies server.pem over ca.pem gets told so instead of issuing junk.
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::init(tmp.path(), &opts()).unwrap();
    fs::copy(pki.server_cert_path(), pki.ca_path()).unwrap();
    let err = Pki::open(tmp.path()).unwrap_err();
    assert!(err.to_string().contains("not a CA certificate"), "{err}");
}

#[test]
fn debug_output_shows_no_key() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::init(tmp.path(), &opts()).unwrap();
    let key_pem = fs::read_to_string(tmp.path().join(CA_KEY_FILE)).unwrap();
    let key_body = key_pem.lines().nth(1).unwrap();
    let shown = format!("{pki:?}");
    assert!(shown.contains(&pki.ca_fingerprint()) && !shown.contains(key_body), "{shown}");
}
