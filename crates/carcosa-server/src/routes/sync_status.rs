//! `/v1/sync-status`: each synced app reports where it stands; operators see every app's lag.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use carcosa_core::Problem;
use carcosa_core::sync_status::{SyncStatusIn, SyncStatusList};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::{Authorized, scope};
use crate::error::ApiError;
use crate::extract::ApiJson;

/// The sync-status routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(report, list))
}

/// Report an app's sync state.
///
/// Sent by the `carcosa` library and the `carcosa sync` sidecar after each run: the instance's
/// name, the feed position it has applied, its last success and last error. Needs the
/// `events:read` scope, which every syncing app's key has.
#[utoipa::path(
    post, path = "/v1/sync-status", tag = "sync",
    request_body = SyncStatusIn,
    responses(
        (status = 204, description = "Recorded"),
        (status = 400, description = "`malformed_json`", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "`payload_too_large`", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "`unsupported_media_type`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`invalid_body`, `invalid_instance`", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = ["events:read"]))
)]
async fn report(
    State(state): State<AppState>,
    auth: Authorized<scope::EventsRead>,
    ApiJson(body): ApiJson<SyncStatusIn>,
) -> Result<StatusCode, ApiError> {
    let status = body.validate().map_err(|e| {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_instance", "Invalid field", e.0)
    })?;
    state.store().report_sync_status(auth.project(), &status).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Every synced app's state.
///
/// One entry per instance that reported, with its lag: how many events of the feed it has not
/// applied yet.
#[utoipa::path(
    get, path = "/v1/sync-status", tag = "sync",
    responses((status = 200, description = "Every instance, by name", body = SyncStatusList)),
    security(("api_key" = ["events:read"]))
)]
async fn list(
    State(state): State<AppState>,
    auth: Authorized<scope::EventsRead>,
) -> Result<Json<SyncStatusList>, ApiError> {
    Ok(Json(state.store().list_sync_status(auth.project()).await?))
}
