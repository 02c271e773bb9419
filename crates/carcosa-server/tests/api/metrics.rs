//! `GET /metrics`: every server metric after a short workload, labelled by route templates.
//!
//! The recorder is one per process, shared by the tests running in parallel: assertions on
//! values look at this test's own project; assertions on routes only at presence.

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::Method;
use serde_json::json;

use crate::helpers::{Backend, TestApp, spawn_with};
use crate::on_both_backends;
use crate::receiver::Receiver;

/// One sample of the exposition: name, labels, value.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// Parses the Prometheus text format (enough of it: no escapes in our label values).
fn parse(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("not a sample: {line}"));
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => (name, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            let labels = labels
                .split("\",")
                .filter(|pair| !pair.is_empty())
                .map(|pair| {
                    let (key, value) = pair.split_once('=').unwrap_or_else(|| panic!("bad label in {line}"));
                    (key.to_owned(), value.trim_matches('"').to_owned())
                })
                .collect();
            Sample {
                name: name.to_owned(),
                labels,
                value: value.parse().unwrap_or_else(|_| panic!("{line}")),
            }
        })
        .collect()
}

/// The value of `name` with (at least) these labels; `None` when no such series exists.
fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|s| {
            s.name == name && labels.iter().all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
}

async fn scrape(app: &TestApp, token: Option<&str>) -> reqwest::Response {
    // Not through `app.get`: /metrics is not in the OpenAPI document those calls are checked
    // against.
    let request = app.client.get(format!("{}/metrics", app.address));
    let request = match token {
        Some(token) => request.bearer_auth(token),
        None => request,
    };
    request.send().await.unwrap()
}

async fn a_workload_shows_every_server_metric_with_route_templates(backend: Backend) {
    let receiver = Receiver::start(vec![]).await;
    let app = spawn_with(backend, |c| {
        c.webhook_allow_private = true;
        c.webhook_poll_interval_ms = 100;
    })
    .await;
    let endpoint = app.post("/v1/webhook-endpoints", &json!({ "url": receiver.url })).await;
    endpoint.expect(201);
    let endpoint_id = endpoint.json()["id"].as_str().unwrap().to_owned();
    let tenant = app.create_named("Metrics Inc").await;
    app.get("/v1/tenants").await.expect(200);
    app.get(&format!("/v1/tenants/{}", tenant.id)).await.expect(200);
    app.get("/v1/tenants/no-such-tenant").await.expect_problem(404, "not_found");
    app.anonymous(Method::GET, "/no/such/route/12345").send().await.expect_problem(404, "not_found");
    receiver.wait_for(1, Duration::from_secs(10)).await;
    // The attempt is counted before it is written to the log: once the log says so, it is in.
    for _ in 0..200 {
        let log = app.get(&format!("/v1/webhook-endpoints/{endpoint_id}/deliveries")).await.json();
        if log["data"][0]["status"] == "succeeded" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let res = scrape(&app, None).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "text/plain; version=0.0.4; charset=utf-8");
    let text = res.text().await.unwrap();
    let samples = parse(&text);
    for name in [
        "carcosa_http_requests_total",
        "carcosa_http_request_duration_seconds_bucket",
        "carcosa_tenants",
        "carcosa_events_total",
        "carcosa_webhook_attempts_total",
        "carcosa_webhook_delivery_seconds_bucket",
        "carcosa_webhook_queue_depth",
        "carcosa_webhook_endpoints",
        "carcosa_api_requests_total",
    ] {
        assert!(samples.iter().any(|s| s.name == name), "{name} missing from /metrics:\n{text}");
    }

    // Routes are templates; paths no route matched share one label.
    let requests = |route: &str, method: &str, status: &str| {
        value(
            &samples,
            "carcosa_http_requests_total",
            &[("route", route), ("method", method), ("status", status)],
        )
    };
    assert!(requests("/v1/tenants", "POST", "201").is_some(), "{text}");
    assert!(requests("/v1/tenants", "GET", "200").is_some(), "{text}");
    assert!(requests("/v1/tenants/{id}", "GET", "200").is_some(), "{text}");
    assert!(requests("/v1/tenants/{id}", "GET", "404").is_some(), "{text}");
    assert!(requests("unmatched", "GET", "404").is_some(), "{text}");
    assert!(
        value(&samples, "carcosa_http_request_duration_seconds_count", &[("route", "/v1/tenants/{id}")])
            .is_some_and(|n| n >= 2.0),
        "{text}"
    );
    for sample in samples.iter().filter(|s| s.labels.contains_key("route")) {
        let route = &sample.labels["route"];
        assert!(
            route == "unmatched" || !route.contains(&tenant.id.to_string()) && !route.contains("no-such"),
            "a raw path as a label: {route}"
        );
    }

    // This test's project: its own counts.
    let project = app.project.to_string();
    let ours = |name: &str, label: (&str, &str)| value(&samples, name, &[("project", &project), label]);
    assert_eq!(ours("carcosa_tenants", ("status", "active")), Some(1.0), "{text}");
    assert_eq!(ours("carcosa_events_total", ("type", "tenant.created")), Some(1.0), "{text}");
    assert_eq!(ours("carcosa_webhook_endpoints", ("state", "enabled")), Some(1.0), "{text}");
    let key_id = app.key.split('_').nth(1).unwrap();
    assert!(ours("carcosa_api_requests_total", ("key", key_id)).is_some_and(|n| n >= 5.0), "{text}");
    assert!(!text.contains(&app.key), "a key's secret in /metrics");
    assert!(
        value(&samples, "carcosa_webhook_attempts_total", &[("outcome", "success")])
            .is_some_and(|n| n >= 1.0)
    );
    assert!(value(&samples, "carcosa_webhook_delivery_seconds_count", &[]).is_some_and(|n| n >= 1.0));
    app.finish().await;
}

async fn metrics_are_not_in_the_openapi_document_and_a_token_closes_them(backend: Backend) {
    let app = spawn_with(backend, |c| {
        c.metrics_token = Some(carcosa_server::config::SecretString("scrape-token-1".into()));
    })
    .await;
    let spec = app.get("/openapi.json").await.json();
    assert!(spec["paths"].get("/metrics").is_none(), "schemathesis would scrape it");
    let refused = scrape(&app, None).await;
    assert_eq!(refused.status(), 401);
    assert_eq!(refused.headers()["content-type"], "application/problem+json");
    assert_eq!(scrape(&app, Some("scrape-token-2")).await.status(), 401);
    assert_eq!(scrape(&app, Some(&app.key)).await.status(), 401, "an API key is not the metrics token");
    let allowed = scrape(&app, Some("scrape-token-1")).await;
    assert_eq!(allowed.status(), 200);
    assert!(allowed.text().await.unwrap().contains("carcosa_http_requests_total"));
    app.finish().await;
}

on_both_backends!(
    a_workload_shows_every_server_metric_with_route_templates,
    metrics_are_not_in_the_openapi_document_and_a_token_closes_them
);
