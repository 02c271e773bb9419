//! The PostgreSQL backend: one pool shared by reads and writes, any number of server replicas.

use sqlx::postgres::PgPoolOptions;
use sqlx::{Pool, Postgres};

use super::StoreOptions;

type Db = Postgres;
type Backend = PgStore;
const LIKE_CI: &str = "ILIKE";
/// Replicas claim concurrently: each skips the rows another is claiming.
const CLAIM_LOCK: &str = " FOR UPDATE SKIP LOCKED";
/// A row read in a write transaction before it is changed stays locked until the end.
const LOCK_ROW: &str = " FOR UPDATE";
/// Delivered at commit to every replica listening on the channel.
const NOTIFY_DELIVERIES: Option<&str> = Some("SELECT pg_notify('carcosa_deliveries', '')");
/// The channel replicas listen on for new deliveries.
pub const DELIVERY_CHANNEL: &str = "carcosa_deliveries";
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// The registry on PostgreSQL.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: Pool<Postgres>,
    wake: std::sync::Arc<tokio::sync::Notify>,
    gates: super::WriteGates,
}

impl PgStore {
    /// Connects to the database `url` names (`postgres://user@host/db`).
    pub async fn connect(url: &str, options: &StoreOptions) -> Result<Self, sqlx::Error> {
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections.max(2))
            .acquire_timeout(options.acquire_timeout)
            .connect(url)
            .await?;
        Ok(Self { pool, wake: std::sync::Arc::default(), gates: super::WriteGates::default() })
    }

    fn writer(&self) -> &Pool<Postgres> {
        &self.pool
    }

    fn reader(&self) -> &Pool<Postgres> {
        &self.pool
    }

    /// A write transaction that reads before it writes; its reads lock rows with `LOCK_ROW`.
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, Postgres>, sqlx::Error> {
        self.pool.begin().await
    }

    /// A listener for the delivery channel, on its own connection.
    pub async fn delivery_listener(&self) -> Result<sqlx::postgres::PgListener, sqlx::Error> {
        let mut listener = sqlx::postgres::PgListener::connect_with(&self.pool).await?;
        listener.listen(DELIVERY_CHANNEL).await?;
        Ok(listener)
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
    format!("to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24')")
}

/// SQL for the UTC day of a timestamp column, as `YYYY-MM-DD`.
fn day_of(column: &str) -> String {
    format!("to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD')")
}
