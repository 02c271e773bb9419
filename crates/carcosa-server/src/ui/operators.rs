//! A project's operators and their roles (owners only): who can see the project and with which
//! role, giving an existing operator a role, changing or taking it away, and creating a new
//! operator account with a role here. A change that would leave the project without an owner is
//! refused. Every change is audited in the project (`operator.*`).

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use carcosa_core::operator::Password;
use carcosa_core::{Action, Email, OperatorId, Role};
use maud::{Markup, html};
use serde::Deserialize;

use super::project::{ProjectCtx, Section};
use super::{CsrfForm, csrf_field, internal_error, notice, respond, see_other};
use crate::AppState;
use crate::operators::{AccountError, OperatorIn, create_operator};
use crate::session::SignedIn;
use crate::store::{Operator, ProjectRole, StoreError};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/ui/p/{project}/operators", get(list).post(create))
        .route("/ui/p/{project}/operators/role", post(set_role))
}

async fn open(state: &AppState, signed_in: SignedIn, project: &str) -> Result<ProjectCtx, Response> {
    let ctx = ProjectCtx::open(state, signed_in, project).await?;
    ctx.require(Action::OperatorManage)?;
    Ok(ctx)
}

#[derive(Debug, Default, Deserialize)]
struct NoticeQuery {
    notice: Option<String>,
}

async fn list(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(project): Path<String>,
    super::Lenient(query): super::Lenient<NoticeQuery>,
) -> Response {
    let ctx = match open(&state, signed_in, &project).await {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    let top = notice(query.notice.as_deref());
    render(&state, &ctx, StatusCode::OK, top, &NewOperatorForm::default()).await
}

fn role_select(id: &str, current: Option<Role>, allow_none: bool) -> Markup {
    html! {
        select id=(id) name="role" {
            @if allow_none { option value="" selected[current.is_none()] { "no role" } }
            @for role in Role::ALL { option value=(role) selected[current == Some(role)] { (role) } }
        }
    }
}

async fn render(
    state: &AppState,
    ctx: &ProjectCtx,
    status: StatusCode,
    top: Markup,
    form: &NewOperatorForm,
) -> Response {
    let operators = match state.store().list_operators().await {
        Ok(operators) => operators,
        Err(err) => return internal_error(&err),
    };
    let project = ctx.project.id;
    let granted = |op: &Operator| op.roles.iter().find(|r| r.project == project).map(|r| r.role);
    let body = html! {
        h1 { "Operators" }
        (top)
        div.card {
            table {
                caption.muted { "Everyone who can sign in to this dashboard, and their role in " (ctx.project.name) }
                thead { tr { th scope="col" { "Operator" } th scope="col" { "Role here" } th.optional scope="col" { "Global role" } } }
                tbody {
                    @for op in &operators {
                        @let select_id = format!("role-{}", op.id);
                        tr {
                            td { (op.name) br; span.muted { (op.email) } }
                            td {
                                form.row method="post" action=(ctx.path("/operators/role")) {
                                    (csrf_field(&ctx.signed_in.csrf))
                                    input type="hidden" name="operator" value=(op.id);
                                    label.skip for=(select_id) { "Role of " (op.email) }
                                    (role_select(&select_id, granted(op), true))
                                    button.small.shrink type="submit" { "Save" }
                                }
                            }
                            td.optional { @if let Some(role) = op.global_role { (role) " (every project)" } @else { "—" } }
                        }
                    }
                }
            }
        }
        section.card {
            h2 { "New operator" }
            p.muted { "Creates an account that can sign in, with a role in this project." }
            form method="post" action=(ctx.path("/operators")) {
                (csrf_field(&ctx.signed_in.csrf))
                @if let Some(error) = &form.error { p.error role="alert" { (error) } }
                label for="new-email" { "Email" }
                input id="new-email" type="email" name="email" value=(form.email) required autocomplete="off";
                label for="new-name" { "Name" }
                input id="new-name" type="text" name="name" value=(form.name) maxlength="200";
                label for="new-password" { "Initial password" }
                input id="new-password" type="password" name="password" required autocomplete="new-password" aria-describedby="new-password-hint";
                p.hint id="new-password-hint" { "At least 12 characters. Share it with them safely; they can change it with "
                    code { "carcosa user set-password" } "." }
                label for="new-role" { "Role here" }
                (role_select("new-role", form.role.parse().ok().or(Some(Role::Viewer)), false))
                div.actions { button type="submit" { "Create operator" } }
            }
        }
    };
    respond(status, ctx.page(Section::Operators, "Operators", body))
}

#[derive(Debug, Deserialize)]
struct RoleForm {
    #[serde(default)]
    operator: String,
    #[serde(default)]
    role: String,
}

/// Whether the project keeps an owner if `operator`'s role here becomes `role`.
fn keeps_an_owner(
    operators: &[Operator],
    project: carcosa_core::ProjectId,
    operator: OperatorId,
    role: Option<Role>,
) -> bool {
    operators.iter().any(|op| {
        let here = if op.id == operator {
            role
        } else {
            op.roles.iter().find(|r| r.project == project).map(|r| r.role)
        };
        here.max(op.global_role) == Some(Role::Owner)
    })
}

async fn set_role(
    State(state): State<AppState>,
    Path(project): Path<String>,
    posted: CsrfForm<RoleForm>,
) -> Response {
    let ctx = match open(&state, posted.signed_in.clone(), &project).await {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    let Ok(operator) = OperatorId::parse(posted.form.operator.trim()) else { return super::invalid_form() };
    let role = match posted.form.role.trim() {
        "" => None,
        text => match text.parse::<Role>() {
            Ok(role) => Some(role),
            Err(_) => return super::invalid_form(),
        },
    };
    let operators = match state.store().list_operators().await {
        Ok(operators) => operators,
        Err(err) => return internal_error(&err),
    };
    if !keeps_an_owner(&operators, ctx.project.id, operator, role) {
        let top = html! { p.error role="alert" { "The project would have no owner left. Make someone else an owner first." } };
        return render(&state, &ctx, StatusCode::CONFLICT, top, &NewOperatorForm::default()).await;
    }
    match state.store().set_operator_role(ctx.project.id, operator, role, &posted.audit()).await {
        Ok(changed) => {
            let done = match (changed, role) {
                (false, _) => "role_unchanged",
                (true, Some(_)) => "role_set",
                (true, None) => "role_removed",
            };
            if changed {
                tracing::info!(operator = %operator, role = ?role, by = %ctx.signed_in.operator.id, "operator role changed");
            }
            see_other(&ctx.path(&format!("/operators?notice={done}")))
        }
        Err(StoreError::NotFound) => super::invalid_form(),
        Err(err) => internal_error(&err),
    }
}

#[derive(Debug, Default, Deserialize)]
struct NewOperatorForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    role: String,
    #[serde(skip)]
    error: Option<String>,
}

async fn create(
    State(state): State<AppState>,
    Path(project): Path<String>,
    posted: CsrfForm<NewOperatorForm>,
) -> Response {
    let ctx = match open(&state, posted.signed_in.clone(), &project).await {
        Ok(ctx) => ctx,
        Err(response) => return response,
    };
    let audit = posted.audit();
    let form = posted.form;
    let refuse = |message: &str, form: NewOperatorForm| {
        // The password is never sent back.
        NewOperatorForm { error: Some(message.to_owned()), password: String::new(), ..form }
    };
    let Ok(email) = Email::parse(&form.email) else {
        return refused(&state, &ctx, refuse("That is not an email address.", form)).await;
    };
    let Ok(password) = Password::parse(form.password.clone()) else {
        return refused(&state, &ctx, refuse("The password must have 12 to 1024 characters.", form)).await;
    };
    let Ok(role) = form.role.parse::<Role>() else {
        return refused(&state, &ctx, refuse("Choose a role.", form)).await;
    };
    let new = OperatorIn {
        email,
        name: Some(form.name.clone()),
        password,
        global_role: None,
        project_role: Some(ProjectRole { project: ctx.project.id, role }),
    };
    match create_operator(state.store(), new, &audit).await {
        Ok(operator) => {
            tracing::info!(operator = %operator.id, by = %ctx.signed_in.operator.id, "operator created from the dashboard");
            see_other(&ctx.path("/operators?notice=operator_created"))
        }
        Err(AccountError::Store(StoreError::EmailTaken)) => {
            refused(
                &state,
                &ctx,
                refuse("An operator with this email exists; give them a role in the table above.", form),
            )
            .await
        }
        Err(err) => internal_error(&err),
    }
}

/// The new-operator form again, with what was wrong.
async fn refused(state: &AppState, ctx: &ProjectCtx, form: NewOperatorForm) -> Response {
    render(state, ctx, StatusCode::UNPROCESSABLE_ENTITY, html! {}, &form).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use carcosa_core::ProjectId;

    fn op(global: Option<Role>, here: Option<(ProjectId, Role)>) -> Operator {
        Operator {
            id: OperatorId::generate(),
            email: Email::parse("a@example.com").unwrap(),
            name: "a".into(),
            global_role: global,
            roles: here.map(|(project, role)| ProjectRole { project, role }).into_iter().collect(),
            created_at: chrono::Utc::now(),
            updated_at: chrono::Utc::now(),
        }
    }

    #[test]
    fn the_last_owner_cannot_be_demoted() {
        let project = ProjectId::generate();
        let owner = op(None, Some((project, Role::Owner)));
        let admin = op(None, Some((project, Role::Admin)));
        let operators = vec![owner.clone(), admin.clone()];
        assert!(!keeps_an_owner(&operators, project, owner.id, Some(Role::Admin)));
        assert!(!keeps_an_owner(&operators, project, owner.id, None));
        assert!(keeps_an_owner(&operators, project, admin.id, Some(Role::Owner)));
        assert!(keeps_an_owner(&operators, project, admin.id, None));
        let global = op(Some(Role::Owner), None);
        let operators = vec![owner.clone(), global];
        assert!(keeps_an_owner(&operators, project, owner.id, None));
    }
}
