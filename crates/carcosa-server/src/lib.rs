//! The Carcosa server: REST API v1 over a store on SQLite or PostgreSQL.
//!
//! * [`app`] builds the HTTP router from an [`AppState`]; tests can drive it without a socket.
//! * [`serve`] opens the store, applies migrations, starts the retention task and serves HTTP on
//!   an already-bound listener until the `shutdown` future completes.
//!
//! Where things live: [`store`] (all SQL and the transactional invariants), [`routes`] (one module
//! per resource), [`auth`] (API keys and scopes), [`extract`] (request parsing with
//! problem+json rejections), [`error`] (the error policy), [`config`].

#![warn(missing_docs)]

pub mod auth;
pub mod config;
mod docs_page;
pub mod error;
pub mod extract;
pub mod routes;
pub mod store;

use std::future::Future;
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
use error::ApiError;
use routes::ops::PublishedSpec;
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
}

impl AppState {
    /// State over `store`, with the rules `config` sets.
    #[must_use]
    pub fn new(store: Store, config: &Config) -> Self {
        let rules = WriteRules {
            reserved: config.reserved(),
            max_metadata_bytes: config.max_metadata_bytes,
        };
        Self {
            inner: Arc::new(StateInner {
                store,
                rules,
                max_body_bytes: config.max_body_bytes,
            }),
        }
    }

    /// The store.
    #[must_use]
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The rules tenant writes follow.
    #[must_use]
    pub fn rules(&self) -> &WriteRules {
        &self.inner.rules
    }
}

/// The whole HTTP application: API, operations endpoints, error fallbacks.
pub fn app(state: AppState) -> Router {
    let (router, mut openapi) = routes::router().split_for_parts();
    routes::add_common_errors(&mut openapi);
    let json = openapi
        .to_pretty_json()
        .expect("the OpenAPI document serializes");
    let value: serde_json::Value =
        serde_json::from_str(&json).expect("the OpenAPI document is JSON");
    let spec = Arc::new(PublishedSpec {
        html: docs_page::render(&value),
        json,
    });
    let max_body = state.inner.max_body_bytes;
    router
        .fallback(|| async {
            ApiError::not_found("no such route; see /docs for the API reference")
        })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "Method not allowed",
                "this route does not accept that method; see /docs",
            )
        })
        .layer(Extension(spec))
        .layer(DefaultBodyLimit::max(max_body))
        .layer(CatchPanicLayer::custom(
            |_panic: Box<dyn std::any::Any + Send>| -> Response {
                ApiError::internal(&"a request handler panicked").into_response()
            },
        ))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Opens the store `config` names and applies pending migrations.
pub async fn open_store(config: &Config) -> anyhow::Result<Store> {
    let options = StoreOptions {
        max_connections: config.database_max_connections,
        ..StoreOptions::default()
    };
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
    let (stop_tx, stop_rx) = watch::channel(false);
    let pruner = tokio::spawn(prune_loop(store.clone(), config.clone(), stop_rx));
    let app = app(AppState::new(store.clone(), &config));
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await;
    let _ = stop_tx.send(true);
    let _ = pruner.await;
    store.close().await;
    result.map_err(Into::into)
}

/// Removes expired events and idempotency records, at start and then every
/// `prune_interval_secs`, until `stop` turns true.
async fn prune_loop(store: Store, config: Config, mut stop: watch::Receiver<bool>) {
    let every = Duration::from_secs(config.prune_interval_secs.max(1));
    let event_retention = chrono::TimeDelta::days(i64::from(config.event_retention_days));
    let key_retention = chrono::TimeDelta::hours(i64::from(config.idempotency_retention_hours));
    loop {
        let now = chrono::Utc::now();
        match store
            .prune(now - event_retention, now - key_retention)
            .await
        {
            Ok(report) if report.events + report.idempotency_keys > 0 => {
                tracing::info!(
                    events = report.events,
                    idempotency_keys = report.idempotency_keys,
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
