//! Signing in and out.
//!
//! The login form has no session to hold a CSRF token yet, so `GET /ui/login` sets a random
//! token in the `carcosa_login` cookie and puts its derived CSRF value in the form; the post must
//! bring both (double submit). A successful login always starts a new session (and ends the one
//! the browser had, if any), so a session id planted before login is worthless.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;

use super::{CsrfForm, csrf_failed, internal_error, invalid_form, page, parse_form, respond};
use crate::AppState;
use crate::operators::{LoginOutcome, check_login};
use crate::ratelimit;
use crate::session::{self, COOKIE, ClientAddress, LOGIN_COOKIE, Token, cookie, read_cookie, tokens_match};
use crate::store::now;

/// The one message for every wrong email or password: it never says which.
pub const WRONG_LOGIN: &str = "Wrong email or password.";

/// `GET /ui/login`: the form (or the dashboard, when already signed in).
pub async fn form(State(state): State<AppState>, request: axum::extract::Request) -> Response {
    let (parts, _) = request.into_parts();
    if let Ok(Some(_)) = session::current(&parts, &state).await {
        return Redirect::to("/ui/").into_response();
    }
    // Keep a token the browser already has, so a second tab's form stays valid.
    if let Some(token) = read_cookie(&parts.headers, LOGIN_COOKIE).and_then(Token::parse) {
        return login_page(StatusCode::OK, &token, "", None);
    }
    let token = Token::generate();
    let secure = session::is_secure(&parts.headers, state.sessions());
    let mut response = login_page(StatusCode::OK, &token, "", None);
    response.headers_mut().append(header::SET_COOKIE, cookie(LOGIN_COOKIE, Some(token.expose()), secure));
    response
}

fn login_page(status: StatusCode, token: &Token, email: &str, error: Option<&str>) -> Response {
    respond(
        status,
        page(
            "Sign in",
            None,
            html! {
                div.card.narrow {
                    h1 { "Sign in to Carcosa" }
                    @if let Some(error) = error {
                        p.error role="alert" id="login-error" { (error) }
                    }
                    form method="post" action="/ui/login" {
                        (super::csrf_field(&token.csrf()))
                        label for="email" { "Email" }
                        input id="email" type="email" name="email" value=(email) autocomplete="username"
                            required autofocus[email.is_empty()];
                        label for="password" { "Password" }
                        input id="password" type="password" name="password" autocomplete="current-password"
                            required autofocus[!email.is_empty()];
                        button type="submit" { "Sign in" }
                    }
                }
            },
        ),
    )
}

#[derive(Debug, Deserialize)]
struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf: String,
}

/// `POST /ui/login`: checks the login rate limit, the failed-login throttle and the password; on
/// success starts a new session and goes to the dashboard. Every answer past the CSRF check
/// carries the `RateLimit-*` headers (and a 429, `Retry-After`).
pub async fn submit(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(form) = parse_form::<LoginForm>(&body) else {
        return invalid_form();
    };
    let Some(token) = read_cookie(&headers, LOGIN_COOKIE).and_then(Token::parse) else {
        return csrf_failed();
    };
    if !tokens_match(&token.csrf(), &form.csrf) {
        return csrf_failed();
    }
    // Before any password is hashed: attempts per address, in a token bucket.
    let limited = state.rate_limits().check_login(&address).await;
    let mut response = match limited {
        Some(decision) if !decision.allowed => {
            let seconds = decision.retry_after_secs;
            let message = format!(
                "Too many sign-in attempts from this address. Try again in {seconds} second{}.",
                if seconds == 1 { "" } else { "s" }
            );
            login_page(StatusCode::TOO_MANY_REQUESTS, &token, form.email.trim(), Some(&message))
        }
        _ => sign_in(&state, &address, &headers, form, &token).await,
    };
    if let Some(decision) = limited {
        ratelimit::set_headers(response.headers_mut(), &decision);
    }
    response
}

/// Checks the failed-login throttle and the password; on success starts a new session.
async fn sign_in(
    state: &AppState,
    address: &str,
    headers: &HeaderMap,
    form: LoginForm,
    token: &Token,
) -> Response {
    let settings = state.sessions().clone();
    let store = state.store();
    let at = now();
    if let Err(err) =
        store.prune_sessions(at - settings.idle, at - settings.absolute, at - settings.throttle.window).await
    {
        tracing::warn!(error = %err, "could not remove expired sessions");
    }
    let outcome = check_login(store, settings.throttle, &form.email, form.password, address).await;
    match outcome {
        Err(err) => internal_error(&err),
        Ok(LoginOutcome::Refused) => {
            login_page(StatusCode::UNAUTHORIZED, token, form.email.trim(), Some(WRONG_LOGIN))
        }
        Ok(LoginOutcome::Throttled(wait)) => {
            let seconds = wait.num_seconds().max(1);
            let minutes = (seconds + 59) / 60;
            let message = format!(
                "Too many failed sign-ins for this account or from this address. Try again in {minutes} minute{}.",
                if minutes == 1 { "" } else { "s" }
            );
            let mut response =
                login_page(StatusCode::TOO_MANY_REQUESTS, token, form.email.trim(), Some(&message));
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
            response
        }
        Ok(LoginOutcome::Success(operator)) => {
            let new = Token::generate();
            let old = read_cookie(headers, COOKIE).and_then(Token::parse).map(|t| t.hash());
            let user_agent = headers
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(|ua| ua.chars().take(300).collect::<String>());
            if let Err(err) = store
                .create_session(
                    &new.hash(),
                    operator.id,
                    Some(address),
                    user_agent.as_deref(),
                    old.as_deref(),
                )
                .await
            {
                return internal_error(&err);
            }
            tracing::info!(operator = %operator.id, "operator signed in");
            let secure = session::is_secure(headers, &settings);
            let mut response = Redirect::to("/ui/").into_response();
            let cookies = response.headers_mut();
            cookies.append(header::SET_COOKIE, cookie(COOKIE, Some(new.expose()), secure));
            cookies.append(header::SET_COOKIE, cookie(LOGIN_COOKIE, None, secure));
            response
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct Empty {}

/// `POST /ui/logout`: ends the session and removes the cookie.
pub async fn logout(State(state): State<AppState>, headers: HeaderMap, posted: CsrfForm<Empty>) -> Response {
    if let Err(err) = state.store().delete_session(&posted.signed_in.session_hash()).await {
        return internal_error(&err);
    }
    tracing::info!(operator = %posted.signed_in.operator.id, "operator signed out");
    let mut response = Redirect::to(session::LOGIN_PATH).into_response();
    let secure = session::is_secure(&headers, state.sessions());
    response.headers_mut().append(header::SET_COOKIE, cookie(COOKIE, None, secure));
    response
}
