//! The audit context: who is acting, in which request, from where.
//!
//! Every mutating store method takes an [`AuditContext`] and writes one audit entry in the
//! transaction of the change it records (`store/audit.rs`). The HTTP layer builds the context
//! from the request: [`request_id`] (a middleware) settles the request id, [`RequestMeta`] reads
//! it with the client's address and user agent, and [`crate::auth::Authorized::audit`] adds the
//! API key as the actor. The CLI builds one with [`AuditContext::cli`]; the dashboard will build
//! one for its operators.
//!
//! What does not live here: the entries' wire types (`carcosa_core::audit`) and the SQL.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use carcosa_core::audit::Actor;

/// The header that carries a request's id, in both directions.
pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// Longest request id taken from a caller; a longer one is replaced by a generated id.
const MAX_REQUEST_ID: usize = 200;
/// Longest user agent recorded; the rest is cut.
const MAX_USER_AGENT: usize = 512;

/// Who makes a change, in which request, from where: what an audit entry records besides the
/// change itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditContext {
    /// An API key, a CLI user or an operator.
    pub actor: Actor,
    /// The request's id: the caller's `x-request-id`, or a generated one.
    pub request_id: String,
    /// The caller's IP address, when known.
    pub address: Option<String>,
    /// The caller's `User-Agent`, when sent.
    pub user_agent: Option<String>,
}

impl AuditContext {
    /// The context of a request made by `actor`.
    #[must_use]
    pub fn new(actor: Actor, meta: RequestMeta) -> Self {
        Self { actor, request_id: meta.request_id, address: meta.address, user_agent: meta.user_agent }
    }

    /// The context of a `carcosa` command run by the OS user `user`: a fresh request id, no
    /// address, `carcosa-cli/<version>` as the user agent.
    #[must_use]
    pub fn cli(user: impl Into<String>) -> Self {
        Self {
            actor: Actor::cli(user),
            request_id: generate_request_id(),
            address: None,
            user_agent: Some(concat!("carcosa-cli/", env!("CARGO_PKG_VERSION")).to_owned()),
        }
    }
}

/// The request id [`request_id`] settled on, as a request extension.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// What an audit entry records about the request: its id, the client's address and user agent.
/// Never fails: a request without them records `null`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestMeta {
    /// The request's id.
    pub request_id: String,
    /// The peer's IP address (the server is served with connect info).
    pub address: Option<String>,
    /// The `User-Agent` header, at most 512 characters.
    pub user_agent: Option<String>,
}

impl RequestMeta {
    /// Reads the request's metadata from its parts.
    #[must_use]
    pub fn from_parts(parts: &Parts) -> Self {
        let request_id = match parts.extensions.get::<RequestId>() {
            Some(RequestId(id)) => id.clone(),
            // Outside the middleware (a router driven without it): the caller's id or a new one.
            None => {
                caller_request_id(parts.headers.get(REQUEST_ID_HEADER)).unwrap_or_else(generate_request_id)
            }
        };
        let address = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(peer)| peer.ip().to_canonical().to_string());
        let user_agent = parts.headers.get(header::USER_AGENT).map(|value| {
            String::from_utf8_lossy(value.as_bytes()).chars().take(MAX_USER_AGENT).collect::<String>()
        });
        Self { request_id, address, user_agent }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for RequestMeta {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self::from_parts(parts))
    }
}

/// Middleware: settles the request's id — the caller's `x-request-id` when it is 1–200 visible
/// ASCII characters, else a new ULID — makes it available as [`RequestId`], and returns it in
/// the response's `x-request-id`.
pub async fn request_id(mut request: Request, next: Next) -> Response {
    let id = caller_request_id(request.headers().get(REQUEST_ID_HEADER)).unwrap_or_else(generate_request_id);
    let value = HeaderValue::from_str(&id).ok();
    if let Some(value) = &value {
        request.headers_mut().insert(REQUEST_ID_HEADER, value.clone());
    }
    request.extensions_mut().insert(RequestId(id));
    let mut response = next.run(request).await;
    if let Some(value) = value {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    response
}

/// The caller's request id, if it is one we can record and echo.
fn caller_request_id(value: Option<&HeaderValue>) -> Option<String> {
    let text = value?.to_str().ok()?.trim();
    let ok = (1..=MAX_REQUEST_ID).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_graphic());
    ok.then(|| text.to_owned())
}

fn generate_request_id() -> String {
    ulid::Ulid::new().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caller_request_ids_are_kept_only_when_sane() {
        let keep = |text: &str| caller_request_id(Some(&HeaderValue::from_str(text).unwrap()));
        assert_eq!(keep("req-123").as_deref(), Some("req-123"));
        assert_eq!(keep(" abc ").as_deref(), Some("abc"));
        assert_eq!(keep(""), None);
        assert_eq!(keep("two words"), None);
        assert_eq!(keep(&"x".repeat(201)), None);
        assert_eq!(keep(&"x".repeat(200)).map(|s| s.len()), Some(200));
        assert_eq!(caller_request_id(None), None);
    }

    #[test]
    fn cli_contexts_name_the_user_and_get_a_request_id() {
        let a = AuditContext::cli("alice");
        let b = AuditContext::cli("alice");
        assert_eq!(a.actor, Actor::cli("alice"));
        assert_ne!(a.request_id, b.request_id);
        assert!(a.address.is_none());
        assert!(a.user_agent.as_deref().is_some_and(|ua| ua.starts_with("carcosa-cli/")));
    }
}
