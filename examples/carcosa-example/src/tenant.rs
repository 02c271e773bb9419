//! The tenant side of the app: how a request names its tenant, and the routes that serve one.
//!
//! A request may name its tenant five ways, all of them slugs (or `ten_…` ids) looked up in the
//! app's own table through the [`TenantCache`]:
//!
//! | source | example |
//! |---|---|
//! | a subdomain of `APP_BASE_DOMAIN` | `Host: acme.localhost:3000` |
//! | a path prefix, stripped before routing | `/t/acme/whoami` is served by `/whoami` |
//! | the `X-Tenant-Slug` header | `X-Tenant-Slug: acme` |
//! | the `tenant` query parameter | `/whoami?tenant=acme` |
//! | the `tenant` claim of an HS256 bearer token (with `APP_JWT_SECRET`) | `Authorization: Bearer eyJ…` |
//!
//! Every source that names a tenant must name the same one ([`Chain::must_agree`]), so a token
//! issued for `acme` cannot be combined with `/t/globex/…` to reach another tenant's data. The
//! layer is optional — a request naming nobody reaches the router — and each handler says in its
//! signature whether it needs a tenant: [`CurrentTenant`] answers 400 `tenant_required` without
//! one. A tenant that is named but unknown or deleted gets 404 `tenant_not_found`, a suspended one
//! 403 `tenant_suspended`, before any handler runs.

use axum::routing::get;
use axum::{Json, Router};
use carcosa::core::{Slug, TenantId, TenantStatus};
use carcosa::detect::{
    Chain, CurrentTenant, Header, JwtClaim, JwtKey, PathPrefix, Query, Subdomain, TenantCache, TenantLayer,
};
use serde::Serialize;

use crate::Settings;

/// The detection layer the settings describe, looking tenants up through `cache`. It records
/// the tenant's slug in the `tenant` field of the request span.
///
/// It strips `/t/{slug}`, which changes routing: wrap a router in it (`layer.layer(router)`)
/// rather than passing it to `Router::layer`, whose middleware runs after routing.
#[must_use]
pub fn detection(settings: &Settings, cache: TenantCache) -> TenantLayer {
    let mut chain = Chain::must_agree()
        .with(Subdomain::new([settings.base_domain.as_str()]))
        .with(PathPrefix::new().strip(true))
        .with(Header::slug())
        .with(Query::new());
    if let Some(secret) = &settings.jwt_secret {
        chain = chain.with(JwtClaim::new().key(JwtKey::hs256(secret.expose())));
    }
    TenantLayer::new(chain, cache).optional().record_in_span("tenant")
}

/// The routes that serve a tenant; they sit behind [`detection`].
pub fn router() -> Router {
    Router::new().route("/whoami", get(whoami))
}

/// What `GET /whoami` answers.
#[derive(Debug, Serialize)]
pub struct WhoamiOut {
    /// The request's tenant.
    pub tenant: TenantOut,
}

/// A tenant as the app shows it.
#[derive(Debug, Serialize)]
pub struct TenantOut {
    /// The Carcosa id, `ten_…`.
    pub id: TenantId,
    /// The slug.
    pub slug: Slug,
    /// The display name.
    pub name: String,
    /// Always `active` here: the layer refuses the others.
    pub status: TenantStatus,
}

/// `GET /whoami`: the tenant the request names.
async fn whoami(tenant: CurrentTenant) -> Json<WhoamiOut> {
    Json(WhoamiOut {
        tenant: TenantOut {
            id: tenant.id,
            slug: tenant.slug.clone(),
            name: tenant.name.clone(),
            status: tenant.status,
        },
    })
}
