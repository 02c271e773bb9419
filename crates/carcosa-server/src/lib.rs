//! The Carcosa server: REST API v1 over a store on SQLite or PostgreSQL.
//!
//! * [`app`] builds the HTTP router from an [`AppState`]; tests can drive it without a socket.
//! * [`serve`] opens the store, applies migrations, starts the retention task and serves HTTP on
//!   an already-bound listener until the `shutdown` future completes.
//!
//! Where things live: [`store`] (all SQL and the transactional invariants), [`routes`] (one module
//! per resource), [`auth`] (API keys and scopes), [`audit`] (who made a change, from where),
//! [`extract`] (request parsing with problem+json rejections), [`error`] (the error policy),
//! [`ratelimit`] (token buckets per key and per login address, in memory or in Redis),
//! [`config`], [`telemetry`] (metrics and `/metrics`); the dashboard: [`ui`] (pages), [`session`] (cookies, CSRF), [`operators`]
//! (accounts, passwords, login throttle).

#![warn(missing_docs)]

pub mod audit;
pub mod auth;
pub mod config;
pub mod dispatcher;
mod docs_page;
pub mod error;
pub mod extract;
pub mod operators;
pub mod ratelimit;
pub mod routes;
pub mod secrets;
pub mod session;
pub mod ssrf;
pub mod store;
pub mod telemetry;
pub mod ui;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Extension};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;

pub use config::Config;
use dispatcher::{DispatchSettings, Dispatcher};
use error::ApiError;
use routes::ops::PublishedSpec;
use secrets::SecretBox;
use ssrf::AddressPolicy;
use store::{Store, StoreOptions, WriteRules};

/// What every handler can reach: the store and the rules from configuration. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    inner: Arc<StateInner>,
}

#[derive(Debug)]
struct StateInner {
    store: Store,
    rules: WriteRules,
    max_body_bytes: usize,
    secrets: SecretBox,
    address_policy: Arc<AddressPolicy>,
    secret_grace: chrono::TimeDelta,
    key_touches: std::sync::Mutex<std::collections::HashMap<String, chrono::DateTime<chrono::Utc>>>,
    sessions: session::SessionSettings,
    metrics_token: Option<String>,
    gauges: telemetry::Gauges,
    rate_limits: ratelimit::RateLimits,
}

impl AppState {
    /// State over `store`, with the rules `config` sets, sealing secrets with `secrets`. Call
    /// within a Tokio runtime when `config` names a Redis for rate limits.
    pub fn new(store: Store, config: &Config, secrets: SecretBox) -> anyhow::Result<Self> {
        let rules = WriteRules { reserved: config.reserved(), max_metadata_bytes: config.max_metadata_bytes };
        let networks = config.allowed_networks().map_err(anyhow::Error::msg)?;
        Ok(Self {
            inner: Arc::new(StateInner {
                store,
                rules,
                max_body_bytes: config.max_body_bytes,
                secrets,
                address_policy: Arc::new(AddressPolicy::new(config.webhook_allow_private, networks)),
                secret_grace: chrono::TimeDelta::hours(i64::from(config.webhook_secret_grace_hours)),
                key_touches: std::sync::Mutex::default(),
                sessions: session::SessionSettings::from_config(config),
                metrics_token: config.metrics_token.as_ref().map(|t| t.expose().to_owned()),
                gauges: telemetry::Gauges::default(),
                rate_limits: ratelimit::RateLimits::from_config(config)?,
            }),
        })
    }

    /// Seals and opens secrets at rest.
    #[must_use]
    pub fn secrets(&self) -> &SecretBox {
        &self.inner.secrets
    }

    /// Where webhooks may connect.
    #[must_use]
    pub fn address_policy(&self) -> &Arc<AddressPolicy> {
        &self.inner.address_policy
    }

    /// Whether this request should record that `key_id` was used at `at`: once a minute per key
    /// and process, however many requests arrive meanwhile.
    pub(crate) fn claim_key_touch(&self, key_id: &str, at: chrono::DateTime<chrono::Utc>) -> bool {
        let mut touches = self.inner.key_touches.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match touches.get(key_id) {
            Some(last) if at - *last < chrono::TimeDelta::seconds(60) => false,
            _ => {
                touches.insert(key_id.to_owned(), at);
                true
            }
        }
    }

    /// How long a rotated-out secret keeps signing.
    #[must_use]
    pub fn secret_grace(&self) -> chrono::TimeDelta {
        self.inner.secret_grace
    }

    /// The store.
    #[must_use]
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// Dashboard session and login rules.
    #[must_use]
    pub fn sessions(&self) -> &session::SessionSettings {
        &self.inner.sessions
    }

    /// The token `/metrics` asks for, if one is configured.
    pub(crate) fn metrics_token(&self) -> Option<&str> {
        self.inner.metrics_token.as_deref()
    }

    /// The store-derived gauges of `/metrics`.
    pub(crate) fn gauges(&self) -> &telemetry::Gauges {
        &self.inner.gauges
    }

    /// Rate limits per API key and per login address.
    #[must_use]
    pub fn rate_limits(&self) -> &ratelimit::RateLimits {
        &self.inner.rate_limits
    }

    /// The rules tenant writes follow.
    #[must_use]
    pub fn rules(&self) -> &WriteRules {
        &self.inner.rules
    }
}

/// The whole HTTP application: API, operations endpoints (`/metrics` outside the OpenAPI
/// document), error fallbacks.
///
/// Layers, outermost first: the request id is settled, then the request's span is opened with
/// it (so every log line of the request carries `request_id`), then the request is counted and
/// timed, then panics become 500s.
pub fn app(state: AppState) -> Router {
    let (router, mut openapi) = routes::router().split_for_parts();
    routes::add_common_errors(&mut openapi);
    let json = openapi.to_pretty_json().expect("the OpenAPI document serializes");
    let value: serde_json::Value = serde_json::from_str(&json).expect("the OpenAPI document is JSON");
    let spec = Arc::new(PublishedSpec { html: docs_page::render(&value), json });
    let max_body = state.inner.max_body_bytes;
    router
        .merge(ui::router())
        .route("/metrics", axum::routing::get(telemetry::render))
        .fallback(|| async { ApiError::not_found("no such route; see /docs for the API reference") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "Method not allowed",
                "this route does not accept that method; see /docs",
            )
        })
        .layer(Extension(spec))
        .layer(axum::middleware::from_fn(ratelimit::headers))
        .layer(DefaultBodyLimit::max(max_body))
        .layer(CatchPanicLayer::custom(|_panic: Box<dyn std::any::Any + Send>| -> Response {
            ApiError::internal(&"a request handler panicked").into_response()
        }))
        .layer(axum::middleware::from_fn(telemetry::track))
        .layer(TraceLayer::new_for_http().make_span_with(request_span))
        .layer(axum::middleware::from_fn(audit::request_id))
        .with_state(state)
}

/// The span every log line of a request is written in: method, path (no query) and the id
/// [`audit::request_id`] settled, which runs before it.
fn request_span(request: &axum::http::Request<axum::body::Body>) -> tracing::Span {
    let id = request.extensions().get::<audit::RequestId>().map_or("", |id| id.0.as_str());
    tracing::info_span!("request", method = %request.method(), path = request.uri().path(), request_id = id)
}

/// Opens the store `config` names and applies pending migrations.
pub async fn open_store(config: &Config) -> anyhow::Result<Store> {
    let options =
        StoreOptions { max_connections: config.database_max_connections, ..StoreOptions::default() };
    let store = Store::connect(config.database_url.expose(), &options).await?;
    store.migrate().await?;
    Ok(store)
}

/// Serves Carcosa on `listener` until `shutdown` completes, then drains in-flight requests,
/// stops background work and closes the store. Opens (and migrates) the store `config` names.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let store = open_store(&config).await?;
    serve_with_store(store, config, listener, shutdown).await
}

/// [`serve`] on a store that is already open and migrated (see [`open_store`]).
pub async fn serve_with_store(
    store: Store,
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let secrets = SecretBox::from_config(&config)?;
    let state = AppState::new(store.clone(), &config, secrets.clone())?;
    let settings = DispatchSettings::from_config(&config).map_err(anyhow::Error::msg)?;
    let dispatcher = Dispatcher::new(store.clone(), secrets, state.address_policy().clone(), settings)?;
    telemetry::install();
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut background = tokio::task::JoinSet::new();
    background.spawn(telemetry::upkeep(stop_rx.clone()));
    background.spawn(prune_loop(store.clone(), config.clone(), stop_rx.clone()));
    background.spawn(dispatcher.run(stop_rx.clone()));
    if let Store::Postgres(pg) = &store {
        background.spawn(listen_for_deliveries(pg.clone(), store.delivery_waker(), stop_rx));
    }
    // With the peer's address, which audit entries record.
    let service = app(state).into_make_service_with_connect_info::<SocketAddr>();
    let result = axum::serve(listener, service).with_graceful_shutdown(shutdown).await;
    let _ = stop_tx.send(true);
    while background.join_next().await.is_some() {}
    store.close().await;
    result.map_err(Into::into)
}

/// Wakes this replica's dispatcher whenever any replica commits deliveries (PostgreSQL
/// `LISTEN`). Notifications missed while reconnecting are covered by the dispatcher's polling.
async fn listen_for_deliveries(
    store: store::PgStore,
    wake: Arc<tokio::sync::Notify>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let mut listener = match store.delivery_listener().await {
            Ok(listener) => listener,
            Err(err) => {
                tracing::warn!(error = %err, "cannot LISTEN for new deliveries; relying on polling, retrying in 5 s");
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(5)) => continue,
                    _ = stop.changed() => return,
                }
            }
        };
        loop {
            tokio::select! {
                received = listener.recv() => match received {
                    Ok(_) => wake.notify_one(),
                    Err(err) => {
                        tracing::warn!(error = %err, "LISTEN connection lost; reconnecting");
                        break;
                    }
                },
                _ = stop.changed() => return,
            }
        }
    }
}

/// Removes expired events, idempotency records, deliveries and audit entries, at start and then
/// every `prune_interval_secs`, until `stop` turns true.
async fn prune_loop(store: Store, config: Config, mut stop: watch::Receiver<bool>) {
    let every = Duration::from_secs(config.prune_interval_secs.max(1));
    let event_retention = chrono::TimeDelta::days(i64::from(config.event_retention_days));
    let key_retention = chrono::TimeDelta::hours(i64::from(config.idempotency_retention_hours));
    // 0 keeps the audit log forever.
    let audit_retention = (config.audit_retention_days > 0)
        .then(|| chrono::TimeDelta::days(i64::from(config.audit_retention_days)));
    loop {
        let now = chrono::Utc::now();
        if let Some(retention) = audit_retention {
            match store.prune_audit(now - retention).await {
                Ok(0) => {}
                Ok(removed) => tracing::info!(audit_entries = removed, "pruned expired audit entries"),
                Err(err) => tracing::warn!(error = %err, "pruning the audit log failed; will retry"),
            }
        }
        let settings = session::SessionSettings::from_config(&config);
        let (idle, created, failures) =
            (now - settings.idle, now - settings.absolute, now - settings.throttle.window);
        if let Err(err) = store.prune_sessions(idle, created, failures).await {
            tracing::warn!(error = %err, "pruning expired sessions failed; will retry");
        }
        match store.prune(now - event_retention, now - key_retention).await {
            Ok(report) if report.events + report.idempotency_keys + report.deliveries > 0 => {
                tracing::info!(
                    events = report.events,
                    idempotency_keys = report.idempotency_keys,
                    deliveries = report.deliveries,
                    "pruned expired records"
                );
            }
            Ok(_) => {}
            Err(err) => tracing::warn!(error = %err, "pruning expired records failed; will retry"),
        }
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            _ = stop.changed() => return,
        }
    }
}
