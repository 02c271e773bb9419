//! `/v1/sync-status`: apps report where they stand; operators read every app's lag.

use carcosa_core::Scope;
use reqwest::Method;
use serde_json::json;

use crate::helpers::{Backend, spawn, test_actor};
use crate::on_both_backends;

async fn apps_report_their_cursor_and_operators_see_the_lag(backend: Backend) {
    let app = spawn(backend).await;
    for i in 0..5 {
        app.create_named(&format!("Lagging {i}")).await;
    }
    let empty = app.get("/v1/sync-status").await.json();
    assert_eq!(empty, json!({"data": [], "head": "5"}));
    app.req(Method::POST, "/v1/sync-status")
        .json(&json!({"instance": "billing.web-1", "cursor": "2", "last_success_at": "2026-11-27T10:00:00Z"}))
        .send()
        .await
        .expect(204);
    app.req(Method::POST, "/v1/sync-status")
        .json(&json!({"instance": "crm", "cursor": "5", "last_error": "connection refused", "last_error_at": "2026-11-27T10:01:00Z"}))
        .send()
        .await
        .expect(204);
    // A second report replaces the first.
    app.req(Method::POST, "/v1/sync-status")
        .json(&json!({"instance": "billing.web-1", "cursor": "4", "last_success_at": "2026-11-27T10:02:00Z"}))
        .send()
        .await
        .expect(204);
    let list = app.get("/v1/sync-status").await.json();
    assert_eq!(list["head"], "5");
    let data = list["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    assert_eq!(data[0]["instance"], "billing.web-1");
    assert_eq!(data[0]["cursor"], "4");
    assert_eq!(data[0]["lag_events"], 1);
    assert_eq!(data[0]["last_success_at"], "2026-11-27T10:02:00.000000Z");
    assert_eq!(data[1]["instance"], "crm");
    assert_eq!(data[1]["lag_events"], 0);
    assert_eq!(data[1]["last_error"], "connection refused");

    app.req(Method::POST, "/v1/sync-status")
        .json(&json!({"instance": "bad name!", "cursor": "1"}))
        .send()
        .await
        .expect_problem(422, "invalid_instance");
    app.req(Method::POST, "/v1/sync-status")
        .json(&json!({"instance": "x", "cursor": "-1"}))
        .send()
        .await
        .expect_problem(422, "invalid_body");
    let (_, other) = app.other_project().await;
    assert_eq!(app.req(Method::GET, "/v1/sync-status").key(&other).send().await.json()["data"], json!([]));
    let (_, writer) =
        app.store.create_key(app.project, &[Scope::TenantsWrite], None, &test_actor()).await.unwrap();
    app.req(Method::GET, "/v1/sync-status")
        .key(&writer.expose())
        .send()
        .await
        .expect_problem(403, "insufficient_scope");
    app.finish().await;
}

on_both_backends!(apps_report_their_cursor_and_operators_see_the_lag);
