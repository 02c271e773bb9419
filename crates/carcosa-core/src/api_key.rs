//! API keys and their scopes.
//!
//! A key reads `ck_<key id>_<secret>`: the key id (16 lower-case letters and digits) names the
//! key in listings and logs; the secret (40 letters and digits, about 238 bits) is shown once, at
//! creation. The server stores only the SHA-256 of the secret and compares digests in constant
//! time. `Debug` never prints the secret.

use std::fmt;
use std::str::FromStr;

use rand::Rng;
use rand::distributions::Alphanumeric;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

const PREFIX: &str = "ck_";
const KEY_ID_LEN: usize = 16;
const SECRET_LEN: usize = 40;

/// What a key may do. Every API route names the scope it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Scope {
    /// Read tenants.
    #[serde(rename = "tenants:read")]
    TenantsRead,
    /// Create, update and delete tenants.
    #[serde(rename = "tenants:write")]
    TenantsWrite,
    /// Read the changes feed.
    #[serde(rename = "events:read")]
    EventsRead,
    /// Manage webhook endpoints.
    #[serde(rename = "webhooks:manage")]
    WebhooksManage,
    /// Manage API keys.
    #[serde(rename = "keys:manage")]
    KeysManage,
    /// Read the audit log.
    #[serde(rename = "audit:read")]
    AuditRead,
}

impl Scope {
    /// Every scope; a project's first key gets all of them.
    pub const ALL: [Self; 6] = [
        Self::TenantsRead,
        Self::TenantsWrite,
        Self::EventsRead,
        Self::WebhooksManage,
        Self::KeysManage,
        Self::AuditRead,
    ];

    /// The scope's name: `tenants:read`, …
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TenantsRead => "tenants:read",
            Self::TenantsWrite => "tenants:write",
            Self::EventsRead => "events:read",
            Self::WebhooksManage => "webhooks:manage",
            Self::KeysManage => "keys:manage",
            Self::AuditRead => "audit:read",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Text that names no scope.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is not a scope (expected one of: tenants:read, tenants:write, events:read, webhooks:manage, keys:manage, audit:read)"
)]
pub struct InvalidScope(pub String);

impl FromStr for Scope {
    type Err = InvalidScope;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|scope| scope.as_str() == s)
            .ok_or_else(|| InvalidScope(s.chars().take(40).collect()))
    }
}

/// Text that is not shaped like an API key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a Carcosa API key (expected ck_<key id>_<secret>)")]
pub struct MalformedKey;

/// A full API key: its public id and its secret.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey {
    key_id: String,
    secret: String,
}

impl ApiKey {
    /// A new random key.
    #[must_use]
    pub fn generate() -> Self {
        let mut rng = rand::thread_rng();
        let mut pick = |n: usize| -> String {
            (&mut rng)
                .sample_iter(Alphanumeric)
                .map(char::from)
                .filter(char::is_ascii_alphanumeric)
                .take(n)
                .collect()
        };
        let key_id = pick(KEY_ID_LEN).to_ascii_lowercase();
        let secret = pick(SECRET_LEN);
        Self { key_id, secret }
    }

    /// Splits `ck_<key id>_<secret>` into its parts. Only the shape is checked here; whether the
    /// key exists is the server's question.
    pub fn parse(value: &str) -> Result<Self, MalformedKey> {
        let rest = value.strip_prefix(PREFIX).ok_or(MalformedKey)?;
        let (key_id, secret) = rest.split_once('_').ok_or(MalformedKey)?;
        let id_ok = key_id.len() == KEY_ID_LEN
            && key_id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        let secret_ok = secret.len() == SECRET_LEN && secret.bytes().all(|b| b.is_ascii_alphanumeric());
        if !(id_ok && secret_ok) {
            return Err(MalformedKey);
        }
        Ok(Self { key_id: key_id.to_owned(), secret: secret.to_owned() })
    }

    /// The public part, safe to log and show.
    #[must_use]
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The SHA-256 of the secret, as the server stores it.
    #[must_use]
    pub fn secret_hash(&self) -> Vec<u8> {
        Sha256::digest(self.secret.as_bytes()).to_vec()
    }

    /// Whether this key's secret matches a stored digest, compared in constant time.
    #[must_use]
    pub fn matches(&self, stored_hash: &[u8]) -> bool {
        self.secret_hash().ct_eq(stored_hash).into()
    }

    /// The full key text, to hand to its owner once.
    #[must_use]
    pub fn expose(&self) -> String {
        format!("{PREFIX}{}_{}", self.key_id, self.secret)
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiKey({PREFIX}{}_…)", self.key_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_parse_back() {
        let key = ApiKey::generate();
        let text = key.expose();
        assert!(text.starts_with("ck_"));
        let parsed = ApiKey::parse(&text).unwrap();
        assert_eq!(parsed, key);
        assert!(parsed.matches(&key.secret_hash()));
    }

    #[test]
    fn a_different_secret_does_not_match() {
        let a = ApiKey::generate();
        let b = ApiKey::generate();
        assert!(!a.matches(&b.secret_hash()));
        assert!(!a.matches(&[]));
    }

    #[test]
    fn debug_output_hides_the_secret() {
        let key = ApiKey::generate();
        let debug = format!("{key:?}");
        assert!(debug.contains(key.key_id()));
        assert!(!debug.contains(&key.secret));
    }

    #[test]
    fn malformed_keys_are_rejected() {
        let good = ApiKey::generate().expose();
        let cases = [
            String::new(),
            "ck_".into(),
            good.replacen("ck_", "sk_", 1),
            good[..good.len() - 1].to_owned(),
            format!("{good}x"),
            good.replace('_', "-"),
            good.to_uppercase(),
        ];
        for bad in cases {
            assert!(ApiKey::parse(&bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn scopes_parse_by_name() {
        for scope in Scope::ALL {
            assert_eq!(scope.as_str().parse::<Scope>().unwrap(), scope);
        }
        assert!("tenants:admin".parse::<Scope>().is_err());
    }
}
