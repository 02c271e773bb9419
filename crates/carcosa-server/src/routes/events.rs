//! `/v1/events`: the changes feed apps sync from.

use axum::Json;
use axum::extract::State;
use carcosa_core::api::EventPage;
use carcosa_core::{EventCursor, Problem};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::{Authorized, scope};
use crate::error::ApiError;
use crate::extract::{ApiQuery, cursor_param};
use crate::routes::tenants::page_limit;

/// The feed routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_events))
}

/// Query parameters of `GET /v1/events`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct FeedQuery {
    /// The `seq` of the last event you have (`next_cursor` of the previous page, or `as_of` of a
    /// tenant listing); absent or empty = from the oldest retained event.
    #[param(pattern = "^[0-9]*$")]
    after: Option<String>,
    /// Page size, 1–1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

/// Read the changes feed.
///
/// Every tenant change of the project, in commit order, numbered 1, 2, 3, … with no gap. Store
/// `next_cursor` with the data you applied and pass it as `after` next time. A cursor older than
/// the retention period (30 days by default) gets `410 cursor_expired`: run a full sync.
#[utoipa::path(
    get, path = "/v1/events", tag = "events",
    params(FeedQuery),
    responses(
        (status = 200, description = "One page of events", body = EventPage),
        (status = 400, description = "`invalid_query`, `invalid_cursor`", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "`cursor_expired`: the events after this cursor are gone; run a full sync", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = ["events:read"]))
)]
async fn list_events(
    State(state): State<AppState>,
    auth: Authorized<scope::EventsRead>,
    ApiQuery(query): ApiQuery<FeedQuery>,
) -> Result<Json<EventPage>, ApiError> {
    let limit = page_limit(query.limit)?;
    let after = cursor_param(query.after.as_deref(), EventCursor::parse)?;
    let (data, next_cursor, has_more) = state.store().list_events(auth.project(), after, limit).await?;
    Ok(Json(EventPage { data, next_cursor, has_more }))
}
