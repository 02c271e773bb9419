//! `/v1/audit-log`: who changed what, when, from where.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use carcosa_core::audit::{ActorFilter, AuditAction, AuditPage, parse_time};
use carcosa_core::{AuditCursor, Problem};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::{Authorized, scope};
use crate::error::ApiError;
use crate::extract::{ApiQuery, cursor_param};
use crate::routes::tenants::page_limit;
use crate::store::AuditFilter;

/// The audit-log routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_audit_log))
}

/// Query parameters of `GET /v1/audit-log`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct AuditQuery {
    /// Only this actor's entries: `key:<key id>`, `cli:<user>`, `operator:<id>`, or an id of any
    /// kind.
    #[param(max_length = 209)]
    pub(crate) actor: Option<String>,
    /// Only this action, e.g. `tenant.update`.
    #[param(value_type = Option<AuditAction>)]
    pub(crate) action: Option<String>,
    /// Only entries about this object (a tenant, endpoint, delivery or project id, or a key id).
    #[param(max_length = 200)]
    pub(crate) target: Option<String>,
    /// Only entries at or after this time (RFC 3339; encode `+` as `%2B`).
    pub(crate) since: Option<String>,
    /// Only entries before this time (RFC 3339).
    pub(crate) until: Option<String>,
    /// Page size, 1–1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub(crate) limit: Option<u32>,
    /// `next_cursor` of the previous page (empty = the newest entries).
    pub(crate) cursor: Option<String>,
}

/// Read the audit log.
///
/// Every change made to the project — through the API, the `carcosa` CLI or the dashboard — with
/// who made it (`actor`), what was done (`action`), to which object (`target`), the object's
/// public state before and after (never a secret), the request id, the client's address and user
/// agent. Newest first; keyset pagination with `cursor`. Entries are kept for
/// `audit_retention_days` (365 by default).
#[utoipa::path(
    get, path = "/v1/audit-log", tag = "audit",
    params(AuditQuery),
    responses(
        (status = 200, description = "One page of entries, newest first", body = AuditPage),
        (status = 400, description = "`invalid_query`, `invalid_cursor`, `invalid_actor`, `invalid_action`, `invalid_time`", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = ["audit:read"]))
)]
async fn list_audit_log(
    State(state): State<AppState>,
    auth: Authorized<scope::AuditRead>,
    ApiQuery(query): ApiQuery<AuditQuery>,
) -> Result<Json<AuditPage>, ApiError> {
    let limit = page_limit(query.limit)?;
    let before = cursor_param(query.cursor.as_deref(), AuditCursor::decode)?;
    let filter = filter(query)?;
    Ok(Json(state.store().list_audit(auth.project(), &filter, before, limit).await?))
}

/// Checks the filters; each mistake has its own code. An empty filter (`actor=`, as an HTML form
/// sends it) is no filter, like an empty `cursor`.
/// The checked filter of an audit query (for the API and the dashboard).
pub(crate) fn filter(query: AuditQuery) -> Result<AuditFilter, ApiError> {
    let bad = |code, detail: String| ApiError::new(StatusCode::BAD_REQUEST, code, "Invalid filter", detail);
    let given = |text: Option<String>| text.filter(|t| !t.is_empty());
    let query = AuditQuery {
        actor: given(query.actor),
        action: given(query.action),
        target: given(query.target),
        since: given(query.since),
        until: given(query.until),
        ..query
    };
    let actor = query
        .actor
        .as_deref()
        .map(ActorFilter::parse)
        .transpose()
        .map_err(|e| bad("invalid_actor", e.to_string()))?;
    let action = query
        .action
        .as_deref()
        .map(str::parse::<AuditAction>)
        .transpose()
        .map_err(|e| bad("invalid_action", e.to_string()))?;
    if query.target.as_ref().is_some_and(|t| t.chars().count() > 200 || t.contains('\0')) {
        return Err(ApiError::invalid_query("target is an id of at most 200 characters"));
    }
    let time = |text: Option<String>| {
        text.as_deref().map(parse_time).transpose().map_err(|e| bad("invalid_time", e.to_string()))
    };
    let since = time(query.since)?;
    let until = time(query.until)?;
    if let (Some(since), Some(until)) = (since, until)
        && since > until
    {
        return Err(bad("invalid_time", format!("since ({since}) is after until ({until})")));
    }
    Ok(AuditFilter { actor, action, target: query.target, since, until })
}
