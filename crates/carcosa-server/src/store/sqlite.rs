//! The SQLite backend: one file, WAL mode, one writer connection and a pool of readers.
//!
//! SQLite allows one writer at a time; funnelling writes through a single pooled connection keeps
//! them from failing with `SQLITE_BUSY` inside the process, while readers proceed in parallel on
//! the WAL snapshot. `synchronous = FULL` makes every commit durable before it is acknowledged.
//! Other processes (the CLI) wait up to the busy timeout for the write lock.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Pool, Sqlite};

use super::StoreOptions;

type Db = Sqlite;
type Backend = SqliteStore;
const LIKE_CI: &str = "LIKE";
/// SQLite has one writer: a claim cannot race another, so no row locks are needed.
const CLAIM_LOCK: &str = "";
/// A write transaction holds the database's write lock from its start (`begin_write`).
const LOCK_ROW: &str = "";
/// No other process to wake; the in-process notification suffices.
const NOTIFY_DELIVERIES: Option<&str> = None;
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// The registry on an embedded SQLite database.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    writer: Pool<Sqlite>,
    reader: Pool<Sqlite>,
    wake: std::sync::Arc<tokio::sync::Notify>,
    gates: super::WriteGates,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file `url` names, e.g. `sqlite://carcosa.db`.
    pub async fn connect(url: &str, options: &StoreOptions) -> Result<Self, sqlx::Error> {
        let connect = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(options.acquire_timeout)
            .connect_with(connect.clone())
            .await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .acquire_timeout(options.acquire_timeout)
            .connect_with(connect.read_only(true))
            .await?;
        Ok(Self { writer, reader, wake: std::sync::Arc::default(), gates: super::WriteGates::default() })
    }

    fn writer(&self) -> &Pool<Sqlite> {
        &self.writer
    }

    fn reader(&self) -> &Pool<Sqlite> {
        &self.reader
    }

    /// A write transaction that reads before it writes: `BEGIN IMMEDIATE` takes the write lock
    /// at once (waiting up to the busy timeout for another process), so what it reads cannot
    /// change before it writes.
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, Sqlite>, sqlx::Error> {
        self.writer.begin_with("BEGIN IMMEDIATE").await
    }
}

include!("sql.rs");
include!("webhooks.rs");
include!("sync_status.rs");
include!("audit.rs");
include!("operators.rs");
include!("dashboard.rs");
include!("gauges.rs");

/// SQL for the UTC hour of a timestamp column, as `YYYY-MM-DDTHH`.
fn hour_of(column: &str) -> String {
    format!("substr({column}, 1, 13)")
}

/// SQL for the UTC day of a timestamp column, as `YYYY-MM-DD`.
fn day_of(column: &str) -> String {
    format!("substr({column}, 1, 10)")
}
