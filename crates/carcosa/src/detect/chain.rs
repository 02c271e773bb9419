//! The [`Resolver`] trait, [`from_fn`], and the [`Chain`] that runs resolvers in order and looks
//! up what they found.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use axum::http::request::Parts;
use carcosa_core::TenantStatus;

use super::{CurrentTenant, Identifier, Rejection, TenantCache};

/// Reads a tenant [`Identifier`] from a request.
///
/// `Ok(None)` means "this source names no tenant" (the next resolver is asked); an `Err` ends
/// detection with that rejection (a forged token, a forbidden header). Implement it with an
/// `async fn`, or return `std::future::ready(…)` when nothing needs to wait.
pub trait Resolver: Send + Sync + 'static {
    /// The identifier this source names, if any.
    fn resolve(&self, parts: &Parts) -> impl Future<Output = Result<Option<Identifier>, Rejection>> + Send;

    /// Changes the request before the app sees it, once a tenant is settled or detection passed
    /// through (whichever resolver found the tenant). [`super::PathPrefix`] strips its prefix
    /// here. Does nothing by default.
    fn rewrite(&self, parts: &mut Parts) {
        let _ = parts;
    }
}

type ResolveFuture<'a> = Pin<Box<dyn Future<Output = Result<Option<Identifier>, Rejection>> + Send + 'a>>;

/// [`Resolver`] made object-safe, so a chain can hold resolvers of different types.
trait DynResolver: Send + Sync + 'static {
    fn resolve_boxed<'a>(&'a self, parts: &'a Parts) -> ResolveFuture<'a>;
    fn rewrite_dyn(&self, parts: &mut Parts);
}

impl<R: Resolver> DynResolver for R {
    fn resolve_boxed<'a>(&'a self, parts: &'a Parts) -> ResolveFuture<'a> {
        Box::pin(self.resolve(parts))
    }

    fn rewrite_dyn(&self, parts: &mut Parts) {
        self.rewrite(parts);
    }
}

/// A resolver made of a function, for any source the others do not cover.
///
/// The function gets the request parts and returns a future; copy what the future needs out of
/// the parts first (the future cannot borrow them):
///
/// ```
/// use carcosa::detect::{Identifier, from_fn};
///
/// let cookie = from_fn(|parts| {
///     let value = parts.headers.get("cookie").and_then(|v| v.to_str().ok()).map(str::to_owned);
///     async move {
///         Ok(value.and_then(|v| v.strip_prefix("tenant=").map(Identifier::slug_or_id)))
///     }
/// });
/// ```
pub fn from_fn<F, Fut>(resolve: F) -> FromFn<F>
where
    F: Fn(&Parts) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Option<Identifier>, Rejection>> + Send,
{
    FromFn(resolve)
}

/// The resolver [`from_fn`] builds.
#[derive(Clone)]
pub struct FromFn<F>(F);

impl<F> fmt::Debug for FromFn<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FromFn(..)")
    }
}

impl<F, Fut> Resolver for FromFn<F>
where
    F: Fn(&Parts) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Option<Identifier>, Rejection>> + Send,
{
    fn resolve(&self, parts: &Parts) -> impl Future<Output = Result<Option<Identifier>, Rejection>> + Send {
        (self.0)(parts)
    }
}

/// Resolvers in order, and how their answers combine.
///
/// * [`Chain::first_match`]: the first resolver that finds an identifier decides; the others are
///   not asked.
/// * [`Chain::must_agree`]: every resolver is asked; all that find something must name the same
///   tenant, compared after lookup (a slug and the id of one tenant agree), or the request gets
///   400 `tenant_conflict`.
///
/// Either way an identifier that names no live tenant ends detection with 404: later resolvers
/// are not a fallback for an unknown tenant.
#[derive(Clone, Default)]
pub struct Chain {
    resolvers: Vec<(&'static str, Arc<dyn DynResolver>)>,
    must_agree: bool,
}

impl Chain {
    /// An empty chain in which the first match wins.
    #[must_use]
    pub fn first_match() -> Self {
        Self::default()
    }

    /// An empty chain in which every source that names a tenant must name the same one.
    #[must_use]
    pub fn must_agree() -> Self {
        Self { must_agree: true, ..Self::default() }
    }

    /// Appends a resolver.
    #[must_use]
    pub fn with<R: Resolver>(mut self, resolver: R) -> Self {
        self.resolvers.push((std::any::type_name::<R>(), Arc::new(resolver)));
        self
    }

    /// Finds the request's tenant: `Ok(None)` when no resolver names one, `Ok(Some)` for an
    /// active tenant, a [`Rejection`] for anything else.
    pub async fn detect(
        &self,
        parts: &Parts,
        cache: &TenantCache,
    ) -> Result<Option<CurrentTenant>, Rejection> {
        let mut settled: Option<(Identifier, CurrentTenant)> = None;
        for (_, resolver) in &self.resolvers {
            let Some(identifier) = resolver.resolve_boxed(parts).await? else {
                continue;
            };
            match &settled {
                Some((first, _)) if *first == identifier => continue,
                _ => {}
            }
            let tenant = lookup(cache, &identifier).await?;
            match &settled {
                None => settled = Some((identifier, tenant)),
                Some((first, agreed)) if agreed.id != tenant.id => {
                    return Err(Rejection::Conflict { first: first.clone(), second: identifier });
                }
                Some(_) => {}
            }
            if !self.must_agree {
                break;
            }
        }
        match settled {
            Some((_, tenant)) if tenant.status == TenantStatus::Suspended => {
                Err(Rejection::Suspended(tenant))
            }
            Some((_, tenant)) => Ok(Some(tenant)),
            None => Ok(None),
        }
    }

    /// Lets every resolver change the request (see [`Resolver::rewrite`]).
    pub fn rewrite(&self, parts: &mut Parts) {
        for (_, resolver) in &self.resolvers {
            resolver.rewrite_dyn(parts);
        }
    }
}

/// The tenant `identifier` names; deleted tenants are not found.
async fn lookup(cache: &TenantCache, identifier: &Identifier) -> Result<CurrentTenant, Rejection> {
    match cache.get(identifier).await {
        Ok(Some(tenant)) if tenant.status != TenantStatus::Deleted => Ok(CurrentTenant::from(tenant)),
        Ok(_) => Err(Rejection::NotFound(identifier.clone())),
        Err(err) => {
            tracing::error!(error = %err, "cannot look up a tenant");
            Err(Rejection::Unavailable(err.to_string()))
        }
    }
}

impl fmt::Debug for Chain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Chain")
            .field("resolvers", &self.resolvers.iter().map(|(name, _)| *name).collect::<Vec<_>>())
            .field("must_agree", &self.must_agree)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use axum::http::Request;

    use super::*;
    use crate::detect::testing::{parts, tenant};
    use crate::detect::{Header, InMemoryDirectory, Query, Subdomain};

    fn fixed(identifier: Option<Identifier>) -> impl Resolver {
        from_fn(move |_| std::future::ready(Ok(identifier.clone())))
    }

    fn setup()
    -> (Arc<InMemoryDirectory>, TenantCache, crate::detect::DetectedTenant, crate::detect::DetectedTenant)
    {
        let (acme, globex) = (tenant("acme"), tenant("globex"));
        let directory = Arc::new(InMemoryDirectory::with([acme.clone(), globex.clone()]));
        let cache = TenantCache::builder(directory.clone()).build();
        (directory, cache, acme, globex)
    }

    #[tokio::test]
    async fn the_first_resolver_that_finds_something_wins() {
        let (_, cache, acme, _) = setup();
        let chain = Chain::first_match()
            .with(fixed(None))
            .with(fixed(Some(Identifier::Slug("acme".into()))))
            .with(fixed(Some(Identifier::Slug("ghost".into()))));
        let found = chain.detect(&parts(Request::get("/")), &cache).await.unwrap();
        assert_eq!(found.map(|t| t.id), Some(acme.id));
        assert!(Chain::first_match().detect(&parts(Request::get("/")), &cache).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn an_unknown_tenant_is_not_found_even_if_a_later_resolver_knows_one() {
        let (_, cache, _, _) = setup();
        let chain = Chain::first_match()
            .with(fixed(Some(Identifier::Slug("ghost".into()))))
            .with(fixed(Some(Identifier::Slug("acme".into()))));
        let err = chain.detect(&parts(Request::get("/")), &cache).await.unwrap_err();
        assert!(matches!(err, Rejection::NotFound(Identifier::Slug(s)) if s == "ghost"));
    }

    #[tokio::test]
    async fn must_agree_compares_tenants_after_lookup() {
        let (_, cache, acme, _) = setup();
        let request = |host: &str, header: &str, query: &str| {
            parts(Request::get(format!("/?{query}")).header("host", host).header("x-tenant-id", header))
        };
        let chain =
            Chain::must_agree().with(Subdomain::new(["app.com"])).with(Header::id()).with(Query::new());

        // A slug and the id of the same tenant agree.
        let same = request("acme.app.com", &acme.id.to_string(), "tenant=acme");
        assert_eq!(chain.detect(&same, &cache).await.unwrap().map(|t| t.id), Some(acme.id));

        // Sources that find nothing do not take part.
        let only_host = parts(Request::get("/").header("host", "acme.app.com"));
        assert_eq!(chain.detect(&only_host, &cache).await.unwrap().map(|t| t.id), Some(acme.id));

        let conflict = request("acme.app.com", &acme.id.to_string(), "tenant=globex");
        let err = chain.detect(&conflict, &cache).await.unwrap_err();
        assert!(
            matches!(&err, Rejection::Conflict { first: Identifier::Slug(a), second: Identifier::Slug(b) } if a == "acme" && b == "globex"),
            "{err:?}"
        );
        assert_eq!(err.code(), "tenant_conflict");
        assert_eq!(err.status(), 400);
    }

    #[tokio::test]
    async fn suspended_and_deleted_tenants_are_refused() {
        let (directory, cache, mut acme, mut globex) = setup();
        acme.status = TenantStatus::Suspended;
        globex.status = TenantStatus::Deleted;
        directory.upsert(acme);
        directory.upsert(globex);
        let by = |slug: &str| Chain::first_match().with(fixed(Some(Identifier::Slug(slug.into()))));
        let request = parts(Request::get("/"));
        assert_eq!(by("acme").detect(&request, &cache).await.unwrap_err().code(), "tenant_suspended");
        assert_eq!(by("globex").detect(&request, &cache).await.unwrap_err().code(), "tenant_not_found");
    }

    #[tokio::test]
    async fn a_directory_failure_is_unavailable() {
        let (directory, cache, _, _) = setup();
        directory.set_unavailable(true);
        let chain = Chain::first_match().with(fixed(Some(Identifier::Slug("acme".into()))));
        let err = chain.detect(&parts(Request::get("/")), &cache).await.unwrap_err();
        assert_eq!(err.code(), "tenant_lookup_unavailable");
    }

    #[tokio::test]
    async fn from_fn_resolvers_can_reject() {
        let (_, cache, _, _) = setup();
        let chain = Chain::first_match().with(from_fn(|parts: &Parts| {
            let denied = parts.headers.contains_key("x-denied");
            async move { if denied { Err(Rejection::Forbidden("no".into())) } else { Ok(None) } }
        }));
        assert!(chain.detect(&parts(Request::get("/")), &cache).await.unwrap().is_none());
        let denied = parts(Request::get("/").header("x-denied", "1"));
        assert_eq!(chain.detect(&denied, &cache).await.unwrap_err().code(), "tenant_forbidden");
    }
}
