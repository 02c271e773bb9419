//! `carcosa sync`: the sidecar that keeps an app's own tenant table in sync with Carcosa, for
//! apps in any language.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use carcosa::Client;
use carcosa::local::{DeletionPolicy, LocalStore, TableMapping};
use carcosa::sync::{Schedule, Sync, SyncError, SyncReport};

/// Options of `carcosa sync`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The Carcosa server.
    #[arg(long, env = "CARCOSA_API_URL", default_value = "http://127.0.0.1:8700")]
    api_url: String,
    /// An API key of the project (needs tenants:read and events:read).
    #[arg(long, env = "CARCOSA_API_KEY")]
    api_key: String,
    /// A TOML file naming the table and its columns (keys: table, carcosa_id, slug, name, status,
    /// plan, metadata, version, synced_at, deleted_at); without it, a `tenants` table with those
    /// column names.
    #[arg(long, value_name = "FILE")]
    mapping: Option<PathBuf>,
    /// What a deletion in Carcosa does locally: soft (status and deleted_at), archive (status
    /// only) or hard (delete the row).
    #[arg(long, default_value = "soft")]
    deletion: DeletionPolicy,
    /// The name this app reports its sync status under.
    #[arg(long, default_value = "carcosa-sync")]
    instance: String,
    /// Run one full sync (list every tenant, then reconcile deletions) and exit.
    #[arg(long, conflicts_with_all = ["once", "watch"])]
    full: bool,
    /// Run one sync (incremental from the stored cursor; full the first time) and exit.
    #[arg(long, conflicts_with = "watch")]
    once: bool,
    /// Keep syncing: incrementally every `--interval`, with backoff while the server is
    /// unreachable, until Ctrl-C or SIGTERM.
    #[arg(long)]
    watch: bool,
    /// Seconds between incremental runs with `--watch`.
    #[arg(long, default_value_t = 300)]
    interval: u64,
    /// With `--watch`, also receive webhooks on this address (register
    /// `http://<this address>/` as the endpoint's URL), for changes within milliseconds.
    #[arg(long, requires = "watch", requires = "webhook_secret")]
    listen: Option<std::net::SocketAddr>,
    /// The endpoint's signing secret (`whsec_…`); repeat during a rotation.
    #[arg(long = "webhook-secret", env = "CARCOSA_WEBHOOK_SECRET", value_delimiter = ',')]
    webhook_secret: Vec<String>,
}

/// Runs the sidecar.
pub async fn run(args: Args, database_url: Option<String>) -> anyhow::Result<()> {
    let database_url = database_url
        .context("carcosa sync needs --database-url: the app's database (sqlite://… or postgres://…)")?;
    let mapping = match &args.mapping {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the mapping file {}", path.display()))?;
            toml::from_str::<TableMapping>(&text)
                .with_context(|| format!("invalid mapping file {}", path.display()))?
        }
        None => TableMapping::default(),
    };
    let client = Client::new(&args.api_url, &args.api_key)?;
    let store = LocalStore::connect(&database_url, mapping, args.deletion)
        .await
        .context("cannot open the app's database")?;
    store.migrate().await.context("cannot prepare the app's tenant table")?;
    let sync = std::sync::Arc::new(Sync::new(client, store).reporting_as(args.instance.clone()));
    if args.watch {
        if let Some(listen) = args.listen {
            let secrets = args
                .webhook_secret
                .iter()
                .map(|s| carcosa_core::webhook::WebhookSecret::parse(s))
                .collect::<Result<Vec<_>, _>>()
                .context("--webhook-secret")?;
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .with_context(|| format!("cannot listen on {listen}"))?;
            eprintln!("receiving webhooks on http://{}/", listener.local_addr()?);
            let app = carcosa::receiver::webhook_router(sync.clone(), secrets);
            tokio::spawn(async move { axum::serve(listener, app).await });
        }
        return watch(&sync, Duration::from_secs(args.interval.max(1))).await;
    }
    let outcome = if args.full { sync.full().await } else { sync.incremental().await };
    let report = outcome.map_err(explain)?;
    super::print_json(&report_json(&report))?;
    sync.store().close().await;
    Ok(())
}

/// Syncs every `interval` (a full reconcile daily) until SIGINT or SIGTERM; while the server
/// is unreachable, retries with exponential backoff.
async fn watch(sync: &Sync, interval: Duration) -> anyhow::Result<()> {
    let stop = super::serve::shutdown_signal()?;
    let schedule = Schedule { incremental_every: interval, ..Schedule::default() };
    sync.run(schedule, stop).await;
    sync.store().close().await;
    Ok(())
}

/// A failure in words that say what to do.
fn explain(err: SyncError) -> anyhow::Error {
    match &err {
        SyncError::Api(api) if api.status() == Some(401) => {
            anyhow::anyhow!("the Carcosa server refused the API key: {api}")
        }
        SyncError::Api(api) if api.status() == Some(403) => {
            anyhow::anyhow!("the API key lacks a scope the sync needs (tenants:read and events:read): {api}")
        }
        SyncError::Api(carcosa::Error::Transport(_)) => {
            anyhow::anyhow!("cannot reach the Carcosa server: {err}")
        }
        _ => err.into(),
    }
}

fn report_json(report: &SyncReport) -> serde_json::Value {
    serde_json::json!({
        "created": report.created,
        "updated": report.updated,
        "deleted": report.deleted,
        "unchanged": report.unchanged,
        "failed": report.failed,
        "duration_ms": u64::try_from(report.duration.as_millis()).unwrap_or(u64::MAX),
        "cursor": report.cursor,
    })
}
