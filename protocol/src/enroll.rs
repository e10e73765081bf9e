//! Enrollment and renewal: the messages on the `ampel-enroll/1` ALPN and the enrollment token.
//!
//! An enrolling agent has no certificate yet. It connects with ALPN [`ALPN_ENROLL`] and no
//! client certificate; the collector proves itself with a server certificate chaining to the CA
//! whose SHA-256 fingerprint the token carries, so the agent pins the CA before it sends the
//! token. The agent generates its key locally and sends only a CSR ([`EnrollRequest::Enroll`]).
//! Renewal uses the same ALPN with the current (verified) client certificate and needs no token
//! ([`EnrollRequest::Renew`]). One request and one response travel on one bidirectional stream,
//! each as one length-prefixed frame bounded by [`ENROLL_LIMITS`].
//!
//! # Token format
//!
//! `ampel1:<tenant>:<device>:<id>:<secret>:<ca-sha256>` — `id` is 16 lowercase hex digits (the
//! name of the collector's record), `secret` 64 (256 random bits; the collector keeps only its
//! SHA-256), `ca-sha256` the CA certificate's DER fingerprint, 64 hex digits. Tenant and device
//! travel in the clear so the agent knows what it asks for; the collector checks them against
//! the record, so an edited token is refused.

use serde::{Deserialize, Serialize};

use crate::codec::{self, CodecError, Limits};
use crate::identity::{DeviceId, TenantId};

/// ALPN protocol id of enrollment and renewal (server-authenticated; client certificate
/// optional).
pub const ALPN_ENROLL: &[u8] = b"ampel-enroll/1";

/// Bounds of enrollment messages: a CSR, a certificate and a CA are a few KiB; anything larger
/// is refused from the frame header, before it is read.
pub const ENROLL_LIMITS: Limits = Limits { max_frame: 16 << 10, max_records: 8, max_string: 8 << 10, max_depth: 4 };

/// What an agent asks for. `Debug` leaves the token's secret out.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EnrollRequest {
    /// First certificate, authorised by a one-time token.
    Enroll {
        /// The token's id.
        id: String,
        /// The token's secret. Never log it.
        secret: String,
        /// The tenant the token names.
        tenant: String,
        /// The device the token names.
        device: String,
        /// PKCS#10 CSR, DER, signed with the device's new key.
        #[serde(with = "serde_bytes_compat")]
        csr: Vec<u8>,
    },
    /// A fresh certificate for the identity of the client certificate on this connection.
    Renew {
        /// PKCS#10 CSR, DER.
        #[serde(with = "serde_bytes_compat")]
        csr: Vec<u8>,
    },
}

impl std::fmt::Debug for EnrollRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EnrollRequest::Enroll { id, tenant, device, csr, .. } => f
                .debug_struct("Enroll")
                .field("id", id)
                .field("secret", &"[elided]")
                .field("tenant", tenant)
                .field("device", device)
                .field("csr_len", &csr.len())
                .finish(),
            EnrollRequest::Renew { csr } => f.debug_struct("Renew").field("csr_len", &csr.len()).finish(),
        }
    }
}

/// What the collector answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EnrollResponse {
    /// The signed certificate.
    Issued {
        /// The device certificate, PEM.
        cert_pem: String,
        /// The CA certificates the agent should trust for the collector, PEM (more than one
        /// during a CA rollover).
        ca_pem: String,
        /// The certificate's notAfter, Unix seconds.
        not_after: i64,
        /// When another shard owns the device's tenant: that shard, as the redirect of a QUIC
        /// close ([`crate::shard::Redirect::encode`]'s text), so the agent's first data
        /// connection goes there. Absent in answers of older collectors, ignored by older agents.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        shard: Option<String>,
    },
    /// Refused, with a reason fit for the agent's log (never names which check failed in a way
    /// that helps guessing secrets).
    Refused(String),
}

/// Encodes a request or response (CBOR).
pub fn encode<T: Serialize>(msg: &T) -> Result<Vec<u8>, CodecError> {
    codec::encode(msg)
}

/// Decodes a request, bounded by [`ENROLL_LIMITS`].
pub fn decode_request(bytes: &[u8]) -> Result<EnrollRequest, CodecError> {
    codec::decode(bytes, &ENROLL_LIMITS)
}

/// Decodes a response, bounded by [`ENROLL_LIMITS`].
pub fn decode_response(bytes: &[u8]) -> Result<EnrollResponse, CodecError> {
    codec::decode(bytes, &ENROLL_LIMITS)
}

/// Prefix of every token of this format.
pub const TOKEN_PREFIX: &str = "ampel1";

/// A parsed enrollment token.
#[derive(Clone, PartialEq, Eq)]
pub struct Token {
    /// The tenant the device joins.
    pub tenant: TenantId,
    /// The device id it gets.
    pub device: DeviceId,
    /// The collector's record id, 16 hex digits.
    pub id: String,
    /// The secret, 64 hex digits.
    pub secret: String,
    /// SHA-256 of the CA certificate (DER), 64 lowercase hex digits.
    pub ca_sha256: String,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("tenant", &self.tenant)
            .field("device", &self.device)
            .field("id", &self.id)
            .field("secret", &"[elided]")
            .field("ca_sha256", &self.ca_sha256)
            .finish()
    }
}

/// Why a token string is not a token.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// Not `ampel1:` followed by six fields.
    #[error("not an Ampel enrollment token (expected ampel1:<tenant>:<device>:<id>:<secret>:<ca-sha256>)")]
    Format,
    /// A field is out of range.
    #[error("enrollment token: {0}")]
    Field(String),
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl Token {
    /// Parses the text form. Never echoes the secret in an error.
    pub fn parse(s: &str) -> Result<Token, TokenError> {
        let parts: Vec<&str> = s.trim().split(':').collect();
        let [prefix, tenant, device, id, secret, ca] = parts.as_slice() else { return Err(TokenError::Format) };
        if *prefix != TOKEN_PREFIX {
            return Err(TokenError::Format);
        }
        let tenant = TenantId::new(tenant).map_err(|e| TokenError::Field(e.to_string()))?;
        let device = DeviceId::new(device).map_err(|e| TokenError::Field(e.to_string()))?;
        if !is_hex(id, 16) {
            return Err(TokenError::Field("the id must be 16 lowercase hex digits".into()));
        }
        if !is_hex(secret, 64) {
            return Err(TokenError::Field("the secret must be 64 lowercase hex digits".into()));
        }
        if !is_hex(ca, 64) {
            return Err(TokenError::Field("the CA fingerprint must be 64 lowercase hex digits".into()));
        }
        Ok(Token { tenant, device, id: (*id).to_owned(), secret: (*secret).to_owned(), ca_sha256: (*ca).to_owned() })
    }

    /// The text form (contains the secret: hand it to the operator, never to a log).
    pub fn to_text(&self) -> String {
        format!("{TOKEN_PREFIX}:{}:{}:{}:{}:{}", self.tenant, self.device, self.id, self.secret, self.ca_sha256)
    }
}

/// When an agent should renew: two thirds into the certificate's lifetime, counted from
/// `issued_at` (notBefore plus the collector's backdating, [`BACKDATE_SECS`]).
pub fn renew_at(not_before: i64, not_after: i64) -> i64 {
    let issued = (not_before + BACKDATE_SECS).min(not_after);
    issued + (not_after - issued) * 2 / 3
}

/// How far the collector backdates notBefore, against clocks running behind.
pub const BACKDATE_SECS: i64 = 5 * 60;

/// notBefore and notAfter of a DER certificate, Unix seconds.
pub fn validity(der: &[u8]) -> Option<(i64, i64)> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    Some((cert.validity().not_before.timestamp(), cert.validity().not_after.timestamp()))
}

/// `serde_bytes`-like encoding of `Vec<u8>` as a CBOR byte string, without the extra crate.
mod serde_bytes_compat {
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                Ok(v.to_vec())
            }
            fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
                Ok(v)
            }
        }
        d.deserialize_bytes(V)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_naming_the_shard_round_trips_and_older_answers_still_decode() {
        let with = EnrollResponse::Issued {
            cert_pem: "c".into(),
            ca_pem: "a".into(),
            not_after: 7,
            shard: Some("shard eu-2 127.0.0.1:4433".into()),
        };
        assert_eq!(decode_response(&encode(&with).unwrap()).unwrap(), with);
        // An answer of a collector before shards: the same map without `shard`.
        #[derive(Serialize)]
        #[serde(rename_all = "snake_case")]
        enum Old {
            Issued { cert_pem: String, ca_pem: String, not_after: i64 },
        }
        let old = encode(&Old::Issued { cert_pem: "c".into(), ca_pem: "a".into(), not_after: 7 }).unwrap();
        let decoded = decode_response(&old).unwrap();
        assert_eq!(decoded, EnrollResponse::Issued { cert_pem: "c".into(), ca_pem: "a".into(), not_after: 7, shard: None });
        // Without a shard the answer is what older agents read: no new field on the wire.
        let without = EnrollResponse::Issued { cert_pem: "c".into(), ca_pem: "a".into(), not_after: 7, shard: None };
        assert_eq!(encode(&without).unwrap(), old);
    }

    fn token() -> String {
        format!("ampel1:acme:fw-1:{}:{}:{}", "0".repeat(16), "a".repeat(64), "b".repeat(64))
    }

    #[test]
    fn tokens_round_trip_and_bad_ones_are_refused_without_echoing_the_secret() {
        let t = Token::parse(&token()).unwrap();
        assert_eq!(t.to_text(), token());
        assert!(!format!("{t:?}").contains(&"a".repeat(64)));
        for bad in
            ["", "ampel1:acme", &token().replace("ampel1", "ampel2"), &token().replace(":fw-1:", ":fw/1:"), &token()[..token().len() - 1]]
        {
            let e = Token::parse(bad).unwrap_err().to_string();
            assert!(!e.contains(&"a".repeat(64)), "{e}");
        }
    }

    #[test]
    fn requests_round_trip_and_oversized_ones_are_refused() {
        let r = EnrollRequest::Renew { csr: vec![1, 2, 3] };
        assert_eq!(decode_request(&encode(&r).unwrap()).unwrap(), r);
        let big = EnrollRequest::Renew { csr: vec![0; 20 << 10] };
        assert!(decode_request(&encode(&big).unwrap()).is_err());
    }

    #[test]
    fn renewal_is_due_two_thirds_into_the_lifetime() {
        assert_eq!(renew_at(1000 - BACKDATE_SECS, 1300), 1200);
        assert_eq!(renew_at(0, 10), 10);
    }
}
