//! The local store on PostgreSQL.

use sqlx::postgres::PgPoolOptions;
use sqlx::{Pool, Postgres};

use super::TableMapping;

type Db = Postgres;
type Backend = PgLocal;
const TYPES: ColumnTypes = ColumnTypes {
    key: "BIGSERIAL PRIMARY KEY",
    text: "TEXT",
    integer: "BIGINT",
    json: "JSONB",
    timestamp: "TIMESTAMPTZ",
};

/// The app's tenant table in a PostgreSQL database.
#[derive(Debug, Clone)]
pub struct PgLocal {
    pool: Pool<Postgres>,
    mapping: TableMapping,
    policy: DeletionPolicy,
}

impl PgLocal {
    /// Connects to the database.
    pub async fn connect(
        url: &str,
        mapping: TableMapping,
        policy: DeletionPolicy,
    ) -> Result<Self, sqlx::Error> {
        let pool = PgPoolOptions::new().max_connections(4).connect(url).await?;
        Ok(Self { pool, mapping, policy })
    }
}

/// The columns `table` has (in the current schema); empty if it does not exist.
async fn existing_columns(
    tx: &mut sqlx::Transaction<'_, Db>,
    table: &str,
) -> Result<HashSet<String>, sqlx::Error> {
    use sqlx::Row;
    let rows = sqlx::query(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1",
    )
    .bind(table)
    .fetch_all(&mut **tx)
    .await?;
    rows.iter().map(|r| r.try_get::<String, _>(0)).collect()
}

/// The metadata goes in as text and is cast to the column's type by PostgreSQL (assignment casts
/// from `text` cover `jsonb`, `json` and `text` columns alike).
fn metadata_placeholder() -> (&'static str, &'static str) {
    ("CAST(", " AS jsonb)")
}

/// PostgreSQL numbers its placeholders: `?`, `?` become `$1`, `$2`.
fn sql(text: &str) -> std::borrow::Cow<'_, str> {
    let mut out = String::with_capacity(text.len() + 8);
    let mut n = 0;
    for c in text.chars() {
        if c == '?' {
            n += 1;
            out.push('$');
            out.push_str(&n.to_string());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// `ON CONFLICT … DO UPDATE`.
fn upsert(key: &[&str], update: &[&str]) -> String {
    super::on_conflict(key, update)
}

include!("sql.rs");
