//! The PostgreSQL backend: one pool shared by reads and writes, any number of server replicas.

use sqlx::postgres::PgPoolOptions;
use sqlx::{Pool, Postgres};

use super::StoreOptions;

type Db = Postgres;
type Backend = PgStore;
const LIKE_CI: &str = "ILIKE";
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// The registry on PostgreSQL.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: Pool<Postgres>,
}

impl PgStore {
    /// Connects to the database `url` names (`postgres://user@host/db`).
    pub async fn connect(url: &str, options: &StoreOptions) -> Result<Self, sqlx::Error> {
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections.max(2))
            .acquire_timeout(options.acquire_timeout)
            .connect(url)
            .await?;
        Ok(Self { pool })
    }

    fn writer(&self) -> &Pool<Postgres> {
        &self.pool
    }

    fn reader(&self) -> &Pool<Postgres> {
        &self.pool
    }
}

include!("sql.rs");
