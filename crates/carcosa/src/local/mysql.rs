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
    mapping: TableMapping,
    policy: super::DeletionPolicy,
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
) -> Result<std::collections::HashSet<String>, sqlx::Error> {
    use sqlx::Row;
    let rows = sqlx::query("SELECT column_name FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = ?")
        .bind(table)
        .fetch_all(&mut **tx)
        .await?;
    rows.iter().map(|r| r.try_get::<String, _>(0)).collect()
}

/// JSON columns take the text as it is.
fn metadata_placeholder() -> (&'static str, &'static str) {
    ("", "")
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
