//! `/v1/webhook-endpoints` and `/v1/deliveries`: where events are pushed, and what became of them.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use carcosa_core::endpoint::{
    DeliveryOut, DeliveryPage, DeliveryStatus, EndpointFieldError, EndpointIn, EndpointOut, EndpointPatch,
    EndpointUrl, EndpointWithSecret, EventTypeFilter, RecoverIn, RecoverOut, TEST_EVENT_TYPE, TestEvent,
    parse_description,
};
use carcosa_core::webhook::WebhookSecret;
use carcosa_core::{DeliveryId, EndpointId, EventId, Problem, ProjectId};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::audit::AuditContext;
use crate::auth::{Authorized, scope};
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, ApiQuery, cursor_param};
use crate::routes::tenants::page_limit;
use crate::ssrf::GuardError;
use crate::store::{EndpointChanges, EndpointRecord, NewEndpoint};

/// The webhook routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_endpoint, list_endpoints))
        .routes(routes!(get_endpoint, update_endpoint, delete_endpoint))
        .routes(routes!(rotate_secret))
        .routes(routes!(send_test))
        .routes(routes!(list_deliveries))
        .routes(routes!(recover))
        .routes(routes!(resend))
}

impl From<EndpointFieldError> for ApiError {
    fn from(err: EndpointFieldError) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, err.code, "Invalid field", err.message)
    }
}

impl From<GuardError> for ApiError {
    fn from(err: GuardError) -> Self {
        let code = match err {
            GuardError::NotAllowed { .. } => "url_not_allowed",
            GuardError::Unresolvable { .. } => "url_unresolvable",
        };
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, "Endpoint URL refused", err.to_string())
    }
}

/// Checks a URL's shape and, after resolving it, its addresses.
async fn checked_url(state: &AppState, text: &str) -> Result<String, ApiError> {
    let url = EndpointUrl::parse(text)?;
    state.address_policy().check_url(url.url()).await?;
    Ok(url.as_str().to_owned())
}

fn checked_filter(patterns: Option<&Vec<String>>) -> Result<Option<Vec<String>>, ApiError> {
    Ok(patterns.map(|p| EventTypeFilter::parse(p)).transpose()?.map(|f| f.patterns().to_vec()))
}

pub(crate) fn endpoint_id(text: &str) -> Result<EndpointId, ApiError> {
    EndpointId::parse(text).map_err(|_| ApiError::not_found("no such webhook endpoint in this project"))
}

pub(crate) fn not_found_endpoint(err: crate::store::StoreError) -> ApiError {
    match err {
        crate::store::StoreError::NotFound => ApiError::not_found("no such webhook endpoint in this project"),
        other => other.into(),
    }
}

fn with_secret(record: EndpointRecord, secret: &WebhookSecret) -> EndpointWithSecret {
    EndpointWithSecret { endpoint: record.endpoint, secret: secret.expose() }
}

/// Create a webhook endpoint.
///
/// Carcosa POSTs every matching tenant event to `url`, signed as Standard Webhooks describe. The
/// answer carries the signing `secret` (`whsec_…`): store it, it is shown only here and on
/// rotation. The URL must resolve to public addresses only (the SSRF guard), unless the server
/// allows private ones.
#[utoipa::path(
    post, path = "/v1/webhook-endpoints", tag = "webhooks",
    request_body = EndpointIn,
    responses(
        (status = 201, description = "Created, with its signing secret", body = EndpointWithSecret),
        (status = 400, description = "`malformed_json`", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "`payload_too_large`", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "`unsupported_media_type`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`invalid_body`, `invalid_url`, `url_not_allowed`, `url_unresolvable`, `invalid_event_types`, `invalid_description`", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = ["webhooks:manage"]))
)]
async fn create_endpoint(
    State(state): State<AppState>,
    auth: Authorized<scope::WebhooksManage>,
    ApiJson(body): ApiJson<EndpointIn>,
) -> Result<Response, ApiError> {
    let created = create(&state, auth.project(), body, &auth.audit()).await?;
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

/// Creates an endpoint of `project` with a new signing secret (for the API and the dashboard).
pub(crate) async fn create(
    state: &AppState,
    project: ProjectId,
    body: EndpointIn,
    audit: &AuditContext,
) -> Result<EndpointWithSecret, ApiError> {
    let description = parse_description(body.description.as_deref())?;
    let event_types = checked_filter(body.event_types.as_ref())?;
    let url = checked_url(state, &body.url).await?;
    let secret = WebhookSecret::generate();
    let new = NewEndpoint {
        url,
        description,
        event_types,
        enabled: body.enabled.unwrap_or(true),
        secret: state.secrets().seal(secret.as_bytes()),
    };
    let record = state.store().create_endpoint(project, new, audit).await?;
    tracing::info!(endpoint_id = %record.endpoint.id, "webhook endpoint created");
    Ok(with_secret(record, &secret))
}

/// The list of a project's endpoints.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EndpointList {
    /// Every endpoint, oldest first.
    pub data: Vec<EndpointOut>,
}

/// List webhook endpoints.
#[utoipa::path(
    get, path = "/v1/webhook-endpoints", tag = "webhooks",
    responses((status = 200, description = "Every endpoint of the project", body = EndpointList)),
    security(("api_key" = ["webhooks:manage"]))
)]
async fn list_endpoints(
    State(state): State<AppState>,
    auth: Authorized<scope::WebhooksManage>,
) -> Result<Json<EndpointList>, ApiError> {
    let records = state.store().list_endpoints(auth.project()).await?;
    Ok(Json(EndpointList { data: records.into_iter().map(|r| r.endpoint).collect() }))
}

/// Get a webhook endpoint.
#[utoipa::path(
    get, path = "/v1/webhook-endpoints/{id}", tag = "webhooks",
    params(("id" = String, Path, description = "The endpoint id (`ep_…`)")),
    responses(
        (status = 200, description = "The endpoint", body = EndpointOut),
        (status = 404, description = "`not_found`", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = ["webhooks:manage"]))
)]
async fn get_endpoint(
    State(state): State<AppState>,
    auth: Authorized<scope::WebhooksManage>,
    ApiPath(id): ApiPath,
) -> Result<Json<EndpointOut>, ApiError> {
    let record =
        state.store().get_endpoint(auth.project(), endpoint_id(&id)?).await.map_err(not_found_endpoint)?;
    Ok(Json(record.endpoint))
}

/// Update a webhook endpoint.
///
/// `enabled: true` re-enables an endpoint Carcosa disabled (after a 410, or failing for too long);
/// deliveries held meanwhile are sent.
#[utoipa::path(
    patch, path = "/v1/webhook-endpoints/{id}", tag = "webhooks",
    request_body = EndpointPatch,
    params(("id" = String, Path, description = "The endpoint id (`ep_…`)")),
    responses(
        (status = 200, description = "The updated endpoint", body = EndpointOut),
        (status = 400, description = "`malformed_json`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "`payload_too_large`", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "`unsupported_media_type`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`invalid_body`, `invalid_url`, `url_not_allowed`, `url_unresolvable`, `invalid_event_types`, `invalid_description`", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = ["webhooks:manage"]))
)]
async fn update_endpoint(
    State(state): State<AppState>,
    auth: Authorized<scope::WebhooksManage>,
    ApiPath(id): ApiPath,
    ApiJson(body): ApiJson<EndpointPatch>,
) -> Result<Json<EndpointOut>, ApiError> {
    Ok(Json(update(&state, auth.project(), endpoint_id(&id)?, body, &auth.audit()).await?))
}

/// Changes an endpoint of `project` (for the API and the dashboard).
pub(crate) async fn update(
    state: &AppState,
    project: ProjectId,
    id: EndpointId,
    body: EndpointPatch,
    audit: &AuditContext,
) -> Result<EndpointOut, ApiError> {
    let description = body.description.map(|d| parse_description(d.as_deref())).transpose()?;
    let event_types = body.event_types.map(|t| checked_filter(t.as_ref())).transpose()?;
    let url = match body.url {
        Some(url) => Some(checked_url(state, &url).await?),
        None => None,
    };
    let changes = EndpointChanges { url, description, event_types, enabled: body.enabled };
    let before = state.store().get_endpoint(project, id).await.map_err(not_found_endpoint)?;
    let record =
        state.store().update_endpoint(project, id, changes, audit).await.map_err(not_found_endpoint)?;
    if before.endpoint.enabled != record.endpoint.enabled {
        let what = if record.endpoint.enabled { "enabled" } else { "disabled" };
        tracing::info!(endpoint_id = %id, enabled = record.endpoint.enabled, actor = %audit.actor.id, "webhook endpoint {what}");
    }
    Ok(record.endpoint)
}

/// Delete a webhook endpoint and its delivery log.
#[utoipa::path(
    delete, path = "/v1/webhook-endpoints/{id}", tag = "webhooks",
    params(("id" = String, Path, description = "The endpoint id (`ep_…`)")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "`not_found`", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = ["webhooks:manage"]))
)]
async fn delete_endpoint(
    State(state): State<AppState>,
    auth: Authorized<scope::WebhooksManage>,
    ApiPath(id): ApiPath,
) -> Result<StatusCode, ApiError> {
    let id = endpoint_id(&id)?;
    state.store().delete_endpoint(auth.project(), id, &auth.audit()).await.map_err(not_found_endpoint)?;
    tracing::info!(endpoint_id = %id, "webhook endpoint deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// Rotate an endpoint's signing secret.
///
/// The new secret signs from now on; the previous one keeps signing alongside it for the grace
/// period (24 hours by default), so `webhook-signature` carries both until the receiver has
/// switched. Rotating again within the grace period retires the oldest secret at once.
#[utoipa::path(
    post, path = "/v1/webhook-endpoints/{id}/rotate-secret", tag = "webhooks",
    params(("id" = String, Path, description = "The endpoint id (`ep_…`)")),
    responses(
        (status = 200, description = "The endpoint with its new secret", body = EndpointWithSecret),
        (status = 404, description = "`not_found`", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = ["webhooks:manage"]))
)]
async fn rotate_secret(
    State(state): State<AppState>,
    auth: Authorized<scope::WebhooksManage>,
    ApiPath(id): ApiPath,
) -> Result<Json<EndpointWithSecret>, ApiError> {
    Ok(Json(rotate(&state, auth.project(), endpoint_id(&id)?, &auth.audit()).await?))
}

/// Gives an endpoint of `project` a new signing secret; the old one keeps signing for the
/// grace period (for the API and the dashboard).
pub(crate) async fn rotate(
    state: &AppState,
    project: ProjectId,
    id: EndpointId,
    audit: &AuditContext,
) -> Result<EndpointWithSecret, ApiError> {
    let secret = WebhookSecret::generate();
    let until = chrono::Utc::now() + state.secret_grace();
    let record = state
        .store()
        .rotate_endpoint_secret(project, id, state.secrets().seal(secret.as_bytes()), until, audit)
        .await
        .map_err(not_found_endpoint)?;
    tracing::info!(endpoint_id = %id, previous_valid_until = %until, "webhook secret rotated");
    Ok(with_secret(record, &secret))
}

/// What `send_test` queued.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TestQueued {
    /// The delivery, to follow in the log.
    pub delivery_id: DeliveryId,
    /// The body that will be sent.
    pub event: TestEvent,
}

/// Send a test event.
///
/// Queues a `webhook.test` delivery to this endpoint alone, outside the changes feed:
/// `{"id": "evt_…", "type": "webhook.test", "occurred_at": …, "endpoint_id": …}`, signed like any
/// other. Follow it in the delivery log.
#[utoipa::path(
    post, path = "/v1/webhook-endpoints/{id}/test", tag = "webhooks",
    params(("id" = String, Path, description = "The endpoint id (`ep_…`)")),
    responses(
        (status = 202, description = "Queued", body = TestQueued),
        (status = 404, description = "`not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`endpoint_disabled`", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = ["webhooks:manage"]))
)]
async fn send_test(
    State(state): State<AppState>,
    auth: Authorized<scope::WebhooksManage>,
    ApiPath(id): ApiPath,
) -> Result<Response, ApiError> {
    let queued = queue_test(&state, auth.project(), endpoint_id(&id)?, &auth.audit()).await?;
    Ok((StatusCode::ACCEPTED, Json(queued)).into_response())
}

/// Queues a test event for an enabled endpoint of `project` (for the API and the dashboard).
pub(crate) async fn queue_test(
    state: &AppState,
    project: ProjectId,
    id: EndpointId,
    audit: &AuditContext,
) -> Result<TestQueued, ApiError> {
    let record = state.store().get_endpoint(project, id).await.map_err(not_found_endpoint)?;
    if !record.endpoint.enabled {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "endpoint_disabled",
            "Endpoint disabled",
            "enable the endpoint before sending it a test event",
        ));
    }
    let event = TestEvent {
        id: EventId::generate().to_string(),
        event_type: TEST_EVENT_TYPE.to_owned(),
        occurred_at: crate::store::now(),
        endpoint_id: id,
    };
    let payload = serde_json::to_string(&event).map_err(|e| ApiError::internal(&e))?;
    let delivery_id =
        state.store().enqueue_delivery(project, id, &event.id, TEST_EVENT_TYPE, &payload, audit).await?;
    Ok(TestQueued { delivery_id, event })
}

/// Query parameters of the delivery log.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct DeliveryQuery {
    /// `pending`, `succeeded` or `failed`.
    #[param(value_type = Option<DeliveryStatus>)]
    status: Option<String>,
    /// `next_cursor` of the previous page (empty = the first page).
    cursor: Option<String>,
    /// Page size, 1–1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

/// An endpoint's delivery log.
///
/// Newest first, each delivery with every attempt: when, the HTTP status, the latency, the error,
/// and the first 4 KiB of the receiver's answer.
#[utoipa::path(
    get, path = "/v1/webhook-endpoints/{id}/deliveries", tag = "webhooks",
    params(("id" = String, Path, description = "The endpoint id (`ep_…`)"), DeliveryQuery),
    responses(
        (status = 200, description = "One page of deliveries", body = DeliveryPage),
        (status = 400, description = "`invalid_query`, `invalid_cursor`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = ["webhooks:manage"]))
)]
async fn list_deliveries(
    State(state): State<AppState>,
    auth: Authorized<scope::WebhooksManage>,
    ApiPath(id): ApiPath,
    ApiQuery(query): ApiQuery<DeliveryQuery>,
) -> Result<Json<DeliveryPage>, ApiError> {
    let id = endpoint_id(&id)?;
    let limit = page_limit(query.limit)?;
    let status = query
        .status
        .as_deref()
        .map(str::parse::<DeliveryStatus>)
        .transpose()
        .map_err(|e| ApiError::invalid_query(e.to_string()))?;
    let before = cursor_param(query.cursor.as_deref(), DeliveryId::parse)?;
    let page = state
        .store()
        .list_deliveries(auth.project(), id, status, before, limit)
        .await
        .map_err(not_found_endpoint)?;
    Ok(Json(page))
}

/// Re-send every failed delivery since a time.
///
/// For a receiver that was down: every delivery to this endpoint that failed and was created at
/// or after `since` starts over with a fresh retry schedule.
#[utoipa::path(
    post, path = "/v1/webhook-endpoints/{id}/recover", tag = "webhooks",
    request_body = RecoverIn,
    params(("id" = String, Path, description = "The endpoint id (`ep_…`)")),
    responses(
        (status = 200, description = "How many deliveries were queued again", body = RecoverOut),
        (status = 400, description = "`malformed_json`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "`unsupported_media_type`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`invalid_body`", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = ["webhooks:manage"]))
)]
async fn recover(
    State(state): State<AppState>,
    auth: Authorized<scope::WebhooksManage>,
    ApiPath(id): ApiPath,
    ApiJson(body): ApiJson<RecoverIn>,
) -> Result<Json<RecoverOut>, ApiError> {
    let id = endpoint_id(&id)?;
    let requeued = state
        .store()
        .recover_deliveries(auth.project(), id, body.since, &auth.audit())
        .await
        .map_err(not_found_endpoint)?;
    tracing::info!(endpoint_id = %id, requeued, since = %body.since, "failed deliveries queued again");
    Ok(Json(RecoverOut { requeued }))
}

/// Re-send one delivery.
///
/// The delivery starts over with a fresh retry schedule (its attempts so far stay in the log).
/// A delivery whose attempt is under way is refused (409) rather than sent twice at once.
#[utoipa::path(
    post, path = "/v1/deliveries/{id}/resend", tag = "webhooks",
    params(("id" = String, Path, description = "The delivery id (`dlv_…`)")),
    responses(
        (status = 202, description = "Queued again", body = DeliveryOut),
        (status = 404, description = "`not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`delivery_in_flight`: an attempt is under way; resend once it is recorded", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = ["webhooks:manage"]))
)]
async fn resend(
    State(state): State<AppState>,
    auth: Authorized<scope::WebhooksManage>,
    ApiPath(id): ApiPath,
) -> Result<Response, ApiError> {
    let not_found = || ApiError::not_found("no such delivery in this project");
    let id = DeliveryId::parse(&id).map_err(|_| not_found())?;
    let delivery =
        state.store().resend_delivery(auth.project(), id, &auth.audit()).await.map_err(|e| match e {
            crate::store::StoreError::NotFound => not_found(),
            other => other.into(),
        })?;
    Ok((StatusCode::ACCEPTED, Json(delivery)).into_response())
}
