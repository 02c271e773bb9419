//! Server configuration: documented defaults, then a TOML file, then `CARCOSA_*` variables.
//!
//! | key | env | default |
//! |---|---|---|
//! | `listen` | `CARCOSA_LISTEN` | `127.0.0.1:8700` |
//! | `database_url` | `CARCOSA_DATABASE_URL` | `sqlite://carcosa.db` |
//! | `database_max_connections` | `CARCOSA_DATABASE_MAX_CONNECTIONS` | `10` |
//! | `event_retention_days` | `CARCOSA_EVENT_RETENTION_DAYS` | `30` |
//! | `idempotency_retention_hours` | `CARCOSA_IDEMPOTENCY_RETENTION_HOURS` | `24` |
//! | `audit_retention_days` | `CARCOSA_AUDIT_RETENTION_DAYS` | `365` (`0` keeps entries forever) |
//! | `prune_interval_secs` | `CARCOSA_PRUNE_INTERVAL_SECS` | `3600` |
//! | `max_body_bytes` | `CARCOSA_MAX_BODY_BYTES` | `65536` |
//! | `max_metadata_bytes` | `CARCOSA_MAX_METADATA_BYTES` | `16384` |
//! | `reserved_slugs` | `CARCOSA_RESERVED_SLUGS` (comma-separated) | `admin, api, app, www, …` |
//! | `log_format` | `CARCOSA_LOG_FORMAT` | `text` (or `json`) |
//! | `metrics_token` | `CARCOSA_METRICS_TOKEN` | unset: `/metrics` is open; set: scrapes send `Authorization: Bearer <token>` |
//! | `master_key` | `CARCOSA_MASTER_KEY` | unset (base64 of 32 bytes) |
//! | `master_key_file` | `CARCOSA_MASTER_KEY_FILE` | unset (`carcosa.key` beside a SQLite database) |
//! | `webhook_timeout_secs` | `CARCOSA_WEBHOOK_TIMEOUT_SECS` | `15` |
//! | `webhook_retry_schedule` | `CARCOSA_WEBHOOK_RETRY_SCHEDULE` | `0s,5s,5m,30m,2h,5h,10h,10h` |
//! | `webhook_max_in_flight` | `CARCOSA_WEBHOOK_MAX_IN_FLIGHT` | `64` |
//! | `webhook_max_in_flight_per_endpoint` | `CARCOSA_WEBHOOK_MAX_IN_FLIGHT_PER_ENDPOINT` | `8` |
//! | `webhook_disable_after_hours` | `CARCOSA_WEBHOOK_DISABLE_AFTER_HOURS` | `120` (5 days failing) |
//! | `webhook_secret_grace_hours` | `CARCOSA_WEBHOOK_SECRET_GRACE_HOURS` | `24` |
//! | `webhook_allow_private` | `CARCOSA_WEBHOOK_ALLOW_PRIVATE` | `false` |
//! | `webhook_allow_cidrs` | `CARCOSA_WEBHOOK_ALLOW_CIDRS` (comma-separated) | none |
//! | `webhook_poll_interval_ms` | `CARCOSA_WEBHOOK_POLL_INTERVAL_MS` | `1000` |
//! | `public_url` | `CARCOSA_PUBLIC_URL` | unset; when `https://…`, dashboard cookies are `Secure` |
//! | `session_idle_hours` | `CARCOSA_SESSION_IDLE_HOURS` | `12` (a dashboard session unused this long ends) |
//! | `session_absolute_hours` | `CARCOSA_SESSION_ABSOLUTE_HOURS` | `168` (7 days after login, a session ends) |
//! | `login_max_failures` | `CARCOSA_LOGIN_MAX_FAILURES` | `5` (per account and per address, in the window) |
//! | `login_failure_window_mins` | `CARCOSA_LOGIN_FAILURE_WINDOW_MINS` | `15` |
//! | `rate_limit_per_second` | `CARCOSA_RATE_LIMIT_PER_SECOND` | `100` per API key (`0`: no default limit) |
//! | `rate_limit_burst` | `CARCOSA_RATE_LIMIT_BURST` | `200` (requests a key may send at once) |
//! | `rate_limit_redis_url` | `CARCOSA_RATE_LIMIT_REDIS_URL` | unset: limits are per replica; `redis://…` shares them |
//! | `rate_limit_redis_prefix` | `CARCOSA_RATE_LIMIT_REDIS_PREFIX` | `carcosa:ratelimit:` |
//! | `login_rate_limit_per_minute` | `CARCOSA_LOGIN_RATE_LIMIT_PER_MINUTE` | `10` login attempts per address (`0`: none) |
//! | `login_rate_limit_burst` | `CARCOSA_LOGIN_RATE_LIMIT_BURST` | `5` |
//!
//! Not configuration, read once by `carcosa serve` when no operator exists yet:
//! `CARCOSA_ADMIN_EMAIL` (default `admin@localhost`) and `CARCOSA_ADMIN_PASSWORD` (generated and
//! printed once on stderr when unset); see `docs/dashboard.md`.
//!
//! A key created with its own rate limit (`carcosa key create --rate-limit N`) uses that instead
//! of `rate_limit_per_second`; see `docs/api.md`, "Rate limits".
//!
//! The database and Redis URLs may hold a password and the master key is a secret:
//! [`DatabaseUrl`] and [`SecretString`] hide them from `Debug`, and [`Config::to_redacted_toml`]
//! prints none of them.

use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use carcosa_core::slug::{DEFAULT_RESERVED, ReservedSlugs};
use carcosa_core::tenant::DEFAULT_MAX_METADATA_BYTES;
use serde::{Deserialize, Serialize};

/// Settings without a default value; their kind (text) cannot be learnt from one.
const OPTIONAL_KEYS: [&str; 4] = ["master_key", "master_key_file", "metrics_token", "rate_limit_redis_url"];

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
    /// How long audit entries are kept; `0` keeps them forever.
    pub audit_retention_days: u32,
    /// How often expired events, idempotency records, deliveries and audit entries are removed.
    pub prune_interval_secs: u64,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// Largest serialized tenant metadata.
    pub max_metadata_bytes: usize,
    /// Slugs nobody may take.
    pub reserved_slugs: Vec<String>,
    /// `text` for people, `json` for log collectors.
    pub log_format: LogFormat,
    /// When set, `/metrics` answers only scrapes that send `Authorization: Bearer <token>`.
    pub metrics_token: Option<SecretString>,
    /// The key that encrypts secrets at rest: base64 of 32 bytes.
    pub master_key: Option<SecretString>,
    /// A file holding the master key (base64); generated when missing.
    pub master_key_file: Option<std::path::PathBuf>,
    /// How long one webhook attempt may take.
    pub webhook_timeout_secs: u64,
    /// Delays before each attempt (`0s` = at once), comma-separated: `s`, `m`, `h`, `ms`.
    pub webhook_retry_schedule: String,
    /// Deliveries in flight at once, over all endpoints.
    pub webhook_max_in_flight: u32,
    /// Deliveries in flight at once to one endpoint.
    pub webhook_max_in_flight_per_endpoint: u32,
    /// An endpoint failing continuously this long is disabled.
    pub webhook_disable_after_hours: u32,
    /// How long the previous secret keeps signing after a rotation.
    pub webhook_secret_grace_hours: u32,
    /// Allow endpoints on loopback and private addresses (local development, tests).
    pub webhook_allow_private: bool,
    /// Networks allowed even though private (e.g. `10.1.0.0/16`).
    pub webhook_allow_cidrs: Vec<String>,
    /// How often the dispatcher looks for due deliveries when nothing wakes it.
    pub webhook_poll_interval_ms: u64,
    /// The URL people reach Carcosa at, if it differs from the listen address (behind a proxy);
    /// empty when unset. `https://…` makes dashboard cookies `Secure`.
    pub public_url: String,
    /// A dashboard session unused this long ends.
    pub session_idle_hours: u32,
    /// A dashboard session ends this long after login, however much it is used.
    pub session_absolute_hours: u32,
    /// Failed logins per account, and per address, allowed within the window before more are
    /// refused with 429.
    pub login_max_failures: u32,
    /// The window failed logins are counted in.
    pub login_failure_window_mins: u32,
    /// Requests per second an API key may make, sustained (a token bucket); `0` turns the
    /// default limit off. A key's own limit replaces it.
    pub rate_limit_per_second: u32,
    /// Requests an API key may make at once (the bucket's size).
    pub rate_limit_burst: u32,
    /// A Redis (`redis://[:password@]host[:port][/db]`) that keeps the buckets, shared by every
    /// replica. Unset: each replica limits on its own.
    pub rate_limit_redis_url: Option<DatabaseUrl>,
    /// The prefix of the buckets' names in Redis.
    pub rate_limit_redis_prefix: String,
    /// Login attempts per minute from one address, sustained; `0` turns the limit off.
    pub login_rate_limit_per_minute: u32,
    /// Login attempts one address may make at once.
    pub login_rate_limit_burst: u32,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8700)),
            database_url: DatabaseUrl("sqlite://carcosa.db".into()),
            database_max_connections: 10,
            event_retention_days: 30,
            idempotency_retention_hours: 24,
            audit_retention_days: 365,
            prune_interval_secs: 3600,
            max_body_bytes: 64 * 1024,
            max_metadata_bytes: DEFAULT_MAX_METADATA_BYTES,
            reserved_slugs: DEFAULT_RESERVED.iter().map(|s| (*s).to_owned()).collect(),
            log_format: LogFormat::Text,
            metrics_token: None,
            master_key: None,
            master_key_file: None,
            webhook_timeout_secs: 15,
            webhook_retry_schedule: "0s,5s,5m,30m,2h,5h,10h,10h".into(),
            webhook_max_in_flight: 64,
            webhook_max_in_flight_per_endpoint: 8,
            webhook_disable_after_hours: 120,
            webhook_secret_grace_hours: 24,
            webhook_allow_private: false,
            webhook_allow_cidrs: Vec::new(),
            webhook_poll_interval_ms: 1000,
            public_url: String::new(),
            session_idle_hours: 12,
            session_absolute_hours: 168,
            login_max_failures: 5,
            login_failure_window_mins: 15,
            rate_limit_per_second: 100,
            rate_limit_burst: 200,
            rate_limit_redis_url: None,
            rate_limit_redis_prefix: "carcosa:ratelimit:".into(),
            login_rate_limit_per_minute: 10,
            login_rate_limit_burst: 5,
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
        // Optional keys have no default value to learn their kind from: they are text.
        for key in OPTIONAL_KEYS {
            table.entry(key).or_insert_with(|| toml::Value::String(String::new()));
        }
        if let Some(path) = path {
            let shown = path.display().to_string();
            let text = std::fs::read_to_string(path)
                .map_err(|source| ConfigError::Read { path: shown.clone(), source })?;
            let file: toml::Table = text.parse().map_err(|e: toml::de::Error| ConfigError::Parse {
                path: shown.clone(),
                message: e.to_string(),
            })?;
            table.extend(file);
            // Check the file on its own first, so its mistakes are reported against it.
            table
                .clone()
                .try_into::<Self>()
                .map_err(|e| ConfigError::Parse { path: shown, message: e.to_string() })?;
        }
        for (var, value) in env {
            let Some(key) = var.strip_prefix("CARCOSA_").map(str::to_ascii_lowercase) else {
                continue;
            };
            let Some(current) = table.get(&key) else {
                continue;
            };
            let parsed = env_value(current, &value)
                .map_err(|message| ConfigError::Env { var: var.clone(), message })?;
            table.insert(key, parsed);
            table
                .clone()
                .try_into::<Self>()
                .map_err(|e| ConfigError::Env { var: var.clone(), message: e.message().to_owned() })?;
        }
        for key in OPTIONAL_KEYS {
            if table.get(key).and_then(toml::Value::as_str) == Some("") {
                table.remove(key);
            }
        }
        let config = table
            .try_into::<Self>()
            .map_err(|e| ConfigError::Parse { path: "(merged)".into(), message: e.to_string() })?;
        config
            .retry_schedule()
            .map_err(|message| ConfigError::Env { var: "webhook_retry_schedule".into(), message })?;
        config
            .allowed_networks()
            .map_err(|message| ConfigError::Env { var: "webhook_allow_cidrs".into(), message })?;
        Ok(config)
    }

    /// The parsed retry schedule: the delay before each attempt.
    pub fn retry_schedule(&self) -> Result<Vec<Duration>, String> {
        let schedule = self
            .webhook_retry_schedule
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(parse_duration)
            .collect::<Result<Vec<_>, _>>()?;
        if schedule.is_empty() {
            return Err("the retry schedule needs at least one entry (e.g. 0s)".into());
        }
        Ok(schedule)
    }

    /// The parsed CIDR allow-list.
    pub fn allowed_networks(&self) -> Result<Vec<ipnet::IpNet>, String> {
        self.webhook_allow_cidrs
            .iter()
            .map(|c| {
                c.trim()
                    .parse::<ipnet::IpNet>()
                    .map_err(|_| format!("`{c}` is not a network (e.g. 10.1.0.0/16)"))
            })
            .collect()
    }

    /// The effective configuration as TOML, with the database and Redis passwords and the
    /// master key replaced by `***`.
    #[must_use]
    pub fn to_redacted_toml(&self) -> String {
        let mut shown = self.clone();
        shown.database_url = DatabaseUrl(shown.database_url.redacted());
        shown.rate_limit_redis_url = shown.rate_limit_redis_url.map(|url| DatabaseUrl(url.redacted()));
        shown.master_key = shown.master_key.map(|_| SecretString("***".into()));
        shown.metrics_token = shown.metrics_token.map(|_| SecretString("***".into()));
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

/// Parses `250ms`, `5s`, `5m`, `2h`.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().map_err(|_| format!("`{text}` is not a duration (e.g. 5s, 5m, 2h)"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        "h" => Ok(Duration::from_secs(n * 3600)),
        _ => Err(format!("`{text}` is not a duration (e.g. 5s, 5m, 2h)")),
    }
}

/// A secret setting; `Debug` hides it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SecretString(pub String);

impl SecretString {
    /// The secret itself.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretString(***)")
    }
}

/// A database (or Redis) URL; may contain a password, so `Debug` hides it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DatabaseUrl(pub String);

impl DatabaseUrl {
    /// The URL to connect with.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The URL with any password (in the user info or a `password=` parameter) replaced by
    /// `***`.
    #[must_use]
    pub fn redacted(&self) -> String {
        let url = &self.0;
        let Some(scheme_end) = url.find("://") else { return url.clone() };
        let rest = &url[scheme_end + 3..];
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let mut out = match rest[..authority_end].rfind('@') {
            Some(at) => match rest[..at].split_once(':') {
                Some((user, _password)) => format!("{}://{user}:***{}", &url[..scheme_end], &rest[at..]),
                None => url.clone(),
            },
            None => url.clone(),
        };
        if let Some(query_start) = out.find('?') {
            let query: Vec<String> = out[query_start + 1..]
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}=***"),
                    _ => pair.to_owned(),
                })
                .collect();
            out = format!("{}?{}", &out[..query_start], query.join("&"));
        }
        out
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
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn defaults_apply_without_file_or_env() {
        let config = Config::load(None, env(&[])).unwrap();
        assert_eq!(config, Config::default());
        assert_eq!(config.listen.to_string(), "127.0.0.1:8700");
        assert_eq!(config.database_url.expose(), "sqlite://carcosa.db");
        assert_eq!(config.audit_retention_days, 365);
        let kept = Config::load(None, env(&[("CARCOSA_AUDIT_RETENTION_DAYS", "30")])).unwrap();
        assert_eq!(kept.audit_retention_days, 30);
    }

    #[test]
    fn the_environment_overrides_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("carcosa.toml");
        std::fs::write(&path, "listen = \"0.0.0.0:9000\"\nevent_retention_days = 7\n").unwrap();
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
        assert!(err.to_string().contains("CARCOSA_EVENT_RETENTION_DAYS"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, "lisen = \"x\"\n").unwrap();
        let err = Config::load(Some(&path), env(&[])).unwrap_err();
        assert!(err.to_string().contains("bad.toml"), "{err}");
    }

    #[test]
    fn retry_schedules_and_networks_parse() {
        let config =
            Config::load(None, env(&[("CARCOSA_WEBHOOK_RETRY_SCHEDULE", "0s,250ms,1m,2h")])).unwrap();
        assert_eq!(
            config.retry_schedule().unwrap(),
            [Duration::ZERO, Duration::from_millis(250), Duration::from_secs(60), Duration::from_secs(7200)]
        );
        assert_eq!(Config::default().retry_schedule().unwrap().len(), 8);
        assert!(Config::load(None, env(&[("CARCOSA_WEBHOOK_RETRY_SCHEDULE", "soon")])).is_err());
        assert!(Config::load(None, env(&[("CARCOSA_WEBHOOK_RETRY_SCHEDULE", "")])).is_err());
        let nets =
            Config::load(None, env(&[("CARCOSA_WEBHOOK_ALLOW_CIDRS", "10.1.0.0/16, fd00::/8")])).unwrap();
        assert_eq!(nets.allowed_networks().unwrap().len(), 2);
        assert!(Config::load(None, env(&[("CARCOSA_WEBHOOK_ALLOW_CIDRS", "10.1.0.0")])).is_err());
        assert!(Config::load(None, env(&[("CARCOSA_WEBHOOK_ALLOW_PRIVATE", "yes")])).is_err());
        let on = Config::load(None, env(&[("CARCOSA_WEBHOOK_ALLOW_PRIVATE", "true")])).unwrap();
        assert!(on.webhook_allow_private);
    }

    #[test]
    fn the_master_key_is_never_printed() {
        let config = Config::load(None, env(&[("CARCOSA_MASTER_KEY", "c2VjcmV0c2VjcmV0")])).unwrap();
        assert_eq!(config.master_key.as_ref().unwrap().expose(), "c2VjcmV0c2VjcmV0");
        assert!(!config.to_redacted_toml().contains("c2VjcmV0c2VjcmV0"));
        assert!(!format!("{config:?}").contains("c2VjcmV0c2VjcmV0"));
    }

    #[test]
    fn the_metrics_token_is_optional_and_never_printed() {
        assert_eq!(Config::load(None, env(&[])).unwrap().metrics_token, None);
        let config = Config::load(None, env(&[("CARCOSA_METRICS_TOKEN", "scrape-me-please")])).unwrap();
        assert_eq!(config.metrics_token.as_ref().unwrap().expose(), "scrape-me-please");
        assert!(!config.to_redacted_toml().contains("scrape-me-please"));
        assert!(!format!("{config:?}").contains("scrape-me-please"));
    }

    #[test]
    fn rate_limits_are_configurable_and_the_redis_password_is_hidden() {
        let defaults = Config::default();
        assert_eq!((defaults.rate_limit_per_second, defaults.rate_limit_burst), (100, 200));
        assert_eq!(defaults.rate_limit_redis_url, None);
        let config = Config::load(
            None,
            env(&[
                ("CARCOSA_RATE_LIMIT_PER_SECOND", "0"),
                ("CARCOSA_RATE_LIMIT_REDIS_URL", "redis://:hunter2@cache:6379/2"),
                ("CARCOSA_LOGIN_RATE_LIMIT_PER_MINUTE", "3"),
            ]),
        )
        .unwrap();
        assert_eq!(config.rate_limit_per_second, 0);
        assert_eq!(config.login_rate_limit_per_minute, 3);
        assert_eq!(config.rate_limit_redis_url.as_ref().unwrap().expose(), "redis://:hunter2@cache:6379/2");
        let shown = config.to_redacted_toml();
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("redis://:***@cache:6379/2"), "{shown}");
        assert!(!format!("{config:?}").contains("hunter2"));
        let unset = Config::load(None, env(&[("CARCOSA_RATE_LIMIT_REDIS_URL", "")])).unwrap();
        assert_eq!(unset.rate_limit_redis_url, None);
        assert!(Config::load(None, env(&[("CARCOSA_RATE_LIMIT_BURST", "lots")])).is_err());
    }

    #[test]
    fn passwords_are_redacted() {
        let url = DatabaseUrl("postgres://carcosa:s3cret@db:5432/carcosa?sslmode=require".into());
        assert_eq!(url.redacted(), "postgres://carcosa:***@db:5432/carcosa?sslmode=require");
        assert!(!format!("{url:?}").contains("s3cret"));
        let config = Config { database_url: url, ..Config::default() };
        assert!(!config.to_redacted_toml().contains("s3cret"));
        assert_eq!(DatabaseUrl("sqlite://carcosa.db".into()).redacted(), "sqlite://carcosa.db");
        assert_eq!(
            DatabaseUrl("postgres://db/carcosa?user=c&password=hunter2&sslmode=require".into()).redacted(),
            "postgres://db/carcosa?user=c&password=***&sslmode=require"
        );
        assert_eq!(
            DatabaseUrl("postgres://root@localhost/db".into()).redacted(),
            "postgres://root@localhost/db"
        );
    }
}
