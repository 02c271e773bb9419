//! What tenant detection adds to a request on a cache hit (DESIGN §7: ≤ 1 µs).
//!
//! The same axum router is driven with and without the [`TenantLayer`]; the difference between
//! the two is the layer's cost. Results go to `docs/BENCHMARKS.md`:
//! `cargo bench -p carcosa --bench detect`.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::Request;
use axum::routing::get;
use carcosa::detect::{
    Chain, DetectedTenant, Header, Identifier, InMemoryDirectory, Subdomain, TenantCache, TenantLayer,
};
use carcosa_core::{Slug, TenantId, TenantStatus};
use criterion::{Criterion, criterion_group, criterion_main};
use tower::ServiceExt;

fn tenant() -> DetectedTenant {
    DetectedTenant {
        id: TenantId::generate(),
        slug: Slug::parse("acme").unwrap(),
        name: "Acme".into(),
        status: TenantStatus::Active,
        plan: None,
        metadata: serde_json::json!({}),
    }
}

fn request(host: &str, slug: Option<&str>) -> Request<Body> {
    let mut request = Request::get("/").header("host", host);
    if let Some(slug) = slug {
        request = request.header("x-tenant-slug", slug);
    }
    request.body(Body::empty()).unwrap()
}

fn detection(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let directory = Arc::new(InMemoryDirectory::with([tenant()]));
    let cache = TenantCache::builder(directory).build();
    let plain: Router = Router::new().route("/", get(|| async { "ok" }));
    let by_subdomain = plain.clone().layer(TenantLayer::new(
        Chain::first_match().with(Subdomain::new(["app.example.com"])),
        cache.clone(),
    ));
    let by_header =
        plain.clone().layer(TenantLayer::new(Chain::first_match().with(Header::slug()), cache.clone()));
    // Warm the cache: every measured request below is a hit.
    runtime.block_on(async {
        let warm = by_subdomain.clone().oneshot(request("acme.app.example.com", None)).await.unwrap();
        assert_eq!(warm.status(), 200);
    });

    let mut group = c.benchmark_group("detection");
    group.bench_function("no layer", |b| {
        b.to_async(&runtime).iter(|| plain.clone().oneshot(request("acme.app.example.com", None)));
    });
    group.bench_function("subdomain, cache hit", |b| {
        b.to_async(&runtime).iter(|| by_subdomain.clone().oneshot(request("acme.app.example.com", None)));
    });
    group.bench_function("header, cache hit", |b| {
        b.to_async(&runtime).iter(|| by_header.clone().oneshot(request("app.example.com", Some("acme"))));
    });
    group.finish();

    // The parts of the layer's work, without the router around them.
    let mut parts = c.benchmark_group("detection parts");
    let (request_parts, _) = request("acme.app.example.com", None).into_parts();
    let chain = Chain::first_match().with(Subdomain::new(["app.example.com"]));
    let slug = Identifier::Slug("acme".into());
    parts.bench_function("cache hit", |b| b.to_async(&runtime).iter(|| cache.get(&slug)));
    parts.bench_function("chain: subdomain + cache hit", |b| {
        b.to_async(&runtime).iter(|| chain.detect(&request_parts, &cache));
    });
    parts.finish();
}

criterion_group!(benches, detection);
criterion_main!(benches);
