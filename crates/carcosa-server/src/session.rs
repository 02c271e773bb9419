//! Dashboard sessions: server-side, in the store, known by the SHA-256 of a 256-bit random token
//! that lives only in the operator's `carcosa_session` cookie (`HttpOnly; SameSite=Lax; Path=/`,
//! and `Secure` when the request came over TLS or the public URL is `https://`).
//!
//! A session ends when it has been idle too long, when it is too old however much it is used,
//! at logout, and when the operator's password changes. Every login starts a new one. Each
//! session has a CSRF token, derived from its token (so it cannot be derived from the database),
//! which every dashboard form carries and every non-GET dashboard request must present.
//!
//! [`SignedIn`] is the extractor dashboard handlers take: it yields the operator, or redirects to
//! `/ui/login`.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use carcosa_core::operator::allows;
use carcosa_core::{Action, ProjectId, Role};
use chrono::TimeDelta;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::AppState;
use crate::config::Config;
use crate::operators::Throttle;
use crate::store::{Operator, now};

/// The session cookie.
pub const COOKIE: &str = "carcosa_session";
/// The cookie that carries the login form's CSRF token (there is no session yet to hold one).
pub const LOGIN_COOKIE: &str = "carcosa_login";
/// Where signed-out requests are sent.
pub const LOGIN_PATH: &str = "/ui/login";
/// How stale `last_seen_at` may get before a request refreshes it.
const TOUCH_EVERY: TimeDelta = TimeDelta::seconds(60);

/// Session and login rules from configuration.
#[derive(Debug, Clone)]
pub struct SessionSettings {
    /// A session unused this long ends.
    pub idle: TimeDelta,
    /// A session this old ends.
    pub absolute: TimeDelta,
    /// Cookies are always `Secure` (the public URL is https).
    pub always_secure: bool,
    /// Failed-login limits.
    pub throttle: Throttle,
}

impl SessionSettings {
    /// The settings `config` gives.
    #[must_use]
    pub fn from_config(config: &Config) -> Self {
        Self {
            idle: TimeDelta::hours(i64::from(config.session_idle_hours.max(1))),
            absolute: TimeDelta::hours(i64::from(config.session_absolute_hours.max(1))),
            always_secure: config.public_url.trim().to_ascii_lowercase().starts_with("https://"),
            throttle: Throttle {
                max_failures: config.login_max_failures.max(1),
                window: TimeDelta::minutes(i64::from(config.login_failure_window_mins.max(1))),
            },
        }
    }
}

/// A random 256-bit token, base64url: a session's (or the login form's) secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(***)")
    }
}

impl Token {
    /// A fresh token from the operating system's generator.
    #[must_use]
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut bytes);
        Self(URL_SAFE_NO_PAD.encode(bytes))
    }

    /// A token read from a cookie: exactly 32 bytes of base64url, or nothing.
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        URL_SAFE_NO_PAD.decode(text).ok().filter(|b| b.len() == 32).map(|_| Self(text.to_owned()))
    }

    /// The text that goes into the cookie.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// What the store knows the session by.
    #[must_use]
    pub fn hash(&self) -> Vec<u8> {
        Sha256::digest(self.0.as_bytes()).to_vec()
    }

    /// The session's CSRF token: derived from the session token, so it needs no storage and the
    /// database (which holds only the token's SHA-256) cannot reveal it.
    #[must_use]
    pub fn csrf(&self) -> String {
        let mut digest = Sha256::new();
        digest.update(b"carcosa-csrf\0");
        digest.update(self.0.as_bytes());
        URL_SAFE_NO_PAD.encode(digest.finalize())
    }
}

/// Compares two CSRF tokens in constant time.
#[must_use]
pub fn tokens_match(expected: &str, given: &str) -> bool {
    !expected.is_empty() && expected.as_bytes().ct_eq(given.as_bytes()).into()
}

/// The value of cookie `name` in the request, if any.
#[must_use]
pub fn read_cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim())
}

/// A `Set-Cookie` value: `HttpOnly; SameSite=Lax; Path=/`, `Secure` if asked; `None` as the
/// value removes the cookie.
#[must_use]
pub fn cookie(name: &str, value: Option<&str>, secure: bool) -> HeaderValue {
    let mut text = match value {
        Some(value) => format!("{name}={value}; HttpOnly; SameSite=Lax; Path=/"),
        None => format!("{name}=; HttpOnly; SameSite=Lax; Path=/; Max-Age=0"),
    };
    if secure {
        text.push_str("; Secure");
    }
    HeaderValue::from_str(&text).expect("cookie values are base64url")
}

/// Whether the request came over TLS (a proxy in front says so with `X-Forwarded-Proto`), or the
/// configuration says the public URL is https.
#[must_use]
pub fn is_secure(headers: &HeaderMap, settings: &SessionSettings) -> bool {
    settings.always_secure
        || headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"))
}

/// The peer's address (without the port), or `unknown` when the server was not started with
/// connection info (a test driving the router directly).
#[must_use]
pub fn client_address(parts: &Parts) -> String {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or_else(|| "unknown".to_owned(), |ConnectInfo(addr)| addr.ip().to_string())
}

/// The peer's address, as an extractor (see [`client_address`]).
#[derive(Debug, Clone)]
pub struct ClientAddress(pub String);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(client_address(parts)))
    }
}

/// A signed-in operator, from a live session. Handlers that take it are for signed-in operators
/// only: anyone else is redirected to `/ui/login`.
#[derive(Debug, Clone)]
pub struct SignedIn {
    /// Who.
    pub operator: Operator,
    /// The CSRF token every form of this session carries.
    pub csrf: String,
    token: Token,
}

impl SignedIn {
    /// The store's key of this session.
    #[must_use]
    pub fn session_hash(&self) -> Vec<u8> {
        self.token.hash()
    }

    /// The operator's role in `project`, if it allows `action`; `None` when it does not (or the
    /// operator has no role there). Every mutating dashboard handler asks this before acting.
    #[must_use]
    pub fn may(&self, project: ProjectId, action: Action) -> Option<Role> {
        self.operator.role_in(project).filter(|role| allows(*role, action))
    }
}

/// The answer to a request without a live session.
#[derive(Debug)]
pub struct SignInFirst;

impl IntoResponse for SignInFirst {
    fn into_response(self) -> Response {
        Redirect::to(LOGIN_PATH).into_response()
    }
}

/// The operator behind the request's session cookie, if the session is live. Ends sessions
/// found expired.
pub async fn current(parts: &Parts, state: &AppState) -> Result<Option<SignedIn>, crate::store::StoreError> {
    let Some(token) = read_cookie(&parts.headers, COOKIE).and_then(Token::parse) else {
        return Ok(None);
    };
    let store = state.store();
    let hash = token.hash();
    let Some(session) = store.session(&hash).await? else {
        return Ok(None);
    };
    let settings = state.sessions();
    let at = now();
    if at - session.last_seen_at > settings.idle || at - session.created_at > settings.absolute {
        store.delete_session(&hash).await?;
        return Ok(None);
    }
    let Some(operator) = store.get_operator(session.operator).await? else {
        return Ok(None);
    };
    if at - session.last_seen_at > TOUCH_EVERY {
        store.touch_session(&hash, at).await?;
    }
    Ok(Some(SignedIn { operator, csrf: token.csrf(), token }))
}

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        match current(parts, state).await {
            Ok(Some(signed_in)) => Ok(signed_in),
            Ok(None) => Err(SignInFirst.into_response()),
            Err(err) => Err(crate::ui::internal_error(&err)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_256_bit_and_their_hash_and_csrf_differ() {
        let token = Token::generate();
        assert_eq!(URL_SAFE_NO_PAD.decode(token.expose()).unwrap().len(), 32);
        assert_ne!(token, Token::generate());
        assert_eq!(Token::parse(token.expose()), Some(token.clone()));
        assert!(Token::parse("short").is_none());
        assert_ne!(token.csrf(), URL_SAFE_NO_PAD.encode(token.hash()));
        assert!(!format!("{token:?}").contains(token.expose()));
    }

    #[test]
    fn cookies_are_read_and_written() {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, HeaderValue::from_static("a=1; carcosa_session=abc; b=2"));
        assert_eq!(read_cookie(&headers, COOKIE), Some("abc"));
        assert_eq!(read_cookie(&headers, "c"), None);
        assert_eq!(cookie(COOKIE, Some("abc"), false), "carcosa_session=abc; HttpOnly; SameSite=Lax; Path=/");
        assert!(cookie(COOKIE, Some("abc"), true).to_str().unwrap().ends_with("; Secure"));
        assert!(cookie(COOKIE, None, false).to_str().unwrap().contains("Max-Age=0"));
    }

    #[test]
    fn csrf_tokens_compare_exactly() {
        assert!(tokens_match("abc", "abc"));
        assert!(!tokens_match("abc", "abd"));
        assert!(!tokens_match("abc", ""));
        assert!(!tokens_match("", ""));
    }
}
