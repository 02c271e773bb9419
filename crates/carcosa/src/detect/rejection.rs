//! Why a request gets no tenant, and the problem+json answer for each case.
//!
//! | case | status | code |
//! |---|---|---|
//! | unknown or deleted tenant | 404 | `tenant_not_found` |
//! | suspended tenant | 403 | `tenant_suspended` |
//! | no tenant on a route that needs one | 400 | `tenant_required` |
//! | sources naming different tenants (`must_agree`) | 400 | `tenant_conflict` |
//! | the directory (or a JWKS endpoint) is down | 503 | `tenant_lookup_unavailable` |
//! | a bearer token that is not valid | 401 | `tenant_token_invalid` |
//! | a tenant header the caller may not use | 403 | `tenant_forbidden` |
//!
//! Replace any of them with [`RejectionHandler`] (or `TenantLayer::on_rejection`).

use std::fmt;
use std::sync::Arc;

use axum::http::header::{CONTENT_TYPE, WWW_AUTHENTICATE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use carcosa_core::Problem;
use carcosa_core::problem::CONTENT_TYPE as PROBLEM_JSON;

use super::{CurrentTenant, Identifier};

/// Why the detection layer answers instead of the app.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Rejection {
    /// No tenant has this identifier, or the tenant was deleted.
    #[error("no tenant has the {0}")]
    NotFound(Identifier),
    /// The tenant exists but is suspended.
    #[error("tenant `{}` is suspended", .0.slug)]
    Suspended(CurrentTenant),
    /// The route needs a tenant and the request names none.
    #[error("the request names no tenant")]
    Required,
    /// In `must_agree` mode, two sources named different tenants.
    #[error("the request names two different tenants: the {first} and the {second}")]
    Conflict {
        /// What the first source found.
        first: Identifier,
        /// What a later source found.
        second: Identifier,
    },
    /// The tenant could not be looked up (the cause is logged, never sent).
    #[error("tenant lookup is unavailable: {0}")]
    Unavailable(String),
    /// A bearer token was sent but is not valid (bad signature, expired, wrong audience…).
    #[error("the bearer token is not valid: {0}")]
    InvalidToken(String),
    /// The request may not name this tenant (a header that disagrees with the caller's identity).
    #[error("{0}")]
    Forbidden(String),
}

impl Rejection {
    /// The HTTP status.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        match self {
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Suspended(_) | Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::Required | Self::Conflict { .. } => StatusCode::BAD_REQUEST,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::InvalidToken(_) => StatusCode::UNAUTHORIZED,
        }
    }

    /// The stable code, as in the problem's `code` and `type`.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotFound(_) => "tenant_not_found",
            Self::Suspended(_) => "tenant_suspended",
            Self::Required => "tenant_required",
            Self::Conflict { .. } => "tenant_conflict",
            Self::Unavailable(_) => "tenant_lookup_unavailable",
            Self::InvalidToken(_) => "tenant_token_invalid",
            Self::Forbidden(_) => "tenant_forbidden",
        }
    }

    /// The problem details sent by default.
    #[must_use]
    pub fn problem(&self) -> Problem {
        let (title, detail) = match self {
            Self::NotFound(_) => ("Tenant not found", format!("{self}.")),
            Self::Suspended(_) => ("Tenant suspended", format!("{self}; contact the service's support.")),
            Self::Required => (
                "Tenant required",
                "This route needs a tenant: name one by host, header, path, query or token.".to_owned(),
            ),
            Self::Conflict { .. } => ("Tenant conflict", format!("{self}; name one tenant only.")),
            Self::Unavailable(_) => (
                "Tenant lookup unavailable",
                "The tenant could not be looked up just now; retry shortly.".to_owned(),
            ),
            Self::InvalidToken(_) => ("Invalid token", format!("{self}.")),
            Self::Forbidden(_) => ("Tenant forbidden", format!("{self}.")),
        };
        Problem::new(self.status().as_u16(), self.code(), title, detail)
    }

    /// The default response: the problem as `application/problem+json`.
    #[must_use]
    pub fn to_response(&self) -> Response {
        let body = serde_json::to_vec(&self.problem()).unwrap_or_default();
        let mut response =
            (self.status(), [(CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON))], body).into_response();
        if matches!(self, Self::InvalidToken(_)) {
            response
                .headers_mut()
                .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer error=\"invalid_token\""));
        }
        response
    }
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        self.to_response()
    }
}

/// Turns a [`Rejection`] into the response sent. The default sends [`Rejection::to_response`];
/// yours can match the cases it cares about and fall back to that for the others:
///
/// ```
/// use axum::response::IntoResponse;
/// use carcosa::detect::{Rejection, RejectionHandler};
///
/// let handler = RejectionHandler::new(|rejection: &Rejection| match rejection {
///     Rejection::NotFound(_) => axum::response::Redirect::to("https://example.com/signup").into_response(),
///     other => other.to_response(),
/// });
/// ```
#[derive(Clone)]
pub struct RejectionHandler(Arc<dyn Fn(&Rejection) -> Response + Send + Sync>);

impl RejectionHandler {
    /// A handler calling `respond`.
    pub fn new(respond: impl Fn(&Rejection) -> Response + Send + Sync + 'static) -> Self {
        Self(Arc::new(respond))
    }

    /// The response for `rejection`.
    #[must_use]
    pub fn respond(&self, rejection: &Rejection) -> Response {
        (self.0)(rejection)
    }
}

impl Default for RejectionHandler {
    fn default() -> Self {
        Self::new(Rejection::to_response)
    }
}

impl fmt::Debug for RejectionHandler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RejectionHandler(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::testing::tenant;

    async fn body(response: Response) -> (StatusCode, Option<String>, serde_json::Value) {
        let status = response.status();
        let content_type = response.headers().get(CONTENT_TYPE).map(|v| v.to_str().unwrap().to_owned());
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 16).await.unwrap();
        (status, content_type, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn every_rejection_is_a_problem_with_its_status_and_code() {
        let cases = [
            (Rejection::NotFound(Identifier::Slug("ghost".into())), 404, "tenant_not_found"),
            (Rejection::Suspended(tenant("acme").into()), 403, "tenant_suspended"),
            (Rejection::Required, 400, "tenant_required"),
            (
                Rejection::Conflict {
                    first: Identifier::Slug("a".into()),
                    second: Identifier::Slug("b".into()),
                },
                400,
                "tenant_conflict",
            ),
            (Rejection::Unavailable("db down at 10.0.0.5".into()), 503, "tenant_lookup_unavailable"),
            (Rejection::InvalidToken("expired".into()), 401, "tenant_token_invalid"),
            (Rejection::Forbidden("not yours".into()), 403, "tenant_forbidden"),
        ];
        for (rejection, status, code) in cases {
            let (got_status, content_type, problem) = body(rejection.to_response()).await;
            assert_eq!(got_status.as_u16(), status, "{code}");
            assert_eq!(content_type.as_deref(), Some("application/problem+json"));
            assert_eq!(problem["type"], format!("urn:carcosa:problem:{code}"));
            assert_eq!(problem["code"], code);
            assert_eq!(problem["status"], status);
            assert!(problem["title"].as_str().is_some_and(|t| !t.is_empty()));
            assert!(problem["detail"].as_str().is_some_and(|d| !d.is_empty()));
            assert!(!problem["detail"].as_str().unwrap().contains("10.0.0.5"), "causes are not sent");
        }
    }

    #[tokio::test]
    async fn details_name_the_tenant_and_tokens_get_a_challenge() {
        let (_, _, problem) = body(Rejection::NotFound(Identifier::Slug("ghost".into())).to_response()).await;
        assert_eq!(problem["detail"], "no tenant has the slug `ghost`.");
        let response = Rejection::InvalidToken("expired".into()).to_response();
        assert_eq!(response.headers()[WWW_AUTHENTICATE], "Bearer error=\"invalid_token\"");
    }
}
