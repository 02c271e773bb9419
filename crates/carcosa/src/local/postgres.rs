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
    pub(super) mapping: TableMapping,
    pub(super) policy: DeletionPolicy,
}

impl PgLocal {
    /// Connects to the database.
    pub async fn connect(
        url: &str,
        mapping: TableMapping,
        policy: DeletionPolicy,
    ) -> Result<Self, sqlx::Error> {
        let pool = PgPoolOptions::new()
            .max_connections(4)
            .after_connect(|conn, _| {
                Box::pin(async move {
                    // Timestamps without a zone (Prisma's `TIMESTAMP(3)`) hold UTC.
                    sqlx::Executor::execute(conn, "SET TIME ZONE 'UTC'").await?;
                    Ok(())
                })
            })
            .connect(url)
            .await?;
        Ok(Self { pool, mapping, policy })
    }
}

/// The columns `table` has (in the current schema); empty if it does not exist.
async fn existing_columns(
    tx: &mut sqlx::Transaction<'_, Db>,
    table: &str,
) -> Result<std::collections::HashMap<String, ExistingColumn>, sqlx::Error> {
    use sqlx::Row;
    let rows = sqlx::query(
        "SELECT column_name, is_nullable = 'NO', column_default IS NOT NULL OR is_identity = 'YES' OR is_generated <> 'NEVER' \
         FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1",
    )
    .bind(table)
    .fetch_all(&mut **tx)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, ExistingColumn { not_null: r.try_get(1)?, has_default: r.try_get(2)? })))
        .collect()
}

/// Whether an index leads with `column`; with `unique`, a unique index on exactly `column`.
async fn has_index(
    tx: &mut sqlx::Transaction<'_, Db>,
    table: &str,
    column: &str,
    unique: bool,
) -> Result<bool, sqlx::Error> {
    let found = sqlx::query(
        "SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = i.indkey[0] \
         WHERE n.nspname = current_schema() AND c.relname = $1 AND a.attname = $2 \
         AND i.indpred IS NULL AND (NOT $3 OR (i.indisunique AND i.indnatts = 1))",
    )
    .bind(table)
    .bind(column)
    .bind(unique)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(found.is_some())
}

/// The metadata goes in as text and is cast to the column's type by PostgreSQL (assignment casts
/// from `text` cover `jsonb`, `json` and `text` columns alike).
fn metadata_placeholder() -> (&'static str, &'static str) {
    ("CAST(", " AS jsonb)")
}

/// A JSON column read as text.
fn json_text(column: &str) -> String {
    format!("CAST({column} AS TEXT)")
}

/// `metadata.domains` holds the bound domain.
fn domain_match(column: &str) -> String {
    format!("(CAST({column} AS jsonb) -> 'domains') @> to_jsonb(CAST(? AS TEXT))")
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
