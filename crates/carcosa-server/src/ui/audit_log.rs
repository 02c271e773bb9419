//! A project's audit log in the dashboard: filters by actor, action, target and time, keyset
//! pages newest first, each entry's before/after state, and the same selection as CSV
//! (`/ui/p/{project}/audit.csv`). The filter rules are the API's own (`routes::audit`).

use std::collections::HashMap;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use carcosa_core::AuditCursor;

use carcosa_core::audit::{ActorKind, AuditAction, AuditEntry};
use chrono::NaiveDateTime;
use maud::{Markup, html};
use serde::{Deserialize, Serialize};

use super::project::{ProjectCtx, Section};
use super::{Lenient, internal_error, when};
use crate::AppState;
use crate::routes::audit::{AuditQuery, filter};
use crate::session::SignedIn;
use crate::store::AuditFilter;

/// Entries per page.
const PAGE: u32 = 50;
/// Entries one CSV export holds at most.
const MAX_CSV_ROWS: usize = 100_000;

pub fn router() -> Router<AppState> {
    Router::new().route("/ui/p/{project}/audit", get(list)).route("/ui/p/{project}/audit.csv", get(csv))
}

/// The filter form, as typed; times are `datetime-local` values in UTC, or RFC 3339.
#[derive(Debug, Default, Clone, Deserialize, Serialize)]
struct FilterForm {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    actor: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    action: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    target: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    since: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    until: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    cursor: String,
}

impl FilterForm {
    /// The checked filter, or what is wrong with it.
    fn filter(&self) -> Result<AuditFilter, String> {
        let text = |t: &str| Some(t.trim().to_owned()).filter(|t| !t.is_empty());
        let time = |t: &str| {
            text(t).map(|t| match NaiveDateTime::parse_from_str(&t, "%Y-%m-%dT%H:%M") {
                Ok(naive) => naive.and_utc().to_rfc3339(),
                Err(_) => t,
            })
        };
        let query = AuditQuery {
            actor: text(&self.actor),
            action: text(&self.action),
            target: text(&self.target),
            since: time(&self.since),
            until: time(&self.until),
            ..AuditQuery::default()
        };
        filter(query).map_err(|err| err.problem().detail)
    }

    fn query_string(&self) -> String {
        serde_urlencoded::to_string(self).unwrap_or_default()
    }
}

async fn list(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(project): Path<String>,
    Lenient(form): Lenient<FilterForm>,
) -> Response {
    let ctx = match ProjectCtx::open(&state, signed_in, &project).await {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    let before = AuditCursor::decode(form.cursor.trim()).ok();
    let (entries, next, error) = match form.filter() {
        Ok(filter) => match state.store().list_audit(ctx.project.id, &filter, before, PAGE).await {
            Ok(page) => (page.data, page.next_cursor, None),
            Err(err) => return internal_error(&err),
        },
        Err(message) => (Vec::new(), None, Some(message)),
    };
    // Operators are shown by name; the id stays in the title (and in the CSV).
    let names: HashMap<String, String> = match state.store().list_operators().await {
        Ok(operators) => operators.into_iter().map(|o| (o.id.to_string(), o.name)).collect(),
        Err(err) => return internal_error(&err),
    };
    let next = next.map(|cursor| {
        let form = FilterForm { cursor, ..form.clone() };
        format!("{}?{}", ctx.path("/audit"), form.query_string())
    });
    let export = format!(
        "{}?{}",
        ctx.path("/audit.csv"),
        FilterForm { cursor: String::new(), ..form.clone() }.query_string()
    );
    let body = html! {
        h1 { "Audit log" }
        (filter_form(&ctx, &form, error.as_deref()))
        p.actions { a href=(export) download { "Export these entries as CSV" } }
        div.card {
            table {
                caption.muted { "Newest first" @if before.is_some() { " (older page)" } }
                thead { tr {
                    th scope="col" { "When" } th scope="col" { "Actor" } th scope="col" { "Action" }
                    th scope="col" { "Target" } th.optional scope="col" { "From" }
                } }
                tbody {
                    @for entry in &entries { (entry_row(entry, &names)) }
                    @if entries.is_empty() && error.is_none() { tr { td colspan="5" { "No entry matches." } } }
                }
            }
            nav.pager aria-label="Pages" {
                @if before.is_some() {
                    a href={ (ctx.path("/audit")) "?" (FilterForm { cursor: String::new(), ..form.clone() }.query_string()) } { "Newest" }
                }
                @if let Some(next) = &next { a href=(next) rel="next" { "Older entries" } }
            }
        }
    };
    ctx.respond(Section::Audit, "Audit log", body)
}

fn filter_form(ctx: &ProjectCtx, form: &FilterForm, error: Option<&str>) -> Markup {
    html! {
        form.card method="get" action=(ctx.path("/audit")) {
            @if let Some(error) = error { p.error role="alert" { (error) } }
            div.row {
                div {
                    label for="actor" { "Actor" }
                    input id="actor" type="text" name="actor" value=(form.actor) placeholder="operator:op_… or key:…";
                }
                div {
                    label for="action" { "Action" }
                    select id="action" name="action" {
                        option value="" selected[form.action.is_empty()] { "any" }
                        @for action in AuditAction::ALL {
                            option value=(action) selected[form.action == action.as_str()] { (action) }
                        }
                    }
                }
                div {
                    label for="target" { "Target id" }
                    input id="target" type="text" name="target" value=(form.target);
                }
            }
            div.row {
                div {
                    label for="since" { "From (UTC)" }
                    input id="since" type="datetime-local" name="since" value=(form.since);
                }
                div {
                    label for="until" { "Until (UTC)" }
                    input id="until" type="datetime-local" name="until" value=(form.until);
                }
                div.shrink { button type="submit" { "Filter" } }
            }
        }
    }
}

fn entry_row(entry: &AuditEntry, names: &HashMap<String, String>) -> Markup {
    let state = |value: &Option<serde_json::Value>| {
        value.as_ref().map(|v| serde_json::to_string_pretty(v).unwrap_or_default())
    };
    html! {
        tr {
            td { (when(entry.occurred_at)) }
            td {
                @let actor = format!("{}:{}", entry.actor.kind.as_str(), entry.actor.id);
                @match names.get(&entry.actor.id).filter(|_| entry.actor.kind == ActorKind::Operator) {
                    Some(name) => { span title=(actor) { (name) } br; span.muted { "operator" } }
                    None => { code { (actor) } }
                }
            }
            td {
                details {
                    summary { code { (entry.action) } }
                    @if let Some(before) = state(&entry.before) { p.muted { "Before" } pre { (before) } }
                    @if let Some(after) = state(&entry.after) { p.muted { "After" } pre { (after) } }
                    p.muted { "Request " code { (entry.request_id) } }
                }
            }
            td { (entry.target.target_type.as_str()) " " code { (entry.target.id) } }
            td.optional {
                (entry.address.as_deref().unwrap_or("—"))
                @if let Some(agent) = &entry.user_agent { br; span.muted { (agent) } }
            }
        }
    }
}

/// One CSV field: quoted when it must be, and a leading `= + - @` (or tab, CR) defused so a
/// spreadsheet does not run it as a formula.
fn csv_field(text: &str) -> String {
    let text =
        if text.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{text}") } else { text.to_owned() };
    if text.contains([',', '"', '\n', '\r']) || text.starts_with(' ') {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

fn csv_line(fields: &[&str]) -> String {
    let mut line = fields.iter().map(|f| csv_field(f)).collect::<Vec<_>>().join(",");
    line.push_str("\r\n");
    line
}

async fn csv(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(project): Path<String>,
    Lenient(form): Lenient<FilterForm>,
) -> Response {
    let ctx = match ProjectCtx::open(&state, signed_in, &project).await {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    let filter = match form.filter() {
        Ok(filter) => filter,
        Err(message) => {
            return super::error_page(
                StatusCode::BAD_REQUEST,
                "invalid_filter",
                &message,
                Some(&ctx.signed_in),
            );
        }
    };
    let mut out = csv_line(&[
        "id",
        "occurred_at",
        "actor_kind",
        "actor_id",
        "action",
        "target_type",
        "target_id",
        "before",
        "after",
        "request_id",
        "address",
        "user_agent",
    ]);
    let mut before = None;
    let mut rows = 0;
    loop {
        let page = match state.store().list_audit(ctx.project.id, &filter, before, 1000).await {
            Ok(page) => page,
            Err(err) => return internal_error(&err),
        };
        for entry in &page.data {
            let json =
                |v: &Option<serde_json::Value>| v.as_ref().map(ToString::to_string).unwrap_or_default();
            out.push_str(&csv_line(&[
                &entry.id.to_string(),
                &entry.occurred_at.to_rfc3339(),
                entry.actor.kind.as_str(),
                &entry.actor.id,
                entry.action.as_str(),
                entry.target.target_type.as_str(),
                &entry.target.id,
                &json(&entry.before),
                &json(&entry.after),
                &entry.request_id,
                entry.address.as_deref().unwrap_or(""),
                entry.user_agent.as_deref().unwrap_or(""),
            ]));
        }
        rows += page.data.len();
        match page.next_cursor.as_deref().and_then(|c| AuditCursor::decode(c).ok()) {
            Some(cursor) if rows < MAX_CSV_ROWS => before = Some(cursor),
            _ => break,
        }
    }
    let mut response = out.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    let name = format!("attachment; filename=\"carcosa-audit-{}.csv\"", ctx.project.id);
    if let Ok(value) = HeaderValue::from_str(&name) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_and_formulas_defused() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("two\nlines"), "\"two\nlines\"");
        assert_eq!(csv_field("=SUM(A1)"), "'=SUM(A1)");
        assert_eq!(csv_field("-1+2"), "'-1+2");
        assert_eq!(csv_line(&["a", "b"]), "a,b\r\n");
    }
}
