//! Extractors that speak the API's error format: JSON bodies, query strings, paths, the
//! `If-Match` and `Idempotency-Key` headers. axum's own extractors answer in plain text; these
//! answer every rejection with problem+json and a stable code.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// A JSON request body: `Content-Type: application/json` (or `…+json`), within the size limit,
/// syntactically valid (else 400 `malformed_json`) and of the expected shape (else 422
/// `invalid_body`, naming the field).
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|v| v.trim().to_ascii_lowercase())
            .is_some_and(|v| {
                v == "application/json" || (v.starts_with("application/") && v.ends_with("+json"))
            });
        if !is_json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "Unsupported media type",
                "send the body as JSON with Content-Type: application/json",
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    "Payload too large",
                    "the request body is larger than the server accepts",
                )
            } else {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "unreadable_body",
                    "Unreadable body",
                    "the request body could not be read",
                )
            }
        })?;
        serde_json::from_slice(&bytes).map(ApiJson).map_err(|err| {
            use serde_json::error::Category;
            match err.classify() {
                Category::Data => ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_body",
                    "Invalid request body",
                    err.to_string(),
                ),
                Category::Syntax | Category::Eof | Category::Io => ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "malformed_json",
                    "Malformed JSON",
                    format!("the body is not valid JSON: {err}"),
                ),
            }
        })
    }
}

/// Query parameters; a wrong type or an unknown value is 400 `invalid_query`.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(value)| ApiQuery(value))
            .map_err(|rejection| ApiError::invalid_query(rejection.body_text()))
    }
}

/// One path parameter, as text; undecodable text is 400 `invalid_path`.
#[derive(Debug)]
pub struct ApiPath(pub String);

impl<S: Send + Sync> FromRequestParts<S> for ApiPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<String>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(value)| ApiPath(value))
            .map_err(|rejection| {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_path", "Invalid path", rejection.body_text())
            })
    }
}

/// The version named by `If-Match` (`"3"`, `W/"3"` or `3`); `*` and absence mean "any".
#[derive(Debug, Clone, Copy)]
pub struct IfMatch(pub Option<i64>);

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let Some(value) = parts.headers.get(header::IF_MATCH) else {
            return Ok(Self(None));
        };
        let text = value.to_str().unwrap_or_default().trim();
        if text == "*" {
            return Ok(Self(None));
        }
        let tag = text.strip_prefix("W/").unwrap_or(text);
        let tag = tag.strip_prefix('"').and_then(|t| t.strip_suffix('"')).unwrap_or(tag);
        tag.parse::<i64>().ok().filter(|v| *v >= 1).map(|v| Self(Some(v))).ok_or_else(|| {
            ApiError::invalid_header(format!(
                "If-Match must be a tenant's ETag such as \"3\" (got {:?})",
                text.chars().take(40).collect::<String>()
            ))
        })
    }
}

/// The `Idempotency-Key` header: 1–255 visible ASCII characters, if present.
#[derive(Debug, Clone)]
pub struct IdempotencyKey(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let Some(value) = parts.headers.get("idempotency-key") else {
            return Ok(Self(None));
        };
        let text = value.to_str().ok().map(str::trim).unwrap_or_default();
        let ok = (1..=255).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_graphic());
        if !ok {
            return Err(ApiError::invalid_header(
                "Idempotency-Key must be 1 to 255 visible ASCII characters",
            ));
        }
        Ok(Self(Some(text.to_owned())))
    }
}

/// An ETag header value for a tenant version.
#[must_use]
pub fn etag(version: i64) -> String {
    format!("\"{version}\"")
}

/// Reads an optional cursor parameter with `parse`; empty means absent, anything unreadable is
/// 400 `invalid_cursor`.
pub fn cursor_param<T, E: std::fmt::Display>(
    text: Option<&str>,
    parse: impl FnOnce(&str) -> Result<T, E>,
) -> Result<Option<T>, ApiError> {
    text.filter(|t| !t.is_empty()).map(parse).transpose().map_err(|e| {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_cursor", "Invalid cursor", e.to_string())
    })
}
