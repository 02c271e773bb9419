//! The client against a real Carcosa server, and against scripted servers for the retry paths.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use carcosa::{Client, Error, ListTenants};
use carcosa_core::api::{TenantIn, TenantPatch};
use carcosa_core::{EventCursor, TenantStatus};

use crate::support::server;

pub fn named(name: &str) -> TenantIn {
    TenantIn { name: name.into(), ..TenantIn::default() }
}

#[tokio::test]
async fn the_client_covers_the_tenant_lifecycle_and_the_feed() {
    let server = server().await;
    let client = Client::new(&server.url, &server.key).unwrap();
    let created = client.create_tenant(&named("Acme Corp")).await.unwrap();
    assert_eq!(created.slug.as_str(), "acme-corp");
    assert_eq!(client.get_tenant("acme-corp").await.unwrap(), created);
    assert_eq!(client.get_tenant(&created.id.to_string()).await.unwrap(), created);

    let patch = TenantPatch { plan: Some(Some("pro".into())), ..TenantPatch::default() };
    let updated = client.update_tenant("acme-corp", &patch, Some(1)).await.unwrap();
    assert_eq!(updated.version, 2);
    let stale = client.update_tenant("acme-corp", &patch, Some(1)).await.unwrap_err();
    assert_eq!(stale.code(), Some("version_conflict"));
    assert_eq!(stale.status(), Some(412));

    let taken = client
        .create_tenant(&TenantIn { slug: Some("acme-corp".into()), ..named("Other") })
        .await
        .unwrap_err();
    assert_eq!(taken.code(), Some("slug_taken"));
    let missing = client.get_tenant("nobody here").await.unwrap_err();
    assert_eq!(missing.code(), Some("not_found"));

    for i in 0..4 {
        client.create_tenant(&named(&format!("Page {i}"))).await.unwrap();
    }
    let first = client.list_tenants(&ListTenants { limit: Some(3), ..ListTenants::default() }).await.unwrap();
    assert_eq!(first.data.len(), 3);
    let rest = client
        .list_tenants(&ListTenants {
            limit: Some(3),
            cursor: first.next_cursor.clone(),
            ..ListTenants::default()
        })
        .await
        .unwrap();
    assert_eq!(rest.data.len(), 2);
    assert_eq!(rest.next_cursor, None);
    let deleted = client.delete_tenant(&created.id.to_string(), None).await.unwrap();
    assert_eq!(deleted.status, TenantStatus::Deleted);
    let gone = client
        .list_tenants(&ListTenants { status: Some(TenantStatus::Deleted), ..ListTenants::default() })
        .await
        .unwrap();
    assert_eq!(gone.data.len(), 1);

    let feed = client.list_events(None, 100).await.unwrap();
    assert_eq!(feed.data.len(), 7);
    assert_eq!(feed.next_cursor, EventCursor::after_seq(7));
    let tail = client.list_events(Some(EventCursor::after_seq(5)), 100).await.unwrap();
    assert_eq!(tail.data.iter().map(|e| e.seq).collect::<Vec<_>>(), [6, 7]);

    let future = chrono::Utc::now() + chrono::TimeDelta::seconds(1);
    server.store.prune(future, future).await.unwrap();
    let expired = client.list_events(Some(EventCursor::after_seq(2)), 100).await.unwrap_err();
    assert!(expired.is_cursor_expired(), "{expired}");
}

#[tokio::test]
async fn apps_report_their_sync_status() {
    let server = server().await;
    let client = Client::new(&server.url, &server.key).unwrap();
    client.create_tenant(&named("Acme")).await.unwrap();
    client.create_tenant(&named("Globex")).await.unwrap();
    let status = carcosa_core::sync_status::SyncStatusIn {
        instance: "billing".into(),
        cursor: EventCursor::after_seq(1),
        last_success_at: Some(chrono::Utc::now()),
        last_error: None,
        last_error_at: None,
    };
    client.report_sync_status(&status).await.unwrap();
    let list = client.list_sync_status().await.unwrap();
    assert_eq!(list.head, EventCursor::after_seq(2));
    assert_eq!(list.data[0].instance, "billing");
    assert_eq!(list.data[0].lag_events, 1);
    let bad = carcosa_core::sync_status::SyncStatusIn { instance: "no spaces".into(), ..status };
    assert_eq!(client.report_sync_status(&bad).await.unwrap_err().code(), Some("invalid_instance"));
}

#[tokio::test]
async fn a_wrong_key_is_an_api_error() {
    let server = server().await;
    let client = Client::new(&server.url, "ck_nope").unwrap();
    let err = client.list_events(None, 10).await.unwrap_err();
    assert_eq!(err.code(), Some("unauthorized"));
    assert_eq!(err.status(), Some(401));
}

/// A server that answers `script` in order (status, Retry-After), then 201 with a tenant, and
/// records each request's Idempotency-Key.
async fn scripted(script: Vec<(u16, Option<&'static str>)>) -> (String, Arc<Mutex<Vec<String>>>) {
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let script = Arc::new(Mutex::new(script.into_iter().collect::<std::collections::VecDeque<_>>()));
    let record = seen.clone();
    let tenant = serde_json::json!({
        "id": "ten_01JDQ3V6Z8K4M2N7P9R1S3T5W7", "slug": "acme", "name": "Acme", "status": "active",
        "plan": null, "metadata": {}, "version": 1, "created_at": "2026-11-27T00:00:00Z",
        "updated_at": "2026-11-27T00:00:00Z", "deleted_at": null,
    });
    let app = axum::Router::new().fallback(move |headers: axum::http::HeaderMap| {
        let (record, script, tenant) = (record.clone(), script.clone(), tenant.clone());
        async move {
            use axum::response::IntoResponse;
            let key = headers.get("idempotency-key").and_then(|v| v.to_str().ok()).unwrap_or("-").to_owned();
            record.lock().unwrap().push(key);
            match script.lock().unwrap().pop_front() {
                Some((status, retry_after)) => {
                    let mut response = (
                        axum::http::StatusCode::from_u16(status).unwrap(),
                        [("content-type", "application/problem+json")],
                        format!(r#"{{"type":"urn:carcosa:problem:x","title":"x","status":{status},"detail":"scripted","code":"scripted_{status}"}}"#),
                    )
                        .into_response();
                    if let Some(value) = retry_after {
                        response.headers_mut().insert("retry-after", value.parse().unwrap());
                    }
                    response
                }
                None => (axum::http::StatusCode::CREATED, axum::Json(tenant)).into_response(),
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

fn quick(url: &str, retries: u32) -> Client {
    Client::builder(url, "ck_test")
        .max_retries(retries)
        .backoff(Duration::from_millis(10), Duration::from_millis(50))
        .build()
        .unwrap()
}

#[tokio::test]
async fn server_errors_and_429_are_retried_with_one_idempotency_key() {
    let (url, seen) = scripted(vec![(503, Some("0")), (500, None), (429, Some("0"))]).await;
    let tenant = quick(&url, 3).create_tenant(&named("Acme")).await.unwrap();
    assert_eq!(tenant.slug.as_str(), "acme");
    let keys = seen.lock().unwrap().clone();
    assert_eq!(keys.len(), 4, "three failures, then success");
    assert!(keys[0].starts_with("carcosa-rs-"));
    assert!(keys.iter().all(|k| *k == keys[0]), "every retry reuses the key: {keys:?}");
}

#[tokio::test]
async fn retries_stop_at_the_limit_and_report_the_last_answer() {
    let (url, seen) = scripted(vec![(503, None), (503, None), (503, None)]).await;
    let err = quick(&url, 2).create_tenant(&named("Acme")).await.unwrap_err();
    assert_eq!(err.status(), Some(503));
    assert_eq!(err.code(), Some("scripted_503"));
    assert_eq!(seen.lock().unwrap().len(), 3);
}

#[tokio::test]
async fn client_errors_are_not_retried() {
    let (url, seen) = scripted(vec![(422, None)]).await;
    let err = quick(&url, 3).create_tenant(&named("Acme")).await.unwrap_err();
    assert_eq!(err.code(), Some("scripted_422"));
    assert_eq!(seen.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn an_unreachable_server_is_a_transport_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let err = quick(&format!("http://127.0.0.1:{port}"), 1).get_tenant("acme").await.unwrap_err();
    assert!(matches!(err, Error::Transport(_)), "{err}");
}
