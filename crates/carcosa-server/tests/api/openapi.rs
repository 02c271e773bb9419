//! The OpenAPI document describes what the server really does.

use reqwest::Method;
use serde_json::Value;

use crate::helpers::{Backend, Seen, spawn};
use crate::on_both_backends;

/// Asserts that every exchange a test saw is described by `spec`: the route exists, the method
/// is there, the status is documented, and the content type matches the documented one.
pub fn assert_documented(spec: &Value, seen: &[Seen]) {
    let paths = spec["paths"].as_object().expect("paths");
    for exchange in seen {
        let path = exchange.path.split('?').next().unwrap_or_default();
        let Some((template, item)) = paths.iter().find(|(template, _)| matches_template(template, path))
        else {
            // Unknown routes are the fallback's business; they must still be problems.
            assert_eq!(exchange.content_type, "application/problem+json", "{exchange:?}");
            continue;
        };
        let method = exchange.method.as_str().to_ascii_lowercase();
        let Some(operation) = item.get(&method) else {
            assert_eq!(exchange.status, 405, "{exchange:?}");
            continue;
        };
        let status = exchange.status.to_string();
        let response = operation["responses"].get(&status).unwrap_or_else(|| {
            panic!("{} {template} returned {status}, which /openapi.json does not document", exchange.method)
        });
        if let Some(content) = response["content"].as_object() {
            let media = exchange.content_type.split(';').next().unwrap_or_default().trim();
            assert!(
                content.contains_key(media),
                "{} {template} {status} answered {media}, documented: {:?}",
                exchange.method,
                content.keys().collect::<Vec<_>>()
            );
        }
    }
}

fn matches_template(template: &str, path: &str) -> bool {
    let t: Vec<&str> = template.split('/').collect();
    let p: Vec<&str> = path.split('/').collect();
    t.len() == p.len() && t.iter().zip(&p).all(|(t, p)| (t.starts_with('{') && !p.is_empty()) || t == p)
}

async fn the_document_lists_every_route_and_error(backend: Backend) {
    let app = spawn(backend).await;
    let spec = app.anonymous(Method::GET, "/openapi.json").send().await;
    spec.expect(200);
    let spec = spec.json();
    assert_eq!(spec["openapi"], "3.1.0");
    let expected = [
        ("/v1/tenants", "post"),
        ("/v1/tenants", "get"),
        ("/v1/tenants/{id}", "get"),
        ("/v1/tenants/{id}", "patch"),
        ("/v1/tenants/{id}", "delete"),
        ("/v1/events", "get"),
        ("/v1/webhook-endpoints", "post"),
        ("/v1/webhook-endpoints", "get"),
        ("/v1/webhook-endpoints/{id}", "get"),
        ("/v1/webhook-endpoints/{id}", "patch"),
        ("/v1/webhook-endpoints/{id}", "delete"),
        ("/v1/webhook-endpoints/{id}/rotate-secret", "post"),
        ("/v1/webhook-endpoints/{id}/test", "post"),
        ("/v1/webhook-endpoints/{id}/deliveries", "get"),
        ("/v1/webhook-endpoints/{id}/recover", "post"),
        ("/v1/deliveries/{id}/resend", "post"),
        ("/v1/sync-status", "post"),
        ("/v1/sync-status", "get"),
        ("/v1/audit-log", "get"),
        ("/healthz", "get"),
        ("/readyz", "get"),
        ("/openapi.json", "get"),
        ("/docs", "get"),
    ];
    for (path, method) in expected {
        let operation = &spec["paths"][path][method];
        assert!(operation.is_object(), "{method} {path} is missing");
        assert!(
            operation["summary"].as_str().is_some_and(|s| !s.is_empty()),
            "{method} {path} has no summary"
        );
        if path.starts_with("/v1/") {
            for status in ["401", "403", "500"] {
                let schema = &operation["responses"][status]["content"]["application/problem+json"]["schema"];
                assert_eq!(schema["$ref"], "#/components/schemas/Problem", "{method} {path} {status}");
            }
            assert!(operation["security"].is_array(), "{method} {path} names no scope");
        }
    }
    for schema in [
        "Tenant",
        "TenantIn",
        "TenantPatch",
        "TenantPage",
        "Event",
        "EventPage",
        "Problem",
        "EndpointIn",
        "EndpointOut",
        "EndpointWithSecret",
        "DeliveryPage",
    ] {
        assert!(spec["components"]["schemas"][schema].is_object(), "schema {schema} missing");
    }
    assert_eq!(spec["components"]["securitySchemes"]["api_key"]["scheme"], "bearer");

    let docs = app.anonymous(Method::GET, "/docs").send().await;
    docs.expect(200);
    assert!(docs.header("content-type").unwrap().starts_with("text/html"));
    assert!(docs.text.contains("/v1/tenants/{id}"));
    assert!(
        !docs.text.contains("http://") && !docs.text.contains("https://"),
        "the page loads nothing from elsewhere"
    );
    app.anonymous(Method::GET, "/healthz").send().await.expect(200);
    let ready = app.anonymous(Method::GET, "/readyz").send().await;
    ready.expect(200);
    assert_eq!(ready.json()["status"], "ok");
    app.finish().await;
}

async fn readiness_needs_the_migrations(backend: Backend) {
    let db = crate::helpers::TestDb::create(backend).await;
    let options = carcosa_server::store::StoreOptions::default();
    let store = carcosa_server::store::Store::connect(db.url(), &options).await.unwrap();
    assert!(!store.ready().await.unwrap(), "a database without the migrations is not ready");
    store.migrate().await.unwrap();
    assert!(store.ready().await.unwrap());
    store.migrate().await.unwrap();
    assert!(store.ready().await.unwrap(), "migrating twice is harmless");
    store.close().await;
    db.drop_database().await;
}

on_both_backends!(the_document_lists_every_route_and_error, readiness_needs_the_migrations);
