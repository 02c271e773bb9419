//! The app's settings, read once at start from environment variables. Each is parsed here, so a
//! bad value stops the app with an error naming the variable, and nothing later re-checks it.
//!
//! | variable | default | what it is |
//! |---|---|---|
//! | `CARCOSA_API_URL` | `http://127.0.0.1:8700` | the Carcosa server |
//! | `CARCOSA_API_KEY` | required | the project's API key, `ck_…` |
//! | `CARCOSA_WEBHOOK_SECRET` | unset | the webhook endpoint's secret, `whsec_…`; without it no receiver is mounted and changes arrive through the background sync |
//! | `DATABASE_URL` | `sqlite://carcosa-example.db` | the app's own database (SQLite, PostgreSQL, MySQL/MariaDB) |
//! | `APP_LISTEN` | `127.0.0.1:3000` | where the app listens |
//! | `APP_BASE_DOMAIN` | `localhost` | tenants are its subdomains: `acme.localhost` |
//! | `APP_JWT_SECRET` | unset | an HS256 secret (32 bytes or more); with it, a bearer token's `tenant` claim names the tenant |
//!
//! An empty variable counts as unset. Secrets are wrapped so `Debug` never shows them.

use std::fmt;
use std::net::SocketAddr;

use carcosa::core::ApiKey;
use carcosa::core::webhook::WebhookSecret;
use carcosa::detect::{Host, normalize_host};

const DEFAULT_API_URL: &str = "http://127.0.0.1:8700";
const DEFAULT_DATABASE_URL: &str = "sqlite://carcosa-example.db";
const DEFAULT_LISTEN: &str = "127.0.0.1:3000";
const DEFAULT_BASE_DOMAIN: &str = "localhost";
/// RFC 7518 §3.2: an HS256 key must be at least as long as the hash, 256 bits.
const MIN_JWT_SECRET_BYTES: usize = 32;

/// Everything the app is configured with; see the module documentation for each variable.
#[derive(Clone)]
pub struct Settings {
    /// The Carcosa server's base URL (`CARCOSA_API_URL`).
    pub api_url: url::Url,
    /// The project's API key (`CARCOSA_API_KEY`).
    pub api_key: ApiKey,
    /// The webhook endpoint's signing secret (`CARCOSA_WEBHOOK_SECRET`), if webhooks are used.
    pub webhook_secret: Option<WebhookSecret>,
    /// The app's own database (`DATABASE_URL`); it may hold a password.
    pub database_url: Secret,
    /// Where the app listens (`APP_LISTEN`).
    pub listen: SocketAddr,
    /// The domain whose subdomains name tenants (`APP_BASE_DOMAIN`), normalized.
    pub base_domain: String,
    /// The HS256 secret bearer tokens are signed with (`APP_JWT_SECRET`), if tokens are used.
    pub jwt_secret: Option<Secret>,
}

/// A variable that is missing or cannot be used. The message names the variable and never
/// repeats a secret's value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    /// A required variable is not set.
    #[error("{0} is not set, and the app cannot run without it")]
    Missing(&'static str),
    /// A variable is set to something unusable.
    #[error("{name} is not valid: {reason}")]
    Invalid {
        /// The variable.
        name: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

impl Settings {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, SettingsError> {
        Self::from_vars(|name| std::env::var_os(name).map(|value| value.to_string_lossy().into_owned()))
    }

    /// Reads variables through `var` (tests pass a map instead of changing the environment).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self, SettingsError> {
        let get = |name: &str| var(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let or = |name: &str, default: &str| get(name).unwrap_or_else(|| default.to_owned());
        let invalid = |name: &'static str, reason: &dyn fmt::Display| SettingsError::Invalid {
            name,
            reason: reason.to_string(),
        };

        let api_url = parse_api_url(&or("CARCOSA_API_URL", DEFAULT_API_URL))
            .map_err(|reason| invalid("CARCOSA_API_URL", &reason))?;
        let api_key = get("CARCOSA_API_KEY").ok_or(SettingsError::Missing("CARCOSA_API_KEY"))?;
        let api_key = ApiKey::parse(&api_key).map_err(|err| invalid("CARCOSA_API_KEY", &err))?;
        let webhook_secret = get("CARCOSA_WEBHOOK_SECRET")
            .map(|text| WebhookSecret::parse(&text))
            .transpose()
            .map_err(|err| invalid("CARCOSA_WEBHOOK_SECRET", &err))?;
        let listen = or("APP_LISTEN", DEFAULT_LISTEN);
        let listen = listen.parse().map_err(|err| invalid("APP_LISTEN", &format!("`{listen}`: {err}")))?;
        let base_domain = parse_base_domain(&or("APP_BASE_DOMAIN", DEFAULT_BASE_DOMAIN))
            .map_err(|reason| invalid("APP_BASE_DOMAIN", &reason))?;
        let jwt_secret = match get("APP_JWT_SECRET") {
            Some(text) if text.len() < MIN_JWT_SECRET_BYTES => {
                let reason = format!("an HS256 secret needs at least {MIN_JWT_SECRET_BYTES} bytes");
                return Err(invalid("APP_JWT_SECRET", &reason));
            }
            text => text.map(Secret),
        };
        Ok(Self {
            api_url,
            api_key,
            webhook_secret,
            database_url: Secret(or("DATABASE_URL", DEFAULT_DATABASE_URL)),
            listen,
            base_domain,
            jwt_secret,
        })
    }
}

fn parse_api_url(text: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(text).map_err(|err| format!("`{text}`: {err}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("`{text}` is not an http:// or https:// URL"));
    }
    Ok(url)
}

fn parse_base_domain(text: &str) -> Result<String, String> {
    match normalize_host(text) {
        Some(Host::Name(name)) => Ok(name),
        Some(Host::Ip(_)) => Err(format!("`{text}` is an IP address; subdomains need a DNS name")),
        None => Err(format!("`{text}` is not a host name")),
    }
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("api_url", &self.api_url.as_str())
            .field("api_key", &self.api_key)
            .field("webhook_secret", &self.webhook_secret)
            .field("database_url", &self.database_url)
            .field("listen", &self.listen)
            .field("base_domain", &self.base_domain)
            .field("jwt_secret", &self.jwt_secret)
            .finish()
    }
}

/// Text that must not reach a log line: `Debug` shows `Secret(…)`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps `text`.
    #[must_use]
    pub fn new(text: impl Into<String>) -> Self {
        Self(text.into())
    }

    /// The text itself, for the one place that needs it.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(…)")
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    const KEY: &str = "ck_abcdefghijklmnop_0123456789012345678901234567890123456789";

    fn read(vars: &[(&str, &str)]) -> Result<Settings, SettingsError> {
        let vars: HashMap<String, String> =
            vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        Settings::from_vars(|name| vars.get(name).cloned())
    }

    #[test]
    fn only_the_api_key_is_required_and_the_rest_has_defaults() {
        assert_eq!(read(&[]).unwrap_err(), SettingsError::Missing("CARCOSA_API_KEY"));
        let settings = read(&[("CARCOSA_API_KEY", KEY)]).unwrap();
        assert_eq!(settings.api_url.as_str(), "http://127.0.0.1:8700/");
        assert_eq!(settings.database_url.expose(), "sqlite://carcosa-example.db");
        assert_eq!(settings.listen, "127.0.0.1:3000".parse().unwrap());
        assert_eq!(settings.base_domain, "localhost");
        assert!(settings.webhook_secret.is_none());
        assert!(settings.jwt_secret.is_none());
    }

    #[test]
    fn empty_variables_count_as_unset() {
        let settings = read(&[("CARCOSA_API_KEY", KEY), ("CARCOSA_WEBHOOK_SECRET", ""), ("APP_LISTEN", " ")]);
        assert!(settings.unwrap().webhook_secret.is_none());
        assert_eq!(read(&[("CARCOSA_API_KEY", "")]).unwrap_err(), SettingsError::Missing("CARCOSA_API_KEY"));
    }

    #[test]
    fn each_bad_value_is_reported_under_its_variable() {
        for (name, value) in [
            ("CARCOSA_API_URL", "not a url"),
            ("CARCOSA_API_URL", "ftp://carcosa.internal"),
            ("CARCOSA_API_KEY", "secret"),
            ("CARCOSA_WEBHOOK_SECRET", "whsec_tooshort"),
            ("APP_LISTEN", "localhost"),
            ("APP_BASE_DOMAIN", "127.0.0.1"),
            ("APP_BASE_DOMAIN", "not a domain"),
            ("APP_JWT_SECRET", "short"),
        ] {
            let mut vars = vec![("CARCOSA_API_KEY", KEY)];
            vars.push((name, value));
            match read(&vars) {
                Err(SettingsError::Invalid { name: reported, .. }) => assert_eq!(reported, name, "{value}"),
                other => panic!("{name}={value}: {other:?}"),
            }
        }
    }

    #[test]
    fn secrets_are_not_repeated() {
        let err = read(&[("CARCOSA_API_KEY", "ck_nope_hunter2")]).unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
        let jwt = "a shared secret of at least 32 bytes!!";
        let settings = read(&[("CARCOSA_API_KEY", KEY), ("APP_JWT_SECRET", jwt)]).unwrap();
        let shown = format!("{settings:?}");
        assert!(!shown.contains(jwt) && !shown.contains("0123456789"), "{shown}");
    }

    #[test]
    fn the_base_domain_is_normalized() {
        let settings = read(&[("CARCOSA_API_KEY", KEY), ("APP_BASE_DOMAIN", "App.Example.COM.")]).unwrap();
        assert_eq!(settings.base_domain, "app.example.com");
    }
}
