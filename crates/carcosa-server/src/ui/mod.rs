//! The dashboard: server-rendered HTML under `/ui`, written with `maud` (compile-time templates
//! that escape every interpolated value), with its stylesheet and its one small script (the copy
//! button) embedded in the binary. No CDN; every page works without JavaScript.
//!
//! * [`login`]: `GET/POST /ui/login`, `POST /ui/logout`;
//! * [`home`]: `GET /ui/`, the projects the operator can see; `POST /ui/projects` creates one;
//! * [`project`]: `/ui/p/{project}`, a project's overview with its charts ([`charts`]);
//! * [`tenants`], [`keys`], [`webhooks`], [`audit_log`], [`operators`]: a project's sections.
//!
//! Every page but the login page takes [`SignedIn`] (signed-out requests are redirected to
//! `/ui/login`); a project's pages open it through [`project::ProjectCtx`], which answers 404 to
//! operators without a role there. Every form post goes through [`CsrfForm`], which checks the
//! session's CSRF token (403 `csrf_failed` otherwise). Mutating handlers ask
//! [`project::ProjectCtx::require`] for the [`carcosa_core::Action`] before acting (403
//! `forbidden` otherwise), and pass the operator as the audit entry's actor.

mod audit_log;
pub mod charts;
mod home;
mod keys;
mod login;
mod operators;
pub mod project;
mod tenants;
mod webhooks;

use std::sync::LazyLock;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{any, get, post};
use base64::Engine;
use carcosa_core::audit::Actor;
use chrono::{DateTime, Utc};
use maud::{DOCTYPE, Markup, PreEscaped, html};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::audit::{AuditContext, RequestMeta};
use crate::session::{SignedIn, tokens_match};

/// The dashboard's routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/ui", get(|| async { Redirect::permanent("/ui/") }))
        .route("/ui/", get(home::show))
        .route("/ui/projects", post(home::create_project))
        .route("/ui/login", get(login::form).post(login::submit))
        .route("/ui/logout", post(login::logout))
        .route("/ui/copy.js", get(copy_script))
        .route("/ui/p/{project}", get(project::overview))
        .route("/ui/p/{project}/delete", post(project::delete))
        .merge(tenants::router())
        .merge(keys::router())
        .merge(webhooks::router())
        .merge(audit_log::router())
        .merge(operators::router())
        .route("/ui/{*rest}", any(not_found))
}

/// The stylesheet, embedded: small, responsive, readable on a phone, visible focus.
const CSS: &str = r#"
:root { color-scheme: light dark; --fg: #1d1d1f; --bg: #fafafa; --muted: #5f6368; --line: #d0d4d9; --accent: #3b4cca; --bad: #b3261e; --card: #fff; }
@media (prefers-color-scheme: dark) { :root { --fg: #ececec; --bg: #16171a; --muted: #a0a4aa; --line: #3a3d42; --accent: #8ea2ff; --bad: #ff8a80; --card: #1f2125; } }
* { box-sizing: border-box; }
body { margin: 0; font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: var(--bg); }
a { color: var(--accent); }
:focus-visible { outline: 3px solid var(--accent); outline-offset: 2px; }
.skip { position: absolute; left: -10000px; }
.skip:focus { left: 1rem; top: 1rem; background: var(--card); padding: .5rem; z-index: 1; }
header.top { display: flex; flex-wrap: wrap; gap: .75rem; align-items: center; justify-content: space-between; padding: .75rem 1rem; border-bottom: 1px solid var(--line); background: var(--card); }
header.top .brand { font-weight: 700; text-decoration: none; color: var(--fg); }
header.top .who { color: var(--muted); margin-left: auto; }
header.top form { margin: 0; }
main { max-width: 60rem; margin: 0 auto; padding: 1rem; }
h1 { font-size: 1.5rem; margin: .5rem 0 1rem; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 1rem; }
.narrow { max-width: 24rem; margin: 2rem auto; }
label { display: block; font-weight: 600; margin: .75rem 0 .25rem; }
input[type=email], input[type=password], input[type=text] { width: 100%; padding: .6rem; font: inherit; border: 1px solid var(--line); border-radius: 6px; background: var(--bg); color: var(--fg); }
button { font: inherit; padding: .55rem 1rem; border-radius: 6px; border: 1px solid var(--accent); background: var(--accent); color: #fff; cursor: pointer; }
button.link { background: none; color: var(--accent); border-color: var(--line); }
.narrow button { width: 100%; margin-top: 1rem; }
.error { color: var(--bad); border: 1px solid var(--bad); border-radius: 6px; padding: .5rem .75rem; }
.muted { color: var(--muted); }
table { width: 100%; border-collapse: collapse; }
caption { text-align: left; padding: 0 .5rem .5rem; }
th, td { text-align: left; padding: .5rem; border-bottom: 1px solid var(--line); }
code { font-size: .9em; word-break: break-all; }
.scopes code { white-space: nowrap; word-break: normal; }
nav.sections { display: flex; flex-wrap: wrap; gap: .25rem; margin: 0 0 1rem; border-bottom: 1px solid var(--line); }
nav.sections a { padding: .5rem .75rem; text-decoration: none; border-radius: 6px 6px 0 0; }
nav.sections a[aria-current=page] { background: var(--card); border: 1px solid var(--line); border-bottom-color: var(--card); margin-bottom: -1px; color: var(--fg); font-weight: 600; }
.crumbs { color: var(--muted); margin: 0; }
.notice { border: 1px solid var(--accent); border-radius: 6px; padding: .5rem .75rem; margin: 0 0 1rem; }
.badge { display: inline-block; padding: 0 .5rem; border-radius: 999px; font-size: .85em; border: 1px solid var(--line); }
.badge.active, .badge.succeeded, .badge.enabled { border-color: #2e7d32; color: #2e7d32; }
.badge.suspended, .badge.pending { border-color: #b26a00; color: #b26a00; }
.badge.deleted, .badge.failed, .badge.disabled, .badge.revoked { border-color: var(--bad); color: var(--bad); }
.row { display: flex; flex-wrap: wrap; gap: .75rem; align-items: end; }
.row > * { flex: 1 1 10rem; }
.row > .shrink { flex: 0 0 auto; }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(12rem, 1fr)); gap: 1rem; margin: 0 0 1rem; }
.stat { font-size: 1.75rem; font-weight: 700; margin: 0; }
.card > :first-child { margin-top: 0; } .card > :last-child { margin-bottom: 0; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .25rem 1rem; margin: 0 0 .75rem; }
dt { color: var(--muted); } dd { margin: 0; min-width: 0; }
details { border-bottom: 1px solid var(--line); padding: .5rem 0; } summary { cursor: pointer; }
.stack > * + * { margin-top: 1rem; }
select, textarea, input[type=url], input[type=search], input[type=datetime-local], input[type=number] { width: 100%; padding: .6rem; font: inherit; border: 1px solid var(--line); border-radius: 6px; background: var(--bg); color: var(--fg); }
textarea { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; min-height: 10rem; }
input[aria-invalid=true], textarea[aria-invalid=true] { border-color: var(--bad); }
.field-error { color: var(--bad); margin: .25rem 0 0; }
.hint { color: var(--muted); font-size: .875rem; margin: .25rem 0 0; }
button.danger { background: var(--bad); border-color: var(--bad); }
button.small, .button.small { padding: .25rem .6rem; font-size: .875rem; }
.actions { display: flex; flex-wrap: wrap; gap: .5rem; align-items: center; margin: .75rem 0 0; }
.actions form { margin: 0; }
fieldset { border: 1px solid var(--line); border-radius: 6px; margin: .75rem 0 0; }
fieldset label { display: inline; font-weight: 400; margin: 0 1rem 0 .25rem; }
pre { background: var(--bg); border: 1px solid var(--line); border-radius: 6px; padding: .75rem; overflow-x: auto; white-space: pre-wrap; word-break: break-word; }
.secret { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; }
.pager { display: flex; gap: 1rem; margin: 1rem 0 0; }
figure { margin: 0; }
figcaption { font-weight: 600; margin: 0 0 .5rem; }
svg.chart { width: 100%; height: auto; max-height: 16rem; }
svg.chart text { fill: var(--muted); font-size: 11px; }
svg.chart .axis { stroke: var(--line); }
svg.chart .line { fill: none; stroke: var(--accent); stroke-width: 2; }
svg.chart .area { fill: var(--accent); opacity: .12; }
svg.chart .ok { fill: #2e7d32; } svg.chart .bad { fill: var(--bad); } svg.chart .wait { fill: #b26a00; }
.legend span { margin-right: 1rem; } .legend i { display: inline-block; width: .75rem; height: .75rem; margin-right: .25rem; border-radius: 2px; }
.legend .ok { background: #2e7d32; } .legend .bad { background: var(--bad); } .legend .wait { background: #b26a00; }
@media (max-width: 40rem) { th.optional, td.optional { display: none; } header.top .who { font-size: .875rem; } main { padding: .75rem; } }
"#;

/// The copy buttons' script: copies the text of the element a button's `data-copy` names and
/// says so. Served from `/ui/copy.js`; without it, the secret is still selectable text.
const COPY_JS: &str = r#"document.addEventListener('click', function (e) {
  var b = e.target.closest('button[data-copy]'); if (!b) return;
  var t = document.getElementById(b.getAttribute('data-copy')); if (!t) return;
  var text = t.value !== undefined ? t.value : t.textContent;
  navigator.clipboard.writeText(text).then(function () { b.textContent = 'Copied'; },
    function () { t.select && t.select(); b.textContent = 'Press Ctrl+C to copy'; });
});
"#;

async fn copy_script() -> Response {
    let mut response = COPY_JS.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/javascript; charset=utf-8"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// The Content-Security-Policy of every dashboard page: nothing but this server, no scripts, and
/// the embedded stylesheet by its hash.
static CSP: LazyLock<HeaderValue> = LazyLock::new(|| {
    let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(CSS.as_bytes()));
    HeaderValue::from_str(&format!(
        "default-src 'none'; style-src 'sha256-{hash}'; script-src 'self'; img-src 'self' data:; \
         form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ))
    .expect("the policy is ASCII")
});

/// A whole page: the layout around `body`, with the signed-in bar when there is an operator.
pub fn page(title: &str, signed_in: Option<&SignedIn>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Carcosa" }
                style { (PreEscaped(CSS)) }
                script src="/ui/copy.js" defer {}
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a.brand href="/ui/" { "Carcosa" }
                    @if let Some(signed_in) = signed_in {
                        span.who {
                            "Signed in as " strong { (signed_in.operator.name) }
                            " (" (signed_in.operator.email) ")"
                        }
                        form method="post" action="/ui/logout" {
                            (csrf_field(&signed_in.csrf))
                            button.link type="submit" { "Log out" }
                        }
                    }
                }
                main id="main" tabindex="-1" { (body) }
            }
        }
    }
}

/// A time, readable and machine-readable.
#[must_use]
pub fn when(at: DateTime<Utc>) -> Markup {
    html! { time datetime=(at.to_rfc3339()) { (at.format("%Y-%m-%d %H:%M:%S UTC")) } }
}

/// A status word as a coloured badge (the colour class is the word itself, from a fixed set).
#[must_use]
pub fn badge(word: &str) -> Markup {
    html! { span class={ "badge " (word) } { (word) } }
}

/// The message a redirect after a change asks the next page to show (`?notice=…`): only known
/// codes are shown, so a link cannot put words in the dashboard's mouth.
#[must_use]
pub fn notice(code: Option<&str>) -> Markup {
    let text = match code.unwrap_or_default() {
        "tenant_created" => "Tenant created.",
        "tenant_updated" => "Tenant saved.",
        "tenant_unchanged" => "Nothing changed.",
        "tenant_suspended" => "Tenant suspended.",
        "tenant_activated" => "Tenant activated.",
        "tenant_deleted" => "Tenant deleted.",
        "key_revoked" => "Key revoked.",
        "endpoint_created" => "Endpoint created.",
        "endpoint_updated" => "Endpoint saved.",
        "endpoint_deleted" => "Endpoint deleted.",
        "secret_rotated" => "Signing secret rotated; the old one keeps signing for the grace period.",
        "test_sent" => "Test event queued.",
        "delivery_resent" => "Delivery queued again.",
        "recovered" => "Failed deliveries queued again.",
        "nothing_to_recover" => "There were no failed deliveries to recover.",
        "role_set" => "Role saved.",
        "role_removed" => "Role removed.",
        "role_unchanged" => "Nothing changed.",
        "operator_created" => "Operator created.",
        "project_deleted" => "Project deleted.",
        _ => return html! {},
    };
    html! { p.notice role="status" { (text) } }
}

/// A redirect after a successful form post (303, so the browser GETs the next page).
#[must_use]
pub fn see_other(path: &str) -> Response {
    Redirect::to(path).into_response()
}

/// The hidden field that carries a form's CSRF token.
#[must_use]
pub fn csrf_field(token: &str) -> Markup {
    html! { input type="hidden" name="csrf" value=(token); }
}

/// An HTML answer with the dashboard's security headers (CSP, no framing, no caching).
pub fn respond(status: StatusCode, markup: Markup) -> Response {
    let mut response = (status, markup.into_string()).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    headers.insert(header::CONTENT_SECURITY_POLICY, CSP.clone());
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// An error page with a stable code (shown, and in `data-code` for tests and scripts).
pub fn error_page(
    status: StatusCode,
    code: &'static str,
    message: &str,
    signed_in: Option<&SignedIn>,
) -> Response {
    let title = status.canonical_reason().unwrap_or("Error");
    respond(
        status,
        page(
            title,
            signed_in,
            html! {
                h1 { (title) }
                p.error role="alert" data-code=(code) { (message) }
                p.muted { "Error code: " code { (code) } }
                p { a href="/ui/" { "Back to the dashboard" } }
            },
        ),
    )
}

/// 403 `csrf_failed`: the form did not carry this session's token.
#[must_use]
pub fn csrf_failed() -> Response {
    error_page(
        StatusCode::FORBIDDEN,
        "csrf_failed",
        "This form has expired or did not come from this dashboard. Reload the page and try again.",
        None,
    )
}

/// 403 `forbidden`: the operator's role does not allow the action.
#[must_use]
pub fn forbidden(signed_in: &SignedIn) -> Response {
    error_page(
        StatusCode::FORBIDDEN,
        "forbidden",
        "Your role in this project does not allow this.",
        Some(signed_in),
    )
}

/// 500 with the cause logged, never shown.
pub fn internal_error(cause: &dyn std::fmt::Display) -> Response {
    tracing::error!(error = %cause, "dashboard request failed");
    error_page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal_error",
        "Something went wrong on the server; it has been logged.",
        None,
    )
}

async fn not_found(signed_in: SignedIn) -> Response {
    error_page(StatusCode::NOT_FOUND, "not_found", "There is no such page.", Some(&signed_in))
}

/// A page's query string as `T`, read leniently: a link with a mangled or unknown parameter
/// shows the page with the defaults instead of an error (every field of `T` is optional).
#[derive(Debug, Clone, Default)]
pub struct Lenient<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Default> FromRequestParts<S> for Lenient<T> {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        Ok(Self(serde_urlencoded::from_str(query).unwrap_or_default()))
    }
}

/// An `application/x-www-form-urlencoded` body as `T`, if it reads as one.
pub fn parse_form<T: DeserializeOwned>(body: &[u8]) -> Option<T> {
    serde_urlencoded::from_bytes(body).ok()
}

/// 400 `invalid_form`.
#[must_use]
pub fn invalid_form() -> Response {
    error_page(StatusCode::BAD_REQUEST, "invalid_form", "The form could not be read.", None)
}

/// A form posted by a signed-in operator, its CSRF token checked: signed-out requests are
/// redirected to the login page, a missing or wrong token is 403 `csrf_failed`.
#[derive(Debug)]
pub struct CsrfForm<T> {
    /// Who posted it.
    pub signed_in: SignedIn,
    /// The form's other fields.
    pub form: T,
    /// The request's id, address and user agent, for the audit log.
    pub meta: RequestMeta,
}

impl<T> CsrfForm<T> {
    /// The audit context of a change this form makes: the operator is the actor.
    #[must_use]
    pub fn audit(&self) -> AuditContext {
        AuditContext::new(Actor::operator(self.signed_in.operator.id), self.meta.clone())
    }
}

impl<T: DeserializeOwned> FromRequest<AppState> for CsrfForm<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        #[derive(Deserialize)]
        struct Token {
            csrf: Option<String>,
        }
        let (mut parts, body) = req.into_parts();
        let signed_in = SignedIn::from_request_parts(&mut parts, state).await?;
        let meta = RequestMeta::from_parts(&parts);
        let bytes =
            Bytes::from_request(Request::from_parts(parts, body), state).await.map_err(|_| invalid_form())?;
        let given =
            serde_urlencoded::from_bytes::<Token>(&bytes).ok().and_then(|t| t.csrf).unwrap_or_default();
        if !tokens_match(&signed_in.csrf, &given) {
            return Err(csrf_failed());
        }
        let form = parse_form(&bytes).ok_or_else(invalid_form)?;
        Ok(Self { signed_in, form, meta })
    }
}
