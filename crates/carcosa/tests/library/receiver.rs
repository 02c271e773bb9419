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
