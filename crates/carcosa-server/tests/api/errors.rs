//! Every client mistake gets a problem+json answer with a stable code — never a 5xx.

use reqwest::Method;
use serde_json::json;

use crate::helpers::{Backend, spawn, spawn_with};
use crate::on_both_backends;

async fn malformed_and_mistyped_bodies_are_rejected_clearly(backend: Backend) {
    let app = spawn(backend).await;
    let post = |body: &'static str| app.req(Method::POST, "/v1/tenants").raw("application/json", body).send();
    post("{\"name\": ").await.expect_problem(400, "malformed_json");
    post("not json").await.expect_problem(400, "malformed_json");
    post("").await.expect_problem(400, "malformed_json");
    let wrong_type = post("{\"name\": 42}").await.expect_problem(422, "invalid_body");
    assert!(wrong_type["detail"].as_str().unwrap().contains("invalid type"), "{wrong_type}");
    let unknown = post("{\"name\": \"A\", \"colour\": \"red\"}").await.expect_problem(422, "invalid_body");
    assert!(unknown["detail"].as_str().unwrap().contains("colour"), "{unknown}");
    post("{}").await.expect_problem(422, "invalid_body");
    post("[1, 2]").await.expect_problem(422, "invalid_body");
    post("{\"name\": \"A\", \"status\": \"sleeping\"}").await.expect_problem(422, "invalid_body");
    post("{\"name\": \"   \"}").await.expect_problem(422, "invalid_name");
    post("{\"name\": \"A\", \"status\": \"deleted\"}").await.expect_problem(422, "invalid_status");
    post("{\"name\": \"A\", \"plan\": \"\"}").await.expect_problem(422, "invalid_plan");
    let too_long = format!("{{\"name\": \"{}\"}}", "n".repeat(201));
    app.req(Method::POST, "/v1/tenants")
        .raw("application/json", too_long)
        .send()
        .await
        .expect_problem(422, "invalid_name");
    app.req(Method::POST, "/v1/tenants")
        .raw("text/plain", "{\"name\": \"A\"}")
        .send()
        .await
        .expect_problem(415, "unsupported_media_type");
    app.req(Method::POST, "/v1/tenants").send().await.expect_problem(415, "unsupported_media_type");

    let tenant = app.create_named("Target").await;
    let path = format!("/v1/tenants/{}", tenant.id);
    app.req(Method::PATCH, &path)
        .raw("application/merge-patch+json", "{\"name\": \"B\"}")
        .send()
        .await
        .expect(200);
    app.req(Method::PATCH, &path)
        .raw("application/json", "{\"status\": \"deleted\"}")
        .send()
        .await
        .expect_problem(422, "invalid_status");
    app.req(Method::PATCH, &path)
        .raw("application/json", "{\"version\": 9}")
        .send()
        .await
        .expect_problem(422, "invalid_body");
    app.req(Method::PATCH, &path)
        .raw("application/json", "{\"name\": null}")
        .send()
        .await
        .expect_problem(422, "invalid_body");
    app.finish().await;
}

async fn oversized_bodies_get_413(backend: Backend) {
    let app = spawn_with(backend, |c| c.max_body_bytes = 4096).await;
    let body = json!({"name": "Big", "metadata": {"blob": "x".repeat(8192)}});
    app.post("/v1/tenants", &body).await.expect_problem(413, "payload_too_large");
    app.finish().await;
}

async fn unknown_routes_and_methods_get_problems(backend: Backend) {
    let app = spawn(backend).await;
    app.get("/v1/nothing-here").await.expect_problem(404, "not_found");
    app.req(Method::PUT, "/v1/tenants")
        .json(&json!({}))
        .send()
        .await
        .expect_problem(405, "method_not_allowed");
    // Text that is neither an id nor a slug cannot name a tenant.
    app.get("/v1/tenants/Not%20A%20Slug").await.expect_problem(404, "not_found");
    app.get("/v1/tenants/ten_00000000000000000000000000").await.expect_problem(404, "not_found");
    app.finish().await;
}

async fn credentials_are_required_and_checked(backend: Backend) {
    let app = spawn(backend).await;
    let tenant = app.create_named("Secret").await;
    let path = format!("/v1/tenants/{}", tenant.id);
    app.anonymous(Method::GET, &path).send().await.expect_problem(401, "unauthorized");
    app.anonymous(Method::GET, &path)
        .header("authorization", "Basic Zm9vOmJhcg==")
        .send()
        .await
        .expect_problem(401, "unauthorized");
    app.anonymous(Method::GET, &path).key("ck_nope").send().await.expect_problem(401, "unauthorized");
    // The right key id with a wrong secret.
    let forged = format!("{}{}", &app.key[..app.key.len() - 4], "AAAA");
    app.anonymous(Method::GET, &path).key(&forged).send().await.expect_problem(401, "unauthorized");
    let unknown = carcosa_core::ApiKey::generate().expose();
    app.anonymous(Method::GET, &path).key(&unknown).send().await.expect_problem(401, "unauthorized");
    app.anonymous(Method::GET, "/v1/events").send().await.expect_problem(401, "unauthorized");
    // Two keys in one request are ambiguous, even if one of them is valid.
    let bearer = format!("Bearer {}", app.key);
    app.anonymous(Method::GET, &path)
        .header("authorization", &bearer)
        .header("authorization", &format!("Bearer {unknown}"))
        .send()
        .await
        .expect_problem(401, "unauthorized");
    app.anonymous(Method::GET, &path).header("authorization", &bearer).send().await.expect(200);
    app.finish().await;
}

async fn nul_characters_are_refused_on_every_backend(backend: Backend) {
    // PostgreSQL cannot store the NUL character; the API refuses it up front, on both backends.
    let app = spawn(backend).await;
    let body = r#"{"name": "Nul Co", "metadata": {"note": "a\u0000b"}}"#;
    app.req(Method::POST, "/v1/tenants")
        .raw("application/json", body)
        .send()
        .await
        .expect_problem(422, "invalid_metadata");
    let key_body = r#"{"name": "Nul Co", "metadata": {"a\u0000": 1}}"#;
    app.req(Method::POST, "/v1/tenants")
        .raw("application/json", key_body)
        .send()
        .await
        .expect_problem(422, "invalid_metadata");
    app.get("/v1/tenants?q=%00").await.expect_problem(400, "invalid_query");
    let endpoint = r#"{"url": "http://127.0.0.1:9/", "description": "a\u0000"}"#;
    app.req(Method::POST, "/v1/webhook-endpoints")
        .raw("application/json", endpoint)
        .send()
        .await
        .expect_problem(422, "invalid_description");
    let status = r#"{"instance": "nul", "cursor": "0", "last_error": "boom\u0000"}"#;
    app.req(Method::POST, "/v1/sync-status").raw("application/json", status).send().await.expect(204);
    assert_eq!(app.get("/v1/sync-status").await.json()["data"][0]["last_error"], "boom");
    app.finish().await;
}

on_both_backends!(
    nul_characters_are_refused_on_every_backend,
    malformed_and_mistyped_bodies_are_rejected_clearly,
    oversized_bodies_get_413,
    unknown_routes_and_methods_get_problems,
    credentials_are_required_and_checked,
);
