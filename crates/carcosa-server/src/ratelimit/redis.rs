//! Buckets in Redis, shared by every replica that names the same Redis and prefix.
//!
//! One Lua script takes a token atomically (`EVALSHA`, loading the script on `NOSCRIPT`). A
//! bucket is a hash `{tokens, at}` under `<prefix><name>`; the time is Redis's own (`TIME`), so
//! replicas whose clocks disagree still share one bucket fairly. The hash expires once it would
//! be full again, so idle buckets cost Redis nothing. The arithmetic is `bucket.rs`'s, step for
//! step; the tests in `tests/api/ratelimit.rs` run both.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::bucket::{Decision, Limit};

/// Takes one token: KEYS[1] the bucket, ARGV[1] tokens per second, ARGV[2] the burst.
/// Returns `{allowed (1 or 0), tokens left (as text: Lua numbers would be truncated)}`.
const TAKE: &str = r"
if redis.replicate_commands then pcall(redis.replicate_commands) end
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local time = redis.call('TIME')
local now = tonumber(time[1]) + tonumber(time[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1])
local at = tonumber(state[2])
if tokens == nil or at == nil then
  tokens = burst
  at = now
end
if now > at then
  tokens = math.min(burst, tokens + (now - at) * rate)
  at = now
end
local allowed = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(at))
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) / rate * 1000) + 1000)
return {allowed, tostring(tokens)}
";

/// How long one call may take before the request goes on without Redis.
const CALL_TIMEOUT: Duration = Duration::from_millis(500);

/// Why Redis gave no answer.
#[derive(Debug, thiserror::Error)]
pub enum RedisError {
    /// Redis refused or the connection failed.
    #[error(transparent)]
    Redis(#[from] redis::RedisError),
    /// No answer in time.
    #[error("Redis did not answer within {0:?}")]
    Timeout(Duration),
    /// The script answered something this code does not understand.
    #[error("unexpected answer from the rate limit script: {0}")]
    Answer(String),
}

/// Token buckets in Redis.
pub struct RedisBuckets {
    connection: ConnectionManager,
    script: redis::Script,
    prefix: String,
}

impl std::fmt::Debug for RedisBuckets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the URL: it may hold a password.
        f.debug_struct("RedisBuckets").field("prefix", &self.prefix).finish_non_exhaustive()
    }
}

impl RedisBuckets {
    /// Buckets in the Redis at `url`, named `<prefix><name>`. Connects lazily (on the first
    /// request) and reconnects by itself; fails only on a malformed URL. Call within a Tokio
    /// runtime.
    pub fn new(url: &str, prefix: &str) -> Result<Self, RedisError> {
        let client = redis::Client::open(url)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(CALL_TIMEOUT))
            .set_number_of_retries(2);
        let connection = ConnectionManager::new_lazy_with_config(client, config)?;
        Ok(Self { connection, script: redis::Script::new(TAKE), prefix: prefix.to_owned() })
    }

    /// Takes a token from the bucket `name` under `limit`.
    pub async fn take(&self, name: &str, limit: &Limit) -> Result<Decision, RedisError> {
        let mut connection = self.connection.clone();
        let mut invocation = self.script.key(format!("{}{name}", self.prefix));
        invocation.arg(limit.per_second).arg(limit.burst);
        let call = invocation.invoke_async::<(i64, String)>(&mut connection);
        let (allowed, tokens) = tokio::time::timeout(CALL_TIMEOUT, call)
            .await
            .map_err(|_| RedisError::Timeout(CALL_TIMEOUT))??;
        let tokens: f64 = tokens.parse().map_err(|_| RedisError::Answer(tokens.clone()))?;
        Ok(Decision::new(limit, allowed == 1, tokens))
    }
}
