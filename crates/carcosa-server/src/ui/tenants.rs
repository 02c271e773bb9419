//! A project's tenants: search and status filter with keyset pages, creating one, a tenant's
//! page (its snapshot and event history), editing it (metadata in a JSON editor whose errors
//! show inline), suspending and activating it, and deleting it after typing its slug.
//!
//! Every change goes through the same store calls as the API, with the operator as the audit
//! entry's actor; edits carry the version they were made on, so two operators editing at once
//! cannot overwrite each other unawares.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use carcosa_core::api::{FieldError, TenantIn, TenantPatch};
use carcosa_core::{Action, PageCursor, Tenant, TenantId, TenantStatus, merge_patch};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::Value;

use super::project::{ProjectCtx, Section};
use super::{CsrfForm, badge, csrf_field, error_page, internal_error, notice, respond, see_other, when};
use crate::AppState;
use crate::error::ApiError;
use crate::session::SignedIn;
use crate::store::{StoreError, TenantFilter, TenantRef};

/// Tenants per page.
const PAGE: u32 = 50;
/// Events shown on a tenant's page.
const HISTORY: u32 = 50;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/ui/p/{project}/tenants", get(list).post(create))
        .route("/ui/p/{project}/tenants/new", get(new_form))
        .route("/ui/p/{project}/tenants/{tenant}", get(show).post(edit))
        .route("/ui/p/{project}/tenants/{tenant}/status", post(set_status))
        .route("/ui/p/{project}/tenants/{tenant}/delete", post(delete))
}

async fn open(state: &AppState, signed_in: SignedIn, project: &str) -> Result<ProjectCtx, Response> {
    ProjectCtx::open(state, signed_in, project).await
}

#[derive(Debug, Default, Deserialize)]
struct ListQuery {
    q: Option<String>,
    status: Option<String>,
    cursor: Option<String>,
    notice: Option<String>,
}

async fn list(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(project): Path<String>,
    super::Lenient(query): super::Lenient<ListQuery>,
) -> Response {
    let ctx = match open(&state, signed_in, &project).await {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    let q = query
        .q
        .as_deref()
        .map(str::trim)
        .filter(|q| !q.is_empty())
        .map(|q| q.chars().take(200).collect::<String>());
    let status =
        query.status.as_deref().filter(|s| !s.is_empty()).and_then(|s| s.parse::<TenantStatus>().ok());
    let cursor = query.cursor.as_deref().filter(|c| !c.is_empty()).and_then(|c| PageCursor::decode(c).ok());
    let filter = TenantFilter { status, q: q.clone() };
    let page = match state.store().list_tenants(ctx.project.id, &filter, cursor, PAGE).await {
        Ok(page) => page,
        Err(err) => return internal_error(&err),
    };
    let next = page.next_cursor.as_ref().map(|cursor| {
        let mut params = vec![("cursor", cursor.as_str())];
        if let Some(q) = &q {
            params.push(("q", q));
        }
        if let Some(status) = status {
            params.push(("status", status.as_str()));
        }
        format!("{}?{}", ctx.path("/tenants"), serde_urlencoded::to_string(params).unwrap_or_default())
    });
    let body = html! {
        h1 { "Tenants" }
        (notice(query.notice.as_deref()))
        form.card method="get" action=(ctx.path("/tenants")) role="search" {
            div.row {
                div {
                    label for="q" { "Search name or slug" }
                    input id="q" type="search" name="q" value=[q.as_deref()];
                }
                div {
                    label for="status" { "Status" }
                    select id="status" name="status" {
                        option value="" selected[status.is_none()] { "live (active and suspended)" }
                        @for s in [TenantStatus::Active, TenantStatus::Suspended, TenantStatus::Deleted] {
                            option value=(s) selected[status == Some(s)] { (s) }
                        }
                    }
                }
                div.shrink { button type="submit" { "Search" } }
            }
        }
        p.actions {
            @if ctx.may(Action::TenantCreate) { a href=(ctx.path("/tenants/new")) { "New tenant" } }
        }
        div.card {
            table {
                caption.muted {
                    (page.data.len()) " tenant" @if page.data.len() != 1 { "s" } " on this page"
                    @if cursor.is_some() { " (not the first)" }
                }
                thead { tr {
                    th scope="col" { "Name" } th scope="col" { "Slug" } th scope="col" { "Status" }
                    th.optional scope="col" { "Plan" } th.optional scope="col" { "Updated" }
                } }
                tbody {
                    @for tenant in &page.data {
                        tr {
                            td { a href=(ctx.path(&format!("/tenants/{}", tenant.id))) { (tenant.name) } }
                            td { code { (tenant.slug) } }
                            td { (badge(tenant.status.as_str())) }
                            td.optional { (tenant.plan.as_deref().unwrap_or("—")) }
                            td.optional { (when(tenant.updated_at)) }
                        }
                    }
                    @if page.data.is_empty() {
                        tr { td colspan="5" { "No tenant matches." } }
                    }
                }
            }
            nav.pager aria-label="Pages" {
                @if cursor.is_some() { a href=(ctx.path("/tenants")) { "First page" } }
                @if let Some(next) = &next { a href=(next) rel="next" { "Next page" } }
            }
        }
    };
    ctx.respond(Section::Tenants, "Tenants", body)
}

/// What the tenant form holds, as typed (re-shown on errors).
#[derive(Debug, Default, Deserialize)]
struct TenantForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    slug: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    plan: String,
    #[serde(default)]
    metadata: String,
    /// The version the edit was made on.
    #[serde(default)]
    version: Option<i64>,
}

impl TenantForm {
    fn of(tenant: &Tenant) -> Self {
        Self {
            name: tenant.name.clone(),
            slug: tenant.slug.to_string(),
            status: tenant.status.to_string(),
            plan: tenant.plan.clone().unwrap_or_default(),
            metadata: serde_json::to_string_pretty(&tenant.metadata).unwrap_or_default(),
            version: Some(tenant.version),
        }
    }

    /// The metadata field as a JSON object, or an error that says where it breaks.
    fn metadata(&self) -> Result<Value, FieldError> {
        let text = self.metadata.trim();
        if text.is_empty() {
            return Ok(Value::Object(serde_json::Map::new()));
        }
        match serde_json::from_str::<Value>(text) {
            Ok(value @ Value::Object(_)) => Ok(value),
            Ok(_) => Err(field_error(
                "invalid_metadata",
                "metadata",
                "Metadata must be a JSON object, like {\"tier\": \"gold\"}.",
            )),
            Err(err) => Err(field_error(
                "invalid_metadata",
                "metadata",
                format!("Not valid JSON at line {}, column {}: {err}", err.line(), err.column()),
            )),
        }
    }
}

fn field_error(code: &'static str, field: &'static str, message: impl Into<String>) -> FieldError {
    FieldError { code, field, message: message.into() }
}

/// A problem to show with the form: on a field, or over the whole form.
#[derive(Debug, Default)]
struct FormErrors {
    field: Option<(&'static str, String)>,
    form: Option<String>,
}

impl FormErrors {
    fn on(&self, field: &str) -> Option<&str> {
        self.field.as_ref().filter(|(f, _)| *f == field).map(|(_, m)| m.as_str())
    }

    fn from_field(err: &FieldError) -> Self {
        Self { field: Some((err.field, err.message.clone())), form: None }
    }

    /// A store refusal, on the field it concerns.
    fn from_store(err: StoreError) -> Result<Self, StoreError> {
        let field = match &err {
            StoreError::SlugTaken(_) | StoreError::SlugReserved(_) => "slug",
            StoreError::InvalidMetadata(_) => "metadata",
            StoreError::UnstorableText => "",
            StoreError::VersionConflict { .. } => {
                return Ok(Self {
                    field: None,
                    form: Some(
                        "Someone changed this tenant while you were editing. Reload the page to see their change, then edit again."
                            .into(),
                    ),
                });
            }
            StoreError::TenantDeleted => {
                return Ok(Self {
                    field: None,
                    form: Some("This tenant is deleted and cannot be changed.".into()),
                });
            }
            _ => return Err(err),
        };
        let message = ApiError::from(err).problem().detail;
        Ok(if field.is_empty() {
            Self { field: None, form: Some(message) }
        } else {
            Self { field: Some((field, message)), form: None }
        })
    }
}

/// An input with its label, its error (if any) and a hint.
fn text_field(id: &str, label: &str, value: &str, error: Option<&str>, hint: &str, required: bool) -> Markup {
    let error_id = format!("{id}-error");
    let hint_id = format!("{id}-hint");
    html! {
        label for=(id) { (label) }
        input id=(id) type="text" name=(id) value=(value) required[required]
            aria-invalid=[error.map(|_| "true")] aria-describedby={ (hint_id) @if error.is_some() { " " (error_id) } };
        p.hint id=(hint_id) { (hint) }
        @if let Some(error) = error { p.field-error id=(error_id) { (error) } }
    }
}

fn tenant_form(
    ctx: &ProjectCtx,
    action: &str,
    form: &TenantForm,
    errors: &FormErrors,
    creating: bool,
) -> Markup {
    let metadata_error = errors.on("metadata");
    html! {
        form id="tenant-form" method="post" action=(action) novalidate {
            (csrf_field(&ctx.signed_in.csrf))
            @if let Some(version) = form.version { input type="hidden" name="version" value=(version); }
            @if let Some(message) = &errors.form { p.error role="alert" { (message) } }
            (text_field("name", "Name", &form.name, errors.on("name"), "1 to 200 characters.", true))
            (text_field("slug", "Slug", &form.slug, errors.on("slug"),
                if creating { "Lower-case letters, digits and dashes; leave empty to derive it from the name." }
                else { "Lower-case letters, digits and dashes. Apps that route by slug see the change." }, !creating))
            label for="status" { "Status" }
            select id="status" name="status" {
                @for s in [TenantStatus::Active, TenantStatus::Suspended] {
                    option value=(s) selected[form.status == s.as_str()] { (s) }
                }
            }
            (text_field("plan", "Plan", &form.plan, errors.on("plan"), "Optional; leave empty for none.", false))
            label for="metadata" { "Metadata (JSON object)" }
            textarea id="metadata" name="metadata" spellcheck="false" aria-invalid=[metadata_error.map(|_| "true")]
                aria-describedby={ "metadata-hint" @if metadata_error.is_some() { " metadata-error" } } { (form.metadata) }
            p.hint id="metadata-hint" { "Any JSON object, e.g. {\"tier\": \"gold\", \"region\": \"eu\"}." }
            @if let Some(error) = metadata_error { p.field-error id="metadata-error" role="alert" { (error) } }
            div.actions { button type="submit" { @if creating { "Create tenant" } @else { "Save changes" } } }
        }
    }
}

async fn new_form(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(project): Path<String>,
) -> Response {
    let ctx = match open(&state, signed_in, &project).await {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    if let Err(denied) = ctx.require(Action::TenantCreate) {
        return denied;
    }
    let form = TenantForm { status: "active".into(), metadata: "{}".into(), ..TenantForm::default() };
    render_new(&ctx, StatusCode::OK, &form, &FormErrors::default())
}

fn render_new(ctx: &ProjectCtx, status: StatusCode, form: &TenantForm, errors: &FormErrors) -> Response {
    let body = html! {
        h1 { "New tenant" }
        div.card { (tenant_form(ctx, &ctx.path("/tenants"), form, errors, true)) }
    };
    respond(status, ctx.page(Section::Tenants, "New tenant", body))
}

async fn create(
    State(state): State<AppState>,
    Path(project): Path<String>,
    posted: CsrfForm<TenantForm>,
) -> Response {
    let ctx = match open(&state, posted.signed_in.clone(), &project).await {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    if let Err(denied) = ctx.require(Action::TenantCreate) {
        return denied;
    }
    let form = &posted.form;
    let invalid = |errors: FormErrors| render_new(&ctx, StatusCode::UNPROCESSABLE_ENTITY, form, &errors);
    let metadata = match form.metadata() {
        Ok(metadata) => metadata,
        Err(err) => return invalid(FormErrors::from_field(&err)),
    };
    let body = TenantIn {
        name: form.name.trim().to_owned(),
        slug: Some(form.slug.trim().to_owned()).filter(|s| !s.is_empty()),
        status: form.status.parse().ok(),
        plan: Some(form.plan.trim().to_owned()).filter(|p| !p.is_empty()),
        metadata: Some(metadata),
    };
    let new = match body.validate(state.rules().max_metadata_bytes) {
        Ok(new) => new,
        Err(err) => return invalid(FormErrors::from_field(&err)),
    };
    match state.store().create_tenant(ctx.project.id, new, state.rules(), None, &posted.audit()).await {
        Ok(outcome) => {
            let tenant = match outcome {
                crate::store::CreateOutcome::Created(written) => written.tenant,
                crate::store::CreateOutcome::Replayed(_) => return internal_error(&"a replay without a key"),
            };
            see_other(&ctx.path(&format!("/tenants/{}?notice=tenant_created", tenant.id)))
        }
        Err(err) => match FormErrors::from_store(err) {
            Ok(errors) => invalid(errors),
            Err(err) => internal_error(&err),
        },
    }
}

#[derive(Debug, Default, Deserialize)]
struct ShowQuery {
    notice: Option<String>,
}

/// Opens the project for an operator whose role allows `action`, and its tenant `id`.
async fn open_tenant(
    state: &AppState,
    signed_in: SignedIn,
    project: &str,
    id: &str,
    action: Action,
) -> Result<(ProjectCtx, Tenant), Response> {
    let ctx = open(state, signed_in, project).await?;
    ctx.require(action)?;
    let tenant = load(state, &ctx, id).await?;
    Ok((ctx, tenant))
}

/// Loads the tenant `id` of the project, or answers 404.
async fn load(state: &AppState, ctx: &ProjectCtx, id: &str) -> Result<Tenant, Response> {
    let not_found =
        || error_page(StatusCode::NOT_FOUND, "not_found", "There is no such tenant.", Some(&ctx.signed_in));
    let id = TenantId::parse(id).map_err(|_| not_found())?;
    match state.store().get_tenant(ctx.project.id, &TenantRef::Id(id)).await {
        Ok(tenant) => Ok(tenant),
        Err(StoreError::NotFound) => Err(not_found()),
        Err(err) => Err(internal_error(&err)),
    }
}

async fn show(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path((project, tenant)): Path<(String, String)>,
    super::Lenient(query): super::Lenient<ShowQuery>,
) -> Response {
    let ctx = match open(&state, signed_in, &project).await {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    let tenant = match load(&state, &ctx, &tenant).await {
        Ok(tenant) => tenant,
        Err(response) => return response,
    };
    let top = notice(query.notice.as_deref());
    render_tenant(
        &state,
        &ctx,
        StatusCode::OK,
        &tenant,
        top,
        &TenantForm::of(&tenant),
        &FormErrors::default(),
    )
    .await
}

async fn render_tenant(
    state: &AppState,
    ctx: &ProjectCtx,
    status: StatusCode,
    tenant: &Tenant,
    top: Markup,
    form: &TenantForm,
    errors: &FormErrors,
) -> Response {
    let events = match state.store().tenant_events(ctx.project.id, tenant.id, HISTORY).await {
        Ok(events) => events,
        Err(err) => return internal_error(&err),
    };
    let live = tenant.status != TenantStatus::Deleted;
    let base = ctx.path(&format!("/tenants/{}", tenant.id));
    let snapshot = serde_json::to_string_pretty(tenant).unwrap_or_default();
    let body = html! {
        p.crumbs { a href=(ctx.path("/tenants")) { "Tenants" } }
        h1 { (tenant.name) " " (badge(tenant.status.as_str())) }
        (top)
        div.grid {
            div.card {
                dl {
                    dt { "Id" } dd { code { (tenant.id) } }
                    dt { "Slug" } dd { code { (tenant.slug) } }
                    dt { "Plan" } dd { (tenant.plan.as_deref().unwrap_or("—")) }
                    dt { "Version" } dd { (tenant.version) }
                    dt { "Created" } dd { (when(tenant.created_at)) }
                    dt { "Updated" } dd { (when(tenant.updated_at)) }
                    @if let Some(at) = tenant.deleted_at { dt { "Deleted" } dd { (when(at)) } }
                }
                @if live && ctx.may(Action::TenantUpdate) {
                    form method="post" action={ (base) "/status" } {
                        (csrf_field(&ctx.signed_in.csrf))
                        input type="hidden" name="version" value=(tenant.version);
                        @if tenant.status == TenantStatus::Active {
                            input type="hidden" name="status" value="suspended";
                            button type="submit" { "Suspend" }
                        } @else {
                            input type="hidden" name="status" value="active";
                            button type="submit" { "Activate" }
                        }
                    }
                }
            }
            div.card {
                h2 { "Snapshot" }
                pre { code { (snapshot) } }
            }
        }
        @if live && ctx.may(Action::TenantUpdate) {
            section.card { h2 { "Edit" } (tenant_form(ctx, &base, form, errors, false)) }
        }
        section.card {
            h2 { "Event history" }
            @if events.is_empty() {
                p.muted { "No events retained for this tenant." }
            } @else {
                table {
                    caption.muted { "Newest first; at most " (HISTORY) }
                    thead { tr { th scope="col" { "Seq" } th scope="col" { "Event" } th scope="col" { "When" }
                        th.optional scope="col" { "Version" } th.optional scope="col" { "Name / slug / status" } } }
                    tbody {
                        @for event in &events {
                            tr {
                                td { (event.seq) }
                                td { code { (event.event_type) } }
                                td { (when(event.occurred_at)) }
                                td.optional { (event.tenant.version) }
                                td.optional { (event.tenant.name) " / " code { (event.tenant.slug) } " / " (event.tenant.status) }
                            }
                        }
                    }
                }
            }
        }
        @if live && ctx.may(Action::TenantDelete) {
            section.card {
                h2 { "Delete" }
                p { "Deleting keeps the tenant's id and history, releases its slug, and tells every synced app, which applies its deletion policy." }
                form method="post" action={ (base) "/delete" } {
                    (csrf_field(&ctx.signed_in.csrf))
                    label for="confirm" { "Type the slug " code { (tenant.slug) } " to confirm" }
                    input id="confirm" type="text" name="confirm" autocomplete="off" required
                        aria-invalid=[errors.on("confirm").map(|_| "true")];
                    @if let Some(error) = errors.on("confirm") { p.field-error role="alert" { (error) } }
                    div.actions { button.danger type="submit" { "Delete tenant" } }
                }
            }
        }
    };
    respond(status, ctx.page(Section::Tenants, &tenant.name, body))
}

/// The changes between the tenant and the form, checked: only what differs is sent.
fn changes(tenant: &Tenant, form: &TenantForm) -> Result<TenantPatch, FieldError> {
    let metadata = form.metadata()?;
    let current = Value::Object(tenant.metadata.clone());
    let metadata_patch = merge_patch::diff(&current, &metadata)
        .map_err(|err| field_error("invalid_metadata", "metadata", err.to_string()))?;
    let name = form.name.trim();
    let slug = form.slug.trim();
    let plan = form.plan.trim();
    let status = form.status.parse::<TenantStatus>().ok().filter(|s| *s != tenant.status);
    Ok(TenantPatch {
        name: (name != tenant.name).then(|| name.to_owned()),
        slug: (slug != tenant.slug.as_str()).then(|| slug.to_owned()),
        status,
        plan: (Some(plan) != tenant.plan.as_deref().or(Some("")))
            .then(|| Some(plan.to_owned()).filter(|p| !p.is_empty())),
        metadata: metadata_patch,
    })
}

async fn edit(
    State(state): State<AppState>,
    Path((project, tenant)): Path<(String, String)>,
    posted: CsrfForm<TenantForm>,
) -> Response {
    let (ctx, tenant) =
        match open_tenant(&state, posted.signed_in.clone(), &project, &tenant, Action::TenantUpdate).await {
            Ok(both) => both,
            Err(response) => return response,
        };
    let form = &posted.form;
    let invalid = async |errors: FormErrors| {
        render_tenant(&state, &ctx, StatusCode::UNPROCESSABLE_ENTITY, &tenant, html! {}, form, &errors).await
    };
    let patch = match changes(&tenant, form) {
        Ok(patch) => patch,
        Err(err) => return invalid(FormErrors::from_field(&err)).await,
    };
    if patch == TenantPatch::default() {
        return see_other(&ctx.path(&format!("/tenants/{}?notice=tenant_unchanged", tenant.id)));
    }
    let changes = match patch.validate() {
        Ok(changes) => changes,
        Err(err) => return invalid(FormErrors::from_field(&err)).await,
    };
    let written = state
        .store()
        .update_tenant(
            ctx.project.id,
            &TenantRef::Id(tenant.id),
            changes,
            form.version,
            state.rules(),
            &posted.audit(),
        )
        .await;
    match written {
        Ok(_) => see_other(&ctx.path(&format!("/tenants/{}?notice=tenant_updated", tenant.id))),
        Err(err) => match FormErrors::from_store(err) {
            Ok(errors) => invalid(errors).await,
            Err(err) => internal_error(&err),
        },
    }
}

#[derive(Debug, Deserialize)]
struct StatusForm {
    #[serde(default)]
    status: String,
    version: Option<i64>,
}

async fn set_status(
    State(state): State<AppState>,
    Path((project, tenant)): Path<(String, String)>,
    posted: CsrfForm<StatusForm>,
) -> Response {
    let (ctx, tenant) =
        match open_tenant(&state, posted.signed_in.clone(), &project, &tenant, Action::TenantUpdate).await {
            Ok(both) => both,
            Err(response) => return response,
        };
    let (status, done) = match posted.form.status.as_str() {
        "suspended" => (TenantStatus::Suspended, "tenant_suspended"),
        "active" => (TenantStatus::Active, "tenant_activated"),
        _ => return super::invalid_form(),
    };
    let patch = TenantPatch { status: Some(status), ..TenantPatch::default() };
    let changes = match patch.validate() {
        Ok(changes) => changes,
        Err(_) => return super::invalid_form(),
    };
    let written = state
        .store()
        .update_tenant(
            ctx.project.id,
            &TenantRef::Id(tenant.id),
            changes,
            posted.form.version,
            state.rules(),
            &posted.audit(),
        )
        .await;
    match written {
        Ok(_) => see_other(&ctx.path(&format!("/tenants/{}?notice={done}", tenant.id))),
        Err(err) => match FormErrors::from_store(err) {
            Ok(errors) => {
                let form = TenantForm::of(&tenant);
                render_tenant(&state, &ctx, StatusCode::CONFLICT, &tenant, html! {}, &form, &errors).await
            }
            Err(err) => internal_error(&err),
        },
    }
}

#[derive(Debug, Deserialize)]
struct DeleteForm {
    #[serde(default)]
    confirm: String,
}

async fn delete(
    State(state): State<AppState>,
    Path((project, tenant)): Path<(String, String)>,
    posted: CsrfForm<DeleteForm>,
) -> Response {
    let (ctx, tenant) =
        match open_tenant(&state, posted.signed_in.clone(), &project, &tenant, Action::TenantDelete).await {
            Ok(both) => both,
            Err(response) => return response,
        };
    if posted.form.confirm.trim() != tenant.slug.as_str() {
        let errors = FormErrors {
            field: Some((
                "confirm",
                format!("Type the slug `{}` exactly to delete this tenant.", tenant.slug),
            )),
            form: None,
        };
        let form = TenantForm::of(&tenant);
        return render_tenant(
            &state,
            &ctx,
            StatusCode::UNPROCESSABLE_ENTITY,
            &tenant,
            html! {},
            &form,
            &errors,
        )
        .await;
    }
    match state.store().delete_tenant(ctx.project.id, &TenantRef::Id(tenant.id), None, &posted.audit()).await
    {
        Ok(_) => see_other(&ctx.path("/tenants?notice=tenant_deleted")),
        Err(err) => internal_error(&err),
    }
}
