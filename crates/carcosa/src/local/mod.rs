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

mod keys;
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
/// field names; absent keys keep their defaults, and `false` leaves an optional field unmapped
/// (`status = false` for a table without a status column).
///
/// A Prisma-managed table (`model Tenant`, camelCase columns, an `id` the app fills with a cuid,
/// an `@updatedAt` column) maps like this:
///
/// ```toml
/// table = "Tenant"
/// carcosa_id = "carcosaId"
/// status = false
/// version = false        # versions go to the `carcosa_versions` side table
/// deleted_at = false
/// synced_at = "lastSynced"
/// touch = ["updatedAt"]
/// default_plan = "free"  # `plan` is NOT NULL there; Carcosa tenants may have none
///
/// [primary_key]
/// column = "id"
/// fill = "cuid"
/// ```
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
    /// `active`, `suspended` or `deleted`. Without it, a deleted tenant is marked by
    /// `deleted_at` (soft delete) or removed (hard delete), and suspension is not recorded.
    #[serde(with = "optional_column")]
    pub status: Option<String>,
    /// The plan.
    #[serde(with = "optional_column")]
    pub plan: Option<String>,
    /// The metadata (JSON).
    #[serde(with = "optional_column")]
    pub metadata: Option<String>,
    /// The tenant's version. Without it, versions are kept in the `carcosa_versions` table.
    #[serde(with = "optional_column")]
    pub version: Option<String>,
    /// When the row was last written by the sync.
    #[serde(with = "optional_column")]
    pub synced_at: Option<String>,
    /// When the tenant was deleted, if the table keeps it (soft delete).
    #[serde(with = "optional_column")]
    pub deleted_at: Option<String>,
    /// The table's own primary key, and how a new row gets one.
    pub primary_key: PrimaryKey,
    /// Columns set to the current time whenever the sync writes a row (Prisma's `@updatedAt`).
    pub touch: Vec<String>,
    /// The plan written for a tenant that has none (for a `NOT NULL` plan column).
    pub default_plan: Option<String>,
}

impl Default for TableMapping {
    /// A `tenants` table with columns named after the fields and a key the database assigns.
    fn default() -> Self {
        Self {
            table: "tenants".into(),
            carcosa_id: "carcosa_id".into(),
            slug: "slug".into(),
            name: "name".into(),
            status: Some("status".into()),
            plan: Some("plan".into()),
            metadata: Some("metadata".into()),
            version: Some("version".into()),
            synced_at: Some("synced_at".into()),
            deleted_at: Some("deleted_at".into()),
            primary_key: PrimaryKey::default(),
            touch: Vec::new(),
            default_plan: None,
        }
    }
}

/// The local primary key column and how the sync fills it on insert.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PrimaryKey {
    /// The column (`id`).
    pub column: String,
    /// How a new row gets its key.
    pub fill: KeyFill,
}

impl Default for PrimaryKey {
    fn default() -> Self {
        Self { column: "id".into(), fill: KeyFill::Database }
    }
}

/// How the sync fills the local primary key of a row it inserts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyFill {
    /// The database assigns it (auto-increment, a default); the sync leaves it out.
    #[default]
    Database,
    /// A cuid (`c…`, 25 characters), as Prisma's `@default(cuid())`.
    Cuid,
    /// A random UUID (version 4).
    UuidV4,
    /// A time-ordered UUID (version 7).
    UuidV7,
    /// A ULID (26 characters, Crockford base 32).
    Ulid,
    /// The Carcosa tenant id itself (`ten_…`).
    CarcosaId,
}

impl std::str::FromStr for KeyFill {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "database" => Ok(Self::Database),
            "cuid" => Ok(Self::Cuid),
            "uuid_v4" | "uuid" => Ok(Self::UuidV4),
            "uuid_v7" => Ok(Self::UuidV7),
            "ulid" => Ok(Self::Ulid),
            "carcosa_id" => Ok(Self::CarcosaId),
            other => Err(format!(
                "`{other}` is not a key fill (database, cuid, uuid_v4, uuid_v7, ulid or carcosa_id)"
            )),
        }
    }
}

/// Serde for optional column names: a name, or `false` for none.
mod optional_column {
    use serde::{Deserialize, Deserializer, Serializer};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum NameOrFlag {
        Name(String),
        Flag(bool),
    }

    pub(super) fn serialize<S: Serializer>(value: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(name) => s.serialize_str(name),
            None => s.serialize_bool(false),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        match NameOrFlag::deserialize(d)? {
            NameOrFlag::Name(name) => Ok(Some(name)),
            NameOrFlag::Flag(false) => Ok(None),
            NameOrFlag::Flag(true) => {
                Err(serde::de::Error::custom("give a column name, or `false` to leave the field unmapped"))
            }
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
            "callback" => Ok(Self::Callback),
            other => Err(format!("`{other}` is not a deletion policy (soft, archive, hard or callback)")),
        }
    }
}

impl TableMapping {
    /// Every column the sync writes, in a fixed order, without duplicates allowed.
    fn written_columns(&self) -> Vec<&String> {
        let mut columns = vec![&self.carcosa_id, &self.slug, &self.name];
        columns.extend(
            [&self.status, &self.plan, &self.metadata, &self.version, &self.synced_at, &self.deleted_at]
                .into_iter()
                .flatten(),
        );
        columns.extend(&self.touch);
        if self.fills_key() {
            columns.push(&self.primary_key.column);
        }
        columns
    }

    /// Whether the sync writes the local key of rows it inserts (it has a fill, and is not the
    /// Carcosa id column, which is written anyway).
    fn fills_key(&self) -> bool {
        self.primary_key.fill != KeyFill::Database && self.primary_key.column != self.carcosa_id
    }

    /// Every name in the mapping is a plain SQL identifier (letters, digits, `_`, not starting
    /// with a digit), so it can be quoted safely, and no column is mapped twice.
    pub fn validate(&self) -> Result<(), LocalError> {
        let columns = self.written_columns();
        for name in
            std::iter::once(&self.table).chain(columns.iter().copied()).chain([&self.primary_key.column])
        {
            let ok = !name.is_empty()
                && name.len() <= 63
                && !name.starts_with(|c: char| c.is_ascii_digit())
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !ok {
                return Err(LocalError::Mapping(format!("`{name}` is not a plain SQL identifier")));
            }
        }
        let mut seen = HashSet::new();
        for name in columns {
            if !seen.insert(name) {
                return Err(LocalError::Mapping(format!("the column `{name}` is mapped twice")));
            }
        }
        Ok(())
    }

    /// Whether `policy` can be carried out with the columns this mapping has.
    pub fn check_policy(&self, policy: DeletionPolicy) -> Result<(), LocalError> {
        match policy {
            DeletionPolicy::Soft if self.status.is_none() && self.deleted_at.is_none() => Err(LocalError::Mapping(
                "soft delete needs a `status` or a `deleted_at` column; map one, or choose the hard or callback policy"
                    .into(),
            )),
            DeletionPolicy::Archive if self.status.is_none() => Err(LocalError::Mapping(
                "archive needs a `status` column; map one, or choose the hard or callback policy".into(),
            )),
            _ => Ok(()),
        }
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
    /// Leave the row to the app: the sync remembers the deletion in `carcosa_tombstones` and
    /// calls the `on_deleted` hook, which decides what happens (archive elsewhere, offboard,
    /// delete). The hook is then required.
    Callback,
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
    /// Tenants whose rows gave up their slug to another tenant (`slug~ten_…`) and whose version
    /// was reset: their current snapshots should be fetched and applied.
    pub set_aside: Vec<String>,
}

impl std::ops::AddAssign for Applied {
    fn add_assign(&mut self, other: Self) {
        self.created += other.created;
        self.updated += other.updated;
        self.deleted += other.deleted;
        self.unchanged += other.unchanged;
        self.changes.extend(other.changes);
        self.set_aside.extend(other.set_aside);
    }
}

/// What [`LocalStore::find`] looks a tenant up by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum By<'a> {
    /// The Carcosa id (`ten_…`).
    Id(&'a str),
    /// The slug.
    Slug(&'a str),
    /// A custom domain, in `metadata.domains`.
    Domain(&'a str),
}

/// A tenant as the local table holds it. Columns the mapping leaves out are `None`; without a
/// status column the status is `deleted` when `deleted_at` is set, `active` otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalTenant {
    /// The Carcosa id.
    pub carcosa_id: String,
    /// The slug (`slug~ten_…` while set aside for another tenant that took it).
    pub slug: String,
    /// The name.
    pub name: String,
    /// `active`, `suspended` or `deleted`.
    pub status: String,
    /// The plan.
    pub plan: Option<String>,
    /// The metadata, as JSON text.
    pub metadata: Option<String>,
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
        mapping.check_policy(policy)?;
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

    /// The linked rows of live tenants whose ids are not in `keep` (after a full listing: the
    /// tenants deleted in Carcosa meanwhile), each with the version the row holds.
    pub async fn orphans(&self, keep: &HashSet<String>) -> Result<Vec<(String, i64)>, LocalError> {
        on_local!(self, s => s.orphans(keep).await)
    }

    /// Deletes, by the policy, rows of tenants Carcosa does not know at all (so there is no
    /// deleted snapshot to apply); returns how many.
    pub async fn forget(&self, gone: &[(String, i64)]) -> Result<u64, LocalError> {
        on_local!(self, s => s.forget(gone).await)
    }

    /// The linked rows of the tenant `by` names, as the table holds them (for a slug: the live
    /// tenant and any deleted ones that kept it). What tenant detection looks up.
    pub async fn find(&self, by: By<'_>) -> Result<Vec<LocalTenant>, LocalError> {
        on_local!(self, s => s.find(by).await)
    }

    /// The mapping this store writes through.
    #[must_use]
    pub fn mapping(&self) -> &TableMapping {
        on_local!(self, s => &s.mapping)
    }

    /// The deletion policy.
    #[must_use]
    pub fn policy(&self) -> DeletionPolicy {
        on_local!(self, s => s.policy)
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
        let camel = TableMapping {
            table: "Tenant".into(),
            synced_at: Some("syncedAt".into()),
            ..TableMapping::default()
        };
        assert!(camel.validate().is_ok());
        let twice = TableMapping { name: "slug".into(), ..TableMapping::default() };
        assert!(twice.validate().unwrap_err().to_string().contains("mapped twice"));
        let keyed_by_carcosa_id = TableMapping {
            primary_key: PrimaryKey { column: "carcosa_id".into(), fill: KeyFill::CarcosaId },
            ..TableMapping::default()
        };
        assert!(keyed_by_carcosa_id.validate().is_ok(), "the Carcosa id may be the table's key");
    }

    #[test]
    fn a_prisma_mapping_reads_from_toml() {
        let mapping: TableMapping = toml::from_str(
            r#"
            table = "Tenant"
            carcosa_id = "carcosaId"
            status = false
            version = false
            deleted_at = false
            synced_at = "lastSynced"
            touch = ["updatedAt"]
            default_plan = "free"
            [primary_key]
            column = "id"
            fill = "cuid"
            "#,
        )
        .unwrap();
        assert_eq!(mapping.status, None);
        assert_eq!(mapping.plan.as_deref(), Some("plan"), "absent keys keep their defaults");
        assert_eq!(mapping.primary_key, PrimaryKey { column: "id".into(), fill: KeyFill::Cuid });
        assert!(mapping.validate().is_ok());
        assert!(mapping.check_policy(DeletionPolicy::Hard).is_ok());
        assert!(mapping.check_policy(DeletionPolicy::Callback).is_ok());
        let soft = mapping.check_policy(DeletionPolicy::Soft).unwrap_err().to_string();
        assert!(soft.contains("soft delete needs"), "{soft}");
        assert!(mapping.check_policy(DeletionPolicy::Archive).is_err());
        let round_trip: TableMapping = toml::from_str(&toml::to_string(&mapping).unwrap()).unwrap();
        assert_eq!(round_trip, mapping);
        let wrong = toml::from_str::<TableMapping>("status = true").unwrap_err().to_string();
        assert!(wrong.contains("give a column name"), "{wrong}");
        assert!(toml::from_str::<TableMapping>("colour = \"x\"").is_err(), "unknown keys are refused");
    }

    #[test]
    fn urls_are_redacted_in_errors() {
        assert_eq!(redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact("sqlite://x.db"), "sqlite://x.db");
    }
}
