//! The webhook receiver: Carcosa pushes, the local table follows within moments, no polling.

use std::sync::Arc;
use std::time::Duration;

use carcosa::Client;
use carcosa::local::{DeletionPolicy, LocalStore, TableMapping};
use carcosa::receiver::webhook_router;
use carcosa::sync::Sync;
use carcosa_core::webhook::WebhookSecret;
use sqlx::{Connection, Row};

use crate::client::named;
use crate::support::server_with;

async fn local_names(url: &str) -> Vec<String> {
    let mut conn = sqlx::SqliteConnection::connect(url).await.unwrap();
    let rows = sqlx::query("SELECT name FROM tenants WHERE status <> 'deleted' ORDER BY name")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    rows.iter().map(|r| r.get(0)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_reach_the_local_table_without_polling() {
    let server = server_with(|c| c.webhook_allow_private = true).await;
    let client = Client::new(&server.url, &server.key).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let app_db = format!("sqlite://{}", dir.path().join("app.db").display());
    let store = LocalStore::connect(&app_db, TableMapping::default(), DeletionPolicy::Soft).await.unwrap();
    store.migrate().await.unwrap();
    let sync = Arc::new(Sync::new(client.clone(), store));

    // Register the endpoint first, then mount the receiver with its secret.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!("http://{}/carcosa/webhooks", listener.local_addr().unwrap());
    let created: serde_json::Value = reqwest::Client::new()
        .post(format!("{}/v1/webhook-endpoints", server.url))
        .bearer_auth(&server.key)
        .json(&serde_json::json!({ "url": hook }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let secret = WebhookSecret::parse(created["secret"].as_str().unwrap()).unwrap();
    let app = axum::Router::new().nest("/carcosa/webhooks", webhook_router(sync.clone(), vec![secret]));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    for name in ["Acme", "Globex"] {
        client.create_tenant(&named(name)).await.unwrap();
    }
    let mut names = Vec::new();
    for _ in 0..100 {
        names = local_names(&app_db).await;
        if names.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(names, ["Acme", "Globex"], "the webhooks alone brought both tenants");

    // A forged delivery is refused.
    let forged = reqwest::Client::new()
        .post(&hook)
        .header("webhook-id", "evt_x")
        .header("webhook-timestamp", chrono::Utc::now().timestamp().to_string())
        .header("webhook-signature", "v1,AAAA")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 401);
    sync.store().close().await;
}

/// Posts `event` to the receiver as Carcosa would: signed, with its id and a fresh timestamp.
async fn deliver(app: &axum::Router, secret: &WebhookSecret, event: &carcosa_core::Event) -> u16 {
    use tower::ServiceExt;
    let body = serde_json::to_vec(event).unwrap();
    let id = event.id.to_string();
    let now = chrono::Utc::now().timestamp();
    let signature = carcosa_core::webhook::signature_header(std::slice::from_ref(secret), &id, now, &body);
    let request = axum::http::Request::post("/")
        .header("webhook-id", id)
        .header("webhook-timestamp", now.to_string())
        .header("webhook-signature", signature)
        .body(axum::body::Body::from(body))
        .unwrap();
    app.clone().oneshot(request).await.unwrap().status().as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_webhook_is_repaired_by_the_feed() {
    let server = server_with(|_| {}).await;
    let client = Client::new(&server.url, &server.key).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let app_db = format!("sqlite://{}", dir.path().join("app.db").display());
    let store = LocalStore::connect(&app_db, TableMapping::default(), DeletionPolicy::Soft).await.unwrap();
    store.migrate().await.unwrap();
    let sync = Arc::new(Sync::new(client.clone(), store));
    client.create_tenant(&named("Acme")).await.unwrap();
    sync.full().await.unwrap();
    let secret = WebhookSecret::generate();
    let app = webhook_router(sync.clone(), vec![secret.clone()]);

    // Three changes; the webhook of the second never arrives.
    for name in ["Globex", "Initech", "Umbrella"] {
        client.create_tenant(&named(name)).await.unwrap();
    }
    let events = client.list_events(sync.store().cursor().await.unwrap(), 10).await.unwrap().data;
    assert_eq!(events.len(), 3);
    // The first is delivered twice, and the third before it: all harmless.
    assert_eq!(deliver(&app, &secret, &events[0]).await, 204);
    assert_eq!(deliver(&app, &secret, &events[2]).await, 204);
    assert_eq!(deliver(&app, &secret, &events[0]).await, 204);
    // The third's `seq` showed a gap: the receiver caught up through the feed.
    let mut names = Vec::new();
    for _ in 0..100 {
        names = local_names(&app_db).await;
        if names.len() == 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(names, ["Acme", "Globex", "Initech", "Umbrella"], "the dropped change came through the feed");
    assert_eq!(
        sync.store().cursor().await.unwrap(),
        Some(carcosa_core::EventCursor::after_seq(events[2].seq))
    );

    // An old snapshot replayed late changes nothing.
    let mut bogus = events[0].clone();
    bogus.tenant.version = 1;
    assert_eq!(deliver(&app, &secret, &bogus).await, 204, "a stale snapshot is acknowledged and ignored");
    assert_eq!(local_names(&app_db).await.len(), 4);
    sync.store().close().await;
}
