//! A freshly issued device certificate and the files an operator copies to the device.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use ampel_protocol::{DeviceId, TenantId};

use super::PkiError;
use super::files::{self, KEY_MODE, PUBLIC_MODE};

/// The name of the CA certificate written beside a device's certificate and key.
const CA_FILE: &str = "ca.pem";

/// A device certificate with its private key, as returned by [`super::Pki::issue_device`].
///
/// The key exists only here and in the files [`IssuedDevice::write_to`] writes: the CA keeps no
/// copy. `Debug` leaves the key out, so the value can be logged safely.
#[derive(Clone)]
pub struct IssuedDevice {
    /// The tenant the device belongs to (the certificate's O).
    pub tenant: TenantId,
    /// The device (the certificate's CN).
    pub device: DeviceId,
    /// The device certificate, PEM.
    pub cert_pem: String,
    /// The device's private key, PKCS#8 PEM. Secret: never log it.
    pub key_pem: String,
    /// The CA certificate the device uses to verify the collector, PEM.
    pub ca_pem: String,
    /// The certificate's serial number, lowercase hex without separators. Revocation names
    /// certificates by it.
    pub serial_hex: String,
    /// When the certificate expires, in seconds since the Unix epoch.
    pub not_after_unix: i64,
}

impl fmt::Debug for IssuedDevice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedDevice")
            .field("tenant", &self.tenant)
            .field("device", &self.device)
            .field("serial_hex", &self.serial_hex)
            .field("not_after_unix", &self.not_after_unix)
            .field("key_pem", &"[secret key elided]")
            .finish_non_exhaustive()
    }
}

/// Where [`IssuedDevice::write_to`] put a device's files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceFiles {
    /// `<device>.pem`: the device certificate.
    pub cert: PathBuf,
    /// `<device>.key`: the device's private key, mode 0600.
    pub key: PathBuf,
    /// `ca.pem`: the CA certificate.
    pub ca: PathBuf,
}

/// Refuses a device id whose `<device>.pem` would be the CA file written beside it.
pub(crate) fn check_device_file_name(device: &DeviceId) -> Result<(), PkiError> {
    if format!("{device}.pem") == CA_FILE {
        return Err(PkiError::ReservedDeviceId { device: device.to_string() });
    }
    Ok(())
}

impl IssuedDevice {
    /// Writes `<device>.pem`, `<device>.key` (mode 0600) and `ca.pem` into `out_dir`, creating
    /// it with mode 0700 if needed, for the operator to copy to the device.
    ///
    /// Never overwrites a file: if the certificate or key file exists, nothing is written. An
    /// existing `ca.pem` is accepted only if it is this CA's certificate, byte for byte, so
    /// several devices can be issued into one directory. Device ids are restricted to letters,
    /// digits, `.`, `_` and `-`, so the file names cannot leave `out_dir`.
    pub fn write_to(&self, out_dir: &Path) -> Result<DeviceFiles, PkiError> {
        check_device_file_name(&self.device)?;
        let out = DeviceFiles {
            cert: out_dir.join(format!("{}.pem", self.device)),
            key: out_dir.join(format!("{}.key", self.device)),
            ca: out_dir.join(CA_FILE),
        };
        files::create_private_dir(out_dir)?;

        // Check everything first, so a refusal leaves the directory exactly as it was.
        for path in [&out.cert, &out.key] {
            if fs::symlink_metadata(path).is_ok() {
                return Err(PkiError::FileExists { path: path.clone() });
            }
        }
        let write_ca = match fs::read(&out.ca) {
            Ok(existing) if existing == self.ca_pem.as_bytes() => false,
            Ok(_) => {
                return Err(PkiError::FileExists { path: out.ca.clone() });
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
            Err(e) => return Err(PkiError::io("read", &out.ca)(e)),
        };

        let mut plan = vec![(&out.key, self.key_pem.as_bytes(), KEY_MODE), (&out.cert, self.cert_pem.as_bytes(), PUBLIC_MODE)];
        if write_ca {
            plan.push((&out.ca, self.ca_pem.as_bytes(), PUBLIC_MODE));
        }
        let mut written: Vec<&PathBuf> = Vec::new();
        for (path, bytes, mode) in plan {
            if let Err(e) = files::write_new(path, bytes, mode) {
                // A half-written set (a key without its certificate) would only confuse: undo.
                for done in written {
                    let _ = fs::remove_file(done);
                }
                return Err(e);
            }
            written.push(path);
        }
        tracing::info!(device = %self.device, tenant = %self.tenant, dir = %out_dir.display(), "device files written");
        Ok(out)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn issued(device: &str, ca: &str) -> IssuedDevice {
        IssuedDevice {
            tenant: TenantId::new("acme").unwrap(),
            device: DeviceId::new(device).unwrap(),
            cert_pem: format!("cert of {device}\n"),
            key_pem: format!("SECRET key of {device}\n"),
            ca_pem: ca.to_owned(),
            serial_hex: "01".into(),
            not_after_unix: 0,
        }
    }

    #[test]
    fn writes_three_files_with_a_private_key_and_a_private_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let out_dir = tmp.path().join("out");
        let files = issued("fw-01", "the ca\n").write_to(&out_dir).unwrap();
        assert_eq!(files.cert, out_dir.join("fw-01.pem"));
        assert_eq!(files.key, out_dir.join("fw-01.key"));
        assert_eq!(files.ca, out_dir.join("ca.pem"));
        assert_eq!(fs::read_to_string(&files.key).unwrap(), "SECRET key of fw-01\n");
        assert_eq!(fs::read_to_string(&files.ca).unwrap(), "the ca\n");
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&files.key), 0o600);
        assert_eq!(mode(&out_dir), 0o700);
    }

    #[test]
    fn refuses_to_overwrite_and_leaves_the_existing_files_alone() {
        let tmp = tempfile::tempdir().unwrap();
        let first = issued("fw-01", "the ca\n");
        let files = first.write_to(tmp.path()).unwrap();
        let mut again = issued("fw-01", "the ca\n");
        again.key_pem = "SECRET other key\n".into();
        let err = again.write_to(tmp.path()).unwrap_err();
        assert!(matches!(&err, PkiError::FileExists { path } if path == &files.cert), "{err}");
        assert!(err.to_string().contains("fw-01.pem"), "{err}");
        assert_eq!(fs::read_to_string(&files.key).unwrap(), "SECRET key of fw-01\n");
    }

    #[test]
    fn several_devices_share_one_ca_file_but_not_a_foreign_one() {
        let tmp = tempfile::tempdir().unwrap();
        issued("fw-01", "the ca\n").write_to(tmp.path()).unwrap();
        issued("fw-02", "the ca\n").write_to(tmp.path()).unwrap();
        let err = issued("fw-03", "another ca\n").write_to(tmp.path()).unwrap_err();
        assert!(matches!(&err, PkiError::FileExists { path } if path.ends_with("ca.pem")), "{err}");
        // Refused before anything was written.
        assert!(!tmp.path().join("fw-03.key").exists());
        assert_eq!(fs::read_to_string(tmp.path().join("ca.pem")).unwrap(), "the ca\n");
    }

    #[test]
    fn a_device_called_ca_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let err = issued("ca", "the ca\n").write_to(tmp.path()).unwrap_err();
        assert!(matches!(err, PkiError::ReservedDeviceId { .. }), "{err}");
        assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 0);
    }

    #[test]
    fn debug_output_does_not_show_the_key() {
        let shown = format!("{:?}", issued("fw-01", "the ca\n"));
        assert!(shown.contains("fw-01") && !shown.contains("SECRET"), "{shown}");
    }
}
