//! A project's webhooks: the endpoints (create, edit, enable/disable, delete), each endpoint's
//! signing secret (revealed on request, rotated with a grace period), a test event, its delivery
//! log with every attempt, resending one delivery and recovering the failed ones since a time.
//!
//! The checks and the writes are the API's own (`routes::webhooks`), so the dashboard and the
//! API refuse the same URLs (SSRF guard included) with the same messages.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use carcosa_core::endpoint::{DeliveryOut, DeliveryStatus, EndpointIn, EndpointOut, EndpointPatch};
use carcosa_core::webhook::WebhookSecret;
use carcosa_core::{Action, DeliveryId, EndpointId};
use chrono::{DateTime, NaiveDateTime, Utc};
use maud::{Markup, html};
use serde::Deserialize;

use super::keys::secret_box;
use super::login::Empty;
use super::project::{ProjectCtx, Section};
use super::{CsrfForm, badge, csrf_field, error_page, internal_error, notice, respond, see_other, when};
use crate::AppState;
use crate::error::ApiError;
use crate::routes::webhooks as ops;
use crate::session::SignedIn;
use crate::store::{EndpointRecord, StoreError};

/// Deliveries per page of the log.
const PAGE: u32 = 25;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/ui/p/{project}/webhooks", get(list).post(create))
        .route("/ui/p/{project}/webhooks/{endpoint}", get(show).post(edit))
        .route("/ui/p/{project}/webhooks/{endpoint}/secret", post(reveal))
        .route("/ui/p/{project}/webhooks/{endpoint}/rotate", post(rotate))
        .route("/ui/p/{project}/webhooks/{endpoint}/test", post(test))
        .route("/ui/p/{project}/webhooks/{endpoint}/recover", post(recover))
        .route("/ui/p/{project}/webhooks/{endpoint}/delete", post(delete))
        .route("/ui/p/{project}/deliveries/{delivery}/resend", post(resend))
}

/// Opens the project and checks the action (when one is given).
async fn open(
    state: &AppState,
    signed_in: SignedIn,
    project: &str,
    action: Option<Action>,
) -> Result<ProjectCtx, Response> {
    let ctx = ProjectCtx::open(state, signed_in, project).await?;
    if let Some(action) = action {
        ctx.require(action)?;
    }
    Ok(ctx)
}

fn not_found(ctx: &ProjectCtx) -> Response {
    error_page(StatusCode::NOT_FOUND, "not_found", "There is no such webhook endpoint.", Some(&ctx.signed_in))
}

/// Opens the project for an operator whose role allows `action`, and its endpoint `id`.
async fn open_endpoint(
    state: &AppState,
    signed_in: SignedIn,
    project: &str,
    id: &str,
    action: Action,
) -> Result<(ProjectCtx, EndpointRecord), Response> {
    let ctx = open(state, signed_in, project, Some(action)).await?;
    let record = load(state, &ctx, id).await?;
    Ok((ctx, record))
}

async fn load(state: &AppState, ctx: &ProjectCtx, id: &str) -> Result<EndpointRecord, Response> {
    let Ok(id) = EndpointId::parse(id) else { return Err(not_found(ctx)) };
    match state.store().get_endpoint(ctx.project.id, id).await {
        Ok(record) => Ok(record),
        Err(StoreError::NotFound) => Err(not_found(ctx)),
        Err(err) => Err(internal_error(&err)),
    }
}

/// What an API refusal says, as a line on the page; server faults become the 500 page.
#[expect(clippy::result_large_err, reason = "the error is the page to answer with, made once per request")]
fn refusal(err: ApiError) -> Result<String, Response> {
    if err.status().is_server_error() {
        return Err(internal_error(&err));
    }
    Ok(err.problem().detail)
}

#[derive(Debug, Default, Deserialize)]
struct NoticeQuery {
    notice: Option<String>,
}

/// The endpoint form, as typed.
#[derive(Debug, Default, Deserialize)]
struct EndpointForm {
    #[serde(default)]
    url: String,
    #[serde(default)]
    description: String,
    /// Comma- or space-separated patterns; empty = every type.
    #[serde(default)]
    event_types: String,
    /// A checkbox: present when ticked.
    enabled: Option<String>,
}

impl EndpointForm {
    fn of(endpoint: &EndpointOut) -> Self {
        Self {
            url: endpoint.url.clone(),
            description: endpoint.description.clone().unwrap_or_default(),
            event_types: endpoint.event_types.as_ref().map(|t| t.join(", ")).unwrap_or_default(),
            enabled: endpoint.enabled.then(|| "on".to_owned()),
        }
    }

    fn patterns(&self) -> Option<Vec<String>> {
        let patterns: Vec<String> = self
            .event_types
            .split([',', ' ', '\n'])
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .collect();
        (!patterns.is_empty()).then_some(patterns)
    }

    fn description(&self) -> Option<String> {
        Some(self.description.trim().to_owned()).filter(|d| !d.is_empty())
    }
}

fn endpoint_form(
    ctx: &ProjectCtx,
    action: &str,
    form: &EndpointForm,
    error: Option<&str>,
    creating: bool,
) -> Markup {
    html! {
        form method="post" action=(action) {
            (csrf_field(&ctx.signed_in.csrf))
            @if let Some(error) = error { p.error role="alert" id="endpoint-error" { (error) } }
            label for="url" { "URL" }
            input id="url" type="url" name="url" value=(form.url) required placeholder="https://app.example.com/carcosa/webhooks"
                aria-invalid=[error.map(|_| "true")] aria-describedby=[error.map(|_| "endpoint-error")];
            label for="description" { "Description" }
            input id="description" type="text" name="description" value=(form.description) maxlength="500";
            label for="event_types" { "Event types" }
            input id="event_types" type="text" name="event_types" value=(form.event_types) aria-describedby="event-types-hint";
            p.hint id="event-types-hint" { "Comma-separated, e.g. " code { "tenant.created, tenant.*" } "; empty sends every type." }
            p {
                input id="enabled" type="checkbox" name="enabled" value="on" checked[form.enabled.is_some()];
                " " label for="enabled" style="display:inline" { "Enabled" }
            }
            div.actions { button type="submit" { @if creating { "Create endpoint" } @else { "Save endpoint" } } }
        }
    }
}

fn state_badge(endpoint: &EndpointOut) -> Markup {
    html! {
        @if endpoint.enabled { (badge("enabled")) } @else { (badge("disabled")) }
        @if let Some(reason) = &endpoint.disabled_reason { " " span.muted { (reason) } }
        @if let Some(since) = endpoint.failing_since { br; span.muted { "failing since " (when(since)) } }
    }
}

async fn list(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(project): Path<String>,
    super::Lenient(query): super::Lenient<NoticeQuery>,
) -> Response {
    let ctx = match open(&state, signed_in, &project, None).await {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    let top = notice(query.notice.as_deref());
    let form = EndpointForm { enabled: Some("on".into()), ..EndpointForm::default() };
    render_list(&state, &ctx, StatusCode::OK, top, &form, None).await
}

async fn render_list(
    state: &AppState,
    ctx: &ProjectCtx,
    status: StatusCode,
    top: Markup,
    form: &EndpointForm,
    error: Option<&str>,
) -> Response {
    let endpoints = match state.store().list_endpoints(ctx.project.id).await {
        Ok(endpoints) => endpoints,
        Err(err) => return internal_error(&err),
    };
    let body = html! {
        h1 { "Webhooks" }
        (top)
        div.card {
            table {
                caption.muted { (endpoints.len()) " endpoint" @if endpoints.len() != 1 { "s" } }
                thead { tr { th scope="col" { "URL" } th.optional scope="col" { "Event types" } th scope="col" { "State" } } }
                tbody {
                    @for record in &endpoints {
                        @let e = &record.endpoint;
                        tr {
                            td {
                                a href=(ctx.path(&format!("/webhooks/{}", e.id))) { code { (e.url) } }
                                @if let Some(d) = &e.description { br; span.muted { (d) } }
                            }
                            td.optional { @match &e.event_types { Some(t) => { code { (t.join(", ")) } } None => { "every type" } } }
                            td { (state_badge(e)) }
                        }
                    }
                    @if endpoints.is_empty() { tr { td colspan="3" { "No endpoint yet." } } }
                }
            }
        }
        @if ctx.may(Action::WebhookCreate) {
            section.card {
                h2 { "New endpoint" }
                (endpoint_form(ctx, &ctx.path("/webhooks"), form, error, true))
            }
        }
    };
    respond(status, ctx.page(Section::Webhooks, "Webhooks", body))
}

async fn create(
    State(state): State<AppState>,
    Path(project): Path<String>,
    posted: CsrfForm<EndpointForm>,
) -> Response {
    let ctx = match open(&state, posted.signed_in.clone(), &project, Some(Action::WebhookCreate)).await {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    let form = &posted.form;
    let body = EndpointIn {
        url: form.url.trim().to_owned(),
        description: form.description(),
        event_types: form.patterns(),
        enabled: Some(form.enabled.is_some()),
    };
    match ops::create(&state, ctx.project.id, body, &posted.audit()).await {
        Ok(created) => {
            let path = ctx.path(&format!("/webhooks/{}", created.endpoint.id));
            let top = html! {
                section.card.stack {
                    h2 { "Endpoint created" }
                    p { "Its signing secret verifies the " code { "webhook-signature" } " header. You can reveal it again later on this page." }
                    (secret_box("endpoint-secret", &created.secret))
                    p { a href=(path) { "Open the endpoint" } }
                }
            };
            let blank = EndpointForm { enabled: Some("on".into()), ..EndpointForm::default() };
            render_list(&state, &ctx, StatusCode::CREATED, top, &blank, None).await
        }
        Err(err) => match refusal(err) {
            Ok(message) => {
                render_list(&state, &ctx, StatusCode::UNPROCESSABLE_ENTITY, html! {}, form, Some(&message))
                    .await
            }
            Err(response) => response,
        },
    }
}

#[derive(Debug, Default, Deserialize)]
struct ShowQuery {
    notice: Option<String>,
    status: Option<String>,
    cursor: Option<String>,
}

async fn show(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path((project, endpoint)): Path<(String, String)>,
    super::Lenient(query): super::Lenient<ShowQuery>,
) -> Response {
    let ctx = match open(&state, signed_in, &project, None).await {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    let record = match load(&state, &ctx, &endpoint).await {
        Ok(record) => record,
        Err(response) => return response,
    };
    let form = EndpointForm::of(&record.endpoint);
    let view = View { top: notice(query.notice.as_deref()), form: &form, error: None, query: &query };
    render_endpoint(&state, &ctx, StatusCode::OK, &record.endpoint, view).await
}

/// What an endpoint's page shows besides the endpoint.
struct View<'a> {
    top: Markup,
    form: &'a EndpointForm,
    error: Option<&'a str>,
    query: &'a ShowQuery,
}

async fn render_endpoint(
    state: &AppState,
    ctx: &ProjectCtx,
    status: StatusCode,
    endpoint: &EndpointOut,
    view: View<'_>,
) -> Response {
    let filter =
        view.query.status.as_deref().filter(|s| !s.is_empty()).and_then(|s| s.parse::<DeliveryStatus>().ok());
    let before = view.query.cursor.as_deref().and_then(|c| DeliveryId::parse(c).ok());
    let page = match state.store().list_deliveries(ctx.project.id, endpoint.id, filter, before, PAGE).await {
        Ok(page) => page,
        Err(err) => return internal_error(&err),
    };
    let base = ctx.path(&format!("/webhooks/{}", endpoint.id));
    let next = page.next_cursor.as_ref().map(|cursor| {
        let mut params = vec![("cursor", cursor.clone())];
        if let Some(status) = filter {
            params.push(("status", status.to_string()));
        }
        format!("{base}?{}", serde_urlencoded::to_string(params).unwrap_or_default())
    });
    let action = |rest: &str| format!("{base}/{rest}");
    let body = html! {
        p.crumbs { a href=(ctx.path("/webhooks")) { "Webhooks" } }
        h1 { code { (endpoint.url) } }
        (view.top)
        div.grid {
            div.card {
                dl {
                    dt { "Id" } dd { code { (endpoint.id) } }
                    dt { "State" } dd { (state_badge(endpoint)) }
                    dt { "Event types" } dd { @match &endpoint.event_types { Some(t) => { code { (t.join(", ")) } } None => { "every type" } } }
                    @if let Some(until) = endpoint.previous_secret_expires_at { dt { "Previous secret signs until" } dd { (when(until)) } }
                    dt { "Created" } dd { (when(endpoint.created_at)) }
                }
                div.actions {
                    @if ctx.may(Action::WebhookRevealSecret) {
                        form method="post" action=(action("secret")) { (csrf_field(&ctx.signed_in.csrf)) button.small type="submit" { "Reveal secret" } }
                    }
                    @if ctx.may(Action::WebhookRotate) {
                        form method="post" action=(action("rotate")) { (csrf_field(&ctx.signed_in.csrf)) button.small type="submit" { "Rotate secret" } }
                    }
                    @if ctx.may(Action::WebhookTest) && endpoint.enabled {
                        form method="post" action=(action("test")) { (csrf_field(&ctx.signed_in.csrf)) button.small type="submit" { "Send test event" } }
                    }
                }
            }
            @if ctx.may(Action::DeliveryRecover) {
                div.card {
                    h2 { "Recover failed deliveries" }
                    form method="post" action=(action("recover")) {
                        (csrf_field(&ctx.signed_in.csrf))
                        label for="since" { "Failed since (UTC)" }
                        input id="since" type="datetime-local" name="since" required
                            value=((Utc::now() - chrono::TimeDelta::days(1)).format("%Y-%m-%dT%H:%M"));
                        div.actions { button.small type="submit" { "Queue them again" } }
                    }
                }
            }
        }
        @if ctx.may(Action::WebhookUpdate) {
            section.card { h2 { "Settings" } (endpoint_form(ctx, &base, view.form, view.error, false)) }
        }
        section.card {
            h2 { "Delivery log" }
            form method="get" action=(base) {
                div.row {
                    div {
                        label for="delivery-status" { "Status" }
                        select id="delivery-status" name="status" {
                            option value="" selected[filter.is_none()] { "all" }
                            @for s in [DeliveryStatus::Pending, DeliveryStatus::Succeeded, DeliveryStatus::Failed] {
                                option value=(s) selected[filter == Some(s)] { (s) }
                            }
                        }
                    }
                    div.shrink { button type="submit" { "Filter" } }
                }
            }
            @if page.data.is_empty() { p.muted { "No deliveries." } }
            @for delivery in &page.data { (delivery_entry(ctx, delivery)) }
            nav.pager aria-label="Pages" {
                @if before.is_some() { a href=(base) { "Newest" } }
                @if let Some(next) = &next { a href=(next) rel="next" { "Older deliveries" } }
            }
        }
        @if ctx.may(Action::WebhookDelete) {
            section.card {
                h2 { "Delete endpoint" }
                p { "Deleting removes the endpoint and its delivery log." }
                form method="post" action=(action("delete")) {
                    (csrf_field(&ctx.signed_in.csrf))
                    button.danger type="submit" { "Delete endpoint" }
                }
            }
        }
    };
    respond(status, ctx.page(Section::Webhooks, "Webhook endpoint", body))
}

fn delivery_entry(ctx: &ProjectCtx, delivery: &DeliveryOut) -> Markup {
    html! {
        details {
            summary {
                (badge(delivery.status.as_str())) " " code { (delivery.event_type) } " · " (when(delivery.created_at))
                " · " (delivery.attempts.len()) " attempt" @if delivery.attempts.len() != 1 { "s" }
            }
            p.muted { "Delivery " code { (delivery.id) } " · event " code { (delivery.event_id) }
                @if let Some(next) = delivery.next_attempt_at { " · next attempt " (when(next)) } }
            @if !delivery.attempts.is_empty() {
                table {
                    thead { tr { th scope="col" { "#" } th scope="col" { "When" } th scope="col" { "Answer" } th.optional scope="col" { "Latency" } } }
                    tbody {
                        @for attempt in &delivery.attempts {
                            tr {
                                td { (attempt.attempt) }
                                td { (when(attempt.attempted_at)) }
                                td {
                                    @if let Some(status) = attempt.response_status { "HTTP " (status) }
                                    @if let Some(error) = &attempt.error { " " span.error { (error) } }
                                    @if let Some(body) = &attempt.response_body { @if !body.is_empty() { pre { (body) } } }
                                }
                                td.optional { (attempt.latency_ms) " ms" }
                            }
                        }
                    }
                }
            }
            @if ctx.may(Action::DeliveryResend) && delivery.status != DeliveryStatus::Pending {
                form method="post" action=(ctx.path(&format!("/deliveries/{}/resend", delivery.id))) {
                    (csrf_field(&ctx.signed_in.csrf))
                    button.small type="submit" { "Resend" }
                }
            }
        }
    }
}

async fn edit(
    State(state): State<AppState>,
    Path((project, endpoint)): Path<(String, String)>,
    posted: CsrfForm<EndpointForm>,
) -> Response {
    let (ctx, record) =
        match open_endpoint(&state, posted.signed_in.clone(), &project, &endpoint, Action::WebhookUpdate)
            .await
        {
            Ok(both) => both,
            Err(response) => return response,
        };
    let form = &posted.form;
    let patch = EndpointPatch {
        url: Some(form.url.trim().to_owned()),
        description: Some(form.description()),
        event_types: Some(form.patterns()),
        enabled: Some(form.enabled.is_some()),
    };
    match ops::update(&state, ctx.project.id, record.endpoint.id, patch, &posted.audit()).await {
        Ok(endpoint) => see_other(&ctx.path(&format!("/webhooks/{}?notice=endpoint_updated", endpoint.id))),
        Err(err) => match refusal(err) {
            Ok(message) => {
                let view = View { top: html! {}, form, error: Some(&message), query: &ShowQuery::default() };
                render_endpoint(&state, &ctx, StatusCode::UNPROCESSABLE_ENTITY, &record.endpoint, view).await
            }
            Err(response) => response,
        },
    }
}

/// Shows the endpoint's page with `top` above it (a secret, an error).
async fn endpoint_with(
    state: &AppState,
    ctx: &ProjectCtx,
    status: StatusCode,
    endpoint: &EndpointOut,
    top: Markup,
) -> Response {
    let form = EndpointForm::of(endpoint);
    let view = View { top, form: &form, error: None, query: &ShowQuery::default() };
    render_endpoint(state, ctx, status, endpoint, view).await
}

async fn reveal(
    State(state): State<AppState>,
    Path((project, endpoint)): Path<(String, String)>,
    posted: CsrfForm<Empty>,
) -> Response {
    let ctx = match open(&state, posted.signed_in.clone(), &project, Some(Action::WebhookRevealSecret)).await
    {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    let record = match load(&state, &ctx, &endpoint).await {
        Ok(record) => record,
        Err(response) => return response,
    };
    let secret = match state
        .secrets()
        .open(&record.secret)
        .map_err(|e| e.to_string())
        .and_then(|bytes| WebhookSecret::from_bytes(bytes).map_err(|e| e.to_string()))
    {
        Ok(secret) => secret,
        Err(err) => return internal_error(&err),
    };
    tracing::info!(endpoint_id = %record.endpoint.id, operator = %ctx.signed_in.operator.id, "webhook secret revealed in the dashboard");
    let top = html! {
        section.card.stack {
            h2 { "Signing secret" }
            (secret_box("endpoint-secret", &secret.expose()))
        }
    };
    endpoint_with(&state, &ctx, StatusCode::OK, &record.endpoint, top).await
}

async fn rotate(
    State(state): State<AppState>,
    Path((project, endpoint)): Path<(String, String)>,
    posted: CsrfForm<Empty>,
) -> Response {
    let (ctx, record) =
        match open_endpoint(&state, posted.signed_in.clone(), &project, &endpoint, Action::WebhookRotate)
            .await
        {
            Ok(both) => both,
            Err(response) => return response,
        };
    match ops::rotate(&state, ctx.project.id, record.endpoint.id, &posted.audit()).await {
        Ok(rotated) => {
            let top = html! {
                (notice(Some("secret_rotated")))
                section.card.stack { h2 { "New signing secret" } (secret_box("endpoint-secret", &rotated.secret)) }
            };
            endpoint_with(&state, &ctx, StatusCode::OK, &rotated.endpoint, top).await
        }
        Err(err) => internal_error(&err),
    }
}

async fn test(
    State(state): State<AppState>,
    Path((project, endpoint)): Path<(String, String)>,
    posted: CsrfForm<Empty>,
) -> Response {
    let (ctx, record) =
        match open_endpoint(&state, posted.signed_in.clone(), &project, &endpoint, Action::WebhookTest).await
        {
            Ok(both) => both,
            Err(response) => return response,
        };
    match ops::queue_test(&state, ctx.project.id, record.endpoint.id, &posted.audit()).await {
        Ok(_) => see_other(&ctx.path(&format!("/webhooks/{}?notice=test_sent", record.endpoint.id))),
        Err(err) => match refusal(err) {
            Ok(message) => {
                let top = html! { p.error role="alert" { (message) } };
                endpoint_with(&state, &ctx, StatusCode::CONFLICT, &record.endpoint, top).await
            }
            Err(response) => response,
        },
    }
}

#[derive(Debug, Deserialize)]
struct RecoverForm {
    #[serde(default)]
    since: String,
}

/// A `datetime-local` value (UTC), or RFC 3339.
fn parse_since(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    DateTime::parse_from_rfc3339(text).map(|t| t.with_timezone(&Utc)).ok().or_else(|| {
        ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"]
            .iter()
            .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
            .map(|t| t.and_utc())
    })
}

async fn recover(
    State(state): State<AppState>,
    Path((project, endpoint)): Path<(String, String)>,
    posted: CsrfForm<RecoverForm>,
) -> Response {
    let (ctx, record) =
        match open_endpoint(&state, posted.signed_in.clone(), &project, &endpoint, Action::DeliveryRecover)
            .await
        {
            Ok(both) => both,
            Err(response) => return response,
        };
    let Some(since) = parse_since(&posted.form.since) else {
        let top = html! { p.error role="alert" { "Give the time to recover from, like 2026-11-27T09:00." } };
        return endpoint_with(&state, &ctx, StatusCode::UNPROCESSABLE_ENTITY, &record.endpoint, top).await;
    };
    match state.store().recover_deliveries(ctx.project.id, record.endpoint.id, since, &posted.audit()).await {
        Ok(requeued) => {
            tracing::info!(endpoint_id = %record.endpoint.id, requeued, "failed deliveries queued again from the dashboard");
            let done = if requeued == 0 { "nothing_to_recover" } else { "recovered" };
            see_other(&ctx.path(&format!("/webhooks/{}?notice={done}", record.endpoint.id)))
        }
        Err(err) => internal_error(&err),
    }
}

async fn delete(
    State(state): State<AppState>,
    Path((project, endpoint)): Path<(String, String)>,
    posted: CsrfForm<Empty>,
) -> Response {
    let (ctx, record) =
        match open_endpoint(&state, posted.signed_in.clone(), &project, &endpoint, Action::WebhookDelete)
            .await
        {
            Ok(both) => both,
            Err(response) => return response,
        };
    match state.store().delete_endpoint(ctx.project.id, record.endpoint.id, &posted.audit()).await {
        Ok(()) => see_other(&ctx.path("/webhooks?notice=endpoint_deleted")),
        Err(err) => internal_error(&err),
    }
}

async fn resend(
    State(state): State<AppState>,
    Path((project, delivery)): Path<(String, String)>,
    posted: CsrfForm<Empty>,
) -> Response {
    let ctx = match open(&state, posted.signed_in.clone(), &project, Some(Action::DeliveryResend)).await {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    let missing =
        || error_page(StatusCode::NOT_FOUND, "not_found", "There is no such delivery.", Some(&ctx.signed_in));
    let Ok(id) = DeliveryId::parse(&delivery) else { return missing() };
    match state.store().resend_delivery(ctx.project.id, id, &posted.audit()).await {
        Ok(delivery) => {
            see_other(&ctx.path(&format!("/webhooks/{}?notice=delivery_resent", delivery.endpoint_id)))
        }
        Err(StoreError::NotFound) => missing(),
        Err(StoreError::DeliveryInFlight) => error_page(
            StatusCode::CONFLICT,
            "delivery_in_flight",
            "The delivery is being attempted right now; resend it once the attempt is recorded.",
            Some(&ctx.signed_in),
        ),
        Err(err) => internal_error(&err),
    }
}
