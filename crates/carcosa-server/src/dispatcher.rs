//! The webhook dispatcher: takes due deliveries from the store and sends them, signed.
//!
//! * It wakes at once when a delivery is written (an in-process notification; on PostgreSQL also
//!   `LISTEN carcosa_deliveries`, so a write on any replica wakes every replica), and otherwise
//!   when the next retry is due, polling at most every `webhook_poll_interval_ms` as a fallback.
//! * It claims deliveries with a lease; a dispatcher that dies leaves leases that expire, and the
//!   deliveries are claimed again. Delivery is therefore at least once: receivers deduplicate by
//!   `webhook-id`.
//! * At most `webhook_max_in_flight` attempts run at once, and at most
//!   `webhook_max_in_flight_per_endpoint` to one endpoint, so a slow receiver cannot starve the
//!   others.
//! * Each attempt is recorded (status, latency, error, the first 4 KiB of the answer) and the
//!   delivery moves on: 2xx succeeds; 410 disables the endpoint; 429 and 503 honour `Retry-After`
//!   (between 1 s and 1 h); anything else retries on the schedule (±20 % jitter) until it runs
//!   out and the delivery fails. An endpoint failing without a break for `webhook_disable_after_hours`
//!   is disabled.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use carcosa_core::EndpointId;
use carcosa_core::webhook::{WebhookSecret, signature_header};
use chrono::{DateTime, TimeDelta, Utc};
use rand::Rng;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue, RETRY_AFTER};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use crate::Config;
use crate::secrets::SecretBox;
use crate::ssrf::{AddressPolicy, GuardedResolver};
use crate::store::{AttemptRecord, ClaimedDelivery, EndpointRecord, NextStep, Store};

/// How long a wake-up waits for more writes to join it, so one claim serves many.
const COALESCE: Duration = Duration::from_millis(2);
/// The shortest sleep between looks for due retries. New deliveries and finished attempts wake
/// the dispatcher at once; this only bounds how early a retry can go out.
const MIN_NAP: Duration = Duration::from_millis(50);
/// Most attempts written in one transaction.
const RECORD_BATCH: usize = 256;
/// How much of a receiver's answer the delivery log keeps.
const RESPONSE_BODY_LIMIT: usize = 4096;
/// Bounds on a receiver's `Retry-After`.
const RETRY_AFTER_MIN: Duration = Duration::from_secs(1);
const RETRY_AFTER_MAX: Duration = Duration::from_secs(3600);

/// The dispatcher's settings, from [`Config`].
#[derive(Debug, Clone)]
pub struct DispatchSettings {
    /// Attempts in flight at once.
    pub max_in_flight: usize,
    /// Attempts in flight at once to one endpoint.
    pub max_per_endpoint: u32,
    /// Timeout of one attempt.
    pub timeout: Duration,
    /// Delay before each attempt.
    pub schedule: Vec<Duration>,
    /// Failing this long disables an endpoint.
    pub disable_after: Duration,
    /// Longest sleep without a wake-up.
    pub poll_interval: Duration,
}

impl DispatchSettings {
    /// The settings `config` names.
    pub fn from_config(config: &Config) -> Result<Self, String> {
        Ok(Self {
            max_in_flight: config.webhook_max_in_flight.max(1) as usize,
            max_per_endpoint: config.webhook_max_in_flight_per_endpoint.max(1),
            timeout: Duration::from_secs(config.webhook_timeout_secs.max(1)),
            schedule: config.retry_schedule()?,
            disable_after: Duration::from_secs(u64::from(config.webhook_disable_after_hours) * 3600),
            poll_interval: Duration::from_millis(config.webhook_poll_interval_ms.max(10)),
        })
    }

    /// How long a claim lasts: twice an attempt's timeout plus a margin. A dispatcher that dies
    /// holds its deliveries this long before another takes them.
    fn lease(&self) -> Duration {
        self.timeout * 2 + Duration::from_secs(5)
    }
}

/// Sends webhook deliveries until told to stop.
#[derive(Debug, Clone)]
pub struct Dispatcher {
    store: Store,
    secrets: SecretBox,
    client: reqwest::Client,
    policy: Arc<AddressPolicy>,
    settings: Arc<DispatchSettings>,
}

impl Dispatcher {
    /// A dispatcher over `store`, decrypting endpoint secrets with `secrets`, connecting only where
    /// `policy` allows.
    pub fn new(
        store: Store,
        secrets: SecretBox,
        policy: Arc<AddressPolicy>,
        settings: DispatchSettings,
    ) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout.min(Duration::from_secs(10)))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(Arc::new(GuardedResolver::new(policy.clone())))
            .user_agent(concat!("Carcosa/", env!("CARGO_PKG_VERSION")))
            .pool_idle_timeout(Duration::from_secs(90))
            .build()?;
        Ok(Self { store, secrets, client, policy, settings: Arc::new(settings) })
    }

    /// Runs until `stop` turns true, then lets the attempts in flight finish (up to one timeout).
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let (record_tx, record_rx) = mpsc::unbounded_channel();
        let recorder = tokio::spawn(self.clone().record(record_rx));
        let wake = self.store.delivery_waker();
        let mut tasks: JoinSet<EndpointId> = JoinSet::new();
        let mut per_endpoint: HashMap<EndpointId, u32> = HashMap::new();
        loop {
            if *stop.borrow() {
                break;
            }
            let free = self.settings.max_in_flight.saturating_sub(tasks.len());
            let mut more_due = false;
            if free > 0 {
                match self.claim(free, &mut per_endpoint, &mut tasks, &record_tx).await {
                    Ok(full) => more_due = full,
                    Err(err) => {
                        tracing::warn!(error = %err, "claiming webhook deliveries failed; retrying");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        continue;
                    }
                }
            }
            if more_due {
                continue;
            }
            let nap = self.nap().await;
            tokio::select! {
                () = wake.notified() => {
                    // Let the writes of the next moment join this one: one claim for many.
                    tokio::time::sleep(COALESCE).await;
                }
                () = tokio::time::sleep(nap) => {}
                Some(done) = tasks.join_next(), if !tasks.is_empty() => {
                    self.finished(done, &mut per_endpoint);
                    // Let other attempts finish too: one claim for all the room they free.
                    tokio::time::sleep(COALESCE).await;
                }
                _ = stop.changed() => {}
            }
            while let Some(done) = tasks.try_join_next() {
                self.finished(done, &mut per_endpoint);
            }
        }
        let drain = async {
            while let Some(done) = tasks.join_next().await {
                self.finished(done, &mut per_endpoint);
            }
        };
        if tokio::time::timeout(self.settings.timeout, drain).await.is_err() {
            tracing::warn!(
                "webhook attempts still in flight at shutdown; their leases will expire and they will be retried"
            );
        }
        tasks.abort_all();
        drop(record_tx);
        let _ = recorder.await;
    }

    /// Writes finished attempts to the store in batches: one transaction for everything that
    /// finished since the last write. Ends when every sender is gone and the queue is empty.
    async fn record(self, mut finished: mpsc::UnboundedReceiver<(ClaimedDelivery, AttemptRecord)>) {
        let mut batch = Vec::new();
        while finished.recv_many(&mut batch, RECORD_BATCH).await > 0 {
            match self.store.record_attempts(&batch).await {
                Ok(failing) => {
                    for (endpoint, since) in failing {
                        if self.failing_too_long(since) {
                            self.disable_failing(endpoint, since).await;
                        }
                    }
                }
                Err(err) if batch.len() > 1 => {
                    // One bad row must not sink the others: record them one by one.
                    tracing::warn!(attempts = batch.len(), error = %err, "recording a batch of webhook attempts failed; recording them one by one");
                    for one in batch.chunks(1) {
                        if let Err(err) = self.store.record_attempts(one).await {
                            tracing::error!(delivery_id = %one[0].0.id, error = %err, "cannot record a webhook attempt; its lease will expire and it will be retried");
                        }
                    }
                }
                Err(err) => tracing::error!(
                    delivery_id = %batch[0].0.id,
                    error = %err,
                    "cannot record a webhook attempt; its lease will expire and it will be retried"
                ),
            }
            batch.clear();
        }
    }

    async fn disable_failing(&self, endpoint: EndpointId, since: DateTime<Utc>) {
        match self.store.disable_endpoint(endpoint, "failing").await {
            Ok(()) => tracing::warn!(
                endpoint_id = %endpoint,
                failing_since = %since,
                "webhook endpoint disabled: failing without a break for too long"
            ),
            Err(err) => {
                tracing::error!(endpoint_id = %endpoint, error = %err, "cannot disable a failing endpoint")
            }
        }
    }

    /// Claims up to `free` deliveries and starts them; returns whether the batch was full (more
    /// may be due right away).
    async fn claim(
        &self,
        free: usize,
        per_endpoint: &mut HashMap<EndpointId, u32>,
        tasks: &mut JoinSet<EndpointId>,
        record: &mpsc::UnboundedSender<(ClaimedDelivery, AttemptRecord)>,
    ) -> Result<bool, crate::store::StoreError> {
        let lease_until = Utc::now() + to_delta(self.settings.lease());
        let limit = u32::try_from(free).unwrap_or(u32::MAX);
        let batch = self
            .store
            .claim_deliveries(limit, lease_until, per_endpoint, self.settings.max_per_endpoint)
            .await?;
        let full = batch.len() == free;
        for delivery in batch {
            *per_endpoint.entry(delivery.endpoint_id).or_default() += 1;
            let this = self.clone();
            let record = record.clone();
            tasks.spawn(async move {
                let endpoint = delivery.endpoint_id;
                if let Some(recorded) = this.attempt(delivery).await {
                    let _ = record.send(recorded);
                }
                endpoint
            });
        }
        Ok(full)
    }

    fn finished(
        &self,
        done: Result<EndpointId, tokio::task::JoinError>,
        per_endpoint: &mut HashMap<EndpointId, u32>,
    ) {
        match done {
            Ok(endpoint) => {
                if let Some(count) = per_endpoint.get_mut(&endpoint) {
                    *count = count.saturating_sub(1);
                    if *count == 0 {
                        per_endpoint.remove(&endpoint);
                    }
                }
            }
            Err(err) => tracing::error!(error = %err, "a webhook attempt task failed"),
        }
    }

    /// How long to sleep when nothing wakes the dispatcher: until the next retry is due, at most
    /// the poll interval.
    async fn nap(&self) -> Duration {
        let poll = self.settings.poll_interval;
        match self.store.next_delivery_due().await {
            Ok(Some(due)) => (due - Utc::now()).to_std().unwrap_or(Duration::ZERO).clamp(MIN_NAP, poll),
            Ok(None) => poll,
            Err(err) => {
                tracing::warn!(error = %err, "reading the next webhook due time failed");
                poll
            }
        }
    }

    /// One attempt of one delivery; returns what to record.
    async fn attempt(&self, delivery: ClaimedDelivery) -> Option<(ClaimedDelivery, AttemptRecord)> {
        let endpoint = match self.store.endpoint_for_delivery(delivery.endpoint_id).await {
            Ok(endpoint) => endpoint,
            // Deleted meanwhile: its deliveries went with it.
            Err(crate::store::StoreError::NotFound) => return None,
            Err(err) => {
                tracing::warn!(delivery_id = %delivery.id, error = %err, "cannot load the webhook endpoint; the lease will expire and the delivery will be retried");
                return None;
            }
        };
        let attempted_at = Utc::now();
        let started = Instant::now();
        let outcome = self.send(&endpoint, &delivery, attempted_at).await;
        let latency_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
        let record = self.judge(&delivery, outcome, attempted_at, latency_ms);
        record_attempt(&delivery, &record);
        match &record.next {
            NextStep::Succeeded => {
                tracing::debug!(delivery_id = %delivery.id, endpoint_id = %endpoint.endpoint.id, latency_ms, "webhook delivered")
            }
            NextStep::RetryAt(at) => {
                tracing::info!(delivery_id = %delivery.id, endpoint_id = %endpoint.endpoint.id, status = ?record.response_status, error = ?record.error, retry_at = %at, "webhook attempt failed; will retry")
            }
            NextStep::Failed => {
                tracing::warn!(delivery_id = %delivery.id, endpoint_id = %endpoint.endpoint.id, status = ?record.response_status, error = ?record.error, "webhook delivery failed after its last attempt; it can be resent")
            }
            NextStep::EndpointGone => {
                tracing::warn!(endpoint_id = %endpoint.endpoint.id, "the receiver answered 410 Gone: endpoint disabled")
            }
        }
        Some((delivery, record))
    }

    fn failing_too_long(&self, since: DateTime<Utc>) -> bool {
        (Utc::now() - since).to_std().unwrap_or(Duration::ZERO) >= self.settings.disable_after
    }

    /// Sends the delivery: signed headers, the stored body.
    async fn send(
        &self,
        endpoint: &EndpointRecord,
        delivery: &ClaimedDelivery,
        at: DateTime<Utc>,
    ) -> Result<Answer, String> {
        let url =
            url::Url::parse(&endpoint.endpoint.url).map_err(|e| format!("invalid endpoint URL: {e}"))?;
        self.policy.check_literal(&url).map_err(|e| e.to_string())?;
        let secrets = self.signing_secrets(endpoint, at)?;
        let timestamp = at.timestamp();
        let signature =
            signature_header(&secrets, &delivery.event_id, timestamp, delivery.payload.as_bytes());
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert("webhook-id", HeaderValue::from_str(&delivery.event_id).map_err(|e| e.to_string())?);
        headers.insert("webhook-timestamp", HeaderValue::from(timestamp));
        headers.insert("webhook-signature", HeaderValue::from_str(&signature).map_err(|e| e.to_string())?);
        let response = self
            .client
            .post(url)
            .headers(headers)
            .body(delivery.payload.clone())
            .send()
            .await
            .map_err(|e| describe(&e, self.settings.timeout))?;
        let status = response.status().as_u16();
        let retry_after =
            response.headers().get(RETRY_AFTER).and_then(|v| v.to_str().ok()).and_then(parse_retry_after);
        let body = read_prefix(response).await;
        Ok(Answer { status, retry_after, body })
    }

    /// The current secret, and the previous one while its grace period lasts.
    fn signing_secrets(
        &self,
        endpoint: &EndpointRecord,
        at: DateTime<Utc>,
    ) -> Result<Vec<WebhookSecret>, String> {
        let open = |sealed: &[u8]| {
            self.secrets
                .open(sealed)
                .map_err(|e| e.to_string())
                .and_then(|key| WebhookSecret::from_bytes(key).map_err(|e| e.to_string()))
        };
        let mut secrets = vec![open(&endpoint.secret)?];
        if let (Some(previous), Some(until)) =
            (&endpoint.previous_secret, endpoint.endpoint.previous_secret_expires_at)
            && until > at
        {
            secrets.push(open(previous)?);
        }
        Ok(secrets)
    }

    /// Decides what an attempt's outcome means for the delivery.
    fn judge(
        &self,
        delivery: &ClaimedDelivery,
        outcome: Result<Answer, String>,
        at: DateTime<Utc>,
        latency_ms: i64,
    ) -> AttemptRecord {
        let next_on_schedule = || {
            let index = usize::try_from(delivery.retry_index).unwrap_or(0) + 1;
            match self.settings.schedule.get(index) {
                Some(delay) => NextStep::RetryAt(at + to_delta(jitter(*delay))),
                None => NextStep::Failed,
            }
        };
        match outcome {
            Ok(answer) => {
                let next = match answer.status {
                    200..=299 => NextStep::Succeeded,
                    410 => NextStep::EndpointGone,
                    429 | 503 => match (next_on_schedule(), answer.retry_after) {
                        (NextStep::RetryAt(_), Some(wait)) => {
                            NextStep::RetryAt(at + to_delta(wait.clamp(RETRY_AFTER_MIN, RETRY_AFTER_MAX)))
                        }
                        (next, _) => next,
                    },
                    _ => next_on_schedule(),
                };
                AttemptRecord {
                    attempted_at: at,
                    response_status: Some(answer.status),
                    latency_ms,
                    error: None,
                    response_body: Some(answer.body),
                    next,
                }
            }
            Err(error) => AttemptRecord {
                attempted_at: at,
                response_status: None,
                latency_ms,
                error: Some(error),
                response_body: None,
                next: next_on_schedule(),
            },
        }
    }
}

/// `carcosa_webhook_attempts_total{outcome}` for one attempt and, when it delivered,
/// `carcosa_webhook_delivery_seconds`: from the event's commit to now, retries included. A
/// delivery that was resent or recovered (its retry position reset below its attempt count) is
/// not timed: its wait was a person's, not the dispatcher's.
fn record_attempt(delivery: &ClaimedDelivery, record: &AttemptRecord) {
    let outcome = match record.response_status {
        Some(200..=299) => "success",
        Some(_) => "error_status",
        None => "unreachable",
    };
    metrics::counter!("carcosa_webhook_attempts_total", "outcome" => outcome).increment(1);
    if record.next == NextStep::Succeeded && delivery.attempt_count == delivery.retry_index {
        let waited = (Utc::now() - delivery.created_at).to_std().unwrap_or(Duration::ZERO);
        metrics::histogram!("carcosa_webhook_delivery_seconds").record(waited.as_secs_f64());
    }
}

/// What a receiver answered.
struct Answer {
    status: u16,
    retry_after: Option<Duration>,
    body: String,
}

/// `Retry-After` as seconds or an HTTP date.
fn parse_retry_after(text: &str) -> Option<Duration> {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let when = DateTime::parse_from_rfc2822(text).ok()?.with_timezone(&Utc);
    Some((when - Utc::now()).to_std().unwrap_or(Duration::ZERO))
}

/// The first 4 KiB of the answer, as text.
async fn read_prefix(mut response: reqwest::Response) -> String {
    let mut body = Vec::new();
    while body.len() < RESPONSE_BODY_LIMIT {
        match response.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            Ok(None) | Err(_) => break,
        }
    }
    body.truncate(RESPONSE_BODY_LIMIT);
    storable(&String::from_utf8_lossy(&body))
}

/// Text as the delivery log can keep it on every database: PostgreSQL's `TEXT` refuses the NUL
/// character, which binary answers contain.
fn storable(text: &str) -> String {
    text.replace('\0', "\u{FFFD}")
}

/// A short, safe description of a failed request (no URL query, no headers).
fn describe(err: &reqwest::Error, timeout: Duration) -> String {
    if err.is_timeout() {
        return format!("timed out after {} s", timeout.as_secs());
    }
    let mut parts = Vec::new();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        parts.push(cause.to_string());
        source = cause.source();
    }
    let kind = if err.is_connect() { "connection failed" } else { "request failed" };
    match parts.last() {
        Some(root) => storable(&format!("{kind}: {root}")),
        None => kind.to_owned(),
    }
}

/// `delay` ± 20 %.
fn jitter(delay: Duration) -> Duration {
    if delay.is_zero() {
        return delay;
    }
    delay.mul_f64(rand::thread_rng().gen_range(0.8..=1.2))
}

fn to_delta(duration: Duration) -> TimeDelta {
    TimeDelta::from_std(duration).unwrap_or(TimeDelta::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        assert_eq!(parse_retry_after("7"), Some(Duration::from_secs(7)));
        let soon = (Utc::now() + TimeDelta::seconds(30)).to_rfc2822();
        let parsed = parse_retry_after(&soon).unwrap();
        assert!(parsed > Duration::from_secs(25) && parsed <= Duration::from_secs(30), "{parsed:?}");
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn jitter_stays_within_twenty_percent() {
        for _ in 0..1000 {
            let j = jitter(Duration::from_secs(100));
            assert!(j >= Duration::from_secs(80) && j <= Duration::from_secs(120), "{j:?}");
        }
        assert_eq!(jitter(Duration::ZERO), Duration::ZERO);
    }
}
