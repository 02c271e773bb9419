//! API keys: scopes, revocation, and isolation between projects.

use carcosa_core::Scope;
use reqwest::Method;
use serde_json::json;

use crate::helpers::{Backend, spawn, test_actor};
use crate::on_both_backends;

async fn a_revoked_key_is_refused(backend: Backend) {
    let app = spawn(backend).await;
    let (out, key) =
        app.store.create_key(app.project, &Scope::ALL, Some("temp"), &test_actor()).await.unwrap();
    let key = key.expose();
    app.req(Method::GET, "/v1/tenants").key(&key).send().await.expect(200);
    // Its use is recorded (in the background, right after the request).
    let mut last_used = None;
    for _ in 0..50 {
        let keys = app.store.list_keys(app.project).await.unwrap();
        last_used = keys.into_iter().find(|k| k.id == out.id).and_then(|k| k.last_used_at);
        if last_used.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(last_used.is_some(), "last_used_at was not recorded");
    let revoked = app.store.revoke_key(&out.id, &test_actor()).await.unwrap();
    assert!(revoked.revoked_at.is_some());
    let problem =
        app.req(Method::GET, "/v1/tenants").key(&key).send().await.expect_problem(401, "unauthorized");
    assert!(problem["detail"].as_str().unwrap().contains("revoked"));
    // The project's other key still works.
    app.get("/v1/tenants").await.expect(200);
    app.finish().await;
}

async fn scopes_limit_what_a_key_can_do(backend: Backend) {
    let app = spawn(backend).await;
    let tenant = app.create_named("Scoped").await;
    let path = format!("/v1/tenants/{}", tenant.id);
    let (_, reader) =
        app.store.create_key(app.project, &[Scope::TenantsRead], None, &test_actor()).await.unwrap();
    let reader = reader.expose();
    app.req(Method::GET, &path).key(&reader).send().await.expect(200);
    app.req(Method::GET, "/v1/tenants").key(&reader).send().await.expect(200);
    let denied = app.req(Method::POST, "/v1/tenants").key(&reader).json(&json!({"name": "No"})).send().await;
    let problem = denied.expect_problem(403, "insufficient_scope");
    assert!(problem["detail"].as_str().unwrap().contains("tenants:write"));
    app.req(Method::PATCH, &path)
        .key(&reader)
        .json(&json!({"name": "No"}))
        .send()
        .await
        .expect_problem(403, "insufficient_scope");
    app.req(Method::DELETE, &path).key(&reader).send().await.expect_problem(403, "insufficient_scope");
    app.req(Method::GET, "/v1/events").key(&reader).send().await.expect_problem(403, "insufficient_scope");

    let (_, feed) =
        app.store.create_key(app.project, &[Scope::EventsRead], None, &test_actor()).await.unwrap();
    let feed = feed.expose();
    app.req(Method::GET, "/v1/events").key(&feed).send().await.expect(200);
    app.req(Method::GET, &path).key(&feed).send().await.expect_problem(403, "insufficient_scope");
    assert_eq!(app.get(&path).await.tenant().version, 1, "refused writes changed nothing");
    app.finish().await;
}

async fn one_project_never_sees_another(backend: Backend) {
    let app = spawn(backend).await;
    let mine = app.create_tenant(json!({"name": "Mine", "slug": "shared-slug"})).await;
    let (_, other) = app.other_project().await;
    let path = format!("/v1/tenants/{}", mine.id);
    // Another project's key gets 404 for every route that names the tenant: it cannot tell the
    // tenant exists.
    app.req(Method::GET, &path).key(&other).send().await.expect_problem(404, "not_found");
    app.req(Method::PATCH, &path)
        .key(&other)
        .json(&json!({"name": "Stolen"}))
        .send()
        .await
        .expect_problem(404, "not_found");
    app.req(Method::DELETE, &path).key(&other).send().await.expect_problem(404, "not_found");
    app.req(Method::GET, "/v1/tenants/shared-slug").key(&other).send().await.expect_problem(404, "not_found");
    // Listings and the feed are per project.
    let list = app.req(Method::GET, "/v1/tenants").key(&other).send().await;
    assert_eq!(list.json()["data"], json!([]));
    assert_eq!(list.json()["as_of"], "0");
    let feed = app.req(Method::GET, "/v1/events").key(&other).send().await;
    assert_eq!(feed.json()["data"], json!([]));
    // Slugs are unique per project, not globally; the other project's feed starts at 1.
    let theirs = app
        .req(Method::POST, "/v1/tenants")
        .key(&other)
        .json(&json!({"name": "Theirs", "slug": "shared-slug"}))
        .send()
        .await;
    theirs.expect(201);
    let feed = app.req(Method::GET, "/v1/events").key(&other).send().await.json();
    assert_eq!(feed["data"][0]["seq"], 1);
    assert_eq!(app.get(&path).await.tenant(), mine, "untouched by the other project");
    app.finish().await;
}

on_both_backends!(a_revoked_key_is_refused, scopes_limit_what_a_key_can_do, one_project_never_sees_another);
