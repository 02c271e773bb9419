//! A project's API keys: the list (scopes, last use, revocation), creating one with chosen
//! scopes (its secret shown once, with a copy button), and revoking one.

use std::collections::HashMap;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use carcosa_core::api::ApiKeyOut;
use carcosa_core::{Action, Scope};
use maud::{Markup, html};

use super::login::Empty;
use super::project::{ProjectCtx, Section};
use super::{CsrfForm, badge, csrf_field, error_page, internal_error, notice, respond, see_other, when};
use crate::AppState;
use crate::session::SignedIn;

/// The longest key label.
const MAX_LABEL: usize = 200;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/ui/p/{project}/keys", get(list).post(create))
        .route("/ui/p/{project}/keys/{key}/revoke", post(revoke))
}

/// A secret shown once: read-only, selectable, with a copy button.
#[must_use]
pub fn secret_box(id: &str, secret: &str) -> Markup {
    html! {
        div.row {
            input.secret id=(id) type="text" readonly value=(secret) aria-label="Secret";
            button.shrink type="button" data-copy=(id) { "Copy" }
        }
    }
}

#[derive(Debug, Default, serde::Deserialize)]
struct ListQuery {
    notice: Option<String>,
}

async fn list(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(project): Path<String>,
    super::Lenient(query): super::Lenient<ListQuery>,
) -> Response {
    let ctx = match ProjectCtx::open(&state, signed_in, &project).await {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    let code = query.notice;
    render(&state, &ctx, StatusCode::OK, html! { (notice(code.as_deref())) }, None).await
}

async fn render(
    state: &AppState,
    ctx: &ProjectCtx,
    status: StatusCode,
    top: Markup,
    error: Option<&str>,
) -> Response {
    let keys = match state.store().list_keys(ctx.project.id).await {
        Ok(keys) => keys,
        Err(err) => return internal_error(&err),
    };
    let body = html! {
        h1 { "API keys" }
        (top)
        div.card {
            table {
                caption.muted { (keys.len()) " key" @if keys.len() != 1 { "s" } }
                thead { tr {
                    th scope="col" { "Key" } th scope="col" { "Scopes" } th.optional scope="col" { "Created" }
                    th scope="col" { "Last used" } th scope="col" { "State" } th scope="col" { span.skip { "Actions" } }
                } }
                tbody {
                    @for key in &keys { (key_row(ctx, key)) }
                }
            }
        }
        @if ctx.may(Action::KeyCreate) {
            section.card {
                h2 { "New key" }
                form method="post" action=(ctx.path("/keys")) {
                    (csrf_field(&ctx.signed_in.csrf))
                    label for="key-label" { "Label" }
                    input id="key-label" type="text" name="label" maxlength=(MAX_LABEL) placeholder="billing service";
                    fieldset aria-invalid=[error.map(|_| "true")] {
                        legend { "Scopes" }
                        @for scope in Scope::ALL {
                            @let id = format!("scope-{}", scope.as_str().replace(':', "-"));
                            input id=(id) type="checkbox" name=(scope.as_str()) value="on";
                            label for=(id) { code { (scope) } }
                        }
                    }
                    @if let Some(error) = error { p.field-error role="alert" { (error) } }
                    div.actions { button type="submit" { "Create key" } }
                }
            }
        }
    };
    respond(status, ctx.page(Section::Keys, "API keys", body))
}

fn key_row(ctx: &ProjectCtx, key: &ApiKeyOut) -> Markup {
    html! {
        tr {
            td { code { "ck_" (key.id) "_…" } @if let Some(label) = &key.label { br; (label) } }
            td.scopes { @for scope in &key.scopes { code { (scope) } " " } }
            td.optional { (when(key.created_at)) }
            td { @if let Some(t) = key.last_used_at { (when(t)) } @else { "never" } }
            td { @if key.revoked_at.is_some() { (badge("revoked")) } @else { (badge("active")) } }
            td {
                @if key.revoked_at.is_none() && ctx.may(Action::KeyRevoke) {
                    form method="post" action=(ctx.path(&format!("/keys/{}/revoke", key.id))) {
                        (csrf_field(&ctx.signed_in.csrf))
                        button.small.danger type="submit" aria-label={ "Revoke key " (key.id) } { "Revoke" }
                    }
                }
            }
        }
    }
}

async fn create(
    State(state): State<AppState>,
    Path(project): Path<String>,
    posted: CsrfForm<HashMap<String, String>>,
) -> Response {
    let ctx = match ProjectCtx::open(&state, posted.signed_in.clone(), &project).await {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    if let Err(denied) = ctx.require(Action::KeyCreate) {
        return denied;
    }
    let scopes: Vec<Scope> =
        Scope::ALL.into_iter().filter(|s| posted.form.contains_key(s.as_str())).collect();
    let label = posted.form.get("label").map(|l| l.trim()).filter(|l| !l.is_empty());
    let problem = if scopes.is_empty() {
        Some("Choose at least one scope.")
    } else if label.is_some_and(|l| l.chars().count() > MAX_LABEL || l.contains('\0')) {
        Some("The label is too long (at most 200 characters).")
    } else {
        None
    };
    if let Some(problem) = problem {
        return render(&state, &ctx, StatusCode::UNPROCESSABLE_ENTITY, html! {}, Some(problem)).await;
    }
    let (out, key) = match state.store().create_key(ctx.project.id, &scopes, label, &posted.audit()).await {
        Ok(created) => created,
        Err(err) => return internal_error(&err),
    };
    let top = html! {
        section.card.stack {
            h2 { "Key created" }
            p { "This is the only time the key is shown. " strong { "Copy it now." } }
            (secret_box("new-key", &key.expose()))
            p.muted { "Key id " code { (out.id) } " · scopes " @for s in &out.scopes { code { (s) } " " } }
        }
    };
    render(&state, &ctx, StatusCode::CREATED, top, None).await
}

async fn revoke(
    State(state): State<AppState>,
    Path((project, key)): Path<(String, String)>,
    posted: CsrfForm<Empty>,
) -> Response {
    let ctx = match ProjectCtx::open(&state, posted.signed_in.clone(), &project).await {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    if let Err(denied) = ctx.require(Action::KeyRevoke) {
        return denied;
    }
    let store = state.store();
    // The key must belong to this project.
    match store.find_key(&key).await {
        Ok(Some(found)) if found.key.project_id == ctx.project.id => {}
        Ok(_) => {
            return error_page(
                StatusCode::NOT_FOUND,
                "not_found",
                "There is no such key.",
                Some(&ctx.signed_in),
            );
        }
        Err(err) => return internal_error(&err),
    }
    match store.revoke_key(&key, &posted.audit()).await {
        Ok(_) => see_other(&ctx.path("/keys?notice=key_revoked")),
        Err(err) => internal_error(&err),
    }
}
