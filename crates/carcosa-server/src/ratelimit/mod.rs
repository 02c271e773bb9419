//! Rate limits: a token bucket per API key (the server's default limit, or the key's own), and
//! a stricter one per client address on dashboard logins.
//!
//! * [`bucket`] is the arithmetic; [`local`] keeps buckets in this process (limits are then per
//!   replica); [`redis`] keeps them in Redis, shared by every replica using it.
//! * [`Limiter`] picks the backend. When Redis fails or is slow, the request is not refused
//!   and never gets a 500: the limiter falls back to this replica's buckets for a few seconds
//!   (a warning is logged once per fall-back and `carcosa_rate_limit_backend_errors_total`
//!   counts it), then tries Redis again.
//! * [`enforce`] is called by the API-key extractor ([`crate::auth::Authorized`]) once the key
//!   is known; [`headers`] is the middleware that writes `RateLimit-Limit`,
//!   `RateLimit-Remaining` and `RateLimit-Reset` (and `Retry-After` on a 429) on the response.
//!
//! What is not here: the failed-login throttle per account (`crate::operators`).

pub mod bucket;
pub mod local;
pub mod redis;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::extract::Request;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use carcosa_core::api::KeyRateLimit;

pub use bucket::{Decision, Limit};

use crate::auth::Principal;
use crate::config::Config;
use crate::error::ApiError;

/// `RateLimit-Limit`: how many requests a full bucket allows at once.
pub const LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");
/// `RateLimit-Remaining`: requests left right now.
pub const REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
/// `RateLimit-Reset`: seconds until the bucket is full again.
pub const RESET: HeaderName = HeaderName::from_static("ratelimit-reset");

/// How long the limiter uses only local buckets after Redis failed.
const REDIS_REST: Duration = Duration::from_secs(5);

/// Where buckets live: this process, or Redis with this process as the fall-back.
#[derive(Debug)]
pub struct Limiter {
    local: local::LocalBuckets,
    redis: Option<redis::RedisBuckets>,
    origin: Instant,
    /// Milliseconds after `origin` before which Redis is not asked (it just failed).
    redis_resting_until: AtomicU64,
}

impl Limiter {
    /// Buckets in this process only.
    #[must_use]
    pub fn local() -> Self {
        Self {
            local: local::LocalBuckets::default(),
            redis: None,
            origin: Instant::now(),
            redis_resting_until: AtomicU64::new(0),
        }
    }

    /// Buckets in the Redis at `url` under `prefix`. Fails only on a malformed URL (Redis is
    /// reached on first use). Call within a Tokio runtime.
    pub fn redis(url: &str, prefix: &str) -> Result<Self, redis::RedisError> {
        Ok(Self { redis: Some(redis::RedisBuckets::new(url, prefix)?), ..Self::local() })
    }

    /// Whether buckets are shared through Redis (when it answers).
    #[must_use]
    pub fn is_shared(&self) -> bool {
        self.redis.is_some()
    }

    /// Takes a token from the bucket `name` under `limit`.
    pub async fn take(&self, name: &str, limit: &Limit) -> Decision {
        if let Some(redis) = &self.redis {
            let now = self.elapsed_ms();
            if now >= self.redis_resting_until.load(Ordering::Relaxed) {
                match redis.take(name, limit).await {
                    Ok(decision) => return decision,
                    Err(err) => {
                        let until = now + REDIS_REST.as_millis() as u64;
                        // One warning per fall-back, however many requests meet the failure.
                        if self.redis_resting_until.swap(until, Ordering::Relaxed) <= now {
                            tracing::warn!(error = %err, "rate limits: Redis failed; limiting per replica for {REDIS_REST:?}");
                        }
                        metrics::counter!("carcosa_rate_limit_backend_errors_total").increment(1);
                    }
                }
            }
        }
        self.local.take(name, limit)
    }

    fn elapsed_ms(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

/// The limits configuration sets, and the buckets they apply to.
#[derive(Debug)]
pub struct RateLimits {
    limiter: Limiter,
    default: Option<Limit>,
    login: Option<Limit>,
}

impl RateLimits {
    /// The limits `config` sets. Fails on a malformed `rate_limit_redis_url`. Call within a
    /// Tokio runtime when Redis is configured.
    pub fn from_config(config: &Config) -> anyhow::Result<Self> {
        let limiter = match &config.rate_limit_redis_url {
            Some(url) => Limiter::redis(url.expose(), &config.rate_limit_redis_prefix)
                .map_err(|err| anyhow::anyhow!("rate_limit_redis_url: {err}"))?,
            None => Limiter::local(),
        };
        Ok(Self {
            limiter,
            default: Limit::new(f64::from(config.rate_limit_per_second), config.rate_limit_burst),
            login: Limit::new(
                f64::from(config.login_rate_limit_per_minute) / 60.0,
                config.login_rate_limit_burst,
            ),
        })
    }

    /// The limit of a key: its own when it has one, else the server's default; `None` for no
    /// limit.
    #[must_use]
    pub fn for_key(&self, own: Option<KeyRateLimit>) -> Option<Limit> {
        match own {
            Some(own) => Limit::new(f64::from(own.per_second), own.burst),
            None => self.default,
        }
    }

    /// Takes a token for a request with the key of `principal`; `None` when the key has no limit.
    pub async fn check_key(&self, principal: &Principal) -> Option<Decision> {
        let limit = self.for_key(principal.rate_limit)?;
        Some(self.limiter.take(&format!("key:{}", principal.key_id), &limit).await)
    }

    /// Takes a token for a login attempt from `address`; `None` when logins are not limited.
    pub async fn check_login(&self, address: &str) -> Option<Decision> {
        let limit = self.login?;
        Some(self.limiter.take(&format!("login:{}", address_bucket(address)), &limit).await)
    }

    /// Where the buckets live.
    #[must_use]
    pub fn limiter(&self) -> &Limiter {
        &self.limiter
    }
}

/// The bucket of a client address: an IPv4 address is its own, an IPv6 address shares one with
/// its /64 (one machine usually holds a whole /64).
fn address_bucket(address: &str) -> String {
    match address.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V6(v6)) if v6.to_ipv4_mapped().is_none() => {
            let [a, b, c, d, ..] = v6.segments();
            format!("{a:x}:{b:x}:{c:x}:{d:x}::/64")
        }
        Ok(std::net::IpAddr::V6(v6)) => {
            v6.to_ipv4_mapped().map_or_else(|| address.to_owned(), |v4| v4.to_string())
        }
        _ => address.to_owned(),
    }
}

/// Where [`enforce`] leaves its decision for [`headers`] to write on the response.
#[derive(Debug, Clone, Default)]
struct Slot(Arc<OnceLock<Decision>>);

/// Limits a request made with the key of `principal`: records the decision for the response's
/// headers, and refuses the request with 429 `rate_limited` when the bucket is empty.
pub async fn enforce(parts: &Parts, limits: &RateLimits, principal: &Principal) -> Result<(), ApiError> {
    let Some(decision) = limits.check_key(principal).await else {
        return Ok(());
    };
    if let Some(slot) = parts.extensions.get::<Slot>() {
        let _ = slot.0.set(decision);
    }
    if decision.allowed {
        return Ok(());
    }
    metrics::counter!("carcosa_rate_limited_total", "project" => principal.project.to_string()).increment(1);
    Err(ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        "Rate limited",
        format!(
            "this API key has made more requests than its limit allows ({} at once); retry in {} s",
            decision.limit, decision.retry_after_secs
        ),
    ))
}

/// Middleware: gives the request a place for its rate-limit decision, and writes the decision's
/// headers on the response.
pub async fn headers(mut request: Request, next: Next) -> Response {
    let slot = Slot::default();
    request.extensions_mut().insert(slot.clone());
    let mut response = next.run(request).await;
    if let Some(decision) = slot.0.get() {
        set_headers(response.headers_mut(), decision);
    }
    response
}

/// Writes `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset`, and for a refused request
/// `Retry-After`.
pub fn set_headers(headers: &mut HeaderMap, decision: &Decision) {
    headers.insert(LIMIT, HeaderValue::from(decision.limit));
    headers.insert(REMAINING, HeaderValue::from(decision.remaining));
    headers.insert(RESET, HeaderValue::from(decision.reset_secs));
    if !decision.allowed {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(decision.retry_after_secs));
    }
}

#[cfg(test)]
mod tests {
    use super::address_bucket;

    #[test]
    fn ipv6_addresses_share_a_bucket_per_64() {
        assert_eq!(address_bucket("203.0.113.7"), "203.0.113.7");
        assert_eq!(address_bucket("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
        assert_eq!(address_bucket("2001:db8:1:2:bbbb::9"), address_bucket("2001:db8:1:2:aaaa::1"));
        assert_ne!(address_bucket("2001:db8:1:3::1"), address_bucket("2001:db8:1:2::1"));
        assert_eq!(address_bucket("::ffff:203.0.113.7"), "203.0.113.7");
        assert_eq!(address_bucket("unknown"), "unknown");
    }
}
