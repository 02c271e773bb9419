//! Operations: liveness, readiness, the OpenAPI document and its readable page.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Extension, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;

/// The rendered description, shared by `/openapi.json` and `/docs`.
#[derive(Debug)]
pub struct PublishedSpec {
    /// The OpenAPI document.
    pub json: String,
    /// The page rendered from it.
    pub html: String,
}

/// The operations routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(openapi_json))
        .routes(routes!(docs))
}

/// The answer of the health checks.
#[derive(Debug, Serialize, ToSchema)]
struct Health {
    /// `ok`, or `unavailable` with a reason.
    status: &'static str,
    /// Why the server is not ready, when it is not.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'static str>,
}

/// Liveness: the process is up and serving HTTP.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, description = "Alive", body = Health)))]
async fn healthz() -> Json<Health> {
    Json(Health { status: "ok", reason: None })
}

/// Readiness: the store answers and every migration has been applied.
#[utoipa::path(
    get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "Ready to serve", body = Health),
        (status = 503, description = "The store is unreachable or not migrated", body = Health),
    )
)]
async fn readyz(State(state): State<AppState>) -> Response {
    let (status, reason) = match state.store().ready().await {
        Ok(true) => (StatusCode::OK, None),
        Ok(false) => (StatusCode::SERVICE_UNAVAILABLE, Some("migrations not applied")),
        Err(err) => {
            tracing::warn!(error = %err, "readiness check failed");
            (StatusCode::SERVICE_UNAVAILABLE, Some("store unreachable"))
        }
    };
    let body = Health { status: if reason.is_none() { "ok" } else { "unavailable" }, reason };
    (status, Json(body)).into_response()
}

/// This API's OpenAPI 3.1 document.
#[utoipa::path(get, path = "/openapi.json", tag = "operations", responses((status = 200, description = "The OpenAPI document", content_type = "application/json")))]
async fn openapi_json(Extension(spec): Extension<Arc<PublishedSpec>>) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], spec.json.clone()).into_response()
}

/// This API's reference as a page, self-contained and usable offline.
#[utoipa::path(get, path = "/docs", tag = "operations", responses((status = 200, description = "The API reference", content_type = "text/html")))]
async fn docs(Extension(spec): Extension<Arc<PublishedSpec>>) -> Html<String> {
    Html(spec.html.clone())
}
