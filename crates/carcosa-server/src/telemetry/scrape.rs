//! `GET /metrics`: the Prometheus text exposition of everything the process recorded.
//!
//! Open by default, like most exporters: it shows counts and ids, never a secret. With
//! `metrics_token` set, a scrape must send `Authorization: Bearer <token>` (Prometheus:
//! `authorization: {credentials: …}`). Not part of the OpenAPI document, which describes the
//! API for its clients; `docs/observability.md` describes this route.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use crate::AppState;
use crate::error::ApiError;

/// The content type of the Prometheus text format.
const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The `/metrics` handler.
pub(crate) async fn render(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(token) = state.metrics_token()
        && !bearer_matches(&headers, token)
    {
        return ApiError::unauthorized("send the metrics token as `Authorization: Bearer …`").into_response();
    }
    let Some(handle) = super::handle() else {
        return ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "Not found",
            "metrics are not exported by this process (another metrics recorder is installed)",
        )
        .into_response();
    };
    state.gauges().refresh(state.store()).await;
    ([(header::CONTENT_TYPE, HeaderValue::from_static(TEXT_FORMAT))], handle.render()).into_response()
}

/// Whether the request carries `Authorization: Bearer <token>`, compared in constant time.
fn bearer_matches(headers: &HeaderMap, token: &str) -> bool {
    let sent = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
        .unwrap_or_default();
    !sent.is_empty() && bool::from(sent.as_bytes().ct_eq(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_token_opens_the_route() {
        let with = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
            headers
        };
        assert!(bearer_matches(&with("Bearer s3cret"), "s3cret"));
        assert!(!bearer_matches(&with("Bearer s3cre"), "s3cret"));
        assert!(!bearer_matches(&with("Basic s3cret"), "s3cret"));
        assert!(!bearer_matches(&HeaderMap::new(), "s3cret"));
    }
}
