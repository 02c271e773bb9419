//! Where identifiers become tenants: the [`TenantDirectory`] trait, and [`InMemoryDirectory`]
//! for tests.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use carcosa_core::{TenantId, TenantStatus};

use super::host::normalize_domain;
use super::{DetectedTenant, Identifier};

/// The directory could not answer (its database is down, a query failed). Requests get
/// 503 `tenant_lookup_unavailable`; the cause is logged, never sent.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the tenant directory is unavailable: {0}")]
pub struct DirectoryError(#[source] Arc<dyn std::error::Error + Send + Sync>);

impl DirectoryError {
    /// Wraps the cause.
    pub fn new(cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self(Arc::from(cause.into()))
    }
}

/// Turns an [`Identifier`] into the tenant it names: the app's local tenant table, usually.
///
/// * `Id` matches the Carcosa id, `Slug` the slug, `Domain` an entry of `metadata.domains`
///   (compared in lower case, without a trailing dot).
/// * Return deleted and suspended tenants as they are: the layer answers for them (404, 403).
///   When a slug matches both a deleted tenant and a live one, return the live one.
/// * `Ok(None)` means no tenant has that identifier; the cache remembers that too, for a shorter
///   time.
///
/// Identifiers arrive in canonical form ([`Identifier::canonical`]): valid slugs, upper-case
/// ULIDs, normalized host names. Implement it with an `async fn`:
///
/// ```
/// use carcosa::detect::{DetectedTenant, DirectoryError, Identifier, TenantDirectory};
///
/// struct Table;
///
/// impl TenantDirectory for Table {
///     async fn lookup(&self, identifier: &Identifier) -> Result<Option<DetectedTenant>, DirectoryError> {
///         Ok(None) // SELECT … WHERE slug = $1, …
///     }
/// }
/// ```
pub trait TenantDirectory: Send + Sync + 'static {
    /// The tenant `identifier` names, if any.
    fn lookup(
        &self,
        identifier: &Identifier,
    ) -> impl Future<Output = Result<Option<DetectedTenant>, DirectoryError>> + Send;
}

/// A boxed lookup future.
pub(crate) type LookupFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Option<DetectedTenant>, DirectoryError>> + Send + 'a>>;

/// [`TenantDirectory`] made object-safe, so the cache can hold any directory.
pub(crate) trait DynDirectory: Send + Sync + 'static {
    fn lookup_boxed<'a>(&'a self, identifier: &'a Identifier) -> LookupFuture<'a>;
}

impl<D: TenantDirectory> DynDirectory for D {
    fn lookup_boxed<'a>(&'a self, identifier: &'a Identifier) -> LookupFuture<'a> {
        Box::pin(self.lookup(identifier))
    }
}

impl<D: TenantDirectory> TenantDirectory for Arc<D> {
    fn lookup(
        &self,
        identifier: &Identifier,
    ) -> impl Future<Output = Result<Option<DetectedTenant>, DirectoryError>> + Send {
        (**self).lookup(identifier)
    }
}

/// A directory held in memory: for tests, yours included, and for apps whose tenants fit in a
/// map. Counts its lookups, so a test can tell what the cache kept from it, and can be made to
/// fail like a database that is down.
#[derive(Debug, Default)]
pub struct InMemoryDirectory {
    tenants: RwLock<HashMap<TenantId, DetectedTenant>>,
    lookups: AtomicUsize,
    unavailable: AtomicBool,
}

impl InMemoryDirectory {
    /// An empty directory.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// A directory holding `tenants`.
    #[must_use]
    pub fn with(tenants: impl IntoIterator<Item = DetectedTenant>) -> Self {
        let directory = Self::new();
        for tenant in tenants {
            directory.upsert(tenant);
        }
        directory
    }

    /// Adds a tenant, or replaces the one with the same id.
    pub fn upsert(&self, tenant: DetectedTenant) {
        self.tenants.write().unwrap_or_else(|e| e.into_inner()).insert(tenant.id, tenant);
    }

    /// Forgets a tenant (a hard delete).
    pub fn remove(&self, id: &TenantId) -> Option<DetectedTenant> {
        self.tenants.write().unwrap_or_else(|e| e.into_inner()).remove(id)
    }

    /// How many lookups were made so far.
    pub fn lookups(&self) -> usize {
        self.lookups.load(Ordering::SeqCst)
    }

    /// While `true`, every lookup fails with a [`DirectoryError`].
    pub fn set_unavailable(&self, unavailable: bool) {
        self.unavailable.store(unavailable, Ordering::SeqCst);
    }

    fn find(&self, identifier: &Identifier) -> Option<DetectedTenant> {
        let tenants = self.tenants.read().unwrap_or_else(|e| e.into_inner());
        let matches = |t: &&DetectedTenant| match identifier {
            Identifier::Id(id) => t.id.to_string() == *id,
            Identifier::Slug(slug) => t.slug.as_str() == slug,
            Identifier::Domain(host) => {
                t.domains().any(|d| normalize_domain(d).as_deref() == Some(host.as_str()))
            }
        };
        // A live tenant wins over a deleted one that had the same slug or domain.
        let mut found: Vec<&DetectedTenant> = tenants.values().filter(matches).collect();
        found.sort_by_key(|t| t.status == TenantStatus::Deleted);
        found.first().map(|t| (*t).clone())
    }
}

impl TenantDirectory for InMemoryDirectory {
    async fn lookup(&self, identifier: &Identifier) -> Result<Option<DetectedTenant>, DirectoryError> {
        self.lookups.fetch_add(1, Ordering::SeqCst);
        if self.unavailable.load(Ordering::SeqCst) {
            return Err(DirectoryError::new("the in-memory directory was set unavailable"));
        }
        Ok(self.find(identifier))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::testing::tenant;

    #[tokio::test]
    async fn finds_tenants_by_id_slug_and_domain() {
        let mut acme = tenant("acme");
        acme.metadata = serde_json::json!({"domains": ["Shop.Acme.Example."]});
        let directory = InMemoryDirectory::with([acme.clone()]);
        let by = |i: Identifier| {
            let directory = &directory;
            async move { directory.lookup(&i).await.unwrap().map(|t| t.id) }
        };
        assert_eq!(by(Identifier::Id(acme.id.to_string())).await, Some(acme.id));
        assert_eq!(by(Identifier::Slug("acme".into())).await, Some(acme.id));
        assert_eq!(by(Identifier::Domain("shop.acme.example".into())).await, Some(acme.id));
        assert_eq!(by(Identifier::Slug("other".into())).await, None);
        assert_eq!(directory.lookups(), 4);
    }

    #[tokio::test]
    async fn a_live_tenant_wins_over_a_deleted_one_with_the_same_slug() {
        let mut old = tenant("acme");
        old.status = TenantStatus::Deleted;
        let new = tenant("acme");
        let directory = InMemoryDirectory::with([old, new.clone()]);
        let found = directory.lookup(&Identifier::Slug("acme".into())).await.unwrap();
        assert_eq!(found.map(|t| t.id), Some(new.id));
    }

    #[tokio::test]
    async fn can_be_made_unavailable() {
        let directory = InMemoryDirectory::new();
        directory.set_unavailable(true);
        assert!(directory.lookup(&Identifier::Slug("acme".into())).await.is_err());
    }
}
