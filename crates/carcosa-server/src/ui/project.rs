//! A project's frame in the dashboard: [`ProjectCtx`] (the project, the operator's role there,
//! and the check every change goes through), the layout with the section tabs, and the
//! overview page at `/ui/p/{project}`: tenants by status, events and webhook deliveries of the
//! last 24 hours, each synced app's lag, and two charts.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use carcosa_core::api::ProjectOut;
use carcosa_core::{Action, ProjectId, Role, TenantStatus};
use maud::{Markup, html};

use super::{charts, error_page, forbidden, internal_error, page, respond, when};
use crate::AppState;
use crate::session::SignedIn;
use crate::store::now;

/// Days of history the tenants chart draws.
const CHART_DAYS: u32 = 30;

/// The sections of a project, as tabs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// The overview.
    Overview,
    /// Tenants.
    Tenants,
    /// API keys.
    Keys,
    /// Webhook endpoints and deliveries.
    Webhooks,
    /// The audit log.
    Audit,
    /// Operators and roles.
    Operators,
}

impl Section {
    const ALL: [(Section, &'static str, &'static str); 6] = [
        (Section::Overview, "", "Overview"),
        (Section::Tenants, "/tenants", "Tenants"),
        (Section::Keys, "/keys", "API keys"),
        (Section::Webhooks, "/webhooks", "Webhooks"),
        (Section::Audit, "/audit", "Audit log"),
        (Section::Operators, "/operators", "Operators"),
    ];
}

/// A project opened by a signed-in operator who has a role in it.
#[derive(Debug, Clone)]
pub struct ProjectCtx {
    /// Who.
    pub signed_in: SignedIn,
    /// The project.
    pub project: ProjectOut,
    /// Their role in it.
    pub role: Role,
}

impl ProjectCtx {
    /// Opens the project `id` for `signed_in`: 404 when there is no such project or the operator
    /// has no role in it (the same answer, so a project's existence does not leak).
    pub async fn open(state: &AppState, signed_in: SignedIn, id: &str) -> Result<Self, Response> {
        let not_found = |signed_in: &SignedIn| {
            error_page(StatusCode::NOT_FOUND, "not_found", "There is no such project.", Some(signed_in))
        };
        let Ok(project_id) = ProjectId::parse(id) else {
            return Err(not_found(&signed_in));
        };
        let Some(role) = signed_in.operator.role_in(project_id) else {
            return Err(not_found(&signed_in));
        };
        let projects = state.store().list_projects().await.map_err(|e| internal_error(&e))?;
        let Some(project) = projects.into_iter().find(|p| p.id == project_id) else {
            return Err(not_found(&signed_in));
        };
        Ok(Self { signed_in, project, role })
    }

    /// Whether the operator's role allows `action` here.
    #[must_use]
    pub fn may(&self, action: Action) -> bool {
        self.signed_in.may(self.project.id, action).is_some()
    }

    /// `Ok` when the role allows `action`, else the 403 `forbidden` page.
    #[expect(
        clippy::result_large_err,
        reason = "the error is the page to answer with, made once per request"
    )]
    pub fn require(&self, action: Action) -> Result<(), Response> {
        if self.may(action) { Ok(()) } else { Err(forbidden(&self.signed_in)) }
    }

    /// The path of a page of this project: `/ui/p/{id}{rest}`.
    #[must_use]
    pub fn path(&self, rest: &str) -> String {
        format!("/ui/p/{}{rest}", self.project.id)
    }

    /// A whole page of this project: the section tabs, then `body`.
    #[must_use]
    pub fn page(&self, section: Section, title: &str, body: Markup) -> Markup {
        let nav = html! {
            p.crumbs { a href="/ui/" { "Projects" } " / " strong { (self.project.name) } " · you are " (self.role) }
            nav.sections aria-label="Project sections" {
                @for (s, rest, label) in Section::ALL {
                    @if s != Section::Operators || self.may(Action::OperatorManage) {
                        a href=(self.path(rest)) aria-current=[(s == section).then_some("page")] { (label) }
                    }
                }
            }
            (body)
        };
        page(&format!("{title} · {}", self.project.name), Some(&self.signed_in), nav)
    }

    /// [`Self::page`] as a 200 response.
    #[must_use]
    pub fn respond(&self, section: Section, title: &str, body: Markup) -> Response {
        respond(StatusCode::OK, self.page(section, title, body))
    }
}

/// `GET /ui/p/{project}`: the overview.
pub async fn overview(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(project): Path<String>,
) -> Response {
    let ctx = match ProjectCtx::open(&state, signed_in, &project).await {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    let at = now();
    let store = state.store();
    let (overview, sync) = match tokio::try_join!(
        store.project_overview(ctx.project.id, at, CHART_DAYS),
        store.list_sync_status(ctx.project.id)
    ) {
        Ok(both) => both,
        Err(err) => return internal_error(&err),
    };
    let count = |status| overview.tenants.get(&status).copied().unwrap_or(0);
    let deliveries = overview.deliveries_24h();
    let tenants_series = overview.live_tenants_per_day(at.date_naive(), CHART_DAYS);
    let delivery_series = overview.deliveries_per_hour(at);
    let body = html! {
        h1 { (ctx.project.name) }
        div.grid {
            div.card {
                p.muted { "Live tenants" }
                p.stat { (overview.live_tenants()) }
                p { (count(TenantStatus::Active)) " active · " (count(TenantStatus::Suspended)) " suspended · "
                    (count(TenantStatus::Deleted)) " deleted" }
            }
            div.card {
                p.muted { "Events, last 24 h" }
                p.stat { (overview.events_24h) }
                p { a href=(ctx.path("/tenants")) { "Tenants" } }
            }
            div.card {
                p.muted { "Webhook success, last 24 h" }
                p.stat {
                    @match overview.delivery_success_rate() {
                        Some(rate) => { (format!("{:.1} %", rate * 100.0)) }
                        None => { "—" }
                    }
                }
                p { (deliveries.succeeded) " delivered · " (deliveries.failed) " failed · " (deliveries.pending) " pending" }
            }
        }
        div.grid {
            div.card { (charts::tenants_over_time(&tenants_series)) }
            div.card { (charts::deliveries_by_outcome(&delivery_series)) }
        }
        section.card {
            h2 { "Synced apps" }
            @if sync.data.is_empty() {
                p.muted { "No app has reported its sync yet. Apps using the carcosa library or "
                    code { "carcosa sync" } " report here after each run." }
            } @else {
                table {
                    caption.muted { "Feed head: " (sync.head) }
                    thead { tr { th scope="col" { "Instance" } th scope="col" { "Lag (events)" }
                        th.optional scope="col" { "Last success" } th scope="col" { "Last error" } } }
                    tbody {
                        @for app in &sync.data {
                            tr {
                                td { (app.instance) }
                                td { (app.lag_events) }
                                td.optional { @if let Some(t) = app.last_success_at { (when(t)) } @else { "never" } }
                                td { @if let Some(e) = &app.last_error { span.error { (e) } } @else { "—" } }
                            }
                        }
                    }
                }
            }
        }
        @if ctx.may(Action::ProjectDelete) {
            (delete_form(&ctx, None))
        }
    };
    ctx.respond(Section::Overview, "Overview", body)
}

fn delete_form(ctx: &ProjectCtx, error: Option<&str>) -> Markup {
    html! {
        section.card {
            h2 { "Delete project" }
            p { "Deletes every tenant, event, API key, webhook endpoint and delivery of this project. "
                "Synced apps stop receiving changes; their own tables are left as they are. This cannot be undone." }
            form method="post" action=(ctx.path("/delete")) {
                (super::csrf_field(&ctx.signed_in.csrf))
                label for="confirm-project" { "Type the project's name, " strong { (ctx.project.name) } ", to confirm" }
                input id="confirm-project" type="text" name="confirm" autocomplete="off" required
                    aria-invalid=[error.map(|_| "true")];
                @if let Some(error) = error { p.field-error role="alert" { (error) } }
                div.actions { button.danger type="submit" { "Delete project" } }
            }
        }
    }
}

/// The project deletion form: the project's name, typed to confirm.
#[derive(Debug, serde::Deserialize)]
pub struct DeleteForm {
    #[serde(default)]
    confirm: String,
}

/// `POST /ui/p/{project}/delete`: deletes the project (owners), after its name is typed.
pub async fn delete(
    State(state): State<AppState>,
    Path(project): Path<String>,
    posted: super::CsrfForm<DeleteForm>,
) -> Response {
    let ctx = match ProjectCtx::open(&state, posted.signed_in.clone(), &project).await {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    if let Err(denied) = ctx.require(Action::ProjectDelete) {
        return denied;
    }
    if posted.form.confirm.trim() != ctx.project.name {
        let body = html! {
            h1 { (ctx.project.name) }
            (delete_form(&ctx, Some("Type the project's name exactly to delete it.")))
        };
        return respond(
            StatusCode::UNPROCESSABLE_ENTITY,
            ctx.page(Section::Overview, "Delete project", body),
        );
    }
    match state.store().delete_project(ctx.project.id, &posted.audit()).await {
        Ok(()) => {
            tracing::info!(project = %ctx.project.id, by = %ctx.signed_in.operator.id, "project deleted from the dashboard");
            super::see_other("/ui/?notice=project_deleted")
        }
        Err(err) => internal_error(&err),
    }
}
