//! [`TenantLayer`]: the tower layer that runs detection in front of the app.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::http::Request;
use axum::response::Response;
use tower::{Layer, Service};

use super::{Chain, Rejection, RejectionHandler, TenantCache, stats};
use crate::tenancy;

#[derive(Clone)]
struct Config {
    chain: Chain,
    cache: TenantCache,
    optional: bool,
    on_rejection: RejectionHandler,
    span_field: Option<&'static str>,
}

/// Finds each request's tenant and hands it to the app.
///
/// For an active tenant the layer puts a [`super::CurrentTenant`] in the request's extensions,
/// lets resolvers rewrite the request ([`super::PathPrefix`] stripping), records the slug on the
/// current tracing span if asked to, and runs the app inside [`tenancy::scope`]. Otherwise it
/// answers with the [`Rejection`]'s response — or, when the request names no tenant and the layer
/// is [optional](TenantLayer::optional), calls the app without one.
///
/// Works with `Router::layer` and `Router::route_layer`; to strip a path prefix, wrap the whole
/// router instead (see [`super::PathPrefix`]).
#[derive(Clone)]
pub struct TenantLayer(Arc<Config>);

impl TenantLayer {
    /// Runs `chain`, looking tenants up through `cache`; a request naming no tenant gets 400
    /// `tenant_required`.
    #[must_use]
    pub fn new(chain: Chain, cache: TenantCache) -> Self {
        Self(Arc::new(Config {
            chain,
            cache,
            optional: false,
            on_rejection: RejectionHandler::default(),
            span_field: None,
        }))
    }

    fn config(&mut self) -> &mut Config {
        Arc::make_mut(&mut self.0)
    }

    /// Lets requests that name no tenant through (a landing page, a sign-up form). Handlers can
    /// take `Option<CurrentTenant>`. A tenant that is named but unknown or suspended is still
    /// refused.
    #[must_use]
    pub fn optional(mut self) -> Self {
        self.config().optional = true;
        self
    }

    /// Answers rejections with your own responses (also used by the [`super::CurrentTenant`]
    /// extractor behind an optional layer).
    #[must_use]
    pub fn on_rejection(
        mut self,
        respond: impl Fn(&Rejection) -> axum::response::Response + Send + Sync + 'static,
    ) -> Self {
        self.config().on_rejection = RejectionHandler::new(respond);
        self
    }

    /// Records the tenant's slug in this field of the current span. The span must declare the
    /// field (`tracing::info_span!("request", tenant = tracing::field::Empty)`), as
    /// `tower_http`'s `TraceLayer::make_span_with` can.
    #[must_use]
    pub fn record_in_span(mut self, field: &'static str) -> Self {
        self.config().span_field = Some(field);
        self
    }
}

impl fmt::Debug for TenantLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TenantLayer")
            .field("chain", &self.0.chain)
            .field("optional", &self.0.optional)
            .field("span_field", &self.0.span_field)
            .finish_non_exhaustive()
    }
}

impl<S> Layer<S> for TenantLayer {
    type Service = TenantService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        TenantService { inner, config: self.0.clone() }
    }
}

/// The service [`TenantLayer`] wraps around the app.
#[derive(Clone)]
pub struct TenantService<S> {
    inner: S,
    config: Arc<Config>,
}

impl<S> fmt::Debug for TenantService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TenantService").field("chain", &self.config.chain).finish_non_exhaustive()
    }
}

impl<S, B> Service<Request<B>> for TenantService<S>
where
    S: Service<Request<B>, Response = Response> + Clone + Send + 'static,
    S::Future: Send,
    B: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        // The clone is not ready; the instance polled ready is the one that serves this request.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let config = self.config.clone();
        Box::pin(async move {
            let (mut parts, body) = request.into_parts();
            match config.chain.detect(&parts, &config.cache).await {
                Ok(Some(tenant)) => {
                    stats::resolution("resolved");
                    config.chain.rewrite(&mut parts);
                    if let Some(field) = config.span_field {
                        tracing::Span::current().record(field, tenant.slug.as_str());
                    }
                    parts.extensions.insert(tenant.clone());
                    let request = Request::from_parts(parts, body);
                    tenancy::scope(tenant, async move { inner.call(request).await }).await
                }
                Ok(None) if config.optional => {
                    stats::resolution("none");
                    config.chain.rewrite(&mut parts);
                    parts.extensions.insert(config.on_rejection.clone());
                    inner.call(Request::from_parts(parts, body)).await
                }
                Ok(None) => {
                    stats::rejected(&Rejection::Required);
                    Ok(config.on_rejection.respond(&Rejection::Required))
                }
                Err(rejection) => {
                    stats::rejected(&rejection);
                    tracing::debug!(code = rejection.code(), reason = %rejection, "refused a request's tenant");
                    Ok(config.on_rejection.respond(&rejection))
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use axum::Router;
    use axum::body::Body;
    use axum::extract::connect_info::MockConnectInfo;
    use axum::http::{StatusCode, header::CONTENT_TYPE};
    use axum::response::IntoResponse;
    use axum::routing::get;
    use carcosa_core::TenantStatus;
    use tower::ServiceExt;

    use super::*;
    use crate::detect::testing::tenant;
    use crate::detect::{CurrentTenant, Header, InMemoryDirectory, Subdomain, TrustedProxies};

    struct App {
        directory: Arc<InMemoryDirectory>,
        cache: TenantCache,
    }

    impl App {
        fn new() -> Self {
            let mut suspended = tenant("paused");
            suspended.status = TenantStatus::Suspended;
            let mut deleted = tenant("gone");
            deleted.status = TenantStatus::Deleted;
            let directory = Arc::new(InMemoryDirectory::with([tenant("acme"), suspended, deleted]));
            let cache = TenantCache::builder(directory.clone()).build();
            Self { directory, cache }
        }

        fn chain() -> Chain {
            Chain::first_match().with(Subdomain::new(["app.com"])).with(Header::slug())
        }

        /// `/` needs a tenant; `/maybe` takes an optional one; `/job` reads the task-local from
        /// a spawned job.
        fn router(&self, layer: TenantLayer) -> Router {
            Router::new()
                .route("/", get(|t: CurrentTenant| async move { t.slug.to_string() }))
                .route(
                    "/maybe",
                    get(|t: Option<CurrentTenant>| async move {
                        t.map_or("none".to_owned(), |t| t.slug.to_string())
                    }),
                )
                .route(
                    "/job",
                    get(|| async {
                        let job = tenancy::scope(tenancy::current().unwrap(), async {
                            tokio::task::yield_now().await;
                            tenancy::current().map(|t| t.slug.to_string())
                        });
                        tokio::spawn(job).await.unwrap().unwrap_or_default()
                    }),
                )
                .layer(layer)
        }

        fn layer(&self) -> TenantLayer {
            TenantLayer::new(Self::chain(), self.cache.clone())
        }
    }

    async fn call(router: &Router, host: &str, path: &str) -> (StatusCode, Option<String>, String) {
        let request = Request::get(path).header("host", host).body(Body::empty()).unwrap();
        let response = router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let content_type = response.headers().get(CONTENT_TYPE).map(|v| v.to_str().unwrap().to_owned());
        let body = axum::body::to_bytes(response.into_body(), 1 << 16).await.unwrap();
        (status, content_type, String::from_utf8(body.to_vec()).unwrap())
    }

    fn code(body: &str) -> String {
        serde_json::from_str::<serde_json::Value>(body).unwrap()["code"].as_str().unwrap().to_owned()
    }

    #[tokio::test]
    async fn a_known_tenant_reaches_the_handler() {
        let app = App::new();
        let router = app.router(app.layer());
        assert_eq!(
            call(&router, "acme.app.com", "/").await,
            (StatusCode::OK, Some("text/plain; charset=utf-8".into()), "acme".into())
        );
        assert_eq!(call(&router, "acme.app.com", "/maybe").await.2, "acme");
    }

    #[tokio::test]
    async fn outcomes_are_problems() {
        let app = App::new();
        let router = app.router(app.layer());
        let cases = [
            ("ghost.app.com", StatusCode::NOT_FOUND, "tenant_not_found"),
            ("gone.app.com", StatusCode::NOT_FOUND, "tenant_not_found"),
            ("paused.app.com", StatusCode::FORBIDDEN, "tenant_suspended"),
            ("www.app.com", StatusCode::BAD_REQUEST, "tenant_required"),
            ("10.0.0.1", StatusCode::BAD_REQUEST, "tenant_required"),
        ];
        for (host, status, expected) in cases {
            let (got, content_type, body) = call(&router, host, "/").await;
            assert_eq!((got, code(&body).as_str()), (status, expected), "{host}");
            assert_eq!(content_type.as_deref(), Some("application/problem+json"));
        }
        assert_eq!(call(&router, "acme.app.com", "/").await.0, StatusCode::OK);
        app.directory.set_unavailable(true);
        let (status, _, body) = call(&router, "other.app.com", "/").await;
        assert_eq!(
            (status, code(&body).as_str()),
            (StatusCode::SERVICE_UNAVAILABLE, "tenant_lookup_unavailable")
        );
        // A cached tenant is still served while the directory is down.
        assert_eq!(call(&router, "acme.app.com", "/").await.0, StatusCode::OK);
    }

    #[tokio::test]
    async fn an_optional_layer_lets_requests_without_a_tenant_through() {
        let app = App::new();
        let router = app.router(app.layer().optional());
        assert_eq!(call(&router, "www.app.com", "/maybe").await.2, "none");
        // The handler that needs one still refuses, with the problem.
        let (status, _, body) = call(&router, "www.app.com", "/").await;
        assert_eq!((status, code(&body).as_str()), (StatusCode::BAD_REQUEST, "tenant_required"));
        // A named but unknown tenant is still refused.
        assert_eq!(call(&router, "ghost.app.com", "/maybe").await.0, StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn responses_can_be_overridden() {
        let app = App::new();
        let layer = app.layer().optional().on_rejection(|rejection| match rejection {
            Rejection::NotFound(identifier) => {
                (StatusCode::IM_A_TEAPOT, format!("no {}", identifier.as_str())).into_response()
            }
            Rejection::Required => (StatusCode::UNAUTHORIZED, "pick a workspace").into_response(),
            other => other.to_response(),
        });
        let router = app.router(layer);
        assert_eq!(call(&router, "ghost.app.com", "/").await.2, "no ghost");
        assert_eq!(call(&router, "ghost.app.com", "/").await.0, StatusCode::IM_A_TEAPOT);
        assert_eq!(call(&router, "paused.app.com", "/").await.0, StatusCode::FORBIDDEN);
        // The extractor behind an optional layer answers with the override too.
        assert_eq!(
            call(&router, "www.app.com", "/").await,
            (StatusCode::UNAUTHORIZED, Some("text/plain; charset=utf-8".into()), "pick a workspace".into())
        );
    }

    #[tokio::test]
    async fn the_extractor_without_a_layer_refuses() {
        let router: Router =
            Router::new().route("/", get(|t: CurrentTenant| async move { t.slug.to_string() }));
        let (status, _, body) = call(&router, "acme.app.com", "/").await;
        assert_eq!((status, code(&body).as_str()), (StatusCode::BAD_REQUEST, "tenant_required"));
    }

    #[tokio::test]
    async fn a_spawned_job_wrapped_in_scope_keeps_the_tenant() {
        let app = App::new();
        let router = app.router(app.layer());
        assert_eq!(call(&router, "acme.app.com", "/job").await.2, "acme");
    }

    #[tokio::test]
    async fn a_renamed_tenant_is_seen_by_the_next_request() {
        let app = App::new();
        let router = app.router(app.layer());
        assert_eq!(call(&router, "acme.app.com", "/").await.0, StatusCode::OK);
        let mut renamed = app
            .cache
            .get(&crate::detect::Identifier::Slug("acme".into()))
            .await
            .unwrap()
            .unwrap()
            .as_ref()
            .clone();
        renamed.slug = carcosa_core::Slug::parse("acme-corp").unwrap();
        renamed.status = TenantStatus::Suspended;
        app.directory.upsert(renamed.clone());
        let now = chrono::Utc::now();
        let snapshot = carcosa_core::Tenant {
            id: renamed.id,
            slug: renamed.slug.clone(),
            name: renamed.name.clone(),
            status: renamed.status,
            plan: renamed.plan.clone(),
            metadata: serde_json::Map::new(),
            version: 2,
            created_at: now,
            updated_at: now,
            deleted_at: None,
        };
        app.cache.invalidate(&snapshot).await;
        assert_eq!(call(&router, "acme.app.com", "/").await.0, StatusCode::NOT_FOUND);
        assert_eq!(call(&router, "acme-corp.app.com", "/").await.0, StatusCode::FORBIDDEN);
    }

    #[tokio::test]
    async fn forwarded_hosts_and_headers_follow_the_peer_address() {
        let app = App::new();
        let proxies = TrustedProxies::new(["10.0.0.0/8"]).unwrap();
        let chain = Chain::first_match()
            .with(Subdomain::new(["app.com"]).trusted_proxies(proxies.clone()))
            .with(Header::slug().only_from(proxies));
        let router = |peer: &str| {
            let peer: SocketAddr = peer.parse().unwrap();
            app.router(TenantLayer::new(chain.clone(), app.cache.clone())).layer(MockConnectInfo(peer))
        };
        let request = |header: (&str, &str)| {
            Request::get("/")
                .header("host", "www.app.com")
                .header(header.0, header.1)
                .body(Body::empty())
                .unwrap()
        };
        let status =
            |router: Router, header| async move { router.oneshot(request(header)).await.unwrap().status() };
        let untrusted = "203.0.113.5:40000";
        let trusted = "10.0.0.2:40000";
        assert_eq!(
            status(router(untrusted), ("x-forwarded-host", "acme.app.com")).await,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(status(router(trusted), ("x-forwarded-host", "acme.app.com")).await, StatusCode::OK);
        assert_eq!(status(router(untrusted), ("x-tenant-slug", "acme")).await, StatusCode::BAD_REQUEST);
        assert_eq!(status(router(trusted), ("x-tenant-slug", "acme")).await, StatusCode::OK);
    }

    /// Collects the values recorded on spans after their creation.
    #[derive(Clone, Default)]
    struct Recorded(Arc<std::sync::Mutex<Vec<(String, String)>>>);

    impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Recorded {
        fn on_record(
            &self,
            _: &tracing::span::Id,
            values: &tracing::span::Record<'_>,
            _: tracing_subscriber::layer::Context<'_, S>,
        ) {
            struct Visit<'a>(&'a Recorded);
            impl tracing::field::Visit for Visit<'_> {
                fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn fmt::Debug) {
                    self.0.0.lock().unwrap().push((field.name().to_owned(), format!("{value:?}")));
                }
                fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
                    self.0.0.lock().unwrap().push((field.name().to_owned(), value.to_owned()));
                }
            }
            values.record(&mut Visit(self));
        }
    }

    #[tokio::test]
    async fn the_slug_is_recorded_on_the_request_span() {
        use tracing::Instrument;
        use tracing_subscriber::layer::SubscriberExt;

        let recorded = Recorded::default();
        let _guard = tracing::subscriber::set_default(tracing_subscriber::registry().with(recorded.clone()));
        let app = App::new();
        let router = app.router(app.layer().record_in_span("tenant"));
        let request = Request::get("/").header("host", "acme.app.com").body(Body::empty()).unwrap();
        let span = tracing::info_span!("request", tenant = tracing::field::Empty);
        let response = router.oneshot(request).instrument(span).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(*recorded.0.lock().unwrap(), [("tenant".to_owned(), "acme".to_owned())]);
    }
}
