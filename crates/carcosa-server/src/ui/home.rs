//! `GET /ui/`: the projects the operator can see, with their role in each, and (for global
//! owners) `POST /ui/projects` to create one — its first API key is shown once.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use carcosa_core::Role;
use carcosa_core::api::ProjectOut;
use maud::{Markup, html};
use serde::Deserialize;

use super::{CsrfForm, csrf_field, forbidden, internal_error, page, respond};
use crate::AppState;
use crate::session::SignedIn;

/// The longest project name.
const MAX_PROJECT_NAME: usize = 200;

/// Whether the operator may create projects: a global owner.
fn may_create_projects(signed_in: &SignedIn) -> bool {
    signed_in.operator.global_role == Some(Role::Owner)
}

/// The landing page.
pub async fn show(
    State(state): State<AppState>,
    signed_in: SignedIn,
    super::Lenient(query): super::Lenient<NoticeQuery>,
) -> Response {
    let top = super::notice(query.notice.as_deref());
    render(&state, &signed_in, StatusCode::OK, None, "", top).await
}

#[derive(Debug, Default, Deserialize)]
pub struct NoticeQuery {
    notice: Option<String>,
}

async fn render(
    state: &AppState,
    signed_in: &SignedIn,
    status: StatusCode,
    error: Option<&str>,
    name: &str,
    top: Markup,
) -> Response {
    let projects = match state.store().list_projects().await {
        Ok(projects) => projects,
        Err(err) => return internal_error(&err),
    };
    let visible: Vec<(ProjectOut, Role)> =
        projects.into_iter().filter_map(|p| signed_in.operator.role_in(p.id).map(|role| (p, role))).collect();
    let operator = &signed_in.operator;
    let body = html! {
        h1 { "Projects" }
        (top)
        @if let Some(role) = operator.global_role {
            p.muted { "You are " (role) " of every project." }
        }
        @if visible.is_empty() {
            p.card { "You have no role in any project yet. An owner can give you one." }
        } @else {
            div.card {
                table {
                    caption.muted { (visible.len()) " project" @if visible.len() != 1 { "s" } }
                    thead { tr { th scope="col" { "Project" } th.optional scope="col" { "Id" } th scope="col" { "Your role" } } }
                    tbody {
                        @for (project, role) in &visible {
                            tr {
                                td { a href={ "/ui/p/" (project.id) } { (project.name) } }
                                td.optional { code { (project.id) } }
                                td { (role) }
                            }
                        }
                    }
                }
            }
        }
        @if may_create_projects(signed_in) {
            (create_form(&signed_in.csrf, error, name))
        }
    };
    respond(status, page("Projects", Some(signed_in), body))
}

fn create_form(csrf: &str, error: Option<&str>, name: &str) -> Markup {
    html! {
        section.card {
            h2 { "New project" }
            form method="post" action="/ui/projects" {
                (csrf_field(csrf))
                label for="project-name" { "Name" }
                input id="project-name" type="text" name="name" value=(name) required maxlength=(MAX_PROJECT_NAME)
                    aria-invalid=[error.map(|_| "true")] aria-describedby=[error.map(|_| "project-name-error")];
                @if let Some(error) = error { p.field-error id="project-name-error" { (error) } }
                div.actions { button type="submit" { "Create project" } }
            }
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct NewProject {
    #[serde(default)]
    name: String,
}

/// `POST /ui/projects`: creates a project (global owners only) and shows its first key once.
pub async fn create_project(State(state): State<AppState>, posted: CsrfForm<NewProject>) -> Response {
    if !may_create_projects(&posted.signed_in) {
        return forbidden(&posted.signed_in);
    }
    let name = posted.form.name.trim();
    if name.is_empty() || name.chars().count() > MAX_PROJECT_NAME || name.contains('\0') {
        let message = format!("Give the project a name of 1 to {MAX_PROJECT_NAME} characters.");
        return render(
            &state,
            &posted.signed_in,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(&message),
            name,
            html! {},
        )
        .await;
    }
    let (project, key_out, key) = match state.store().create_project(name, &posted.audit()).await {
        Ok(created) => created,
        Err(err) => return internal_error(&err),
    };
    tracing::info!(project = %project.id, "project created from the dashboard");
    let body = html! {
        h1 { "Project " (project.name) " created" }
        div.card.stack {
            p { "Its first API key has every scope. " strong { "Copy it now: it is not shown again." } }
            (super::keys::secret_box("new-key", &key.expose()))
            p.muted { "Key id " code { (key_out.id) } }
            p { a href={ "/ui/p/" (project.id) } { "Open the project" } }
        }
    };
    respond(StatusCode::CREATED, page("Project created", Some(&posted.signed_in), body))
}
