//! API key authentication and scopes.
//!
//! A handler states the scope it needs in its signature: `auth: Authorized<scope::TenantsWrite>`.
//! The extractor reads `Authorization: Bearer ck_…`, finds the key, compares the secret's digest
//! in constant time, refuses revoked keys (401) and keys without the scope (403). The key's
//! project is the scope of everything the handler does, which is how one project's key never
//! sees another project's tenants. It also keeps what the audit log records about the request
//! ([`Authorized::audit`]), so a handler passes its caller to the store in one value.
//!
//! Once the key is known, and before its scope is checked, the request takes a token from the
//! key's rate-limit bucket ([`crate::ratelimit::enforce`]): an empty bucket is a 429.

use std::marker::PhantomData;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use carcosa_core::api::KeyRateLimit;
use carcosa_core::audit::Actor;
use carcosa_core::{ApiKey, ProjectId, Scope};

use crate::AppState;
use crate::audit::{AuditContext, RequestMeta};
use crate::error::ApiError;
use crate::store::now;

/// How stale `last_used_at` may get before a request refreshes it.
const TOUCH_EVERY: chrono::TimeDelta = chrono::TimeDelta::seconds(60);

/// The caller behind a valid API key.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The project the key belongs to.
    pub project: ProjectId,
    /// The key's id (safe to log).
    pub key_id: String,
    /// Everything the key may do.
    pub scopes: Vec<Scope>,
    /// The key's own rate limit; `None` when the server's default applies.
    pub rate_limit: Option<KeyRateLimit>,
}

/// A scope a handler requires, as a type.
pub trait RequiredScope: Send + Sync + 'static {
    /// The scope.
    const SCOPE: Scope;
}

/// Marker types for [`Authorized`], one per scope.
pub mod scope {
    use super::{RequiredScope, Scope};

    macro_rules! markers {
        ($($name:ident),* $(,)?) => {$(
            #[doc = concat!("Requires the `", stringify!($name), "` scope.")]
            #[derive(Debug)]
            pub struct $name;
            impl RequiredScope for $name {
                const SCOPE: Scope = Scope::$name;
            }
        )*};
    }

    markers!(TenantsRead, TenantsWrite, EventsRead, WebhooksManage, KeysManage, AuditRead);
}

/// A request authenticated by a key that has scope `S`.
#[derive(Debug)]
pub struct Authorized<S: RequiredScope> {
    /// Who is calling.
    pub principal: Principal,
    /// The request's id, address and user agent.
    pub meta: RequestMeta,
    _scope: PhantomData<S>,
}

impl<S: RequiredScope> Authorized<S> {
    /// The project every action of this request is confined to.
    #[must_use]
    pub fn project(&self) -> ProjectId {
        self.principal.project
    }

    /// The audit context of a change made by this request: the key as the actor.
    #[must_use]
    pub fn audit(&self) -> AuditContext {
        AuditContext::new(Actor::key(&self.principal.key_id), self.meta.clone())
    }
}

impl<S: RequiredScope> FromRequestParts<AppState> for Authorized<S> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let principal = authenticate(parts, state).await?;
        crate::ratelimit::enforce(parts, state.rate_limits(), &principal).await?;
        if !principal.scopes.contains(&S::SCOPE) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "insufficient_scope",
                "Insufficient scope",
                format!("this API key lacks the `{}` scope", S::SCOPE),
            ));
        }
        Ok(Self { principal, meta: RequestMeta::from_parts(parts), _scope: PhantomData })
    }
}

async fn authenticate(parts: &Parts, state: &AppState) -> Result<Principal, ApiError> {
    let mut headers = parts.headers.get_all(header::AUTHORIZATION).iter();
    let header = headers
        .next()
        .ok_or_else(|| ApiError::unauthorized("send an API key as `Authorization: Bearer ck_…`"))?;
    if headers.next().is_some() {
        return Err(ApiError::unauthorized("send exactly one Authorization header"));
    }
    let token = header
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
        .ok_or_else(|| ApiError::unauthorized("the Authorization header must be `Bearer ck_…`"))?;
    let key = ApiKey::parse(token).map_err(|_| ApiError::unauthorized("the API key is malformed"))?;
    let stored = state.store().find_key(key.key_id()).await?;
    let Some(stored) = stored.filter(|s| key.matches(&s.secret_hash)) else {
        return Err(ApiError::unauthorized("unknown API key"));
    };
    if stored.key.revoked_at.is_some() {
        return Err(ApiError::unauthorized("this API key has been revoked"));
    }
    let at = now();
    if stored.key.last_used_at.is_none_or(|last| at - last > TOUCH_EVERY)
        && state.claim_key_touch(&stored.key.id, at)
    {
        let store = state.store().clone();
        let key_id = stored.key.id.clone();
        tokio::spawn(async move {
            if let Err(err) = store.touch_key(&key_id, at).await {
                tracing::warn!(key_id, error = %err, "could not record key use");
            }
        });
    }
    metrics::counter!(
        "carcosa_api_requests_total",
        "project" => stored.key.project_id.to_string(),
        "key" => stored.key.id.clone()
    )
    .increment(1);
    Ok(Principal {
        project: stored.key.project_id,
        key_id: stored.key.id,
        scopes: stored.key.scopes,
        rate_limit: stored.key.rate_limit,
    })
}
