//! HTTP routes, one module per resource; this module only merges them and describes the API.
//!
//! Routes are registered through `utoipa-axum`, so a handler and its OpenAPI description are one
//! piece of code: a route cannot exist without appearing in `/openapi.json`.

pub mod audit;
pub mod events;
pub mod ops;
pub mod sync_status;
pub mod tenants;
pub mod webhooks;

use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{
    ContentBuilder, Object, OpenApi as OpenApiDoc, Ref, RefOr, Response, ResponseBuilder, Type,
};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

use crate::AppState;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Carcosa",
        description = "The tenant control plane: tenants, their changes feed, webhooks, the audit log, and the keys that reach them. \
Every `/v1` call is authenticated with `Authorization: Bearer ck_…`; the key's project is the scope of the call. \
Errors are `application/problem+json` with a stable `code`.",
    ),
    modifiers(&SecurityAndCommonErrors),
    tags(
        (name = "tenants", description = "Create, read, update, delete and list tenants."),
        (name = "events", description = "The changes feed: every tenant change, numbered without gaps."),
        (name = "webhooks", description = "Endpoints that receive every tenant change, signed (Standard Webhooks), with retries, a delivery log and replay."),
        (name = "sync", description = "What each synced application reports about itself, and its lag."),
        (name = "audit", description = "Who changed what, when, from where: one entry per change, kept for a year by default."),
        (name = "operations", description = "Health, readiness and this description."),
    )
)]
struct ApiDoc;

/// Every route with its OpenAPI description.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(tenants::router())
        .merge(events::router())
        .merge(webhooks::router())
        .merge(sync_status::router())
        .merge(audit::router())
        .merge(ops::router())
}

/// Adds the bearer scheme, and the errors any `/v1` call can meet, to every operation.
struct SecurityAndCommonErrors;

impl Modify for SecurityAndCommonErrors {
    fn modify(&self, openapi: &mut OpenApiDoc) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("ck_<key id>_<secret>")
                    .description(Some(
                        "An API key created with `carcosa project create` or `carcosa key create`.",
                    ))
                    .build(),
            ),
        );
    }
}

/// Adds the errors every authenticated call can return, and the rate-limit headers its
/// responses carry. Runs after all routes are merged (the `Modify` hook above runs before them).
pub fn add_common_errors(openapi: &mut OpenApiDoc) {
    let common = [
        ("401", "`unauthorized`: missing, malformed, unknown or revoked API key"),
        ("403", "`insufficient_scope`: the key lacks the scope this call needs"),
        (
            "429",
            "`rate_limited`: the key made more requests than its rate limit allows; retry after `Retry-After` seconds",
        ),
        ("500", "`internal_error`: the server failed; the cause is logged, never returned"),
        ("503", "`unavailable`: the database is busy or unreachable; retry"),
    ];
    for (path, item) in &mut openapi.paths.paths {
        if !path.starts_with("/v1/") {
            continue;
        }
        let operations = [&mut item.get, &mut item.post, &mut item.put, &mut item.patch, &mut item.delete];
        for operation in operations.into_iter().flatten() {
            for (status, description) in common {
                operation.responses.responses.entry(status.to_owned()).or_insert_with(|| {
                    ResponseBuilder::new()
                        .description(description)
                        .content(
                            carcosa_core::problem::CONTENT_TYPE,
                            ContentBuilder::new().schema(Some(Ref::from_schema_name("Problem"))).build(),
                        )
                        .build()
                        .into()
                });
            }
            for (status, response) in &mut operation.responses.responses {
                if let RefOr::T(response) = response {
                    add_rate_limit_headers(response, status == "429");
                }
            }
        }
    }
}

/// Documents the `RateLimit-*` headers (and on a 429, `Retry-After`). They are on every
/// response to a request whose key has a limit, once the key is known.
fn add_rate_limit_headers(response: &mut Response, refused: bool) {
    let integer = || Object::builder().schema_type(Type::Integer).minimum(Some(0)).build();
    let headers = [
        ("RateLimit-Limit", "Requests the key may make at once (its bucket's size)."),
        ("RateLimit-Remaining", "Requests the key may still make right now."),
        ("RateLimit-Reset", "Seconds until the key's bucket is full again."),
    ];
    for (name, description) in headers {
        response.headers.insert(
            name.to_owned(),
            HeaderBuilder::new().schema(integer()).description(Some(description)).build(),
        );
    }
    if refused {
        let retry = HeaderBuilder::new()
            .schema(integer())
            .description(Some("Seconds to wait before the next request can succeed (at least 1)."))
            .build();
        response.headers.insert("Retry-After".to_owned(), retry);
    }
}
