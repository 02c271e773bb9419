//! `GET /ui/`: who is signed in, and the projects they can see with their role in each. Later
//! pages (project overview, tenants, keys, webhooks, audit log) link from here.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use maud::html;

use super::{internal_error, page, respond};
use crate::AppState;
use crate::session::SignedIn;

/// The landing page.
pub async fn show(State(state): State<AppState>, signed_in: SignedIn) -> Response {
    let projects = match state.store().list_projects().await {
        Ok(projects) => projects,
        Err(err) => return internal_error(&err),
    };
    let visible: Vec<_> =
        projects.into_iter().filter_map(|p| signed_in.operator.role_in(p.id).map(|role| (p, role))).collect();
    let operator = &signed_in.operator;
    let body = html! {
        h1 { "Projects" }
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
                                td { (project.name) }
                                td.optional { code { (project.id) } }
                                td { (role) }
                            }
                        }
                    }
                }
            }
        }
    };
    respond(StatusCode::OK, page("Projects", Some(&signed_in), body))
}
