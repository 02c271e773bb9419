//! Local stores: the app's own tenant table, in its own database, that the sync engine keeps
//! equal to Carcosa.
//!
//! A [`TableMapping`] names the table and its columns, so the sync fits a table the app already
//! has. [`LocalStore::migrate`] creates the table when it is missing (or adds the columns it
//! lacks), a unique index on the Carcosa id, and two bookkeeping tables of its own:
//! `carcosa_sync_state` (the feed cursor) and `carcosa_tombstones` (hard-deleted tenants, so a
//! stale event cannot bring one back). Rows the app created itself (Carcosa id `NULL`) are never
//! touched.
//!
//! The apply rule: a snapshot is written only if its `version` is newer than the row's, so
//! duplicates and out-of-order deliveries do no harm; a page of changes and the cursor after it
//! are stored in one local transaction.

#[cfg(feature = "mysql")]
mod mysql;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "sqlite")]
mod sqlite;

use std::collections::HashSet;

use carcosa_core::{EventCursor, Tenant};

#[cfg(feature = "mysql")]
pub use mysql::MySqlLocal;
#[cfg(feature = "postgres")]
pub use postgres::PgLocal;
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteLocal;

/// Where each tenant field goes in the app's table. In a mapping file (TOML) the keys are the
/// field names; absent keys keep their defaults.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TableMapping {
    /// The table.
    pub table: String,
    /// The Carcosa tenant id (`ten_…`); `NULL` marks the app's own rows.
    pub carcosa_id: String,
    /// The slug.
    pub slug: String,
    /// The display name.
    pub name: String,
    /// `active`, `suspended` or `deleted`.
    pub status: String,
    /// The plan.
    pub plan: String,
    /// The metadata (JSON).
    pub metadata: String,
    /// The tenant's version.
    pub version: String,
    /// When the row was last written by the sync.
    pub synced_at: String,
    /// When the tenant was deleted, if the table keeps it (soft delete).
    pub deleted_at: Option<String>,
}

impl Default for TableMapping {
    /// A `tenants` table with columns named after the fields.
    fn default() -> Self {
        Self {
            table: "tenants".into(),
            carcosa_id: "carcosa_id".into(),
            slug: "slug".into(),
            name: "name".into(),
            status: "status".into(),
            plan: "plan".into(),
            metadata: "metadata".into(),
            version: "version".into(),
            synced_at: "synced_at".into(),
            deleted_at: Some("deleted_at".into()),
        }
    }
}

impl std::str::FromStr for DeletionPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "soft" => Ok(Self::Soft),
            "archive" => Ok(Self::Archive),
            "hard" => Ok(Self::Hard),
            other => Err(format!("`{other}` is not a deletion policy (soft, archive or hard)")),
        }
    }
}

impl TableMapping {
    /// Every name in the mapping is a plain SQL identifier (letters, digits, `_`, not starting
    /// with a digit), so it can be quoted safely.
    pub fn validate(&self) -> Result<(), LocalError> {
        let names = [
            &self.table,
            &self.carcosa_id,
            &self.slug,
            &self.name,
            &self.status,
            &self.plan,
            &self.metadata,
            &self.version,
            &self.synced_at,
        ];
        for name in names.into_iter().chain(self.deleted_at.as_ref()) {
            let ok = !name.is_empty()
                && name.len() <= 63
                && !name.starts_with(|c: char| c.is_ascii_digit())
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !ok {
                return Err(LocalError::Mapping(format!("`{name}` is not a plain SQL identifier")));
            }
        }
        Ok(())
    }
}

/// What happens locally when a tenant is deleted in Carcosa.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeletionPolicy {
    /// Keep the row: status `deleted` and, if mapped, `deleted_at` set.
    #[default]
    Soft,
    /// Keep the row with status `deleted` only.
    Archive,
    /// Delete the row, and remember the tenant in `carcosa_tombstones`.
    Hard,
}

/// How a tenant's row changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// A row was inserted.
    Created,
    /// A row was changed.
    Updated,
    /// The tenant was deleted locally, by the policy.
    Deleted,
}

/// What applying a batch did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Applied {
    /// Rows inserted.
    pub created: u64,
    /// Rows changed.
    pub updated: u64,
    /// Tenants deleted locally (by the policy).
    pub deleted: u64,
    /// Snapshots not newer than what the table holds.
    pub unchanged: u64,
    /// Each change, with the tenant as written, in the order applied (for hooks).
    pub changes: Vec<(ChangeKind, carcosa_core::Tenant)>,
}

impl std::ops::AddAssign for Applied {
    fn add_assign(&mut self, other: Self) {
        self.created += other.created;
        self.updated += other.updated;
        self.deleted += other.deleted;
        self.unchanged += other.unchanged;
        self.changes.extend(other.changes);
    }
}

/// Failures of the local store.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    /// The mapping does not fit (bad names, a table without a needed column).
    #[error("the table mapping does not fit: {0}")]
    Mapping(String),
    /// A slug is held by a row the sync does not own (Carcosa id `NULL`).
    #[error("the slug `{slug}` of tenant {tenant} is taken by a local row that is not linked to Carcosa")]
    SlugHeldLocally {
        /// The slug.
        slug: String,
        /// The tenant that needs it.
        tenant: String,
    },
    /// The database failed.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// The app's tenant table, on whichever database its URL names.
#[derive(Debug, Clone)]
pub enum LocalStore {
    /// SQLite.
    #[cfg(feature = "sqlite")]
    Sqlite(SqliteLocal),
    /// PostgreSQL.
    #[cfg(feature = "postgres")]
    Postgres(PgLocal),
    /// MySQL or MariaDB.
    #[cfg(feature = "mysql")]
    MySql(MySqlLocal),
}

macro_rules! on_local {
    ($self:ident, $s:ident => $call:expr) => {
        match $self {
            #[cfg(feature = "sqlite")]
            LocalStore::Sqlite($s) => $call,
            #[cfg(feature = "postgres")]
            LocalStore::Postgres($s) => $call,
            #[cfg(feature = "mysql")]
            LocalStore::MySql($s) => $call,
        }
    };
}

impl LocalStore {
    /// Connects to `url` (`sqlite://…`, `postgres://…` or `mysql://…`) for a table mapped by
    /// `mapping`.
    pub async fn connect(
        url: &str,
        mapping: TableMapping,
        policy: DeletionPolicy,
    ) -> Result<Self, LocalError> {
        mapping.validate()?;
        #[cfg(feature = "sqlite")]
        if url.starts_with("sqlite:") {
            return Ok(Self::Sqlite(SqliteLocal::connect(url, mapping, policy).await?));
        }
        #[cfg(feature = "postgres")]
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Self::Postgres(PgLocal::connect(url, mapping, policy).await?));
        }
        #[cfg(feature = "mysql")]
        if url.starts_with("mysql://") || url.starts_with("mariadb://") {
            return Ok(Self::MySql(MySqlLocal::connect(url, mapping, policy).await?));
        }
        let _ = policy;
        Err(LocalError::Mapping(format!(
            "unsupported database URL (use sqlite://, postgres:// or mysql://): {}",
            redact(url)
        )))
    }

    /// Creates what is missing: the table (or its columns), the index on the Carcosa id, the
    /// bookkeeping tables.
    pub async fn migrate(&self) -> Result<(), LocalError> {
        on_local!(self, s => s.migrate().await)
    }

    /// The stored feed cursor; `None` before the first sync.
    pub async fn cursor(&self) -> Result<Option<EventCursor>, LocalError> {
        on_local!(self, s => s.cursor().await)
    }

    /// Applies snapshots by version, and stores `cursor` (if given) in the same transaction.
    pub async fn apply(
        &self,
        tenants: &[Tenant],
        cursor: Option<EventCursor>,
    ) -> Result<Applied, LocalError> {
        on_local!(self, s => s.apply(tenants, cursor).await)
    }

    /// Deletes, by the policy, every linked live row whose tenant is not in `keep`.
    pub async fn reconcile(&self, keep: &HashSet<String>) -> Result<u64, LocalError> {
        on_local!(self, s => s.reconcile(keep).await)
    }

    /// Closes the pool.
    pub async fn close(&self) {
        on_local!(self, s => s.close().await);
    }
}

/// `ON CONFLICT (key) DO UPDATE SET col = excluded.col, …` (SQLite and PostgreSQL).
#[cfg(any(feature = "sqlite", feature = "postgres"))]
fn on_conflict(key: &[&str], update: &[&str]) -> String {
    let key: Vec<String> = key.iter().map(|k| format!("\"{k}\"")).collect();
    let set: Vec<String> = update.iter().map(|c| format!("\"{c}\" = excluded.\"{c}\"")).collect();
    format!("ON CONFLICT ({}) DO UPDATE SET {}", key.join(", "), set.join(", "))
}

/// `url` without a password.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => match url[scheme + 3..at].split_once(':') {
            Some((user, _)) => format!("{}://{user}:***{}", &url[..scheme], &url[at..]),
            None => url.to_owned(),
        },
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mappings_take_plain_identifiers_only() {
        assert!(TableMapping::default().validate().is_ok());
        let bad = TableMapping { table: "tenants; DROP TABLE x".into(), ..TableMapping::default() };
        assert!(bad.validate().is_err());
        let quoted = TableMapping { slug: "sl\"ug".into(), ..TableMapping::default() };
        assert!(quoted.validate().is_err());
        let camel =
            TableMapping { table: "Tenant".into(), synced_at: "syncedAt".into(), ..TableMapping::default() };
        assert!(camel.validate().is_ok());
    }

    #[test]
    fn urls_are_redacted_in_errors() {
        assert_eq!(redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact("sqlite://x.db"), "sqlite://x.db");
    }
}
