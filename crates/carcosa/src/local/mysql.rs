//! The local store on MySQL or MariaDB.
//!
//! Sessions run with `ANSI_QUOTES` (double quotes name identifiers, as in the shared SQL) and
//! `PIPES_AS_CONCAT` (`||` joins strings).

use sqlx::mysql::{MySqlConnectOptions, MySqlPoolOptions};
use sqlx::{Executor, MySql, Pool};

use super::TableMapping;

type Db = MySql;
type Backend = MySqlLocal;
// Indexed text needs a length in MySQL; tenant ids, slugs and names all fit in 255.
const TYPES: ColumnTypes = ColumnTypes {
    key: "BIGINT AUTO_INCREMENT PRIMARY KEY",
    text: "VARCHAR(255)",
    integer: "BIGINT",
    json: "JSON",
    timestamp: "DATETIME(6)",
};

/// The app's tenant table in a MySQL or MariaDB database.
#[derive(Debug, Clone)]
pub struct MySqlLocal {
    pool: Pool<MySql>,
    pub(super) mapping: TableMapping,
    pub(super) policy: super::DeletionPolicy,
}

impl MySqlLocal {
    /// Connects to the database.
    pub async fn connect(
        url: &str,
        mapping: TableMapping,
        policy: super::DeletionPolicy,
    ) -> Result<Self, sqlx::Error> {
        let url = url.replacen("mariadb://", "mysql://", 1);
        let options: MySqlConnectOptions = url.parse()?;
        let pool = MySqlPoolOptions::new()
            .max_connections(4)
            .after_connect(|conn, _| {
                Box::pin(async move {
                    conn.execute("SET SESSION sql_mode = CONCAT(@@sql_mode, ',ANSI_QUOTES,PIPES_AS_CONCAT'), time_zone = '+00:00'")
                        .await?;
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        Ok(Self { pool, mapping, policy })
    }
}

/// The columns `table` has (in the current database); empty if it does not exist.
async fn existing_columns(
    tx: &mut sqlx::Transaction<'_, Db>,
    table: &str,
) -> Result<std::collections::HashMap<String, ExistingColumn>, sqlx::Error> {
    use sqlx::Row;
    let rows = sqlx::query(
        "SELECT CAST(column_name AS CHAR), CAST(is_nullable = 'NO' AS SIGNED), \
         CAST((column_default IS NOT NULL AND column_default <> 'NULL') OR extra LIKE '%auto_increment%' OR extra LIKE '%GENERATED%' AS SIGNED) \
         FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = ?",
    )
    .bind(table)
    .fetch_all(&mut **tx)
    .await?;
    rows.iter()
        .map(|r| {
            let not_null: i64 = r.try_get(1)?;
            let has_default: i64 = r.try_get(2)?;
            Ok((r.try_get(0)?, ExistingColumn { not_null: not_null != 0, has_default: has_default != 0 }))
        })
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
        "SELECT 1 FROM information_schema.statistics s WHERE s.table_schema = DATABASE() AND s.table_name = ? \
         AND s.column_name = ? AND s.seq_in_index = 1 AND (? = 0 OR (s.non_unique = 0 AND NOT EXISTS (SELECT 1 FROM information_schema.statistics o \
         WHERE o.table_schema = s.table_schema AND o.table_name = s.table_name AND o.index_name = s.index_name AND o.seq_in_index > 1)))",
    )
    .bind(table)
    .bind(column)
    .bind(unique)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(found.is_some())
}

/// JSON columns take the text as it is.
fn metadata_placeholder() -> (&'static str, &'static str) {
    ("", "")
}

/// A JSON column read as text.
fn json_text(column: &str) -> String {
    format!("CAST({column} AS CHAR)")
}

/// `metadata.domains` holds the bound domain.
fn domain_match(column: &str) -> String {
    format!("JSON_CONTAINS({column}, JSON_QUOTE(?), '$.domains')")
}

/// MySQL takes `?` placeholders as they are.
fn sql(text: &str) -> std::borrow::Cow<'_, str> {
    std::borrow::Cow::Borrowed(text)
}

/// `ON DUPLICATE KEY UPDATE col = VALUES(col), …`.
fn upsert(_key: &[&str], update: &[&str]) -> String {
    let set: Vec<String> = update.iter().map(|c| format!("\"{c}\" = VALUES(\"{c}\")")).collect();
    format!("ON DUPLICATE KEY UPDATE {}", set.join(", "))
}

include!("sql.rs");
