//! The dashboard's project pages through a real server: every mutating route against every
//! role (allowed or 403, decided on the server), one audit entry per change with the operator as
//! its actor, forms that show their errors inline, and names, metadata and descriptions with
//! HTML in them rendered as text on every page.

use carcosa_core::audit::{ActorFilter, ActorKind};
use carcosa_core::operator::allows;
use carcosa_core::{Action, EndpointId, OperatorId, ProjectId, Role};
use carcosa_server::store::AuditFilter;
use serde_json::json;

use crate::dashboard::{Browser, PASSWORD, operator};
use crate::helpers::{Backend, TestApp, spawn_with, test_actor};
use crate::on_both_backends;

async fn spawn(backend: Backend) -> TestApp {
    // Endpoints on loopback (a closed port) are allowed, so tests can create them; the tests set
    // up their data through the API faster than the default rate limit allows.
    spawn_with(backend, |c| {
        c.webhook_allow_private = true;
        c.rate_limit_per_second = 0;
    })
    .await
}

/// Signs in a new operator with `role` in the test project.
async fn signed_in(app: &TestApp, email: &str, role: Role) -> (Browser, OperatorId) {
    let op = operator(app, email, email, None, Some((app.project, role))).await;
    let mut browser = Browser::new(app);
    let page = browser.login(email, PASSWORD).await;
    assert_eq!(page.status, 303, "{}", page.text);
    (browser, op.id)
}

/// Audit entries of `project` whose actor is the operator `id`.
async fn entries_by(
    app: &TestApp,
    project: ProjectId,
    id: OperatorId,
) -> Vec<carcosa_core::audit::AuditEntry> {
    let filter = AuditFilter {
        actor: Some(ActorFilter { kind: Some(ActorKind::Operator), id: id.to_string() }),
        ..AuditFilter::default()
    };
    app.store.list_audit(project, &filter, None, 1000).await.unwrap().data
}

/// An endpoint made through the API; disabled ones receive nothing.
async fn endpoint(app: &TestApp, enabled: bool) -> EndpointId {
    let created = app
        .post("/v1/webhook-endpoints", &json!({"url": "http://127.0.0.1:9/hook", "enabled": enabled}))
        .await
        .expect(201)
        .json();
    EndpointId::parse(created["id"].as_str().unwrap()).unwrap()
}

/// Fresh objects for one mutating request to act on.
struct Targets {
    tenant: carcosa_core::Tenant,
    disabled: EndpointId,
    enabled: EndpointId,
    delivery: String,
    key_id: String,
    victim: OperatorId,
}

async fn targets(app: &TestApp, n: usize) -> Targets {
    let tenant = app.create_named(&format!("Target {n}")).await;
    let disabled = endpoint(app, false).await;
    let enabled = endpoint(app, true).await;
    let delivery = app
        .store
        .enqueue_delivery(
            app.project,
            disabled,
            &format!("evt_test_{n}"),
            "webhook.test",
            "{}",
            &test_actor(),
        )
        .await
        .unwrap()
        .to_string();
    let (key, _) = app
        .store
        .create_key(app.project, &[carcosa_core::Scope::TenantsRead], None, &test_actor())
        .await
        .unwrap();
    let victim =
        operator(app, &format!("victim{n}@example.com"), "Victim", None, Some((app.project, Role::Viewer)))
            .await;
    Targets { tenant, disabled, enabled, delivery, key_id: key.id, victim: victim.id }
}

/// Every mutating route of a project's pages: the action it needs, the path, the form, and how
/// many audit entries it writes when allowed.
/// A mutating request: the action it needs, its path, its form, and the audit entries it writes.
type Mutation = (Action, String, Vec<(&'static str, String)>, usize);

fn mutations(p: &str, t: &Targets, n: usize) -> Vec<Mutation> {
    let tenant = format!("/ui/p/{p}/tenants/{}", t.tenant.id);
    let version = t.tenant.version.to_string();
    let disabled = format!("/ui/p/{p}/webhooks/{}", t.disabled);
    vec![
        (
            Action::TenantCreate,
            format!("/ui/p/{p}/tenants"),
            vec![("name", format!("New {n}")), ("status", "active".into())],
            1,
        ),
        (
            Action::TenantUpdate,
            tenant.clone(),
            vec![
                ("name", format!("Renamed {n}")),
                ("slug", t.tenant.slug.to_string()),
                ("status", "active".into()),
                ("plan", "gold".into()),
                ("metadata", r#"{"tier": "gold"}"#.into()),
                ("version", version.clone()),
            ],
            1,
        ),
        (
            Action::TenantUpdate,
            format!("{tenant}/status"),
            vec![("status", "suspended".into()), ("version", version)],
            1,
        ),
        (Action::TenantDelete, format!("{tenant}/delete"), vec![("confirm", t.tenant.slug.to_string())], 1),
        (
            Action::KeyCreate,
            format!("/ui/p/{p}/keys"),
            vec![("label", "ci".into()), ("tenants:read", "on".into())],
            1,
        ),
        (Action::KeyRevoke, format!("/ui/p/{p}/keys/{}/revoke", t.key_id), vec![], 1),
        (
            Action::WebhookCreate,
            format!("/ui/p/{p}/webhooks"),
            vec![("url", "http://127.0.0.1:9/new".into())],
            1,
        ),
        (Action::WebhookUpdate, disabled.clone(), vec![("url", "http://127.0.0.1:9/changed".into())], 1),
        (Action::WebhookRotate, format!("{disabled}/rotate"), vec![], 1),
        (Action::WebhookRevealSecret, format!("{disabled}/secret"), vec![], 0),
        (Action::WebhookTest, format!("/ui/p/{p}/webhooks/{}/test", t.enabled), vec![], 1),
        (Action::DeliveryResend, format!("/ui/p/{p}/deliveries/{}/resend", t.delivery), vec![], 1),
        // Nothing has failed: recovering finds nothing and records nothing.
        (
            Action::DeliveryRecover,
            format!("{disabled}/recover"),
            vec![("since", "2000-01-01T00:00".into())],
            0,
        ),
        (Action::WebhookDelete, format!("{disabled}/delete"), vec![], 1),
        (
            Action::OperatorManage,
            format!("/ui/p/{p}/operators"),
            vec![
                ("email", format!("new{n}@example.com")),
                ("password", PASSWORD.into()),
                ("role", "viewer".into()),
            ],
            1,
        ),
        (
            Action::OperatorManage,
            format!("/ui/p/{p}/operators/role"),
            vec![("operator", t.victim.to_string()), ("role", "admin".into())],
            1,
        ),
    ]
}

async fn every_mutating_route_is_allowed_or_refused_by_role(backend: Backend) {
    let app = spawn(backend).await;
    let p = app.project.to_string();
    let mut n = 0;
    let count = mutations(&p, &targets(&app, 0).await, 0).len();
    for role in Role::ALL {
        let (mut browser, me) = signed_in(&app, &format!("{role}@example.com"), role).await;
        let csrf = browser.get("/ui/").await.csrf();
        for i in 0..count {
            n += 1;
            let t = targets(&app, n).await;
            let (action, path, fields, audited) = mutations(&p, &t, n).swap_remove(i);
            let before = entries_by(&app, app.project, me).await.len();
            let mut form: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
            form.push(("csrf", &csrf));
            let page = browser.post(&path, &form).await;
            let after = entries_by(&app, app.project, me).await.len();
            if allows(role, action) {
                assert!(
                    matches!(page.status, 200 | 201 | 303),
                    "{role} may {action:?} at {path}: {} {}",
                    page.status,
                    page.text
                );
                assert_eq!(after - before, audited, "{role} {action:?} at {path}: one entry per change");
            } else {
                assert_eq!(page.status, 403, "{role} may not {action:?} at {path}: {}", page.text);
                assert!(page.text.contains(r#"data-code="forbidden""#), "{}", page.text);
                assert_eq!(after, before, "a refused change records nothing");
            }
        }
    }
    // Every entry the owner's changes wrote names the operator and the request.
    let owner = app
        .store
        .list_operators()
        .await
        .unwrap()
        .into_iter()
        .find(|o| o.email.as_str() == "owner@example.com")
        .unwrap();
    for entry in entries_by(&app, app.project, owner.id).await {
        assert_eq!(entry.actor.kind, ActorKind::Operator);
        assert!(!entry.request_id.is_empty());
        assert!(entry.user_agent.is_some() || entry.address.is_some(), "{entry:?}");
    }

    // An operator without a role in the project cannot even see it.
    let stranger = operator(&app, "stranger@example.com", "Stranger", None, None).await;
    let mut outsider = Browser::new(&app);
    outsider.login("stranger@example.com", PASSWORD).await;
    let csrf = outsider.get("/ui/").await.csrf();
    let t = targets(&app, 999).await;
    for (_, path, fields, _) in mutations(&p, &t, 999) {
        let mut form: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        form.push(("csrf", &csrf));
        assert_eq!(outsider.post(&path, &form).await.status, 404, "{path}");
    }
    assert_eq!(outsider.get(&format!("/ui/p/{p}/tenants")).await.status, 404);
    assert!(entries_by(&app, app.project, stranger.id).await.is_empty());
    app.finish().await;
}

async fn only_owners_delete_a_project(backend: Backend) {
    let app = spawn(backend).await;
    for role in Role::ALL {
        let (project, _, _) =
            app.store.create_project(&format!("Doomed {role}"), &test_actor()).await.unwrap();
        let op = operator(&app, &format!("{role}@example.com"), "Op", None, Some((project.id, role))).await;
        let mut browser = Browser::new(&app);
        browser.login(&format!("{role}@example.com"), PASSWORD).await;
        let overview = browser.get(&format!("/ui/p/{}", project.id)).await;
        assert_eq!(overview.status, 200, "{}", overview.text);
        assert_eq!(overview.text.contains("Delete project"), role == Role::Owner);
        let path = format!("/ui/p/{}/delete", project.id);
        let csrf = overview.csrf();
        let wrong = browser.post(&path, &[("confirm", "not the name"), ("csrf", &csrf)]).await;
        let page = browser.post(&path, &[("confirm", &project.name), ("csrf", &csrf)]).await;
        let still_there = app.store.list_projects().await.unwrap().iter().any(|p| p.id == project.id);
        if role == Role::Owner {
            assert_eq!(wrong.status, 422, "the name must be typed: {}", wrong.text);
            assert_eq!((page.status, page.location()), (303, Some("/ui/?notice=project_deleted")));
            assert!(!still_there);
            let entries = entries_by(&app, project.id, op.id).await;
            assert_eq!(entries.len(), 1);
            assert_eq!(entries[0].action.as_str(), "project.delete");
        } else {
            assert_eq!((wrong.status, page.status), (403, 403));
            assert!(still_there);
        }
    }
    app.finish().await;
}

async fn tenant_forms_show_errors_inline_and_keep_what_was_typed(backend: Backend) {
    let app = spawn(backend).await;
    let taken = app.create_named("Taken").await;
    let (mut browser, _) = signed_in(&app, "ada@example.com", Role::Admin).await;
    let p = app.project;
    let form = browser.get(&format!("/ui/p/{p}/tenants/new")).await;
    assert_eq!(form.status, 200, "{}", form.text);
    let csrf = form.csrf();

    let bad_json = browser
        .post(
            &format!("/ui/p/{p}/tenants"),
            &[("name", "Acme"), ("metadata", r#"{"tier": "gold",}"#), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(bad_json.status, 422, "{}", bad_json.text);
    assert!(
        bad_json.text.contains(r#"id="metadata-error""#) && bad_json.text.contains("line 1, column"),
        "{}",
        bad_json.text
    );
    assert!(bad_json.text.contains(r#"aria-invalid="true""#));
    assert!(
        bad_json.text.contains("{&quot;tier&quot;: &quot;gold&quot;,}")
            || bad_json.text.contains(r#"{"tier": "gold",}"#),
        "kept: {}",
        bad_json.text
    );
    assert!(bad_json.text.contains(r#"value="Acme""#), "the name is kept");

    let not_object = browser
        .post(&format!("/ui/p/{p}/tenants"), &[("name", "Acme"), ("metadata", "[1]"), ("csrf", &csrf)])
        .await;
    assert_eq!(not_object.status, 422);
    assert!(not_object.text.contains("must be a JSON object"));

    let slug = browser
        .post(
            &format!("/ui/p/{p}/tenants"),
            &[("name", "Acme"), ("slug", taken.slug.as_str()), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(slug.status, 422, "{}", slug.text);
    assert!(
        slug.text.contains(r#"id="slug-error""#) && slug.text.contains("already has the slug"),
        "{}",
        slug.text
    );

    let empty = browser.post(&format!("/ui/p/{p}/tenants"), &[("name", " "), ("csrf", &csrf)]).await;
    assert_eq!(empty.status, 422);
    assert!(empty.text.contains(r#"id="name-error""#), "{}", empty.text);

    let created = browser
        .post(
            &format!("/ui/p/{p}/tenants"),
            &[("name", "Acme"), ("metadata", r#"{"a": {"b": 1}, "c": 2}"#), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(created.status, 303, "{}", created.text);
    let location = created.location().unwrap().to_owned();
    let page = browser.get(&location).await;
    assert!(page.text.contains("Tenant created."), "{}", page.text);
    let path = location.split('?').next().unwrap().to_owned();
    let id = path.rsplit('/').next().unwrap();
    let tenant = app.get(&format!("/v1/tenants/{id}")).await.expect(200).tenant();
    assert_eq!(serde_json::Value::Object(tenant.metadata.clone()), json!({"a": {"b": 1}, "c": 2}));

    // The editor replaces the metadata with what is typed (keys removed, nested keys replaced).
    let edit = |metadata: &'static str, version: String| {
        vec![
            ("name", "Acme".to_owned()),
            ("slug", tenant.slug.to_string()),
            ("status", "active".to_owned()),
            ("plan", String::new()),
            ("metadata", metadata.to_owned()),
            ("version", version),
        ]
    };
    let fields = edit(r#"{"a": {"x": true}}"#, tenant.version.to_string());
    let mut form: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    form.push(("csrf", &csrf));
    let saved = browser.post(&path, &form).await;
    assert_eq!(saved.status, 303, "{}", saved.text);
    let after = app.get(&format!("/v1/tenants/{id}")).await.expect(200).tenant();
    assert_eq!(serde_json::Value::Object(after.metadata), json!({"a": {"x": true}}));
    assert_eq!(after.version, tenant.version + 1);

    // An edit made on an old version is refused, not silently applied over the newer one.
    let fields = edit(r#"{"stale": 1}"#, tenant.version.to_string());
    let mut form: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    form.push(("csrf", &csrf));
    let stale = browser.post(&path, &form).await;
    assert_eq!(stale.status, 422, "{}", stale.text);
    assert!(stale.text.contains("Someone changed this tenant"), "{}", stale.text);

    // Deleting asks for the slug.
    let wrong = browser.post(&format!("{path}/delete"), &[("confirm", "nope"), ("csrf", &csrf)]).await;
    assert_eq!(wrong.status, 422);
    assert!(wrong.text.contains("exactly to delete"), "{}", wrong.text);
    assert_eq!(app.get(&format!("/v1/tenants/{id}")).await.expect(200).tenant().status.as_str(), "active");
    app.finish().await;
}

async fn tenants_are_searched_filtered_and_paged(backend: Backend) {
    let app = spawn(backend).await;
    for i in 0..55 {
        app.create_named(&format!("Customer {i:02}")).await;
    }
    let odd = app.create_named("Oddball Inc").await;
    app.patch(&format!("/v1/tenants/{}", odd.id), &json!({"status": "suspended"})).await.expect(200);
    let (mut browser, _) = signed_in(&app, "vic@example.com", Role::Viewer).await;
    let p = app.project;
    let first = browser.get(&format!("/ui/p/{p}/tenants")).await;
    assert_eq!(first.status, 200, "{}", first.text);
    assert!(first.text.contains("50 tenants on this page"), "{}", first.text);
    assert!(!first.text.contains("New tenant"), "viewers are not offered what they cannot do");
    let next = first.text.split(r#"rel="next""#).next().unwrap();
    let href = next.rsplit(r#"href=""#).next().unwrap().split('"').next().unwrap().replace("&amp;", "&");
    let second = browser.get(&href).await;
    assert!(second.text.contains("6 tenants on this page"), "{}", second.text);
    let found = browser.get(&format!("/ui/p/{p}/tenants?q=oddBALL")).await;
    assert!(
        found.text.contains("1 tenant on this page") && found.text.contains("Oddball Inc"),
        "{}",
        found.text
    );
    let suspended = browser.get(&format!("/ui/p/{p}/tenants?status=suspended")).await;
    assert!(
        suspended.text.contains("1 tenant on this page") && suspended.text.contains("Oddball"),
        "{}",
        suspended.text
    );
    // The tenant's page: snapshot and event history.
    let page = browser.get(&format!("/ui/p/{p}/tenants/{}", odd.id)).await;
    assert!(page.text.contains("tenant.created") && page.text.contains("tenant.updated"), "{}", page.text);
    assert!(!page.text.contains("Delete tenant") && !page.text.contains("Save changes"));
    assert_eq!(browser.get(&format!("/ui/p/{p}/tenants/ten_nope")).await.status, 404);
    // The overview counts them and draws the charts.
    let overview = browser.get(&format!("/ui/p/{p}")).await;
    assert_eq!(overview.status, 200, "{}", overview.text);
    assert!(overview.text.contains("55 active · 1 suspended"), "{}", overview.text);
    assert!(overview.text.contains("<svg") && overview.text.contains("polyline"), "{}", overview.text);
    app.finish().await;
}

async fn the_audit_log_page_filters_and_exports_csv(backend: Backend) {
    let app = spawn(backend).await;
    let (mut browser, me) = signed_in(&app, "ada@example.com", Role::Owner).await;
    let p = app.project;
    let csrf = browser.get("/ui/").await.csrf();
    browser.post(&format!("/ui/p/{p}/tenants"), &[("name", "=HYPERLINK(\"x\")"), ("csrf", &csrf)]).await;
    browser.post(&format!("/ui/p/{p}/keys"), &[("tenants:read", "on"), ("csrf", &csrf)]).await;
    let page = browser.get(&format!("/ui/p/{p}/audit?actor=operator:{me}")).await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(page.text.contains("tenant.create") && page.text.contains("key.create"), "{}", page.text);
    let only_keys = browser.get(&format!("/ui/p/{p}/audit?action=key.create")).await;
    assert!(
        only_keys.text.contains("key.create") && !only_keys.text.contains("<code>tenant.create"),
        "{}",
        only_keys.text
    );
    let bad = browser.get(&format!("/ui/p/{p}/audit?since=2026-12-01T00:00&until=2026-11-01T00:00")).await;
    assert!(bad.text.contains("is after until"), "{}", bad.text);

    let csv = browser.get(&format!("/ui/p/{p}/audit.csv?actor=operator:{me}")).await;
    assert_eq!(csv.status, 200);
    assert!(csv.headers["content-type"].to_str().unwrap().starts_with("text/csv"));
    let lines: Vec<&str> = csv.text.lines().collect();
    assert!(lines[0].starts_with("id,occurred_at,actor_kind,actor_id,action"), "{}", csv.text);
    assert_eq!(lines.len(), 3, "a header and two entries: {}", csv.text);
    assert!(csv.text.contains(&format!("operator,{me},key.create")), "{}", csv.text);
    assert!(!csv.text.contains(",=HYPERLINK"), "formulas are defused: {}", csv.text);
    app.finish().await;
}

async fn html_in_user_data_renders_as_text_on_every_page(backend: Backend) {
    let app = spawn(backend).await;
    const EVIL: &str = "<script>alert(1)</script>";
    let tenant = app
        .create_tenant(json!({
            "name": EVIL,
            "plan": "<b>gold</b>",
            "metadata": {"note": "<img src=x onerror=alert(1)>", "<i>key</i>": "\"quoted\" 'single'"}
        }))
        .await;
    app.post(
        "/v1/webhook-endpoints",
        &json!({"url": "http://127.0.0.1:9/<x>", "description": EVIL, "enabled": false}),
    )
    .await
    .expect(201);
    let (key, _) = app
        .store
        .create_key(app.project, &[carcosa_core::Scope::TenantsRead], Some(EVIL), &test_actor())
        .await
        .unwrap();
    let _ = key;
    operator(&app, "evil@example.com", EVIL, None, Some((app.project, Role::Viewer))).await;
    let (mut browser, _) = signed_in(&app, "ada@example.com", Role::Owner).await;
    let p = app.project;
    let endpoints = app.store.list_endpoints(p).await.unwrap();
    let pages = [
        format!("/ui/p/{p}"),
        format!("/ui/p/{p}/tenants"),
        format!("/ui/p/{p}/tenants?q=%3Cscript%3E"),
        format!("/ui/p/{p}/tenants/{}", tenant.id),
        format!("/ui/p/{p}/keys"),
        format!("/ui/p/{p}/webhooks"),
        format!("/ui/p/{p}/webhooks/{}", endpoints[0].endpoint.id),
        format!("/ui/p/{p}/audit"),
        format!("/ui/p/{p}/audit?target=%3Cscript%3Ealert(1)%3C/script%3E"),
        format!("/ui/p/{p}/operators"),
    ];
    for path in pages {
        let page = browser.get(&path).await;
        assert_eq!(page.status, 200, "{path}: {}", page.text);
        for raw in ["<script>alert", "<img src=x", "<b>gold", "<i>key", "<x>"] {
            assert!(!page.text.contains(raw), "{path} shows {raw} raw: {}", page.text);
        }
    }
    let shown = browser.get(&format!("/ui/p/{p}/tenants/{}", tenant.id)).await;
    assert!(shown.text.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "{}", shown.text);
    assert!(shown.text.contains("&lt;img src=x onerror=alert(1)&gt;"), "{}", shown.text);
    app.finish().await;
}

on_both_backends!(
    every_mutating_route_is_allowed_or_refused_by_role,
    only_owners_delete_a_project,
    tenant_forms_show_errors_inline_and_keep_what_was_typed,
    tenants_are_searched_filtered_and_paged,
    the_audit_log_page_filters_and_exports_csv,
    html_in_user_data_renders_as_text_on_every_page,
);
