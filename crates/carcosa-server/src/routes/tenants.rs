//! `/v1/tenants`: create, read, update, delete and list tenants.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use carcosa_core::api::{TenantIn, TenantPage, TenantPatch};
use carcosa_core::{PageCursor, Problem, Slug, Tenant, TenantId, TenantStatus};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::{Authorized, scope};
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, ApiQuery, IdempotencyKey, IfMatch, cursor_param, etag};
use crate::store::{CreateOutcome, IdempotencyRequest, TenantFilter, TenantRef};

/// The tenant routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create_tenant, list_tenants)).routes(routes!(
        get_tenant,
        update_tenant,
        delete_tenant
    ))
}

/// Create a tenant.
///
/// The slug is generated from the name when absent (`Acme Corp` → `acme-corp`, then
/// `acme-corp-2`, … if taken). Writes a `tenant.created` event in the same transaction. With an
/// `Idempotency-Key`, a retry with the same body returns the first response (with
/// `Idempotent-Replayed: true`) instead of creating a second tenant.
#[utoipa::path(
    post, path = "/v1/tenants", tag = "tenants",
    request_body = TenantIn,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe: 1–255 visible ASCII characters, remembered for 24 hours.")),
    responses(
        (status = 201, description = "Created", body = Tenant, headers(("ETag" = String, description = "The tenant's version"), ("Location" = String))),
        (status = 400, description = "`malformed_json`, `invalid_header`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`slug_taken`", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "`payload_too_large`", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "`unsupported_media_type`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`invalid_body`, `invalid_name`, `invalid_slug`, `slug_reserved`, `invalid_status`, `invalid_plan`, `invalid_metadata`, `idempotency_key_reused`", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = ["tenants:write"]))
)]
async fn create_tenant(
    State(state): State<AppState>,
    auth: Authorized<scope::TenantsWrite>,
    IdempotencyKey(key): IdempotencyKey,
    ApiJson(body): ApiJson<TenantIn>,
) -> Result<Response, ApiError> {
    let idempotency = key.map(|key| IdempotencyRequest { key, request_hash: request_hash(&body) });
    let new = body.validate(state.rules().max_metadata_bytes)?;
    let store = state.store();
    match store.create_tenant(auth.project(), new, state.rules(), idempotency.as_ref(), &auth.audit()).await?
    {
        CreateOutcome::Created(written) => Ok(tenant_response(StatusCode::CREATED, &written.tenant, true)),
        CreateOutcome::Replayed(recorded) => {
            let tenant: Tenant = serde_json::from_str(&recorded.body).map_err(|e| ApiError::internal(&e))?;
            let status = StatusCode::from_u16(recorded.status).map_err(|e| ApiError::internal(&e))?;
            let mut response = tenant_response(status, &tenant, true);
            response.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
            Ok(response)
        }
    }
}

/// The hash an idempotency key is bound to: the request body in canonical form (field order and
/// white space do not matter).
fn request_hash(body: &TenantIn) -> Vec<u8> {
    let canonical = serde_json::to_value(body).and_then(|v| serde_json::to_vec(&v)).unwrap_or_default();
    Sha256::digest(canonical).to_vec()
}

/// Get a tenant by id or slug.
///
/// `{id}` is a tenant id (`ten_…`, any status) or the slug of a live tenant. The `ETag` is the
/// tenant's version, for `If-Match` on a later update.
#[utoipa::path(
    get, path = "/v1/tenants/{id}", tag = "tenants",
    params(("id" = String, Path, description = "A tenant id (`ten_…`) or a live tenant's slug")),
    responses(
        (status = 200, description = "The tenant", body = Tenant, headers(("ETag" = String, description = "The tenant's version"))),
        (status = 404, description = "`not_found`: no such tenant in this project", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = ["tenants:read"]))
)]
async fn get_tenant(
    State(state): State<AppState>,
    auth: Authorized<scope::TenantsRead>,
    ApiPath(id): ApiPath,
) -> Result<Response, ApiError> {
    let tenant = state.store().get_tenant(auth.project(), &tenant_ref(&id)?).await?;
    Ok(tenant_response(StatusCode::OK, &tenant, false))
}

/// Update a tenant.
///
/// Every field is optional. `metadata` is a JSON merge patch (RFC 7396): keys set to `null` are
/// removed, objects merge, anything else replaces. `plan: null` clears the plan. With
/// `If-Match: "<version>"` the update applies only to that version (else 412). A request that
/// changes nothing returns the tenant as it is, without a new version or event.
#[utoipa::path(
    patch, path = "/v1/tenants/{id}", tag = "tenants",
    request_body = TenantPatch,
    params(
        ("id" = String, Path, description = "A tenant id (`ten_…`) or a live tenant's slug"),
        ("If-Match" = Option<String>, Header, description = "The version (ETag) the change is based on"),
    ),
    responses(
        (status = 200, description = "The updated tenant", body = Tenant, headers(("ETag" = String, description = "The tenant's version"))),
        (status = 400, description = "`malformed_json`, `invalid_header`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`slug_taken`, `tenant_deleted`", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "`version_conflict`", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "`payload_too_large`", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "`unsupported_media_type`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`invalid_body`, `invalid_name`, `invalid_slug`, `slug_reserved`, `invalid_status`, `invalid_plan`, `invalid_metadata`", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = ["tenants:write"]))
)]
async fn update_tenant(
    State(state): State<AppState>,
    auth: Authorized<scope::TenantsWrite>,
    ApiPath(id): ApiPath,
    IfMatch(if_match): IfMatch,
    ApiJson(body): ApiJson<TenantPatch>,
) -> Result<Response, ApiError> {
    let changes = body.validate()?;
    let written = state
        .store()
        .update_tenant(auth.project(), &tenant_ref(&id)?, changes, if_match, state.rules(), &auth.audit())
        .await?;
    Ok(tenant_response(StatusCode::OK, &written.tenant, false))
}

/// Delete a tenant.
///
/// The tenant keeps its id and history: its status becomes `deleted`, its slug is released for
/// other tenants, its version grows by one and a `tenant.deleted` event is written. Deleting a
/// deleted tenant returns it unchanged.
#[utoipa::path(
    delete, path = "/v1/tenants/{id}", tag = "tenants",
    params(
        ("id" = String, Path, description = "A tenant id (`ten_…`) or a live tenant's slug"),
        ("If-Match" = Option<String>, Header, description = "The version (ETag) the deletion is based on"),
    ),
    responses(
        (status = 200, description = "The deleted tenant", body = Tenant, headers(("ETag" = String, description = "The tenant's version"))),
        (status = 400, description = "`invalid_header`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "`version_conflict`", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = ["tenants:write"]))
)]
async fn delete_tenant(
    State(state): State<AppState>,
    auth: Authorized<scope::TenantsWrite>,
    ApiPath(id): ApiPath,
    IfMatch(if_match): IfMatch,
) -> Result<Response, ApiError> {
    let written =
        state.store().delete_tenant(auth.project(), &tenant_ref(&id)?, if_match, &auth.audit()).await?;
    Ok(tenant_response(StatusCode::OK, &written.tenant, false))
}

/// Query parameters of `GET /v1/tenants`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    /// Page size, 1–1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    /// `next_cursor` of the previous page (empty = the first page).
    cursor: Option<String>,
    /// `active`, `suspended` or `deleted`; absent = live tenants (active and suspended).
    #[param(value_type = Option<TenantStatus>)]
    status: Option<String>,
    /// Case-insensitive substring of the name or slug (at most 200 characters).
    #[param(max_length = 200)]
    q: Option<String>,
}

/// List tenants.
///
/// Keyset pagination in id (creation) order. `as_of` is the changes-feed position the listing
/// reflects: after reading every page, continue with `GET /v1/events?after=<as_of>` and nothing
/// is missed.
#[utoipa::path(
    get, path = "/v1/tenants", tag = "tenants",
    params(ListQuery),
    responses(
        (status = 200, description = "One page of tenants", body = TenantPage),
        (status = 400, description = "`invalid_query`, `invalid_cursor`", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = ["tenants:read"]))
)]
async fn list_tenants(
    State(state): State<AppState>,
    auth: Authorized<scope::TenantsRead>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<TenantPage>, ApiError> {
    let limit = page_limit(query.limit)?;
    let after = cursor_param(query.cursor.as_deref(), PageCursor::decode)?;
    let status = query
        .status
        .as_deref()
        .map(str::parse::<TenantStatus>)
        .transpose()
        .map_err(|e| ApiError::invalid_query(e.to_string()))?;
    if query.q.as_ref().is_some_and(|q| q.chars().count() > 200 || q.contains('\0')) {
        return Err(ApiError::invalid_query("q is at most 200 characters, without the NUL character"));
    }
    let filter = TenantFilter { status, q: query.q };
    Ok(Json(state.store().list_tenants(auth.project(), &filter, after, limit).await?))
}

/// Checks a `limit` parameter: 1–1000, 100 when absent.
pub(crate) fn page_limit(limit: Option<u32>) -> Result<u32, ApiError> {
    match limit.unwrap_or(100) {
        n @ 1..=1000 => Ok(n),
        n => Err(ApiError::invalid_query(format!("limit must be between 1 and 1000 (got {n})"))),
    }
}

/// Reads a path segment as a tenant id or a slug. Text that is neither cannot name a tenant.
fn tenant_ref(text: &str) -> Result<TenantRef, ApiError> {
    if text.starts_with(TenantId::PREFIX)
        && let Ok(id) = TenantId::parse(text)
    {
        return Ok(TenantRef::Id(id));
    }
    Slug::parse(text).map(TenantRef::Slug).map_err(|_| ApiError::not_found("no such tenant in this project"))
}

fn tenant_response(status: StatusCode, tenant: &Tenant, with_location: bool) -> Response {
    let mut response = (status, Json(tenant)).into_response();
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&etag(tenant.version)) {
        headers.insert(header::ETAG, value);
    }
    if with_location && let Ok(value) = HeaderValue::from_str(&format!("/v1/tenants/{}", tenant.id)) {
        headers.insert(header::LOCATION, value);
    }
    response
}
