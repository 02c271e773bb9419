//! Server configuration: documented defaults, then a TOML file, then `CARCOSA_*` variables.
//!
//! | key | env | default |
//! |---|---|---|
//! | `listen` | `CARCOSA_LISTEN` | `127.0.0.1:8700` |
//! | `database_url` | `CARCOSA_DATABASE_URL` | `sqlite://carcosa.db` |
//! | `database_max_connections` | `CARCOSA_DATABASE_MAX_CONNECTIONS` | `10` |
//! | `event_retention_days` | `CARCOSA_EVENT_RETENTION_DAYS` | `30` |
//! | `idempotency_retention_hours` | `CARCOSA_IDEMPOTENCY_RETENTION_HOURS` | `24` |
//! | `prune_interval_secs` | `CARCOSA_PRUNE_INTERVAL_SECS` | `3600` |
//! | `max_body_bytes` | `CARCOSA_MAX_BODY_BYTES` | `65536` |
//! | `max_metadata_bytes` | `CARCOSA_MAX_METADATA_BYTES` | `16384` |
//! | `reserved_slugs` | `CARCOSA_RESERVED_SLUGS` (comma-separated) | `admin, api, app, www, …` |
//! | `log_format` | `CARCOSA_LOG_FORMAT` | `text` (or `json`) |
//!
//! The database URL may hold a password: it is wrapped in [`DatabaseUrl`], whose `Debug` and
//! [`Config::to_redacted_toml`] hide it.

use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use carcosa_core::slug::{DEFAULT_RESERVED, ReservedSlugs};
use carcosa_core::tenant::DEFAULT_MAX_METADATA_BYTES;
use serde::{Deserialize, Serialize};

/// Everything `carcosa serve` can be told.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// `sqlite://PATH` (the embedded default) or `postgres://…`.
    pub database_url: DatabaseUrl,
    /// Upper bound of pooled database connections.
    pub database_max_connections: u32,
    /// How long events stay in the changes feed.
    pub event_retention_days: u32,
    /// How long an `Idempotency-Key` is remembered.
    pub idempotency_retention_hours: u32,
    /// How often expired events and idempotency records are removed.
    pub prune_interval_secs: u64,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// Largest serialized tenant metadata.
    pub max_metadata_bytes: usize,
    /// Slugs nobody may take.
    pub reserved_slugs: Vec<String>,
    /// `text` for people, `json` for log collectors.
    pub log_format: LogFormat,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8700)),
            database_url: DatabaseUrl("sqlite://carcosa.db".into()),
            database_max_connections: 10,
            event_retention_days: 30,
            idempotency_retention_hours: 24,
            prune_interval_secs: 3600,
            max_body_bytes: 64 * 1024,
            max_metadata_bytes: DEFAULT_MAX_METADATA_BYTES,
            reserved_slugs: DEFAULT_RESERVED.iter().map(|s| (*s).to_owned()).collect(),
            log_format: LogFormat::Text,
        }
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// A configuration problem, with the source it came from.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML for this config.
    #[error("invalid config file {path}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// What the parser said.
        message: String,
    },
    /// An environment variable has a value of the wrong kind.
    #[error("invalid value for {var}: {message}")]
    Env {
        /// The variable.
        var: String,
        /// What is wrong.
        message: String,
    },
}

impl Config {
    /// Defaults, overlaid by the TOML file at `path` (if given), overlaid by `CARCOSA_*` entries
    /// of `env`.
    pub fn load(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut table = toml::Table::try_from(Self::default()).expect("the defaults serialize");
        if let Some(path) = path {
            let shown = path.display().to_string();
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: shown.clone(),
                source,
            })?;
            let file: toml::Table =
                text.parse()
                    .map_err(|e: toml::de::Error| ConfigError::Parse {
                        path: shown.clone(),
                        message: e.to_string(),
                    })?;
            table.extend(file);
            // Check the file on its own first, so its mistakes are reported against it.
            table
                .clone()
                .try_into::<Self>()
                .map_err(|e| ConfigError::Parse {
                    path: shown,
                    message: e.to_string(),
                })?;
        }
        for (var, value) in env {
            let Some(key) = var.strip_prefix("CARCOSA_").map(str::to_ascii_lowercase) else {
                continue;
            };
            let Some(current) = table.get(&key) else {
                continue;
            };
            let parsed = env_value(current, &value).map_err(|message| ConfigError::Env {
                var: var.clone(),
                message,
            })?;
            table.insert(key, parsed);
            table
                .clone()
                .try_into::<Self>()
                .map_err(|e| ConfigError::Env {
                    var: var.clone(),
                    message: e.message().to_owned(),
                })?;
        }
        table.try_into::<Self>().map_err(|e| ConfigError::Parse {
            path: "(merged)".into(),
            message: e.to_string(),
        })
    }

    /// The effective configuration as TOML, with the database password replaced by `***`.
    #[must_use]
    pub fn to_redacted_toml(&self) -> String {
        let mut shown = self.clone();
        shown.database_url = DatabaseUrl(shown.database_url.redacted());
        toml::to_string(&shown).expect("the config serializes")
    }

    /// The reserved slugs as a set.
    #[must_use]
    pub fn reserved(&self) -> ReservedSlugs {
        ReservedSlugs::new(&self.reserved_slugs)
    }

    /// How long events are kept.
    #[must_use]
    pub fn event_retention(&self) -> Duration {
        Duration::from_secs(u64::from(self.event_retention_days) * 86_400)
    }
}

/// Turns an environment variable's text into a TOML value of the same kind as the default.
fn env_value(current: &toml::Value, text: &str) -> Result<toml::Value, String> {
    let text = text.trim();
    match current {
        toml::Value::Integer(_) => text
            .parse::<i64>()
            .map(toml::Value::Integer)
            .map_err(|_| format!("expected a whole number, got {text:?}")),
        toml::Value::Boolean(_) => text
            .parse::<bool>()
            .map(toml::Value::Boolean)
            .map_err(|_| format!("expected true or false, got {text:?}")),
        toml::Value::Array(_) => Ok(toml::Value::Array(
            text.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| toml::Value::String(s.to_owned()))
                .collect(),
        )),
        _ => Ok(toml::Value::String(text.to_owned())),
    }
}

/// A database URL; may contain a password, so `Debug` hides it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DatabaseUrl(pub String);

impl DatabaseUrl {
    /// The URL to connect with.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The URL with any password replaced by `***`.
    #[must_use]
    pub fn redacted(&self) -> String {
        let url = &self.0;
        let Some(scheme_end) = url.find("://") else {
            return url.clone();
        };
        let rest = &url[scheme_end + 3..];
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let Some(at) = rest[..authority_end].rfind('@') else {
            return url.clone();
        };
        let userinfo = &rest[..at];
        match userinfo.split_once(':') {
            Some((user, _password)) => {
                format!("{}://{user}:***{}", &url[..scheme_end], &rest[at..])
            }
            None => url.clone(),
        }
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({:?})", self.redacted())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn defaults_apply_without_file_or_env() {
        let config = Config::load(None, env(&[])).unwrap();
        assert_eq!(config, Config::default());
        assert_eq!(config.listen.to_string(), "127.0.0.1:8700");
        assert_eq!(config.database_url.expose(), "sqlite://carcosa.db");
    }

    #[test]
    fn the_environment_overrides_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("carcosa.toml");
        std::fs::write(
            &path,
            "listen = \"0.0.0.0:9000\"\nevent_retention_days = 7\n",
        )
        .unwrap();
        let config = Config::load(
            Some(&path),
            env(&[
                ("CARCOSA_EVENT_RETENTION_DAYS", "3"),
                ("CARCOSA_RESERVED_SLUGS", "www, api"),
                ("CARCOSA_TEST_POSTGRES_URL", "ignored"),
                ("HOME", "/root"),
            ]),
        )
        .unwrap();
        assert_eq!(config.listen.to_string(), "0.0.0.0:9000");
        assert_eq!(config.event_retention_days, 3);
        assert_eq!(config.reserved_slugs, vec!["www", "api"]);
    }

    #[test]
    fn bad_values_name_their_source() {
        let err = Config::load(None, env(&[("CARCOSA_LISTEN", "nowhere")])).unwrap_err();
        assert!(err.to_string().contains("CARCOSA_LISTEN"), "{err}");
        let err = Config::load(None, env(&[("CARCOSA_EVENT_RETENTION_DAYS", "soon")])).unwrap_err();
        assert!(
            err.to_string().contains("CARCOSA_EVENT_RETENTION_DAYS"),
            "{err}"
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, "lisen = \"x\"\n").unwrap();
        let err = Config::load(Some(&path), env(&[])).unwrap_err();
        assert!(err.to_string().contains("bad.toml"), "{err}");
    }

    #[test]
    fn passwords_are_redacted() {
        let url = DatabaseUrl("postgres://carcosa:s3cret@db:5432/carcosa?sslmode=require".into());
        assert_eq!(
            url.redacted(),
            "postgres://carcosa:***@db:5432/carcosa?sslmode=require"
        );
        assert!(!format!("{url:?}").contains("s3cret"));
        let config = Config {
            database_url: url,
            ..Config::default()
        };
        assert!(!config.to_redacted_toml().contains("s3cret"));
        assert_eq!(
            DatabaseUrl("sqlite://carcosa.db".into()).redacted(),
            "sqlite://carcosa.db"
        );
        assert_eq!(
            DatabaseUrl("postgres://root@localhost/db".into()).redacted(),
            "postgres://root@localhost/db"
        );
    }
}
