//! `carcosa sync`: the sidecar that keeps an app's own tenant table in sync with Carcosa, for
//! apps in any language.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use carcosa::Client;
use carcosa::local::{DeletionPolicy, LocalStore, TableMapping};
use carcosa::sync::{Schedule, Sync, SyncError, SyncReport};
use serde::Deserialize;

/// Options of `carcosa sync`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The Carcosa server.
    #[arg(long, env = "CARCOSA_API_URL", default_value = "http://127.0.0.1:8700")]
    api_url: String,
    /// An API key of the project (needs tenants:read and events:read).
    #[arg(long, env = "CARCOSA_API_KEY")]
    api_key: String,
    /// A TOML file naming the table and its columns (see docs/sync.md; keys: table, carcosa_id,
    /// slug, name, status, plan, metadata, version, synced_at, deleted_at, touch, default_plan,
    /// [primary_key] column and fill); without it, a `tenants` table with those column names.
    #[arg(long, value_name = "FILE")]
    mapping: Option<PathBuf>,
    /// The table (overrides the mapping file).
    #[arg(long, value_name = "NAME")]
    table: Option<String>,
    /// A column for a field, as FIELD=COLUMN (overrides the mapping file); FIELD is carcosa_id,
    /// slug, name, status, plan, metadata, version, synced_at or deleted_at, and COLUMN `false`
    /// leaves an optional field unmapped. Repeat for several.
    #[arg(long = "column", value_name = "FIELD=COLUMN")]
    columns: Vec<String>,
    /// The table's own primary key column (default `id`).
    #[arg(long, value_name = "COLUMN")]
    key_column: Option<String>,
    /// How a new row gets its primary key: database (default), cuid, uuid_v4, uuid_v7, ulid or
    /// carcosa_id.
    #[arg(long, value_name = "FILL")]
    key_fill: Option<carcosa::local::KeyFill>,
    /// A column set to the current time on every write (Prisma's @updatedAt); repeat for several.
    #[arg(long, value_name = "COLUMN")]
    touch: Vec<String>,
    /// The plan written for tenants without one (for a NOT NULL plan column).
    #[arg(long, value_name = "PLAN")]
    default_plan: Option<String>,
    /// What a deletion in Carcosa does locally: soft (status and deleted_at), archive (status
    /// only), hard (delete the row) or callback (leave the row; run --on-deleted).
    #[arg(long, default_value = "soft")]
    deletion: DeletionPolicy,
    /// A shell command run after a tenant row is inserted; the tenant's JSON is on its standard
    /// input, and CARCOSA_TENANT_ID / CARCOSA_TENANT_SLUG / CARCOSA_CHANGE are set. A non-zero
    /// exit is retried, then reported.
    #[arg(long, value_name = "COMMAND")]
    on_created: Option<String>,
    /// A shell command run after a tenant row is changed (as --on-created).
    #[arg(long, value_name = "COMMAND")]
    on_updated: Option<String>,
    /// A shell command run after a tenant is deleted (as --on-created); with
    /// `--deletion callback` it is the deletion, and required.
    #[arg(long, value_name = "COMMAND", required_if_eq("deletion", "callback"))]
    on_deleted: Option<String>,
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
    let mapping = mapping(&args)?;
    let client = Client::new(&args.api_url, &args.api_key)?;
    let store = LocalStore::connect(&database_url, mapping, args.deletion)
        .await
        .context("cannot open the app's database")?;
    store.migrate().await.context("cannot prepare the app's tenant table")?;
    let mut sync = Sync::new(client, store).reporting_as(args.instance.clone());
    let bar = indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr());
    if !args.watch {
        // In --watch the logs are the display.
        sync = sync.on_progress(progress_display(bar.clone()));
    }
    for (command, change) in
        [(&args.on_created, "created"), (&args.on_updated, "updated"), (&args.on_deleted, "deleted")]
    {
        if let Some(command) = command {
            let hook = command_hook(command.clone(), change);
            sync = match change {
                "created" => sync.on_created(hook),
                "updated" => sync.on_updated(hook),
                _ => sync.on_deleted(hook),
            };
        }
    }
    let sync = std::sync::Arc::new(sync);
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
    bar.finish_and_clear();
    let report = outcome.map_err(explain)?;
    super::print_json(&report_json(&report))?;
    sync.store().close().await;
    Ok(())
}

/// The mapping: the file (if any), then the flags over it.
fn mapping(args: &Args) -> anyhow::Result<TableMapping> {
    let (mut table, source) = match &args.mapping {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the mapping file {}", path.display()))?;
            let table = toml::from_str::<toml::Table>(&text)
                .with_context(|| format!("invalid mapping file {}", path.display()))?;
            (table, format!("the mapping file {}", path.display()))
        }
        None => (toml::Table::new(), "the mapping".to_owned()),
    };
    let text = |s: &str| toml::Value::String(s.to_owned());
    if let Some(name) = &args.table {
        table.insert("table".into(), text(name));
    }
    for column in &args.columns {
        let (field, name) = column
            .split_once('=')
            .with_context(|| format!("--column {column}: write FIELD=COLUMN, e.g. carcosa_id=carcosaId"))?;
        let value = if name == "false" { toml::Value::Boolean(false) } else { text(name) };
        table.insert(field.trim().to_owned(), value);
    }
    if !args.touch.is_empty() {
        table.insert("touch".into(), toml::Value::Array(args.touch.iter().map(|c| text(c)).collect()));
    }
    if let Some(plan) = &args.default_plan {
        table.insert("default_plan".into(), text(plan));
    }
    if args.key_column.is_some() || args.key_fill.is_some() {
        let key = table.entry("primary_key").or_insert_with(|| toml::Value::Table(toml::Table::new()));
        let key = key.as_table_mut().context("primary_key must be a table: [primary_key]")?;
        if let Some(column) = &args.key_column {
            key.insert("column".into(), text(column));
        }
        if let Some(fill) = args.key_fill {
            key.insert("fill".into(), toml::Value::try_from(fill)?);
        }
    }
    TableMapping::deserialize(toml::Value::Table(table)).with_context(|| format!("invalid {source}"))
}

/// A hook that runs `command` through the shell with the tenant's JSON on its standard input.
fn command_hook(command: String, change: &'static str) -> carcosa::sync::Hook {
    std::sync::Arc::new(move |tenant: carcosa_core::Tenant| {
        let command = command.clone();
        Box::pin(async move {
            use tokio::io::AsyncWriteExt;
            let json = serde_json::to_vec(&tenant).map_err(|e| e.to_string())?;
            let mut child = tokio::process::Command::new("sh")
                .arg("-c")
                .arg(&command)
                .env("CARCOSA_TENANT_ID", tenant.id.to_string())
                .env("CARCOSA_TENANT_SLUG", tenant.slug.as_str())
                .env("CARCOSA_CHANGE", change)
                .stdin(std::process::Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .map_err(|e| format!("cannot run `{command}`: {e}"))?;
            if let Some(mut stdin) = child.stdin.take() {
                // A command that does not read its input is fine.
                let _ = stdin.write_all(&json).await;
            }
            let status = child.wait().await.map_err(|e| format!("`{command}`: {e}"))?;
            if status.success() { Ok(()) } else { Err(format!("`{command}` exited with {status}")) }
        })
    })
}

/// Shows how far a long sync is: a live counter on a terminal, a line per 10,000 otherwise.
fn progress_display(bar: indicatif::ProgressBar) -> carcosa::sync::ProgressFn {
    use std::io::IsTerminal;
    let terminal = std::io::stderr().is_terminal();
    if let Ok(style) = indicatif::ProgressStyle::with_template("{spinner} {msg} {pos} ({per_sec}, {elapsed})")
    {
        bar.set_style(style);
    }
    std::sync::Arc::new(move |progress| {
        let (what, n) = match progress {
            carcosa::sync::Progress::Listing { tenants } => ("tenants listed", tenants),
            carcosa::sync::Progress::Feed { events } => ("events applied", events),
        };
        if terminal {
            if bar.message() != what {
                bar.reset();
                bar.set_message(what);
            }
            bar.set_position(n);
        } else if n > 0 && n % 10_000 == 0 {
            eprintln!("{what}: {n}");
        }
    })
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
