//! The tenant a piece of work runs for, carried through `async` code by a tokio task-local.
//!
//! The detection layer ([`crate::detect`], feature `axum`) runs every request inside
//! [`scope`], so code deep inside a handler can call [`current`] without threading the tenant
//! through every signature. A task-local does not cross `tokio::spawn` by itself: wrap the
//! spawned future in [`scope`] to carry the tenant into a background job.
//!
//! ```
//! # async fn demo(tenant: carcosa::tenancy::CurrentTenant) {
//! use carcosa::tenancy;
//!
//! let job = tenancy::scope(tenant.clone(), async {
//!     // … in the job: whose data is this?
//!     tenancy::current().map(|t| t.slug.to_string())
//! });
//! let slug = tokio::spawn(job).await.unwrap();
//! assert_eq!(slug.as_deref(), Some(tenant.slug.as_str()));
//! # }
//! ```
//!
//! This module holds data and the task-local only; how a request finds its tenant lives in
//! [`crate::detect`].

use std::fmt;
use std::future::Future;
use std::ops::Deref;
use std::sync::Arc;

use carcosa_core::{Slug, Tenant, TenantId, TenantStatus};
use serde_json::Value;
use tokio::task::futures::TaskLocalFuture;

/// A tenant as the app sees it while serving a request: the fields of the local tenant table.
#[derive(Debug, Clone, PartialEq)]
pub struct DetectedTenant {
    /// The Carcosa id (`ten_…`).
    pub id: TenantId,
    /// The current slug.
    pub slug: Slug,
    /// The display name.
    pub name: String,
    /// `active`, `suspended` or `deleted`.
    pub status: TenantStatus,
    /// The plan, if the tenant has one.
    pub plan: Option<String>,
    /// The metadata object (`Value::Null` when the table holds none).
    pub metadata: Value,
}

impl DetectedTenant {
    /// The custom domains in `metadata.domains` (an array of strings; anything else is
    /// skipped), as written there.
    pub fn domains(&self) -> impl Iterator<Item = &str> {
        domain_list(self.metadata.get("domains"))
    }
}

/// The strings of a `metadata.domains` value.
pub(crate) fn domain_list(domains: Option<&Value>) -> impl Iterator<Item = &str> {
    domains.and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str)
}

impl From<&Tenant> for DetectedTenant {
    fn from(tenant: &Tenant) -> Self {
        Self {
            id: tenant.id,
            slug: tenant.slug.clone(),
            name: tenant.name.clone(),
            status: tenant.status,
            plan: tenant.plan.clone(),
            metadata: Value::Object(tenant.metadata.clone()),
        }
    }
}

impl From<Tenant> for DetectedTenant {
    fn from(tenant: Tenant) -> Self {
        Self {
            id: tenant.id,
            slug: tenant.slug,
            name: tenant.name,
            status: tenant.status,
            plan: tenant.plan,
            metadata: Value::Object(tenant.metadata),
        }
    }
}

/// The tenant of the current request or job: a cheap handle (an `Arc`) that derefs to
/// [`DetectedTenant`].
///
/// With feature `axum` it is also an extractor: `CurrentTenant` answers 400 `tenant_required`
/// when the request has no tenant, `Option<CurrentTenant>` never rejects.
#[derive(Clone, PartialEq)]
pub struct CurrentTenant(Arc<DetectedTenant>);

impl CurrentTenant {
    /// Wraps a tenant.
    #[must_use]
    pub fn new(tenant: impl Into<Arc<DetectedTenant>>) -> Self {
        Self(tenant.into())
    }

    /// The shared record.
    #[must_use]
    pub fn as_arc(&self) -> &Arc<DetectedTenant> {
        &self.0
    }
}

impl Deref for CurrentTenant {
    type Target = DetectedTenant;
    fn deref(&self) -> &DetectedTenant {
        &self.0
    }
}

impl fmt::Debug for CurrentTenant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl From<Arc<DetectedTenant>> for CurrentTenant {
    fn from(tenant: Arc<DetectedTenant>) -> Self {
        Self(tenant)
    }
}

impl From<DetectedTenant> for CurrentTenant {
    fn from(tenant: DetectedTenant) -> Self {
        Self(Arc::new(tenant))
    }
}

tokio::task_local! {
    static CURRENT: CurrentTenant;
}

/// Runs `future` with `tenant` as the [`current`] tenant. Nested scopes shadow outer ones.
pub fn scope<F: Future>(tenant: CurrentTenant, future: F) -> TaskLocalFuture<CurrentTenant, F> {
    CURRENT.scope(tenant, future)
}

/// The tenant of the innermost [`scope`] this code runs in, if any.
#[must_use]
pub fn current() -> Option<CurrentTenant> {
    CURRENT.try_with(CurrentTenant::clone).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(slug: &str) -> CurrentTenant {
        CurrentTenant::from(DetectedTenant {
            id: TenantId::generate(),
            slug: Slug::parse(slug).unwrap(),
            name: slug.to_uppercase(),
            status: TenantStatus::Active,
            plan: None,
            metadata: serde_json::json!({}),
        })
    }

    #[tokio::test]
    async fn there_is_no_tenant_outside_a_scope() {
        assert!(current().is_none());
    }

    #[tokio::test]
    async fn a_spawned_job_wrapped_in_scope_carries_the_tenant() {
        let acme = tenant("acme");
        let seen = scope(acme.clone(), async {
            // Inside the request: wrap the job so it keeps the tenant.
            let job = scope(current().unwrap(), async { current().map(|t| t.slug.to_string()) });
            let unwrapped = async { current().map(|t| t.slug.to_string()) };
            (tokio::spawn(job).await.unwrap(), tokio::spawn(unwrapped).await.unwrap())
        })
        .await;
        assert_eq!(seen, (Some("acme".to_owned()), None));
    }

    #[tokio::test]
    async fn nested_scopes_shadow_outer_ones() {
        let outer = scope(tenant("outer"), async {
            let inner = scope(tenant("inner"), async { current().unwrap().slug.to_string() }).await;
            (inner, current().unwrap().slug.to_string())
        })
        .await;
        assert_eq!(outer, ("inner".to_owned(), "outer".to_owned()));
    }

    #[test]
    fn domains_are_read_from_metadata() {
        let mut t = (*tenant("acme")).clone();
        t.metadata = serde_json::json!({"domains": ["acme.example", 3, "shop.acme.example"]});
        assert_eq!(t.domains().collect::<Vec<_>>(), ["acme.example", "shop.acme.example"]);
        t.metadata = Value::Null;
        assert_eq!(t.domains().count(), 0);
    }
}
