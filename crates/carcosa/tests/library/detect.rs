//! Tenant detection over the app's own table, kept fresh by the sync engine: the request right
//! after a sync applies a change sees it (SQLite; PostgreSQL and MariaDB as for the sync tests).

use axum::body::Body;
use axum::http::Request;
use carcosa::Client;
use carcosa::detect::{Chain, CurrentTenant, CustomDomain, Header, TenantCache, TenantLayer};
use carcosa::local::{DeletionPolicy, LocalStore, TableMapping};
use carcosa::sync::Sync;
use carcosa_core::TenantStatus;
use carcosa_core::api::{TenantIn, TenantPatch};
use tower::ServiceExt;

use crate::support::server;
use crate::sync::{Local, LocalDb};

/// `(status, body)` of a request naming a tenant by slug header, or by host.
async fn ask(app: &axum::Router, slug: Option<&str>, host: Option<&str>) -> (u16, String) {
    let mut request = Request::get("/");
    if let Some(slug) = slug {
        request = request.header("x-tenant-slug", slug);
    }
    if let Some(host) = host {
        request = request.header("host", host);
    }
    let response = app.clone().oneshot(request.body(Body::empty()).unwrap()).await.unwrap();
    let status = response.status().as_u16();
    let body = axum::body::to_bytes(response.into_body(), 1 << 16).await.unwrap();
    (status, String::from_utf8_lossy(&body).into_owned())
}

async fn the_next_request_after_a_sync_sees_the_change(kind: Local) {
    let server = server().await;
    let client = Client::new(&server.url, &server.key).unwrap();
    let db = LocalDb::create(kind).await;
    let store = LocalStore::connect(&db.url, TableMapping::default(), DeletionPolicy::Soft).await.unwrap();
    store.migrate().await.unwrap();
    // A long TTL: only invalidation can make a change visible in this test.
    let cache = TenantCache::builder(store.clone()).ttl(std::time::Duration::from_secs(3600)).build();
    let sync = Sync::new(client.clone(), store).invalidating(cache.clone());
    let acme = client
        .create_tenant(&TenantIn {
            name: "Acme".into(),
            metadata: Some(serde_json::json!({"domains": ["portal.acme.test"]})),
            ..TenantIn::default()
        })
        .await
        .unwrap();
    sync.full().await.unwrap();
    let chain = Chain::first_match().with(Header::slug()).with(CustomDomain::new());
    let app = axum::Router::new()
        .route("/", axum::routing::get(|tenant: CurrentTenant| async move { tenant.name.clone() }))
        .layer(TenantLayer::new(chain, cache));

    assert_eq!(ask(&app, Some("acme"), None).await, (200, "Acme".to_owned()));
    assert_eq!(ask(&app, None, Some("portal.acme.test")).await, (200, "Acme".to_owned()), "custom domain");
    let (status, body) = ask(&app, Some("globex"), None).await;
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("tenant_not_found"), "{body}");
    assert_eq!(ask(&app, None, Some("portal.unknown.test")).await.0, 404);

    // Renamed on the server: the request right after the sync sees the new name.
    let id = acme.id.to_string();
    let rename = TenantPatch { name: Some("Acme Two".into()), ..TenantPatch::default() };
    client.update_tenant(&id, &rename, None).await.unwrap();
    assert_eq!(ask(&app, Some("acme"), None).await.1, "Acme", "cached until the sync applies the change");
    sync.incremental().await.unwrap();
    assert_eq!(ask(&app, Some("acme"), None).await, (200, "Acme Two".to_owned()));

    // A slug that was unknown (and cached as such) exists once the sync brings it.
    client.create_tenant(&TenantIn { name: "Globex".into(), ..TenantIn::default() }).await.unwrap();
    sync.incremental().await.unwrap();
    assert_eq!(ask(&app, Some("globex"), None).await, (200, "Globex".to_owned()));

    let suspend = TenantPatch { status: Some(TenantStatus::Suspended), ..TenantPatch::default() };
    client.update_tenant(&id, &suspend, None).await.unwrap();
    sync.incremental().await.unwrap();
    let (status, body) = ask(&app, Some("acme"), None).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("tenant_suspended"), "{body}");

    client.delete_tenant(&id, None).await.unwrap();
    sync.incremental().await.unwrap();
    assert_eq!(ask(&app, Some("acme"), None).await.0, 404, "deleted");
    assert_eq!(ask(&app, None, Some("portal.acme.test")).await.0, 404, "deleted, by domain too");
    sync.store().close().await;
    db.finish().await;
}

mod sqlite {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_next_request_after_a_sync_sees_the_change() {
        super::the_next_request_after_a_sync_sees_the_change(super::Local::Sqlite).await;
    }
}

mod postgres {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "needs PostgreSQL: set CARCOSA_TEST_POSTGRES_URL"]
    async fn the_next_request_after_a_sync_sees_the_change() {
        super::the_next_request_after_a_sync_sees_the_change(super::Local::Postgres).await;
    }
}

mod mysql {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "needs MySQL or MariaDB: set CARCOSA_TEST_MYSQL_URL"]
    async fn the_next_request_after_a_sync_sees_the_change() {
        super::the_next_request_after_a_sync_sees_the_change(super::Local::MySql).await;
    }
}
