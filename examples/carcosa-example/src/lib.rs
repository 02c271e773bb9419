//! `carcosa-example`: a small SaaS app that keeps its own tenant table in sync with Carcosa and
//! knows, for every request, which tenant it serves.
//!
//! * [`settings`]: what the app reads from its environment.
//! * [`tenant`]: how a request names its tenant, and the routes that need one (`GET /whoami`).
//! * [`run`] wires it up: the local table (migrated), a full sync at start, the webhook receiver
//!   at `/carcosa/webhooks` (when a secret is set), an incremental sync every minute, and a
//!   detection cache the sync invalidates the moment it applies a change — so a tenant created,
//!   suspended or deleted in Carcosa is seen by the very next request.
//!
//! `/healthz` and `/carcosa/webhooks` are routed before detection runs: a request to them is never
//! refused for its tenant.

#![warn(missing_docs)]

pub mod settings;
pub mod tenant;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::http::Request;
use axum::routing::get;
use carcosa::Client;
use carcosa::detect::TenantCache;
use carcosa::local::{DeletionPolicy, LocalStore, TableMapping};
use carcosa::receiver::webhook_router;
use carcosa::sync::{Schedule, SyncError};
use tokio::net::TcpListener;
use tower::Layer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};

pub use settings::{Settings, SettingsError};

/// The name this app's sync reports under in Carcosa's `/v1/sync-status`.
pub const INSTANCE: &str = "carcosa-example";

/// How often the background loop syncs when nothing else happens. Webhooks bring changes within
/// milliseconds; the loop catches whatever a lost webhook missed.
const INCREMENTAL_EVERY: Duration = Duration::from_secs(60);

/// The sync engine the app runs.
pub type SyncEngine = carcosa::sync::Sync;

/// Runs the app on `listener` until `shutdown` completes: migrates the local table, runs a full
/// sync, then serves while the background loop keeps the table fresh. On shutdown it drains the
/// requests under way, lets a sync run under way finish, and closes the database.
///
/// Fails at start when the local database cannot be opened or migrated, or when Carcosa refuses
/// the API key. Carcosa being unreachable is not fatal: the app serves from its table, and the
/// background loop retries.
pub async fn run(
    settings: Settings,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let client = Client::new(settings.api_url.as_str(), settings.api_key.expose())
        .context("cannot set up the Carcosa client (CARCOSA_API_URL)")?;
    let store =
        LocalStore::connect(settings.database_url.expose(), TableMapping::default(), DeletionPolicy::Soft)
            .await
            .context("cannot open the app's database (DATABASE_URL)")?;
    store.migrate().await.context("cannot migrate the app's tenant table")?;
    let cache = TenantCache::builder(store.clone()).build();
    let sync = Arc::new(SyncEngine::new(client, store).reporting_as(INSTANCE).invalidating(cache.clone()));
    initial_sync(&sync).await?;

    let (stop_sync, sync_stopped) = tokio::sync::oneshot::channel::<()>();
    let background = tokio::spawn({
        let sync = sync.clone();
        let schedule = Schedule { incremental_every: INCREMENTAL_EVERY, ..Schedule::default() };
        async move {
            sync.run(schedule, async move {
                let _ = sync_stopped.await;
            })
            .await;
        }
    });

    let app = app(&settings, sync.clone(), cache);
    tracing::info!(address = %listener.local_addr()?, base_domain = %settings.base_domain, "serving");
    let served = axum::serve(listener, app).with_graceful_shutdown(shutdown).await;
    let _ = stop_sync.send(());
    background.await.context("the background sync panicked")?;
    sync.store().close().await;
    tracing::info!("stopped");
    served.context("the HTTP server failed")
}

/// The app's routes: `/healthz` and the webhook receiver first, everything else through tenant
/// detection ([`tenant::detection`] around [`tenant::router`]).
pub fn app(settings: &Settings, sync: Arc<SyncEngine>, cache: TenantCache) -> Router {
    let tenant_routes = tenant::detection(settings, cache).layer(tenant::router());
    let mut app = Router::new().route("/healthz", get(|| async { "ok" }));
    match &settings.webhook_secret {
        Some(secret) => app = app.nest("/carcosa/webhooks", webhook_router(sync, vec![secret.clone()])),
        None => tracing::info!(
            every_secs = INCREMENTAL_EVERY.as_secs(),
            "CARCOSA_WEBHOOK_SECRET is not set: no webhook receiver; the app relies on the background sync"
        ),
    }
    app.fallback_service(tenant_routes).layer(
        TraceLayer::new_for_http()
            .make_span_with(|request: &Request<_>| {
                tracing::info_span!(
                    "request",
                    method = %request.method(),
                    path = request.uri().path(),
                    tenant = tracing::field::Empty,
                )
            })
            .on_response(DefaultOnResponse::new().level(tracing::Level::INFO)),
    )
}

/// The full sync at start. Only a refused key or a broken local table stop the app; with Carcosa
/// unreachable it serves what its table holds and lets the background loop catch up.
async fn initial_sync(sync: &SyncEngine) -> anyhow::Result<()> {
    match sync.full().await {
        Ok(report) => {
            tracing::info!(
                created = report.created,
                updated = report.updated,
                deleted = report.deleted,
                unchanged = report.unchanged,
                failed = report.failed,
                cursor = %report.cursor,
                duration_ms = report.duration.as_millis(),
                "initial full sync done"
            );
            Ok(())
        }
        Err(SyncError::Api(err)) if matches!(err.status(), Some(401 | 403)) => {
            Err(anyhow::Error::new(err).context("Carcosa refused CARCOSA_API_KEY"))
        }
        Err(SyncError::Api(err)) => {
            tracing::warn!(error = %err, "the initial sync failed; serving from the local table until the background sync succeeds");
            Ok(())
        }
        Err(err) => Err(anyhow::Error::new(err).context("the initial sync failed")),
    }
}
