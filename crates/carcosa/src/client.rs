//! The typed REST client of Carcosa's API v1.
//!
//! Every method maps to one route (tenants, the changes feed, sync status). Failures come back as [`Error`]: the server's problem details
//! for API errors (match on [`Error::code`]), or what went wrong on the way.
//!
//! Retries: requests that failed on the network, or were answered 5xx or 429, are retried with
//! exponential backoff and full jitter (a 429's or 503's `Retry-After` is honoured, up to the
//! backoff cap). Creating a tenant is retried safely because the client sends an
//! `Idempotency-Key` (generated unless you give one): a retry of a create that did commit returns
//! the first tenant instead of making a second.

use std::time::Duration;

use carcosa_core::api::{EventPage, TenantIn, TenantPage, TenantPatch};
use carcosa_core::sync_status::{SyncStatusIn, SyncStatusList};
use carcosa_core::{EventCursor, Problem, Tenant, TenantStatus};
use rand::Rng;
use reqwest::header::{AUTHORIZATION, HeaderValue, IF_MATCH, RETRY_AFTER};
use reqwest::{Method, RequestBuilder, StatusCode};
use serde::de::DeserializeOwned;

/// What can go wrong with a call.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server answered with an error (after retries, for retryable ones).
    #[error("{} {}: {}", .problem.status, .problem.code, .problem.detail)]
    Api {
        /// The HTTP status.
        status: u16,
        /// The server's problem details.
        problem: Problem,
    },
    /// The server could not be reached, or the connection failed (after retries).
    #[error("cannot reach the Carcosa server: {0}")]
    Transport(#[source] reqwest::Error),
    /// The answer was not what the API promises.
    #[error("unexpected answer from the Carcosa server: {0}")]
    Decode(String),
    /// The client was configured wrongly (a bad URL or key).
    #[error("invalid client configuration: {0}")]
    Config(String),
}

impl Error {
    /// The problem's stable code (`not_found`, `slug_taken`, `cursor_expired`, …) for API
    /// errors.
    #[must_use]
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Api { problem, .. } => Some(&problem.code),
            _ => None,
        }
    }

    /// The HTTP status for API errors.
    #[must_use]
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Whether the server said the changes feed no longer has the events after the cursor: the
    /// caller should run a full sync.
    #[must_use]
    pub fn is_cursor_expired(&self) -> bool {
        self.code() == Some("cursor_expired")
    }
}

/// Settings for a [`Client`].
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    base_url: String,
    api_key: String,
    timeout: Duration,
    connect_timeout: Duration,
    max_retries: u32,
    backoff_base: Duration,
    backoff_cap: Duration,
}

impl ClientBuilder {
    /// Timeout of one request (default 30 s).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Timeout to establish a connection (default 10 s).
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How many times a failed request is retried (default 3; 0 disables retries).
    #[must_use]
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.max_retries = retries;
        self
    }

    /// The backoff: the first retry waits up to `base`, each next one up to twice as long, never
    /// more than `cap` (defaults 200 ms and 10 s).
    #[must_use]
    pub fn backoff(mut self, base: Duration, cap: Duration) -> Self {
        self.backoff_base = base;
        self.backoff_cap = cap;
        self
    }

    /// Builds the client.
    pub fn build(self) -> Result<Client, Error> {
        let base = url::Url::parse(self.base_url.trim_end_matches('/'))
            .map_err(|e| Error::Config(format!("base URL {:?}: {e}", self.base_url)))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(Error::Config(format!("base URL {:?} must be http or https", self.base_url)));
        }
        let mut auth = HeaderValue::from_str(&format!("Bearer {}", self.api_key.trim()))
            .map_err(|_| Error::Config("the API key contains characters a header cannot carry".into()))?;
        auth.set_sensitive(true);
        let http = reqwest::Client::builder()
            .timeout(self.timeout)
            .connect_timeout(self.connect_timeout)
            .user_agent(concat!("carcosa-rs/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Config(e.to_string()))?;
        Ok(Client {
            http,
            base: base.as_str().trim_end_matches('/').to_owned(),
            auth,
            max_retries: self.max_retries,
            backoff_base: self.backoff_base,
            backoff_cap: self.backoff_cap,
        })
    }
}

/// A client of one Carcosa project (the API key's). Cheap to clone; clones share connections.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    auth: HeaderValue,
    max_retries: u32,
    backoff_base: Duration,
    backoff_cap: Duration,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base)
            .field("max_retries", &self.max_retries)
            .finish_non_exhaustive()
    }
}

/// Options of [`Client::list_tenants`].
#[derive(Debug, Clone, Default)]
pub struct ListTenants {
    /// Page size, 1–1000 (the server's default is 100).
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Only this status (default: live tenants).
    pub status: Option<TenantStatus>,
    /// Case-insensitive substring of the name or slug.
    pub q: Option<String>,
}

impl Client {
    /// A client with default settings for the server at `base_url`, acting with `api_key`.
    pub fn new(base_url: impl Into<String>, api_key: impl Into<String>) -> Result<Self, Error> {
        Self::builder(base_url, api_key).build()
    }

    /// Settings to adjust before building a client.
    pub fn builder(base_url: impl Into<String>, api_key: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            base_url: base_url.into(),
            api_key: api_key.into(),
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            max_retries: 3,
            backoff_base: Duration::from_millis(200),
            backoff_cap: Duration::from_secs(10),
        }
    }

    /// Creates a tenant. Retries reuse one generated `Idempotency-Key`, so at most one tenant is
    /// created however many attempts it takes.
    pub async fn create_tenant(&self, tenant: &TenantIn) -> Result<Tenant, Error> {
        let key = format!("carcosa-rs-{}", ulid::Ulid::new());
        self.create_tenant_idempotent(&key, tenant).await
    }

    /// Creates a tenant under your own `Idempotency-Key`: the same key with the same body returns
    /// the first result, even across processes; with another body it is an
    /// `idempotency_key_reused` error.
    pub async fn create_tenant_idempotent(
        &self,
        idempotency_key: &str,
        tenant: &TenantIn,
    ) -> Result<Tenant, Error> {
        self.send(|| {
            self.request(Method::POST, "/v1/tenants").header("idempotency-key", idempotency_key).json(tenant)
        })
        .await
    }

    /// A tenant by id (`ten_…`, any status) or by the slug of a live tenant.
    pub async fn get_tenant(&self, id_or_slug: &str) -> Result<Tenant, Error> {
        let path = format!("/v1/tenants/{}", segment(id_or_slug));
        self.send(|| self.request(Method::GET, &path)).await
    }

    /// Changes a tenant; with `if_match`, only if it is still at that version.
    pub async fn update_tenant(
        &self,
        id_or_slug: &str,
        patch: &TenantPatch,
        if_match: Option<i64>,
    ) -> Result<Tenant, Error> {
        let path = format!("/v1/tenants/{}", segment(id_or_slug));
        self.send(|| with_if_match(self.request(Method::PATCH, &path).json(patch), if_match)).await
    }

    /// Deletes a tenant (it stays readable by id, with status `deleted`).
    pub async fn delete_tenant(&self, id_or_slug: &str, if_match: Option<i64>) -> Result<Tenant, Error> {
        let path = format!("/v1/tenants/{}", segment(id_or_slug));
        self.send(|| with_if_match(self.request(Method::DELETE, &path), if_match)).await
    }

    /// One page of tenants, and the feed position it reflects (`as_of`).
    pub async fn list_tenants(&self, options: &ListTenants) -> Result<TenantPage, Error> {
        let mut query: Vec<(&str, String)> = Vec::new();
        if let Some(limit) = options.limit {
            query.push(("limit", limit.to_string()));
        }
        if let Some(cursor) = &options.cursor {
            query.push(("cursor", cursor.clone()));
        }
        if let Some(status) = options.status {
            query.push(("status", status.as_str().to_owned()));
        }
        if let Some(q) = &options.q {
            query.push(("q", q.clone()));
        }
        self.send(|| self.request(Method::GET, "/v1/tenants").query(&query)).await
    }

    /// Events after `after` (`None`: from the oldest retained), at most `limit` (1–1000). A
    /// cursor past retention is an error whose [`Error::is_cursor_expired`] is true.
    pub async fn list_events(&self, after: Option<EventCursor>, limit: u32) -> Result<EventPage, Error> {
        let mut query = vec![("limit", limit.to_string())];
        if let Some(after) = after {
            query.push(("after", after.to_string()));
        }
        self.send(|| self.request(Method::GET, "/v1/events").query(&query)).await
    }

    /// Reports this app's sync state (`POST /v1/sync-status`), for operators to see its lag.
    pub async fn report_sync_status(&self, status: &SyncStatusIn) -> Result<(), Error> {
        self.exchange(|| self.request(Method::POST, "/v1/sync-status").json(status)).await.map(drop)
    }

    /// Every synced app's state and lag.
    pub async fn list_sync_status(&self) -> Result<SyncStatusList, Error> {
        self.send(|| self.request(Method::GET, "/v1/sync-status")).await
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http.request(method, format!("{}{path}", self.base)).header(AUTHORIZATION, self.auth.clone())
    }

    /// Sends the request `build` makes, retrying what is worth retrying, and decodes the answer.
    async fn send<T: DeserializeOwned>(&self, build: impl Fn() -> RequestBuilder) -> Result<T, Error> {
        let (status, body) = self.exchange(build).await?;
        serde_json::from_slice(&body).map_err(|e| Error::Decode(format!("{status}: {e}")))
    }

    /// Sends the request `build` makes, retrying what is worth retrying; returns a successful
    /// answer's status and body, or the error.
    async fn exchange(&self, build: impl Fn() -> RequestBuilder) -> Result<(StatusCode, Vec<u8>), Error> {
        let mut attempt = 0;
        loop {
            let outcome = build().send().await;
            let retry_after = match &outcome {
                Ok(response) if !retryable(response.status()) => None,
                Ok(response) => Some(parse_retry_after(response)),
                Err(err) if err.is_builder() => None,
                Err(_) => Some(None),
            };
            if let Some(hint) = retry_after
                && attempt < self.max_retries
            {
                let wait = hint.unwrap_or_else(|| self.backoff(attempt)).min(self.backoff_cap);
                tracing::debug!(attempt, wait_ms = wait.as_millis(), "retrying a Carcosa API call");
                tokio::time::sleep(wait).await;
                attempt += 1;
                continue;
            }
            return read(outcome.map_err(Error::Transport)?).await;
        }
    }

    /// Full jitter: a random wait up to `base × 2^attempt`, capped.
    fn backoff(&self, attempt: u32) -> Duration {
        let ceiling = self.backoff_base.saturating_mul(2_u32.saturating_pow(attempt)).min(self.backoff_cap);
        ceiling.mul_f64(rand::thread_rng().gen_range(0.0..=1.0))
    }
}

fn retryable(status: StatusCode) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error()
}

fn parse_retry_after(response: &reqwest::Response) -> Option<Duration> {
    let value = response.headers().get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let when = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    (when.with_timezone(&chrono::Utc) - chrono::Utc::now()).to_std().ok()
}

fn with_if_match(request: RequestBuilder, version: Option<i64>) -> RequestBuilder {
    match version {
        Some(version) => request.header(IF_MATCH, format!("\"{version}\"")),
        None => request,
    }
}

/// A path segment with everything but unreserved characters percent-encoded.
fn segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Reads a whole answer: a success's status and body, or an API error with the problem details.
async fn read(response: reqwest::Response) -> Result<(StatusCode, Vec<u8>), Error> {
    let status = response.status();
    let body = response.bytes().await.map_err(Error::Transport)?.to_vec();
    if status.is_success() {
        return Ok((status, body));
    }
    let problem = serde_json::from_slice::<Problem>(&body).unwrap_or_else(|_| {
        Problem::new(
            status.as_u16(),
            "unexpected_response",
            status.canonical_reason().unwrap_or("Error"),
            String::from_utf8_lossy(&body[..body.len().min(512)]).into_owned(),
        )
    });
    Err(Error::Api { status: status.as_u16(), problem })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_are_encoded() {
        assert_eq!(segment("acme"), "acme");
        assert_eq!(segment("ten_01ABC"), "ten_01ABC");
        assert_eq!(segment("a b/c?d"), "a%20b%2Fc%3Fd");
        assert_eq!(segment("é"), "%C3%A9");
    }

    #[test]
    fn backoff_is_capped_and_jittered() {
        let client = Client::builder("http://127.0.0.1:1", "ck_x")
            .backoff(Duration::from_millis(100), Duration::from_millis(800))
            .build()
            .unwrap();
        for attempt in 0..10 {
            let wait = client.backoff(attempt);
            let ceiling = Duration::from_millis(100 * 2_u64.pow(attempt)).min(Duration::from_millis(800));
            assert!(wait <= ceiling, "attempt {attempt}: {wait:?}");
        }
    }

    #[test]
    fn bad_configuration_is_refused() {
        assert!(matches!(Client::new("not a url", "ck_x"), Err(Error::Config(_))));
        assert!(matches!(Client::new("ftp://example.com", "ck_x"), Err(Error::Config(_))));
        assert!(matches!(Client::new("http://example.com", "ck_a\nb"), Err(Error::Config(_))));
        assert!(Client::new("http://example.com/", "ck_x").is_ok());
    }
}
