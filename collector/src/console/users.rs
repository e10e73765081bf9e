//! `[[users]]` of collector.toml: who may log in to the console, with which role, for which
//! tenants, and their argon2id password hash.

use std::collections::BTreeSet;
use std::fmt;

use ampel_protocol::TenantId;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2};
use serde::{Deserialize, Deserializer};

/// What a user may see and do (Kaspersky CyberTrace's three roles).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Everything, including the audit log, enrollment tokens and revocation.
    Administrator,
    /// Lights, findings and devices of their tenants, and their tenants' reports.
    TenantManager,
    /// Lights, findings and devices of their tenants; no reporting.
    Analyst,
}

impl Role {
    /// The name as written in the config.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Administrator => "administrator",
            Role::TenantManager => "tenant-manager",
            Role::Analyst => "analyst",
        }
    }

    /// Whether the role sees reports (the archive, downloads, resends).
    pub fn sees_reports(self) -> bool {
        self != Role::Analyst
    }
}

/// The tenants a user may see: `"*"` for all, or a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tenants {
    /// Every tenant, also those that appear later.
    All,
    /// Only these.
    Only(BTreeSet<String>),
}

impl Tenants {
    /// Whether `tenant` is one of them.
    pub fn allows(&self, tenant: &str) -> bool {
        match self {
            Tenants::All => true,
            Tenants::Only(set) => set.contains(tenant),
        }
    }
}

impl<'de> Deserialize<'de> for Tenants {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Star(String),
            List(Vec<String>),
        }
        let bad =
            |s: &str| serde::de::Error::custom(format!("{s:?} is not a tenant id; write tenants = [\"acme\", ...] or tenants = \"*\""));
        match Raw::deserialize(d)? {
            Raw::Star(s) if s == "*" => Ok(Tenants::All),
            Raw::Star(s) => Err(bad(&s)),
            Raw::List(list) => {
                let mut set = BTreeSet::new();
                for t in list {
                    t.parse::<TenantId>().map_err(|_| bad(&t))?;
                    set.insert(t);
                }
                Ok(Tenants::Only(set))
            }
        }
    }
}

/// An argon2id hash in PHC string form (`$argon2id$v=19$m=...,t=...,p=...$salt$hash`), checked
/// when the config is read so that a typo is a config error, not a refused login.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHashString(String);

// The hash is not a password, but it is what an offline attack starts from: keep it out of
// logs and debug output.
impl fmt::Debug for PasswordHashString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordHashString(..)")
    }
}

impl PasswordHashString {
    /// Parses and checks a PHC string: it must be argon2id.
    pub fn parse(s: &str) -> Result<PasswordHashString, String> {
        let hash = PasswordHash::new(s)
            .map_err(|e| format!("not an argon2id PHC string ({e}); make one with `ampel-collector user passwd NAME`"))?;
        if hash.algorithm != Algorithm::Argon2id.ident() {
            return Err(format!("the hash is {}, not argon2id; make one with `ampel-collector user passwd NAME`", hash.algorithm));
        }
        Ok(PasswordHashString(s.to_owned()))
    }

    /// Whether `password` matches, in time independent of where it differs.
    pub fn verify(&self, password: &str) -> bool {
        // Parsed when the config was read; parsing again cannot fail, but if it did, no match.
        PasswordHash::new(&self.0).is_ok_and(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
    }

    /// The PHC string, to be written into the config.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for PasswordHashString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        PasswordHashString::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// Why a password could not be hashed.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// The password is too short to be worth protecting.
    #[error("the password must have at least {MIN_PASSWORD_CHARS} characters")]
    TooShort,
    /// argon2 refused (out of memory, bad parameters).
    #[error("hashing the password: {0}")]
    Argon2(argon2::password_hash::Error),
}

/// Shortest password `user passwd` accepts.
pub const MIN_PASSWORD_CHARS: usize = 12;

/// Hashes `password` with argon2id and the RFC 9106 / OWASP default parameters (19 MiB, two
/// passes) and a random 16-byte salt.
pub fn hash_password(password: &str) -> Result<PasswordHashString, HashError> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(HashError::TooShort);
    }
    let salt_bytes: [u8; 16] = rand::random();
    let salt = SaltString::encode_b64(&salt_bytes).map_err(HashError::Argon2)?;
    let hash = Argon2::default().hash_password(password.as_bytes(), &salt).map_err(HashError::Argon2)?;
    Ok(PasswordHashString(hash.to_string()))
}

/// The name of the header a reverse proxy sets to the authenticated user (`[http]
/// trust-proxy-header`): a valid HTTP header name, and none the browser or the console itself
/// sets (a proxy that passed a client's `Cookie` through would otherwise log anyone in).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyHeader(pub axum::http::HeaderName);

impl<'de> Deserialize<'de> for ProxyHeader {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let name = axum::http::HeaderName::from_bytes(s.as_bytes())
            .map_err(|_| serde::de::Error::custom(format!("{s:?} is not an HTTP header name such as \"X-Remote-User\"")))?;
        let reserved = ["cookie", "host", "authorization", "content-type", "content-length", "origin", "referer", "user-agent"];
        if reserved.contains(&name.as_str()) {
            return Err(serde::de::Error::custom(format!(
                "{s:?} is a header browsers send; name the one your proxy sets, e.g. \"X-Remote-User\""
            )));
        }
        Ok(ProxyHeader(name))
    }
}

/// A user name: 1 to 64 characters of ASCII letters, digits, `.`, `_`, `-` and `@` (an e-mail
/// address works); nothing that needs escaping in a log line or a URL.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UserName(String);

impl UserName {
    /// Checks a name.
    pub fn parse(s: &str) -> Result<UserName, String> {
        let ok = !s.is_empty() && s.len() <= 64 && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
        if !ok {
            return Err(format!("{s:?} is not a user name: 1 to 64 of letters, digits, '.', '_', '-', '@'"));
        }
        Ok(UserName(s.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for UserName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        UserName::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for UserName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One `[[users]]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct UserConfig {
    /// Login name.
    pub name: UserName,
    /// What the user may do.
    pub role: Role,
    /// Which tenants the user sees. Administrators see all, whatever is written here.
    pub tenants: Tenants,
    /// argon2id hash of the password, written by `ampel-collector user passwd NAME`.
    pub password_hash: PasswordHashString,
    /// The language of the user's console pages (`"en"` or `"de"`); unset, the browser's
    /// `Accept-Language` decides.
    #[serde(default)]
    pub language: Option<crate::report::Lang>,
}

impl UserConfig {
    /// Whether the user may see `tenant`.
    pub fn sees(&self, tenant: &str) -> bool {
        self.role == Role::Administrator || self.tenants.allows(tenant)
    }
}

/// Checks across `[[users]]`: names are unique.
pub fn validate(users: &[UserConfig]) -> Result<(), String> {
    let mut seen = BTreeSet::new();
    for u in users {
        if !seen.insert(u.name.as_str()) {
            return Err(format!("[[users]] name {:?} appears twice; each user needs one entry", u.name.as_str()));
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Doc {
        users: Vec<UserConfig>,
    }

    fn parse(src: &str) -> Result<Vec<UserConfig>, toml::de::Error> {
        toml::from_str::<Doc>(src).map(|d| d.users)
    }

    #[test]
    fn a_hash_verifies_its_password_only() {
        let h = hash_password("correct horse battery").unwrap();
        assert!(h.as_str().starts_with("$argon2id$v=19$"));
        assert!(h.verify("correct horse battery"));
        assert!(!h.verify("correct horse batterY"));
        assert!(matches!(hash_password("short"), Err(HashError::TooShort)));
    }

    #[test]
    fn users_parse_with_roles_tenants_and_checked_hashes() {
        let h = hash_password("correct horse battery").unwrap();
        let src = format!(
            "[[users]]\nname = \"ann\"\nrole = \"tenant-manager\"\ntenants = [\"acme\"]\npassword-hash = \"{0}\"\n\
             [[users]]\nname = \"root@example.org\"\nrole = \"administrator\"\ntenants = \"*\"\npassword-hash = \"{0}\"\n",
            h.as_str()
        );
        let users = parse(&src).unwrap();
        assert_eq!(users[0].role, Role::TenantManager);
        assert!(users[0].sees("acme") && !users[0].sees("globex"));
        assert!(users[1].sees("globex"));
        validate(&users).unwrap();
        let twice = [users[0].clone(), users[0].clone()];
        assert!(validate(&twice).unwrap_err().contains("twice"));
    }

    #[test]
    fn a_user_may_set_the_console_language_and_only_one_it_speaks() {
        let h = hash_password("correct horse battery").unwrap();
        let user = |language: &str| {
            parse(&format!(
                "[[users]]\nname = \"ann\"\nrole = \"analyst\"\ntenants = [\"acme\"]\npassword-hash = \"{}\"\n{language}",
                h.as_str()
            ))
        };
        assert_eq!(user("").unwrap()[0].language, None, "a config of the previous release still loads");
        assert_eq!(user("language = \"de\"\n").unwrap()[0].language, Some(crate::report::Lang::De));
        assert!(user("language = \"fr\"\n").is_err());
    }

    #[test]
    fn proxy_headers_are_header_names_browsers_do_not_send() {
        let header = |s: &str| toml::from_str::<toml::Table>(&format!("h = {s:?}")).unwrap()["h"].clone().try_into::<ProxyHeader>();
        assert_eq!(header("X-Remote-User").unwrap().0.as_str(), "x-remote-user");
        assert!(header("Cookie").is_err());
        assert!(header("bad header").is_err());
    }

    #[test]
    fn bad_users_are_refused_when_read() {
        let h = hash_password("correct horse battery").unwrap();
        let user = |name: &str, role: &str, tenants: &str, hash: &str| {
            parse(&format!("[[users]]\nname = \"{name}\"\nrole = \"{role}\"\ntenants = {tenants}\npassword-hash = \"{hash}\"\n"))
        };
        assert!(user("ann", "analyst", "[\"acme\"]", h.as_str()).is_ok());
        assert!(user("ann", "root", "[\"acme\"]", h.as_str()).is_err());
        assert!(user("ann", "analyst", "\"all\"", h.as_str()).is_err());
        assert!(user("ann", "analyst", "[\"bad tenant\"]", h.as_str()).is_err());
        assert!(user("a n", "analyst", "[\"acme\"]", h.as_str()).is_err());
        assert!(user("ann", "analyst", "[\"acme\"]", "plaintext").is_err());
        let argon2i = h.as_str().replacen("argon2id", "argon2i", 1);
        assert!(user("ann", "analyst", "[\"acme\"]", &argon2i).unwrap_err().to_string().contains("not argon2id"));
    }
}
