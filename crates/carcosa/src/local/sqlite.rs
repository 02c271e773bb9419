//! The local store on SQLite.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use sqlx::{Pool, Sqlite};

use super::TableMapping;

type Db = Sqlite;
type Backend = SqliteLocal;
const TYPES: ColumnTypes = ColumnTypes {
    key: "INTEGER PRIMARY KEY AUTOINCREMENT",
    text: "TEXT",
    integer: "INTEGER",
    json: "TEXT",
    timestamp: "TEXT",
};

/// The app's tenant table in a SQLite database.
#[derive(Debug, Clone)]
pub struct SqliteLocal {
    pool: Pool<Sqlite>,
    pub(super) mapping: TableMapping,
    pub(super) policy: DeletionPolicy,
}

impl SqliteLocal {
    /// Opens (creating if needed) the database file.
    pub async fn connect(
        url: &str,
        mapping: TableMapping,
        policy: DeletionPolicy,
    ) -> Result<Self, sqlx::Error> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(Duration::from_secs(5));
        // One connection: SQLite has one writer, and the sync writes in one transaction at a time.
        let pool = SqlitePoolOptions::new().max_connections(1).connect_with(options).await?;
        Ok(Self { pool, mapping, policy })
    }
}

/// The columns `table` has; empty if it does not exist.
async fn existing_columns(
    tx: &mut sqlx::Transaction<'_, Db>,
    table: &str,
) -> Result<std::collections::HashMap<String, ExistingColumn>, sqlx::Error> {
    use sqlx::Row;
    // An `INTEGER PRIMARY KEY` is the rowid: SQLite assigns it.
    let rows = sqlx::query(
        "SELECT name, \"notnull\" <> 0, dflt_value IS NOT NULL OR (pk = 1 AND upper(type) = 'INTEGER') FROM pragma_table_info($1)",
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
        "SELECT 1 FROM pragma_index_list($1) l WHERE l.partial = 0 \
         AND (SELECT name FROM pragma_index_info(l.name) WHERE seqno = 0) = $2 \
         AND (NOT $3 OR (l.\"unique\" = 1 AND (SELECT count(*) FROM pragma_index_info(l.name)) = 1))",
    )
    .bind(table)
    .bind(column)
    .bind(unique)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(found.is_some())
}

/// SQLite stores JSON as text: the value goes in as it is.
fn metadata_placeholder() -> (&'static str, &'static str) {
    ("", "")
}

/// A JSON column read as text (it is text).
fn json_text(column: &str) -> String {
    column.to_owned()
}

/// `metadata.domains` holds the bound domain.
fn domain_match(column: &str) -> String {
    format!(
        "json_valid({column}) AND EXISTS (SELECT 1 FROM json_each({column}, '$.domains') WHERE value = ?)"
    )
}

/// SQLite takes `?` placeholders as they are.
fn sql(text: &str) -> std::borrow::Cow<'_, str> {
    std::borrow::Cow::Borrowed(text)
}

/// `ON CONFLICT … DO UPDATE`.
fn upsert(key: &[&str], update: &[&str]) -> String {
    super::on_conflict(key, update)
}

include!("sql.rs");
