//! The dashboard: server-rendered HTML under `/ui`, written with `maud` (compile-time templates
//! that escape every interpolated value), with its stylesheet embedded in the binary. No
//! JavaScript, no CDN.
//!
//! * [`login`]: `GET/POST /ui/login`, `POST /ui/logout`;
//! * [`home`]: `GET /ui/`, who is signed in and the projects they can see.
//!
//! Every page but the login page takes [`SignedIn`] (signed-out requests are redirected to
//! `/ui/login`); every form post goes through [`CsrfForm`], which checks the session's CSRF token
//! (403 `csrf_failed` otherwise). Mutating handlers ask [`SignedIn::may`] for the project and
//! [`carcosa_core::Action`] before acting, and answer [`forbidden`] when it says no.

mod home;
mod login;

use std::sync::LazyLock;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{any, get, post};
use base64::Engine;
use maud::{DOCTYPE, Markup, PreEscaped, html};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::session::{SignedIn, tokens_match};

/// The dashboard's routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/ui", get(|| async { Redirect::permanent("/ui/") }))
        .route("/ui/", get(home::show))
        .route("/ui/login", get(login::form).post(login::submit))
        .route("/ui/logout", post(login::logout))
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
@media (max-width: 40rem) { th.optional, td.optional { display: none; } header.top .who { font-size: .875rem; } }
"#;

/// The Content-Security-Policy of every dashboard page: nothing but this server, no scripts, and
/// the embedded stylesheet by its hash.
static CSP: LazyLock<HeaderValue> = LazyLock::new(|| {
    let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(CSS.as_bytes()));
    HeaderValue::from_str(&format!(
        "default-src 'none'; style-src 'sha256-{hash}'; img-src 'self' data:; form-action 'self'; \
         frame-ancestors 'none'; base-uri 'none'"
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
        let bytes =
            Bytes::from_request(Request::from_parts(parts, body), state).await.map_err(|_| invalid_form())?;
        let given =
            serde_urlencoded::from_bytes::<Token>(&bytes).ok().and_then(|t| t.csrf).unwrap_or_default();
        if !tokens_match(&signed_in.csrf, &given) {
            return Err(csrf_failed());
        }
        let form = parse_form(&bytes).ok_or_else(invalid_form)?;
        Ok(Self { signed_in, form })
    }
}
