//! What the tenant-detection layer adds to a request (DESIGN §7: ≤ 1 µs on a cache hit),
//! measured in-process: the same axum router driven through `tower::ServiceExt::oneshot` in a
//! tight loop, with and without `TenantLayer`, on a current-thread runtime of its own.
//! No network: this is the layer's own cost, which the criterion bench
//! (`cargo bench -p carcosa --bench detect`) measures the same way.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::Request;
use axum::routing::get;
use carcosa::detect::{
    Chain, DetectedTenant, Header, InMemoryDirectory, Subdomain, TenantCache, TenantLayer,
};
use carcosa_core::{Slug, TenantId, TenantStatus};
use serde::Serialize;
use tower::ServiceExt;

/// Nanoseconds per request of each router.
#[derive(Debug, Clone, Serialize)]
pub(super) struct LayerResult {
    pub no_layer_ns: f64,
    pub subdomain_ns: f64,
    pub header_ns: f64,
    /// `subdomain_ns - no_layer_ns`: what the layer adds.
    pub added_subdomain_ns: f64,
    /// `header_ns - no_layer_ns`.
    pub added_header_ns: f64,
}

/// Times each router for `warmup` then `measure`, on a thread of its own.
pub(super) async fn measure(warmup: Duration, measure: Duration) -> anyhow::Result<LayerResult> {
    tokio::task::spawn_blocking(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        runtime.block_on(run(warmup, measure))
    })
    .await?
}

async fn run(warmup: Duration, measure: Duration) -> anyhow::Result<LayerResult> {
    let tenant = DetectedTenant {
        id: TenantId::generate(),
        slug: Slug::parse("acme")?,
        name: "Acme".into(),
        status: TenantStatus::Active,
        plan: None,
        metadata: serde_json::json!({}),
    };
    let cache = TenantCache::builder(Arc::new(InMemoryDirectory::with([tenant]))).build();
    let plain: Router = Router::new().route("/", get(|| async { "ok" }));
    let by_subdomain = plain.clone().layer(TenantLayer::new(
        Chain::first_match().with(Subdomain::new(["app.example.com"])),
        cache.clone(),
    ));
    let by_header = plain.clone().layer(TenantLayer::new(Chain::first_match().with(Header::slug()), cache));
    let request = |host: &str, slug: Option<&str>| {
        let mut request = Request::get("/").header("host", host);
        if let Some(slug) = slug {
            request = request.header("x-tenant-slug", slug);
        }
        request.body(Body::empty()).expect("a valid request")
    };
    // Every measured request is a cache hit.
    let first = by_subdomain.clone().oneshot(request("acme.app.example.com", None)).await?;
    anyhow::ensure!(first.status() == 200, "the layer refused the tenant: {}", first.status());

    let no_layer = time(&plain, || request("acme.app.example.com", None), warmup, measure).await?;
    let subdomain = time(&by_subdomain, || request("acme.app.example.com", None), warmup, measure).await?;
    let header = time(&by_header, || request("app.example.com", Some("acme")), warmup, measure).await?;
    Ok(LayerResult {
        no_layer_ns: no_layer,
        subdomain_ns: subdomain,
        header_ns: header,
        added_subdomain_ns: subdomain - no_layer,
        added_header_ns: header - no_layer,
    })
}

/// Mean nanoseconds per `oneshot` of `router`, building the request included (as in the
/// criterion bench): it costs the same with and without the layer, so the difference is the
/// layer's.
async fn time(
    router: &Router,
    make: impl Fn() -> Request<Body>,
    warmup: Duration,
    measure: Duration,
) -> anyhow::Result<f64> {
    const BATCH: u32 = 1000;
    let until = Instant::now() + warmup;
    while Instant::now() < until {
        for _ in 0..BATCH {
            router.clone().oneshot(make()).await?;
        }
    }
    let started = Instant::now();
    let mut done = 0_u64;
    while started.elapsed() < measure {
        for _ in 0..BATCH {
            let response = router.clone().oneshot(make()).await?;
            std::hint::black_box(response);
        }
        done += u64::from(BATCH);
    }
    Ok(started.elapsed().as_nanos() as f64 / done as f64)
}
