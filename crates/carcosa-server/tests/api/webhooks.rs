//! Webhooks: endpoints, signed delivery, retries, the delivery log, replay, rotation, the SSRF
//! guard.

use std::time::Duration;

use carcosa_core::Scope;
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, spawn_with, test_actor};
use crate::on_both_backends;
use crate::receiver::{Receiver, Reply};

const WAIT: Duration = Duration::from_secs(10);

/// A server that may call receivers on loopback, with a quick retry schedule.
async fn spawn_for_webhooks(backend: Backend, schedule: &str) -> TestApp {
    let schedule = schedule.to_owned();
    spawn_with(backend, move |c| {
        c.webhook_allow_private = true;
        c.webhook_retry_schedule = schedule;
        c.webhook_timeout_secs = 1;
        c.webhook_poll_interval_ms = 100;
    })
    .await
}

/// Creates an endpoint and returns (id, secret).
async fn endpoint(app: &TestApp, body: Value) -> (String, String) {
    let res = app.post("/v1/webhook-endpoints", &body).await;
    res.expect(201);
    let created = res.json();
    (created["id"].as_str().unwrap().to_owned(), created["secret"].as_str().unwrap().to_owned())
}

/// The endpoint's delivery log, newest first.
async fn deliveries(app: &TestApp, endpoint: &str) -> Vec<Value> {
    let res = app.get(&format!("/v1/webhook-endpoints/{endpoint}/deliveries")).await;
    res.expect(200);
    res.json()["data"].as_array().unwrap().clone()
}

/// Waits until every delivery of the endpoint has left `pending`.
async fn settled(app: &TestApp, endpoint: &str) -> Vec<Value> {
    for _ in 0..200 {
        let log = deliveries(app, endpoint).await;
        if !log.is_empty() && log.iter().all(|d| d["status"] != "pending") {
            return log;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("deliveries still pending: {:?}", deliveries(app, endpoint).await);
}

fn attempt_statuses(delivery: &Value) -> Vec<Value> {
    delivery["attempts"].as_array().unwrap().iter().map(|a| a["response_status"].clone()).collect()
}

async fn deliveries_are_signed_and_carry_the_event(backend: Backend) {
    let app = spawn_for_webhooks(backend, "0s,100ms").await;
    let receiver = Receiver::start(vec![]).await;
    let (_, secret) = endpoint(&app, json!({"url": receiver.url, "description": "app"})).await;
    assert!(secret.starts_with("whsec_"));
    let tenant = app.create_named("Signed Co").await;
    let got = receiver.wait_for(1, WAIT).await;
    let request = &got[0];
    assert!(request.signed_by(&secret), "signature {:?} does not verify", request.signature);
    assert!(!request.signed_by(&carcosa_core::webhook::WebhookSecret::generate().expose()));
    let event = &app.all_events().await[0];
    assert_eq!(request.id, event["id"].as_str().unwrap(), "webhook-id is the event id");
    assert_eq!(request.json(), *event, "the body is the feed's event");
    assert_eq!(request.json()["tenant"]["id"], tenant.id.to_string());
    let now = chrono::Utc::now().timestamp();
    assert!((now - request.timestamp.parse::<i64>().unwrap()).abs() < 30);
    assert_eq!(request.content_type, "application/json");
    assert!(request.user_agent.starts_with("Carcosa/"));
    app.finish().await;
}

async fn failed_attempts_are_retried_and_logged(backend: Backend) {
    let app = spawn_for_webhooks(backend, "0s,100ms,100ms,100ms").await;
    let receiver = Receiver::start(vec![Reply::Status(500), Reply::Status(500)]).await;
    let (id, secret) = endpoint(&app, json!({"url": receiver.url})).await;
    app.create_named("Retry Co").await;
    let got = receiver.wait_for(3, WAIT).await;
    assert_eq!(got.len(), 3);
    assert!(got.iter().all(|r| r.id == got[0].id), "the same webhook-id on every attempt");
    assert!(got.iter().all(|r| r.signed_by(&secret)));
    let log = settled(&app, &id).await;
    assert_eq!(log.len(), 1);
    assert_eq!(log[0]["status"], "succeeded");
    assert_eq!(attempt_statuses(&log[0]), [json!(500), json!(500), json!(200)]);
    let first = &log[0]["attempts"][0];
    assert_eq!(first["response_body"], "answer 500");
    assert!(first["latency_ms"].as_i64().unwrap() >= 0);
    app.finish().await;
}

async fn retry_after_is_honoured(backend: Backend) {
    let app = spawn_for_webhooks(backend, "0s,100ms,100ms").await;
    let receiver = Receiver::start(vec![Reply::RetryAfter(429, 2)]).await;
    let (id, _) = endpoint(&app, json!({"url": receiver.url})).await;
    app.create_named("Busy Co").await;
    let got = receiver.wait_for(2, WAIT).await;
    let gap = got[1].at - got[0].at;
    assert!(gap >= Duration::from_millis(1800), "Retry-After: 2 was not honoured (retried after {gap:?})");
    assert_eq!(attempt_statuses(&settled(&app, &id).await[0]), [json!(429), json!(200)]);
    app.finish().await;
}

async fn a_410_disables_the_endpoint(backend: Backend) {
    let app = spawn_for_webhooks(backend, "0s,100ms,100ms").await;
    let receiver = Receiver::start(vec![Reply::Status(410)]).await;
    let (id, _) = endpoint(&app, json!({"url": receiver.url})).await;
    app.create_named("Gone Co").await;
    let log = settled(&app, &id).await;
    assert_eq!(log[0]["status"], "failed");
    assert_eq!(attempt_statuses(&log[0]), [json!(410)]);
    let endpoint_now = app.get(&format!("/v1/webhook-endpoints/{id}")).await.json();
    assert_eq!(endpoint_now["enabled"], false);
    assert_eq!(endpoint_now["disabled_reason"], "gone");
    // Disabled: new events make no deliveries; a test event is refused.
    app.create_named("Unheard Co").await;
    assert_eq!(deliveries(&app, &id).await.len(), 1);
    app.req(Method::POST, &format!("/v1/webhook-endpoints/{id}/test"))
        .send()
        .await
        .expect_problem(409, "endpoint_disabled");
    // Re-enabled, it works again; the failed delivery can be resent.
    let enabled = app.patch(&format!("/v1/webhook-endpoints/{id}"), &json!({"enabled": true})).await.json();
    assert_eq!(enabled["enabled"], true);
    assert_eq!(enabled["disabled_reason"], Value::Null);
    let resent = app
        .req(Method::POST, &format!("/v1/deliveries/{}/resend", log[0]["id"].as_str().unwrap()))
        .send()
        .await;
    resent.expect(202);
    let log = settled(&app, &id).await;
    assert_eq!(log[0]["status"], "succeeded");
    assert_eq!(attempt_statuses(&log[0]), [json!(410), json!(200)]);
    app.finish().await;
}

async fn timeouts_fail_the_attempt_and_exhaustion_fails_the_delivery(backend: Backend) {
    let app = spawn_for_webhooks(backend, "0s,100ms").await;
    let receiver =
        Receiver::start(vec![Reply::Slow(Duration::from_secs(3)), Reply::Slow(Duration::from_secs(3))]).await;
    let (id, _) = endpoint(&app, json!({"url": receiver.url})).await;
    app.create_named("Slow Co").await;
    let log = settled(&app, &id).await;
    assert_eq!(log[0]["status"], "failed", "two attempts, both timed out: the schedule is spent");
    let attempts = log[0]["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2);
    for attempt in attempts {
        assert_eq!(attempt["response_status"], Value::Null);
        assert!(attempt["error"].as_str().unwrap().contains("timed out"), "{attempt}");
    }
    let endpoint_now = app.get(&format!("/v1/webhook-endpoints/{id}")).await.json();
    assert!(endpoint_now["failing_since"].is_string(), "the endpoint is marked failing");
    // Recover re-queues the failed delivery; the receiver is fast now.
    let since = (chrono::Utc::now() - chrono::TimeDelta::hours(1)).to_rfc3339();
    let recovered = app.post(&format!("/v1/webhook-endpoints/{id}/recover"), &json!({"since": since})).await;
    recovered.expect(200);
    assert_eq!(recovered.json()["requeued"], 1);
    let log = settled(&app, &id).await;
    assert_eq!(log[0]["status"], "succeeded");
    assert_eq!(app.get(&format!("/v1/webhook-endpoints/{id}")).await.json()["failing_since"], Value::Null);
    app.finish().await;
}

async fn rotation_signs_with_both_secrets_during_the_grace_period(backend: Backend) {
    let app = spawn_for_webhooks(backend, "0s").await;
    let receiver = Receiver::start(vec![]).await;
    let (id, old) = endpoint(&app, json!({"url": receiver.url})).await;
    let rotated = app.req(Method::POST, &format!("/v1/webhook-endpoints/{id}/rotate-secret")).send().await;
    rotated.expect(200);
    let rotated = rotated.json();
    let new = rotated["secret"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    assert!(rotated["previous_secret_expires_at"].is_string());
    app.create_named("Rotating Co").await;
    let got = receiver.wait_for(1, WAIT).await;
    assert_eq!(got[0].signature.split(' ').count(), 2, "two signatures: {}", got[0].signature);
    assert!(got[0].signed_by(&old), "the old secret still verifies");
    assert!(got[0].signed_by(&new), "the new secret verifies");
    app.finish().await;
}

async fn filters_and_test_events_choose_what_is_sent(backend: Backend) {
    let app = spawn_for_webhooks(backend, "0s").await;
    let receiver = Receiver::start(vec![]).await;
    let (id, secret) = endpoint(&app, json!({"url": receiver.url, "event_types": ["tenant.deleted"]})).await;
    let tenant = app.create_named("Filtered Co").await;
    app.patch(&format!("/v1/tenants/{}", tenant.id), &json!({"plan": "pro"})).await.expect(200);
    app.delete(&format!("/v1/tenants/{}", tenant.id)).await.expect(200);
    let got = receiver.wait_for(1, WAIT).await;
    assert_eq!(got[0].json()["type"], "tenant.deleted");
    let queued = app.req(Method::POST, &format!("/v1/webhook-endpoints/{id}/test")).send().await;
    queued.expect(202);
    let got = receiver.wait_for(2, WAIT).await;
    assert_eq!(got.len(), 2, "only the deletion and the test event: {got:?}");
    let test = got[1].json();
    assert_eq!(test["type"], "webhook.test");
    assert_eq!(test["endpoint_id"], id);
    assert!(got[1].signed_by(&secret));
    // Widening the filter to everything.
    app.patch(&format!("/v1/webhook-endpoints/{id}"), &json!({"event_types": null})).await.expect(200);
    app.create_named("Everything Co").await;
    assert_eq!(receiver.wait_for(3, WAIT).await[2].json()["type"], "tenant.created");
    app.finish().await;
}

async fn endpoints_are_managed_and_validated(backend: Backend) {
    let app = spawn_for_webhooks(backend, "0s").await;
    let (id, _) = endpoint(&app, json!({"url": "http://127.0.0.1:9/hook", "enabled": false})).await;
    let list = app.get("/v1/webhook-endpoints").await.json();
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    assert!(list["data"][0].get("secret").is_none(), "secrets are only shown at creation and rotation");
    let path = format!("/v1/webhook-endpoints/{id}");
    let patched =
        app.patch(&path, &json!({"description": "billing", "event_types": ["tenant.*"]})).await.json();
    assert_eq!(patched["description"], "billing");
    assert_eq!(patched["event_types"], json!(["tenant.*"]));
    for (body, code) in [
        (json!({"url": "ftp://example.com"}), "invalid_url"),
        (json!({"url": "https://user:pw@example.com/"}), "invalid_url"),
        (json!({"url": "http://127.0.0.1/", "event_types": []}), "invalid_event_types"),
        (json!({"url": "http://127.0.0.1/", "event_types": ["tenant.renamed"]}), "invalid_event_types"),
        (json!({"url": "http://127.0.0.1/", "description": "d".repeat(501)}), "invalid_description"),
        (json!({"url": "http://127.0.0.1/", "colour": "red"}), "invalid_body"),
        (json!({"url": "http://no-such-host.invalid/"}), "url_unresolvable"),
    ] {
        app.post("/v1/webhook-endpoints", &body).await.expect_problem(422, code);
    }
    app.get("/v1/webhook-endpoints/ep_nope").await.expect_problem(404, "not_found");
    app.get(&format!("{path}/deliveries?status=lost")).await.expect_problem(400, "invalid_query");
    app.get(&format!("{path}/deliveries?cursor=abc")).await.expect_problem(400, "invalid_cursor");
    app.req(Method::POST, "/v1/deliveries/dlv_nope/resend").send().await.expect_problem(404, "not_found");
    // Another project sees none of it; a key without webhooks:manage may not touch it.
    let (_, other) = app.other_project().await;
    app.req(Method::GET, &path).key(&other).send().await.expect_problem(404, "not_found");
    app.req(Method::DELETE, &path).key(&other).send().await.expect_problem(404, "not_found");
    app.req(Method::GET, &format!("{path}/deliveries"))
        .key(&other)
        .send()
        .await
        .expect_problem(404, "not_found");
    assert_eq!(
        app.req(Method::GET, "/v1/webhook-endpoints").key(&other).send().await.json()["data"],
        json!([])
    );
    let (_, tenants_only) = app
        .store
        .create_key(app.project, &[Scope::TenantsRead, Scope::TenantsWrite], None, &test_actor())
        .await
        .unwrap();
    app.req(Method::GET, "/v1/webhook-endpoints")
        .key(&tenants_only.expose())
        .send()
        .await
        .expect_problem(403, "insufficient_scope");
    app.req(Method::DELETE, &path).send().await.expect(204);
    app.get(&path).await.expect_problem(404, "not_found");
    app.finish().await;
}

async fn the_ssrf_guard_refuses_internal_addresses(backend: Backend) {
    let app = spawn_with(backend, |c| c.webhook_retry_schedule = "0s".into()).await;
    for url in [
        "http://127.0.0.1/hook",
        "http://10.0.0.1/hook",
        "http://[::1]/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://localhost:8080/hook",
        "http://0.0.0.0/",
        "http://[::ffff:127.0.0.1]/",
    ] {
        let problem = app
            .post("/v1/webhook-endpoints", &json!({"url": url}))
            .await
            .expect_problem(422, "url_not_allowed");
        assert!(problem["detail"].as_str().unwrap().contains("public"), "{problem}");
    }
    // An endpoint that slipped past creation (written straight into the store) is still refused
    // at send time.
    let secrets = carcosa_server::secrets::SecretBox::from_config(&app.config).unwrap();
    let new = carcosa_server::store::NewEndpoint {
        url: "http://localhost:9/hook".into(),
        description: None,
        event_types: None,
        enabled: true,
        secret: secrets.seal(carcosa_core::webhook::WebhookSecret::generate().as_bytes()),
    };
    let record = app.store.create_endpoint(app.project, new, &test_actor()).await.unwrap();
    app.create_named("Guarded Co").await;
    let log = settled(&app, &record.endpoint.id.to_string()).await;
    let error = log[0]["attempts"][0]["error"].as_str().unwrap();
    assert!(error.contains("public addresses"), "{error}");
    app.finish().await;
}

async fn the_delivery_log_pages_and_filters(backend: Backend) {
    let app = spawn_for_webhooks(backend, "0s").await;
    let receiver = Receiver::start(vec![Reply::Status(500)]).await;
    let (id, _) = endpoint(&app, json!({"url": receiver.url})).await;
    for i in 0..5 {
        app.create_named(&format!("Paged {i}")).await;
    }
    receiver.wait_for(5, WAIT).await;
    settled(&app, &id).await;
    let failed = app.get(&format!("/v1/webhook-endpoints/{id}/deliveries?status=failed")).await.json();
    assert_eq!(failed["data"].as_array().unwrap().len(), 1);
    let first = app.get(&format!("/v1/webhook-endpoints/{id}/deliveries?limit=3")).await.json();
    assert_eq!(first["data"].as_array().unwrap().len(), 3);
    let cursor = first["next_cursor"].as_str().unwrap();
    let second =
        app.get(&format!("/v1/webhook-endpoints/{id}/deliveries?limit=3&cursor={cursor}")).await.json();
    assert_eq!(second["data"].as_array().unwrap().len(), 2);
    assert_eq!(second["next_cursor"], Value::Null);
    let ids: Vec<&str> = first["data"]
        .as_array()
        .unwrap()
        .iter()
        .chain(second["data"].as_array().unwrap())
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    let mut sorted = ids.clone();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(ids, sorted, "newest first");
    app.finish().await;
}

async fn an_endpoint_failing_too_long_is_disabled(backend: Backend) {
    // With the limit at zero hours, the first failure is already "too long".
    let app = spawn_with(backend, |c| {
        c.webhook_allow_private = true;
        c.webhook_retry_schedule = "0s,100ms,100ms".into();
        c.webhook_disable_after_hours = 0;
        c.webhook_poll_interval_ms = 100;
    })
    .await;
    let receiver = Receiver::start(vec![Reply::Status(500)]).await;
    let (id, _) = endpoint(&app, json!({"url": receiver.url})).await;
    app.create_named("Failing Co").await;
    receiver.wait_for(1, WAIT).await;
    let mut endpoint_now = Value::Null;
    for _ in 0..100 {
        endpoint_now = app.get(&format!("/v1/webhook-endpoints/{id}")).await.json();
        if endpoint_now["enabled"] == false {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(endpoint_now["enabled"], false, "{endpoint_now}");
    assert_eq!(endpoint_now["disabled_reason"], "failing");
    // The delivery waits, pending, until the endpoint is enabled again; then it goes out.
    let log = deliveries(&app, &id).await;
    assert_eq!(log[0]["status"], "pending");
    app.patch(&format!("/v1/webhook-endpoints/{id}"), &json!({"enabled": true})).await.expect(200);
    assert_eq!(settled(&app, &id).await[0]["status"], "succeeded");
    app.finish().await;
}

async fn deliveries_are_pruned_with_the_events(backend: Backend) {
    let app = spawn_for_webhooks(backend, "0s").await;
    let receiver = Receiver::start(vec![]).await;
    let (id, _) = endpoint(&app, json!({"url": receiver.url})).await;
    app.create_named("Old Co").await;
    settled(&app, &id).await;
    let future = chrono::Utc::now() + chrono::TimeDelta::seconds(1);
    let report = app.store.prune(future, future).await.unwrap();
    assert_eq!(report.deliveries, 1);
    assert_eq!(deliveries(&app, &id).await, Vec::<Value>::new());
    app.finish().await;
}

async fn binary_answers_are_logged_safely(backend: Backend) {
    let app = spawn_for_webhooks(backend, "0s,100ms").await;
    let receiver = Receiver::start(vec![Reply::Binary]).await;
    let (id, _) = endpoint(&app, json!({"url": receiver.url})).await;
    app.create_named("Binary Co").await;
    let log = settled(&app, &id).await;
    assert_eq!(log[0]["status"], "succeeded");
    assert_eq!(log[0]["attempts"].as_array().unwrap().len(), 1, "recorded once, not retried");
    assert!(log[0]["attempts"][0]["response_body"].as_str().unwrap().ends_with("ok"));
    app.finish().await;
}

async fn a_delivery_in_flight_is_not_resent_and_pending_ones_survive_pruning(backend: Backend) {
    let app = spawn_with(backend, |c| {
        c.webhook_allow_private = true;
        c.webhook_retry_schedule = "0s,1h".into();
        c.webhook_timeout_secs = 5;
        c.webhook_poll_interval_ms = 100;
    })
    .await;
    let receiver = Receiver::start(vec![Reply::Slow(Duration::from_secs(2))]).await;
    let (id, _) = endpoint(&app, json!({"url": receiver.url})).await;
    app.create_named("Slow Co").await;
    // While the slow attempt runs, the delivery is leased: a resend would send it twice.
    let mut delivery_id = String::new();
    for _ in 0..100 {
        if let Some(d) = deliveries(&app, &id).await.first() {
            delivery_id = d["id"].as_str().unwrap().to_owned();
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    app.req(Method::POST, &format!("/v1/deliveries/{delivery_id}/resend"))
        .send()
        .await
        .expect_problem(409, "delivery_in_flight");
    assert_eq!(settled(&app, &id).await[0]["status"], "succeeded");
    // A delivery still pending (its retry is an hour away) is kept by pruning; finished ones go.
    let (closed, _) = endpoint(&app, json!({"url": "http://127.0.0.1:9/hook"})).await;
    app.create_named("Pending Co").await;
    for _ in 0..100 {
        let log = deliveries(&app, &closed).await;
        if log.first().is_some_and(|d| !d["attempts"].as_array().unwrap().is_empty()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let future = chrono::Utc::now() + chrono::TimeDelta::seconds(1);
    app.store.prune(future, future).await.unwrap();
    let kept = deliveries(&app, &closed).await;
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0]["status"], "pending");
    assert!(
        deliveries(&app, &id).await.iter().all(|d| d["status"] == "pending"),
        "finished deliveries were pruned"
    );
    app.finish().await;
}

on_both_backends!(
    binary_answers_are_logged_safely,
    a_delivery_in_flight_is_not_resent_and_pending_ones_survive_pruning,
    an_endpoint_failing_too_long_is_disabled,
    deliveries_are_pruned_with_the_events,
    deliveries_are_signed_and_carry_the_event,
    failed_attempts_are_retried_and_logged,
    retry_after_is_honoured,
    a_410_disables_the_endpoint,
    timeouts_fail_the_attempt_and_exhaustion_fails_the_delivery,
    rotation_signs_with_both_secrets_during_the_grace_period,
    filters_and_test_events_choose_what_is_sent,
    endpoints_are_managed_and_validated,
    the_ssrf_guard_refuses_internal_addresses,
    the_delivery_log_pages_and_filters,
);
