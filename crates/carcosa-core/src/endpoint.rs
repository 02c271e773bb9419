//! Webhook endpoints and deliveries: what the webhook API takes and returns.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};

use crate::tenant::{rfc3339, rfc3339_opt};
use crate::{DeliveryId, EndpointId, EventType};

/// The longest endpoint URL.
pub const MAX_URL_LEN: usize = 2048;
/// The longest description.
pub const MAX_DESCRIPTION_CHARS: usize = 500;
/// The event type of a test delivery (`POST /v1/webhook-endpoints/{id}/test`).
pub const TEST_EVENT_TYPE: &str = "webhook.test";

/// Why an endpoint field was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct EndpointFieldError {
    /// Stable code: `invalid_url`, `invalid_event_types`, `invalid_description`.
    pub code: &'static str,
    /// What is wrong.
    pub message: String,
}

fn field_error(code: &'static str, message: impl Into<String>) -> EndpointFieldError {
    EndpointFieldError { code, message: message.into() }
}

/// A syntactically acceptable endpoint URL: `http` or `https`, a host, no credentials, no
/// fragment. Whether its addresses are allowed is the server's question (SSRF guard).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointUrl(url::Url);

impl EndpointUrl {
    /// Checks the URL's shape.
    pub fn parse(text: &str) -> Result<Self, EndpointFieldError> {
        let text = text.trim();
        if text.len() > MAX_URL_LEN {
            return Err(field_error("invalid_url", format!("url is at most {MAX_URL_LEN} characters")));
        }
        let url = url::Url::parse(text)
            .map_err(|e| field_error("invalid_url", format!("url is not a valid URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(field_error("invalid_url", "url must use http or https"));
        }
        if url.host().is_none() {
            return Err(field_error("invalid_url", "url must name a host"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(field_error(
                "invalid_url",
                "url must not contain credentials; authenticate with the signature",
            ));
        }
        if url.fragment().is_some() {
            return Err(field_error("invalid_url", "url must not contain a #fragment"));
        }
        Ok(Self(url))
    }

    /// The parsed URL.
    #[must_use]
    pub fn url(&self) -> &url::Url {
        &self.0
    }

    /// The URL as text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

/// Which event types an endpoint receives: exact types (`tenant.created`) and namespace
/// wildcards (`tenant.*`). `None` in the API means every type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventTypeFilter(Vec<String>);

impl EventTypeFilter {
    /// Checks each pattern; an empty list is refused (leave the field out to receive everything).
    pub fn parse(patterns: &[String]) -> Result<Self, EndpointFieldError> {
        if patterns.is_empty() {
            return Err(field_error(
                "invalid_event_types",
                "event_types cannot be empty (omit it or send null to receive every type)",
            ));
        }
        let mut out = Vec::with_capacity(patterns.len());
        for pattern in patterns {
            let pattern = pattern.trim();
            let known = EventType::from_str(pattern).is_ok()
                || pattern.strip_suffix(".*").is_some_and(|ns| {
                    EventType::ALL.iter().any(|t| t.as_str().starts_with(&format!("{ns}.")))
                });
            if !known {
                return Err(field_error(
                    "invalid_event_types",
                    format!(
                        "`{pattern}` is not an event type or wildcard (tenant.created, tenant.updated, tenant.deleted, tenant.*)"
                    ),
                ));
            }
            if !out.iter().any(|p| p == pattern) {
                out.push(pattern.to_owned());
            }
        }
        Ok(Self(out))
    }

    /// Whether an event of `event_type` goes to an endpoint with this filter.
    #[must_use]
    pub fn matches(&self, event_type: &str) -> bool {
        self.0.iter().any(|p| match p.strip_suffix('*') {
            Some(prefix) => event_type.starts_with(prefix),
            None => p == event_type,
        })
    }

    /// The patterns.
    #[must_use]
    pub fn patterns(&self) -> &[String] {
        &self.0
    }
}

/// Checks an optional description: at most 500 characters.
pub fn parse_description(text: Option<&str>) -> Result<Option<String>, EndpointFieldError> {
    match text.map(str::trim) {
        None | Some("") => Ok(None),
        Some(d) if d.contains('\0') => {
            Err(field_error("invalid_description", "description cannot contain the NUL character"))
        }
        Some(d) if d.chars().count() > MAX_DESCRIPTION_CHARS => Err(field_error(
            "invalid_description",
            format!("description is at most {MAX_DESCRIPTION_CHARS} characters"),
        )),
        Some(d) => Ok(Some(d.to_owned())),
    }
}

fn present<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

/// The body of `POST /v1/webhook-endpoints`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct EndpointIn {
    /// Where to POST events: `http` or `https`.
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 2048, pattern = "^[hH][tT][tT][pP][sS]?://[^/?#@]+")
    )]
    pub url: String,
    /// A note for people.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_length = 500))]
    pub description: Option<String>,
    /// Exact types and `tenant.*`; absent or null = every type.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(min_items = 1))]
    pub event_types: Option<Vec<String>>,
    /// Whether to send to it (default true).
    #[serde(default)]
    pub enabled: Option<bool>,
}

/// The body of `PATCH /v1/webhook-endpoints/{id}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct EndpointPatch {
    /// New URL.
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(
            nullable = false,
            min_length = 1,
            max_length = 2048,
            pattern = "^[hH][tT][tT][pP][sS]?://[^/?#@]+"
        )
    )]
    pub url: Option<String>,
    /// New description; null clears it.
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, nullable, max_length = 500))]
    pub description: Option<Option<String>>,
    /// New filter; null = every type.
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Vec<String>>, nullable, min_items = 1))]
    pub event_types: Option<Option<Vec<String>>>,
    /// Enable or disable; enabling clears the reason it was disabled.
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub enabled: Option<bool>,
}

/// A webhook endpoint (without its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EndpointOut {
    /// `ep_…`
    pub id: EndpointId,
    /// Where events are sent.
    pub url: String,
    /// A note for people.
    pub description: Option<String>,
    /// The filter; null = every type.
    pub event_types: Option<Vec<String>>,
    /// Whether events are sent.
    pub enabled: bool,
    /// Why Carcosa disabled it (`gone`: the receiver answered 410; `failing`: it failed for too
    /// long), if it did.
    pub disabled_reason: Option<String>,
    /// Start of the current run of failed attempts; null when the last attempt succeeded.
    #[serde(with = "rfc3339_opt")]
    pub failing_since: Option<DateTime<Utc>>,
    /// Until when the previous secret still signs, after a rotation.
    #[serde(with = "rfc3339_opt")]
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    /// When it was created.
    #[serde(with = "rfc3339")]
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    #[serde(with = "rfc3339")]
    pub updated_at: DateTime<Utc>,
}

/// An endpoint with its signing secret: returned by create and by rotate-secret only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EndpointWithSecret {
    /// The endpoint.
    #[serde(flatten)]
    pub endpoint: EndpointOut,
    /// `whsec_…`: verify signatures with it. Store it now; it is not shown again.
    pub secret: String,
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Waiting for its next attempt.
    Pending,
    /// The receiver answered 2xx.
    Succeeded,
    /// Every attempt failed (or the endpoint is gone); it can be resent.
    Failed,
}

impl DeliveryStatus {
    /// The status as stored and sent.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
        }
    }
}

impl fmt::Display for DeliveryStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Text that is not a delivery status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a delivery status (expected pending, succeeded or failed)")]
pub struct InvalidDeliveryStatus(pub String);

impl FromStr for DeliveryStatus {
    type Err = InvalidDeliveryStatus;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "pending" => Ok(Self::Pending),
            "succeeded" => Ok(Self::Succeeded),
            "failed" => Ok(Self::Failed),
            other => Err(InvalidDeliveryStatus(other.chars().take(40).collect())),
        }
    }
}

/// One attempt to deliver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AttemptOut {
    /// 1 for the first attempt, and so on.
    pub attempt: i32,
    /// When it was made.
    #[serde(with = "rfc3339")]
    pub attempted_at: DateTime<Utc>,
    /// The receiver's HTTP status, if it answered.
    pub response_status: Option<u16>,
    /// Time to the answer (or the failure), in milliseconds.
    pub latency_ms: i64,
    /// What went wrong, if anything (connection refused, timeout, address not allowed, …).
    pub error: Option<String>,
    /// The first 4 KiB of the receiver's answer.
    pub response_body: Option<String>,
}

/// One event on its way to one endpoint, with every attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeliveryOut {
    /// `dlv_…`
    pub id: DeliveryId,
    /// The endpoint.
    pub endpoint_id: EndpointId,
    /// The event id: the `webhook-id` header of every attempt.
    pub event_id: String,
    /// The event type.
    pub event_type: String,
    /// Where it stands.
    pub status: DeliveryStatus,
    /// When the next attempt is due, while pending.
    #[serde(with = "rfc3339_opt")]
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// When the event was committed.
    #[serde(with = "rfc3339")]
    pub created_at: DateTime<Utc>,
    /// When it succeeded or finally failed.
    #[serde(with = "rfc3339_opt")]
    pub completed_at: Option<DateTime<Utc>>,
    /// Every attempt so far, oldest first.
    pub attempts: Vec<AttemptOut>,
}

/// One page of an endpoint's delivery log, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeliveryPage {
    /// Deliveries, newest first.
    pub data: Vec<DeliveryOut>,
    /// Pass as `cursor` for older deliveries; null on the last page.
    pub next_cursor: Option<String>,
}

/// The body of `POST /v1/webhook-endpoints/{id}/recover`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RecoverIn {
    /// Re-send every failed delivery created at or after this time (RFC 3339).
    #[serde(with = "rfc3339")]
    pub since: DateTime<Utc>,
}

/// The answer of `recover`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RecoverOut {
    /// How many failed deliveries were queued again.
    pub requeued: u64,
}

/// The body of a test delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TestEvent {
    /// A fresh `evt_…` id.
    pub id: String,
    /// Always `webhook.test`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// When the test was requested.
    #[serde(with = "rfc3339")]
    pub occurred_at: DateTime<Utc>,
    /// The endpoint under test.
    pub endpoint_id: EndpointId,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(patterns: &[&str]) -> Result<EventTypeFilter, EndpointFieldError> {
        EventTypeFilter::parse(&patterns.iter().map(|p| (*p).to_owned()).collect::<Vec<_>>())
    }

    #[test]
    fn filters_match_exact_types_and_wildcards() {
        let exact = filter(&["tenant.created"]).unwrap();
        assert!(exact.matches("tenant.created"));
        assert!(!exact.matches("tenant.deleted"));
        let all = filter(&["tenant.*"]).unwrap();
        assert!(EventType::ALL.iter().all(|t| all.matches(t.as_str())));
        assert!(!all.matches("webhook.test"));
    }

    #[test]
    fn unknown_and_empty_filters_are_refused() {
        assert!(filter(&[]).is_err());
        assert!(filter(&["tenant.renamed"]).is_err());
        assert!(filter(&["*"]).is_err());
        assert!(filter(&["billing.*"]).is_err());
        assert_eq!(filter(&["tenant.*", "tenant.*"]).unwrap().patterns(), ["tenant.*"]);
    }

    #[test]
    fn urls_are_http_or_https_without_credentials() {
        assert!(EndpointUrl::parse("https://hooks.example.com/carcosa").is_ok());
        assert!(EndpointUrl::parse("http://127.0.0.1:8080/x?y=1").is_ok());
        for bad in [
            "ftp://example.com",
            "example.com/hook",
            "https://user:pw@example.com",
            "https://example.com/#frag",
            "",
            "http://",
        ] {
            assert!(EndpointUrl::parse(bad).is_err(), "{bad}");
        }
        assert!(EndpointUrl::parse(&format!("https://example.com/{}", "a".repeat(2100))).is_err());
    }

    #[test]
    fn delivery_statuses_parse() {
        for s in [DeliveryStatus::Pending, DeliveryStatus::Succeeded, DeliveryStatus::Failed] {
            assert_eq!(s.as_str().parse::<DeliveryStatus>().unwrap(), s);
        }
        assert!("lost".parse::<DeliveryStatus>().is_err());
    }
}
