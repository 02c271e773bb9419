//! The library's metrics (sync and detection), read from the process's Prometheus recorder: the
//! one the Carcosa server installs (`carcosa_server::telemetry::install`), which the servers these
//! tests start share. The library itself only emits through the `metrics` facade.
//!
//! Other tests of this binary count too, in parallel: each assertion compares an increase with
//! at least what this test did.

use std::sync::Arc;

use axum::body::Body;
use axum::http::Request;
use carcosa::Client;
use carcosa::detect::{Chain, DetectedTenant, Header, InMemoryDirectory, TenantCache, TenantLayer};
use carcosa::local::{DeletionPolicy, LocalStore, TableMapping};
use carcosa::sync::Sync;
use carcosa_core::{Slug, TenantId, TenantStatus};
use tower::ServiceExt;

use crate::client::named;
use crate::support::server;

/// The sum of the samples of `name` whose labels include `labels` (0 when there are none).
fn read(name: &str, labels: &[(&str, &str)]) -> f64 {
    let text = carcosa_server::telemetry::install().expect("the Prometheus recorder").render();
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.rsplit_once(' '))
        .filter(|(series, _)| {
            let (metric, rest) = series.split_once('{').unwrap_or((series, ""));
            metric == name && labels.iter().all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")))
        })
        .map(|(_, value)| value.parse::<f64>().unwrap())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_and_changes_are_counted() {
    carcosa_server::telemetry::install();
    let server = server().await;
    let client = Client::new(&server.url, &server.key).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("app.db").display());
    let store = LocalStore::connect(&url, TableMapping::default(), DeletionPolicy::Soft).await.unwrap();
    store.migrate().await.unwrap();
    let sync = Sync::new(client.clone(), store);
    let full = [("kind", "full"), ("outcome", "ok")];
    let failed = [("kind", "incremental"), ("outcome", "error")];
    let full_before = read("carcosa_sync_runs_total", &full);
    let created_before = read("carcosa_sync_tenants_total", &[("change", "created")]);
    let failed_before = read("carcosa_sync_runs_total", &failed);
    let timed_before = read("carcosa_sync_duration_seconds_count", &[("kind", "full")]);
    for name in ["One", "Two", "Three"] {
        client.create_tenant(&named(name)).await.unwrap();
    }
    sync.full().await.unwrap();
    assert!(read("carcosa_sync_runs_total", &full) > full_before);
    assert!(read("carcosa_sync_tenants_total", &[("change", "created")]) >= created_before + 3.0);
    assert!(read("carcosa_sync_duration_seconds_count", &[("kind", "full")]) > timed_before);
    let text = carcosa_server::telemetry::install().unwrap().render();
    assert!(text.contains("\ncarcosa_sync_lag_events "), "{text}");
    assert!(text.contains("\ncarcosa_sync_cursor "), "{text}");

    let broken = Sync::new(Client::new("http://127.0.0.1:9", &server.key).unwrap(), sync.store().clone());
    broken.incremental().await.unwrap_err();
    assert!(read("carcosa_sync_runs_total", &failed) > failed_before);
    sync.store().close().await;
}

fn tenant(slug: &str, status: TenantStatus) -> DetectedTenant {
    DetectedTenant {
        id: TenantId::generate(),
        slug: Slug::parse(slug).unwrap(),
        name: slug.to_owned(),
        status,
        plan: None,
        metadata: serde_json::Value::Null,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn detection_counts_outcomes_hits_and_misses() {
    carcosa_server::telemetry::install();
    let directory = Arc::new(InMemoryDirectory::with([
        tenant("metered", TenantStatus::Active),
        tenant("paused", TenantStatus::Suspended),
    ]));
    let cache = TenantCache::builder(directory).build();
    let app = axum::Router::new()
        .route("/", axum::routing::get(|| async { "ok" }))
        .layer(TenantLayer::new(Chain::first_match().with(Header::slug()), cache));
    let ask = |slug: Option<&str>| {
        let mut request = Request::get("/");
        if let Some(slug) = slug {
            request = request.header("x-tenant-slug", slug);
        }
        let app = app.clone();
        let request = request.body(Body::empty()).unwrap();
        async move { app.oneshot(request).await.unwrap().status().as_u16() }
    };
    let outcome = |outcome: &str| read("carcosa_tenant_resolutions_total", &[("outcome", outcome)]);
    let before = ["resolved", "not_found", "suspended", "required"].map(outcome);
    let hits_before = read("carcosa_tenant_cache_hits_total", &[]);
    let misses_before = read("carcosa_tenant_cache_misses_total", &[]);

    assert_eq!(ask(Some("metered")).await, 200, "a miss, then the directory");
    assert_eq!(ask(Some("metered")).await, 200, "a hit");
    assert_eq!(ask(Some("metered")).await, 200, "a hit");
    assert_eq!(ask(Some("ghost")).await, 404);
    assert_eq!(ask(Some("paused")).await, 403);
    assert_eq!(ask(None).await, 400);

    let after = ["resolved", "not_found", "suspended", "required"].map(outcome);
    assert!(after[0] >= before[0] + 3.0, "resolved: {before:?} → {after:?}");
    assert!(after[1] > before[1], "not_found: {before:?} → {after:?}");
    assert!(after[2] > before[2], "suspended: {before:?} → {after:?}");
    assert!(after[3] > before[3], "required: {before:?} → {after:?}");
    assert!(read("carcosa_tenant_cache_hits_total", &[]) >= hits_before + 2.0);
    assert!(read("carcosa_tenant_cache_misses_total", &[]) >= misses_before + 3.0, "metered, ghost, paused");
}
