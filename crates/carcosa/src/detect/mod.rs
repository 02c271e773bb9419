//! Tenant detection: a tower layer that answers *which tenant is this request?* (feature `axum`).
//!
//! A request goes through three steps:
//!
//! 1. **Resolvers** read an [`Identifier`] (a slug, an id `ten_…`, or a custom domain) from the
//!    request: [`Subdomain`], [`CustomDomain`], [`Header`], [`PathPrefix`], [`Query`],
//!    [`JwtClaim`], or your own through [`from_fn`] or the [`Resolver`] trait. A [`Chain`] runs
//!    them in order: the first that finds something wins, or, in [`Chain::must_agree`] mode,
//!    every one that finds something must name the same tenant.
//! 2. **Lookup**: the [`TenantCache`] turns the identifier into a [`DetectedTenant`] through your
//!    [`TenantDirectory`] (the app's local tenant table), keeping hits and misses for a while.
//!    The sync engine calls [`TenantCache::invalidate`] the moment it applies a change.
//! 3. **Outcome**: an active tenant is put in the request's extensions (read it with the
//!    [`CurrentTenant`] extractor) and in the task-local of [`crate::tenancy`]; anything else is
//!    a [`Rejection`] answered as problem+json, which you can replace with your own response.
//!
//! ```
//! use std::sync::Arc;
//! use axum::{Router, routing::get};
//! use carcosa::detect::{Chain, CurrentTenant, Header, InMemoryDirectory, Subdomain, TenantCache, TenantLayer};
//!
//! # fn demo() {
//! let directory = Arc::new(InMemoryDirectory::new()); // the app's own table in production
//! let cache = TenantCache::builder(directory).build();
//! let chain = Chain::first_match()
//!     .with(Subdomain::new(["app.example.com"]))
//!     .with(Header::slug());
//! let app: Router = Router::new()
//!     .route("/", get(|tenant: CurrentTenant| async move { format!("hello {}", tenant.name) }))
//!     .layer(TenantLayer::new(chain, cache.clone()));
//! # }
//! ```
//!
//! What does not live here: the local table itself ([`crate::local`]) and the sync engine that
//! fills it ([`crate::sync`]).

mod cache;
mod chain;
mod directory;
mod extract;
mod host;
mod jwt;
mod layer;
mod local;
mod rejection;
mod request;
mod stats;

use std::fmt;

use carcosa_core::{Slug, TenantId};

pub use cache::{TenantCache, TenantCacheBuilder};
pub use chain::{Chain, FromFn, Resolver, from_fn};
pub use directory::{DirectoryError, InMemoryDirectory, TenantDirectory};
pub use host::{CustomDomain, Host, InvalidProxy, Subdomain, TrustedProxies, normalize_host, peer_ip};
pub use jwt::{InvalidKey, Jwks, JwtClaim, JwtKey};
pub use layer::{TenantLayer, TenantService};
pub use rejection::{Rejection, RejectionHandler};
pub use request::{Header, PathPrefix, Query};

pub use crate::tenancy::{CurrentTenant, DetectedTenant};

/// What a resolver read from a request, before it is looked up.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Identifier {
    /// A tenant id, `ten_…`.
    Id(String),
    /// A slug.
    Slug(String),
    /// A full host name, for custom domains.
    Domain(String),
}

impl Identifier {
    /// An id if `value` parses as a tenant id (`ten_…`), a slug otherwise. The two cannot be
    /// confused: a slug never contains `_`.
    #[must_use]
    pub fn slug_or_id(value: &str) -> Self {
        if value.starts_with(TenantId::PREFIX) {
            Self::Id(value.to_owned())
        } else {
            Self::Slug(value.to_owned())
        }
    }

    /// The canonical form used as a cache key, or `None` when the text cannot name any tenant
    /// (not a valid slug, id or host name), so it is unknown without asking the directory.
    /// Ids are upper-cased after their prefix, domains normalized by [`normalize_host`].
    #[must_use]
    pub fn canonical(&self) -> Option<Self> {
        match self {
            Self::Id(id) => TenantId::parse(id).ok().map(|id| Self::Id(id.to_string())),
            Self::Slug(slug) => Slug::parse(slug).is_ok().then(|| self.clone()),
            Self::Domain(host) => match normalize_host(host)? {
                host::Host::Name(name) => Some(Self::Domain(name)),
                host::Host::Ip(_) => None,
            },
        }
    }

    /// The text of the identifier, whatever its kind.
    #[must_use]
    pub fn as_str(&self) -> &str {
        match self {
            Self::Id(s) | Self::Slug(s) | Self::Domain(s) => s,
        }
    }
}

impl fmt::Display for Identifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (kind, text) = match self {
            Self::Id(s) => ("id", s),
            Self::Slug(s) => ("slug", s),
            Self::Domain(s) => ("domain", s),
        };
        // Identifiers come from requests: keep what is echoed short.
        let shown: String = text.chars().take(80).collect();
        write!(f, "{kind} `{shown}`")
    }
}

#[cfg(test)]
pub(crate) mod testing;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_and_ids_are_told_apart() {
        assert_eq!(Identifier::slug_or_id("acme"), Identifier::Slug("acme".into()));
        let id = TenantId::generate().to_string();
        assert_eq!(Identifier::slug_or_id(&id), Identifier::Id(id));
    }

    #[test]
    fn canonical_forms() {
        let id = TenantId::generate().to_string();
        let lower = format!("ten_{}", id["ten_".len()..].to_lowercase());
        assert_eq!(Identifier::Id(lower).canonical(), Some(Identifier::Id(id)));
        assert_eq!(Identifier::Id("ten_nope".into()).canonical(), None);
        assert_eq!(Identifier::Slug("acme".into()).canonical(), Some(Identifier::Slug("acme".into())));
        assert_eq!(Identifier::Slug("Acme".into()).canonical(), None);
        assert_eq!(Identifier::Slug("xn--bcher-kva".into()).canonical(), None);
        assert_eq!(
            Identifier::Domain("Shop.Acme.Example.:443".into()).canonical(),
            Some(Identifier::Domain("shop.acme.example".into()))
        );
        assert_eq!(Identifier::Domain("10.0.0.1".into()).canonical(), None);
    }
}
