//! The axum extractors: `CurrentTenant` and `Option<CurrentTenant>`.

use std::convert::Infallible;

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::http::request::Parts;
use axum::response::Response;

use super::{CurrentTenant, Rejection, RejectionHandler};

/// The request's tenant, as the [`super::TenantLayer`] found it. Without one (no layer, or an
/// optional layer and a request naming no tenant) the handler is not called: 400
/// `tenant_required`, or the layer's own rejection response.
impl<S: Send + Sync> FromRequestParts<S> for CurrentTenant {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        if let Some(tenant) = parts.extensions.get::<CurrentTenant>() {
            return Ok(tenant.clone());
        }
        let handler = parts.extensions.get::<RejectionHandler>().cloned().unwrap_or_default();
        Err(handler.respond(&Rejection::Required))
    }
}

/// `Option<CurrentTenant>`: the tenant if the request has one; never rejects.
impl<S: Send + Sync> OptionalFromRequestParts<S> for CurrentTenant {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Option<Self>, Self::Rejection> {
        Ok(parts.extensions.get::<CurrentTenant>().cloned())
    }
}
