//! Resolvers that read the request line and headers: [`Header`], [`PathPrefix`], [`Query`].

use std::fmt;
use std::future::{Future, ready};
use std::sync::Arc;

use axum::extract::OriginalUri;
use axum::http::request::Parts;
use axum::http::uri::PathAndQuery;
use axum::http::{HeaderName, Uri};

use super::{Identifier, Rejection, Resolver, TrustedProxies};

type IdentityCheck = Arc<dyn Fn(&Parts, &Identifier) -> bool + Send + Sync>;

/// The tenant is named in a request header: `X-Tenant-Slug` ([`Header::slug`]) or `X-Tenant-ID`
/// ([`Header::id`]).
///
/// Anyone can send a header, so restrict it when the tenant matters:
///
/// * [`Header::only_from`]: believed only from trusted proxies (a gateway that sets it), ignored
///   from anyone else;
/// * [`Header::verify`]: believed only when it agrees with the caller's authenticated identity;
///   otherwise the request gets 403 `tenant_forbidden`.
#[derive(Clone)]
pub struct Header {
    name: HeaderName,
    id: bool,
    proxies: Option<TrustedProxies>,
    verify: Option<IdentityCheck>,
}

impl Header {
    /// `X-Tenant-Slug: acme`.
    #[must_use]
    pub fn slug() -> Self {
        Self { name: HeaderName::from_static("x-tenant-slug"), id: false, proxies: None, verify: None }
    }

    /// `X-Tenant-ID: ten_…`.
    #[must_use]
    pub fn id() -> Self {
        Self { name: HeaderName::from_static("x-tenant-id"), id: true, proxies: None, verify: None }
    }

    /// Reads another header (`HeaderName::from_static("x-org")`).
    #[must_use]
    pub fn name(mut self, name: HeaderName) -> Self {
        self.name = name;
        self
    }

    /// Believes the header only on requests straight from these proxies.
    #[must_use]
    pub fn only_from(mut self, proxies: TrustedProxies) -> Self {
        self.proxies = Some(proxies);
        self
    }

    /// Believes the header only when `check(parts, identifier)` says the authenticated caller
    /// may act for that tenant (read your auth layer's extension from `parts.extensions`).
    #[must_use]
    pub fn verify(mut self, check: impl Fn(&Parts, &Identifier) -> bool + Send + Sync + 'static) -> Self {
        self.verify = Some(Arc::new(check));
        self
    }

    fn identify(&self, parts: &Parts) -> Result<Option<Identifier>, Rejection> {
        let Some(value) = parts.headers.get(&self.name) else {
            return Ok(None);
        };
        if let Some(proxies) = &self.proxies
            && !proxies.trusts(parts)
        {
            tracing::debug!(header = %self.name, "ignored a tenant header from an untrusted peer");
            return Ok(None);
        }
        let Some(text) = value.to_str().ok().map(str::trim).filter(|t| !t.is_empty()) else {
            return Ok(None);
        };
        let identifier =
            if self.id { Identifier::Id(text.to_owned()) } else { Identifier::Slug(text.to_owned()) };
        if let Some(check) = &self.verify
            && !check(parts, &identifier)
        {
            return Err(Rejection::Forbidden(format!(
                "the caller may not act for the tenant with the {identifier}"
            )));
        }
        Ok(Some(identifier))
    }
}

impl Resolver for Header {
    fn resolve(&self, parts: &Parts) -> impl Future<Output = Result<Option<Identifier>, Rejection>> + Send {
        ready(self.identify(parts))
    }
}

impl fmt::Debug for Header {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Header")
            .field("name", &self.name)
            .field("id", &self.id)
            .field("proxies", &self.proxies)
            .field("verify", &self.verify.is_some())
            .finish()
    }
}

/// The tenant is the first path segment after a prefix: `/t/acme/projects` names `acme` (a slug,
/// or an id `ten_…`).
///
/// With [`PathPrefix::strip`], the app sees `/projects` (query string kept; the original URI stays
/// available as axum's `OriginalUri`), so its routes do not mention the tenant. Stripping changes
/// routing, so it must happen before the router: wrap the whole `Router` in the layer
/// (`TenantLayer::layer(router)`, then `axum::ServiceExt::into_make_service…`) rather than
/// `Router::layer`, whose middleware runs after routing.
#[derive(Debug, Clone)]
pub struct PathPrefix {
    prefix: String,
    strip: bool,
}

impl Default for PathPrefix {
    fn default() -> Self {
        Self::new()
    }
}

impl PathPrefix {
    /// Under `/t/`, not stripped.
    #[must_use]
    pub fn new() -> Self {
        Self { prefix: "/t/".into(), strip: false }
    }

    /// Another prefix (`/orgs` or `/orgs/`).
    #[must_use]
    pub fn prefix(mut self, prefix: &str) -> Self {
        let trimmed = prefix.trim_matches('/');
        self.prefix = if trimmed.is_empty() { "/".into() } else { format!("/{trimmed}/") };
        self
    }

    /// Removes the prefix and the tenant segment from the URI the app sees.
    #[must_use]
    pub fn strip(mut self, strip: bool) -> Self {
        self.strip = strip;
        self
    }

    /// The tenant segment and the rest of the path (`""` when nothing follows).
    fn split<'a>(&self, path: &'a str) -> Option<(&'a str, &'a str)> {
        let rest = path.strip_prefix(self.prefix.as_str())?;
        let (segment, rest) = rest.find('/').map_or((rest, ""), |i| rest.split_at(i));
        (!segment.is_empty()).then_some((segment, rest))
    }
}

impl Resolver for PathPrefix {
    fn resolve(&self, parts: &Parts) -> impl Future<Output = Result<Option<Identifier>, Rejection>> + Send {
        ready(Ok(self.split(parts.uri.path()).map(|(segment, _)| Identifier::slug_or_id(segment))))
    }

    fn rewrite(&self, parts: &mut Parts) {
        if !self.strip {
            return;
        }
        let Some((_, rest)) = self.split(parts.uri.path()) else {
            return;
        };
        let path = if rest.is_empty() { "/" } else { rest };
        let path_and_query = match parts.uri.query() {
            Some(query) => format!("{path}?{query}"),
            None => path.to_owned(),
        };
        let mut uri = parts.uri.clone().into_parts();
        uri.path_and_query = PathAndQuery::try_from(path_and_query).ok();
        if let Ok(stripped) = Uri::from_parts(uri) {
            if parts.extensions.get::<OriginalUri>().is_none() {
                parts.extensions.insert(OriginalUri(parts.uri.clone()));
            }
            parts.uri = stripped;
        }
    }
}

/// The tenant is a query parameter: `?tenant=acme` (a slug, or an id `ten_…`).
#[derive(Debug, Clone)]
pub struct Query {
    name: String,
}

impl Default for Query {
    fn default() -> Self {
        Self::new()
    }
}

impl Query {
    /// The `tenant` parameter.
    #[must_use]
    pub fn new() -> Self {
        Self { name: "tenant".into() }
    }

    /// Another parameter.
    #[must_use]
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }
}

impl Resolver for Query {
    fn resolve(&self, parts: &Parts) -> impl Future<Output = Result<Option<Identifier>, Rejection>> + Send {
        let found = parts.uri.query().and_then(|query| {
            url::form_urlencoded::parse(query.as_bytes())
                .find(|(name, _)| *name == self.name)
                .filter(|(_, value)| !value.is_empty())
                .map(|(_, value)| Identifier::slug_or_id(&value))
        });
        ready(Ok(found))
    }
}

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use axum::routing::get;
    use tower::{Layer, ServiceExt};

    use super::*;
    use crate::detect::testing::{parts, parts_from, tenant};
    use crate::detect::{Chain, CurrentTenant, InMemoryDirectory, TenantCache, TenantLayer};

    fn slug(s: &str) -> Option<Identifier> {
        Some(Identifier::Slug(s.into()))
    }

    #[tokio::test]
    async fn headers_name_slugs_or_ids() {
        let request =
            parts(Request::get("/").header("x-tenant-slug", " acme ").header("x-tenant-id", "ten_X"));
        assert_eq!(Header::slug().resolve(&request).await.unwrap(), slug("acme"));
        assert_eq!(Header::id().resolve(&request).await.unwrap(), Some(Identifier::Id("ten_X".into())));
        let renamed = Header::slug().name(HeaderName::from_static("x-org"));
        assert_eq!(renamed.resolve(&request).await.unwrap(), None);
        let empty = parts(Request::get("/").header("x-tenant-slug", ""));
        assert_eq!(Header::slug().resolve(&empty).await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_header_from_an_untrusted_peer_is_ignored() {
        let header = Header::slug().only_from(TrustedProxies::new(["10.0.0.0/8"]).unwrap());
        let from = |peer: &str| parts_from(peer, Request::get("/").header("x-tenant-slug", "victim"));
        assert_eq!(header.resolve(&from("203.0.113.9:4000")).await.unwrap(), None);
        assert_eq!(
            header.resolve(&parts(Request::get("/").header("x-tenant-slug", "victim"))).await.unwrap(),
            None
        );
        assert_eq!(header.resolve(&from("10.9.8.7:4000")).await.unwrap(), slug("victim"));
    }

    #[tokio::test]
    async fn a_header_must_agree_with_the_identity_when_verified() {
        #[derive(Clone)]
        struct User {
            tenant: &'static str,
        }
        let header = Header::slug().verify(|parts, identifier| {
            parts.extensions.get::<User>().is_some_and(|user| identifier.as_str() == user.tenant)
        });
        let request = |tenant: &str| {
            parts(Request::get("/").header("x-tenant-slug", tenant).extension(User { tenant: "acme" }))
        };
        assert_eq!(header.resolve(&request("acme")).await.unwrap(), slug("acme"));
        let err = header.resolve(&request("globex")).await.unwrap_err();
        assert_eq!(err.code(), "tenant_forbidden");
    }

    #[tokio::test]
    async fn path_prefixes() {
        let path = |p: &str| parts(Request::get(p));
        let default = PathPrefix::new();
        assert_eq!(default.resolve(&path("/t/acme/projects?x=1")).await.unwrap(), slug("acme"));
        assert_eq!(default.resolve(&path("/t/acme")).await.unwrap(), slug("acme"));
        assert_eq!(default.resolve(&path("/t/")).await.unwrap(), None);
        assert_eq!(default.resolve(&path("/t//x")).await.unwrap(), None);
        assert_eq!(default.resolve(&path("/tx/acme")).await.unwrap(), None);
        assert_eq!(default.resolve(&path("/projects")).await.unwrap(), None);
        let orgs = PathPrefix::new().prefix("orgs");
        assert_eq!(orgs.resolve(&path("/orgs/acme/x")).await.unwrap(), slug("acme"));
        let id = carcosa_core::TenantId::generate().to_string();
        assert_eq!(orgs.resolve(&path(&format!("/orgs/{id}"))).await.unwrap(), Some(Identifier::Id(id)));
    }

    #[test]
    fn stripping_keeps_the_query_and_the_original_uri() {
        let strip = PathPrefix::new().strip(true);
        let cases = [
            ("/t/acme/projects/7?x=1&y=2", "/projects/7?x=1&y=2"),
            ("/t/acme", "/"),
            ("/t/acme/", "/"),
            ("/t/acme?x=1", "/?x=1"),
            ("http://acme.example/t/acme/a", "http://acme.example/a"),
            ("/other/path?x=1", "/other/path?x=1"),
        ];
        for (before, after) in cases {
            let mut request = parts(Request::get(before));
            strip.rewrite(&mut request);
            assert_eq!(request.uri.to_string(), after, "{before}");
        }
        let mut request = parts(Request::get("/t/acme/a"));
        strip.rewrite(&mut request);
        assert_eq!(request.extensions.get::<OriginalUri>().unwrap().0, "/t/acme/a");
        let mut kept = parts(Request::get("/t/acme/a"));
        PathPrefix::new().rewrite(&mut kept);
        assert_eq!(kept.uri, "/t/acme/a");
    }

    #[tokio::test]
    async fn the_inner_router_sees_the_stripped_path() {
        let directory = Arc::new(InMemoryDirectory::with([tenant("acme")]));
        let cache = TenantCache::builder(directory).build();
        let inner = Router::new().route(
            "/projects",
            get(|t: CurrentTenant, uri: Uri, OriginalUri(original): OriginalUri| async move {
                format!("{} {uri} {original}", t.slug)
            }),
        );
        let call = |strip: bool, uri: &str| {
            let chain = Chain::first_match().with(PathPrefix::new().strip(strip));
            let app = TenantLayer::new(chain, cache.clone()).layer(inner.clone());
            let request = Request::get(uri).body(Body::empty()).unwrap();
            async move {
                let response = app.oneshot(request).await.unwrap();
                let status = response.status();
                let body = axum::body::to_bytes(response.into_body(), 1024).await.unwrap();
                (status, String::from_utf8(body.to_vec()).unwrap())
            }
        };
        assert_eq!(
            call(true, "/t/acme/projects?page=2").await,
            (StatusCode::OK, "acme /projects?page=2 /t/acme/projects?page=2".to_owned())
        );
        assert_eq!(
            call(false, "/t/acme/projects").await.0,
            StatusCode::NOT_FOUND,
            "not stripped: no such route"
        );
        assert_eq!(call(true, "/t/ghost/projects").await.0, StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn query_parameters() {
        let query = |q: &str| parts(Request::get(format!("/x?{q}")));
        assert_eq!(Query::new().resolve(&query("a=1&tenant=acme")).await.unwrap(), slug("acme"));
        assert_eq!(Query::new().resolve(&query("tenant=")).await.unwrap(), None);
        assert_eq!(Query::new().resolve(&query("tenants=acme")).await.unwrap(), None);
        assert_eq!(Query::new().resolve(&parts(Request::get("/x"))).await.unwrap(), None);
        assert_eq!(Query::new().name("org").resolve(&query("org=ac%6De")).await.unwrap(), slug("acme"));
    }
}
