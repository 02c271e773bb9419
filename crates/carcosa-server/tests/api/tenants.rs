//! The tenant lifecycle: create, read, update, delete, list.

use reqwest::Method;
use serde_json::json;

use crate::helpers::{Backend, spawn};
use crate::on_both_backends;

async fn the_whole_tenant_lifecycle_works(backend: Backend) {
    let app = spawn(backend).await;

    // Create: id and slug generated, version 1, ETag and Location set.
    let res =
        app.post("/v1/tenants", &json!({"name": "Acme Corp", "plan": "pro", "metadata": {"seats": 5}})).await;
    res.expect(201);
    let created = res.tenant();
    assert!(created.id.to_string().starts_with("ten_"));
    assert_eq!(created.slug.as_str(), "acme-corp");
    assert_eq!(created.version, 1);
    assert_eq!(created.plan.as_deref(), Some("pro"));
    assert_eq!(res.header("etag"), Some("\"1\""));
    assert_eq!(res.header("location"), Some(format!("/v1/tenants/{}", created.id).as_str()));

    // Read by id and by slug.
    let by_id = app.get(&format!("/v1/tenants/{}", created.id)).await;
    by_id.expect(200);
    assert_eq!(by_id.tenant(), created);
    assert_eq!(by_id.header("etag"), Some("\"1\""));
    assert_eq!(app.get("/v1/tenants/acme-corp").await.tenant(), created);

    // Update with If-Match and a metadata merge patch.
    let res = app
        .req(Method::PATCH, &format!("/v1/tenants/{}", created.id))
        .header("if-match", "\"1\"")
        .json(&json!({"name": "Acme Corporation", "metadata": {"seats": 10, "region": "eu"}}))
        .send()
        .await;
    res.expect(200);
    let updated = res.tenant();
    assert_eq!(updated.version, 2);
    assert_eq!(updated.name, "Acme Corporation");
    assert_eq!(updated.slug.as_str(), "acme-corp", "renaming keeps the slug");
    assert_eq!(json!(updated.metadata), json!({"seats": 10, "region": "eu"}));
    assert_eq!(res.header("etag"), Some("\"2\""));
    assert!(updated.updated_at > created.updated_at);

    // Suspend, clear the plan, drop a metadata key.
    let updated = app
        .patch(
            &format!("/v1/tenants/{}", created.id),
            &json!({"status": "suspended", "plan": null, "metadata": {"region": null}}),
        )
        .await
        .tenant();
    assert_eq!(updated.version, 3);
    assert_eq!(updated.status.as_str(), "suspended");
    assert_eq!(updated.plan, None);
    assert_eq!(json!(updated.metadata), json!({"seats": 10}));

    // Delete: status deleted, version + 1, slug released, still readable by id.
    let res = app.delete(&format!("/v1/tenants/{}", created.id)).await;
    res.expect(200);
    let deleted = res.tenant();
    assert_eq!(deleted.status.as_str(), "deleted");
    assert_eq!(deleted.version, 4);
    assert!(deleted.deleted_at.is_some());
    app.get("/v1/tenants/acme-corp").await.expect_problem(404, "not_found");
    assert_eq!(app.get(&format!("/v1/tenants/{}", created.id)).await.tenant().status.as_str(), "deleted");
    let reborn = app.create_named("Acme Corp").await;
    assert_eq!(reborn.slug.as_str(), "acme-corp", "the slug was released by the deletion");
    assert_ne!(reborn.id, created.id);

    // Every change is one event, in order, each with the full snapshot.
    let events = app.all_events().await;
    let types: Vec<_> = events.iter().map(|e| e["type"].as_str().unwrap().to_owned()).collect();
    assert_eq!(
        types,
        ["tenant.created", "tenant.updated", "tenant.updated", "tenant.deleted", "tenant.created"]
    );
    let seqs: Vec<_> = events.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5]);
    assert_eq!(events[3]["tenant"], json!(deleted));
    app.finish().await;
}

async fn slugs_are_generated_with_collision_suffixes(backend: Backend) {
    let app = spawn(backend).await;
    let slugs = [
        app.create_named("Acme").await.slug,
        app.create_named("ACME").await.slug,
        app.create_named("acme!").await.slug,
        app.create_named("Ácme").await.slug,
    ];
    let slugs: Vec<_> = slugs.iter().map(|s| s.as_str().to_owned()).collect();
    assert_eq!(slugs, ["acme", "acme-2", "acme-3", "acme-4"]);
    // A tenant that took `acme-5` explicitly is skipped over.
    app.create_tenant(json!({"name": "Five", "slug": "acme-5"})).await;
    assert_eq!(app.create_named("Acme").await.slug.as_str(), "acme-6");
    // Unicode names, reserved words, and 63-character names.
    assert_eq!(app.create_named("Zürich Versicherung").await.slug.as_str(), "zurich-versicherung");
    assert_eq!(app.create_named("www").await.slug.as_str(), "www-2", "reserved words get a suffix");
    let long = "x".repeat(80);
    assert_eq!(app.create_named(&long).await.slug.as_str(), "x".repeat(63));
    let second = app.create_named(&long).await.slug;
    assert_eq!(second.as_str(), format!("{}-2", "x".repeat(61)));
    app.finish().await;
}

async fn explicit_slugs_are_checked(backend: Backend) {
    let app = spawn(backend).await;
    app.create_tenant(json!({"name": "Acme", "slug": "acme"})).await;
    app.post("/v1/tenants", &json!({"name": "Other", "slug": "acme"}))
        .await
        .expect_problem(409, "slug_taken");
    for bad in ["Acme", "-acme", "acme-", "xn--acme", "a b", "", &"a".repeat(64)] {
        app.post("/v1/tenants", &json!({"name": "Other", "slug": bad}))
            .await
            .expect_problem(422, "invalid_slug");
    }
    app.post("/v1/tenants", &json!({"name": "Other", "slug": "admin"}))
        .await
        .expect_problem(422, "slug_reserved");
    app.create_tenant(json!({"name": "Max", "slug": "a".repeat(63)})).await;

    // Renaming onto a taken slug is refused; onto a free one works; onto itself is a no-op.
    let other = app.create_tenant(json!({"name": "Other", "slug": "other"})).await;
    let path = format!("/v1/tenants/{}", other.id);
    app.patch(&path, &json!({"slug": "acme"})).await.expect_problem(409, "slug_taken");
    app.patch(&path, &json!({"slug": "api"})).await.expect_problem(422, "slug_reserved");
    let same = app.patch(&path, &json!({"slug": "other"})).await.tenant();
    assert_eq!(same.version, 1, "an update that changes nothing writes no version");
    assert_eq!(app.patch(&path, &json!({"slug": "other-co"})).await.tenant().slug.as_str(), "other-co");
    app.finish().await;
}

async fn if_match_guards_updates_and_deletes(backend: Backend) {
    let app = spawn(backend).await;
    let tenant = app.create_named("Guarded").await;
    let path = format!("/v1/tenants/{}", tenant.id);
    let stale =
        app.req(Method::PATCH, &path).header("if-match", "\"7\"").json(&json!({"name": "X"})).send().await;
    let problem = stale.expect_problem(412, "version_conflict");
    assert!(problem["detail"].as_str().unwrap().contains("version 1"));
    app.req(Method::PATCH, &path)
        .header("if-match", "soon")
        .json(&json!({"name": "X"}))
        .send()
        .await
        .expect_problem(400, "invalid_header");
    app.req(Method::PATCH, &path)
        .header("if-match", "W/\"1\"")
        .json(&json!({"name": "Y"}))
        .send()
        .await
        .expect(200);
    app.req(Method::DELETE, &path)
        .header("if-match", "\"1\"")
        .send()
        .await
        .expect_problem(412, "version_conflict");
    app.req(Method::DELETE, &path).header("if-match", "*").send().await.expect(200);
    // A deleted tenant cannot be changed; deleting it again changes nothing.
    app.patch(&path, &json!({"name": "Z"})).await.expect_problem(409, "tenant_deleted");
    let again = app.delete(&path).await;
    again.expect(200);
    assert_eq!(again.tenant().version, 3);
    assert_eq!(app.all_events().await.len(), 3);
    app.finish().await;
}

async fn metadata_follows_merge_patch_and_its_size_limit(backend: Backend) {
    let app = spawn(backend).await;
    let tenant =
        app.create_tenant(json!({"name": "Meta", "metadata": {"a": {"b": 1, "c": 2}, "keep": true}})).await;
    let path = format!("/v1/tenants/{}", tenant.id);
    let patched =
        app.patch(&path, &json!({"metadata": {"a": {"b": null, "d": [1, 2]}, "new": "x"}})).await.tenant();
    assert_eq!(json!(patched.metadata), json!({"a": {"c": 2, "d": [1, 2]}, "keep": true, "new": "x"}));
    let cleared = app.patch(&path, &json!({"metadata": null})).await.tenant();
    assert_eq!(json!(cleared.metadata), json!({}));
    let big = "x".repeat(17 * 1024);
    app.patch(&path, &json!({"metadata": {"big": big}})).await.expect_problem(422, "invalid_metadata");
    app.post("/v1/tenants", &json!({"name": "Big", "metadata": {"big": big}}))
        .await
        .expect_problem(422, "invalid_metadata");
    app.patch(&path, &json!({"metadata": [1]})).await.expect_problem(422, "invalid_metadata");
    assert_eq!(app.get(&path).await.tenant().version, 3, "refused patches change nothing");
    app.finish().await;
}

async fn listing_pages_filters_and_reports_as_of(backend: Backend) {
    let app = spawn(backend).await;
    let mut ids = Vec::new();
    for i in 0..25 {
        ids.push(app.create_tenant(json!({"name": format!("Tenant {i:02}")})).await.id);
    }
    let suspended = app.create_tenant(json!({"name": "Sleepy Co", "status": "suspended"})).await;
    let gone = app.create_named("Gone Inc").await;
    app.delete(&format!("/v1/tenants/{}", gone.id)).await.expect(200);

    // Page through live tenants 10 at a time: id order, no duplicates, no gaps.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/tenants?limit=10&cursor={c}"),
            None => "/v1/tenants?limit=10".to_owned(),
        };
        let page = app.get(&path).await;
        page.expect(200);
        let page = page.json();
        assert_eq!(page["as_of"], "28", "as_of is the feed position of the listing");
        seen.extend(page["data"].as_array().unwrap().iter().map(|t| t["id"].as_str().unwrap().to_owned()));
        pages += 1;
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let mut expected: Vec<String> = ids.iter().map(ToString::to_string).collect();
    expected.push(suspended.id.to_string());
    assert_eq!(seen, expected, "live tenants, in creation order, each once");

    // Filters.
    let only = |res: crate::helpers::Res| -> Vec<String> {
        res.json()["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["slug"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(only(app.get("/v1/tenants?status=suspended").await), ["sleepy-co"]);
    assert_eq!(only(app.get("/v1/tenants?status=deleted").await), ["gone-inc"]);
    assert_eq!(only(app.get("/v1/tenants?q=SLEEPY").await), ["sleepy-co"]);
    assert_eq!(only(app.get("/v1/tenants?q=tenant%2007").await), ["tenant-07"]);
    assert_eq!(only(app.get("/v1/tenants?q=%25").await), Vec::<String>::new(), "LIKE wildcards are literal");
    assert_eq!(only(app.get("/v1/tenants?q=_").await), Vec::<String>::new());
    app.get("/v1/tenants?status=asleep").await.expect_problem(400, "invalid_query");
    app.get("/v1/tenants?limit=1001").await.expect_problem(400, "invalid_query");
    app.get("/v1/tenants?limit=ten").await.expect_problem(400, "invalid_query");
    app.get("/v1/tenants?colour=red").await.expect_problem(400, "invalid_query");
    app.get("/v1/tenants?cursor=bm9wZQ").await.expect_problem(400, "invalid_cursor");
    app.finish().await;
}

async fn idempotency_keys_make_creates_safe_to_retry(backend: Backend) {
    let app = spawn(backend).await;
    let body = json!({"name": "Once", "metadata": {"a": 1, "b": 2}});
    let first = app
        .req(Method::POST, "/v1/tenants")
        .header("idempotency-key", "create-once-1")
        .json(&body)
        .send()
        .await;
    first.expect(201);
    // The same body, even with keys in another order, replays the first response.
    let reordered = r#"{"metadata": {"b": 2, "a": 1}, "name": "Once"}"#;
    let replay = app
        .req(Method::POST, "/v1/tenants")
        .header("idempotency-key", "create-once-1")
        .raw("application/json", reordered)
        .send()
        .await;
    replay.expect(201);
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    assert_eq!(replay.tenant(), first.tenant());
    // Another body with the same key is refused.
    app.req(Method::POST, "/v1/tenants")
        .header("idempotency-key", "create-once-1")
        .json(&json!({"name": "Twice"}))
        .send()
        .await
        .expect_problem(422, "idempotency_key_reused");
    app.req(Method::POST, "/v1/tenants")
        .header("idempotency-key", "bad key")
        .json(&body)
        .send()
        .await
        .expect_problem(400, "invalid_header");
    // Concurrent retries with one key create exactly one tenant.
    let racers = (0..8).map(|_| {
        app.req(Method::POST, "/v1/tenants")
            .header("idempotency-key", "race")
            .json(&json!({"name": "Racer"}))
            .send()
    });
    let results = futures::future::join_all(racers).await;
    let ids: std::collections::HashSet<_> = results.iter().map(|r| r.expect(201).tenant().id).collect();
    assert_eq!(ids.len(), 1);
    let page = app.get("/v1/tenants?limit=100").await.json();
    assert_eq!(page["data"].as_array().unwrap().len(), 2);
    assert_eq!(app.all_events().await.len(), 2);
    app.finish().await;
}

on_both_backends!(
    the_whole_tenant_lifecycle_works,
    slugs_are_generated_with_collision_suffixes,
    explicit_slugs_are_checked,
    if_match_guards_updates_and_deletes,
    metadata_follows_merge_patch_and_its_size_limit,
    listing_pages_filters_and_reports_as_of,
    idempotency_keys_make_creates_safe_to_retry,
);
