//! The one error type handlers return, and how it becomes problem+json.
//!
//! Error policy: only an [`ApiError`] reaches a client, always as `application/problem+json` with
//! a stable `code`. Client mistakes get a 4xx that says what to fix. Anything else (the database
//! failing, a bug) is logged with its cause and answered with an opaque 500 or 503: internal
//! messages never leave the server.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use carcosa_core::Problem;
use carcosa_core::api::FieldError;
use carcosa_core::problem::CONTENT_TYPE;

use crate::store::StoreError;

/// An error answer: status, stable code, title and detail.
#[derive(Debug, Clone)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    title: &'static str,
    detail: String,
}

impl ApiError {
    /// An error with every part given.
    pub fn new(
        status: StatusCode,
        code: &'static str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        Self { status, code, title, detail: detail.into() }
    }

    /// 400 `invalid_query`.
    pub fn invalid_query(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_query", "Invalid query parameter", detail)
    }

    /// 400 `invalid_header`.
    pub fn invalid_header(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_header", "Invalid header", detail)
    }

    /// 401 `unauthorized`.
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", "Missing or invalid API key", detail)
    }

    /// 404 `not_found`.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "Not found", detail)
    }

    /// 500 `internal_error`; logs `cause`, which the client never sees.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "Internal server error",
            "the server failed to handle this request; it has been logged",
        )
    }

    /// The HTTP status.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The stable code.
    #[must_use]
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// The problem document.
    #[must_use]
    pub fn problem(&self) -> Problem {
        Problem::new(self.status.as_u16(), self.code, self.title, self.detail.clone())
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status.as_u16(), self.code, self.detail)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.problem()).unwrap_or_default();
        let mut response = (self.status, body).into_response();
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
        response
    }
}

impl From<FieldError> for ApiError {
    fn from(err: FieldError) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            err.code,
            "Invalid field",
            format!("{}: {}", err.field, err.message),
        )
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound => Self::not_found("no such tenant in this project"),
            StoreError::SlugTaken(slug) => Self::new(
                StatusCode::CONFLICT,
                "slug_taken",
                "Slug taken",
                format!("another tenant of this project already has the slug `{slug}`"),
            ),
            StoreError::SlugReserved(slug) => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "slug_reserved",
                "Slug reserved",
                format!("the slug `{slug}` is reserved; choose another"),
            ),
            StoreError::VersionConflict { expected, current } => Self::new(
                StatusCode::PRECONDITION_FAILED,
                "version_conflict",
                "Version conflict",
                format!(
                    "If-Match expected version {expected}, but the tenant is at version {current}; read it again and retry"
                ),
            ),
            StoreError::TenantDeleted => Self::new(
                StatusCode::CONFLICT,
                "tenant_deleted",
                "Tenant deleted",
                "a deleted tenant cannot be changed",
            ),
            StoreError::InvalidMetadata(message) => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_metadata",
                "Invalid field",
                format!("metadata: {message}"),
            ),
            StoreError::DeliveryInFlight => Self::new(
                StatusCode::CONFLICT,
                "delivery_in_flight",
                "Delivery in flight",
                "the delivery is being attempted right now; resend it once the attempt is recorded",
            ),
            StoreError::UnstorableText => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_text",
                "Invalid text",
                "text cannot contain the NUL character (\\u0000)",
            ),
            StoreError::EmailTaken => Self::new(
                StatusCode::CONFLICT,
                "email_taken",
                "Email taken",
                "another operator already has this email address",
            ),
            StoreError::IdempotencyMismatch => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
                "Idempotency key reused",
                "this Idempotency-Key was already used with a different request body",
            ),
            StoreError::CursorExpired { requested, oldest } => Self::new(
                StatusCode::GONE,
                "cursor_expired",
                "Cursor expired",
                format!(
                    "events after {requested} are past retention (the feed now starts after {oldest}); run a full sync"
                ),
            ),
            StoreError::CursorAhead { requested, newest } => Self::new(
                StatusCode::GONE,
                "cursor_expired",
                "Cursor expired",
                format!(
                    "the cursor {requested} is ahead of the newest event ({newest}); the feed was reset, run a full sync"
                ),
            ),
            StoreError::Database(sqlx::Error::PoolTimedOut) => {
                tracing::error!("database pool timed out");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "Service unavailable",
                    "the database is busy or unreachable; retry shortly",
                )
            }
            other => Self::internal(&other),
        }
    }
}
