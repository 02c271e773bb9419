//! The audit log: one entry per change, with its actor, written in the change's transaction;
//! none for a change that failed or changed nothing; filters, pages, scope, isolation, secrets.

use std::time::Duration;

use carcosa_core::{ApiKey, AuditId, Scope};
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, spawn, spawn_with, test_actor};
use crate::on_both_backends;

/// One page of the log, with `query` as its query string.
async fn page(app: &TestApp, query: &str) -> Value {
    let res = app.get(&format!("/v1/audit-log?{query}")).await;
    res.expect(200);
    res.json()
}

/// Every entry the query selects, newest first, read page by page.
async fn entries(app: &TestApp, query: &str) -> Vec<Value> {
    let mut all = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = page(app, &format!("{query}&limit=1000&cursor={cursor}")).await;
        all.extend(page["data"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = next.to_owned(),
            None => return all,
        }
    }
}

fn actions(entries: &[Value]) -> Vec<&str> {
    entries.iter().map(|e| e["action"].as_str().unwrap()).collect()
}

/// A new key of the app's project with these scopes: (key id, full key).
async fn key(app: &TestApp, scopes: &[Scope]) -> (String, String) {
    let (out, key) = app.store.create_key(app.project, scopes, Some("audited"), &test_actor()).await.unwrap();
    (out.id, key.expose())
}

async fn each_tenant_change_leaves_one_entry_with_its_actor(backend: Backend) {
    let app = spawn(backend).await;
    let (writer_id, writer) = key(&app, &[Scope::TenantsWrite]).await;
    let created = app
        .req(Method::POST, "/v1/tenants")
        .key(&writer)
        .header("x-request-id", "req-create-1")
        .header("user-agent", "audit-test/1.0")
        .json(&json!({"name": "Audited Co", "metadata": {"tier": 1}}))
        .send()
        .await;
    created.expect(201);
    assert_eq!(created.header("x-request-id"), Some("req-create-1"), "the request id is echoed");
    let tenant = created.json();
    let id = tenant["id"].as_str().unwrap();
    let path = format!("/v1/tenants/{id}");
    let updated = app
        .req(Method::PATCH, &path)
        .key(&writer)
        .header("x-request-id", "req-update-1")
        .json(&json!({"name": "Audited Corp", "metadata": {"tier": 2}}))
        .send()
        .await;
    updated.expect(200);
    // Without an x-request-id, the server makes one and returns it.
    let deleted = app.req(Method::DELETE, &path).key(&writer).send().await;
    deleted.expect(200);
    let generated = deleted.header("x-request-id").expect("a generated request id").to_owned();

    let log = entries(&app, &format!("target={id}")).await;
    assert_eq!(actions(&log), ["tenant.delete", "tenant.update", "tenant.create"], "newest first, one each");
    for entry in &log {
        assert_eq!(entry["actor"], json!({"kind": "key", "id": writer_id}));
        assert_eq!(entry["target"], json!({"type": "tenant", "id": id}));
        assert_eq!(entry["project_id"], app.project.to_string());
        assert!(entry["id"].as_str().unwrap().starts_with("aud_"));
        assert_eq!(entry["address"], "127.0.0.1");
    }
    let (delete, update, create) = (&log[0], &log[1], &log[2]);
    assert_eq!(create["before"], Value::Null);
    assert_eq!(create["after"], tenant, "the snapshot is the tenant as returned");
    assert_eq!(create["request_id"], "req-create-1");
    assert_eq!(create["user_agent"], "audit-test/1.0");
    assert_eq!(update["before"], tenant);
    assert_eq!(update["after"], updated.json());
    assert_eq!(update["after"]["metadata"], json!({"tier": 2}));
    assert_eq!(update["request_id"], "req-update-1");
    assert_eq!(delete["before"], updated.json());
    assert_eq!(delete["after"], deleted.json());
    assert_eq!(delete["after"]["status"], "deleted");
    assert_eq!(delete["request_id"], generated);
    assert!(delete["occurred_at"].as_str().unwrap() >= create["occurred_at"].as_str().unwrap());

    // The set-up's own changes were made through the store as a CLI user.
    let setup = entries(&app, "actor=cli:test").await;
    assert_eq!(actions(&setup), ["key.create", "key.create", "project.create"]);
    assert_eq!(setup[0]["target"], json!({"type": "key", "id": writer_id}));
    assert_eq!(setup[0]["after"]["scopes"], json!(["tenants:write"]));
    assert_eq!(setup[2]["target"]["id"], app.project.to_string());
    assert_eq!(setup[2]["after"]["name"], "Test project");
    app.finish().await;
}

async fn failed_and_empty_changes_leave_no_entry(backend: Backend) {
    let app = spawn(backend).await;
    let first = app.create_tenant(json!({"name": "First", "slug": "taken"})).await;
    let other = app.create_tenant(json!({"name": "Other", "slug": "other"})).await;
    let baseline = entries(&app, "").await.len();

    // Refused: the slug is taken (409), on create and on update; a stale If-Match (412).
    app.post("/v1/tenants", &json!({"name": "Second", "slug": "taken"}))
        .await
        .expect_problem(409, "slug_taken");
    let path = format!("/v1/tenants/{}", other.id);
    app.patch(&path, &json!({"slug": "taken"})).await.expect_problem(409, "slug_taken");
    app.req(Method::PATCH, &path)
        .header("if-match", "\"7\"")
        .json(&json!({"name": "Stale"}))
        .send()
        .await
        .expect_problem(412, "version_conflict");
    // Changes that change nothing: the same values, an empty patch.
    app.patch(&path, &json!({"name": "Other", "slug": "other"})).await.expect(200);
    app.patch(&path, &json!({})).await.expect(200);
    app.patch(&format!("/v1/tenants/{}", first.id), &json!({"metadata": {"gone": null}})).await.expect(200);
    assert_eq!(entries(&app, "").await.len(), baseline, "no entry for a refused or empty change");

    // An idempotent retry replays the first response and writes nothing more.
    let create = |body: Value| {
        app.req(Method::POST, "/v1/tenants").header("idempotency-key", "once").json(&body).send()
    };
    create(json!({"name": "Once"})).await.expect(201);
    let replay = create(json!({"name": "Once"})).await;
    replay.expect(201);
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    create(json!({"name": "Twice"})).await.expect_problem(422, "idempotency_key_reused");
    assert_eq!(entries(&app, "action=tenant.create").await.len(), 3, "First, Other, Once");

    // Deleting a deleted tenant changes nothing.
    app.delete(&path).await.expect(200);
    app.delete(&path).await.expect(200);
    assert_eq!(entries(&app, "action=tenant.delete").await.len(), 1);
    // Revoking a revoked key changes nothing.
    let (key_id, _) = key(&app, &[Scope::TenantsRead]).await;
    app.store.revoke_key(&key_id, &test_actor()).await.unwrap();
    app.store.revoke_key(&key_id, &test_actor()).await.unwrap();
    let revoked = entries(&app, "action=key.revoke").await;
    assert_eq!(revoked.len(), 1);
    assert_eq!(revoked[0]["before"]["revoked_at"], Value::Null);
    assert!(revoked[0]["after"]["revoked_at"].is_string());
    assert_eq!(entries(&app, "").await.len(), baseline + 4, "Once, the deletion, the key, its revocation");
    app.finish().await;
}

async fn webhook_changes_are_audited_without_secrets(backend: Backend) {
    let app = spawn_with(backend, |c| {
        c.webhook_allow_private = true;
        c.webhook_retry_schedule = "0s".into();
        c.webhook_timeout_secs = 1;
        c.webhook_poll_interval_ms = 100;
    })
    .await;
    // Nothing listens on port 1: every attempt fails at once.
    let created = app
        .req(Method::POST, "/v1/webhook-endpoints")
        .header("x-request-id", "req-endpoint")
        .json(&json!({"url": "http://127.0.0.1:1/hook"}))
        .send()
        .await;
    created.expect(201);
    let created = created.json();
    let id = created["id"].as_str().unwrap().to_owned();
    let first_secret = created["secret"].as_str().unwrap().to_owned();
    let path = format!("/v1/webhook-endpoints/{id}");
    app.patch(&path, &json!({"description": "billing"})).await.expect(200);
    app.patch(&path, &json!({"description": "billing"})).await.expect(200);
    let rotated = app.req(Method::POST, &format!("{path}/rotate-secret")).send().await;
    rotated.expect(200);
    let second_secret = rotated.json()["secret"].as_str().unwrap().to_owned();
    let queued = app.req(Method::POST, &format!("{path}/test")).send().await;
    queued.expect(202);
    let delivery = queued.json()["delivery_id"].as_str().unwrap().to_owned();
    let failed = wait_for_failure(&app, &id).await;
    assert_eq!(failed, 1);
    app.req(Method::POST, &format!("/v1/deliveries/{delivery}/resend")).send().await.expect(202);
    wait_for_failure(&app, &id).await;
    let since = (chrono::Utc::now() - chrono::TimeDelta::hours(1)).to_rfc3339();
    let recovered = app.post(&format!("{path}/recover"), &json!({"since": since})).await;
    recovered.expect(200);
    assert_eq!(recovered.json()["requeued"], 1);
    wait_for_failure(&app, &id).await;
    // Nothing failed since a minute from now: nothing to recover, nothing recorded.
    let later = (chrono::Utc::now() + chrono::TimeDelta::minutes(1)).to_rfc3339();
    let none = app.post(&format!("{path}/recover"), &json!({"since": later})).await;
    assert_eq!(none.json()["requeued"], 0);
    app.delete(&path).await.expect(204);

    let log = entries(&app, &format!("target={id}")).await;
    assert_eq!(
        actions(&log),
        [
            "webhook_endpoint.delete",
            "webhook_delivery.recover",
            "webhook_endpoint.send_test",
            "webhook_endpoint.rotate_secret",
            "webhook_endpoint.update",
            "webhook_endpoint.create",
        ],
        "one entry per change; the second, identical update changed nothing"
    );
    let key_id = ApiKey::parse(&app.key).unwrap().key_id().to_owned();
    for entry in &log {
        assert_eq!(entry["actor"], json!({"kind": "key", "id": key_id}), "{entry}");
        assert_eq!(entry["target"], json!({"type": "webhook_endpoint", "id": id}), "{entry}");
    }
    let (delete, recover, test, rotate, update, create) =
        (&log[0], &log[1], &log[2], &log[3], &log[4], &log[5]);
    assert_eq!(create["request_id"], "req-endpoint");
    assert_ne!(update["request_id"], "req-endpoint", "every request has its own id");
    assert_eq!(create["before"], Value::Null);
    assert_eq!(create["after"]["url"], "http://127.0.0.1:1/hook");
    assert!(create["after"].get("secret").is_none());
    assert_eq!(update["before"]["description"], Value::Null);
    assert_eq!(update["after"]["description"], "billing");
    assert_eq!(rotate["before"]["previous_secret_expires_at"], Value::Null);
    assert!(rotate["after"]["previous_secret_expires_at"].is_string());
    assert_eq!(test["after"]["id"], delivery);
    assert_eq!(test["after"]["event_type"], "webhook.test");
    assert_eq!(recover["after"]["requeued"], 1);
    assert_eq!(delete["before"]["description"], "billing");
    assert_eq!(delete["after"], Value::Null);
    let resend = entries(&app, &format!("target={delivery}")).await;
    assert_eq!(actions(&resend), ["webhook_delivery.resend"]);
    assert_eq!(resend[0]["target"]["type"], "webhook_delivery");
    assert_eq!(resend[0]["before"]["status"], "failed");
    assert_eq!(resend[0]["after"]["status"], "pending");
    assert!(resend[0]["after"].get("attempts").is_none());

    // No secret anywhere in the log: not the endpoint's signing keys, not an API key's.
    let (_, new_key) = key(&app, &[Scope::AuditRead]).await;
    let text = app.get("/v1/audit-log?limit=1000").await.text;
    for secret in [&first_secret, &second_secret, &app.key, &new_key] {
        let bare = secret.trim_start_matches("whsec_").rsplit('_').next().unwrap();
        assert!(!text.contains(bare), "the audit log holds a secret: {text}");
    }
    assert!(!text.contains("secret_hash"), "{text}");
    app.finish().await;
}

/// Waits until the endpoint's deliveries have all failed; returns how many there are.
async fn wait_for_failure(app: &TestApp, endpoint: &str) -> usize {
    for _ in 0..200 {
        let log = app.get(&format!("/v1/webhook-endpoints/{endpoint}/deliveries")).await.json();
        let data = log["data"].as_array().unwrap();
        if !data.is_empty() && data.iter().all(|d| d["status"] == "failed") {
            return data.len();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the deliveries of {endpoint} did not fail");
}

async fn the_log_filters_and_pages(backend: Backend) {
    let app = spawn(backend).await;
    let (a_id, a) = key(&app, &[Scope::TenantsWrite]).await;
    let (b_id, b) = key(&app, &[Scope::TenantsWrite]).await;
    let create = |key: String, name: &'static str| {
        let app = &app;
        async move {
            let res =
                app.req(Method::POST, "/v1/tenants").key(&key).json(&json!({ "name": name })).send().await;
            res.expect(201);
            res.tenant()
        }
    };
    for name in ["A1", "A2", "A3"] {
        create(a.clone(), name).await;
    }
    let middle = chrono::Utc::now();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let b1 = create(b.clone(), "B1").await;
    create(b.clone(), "B2").await;
    app.req(Method::PATCH, &format!("/v1/tenants/{}", b1.id))
        .key(&a)
        .json(&json!({"plan": "pro"}))
        .send()
        .await
        .expect(200);

    assert_eq!(entries(&app, &format!("actor=key:{a_id}")).await.len(), 4);
    assert_eq!(entries(&app, &format!("actor={b_id}")).await.len(), 2, "a bare id matches any kind");
    assert_eq!(entries(&app, &format!("actor=cli:{a_id}")).await.len(), 0, "the kind must match too");
    assert_eq!(entries(&app, "actor=cli:test").await.len(), 4, "the project, its key, a and b");
    assert_eq!(entries(&app, "action=tenant.create").await.len(), 5);
    assert_eq!(entries(&app, "action=tenant.update").await.len(), 1);
    assert_eq!(entries(&app, &format!("action=tenant.create&actor={b_id}")).await.len(), 2);
    assert_eq!(
        actions(&entries(&app, &format!("target={}", b1.id)).await),
        ["tenant.update", "tenant.create"]
    );
    let since = middle.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let after_middle = entries(&app, &format!("since={since}")).await;
    assert_eq!(after_middle.len(), 3, "B1, B2 and the update");
    let before_middle = entries(&app, &format!("until={since}&action=tenant.create")).await;
    assert_eq!(before_middle.len(), 3, "A1, A2, A3");
    // An unencoded `+` offset (read as a space) still means `+`.
    let plus = middle.with_timezone(&chrono::FixedOffset::east_opt(3600).unwrap()).to_rfc3339();
    assert_eq!(entries(&app, &format!("since={plus}")).await.len(), 3);
    assert_eq!(entries(&app, &format!("since={}", plus.replace('+', "%2B"))).await.len(), 3);

    // Pages of two, newest first, each entry once.
    let everything = entries(&app, "").await;
    assert_eq!(everything.len(), 10);
    let mut paged = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = page(&app, &format!("limit=2&cursor={cursor}")).await;
        let data = page["data"].as_array().unwrap();
        assert!(data.len() <= 2);
        paged.extend(data.iter().cloned());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = next.to_owned(),
            None => break,
        }
    }
    assert_eq!(paged, everything);
    let ids: Vec<&str> = paged.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first: {ids:?}");

    // Empty filters, as a form sends them, select everything.
    assert_eq!(entries(&app, "actor=&action=&target=&since=&until=").await, everything);

    // Bad filters are problems with their own codes.
    for (query, code) in [
        ("since=yesterday", "invalid_time"),
        ("until=2026-13-01T00:00:00Z", "invalid_time"),
        ("since=2026-02-01T00:00:00Z&until=2026-01-01T00:00:00Z", "invalid_time"),
        ("action=tenant.created", "invalid_action"),
        ("actor=key:", "invalid_actor"),
        ("cursor=nope", "invalid_cursor"),
        ("limit=0", "invalid_query"),
        (&format!("target={}", "t".repeat(201)), "invalid_query"),
        ("colour=red", "invalid_query"),
    ] {
        app.get(&format!("/v1/audit-log?{query}")).await.expect_problem(400, code);
    }
    app.finish().await;
}

async fn reading_needs_audit_read_and_stays_in_the_project(backend: Backend) {
    let app = spawn(backend).await;
    let mine = app.create_named("Mine").await;
    let (_, writer) = key(&app, &[Scope::TenantsRead, Scope::TenantsWrite, Scope::WebhooksManage]).await;
    let denied = app.req(Method::GET, "/v1/audit-log").key(&writer).send().await;
    let problem = denied.expect_problem(403, "insufficient_scope");
    assert!(problem["detail"].as_str().unwrap().contains("audit:read"));
    let (_, reader) = key(&app, &[Scope::AuditRead]).await;
    app.req(Method::GET, "/v1/audit-log").key(&reader).send().await.expect(200);
    app.anonymous(Method::GET, "/v1/audit-log").send().await.expect_problem(401, "unauthorized");

    // Another project's changes are its own; neither sees the other's.
    let (other_project, other) = app.other_project().await;
    let theirs =
        app.req(Method::POST, "/v1/tenants").key(&other).json(&json!({"name": "Theirs"})).send().await;
    theirs.expect(201);
    let theirs = theirs.tenant();
    let mine_log = entries(&app, "").await;
    assert!(mine_log.iter().all(|e| e["project_id"] == app.project.to_string()));
    assert!(!serde_json::to_string(&mine_log).unwrap().contains(&theirs.id.to_string()));
    let other_log = app.req(Method::GET, "/v1/audit-log?limit=1000").key(&other).send().await;
    other_log.expect(200);
    let other_log = other_log.json()["data"].as_array().unwrap().clone();
    assert_eq!(actions(&other_log), ["tenant.create", "key.create", "project.create"]);
    assert!(other_log.iter().all(|e| e["project_id"] == other_project.to_string()));
    let peek = app.req(Method::GET, &format!("/v1/audit-log?target={}", mine.id)).key(&other).send().await;
    assert_eq!(peek.json()["data"], json!([]), "another project's target ids select nothing");
    app.finish().await;
}

/// Runs `sql` on the app's database over a connection of its own.
async fn execute_raw(app: &TestApp, backend: Backend, sql: &str) -> Result<(), sqlx::Error> {
    use sqlx::Connection;
    let url = app.config.database_url.expose();
    match backend {
        Backend::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(url).await?;
            sqlx::query(sql).execute(&mut conn).await.map(drop)
        }
        Backend::Postgres => {
            let mut conn = sqlx::PgConnection::connect(url).await?;
            sqlx::query(sql).execute(&mut conn).await.map(drop)
        }
    }
}

/// Writes an entry dated 2000 straight into the database, as if it had been kept that long.
async fn insert_old_entry(app: &TestApp, backend: Backend) -> String {
    let id = AuditId::generate().to_string();
    let sql = format!(
        "INSERT INTO audit_log (id, project_id, occurred_at, actor_kind, actor_id, action, target_type, target_id, request_id) \
         VALUES ('{id}', '{}', '2000-01-01T00:00:00+00:00', 'cli', 'test', 'tenant.create', 'tenant', 'ten_old', 'old')",
        app.project
    );
    execute_raw(app, backend, &sql).await.unwrap();
    id
}

async fn entries_are_append_only_and_expire(backend: Backend) {
    let app = spawn(backend).await;
    app.create_named("Kept").await;
    assert_eq!(entries(&app, "").await.len(), 3);
    // The database itself refuses to change an entry.
    let err = execute_raw(&app, backend, "UPDATE audit_log SET action = 'tenant.delete'")
        .await
        .expect_err("an audit entry was updated");
    assert!(err.to_string().contains("append-only"), "{err}");
    assert_eq!(entries(&app, "action=tenant.create").await.len(), 1);
    // Retention removes what is older than the cut-off, and nothing newer.
    let past = chrono::Utc::now() - chrono::TimeDelta::days(1);
    assert_eq!(app.store.prune_audit(past).await.unwrap(), 0);
    let future = chrono::Utc::now() + chrono::TimeDelta::seconds(1);
    assert_eq!(app.store.prune_audit(future).await.unwrap(), 3);
    assert_eq!(entries(&app, "").await.len(), 0);
    app.finish().await;
}

async fn the_server_prunes_by_the_configured_retention(backend: Backend) {
    // 30 days: the entry from 2000 goes, the fresh ones stay.
    let app = spawn_with(backend, |c| {
        c.audit_retention_days = 30;
        c.prune_interval_secs = 1;
    })
    .await;
    let old = insert_old_entry(&app, backend).await;
    app.create_named("Fresh").await;
    let mut left = Vec::new();
    for _ in 0..60 {
        left = entries(&app, "").await;
        if left.iter().all(|e| e["id"] != old) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(actions(&left), ["tenant.create", "key.create", "project.create"], "only the old entry went");
    app.finish().await;

    // 0 keeps the log forever.
    let app = spawn_with(backend, |c| {
        c.audit_retention_days = 0;
        c.prune_interval_secs = 1;
    })
    .await;
    let old = insert_old_entry(&app, backend).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(entries(&app, "").await.iter().any(|e| e["id"] == old), "retention 0 removed an entry");
    app.finish().await;
}

on_both_backends!(
    each_tenant_change_leaves_one_entry_with_its_actor,
    failed_and_empty_changes_leave_no_entry,
    webhook_changes_are_audited_without_secrets,
    the_log_filters_and_pages,
    reading_needs_audit_read_and_stays_in_the_project,
    entries_are_append_only_and_expire,
    the_server_prunes_by_the_configured_retention,
);
