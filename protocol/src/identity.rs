//! Tenant and device ids, and the identity a verified certificate carries.
//!
//! A device certificate has CN = device id and O = tenant id. Ids become MQTT topic levels,
//! file names and LMDB keys, so they are restricted to a safe alphabet: ASCII letters, digits,
//! `.`, `_` and `-`, starting with a letter or digit, at most [`MAX_ID_LEN`] bytes. That rules
//! out `/`, `+`, `#`, whitespace and control characters everywhere an id travels.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Longest tenant or device id, in bytes.
pub const MAX_ID_LEN: usize = 64;

/// Why a string is not a valid id.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
pub enum IdError {
    /// Empty string.
    #[error("{what} id is empty")]
    Empty {
        /// "tenant" or "device".
        what: &'static str,
    },
    /// Longer than [`MAX_ID_LEN`].
    #[error("{what} id is {len} bytes long; at most {MAX_ID_LEN} are allowed")]
    TooLong {
        /// "tenant" or "device".
        what: &'static str,
        /// Its length.
        len: usize,
    },
    /// A character outside the alphabet.
    #[error("{what} id {id:?} contains {ch:?}; use letters, digits, '.', '_' and '-', starting with a letter or digit")]
    BadChar {
        /// "tenant" or "device".
        what: &'static str,
        /// The id, with control characters escaped by `{:?}`.
        id: String,
        /// The first offending character.
        ch: char,
    },
}

fn validate(what: &'static str, s: &str) -> Result<(), IdError> {
    if s.is_empty() {
        return Err(IdError::Empty { what });
    }
    if s.len() > MAX_ID_LEN {
        return Err(IdError::TooLong { what, len: s.len() });
    }
    for (i, ch) in s.chars().enumerate() {
        let ok = ch.is_ascii_alphanumeric() || (i > 0 && matches!(ch, '.' | '_' | '-'));
        if !ok {
            return Err(IdError::BadChar { what, id: s.to_owned(), ch });
        }
    }
    Ok(())
}

macro_rules! id_type {
    ($name:ident, $what:literal, $doc:literal) => {
        #[doc = $doc]
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Validates and wraps an id.
            pub fn new(s: &str) -> Result<Self, IdError> {
                validate($what, s)?;
                Ok(Self(s.to_owned()))
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, IdError> {
                validate($what, &s)?;
                Ok(Self(s))
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl std::str::FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::new(s)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

id_type!(TenantId, "tenant", "A tenant (customer) id: the O of its devices' certificates.");
id_type!(DeviceId, "device", "A globally unique device id: the CN of the device's certificate.");

/// Who is on the other end of an authenticated connection.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Identity {
    /// The tenant the device belongs to.
    pub tenant: TenantId,
    /// The device.
    pub device: DeviceId,
}

/// Why a certificate does not carry a usable identity.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// Not a parsable X.509 certificate.
    #[error("certificate cannot be parsed: {0}")]
    Parse(String),
    /// The subject lacks the attribute.
    #[error("certificate subject has no {0}")]
    Missing(&'static str),
    /// The attribute is not a valid id.
    #[error(transparent)]
    Id(#[from] IdError),
}

impl Identity {
    /// Reads CN (device) and O (tenant) from a DER certificate. The caller must already have
    /// verified the certificate; this only reads it.
    pub fn from_cert_der(der: &[u8]) -> Result<Identity, IdentityError> {
        let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|e| IdentityError::Parse(e.to_string()))?;
        let subject = cert.subject();
        let text = |attr: Option<&x509_parser::x509::AttributeTypeAndValue<'_>>, what| {
            attr.and_then(|a| a.as_str().ok()).map(str::to_owned).ok_or(IdentityError::Missing(what))
        };
        let cn = text(subject.iter_common_name().next(), "common name (CN)")?;
        let o = text(subject.iter_organization().next(), "organization (O)")?;
        Ok(Identity { tenant: TenantId::new(&o)?, device: DeviceId::new(&cn)? })
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.tenant, self.device)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn ids_reject_topic_wildcards_separators_space_and_control() {
        for bad in ["", "a/b", "a+b", "a#", "a b", "a\tb", "a\nb", "a\u{0}", "-lead", ".hidden", "ümlaut", &"x".repeat(65)] {
            assert!(DeviceId::new(bad).is_err(), "{bad:?} accepted");
            assert!(TenantId::new(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn ids_accept_the_usual_shapes() {
        for good in ["acme", "fw-01", "FW_01.berlin", "0", &"x".repeat(64)] {
            assert_eq!(DeviceId::new(good).unwrap().as_str(), good);
        }
    }

    #[test]
    fn serde_refuses_invalid_ids() {
        assert!(serde_json::from_str::<TenantId>("\"a/b\"").is_err());
        assert_eq!(serde_json::from_str::<TenantId>("\"acme\"").unwrap().as_str(), "acme");
    }

    #[test]
    fn garbage_is_not_a_certificate() {
        assert!(matches!(Identity::from_cert_der(b"not a cert"), Err(IdentityError::Parse(_))));
    }
}
