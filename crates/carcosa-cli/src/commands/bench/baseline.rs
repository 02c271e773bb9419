//! The physical limits each scenario is compared with, measured in the same run (DESIGN §7):
//! a bare axum handler served on the same runtime and driven by the same client (the HTTP
//! limit), and a single-row `INSERT` + `COMMIT` into a scratch table of the store's own
//! database at the same concurrency (the durable-write limit).

use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use super::load::Op;

/// Serves `GET /hello` → `hello` on this runtime until the returned sender is dropped.
pub(super) async fn hello_server() -> anyhow::Result<(SocketAddr, tokio::sync::oneshot::Sender<()>)> {
    let app = axum::Router::new().route("/hello", axum::routing::get(|| async { "hello" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await
    });
    Ok((addr, stop))
}

/// A pool on the store's database, configured as the store configures its writes: for
/// SQLite, WAL, `synchronous = FULL` and one writer connection; for PostgreSQL, as many
/// connections as the server's pool.
#[derive(Debug, Clone)]
pub(super) enum RawPool {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

const CREATE: &str =
    "CREATE TABLE bench_raw_insert (id BIGINT NOT NULL, name TEXT NOT NULL, created_at TEXT NOT NULL)";

impl RawPool {
    /// Connects to `url` and creates the scratch table.
    pub async fn open(url: &str, max_connections: u32) -> anyhow::Result<Self> {
        let pool = if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)?
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(5));
            Self::Sqlite(SqlitePoolOptions::new().max_connections(1).connect_with(options).await?)
        } else {
            Self::Postgres(
                sqlx::postgres::PgPoolOptions::new().max_connections(max_connections).connect(url).await?,
            )
        };
        match &pool {
            Self::Sqlite(p) => sqlx::query(CREATE).execute(p).await.map(|_| ())?,
            Self::Postgres(p) => sqlx::query(CREATE).execute(p).await.map(|_| ())?,
        }
        Ok(pool)
    }

    /// Drops the scratch table and closes the pool.
    pub async fn close(self) -> anyhow::Result<()> {
        const DROP: &str = "DROP TABLE bench_raw_insert";
        match self {
            Self::Sqlite(p) => {
                sqlx::query(DROP).execute(&p).await?;
                p.close().await;
            }
            Self::Postgres(p) => {
                sqlx::query(DROP).execute(&p).await?;
                p.close().await;
            }
        }
        Ok(())
    }
}

/// One worker of the raw-insert baseline: `BEGIN; INSERT one row; COMMIT`.
#[derive(Debug)]
pub(super) struct RawInsert {
    pub pool: RawPool,
    pub worker: u64,
}

impl Op for RawInsert {
    async fn call(&mut self, i: u64) -> anyhow::Result<()> {
        let id = i64::try_from((self.worker << 40) | i)?;
        let name = format!("Raw {id}");
        let at = chrono::Utc::now().to_rfc3339();
        const INSERT_SQLITE: &str = "INSERT INTO bench_raw_insert (id, name, created_at) VALUES (?, ?, ?)";
        const INSERT_PG: &str = "INSERT INTO bench_raw_insert (id, name, created_at) VALUES ($1, $2, $3)";
        match &self.pool {
            RawPool::Sqlite(p) => {
                let mut tx = p.begin_with("BEGIN IMMEDIATE").await?;
                sqlx::query(INSERT_SQLITE).bind(id).bind(name).bind(at).execute(&mut *tx).await?;
                tx.commit().await?;
            }
            RawPool::Postgres(p) => {
                let mut tx = p.begin().await?;
                sqlx::query(INSERT_PG).bind(id).bind(name).bind(at).execute(&mut *tx).await?;
                tx.commit().await?;
            }
        }
        Ok(())
    }
}
