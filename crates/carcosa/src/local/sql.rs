// The local store's SQL, shared by the backends: `sqlite.rs`, `postgres.rs` and `mysql.rs`
// include this file after defining `Db`, `Backend` (with `pool`, `mapping`, `policy`), `TYPES`
// (column types for a table created here), `existing_columns()`, `metadata_placeholder()`,
// `sql()` (turns the `?` placeholders written here into the backend's own) and `upsert()` (the
// backend's insert-or-update clause). Names come from a validated `TableMapping` and are always
// double-quoted (MySQL sessions run with `ANSI_QUOTES`).

use std::collections::HashSet;

use carcosa_core::{EventCursor, Tenant, TenantStatus};
use chrono::Utc;
use sqlx::{Acquire, QueryBuilder, Row};

use super::{Applied, ChangeKind, DeletionPolicy, KeyFill, LocalError};

/// A value the sync writes, by kind (each dialect binds or casts it its own way).
#[derive(Clone, Copy)]
enum Value<'a> {
    Text(Option<&'a str>),
    Json(&'a str),
    Integer(i64),
    Time(Option<chrono::DateTime<Utc>>),
}

/// Column types for tables created by `migrate`.
struct ColumnTypes {
    key: &'static str,
    text: &'static str,
    integer: &'static str,
    json: &'static str,
    timestamp: &'static str,
}

fn q(name: &str) -> String {
    format!("\"{name}\"")
}

/// A validated identifier as a string literal (it holds only letters, digits and `_`).
fn literal(name: &str) -> String {
    format!("'{name}'")
}

/// Ids or slugs per `IN (…)` list, and bound values per statement (under SQLite's 32,766).
const IN_LIST: usize = 500;
const MAX_BINDS: usize = 30_000;

/// `prefix` followed by `?, ?, …)` for `values`.
fn in_list<'a>(prefix: &str, values: &'a [String]) -> QueryBuilder<'a, Db> {
    let mut query = QueryBuilder::<Db>::new(prefix);
    let mut list = query.separated(", ");
    for value in values {
        list.push_bind(value.as_str());
    }
    query.push(")");
    query
}

/// What the table holds for a page's tenants.
#[derive(Default)]
struct Known {
    /// Tombstoned tenant → the deletion's version.
    tombs: std::collections::HashMap<String, i64>,
    /// Linked row's tenant → its version (0 when unknown).
    local: std::collections::HashMap<String, i64>,
    /// Slug → the tenant whose row holds it (`None`: one of the app's own rows).
    slugs: std::collections::HashMap<String, Option<String>>,
}

fn metadata_text(tenant: &Tenant) -> Result<String, LocalError> {
    Ok(serde_json::to_string(&tenant.metadata).map_err(|e| sqlx::Error::Encode(Box::new(e)))?)
}

/// Binds a value the way its kind needs (JSON is cast where the dialect wants it).
fn bind<'a>(query: &mut QueryBuilder<'a, Db>, value: Value<'_>) {
    match value {
        Value::Text(text) => {
            query.push_bind(text.map(str::to_owned));
        }
        Value::Json(text) => {
            let (before, after) = metadata_placeholder();
            query.push(before).push_bind(text.to_owned()).push(after);
        }
        Value::Integer(n) => {
            query.push_bind(n);
        }
        Value::Time(time) => {
            query.push_bind(time);
        }
    }
}

/// What the sync needs to know of a column the table already has.
#[derive(Debug, Clone, Copy)]
struct ExistingColumn {
    not_null: bool,
    /// A default, an identity or auto-increment, or a generated value.
    has_default: bool,
}

impl Backend {
    pub(crate) async fn migrate(&self) -> Result<(), LocalError> {
        let m = &self.mapping;
        let t = &TYPES;
        let mut tx = self.pool.begin().await?;
        let existing = existing_columns(&mut tx, &m.table).await?;
        let mut wanted = vec![(&m.carcosa_id, t.text), (&m.slug, t.text), (&m.name, t.text)];
        for (column, ty) in [
            (&m.status, t.text),
            (&m.plan, t.text),
            (&m.metadata, t.json),
            (&m.version, t.integer),
            (&m.synced_at, t.timestamp),
            (&m.deleted_at, t.timestamp),
        ] {
            wanted.extend(column.as_ref().map(|c| (c, ty)));
        }
        wanted.extend(m.touch.iter().map(|c| (c, t.timestamp)));
        let key = &m.primary_key;
        let index_needed = if existing.is_empty() {
            let key_column = if key.column == m.carcosa_id {
                // The Carcosa id is the key: the column is declared once, as the key.
                wanted.retain(|(c, _)| **c != m.carcosa_id);
                format!("{} {} PRIMARY KEY", q(&key.column), t.text)
            } else if key.fill == KeyFill::Database {
                format!("{} {}", q(&key.column), t.key)
            } else {
                format!("{} {} PRIMARY KEY", q(&key.column), t.text)
            };
            let columns: Vec<String> = wanted.iter().map(|(name, ty)| format!("{} {ty}", q(name))).collect();
            let create = format!("CREATE TABLE {} ({key_column}, {})", q(&m.table), columns.join(", "));
            sqlx::query(&sql(&create)).execute(&mut *tx).await?;
            key.column != m.carcosa_id
        } else {
            if m.fills_key() && !existing.contains_key(&key.column) {
                return Err(LocalError::Mapping(format!(
                    "the table `{}` has no primary key column `{}` to fill",
                    m.table, key.column
                )));
            }
            for (name, ty) in wanted.iter().filter(|(name, _)| !existing.contains_key(*name)) {
                tracing::info!(table = %m.table, column = %name, "adding a column the mapping needs");
                let alter = format!("ALTER TABLE {} ADD COLUMN {} {ty}", q(&m.table), q(name));
                sqlx::query(&sql(&alter)).execute(&mut *tx).await?;
            }
            self.check_required(&existing)?;
            !has_index(&mut tx, &m.table, &m.carcosa_id, true).await?
        };
        // Indexes only where nothing covers the column yet, so a schema that already has them
        // (Prisma's `@unique`) is left exactly as it is: the Carcosa id must be unique; slugs
        // are looked up (not unique: a deleted tenant's row may keep a slug now reused).
        if index_needed {
            tracing::info!(table = %m.table, column = %m.carcosa_id, "creating a unique index");
            let name = q(&format!("{}_carcosa_id_key", m.table));
            let create = format!("CREATE UNIQUE INDEX {name} ON {} ({})", q(&m.table), q(&m.carcosa_id));
            sqlx::query(&sql(&create)).execute(&mut *tx).await?;
        }
        if !has_index(&mut tx, &m.table, &m.slug, false).await? {
            tracing::info!(table = %m.table, column = %m.slug, "creating an index");
            let name = q(&format!("{}_slug_idx", m.table));
            let create = format!("CREATE INDEX {name} ON {} ({})", q(&m.table), q(&m.slug));
            sqlx::query(&sql(&create)).execute(&mut *tx).await?;
        }
        sqlx::query(&sql(&format!(
            "CREATE TABLE IF NOT EXISTS carcosa_sync_state (\"table_name\" {} PRIMARY KEY, \"cursor\" {} NOT NULL, \"updated_at\" {} NOT NULL)",
            t.text, t.integer, t.timestamp
        )))
        .execute(&mut *tx)
        .await?;
        sqlx::query(&sql(&format!(
            "CREATE TABLE IF NOT EXISTS carcosa_tombstones (\"table_name\" {text} NOT NULL, \"carcosa_id\" {text} NOT NULL, \"version\" {} NOT NULL, \"deleted_at\" {} NOT NULL, PRIMARY KEY (\"table_name\", \"carcosa_id\"))",
            t.integer,
            t.timestamp,
            text = t.text
        )))
        .execute(&mut *tx)
        .await?;
        if m.version.is_none() {
            sqlx::query(&sql(&format!(
                "CREATE TABLE IF NOT EXISTS carcosa_versions (\"table_name\" {text} NOT NULL, \"carcosa_id\" {text} NOT NULL, \"version\" {} NOT NULL, PRIMARY KEY (\"table_name\", \"carcosa_id\"))",
                t.integer,
                text = t.text
            )))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Every `NOT NULL` column without a default must be written by the sync, and the columns the
    /// sync may write `NULL` into must allow it: otherwise inserts would fail tenant by tenant.
    fn check_required(&self, existing: &std::collections::HashMap<String, ExistingColumn>) -> Result<(), LocalError> {
        let m = &self.mapping;
        let written = m.written_columns();
        let mut problems = Vec::new();
        let mut names: Vec<_> = existing.iter().collect();
        names.sort_by(|a, b| a.0.cmp(b.0));
        for (name, column) in names {
            if !column.not_null {
                continue;
            }
            if !column.has_default && !written.contains(&name) {
                if *name == m.primary_key.column {
                    problems.push(format!(
                        "`{name}` is the key and has no default: set primary_key.fill (cuid, uuid_v4, uuid_v7, ulid or carcosa_id)"
                    ));
                } else {
                    problems.push(format!("`{name}` is NOT NULL with no default and the mapping does not fill it"));
                }
            } else if m.plan.as_ref() == Some(name) && m.default_plan.is_none() {
                problems.push(format!(
                    "`{name}` (the plan) is NOT NULL but tenants may have no plan: set default_plan"
                ));
            } else if m.deleted_at.as_ref() == Some(name) {
                problems.push(format!("`{name}` (deleted-at) must allow NULL: live tenants have none"));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(LocalError::Mapping(format!("the table `{}` does not fit: {}", m.table, problems.join("; "))))
        }
    }

    pub(crate) async fn cursor(&self) -> Result<Option<EventCursor>, LocalError> {
        let row = sqlx::query(&sql("SELECT \"cursor\" FROM carcosa_sync_state WHERE \"table_name\" = ?"))
            .bind(&self.mapping.table)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get::<i64, _>(0)).transpose()?.map(EventCursor::after_seq))
    }

    /// Applies a page: what the table holds for the page's tenants is read in a few queries, rows
    /// are inserted or updated many per statement, and the rest (rows that go away, slugs that
    /// must be freed first) are written one by one, in the page's order.
    pub(crate) async fn apply(&self, tenants: &[Tenant], cursor: Option<EventCursor>) -> Result<Applied, LocalError> {
        let mut conn = self.pool.acquire().await?;
        let mut tx = conn.begin().await?;
        let mut applied = Applied::default();
        let mut known = self.prefetch(&mut tx, tenants).await?;
        let mut inserts: Vec<&Tenant> = Vec::new();
        let mut pending = HashSet::new();
        for tenant in tenants {
            let id = tenant.id.to_string();
            let stale = known.tombs.get(&id).is_some_and(|v| *v >= tenant.version)
                || known.local.get(&id).is_some_and(|v| *v >= tenant.version);
            if stale {
                applied.unchanged += 1;
                continue;
            }
            let deleted = tenant.status == TenantStatus::Deleted;
            let local = known.local.get(&id).copied();
            let slug_free = known.slugs.get(tenant.slug.as_str()).is_none_or(|holder| holder.as_deref() == Some(id.as_str()));
            let removes = deleted && matches!(self.policy, DeletionPolicy::Hard | DeletionPolicy::Callback);
            // Written in the next multi-row upsert, unless the row goes away, a slug must be
            // freed first, or the tenant is already in that statement.
            if !removes && slug_free && !pending.contains(&id) {
                let (kind, count) = match (deleted, local) {
                    (true, _) => (ChangeKind::Deleted, &mut applied.deleted),
                    (false, None) => (ChangeKind::Created, &mut applied.created),
                    (false, Some(_)) => (ChangeKind::Updated, &mut applied.updated),
                };
                *count += 1;
                applied.changes.push((kind, tenant.clone()));
                known.local.insert(id.clone(), tenant.version);
                if !deleted {
                    known.slugs.insert(tenant.slug.to_string(), Some(id.clone()));
                }
                pending.insert(id);
                inserts.push(tenant);
                continue;
            }
            pending.clear();
            self.insert_rows(&mut tx, &std::mem::take(&mut inserts)).await?;
            applied += self.write_one(&mut tx, tenant, local, slug_free).await?;
            if deleted && matches!(self.policy, DeletionPolicy::Hard | DeletionPolicy::Callback) {
                known.tombs.insert(id.clone(), tenant.version);
                if self.policy == DeletionPolicy::Hard {
                    known.local.remove(&id);
                }
            } else {
                known.local.insert(id.clone(), tenant.version);
            }
            if !deleted {
                known.slugs.insert(tenant.slug.to_string(), Some(id));
            }
        }
        self.insert_rows(&mut tx, &inserts).await?;
        if let Some(cursor) = cursor {
            sqlx::query(&sql(&format!(
                "INSERT INTO carcosa_sync_state (\"table_name\", \"cursor\", \"updated_at\") VALUES (?, ?, ?) {}",
                upsert(&["table_name"], &["cursor", "updated_at"])
            )))
            .bind(&self.mapping.table)
            .bind(cursor.seq())
            .bind(Utc::now())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(applied)
    }

    /// The tombstones, row versions and slug holders that concern `tenants`.
    async fn prefetch(&self, tx: &mut sqlx::Transaction<'_, Db>, tenants: &[Tenant]) -> Result<Known, LocalError> {
        let m = &self.mapping;
        let mut known = Known::default();
        let ids: Vec<String> = tenants.iter().map(|t| t.id.to_string()).collect::<HashSet<_>>().into_iter().collect();
        let slugs: Vec<String> = tenants.iter().map(|t| t.slug.to_string()).collect::<HashSet<_>>().into_iter().collect();
        let versions = match &m.version {
            Some(version) => format!("SELECT r.{c}, r.{} FROM {} r WHERE r.{c} IN (", q(version), q(&m.table), c = q(&m.carcosa_id)),
            None => format!(
                "SELECT r.{c}, v.\"version\" FROM {} r LEFT JOIN carcosa_versions v ON v.\"table_name\" = {} AND v.\"carcosa_id\" = r.{c} WHERE r.{c} IN (",
                q(&m.table),
                literal(&m.table),
                c = q(&m.carcosa_id)
            ),
        };
        let tombs = format!("SELECT \"carcosa_id\", \"version\" FROM carcosa_tombstones WHERE \"table_name\" = {} AND \"carcosa_id\" IN (", literal(&m.table));
        let holders = format!("SELECT {}, {} FROM {} WHERE {} IN (", q(&m.slug), q(&m.carcosa_id), q(&m.table), q(&m.slug));
        for chunk in ids.chunks(IN_LIST) {
            for row in in_list(&tombs, chunk).build().fetch_all(&mut **tx).await? {
                known.tombs.insert(row.try_get(0)?, row.try_get(1)?);
            }
            for row in in_list(&versions, chunk).build().fetch_all(&mut **tx).await? {
                known.local.insert(row.try_get(0)?, row.try_get::<Option<i64>, _>(1)?.unwrap_or(0));
            }
        }
        for chunk in slugs.chunks(IN_LIST) {
            for row in in_list(&holders, chunk).build().fetch_all(&mut **tx).await? {
                known.slugs.insert(row.try_get(0)?, row.try_get(1)?);
            }
        }
        Ok(known)
    }

    /// The columns a row is written with (besides the Carcosa id and the key), with values.
    fn row<'a>(&'a self, tenant: &'a Tenant, slug: &'a str, metadata: &'a str, now: chrono::DateTime<Utc>) -> Vec<(&'a String, Value<'a>)> {
        let m = &self.mapping;
        let deleted_at = match self.policy {
            DeletionPolicy::Soft => tenant.deleted_at,
            _ => None,
        };
        let plan = tenant.plan.as_deref().or(m.default_plan.as_deref());
        let mut columns = vec![(&m.slug, Value::Text(Some(slug))), (&m.name, Value::Text(Some(&tenant.name)))];
        let optional = [
            (&m.status, Value::Text(Some(tenant.status.as_str()))),
            (&m.plan, Value::Text(plan)),
            (&m.metadata, Value::Json(metadata)),
            (&m.version, Value::Integer(tenant.version)),
            (&m.synced_at, Value::Time(Some(now))),
            (&m.deleted_at, Value::Time(deleted_at)),
        ];
        for (column, value) in optional {
            columns.extend(column.as_ref().map(|c| (c, value)));
        }
        columns.extend(m.touch.iter().map(|c| (c, Value::Time(Some(now)))));
        columns
    }

    /// The local key a new row gets, when the sync fills it.
    fn new_key(&self, id: &str) -> Option<String> {
        if !self.mapping.fills_key() {
            return None;
        }
        super::keys::new_key(self.mapping.primary_key.fill, id)
    }

    /// Inserts or updates rows, many per statement (each tenant at most once per statement; the
    /// unique Carcosa id decides between insert and update, the local key stays as it was).
    async fn insert_rows(&self, tx: &mut sqlx::Transaction<'_, Db>, tenants: &[&Tenant]) -> Result<(), LocalError> {
        let m = &self.mapping;
        let now = Utc::now();
        let fills_key = m.fills_key();
        let width = m.written_columns().len() + 1;
        for chunk in tenants.chunks(MAX_BINDS / width) {
            let metadata: Vec<String> = chunk.iter().map(|t| metadata_text(t)).collect::<Result<_, _>>()?;
            let mut names = vec![q(&m.carcosa_id)];
            if fills_key {
                names.push(q(&m.primary_key.column));
            }
            names.extend(self.row(chunk[0], chunk[0].slug.as_str(), &metadata[0], now).iter().map(|(c, _)| q(c)));
            let mut query = QueryBuilder::<Db>::new(format!("INSERT INTO {} ({}) VALUES ", q(&m.table), names.join(", ")));
            for (i, (tenant, metadata)) in chunk.iter().zip(&metadata).enumerate() {
                let id = tenant.id.to_string();
                query.push(if i == 0 { "(" } else { ", (" });
                let key = self.new_key(&id);
                query.push_bind(id);
                if let Some(key) = key {
                    query.push(", ").push_bind(key);
                }
                for (_, value) in self.row(tenant, tenant.slug.as_str(), metadata, now) {
                    query.push(", ");
                    bind(&mut query, value);
                }
                query.push(")");
            }
            let updated: Vec<&str> = self.row(chunk[0], chunk[0].slug.as_str(), &metadata[0], now).iter().map(|(c, _)| c.as_str()).collect();
            query.push(format!(" {}", upsert(&[m.carcosa_id.as_str()], &updated)));
            query.build().execute(&mut **tx).await?;
            let versions: Vec<(String, i64)> = chunk.iter().map(|t| (t.id.to_string(), t.version)).collect();
            self.store_versions(tx, &versions).await?;
        }
        Ok(())
    }

    /// Records versions in `carcosa_versions` (tables without a version column), many per
    /// statement.
    async fn store_versions(&self, tx: &mut sqlx::Transaction<'_, Db>, versions: &[(String, i64)]) -> Result<(), LocalError> {
        if self.mapping.version.is_some() {
            return Ok(());
        }
        for chunk in versions.chunks(MAX_BINDS / 3) {
            let mut query = QueryBuilder::<Db>::new("INSERT INTO carcosa_versions (\"table_name\", \"carcosa_id\", \"version\") ");
            query.push_values(chunk, |mut row, (id, version)| {
                row.push_bind(self.mapping.table.clone()).push_bind(id.clone()).push_bind(*version);
            });
            query.push(format!(" {}", upsert(&["table_name", "carcosa_id"], &["version"])));
            query.build().execute(&mut **tx).await?;
        }
        Ok(())
    }

    /// Records a version in `carcosa_versions` (tables without a version column).
    async fn store_version(&self, tx: &mut sqlx::Transaction<'_, Db>, id: &str, version: Option<i64>) -> Result<(), LocalError> {
        if self.mapping.version.is_some() {
            return Ok(());
        }
        let query = match version {
            Some(_) => format!(
                "INSERT INTO carcosa_versions (\"table_name\", \"carcosa_id\", \"version\") VALUES (?, ?, ?) {}",
                upsert(&["table_name", "carcosa_id"], &["version"])
            ),
            None => "DELETE FROM carcosa_versions WHERE \"table_name\" = ? AND \"carcosa_id\" = ?".to_owned(),
        };
        let text = sql(&query);
        let mut query = sqlx::query(&text).bind(&self.mapping.table).bind(id);
        if let Some(version) = version {
            query = query.bind(version);
        }
        query.execute(&mut **tx).await?;
        Ok(())
    }

    /// Writes one tenant whose row (`local`: its version, `None` if there is none) is older.
    async fn write_one(
        &self,
        tx: &mut sqlx::Transaction<'_, Db>,
        tenant: &Tenant,
        local: Option<i64>,
        slug_free: bool,
    ) -> Result<Applied, LocalError> {
        let m = &self.mapping;
        let id = tenant.id.to_string();
        let deleted = tenant.status == TenantStatus::Deleted;
        if deleted && matches!(self.policy, DeletionPolicy::Hard | DeletionPolicy::Callback) {
            if self.policy == DeletionPolicy::Hard {
                sqlx::query(&sql(&format!("DELETE FROM {} WHERE {} = ?", q(&m.table), q(&m.carcosa_id)))).bind(&id).execute(&mut **tx).await?;
                self.store_version(tx, &id, None).await?;
            }
            remember_deleted(tx, &m.table, &id, tenant.version).await?;
            return Ok(if local.is_some() {
                Applied { deleted: 1, changes: vec![(ChangeKind::Deleted, tenant.clone())], ..Applied::default() }
            } else {
                Applied { unchanged: 1, ..Applied::default() }
            });
        }
        // A live tenant takes its slug back from whichever linked row holds it; a deleted one
        // keeps its row but must not take a slug someone else now has: it sets its own aside.
        let mut slug = tenant.slug.to_string();
        let mut set_aside = Vec::new();
        if !slug_free {
            if deleted {
                slug = format!("{}~{id}", tenant.slug);
            } else {
                set_aside = self.release_slug(tx, tenant).await?;
            }
        }
        let metadata = metadata_text(tenant)?;
        let columns = self.row(tenant, &slug, &metadata, Utc::now());
        let mut query = QueryBuilder::<Db>::new("");
        if local.is_some() {
            query.push(format!("UPDATE {} SET ", q(&m.table)));
            for (i, (column, value)) in columns.into_iter().enumerate() {
                query.push(format!("{}{} = ", if i == 0 { "" } else { ", " }, q(column)));
                bind(&mut query, value);
            }
            query.push(format!(" WHERE {} = ", q(&m.carcosa_id))).push_bind(id.clone());
        } else {
            let key = self.new_key(&id);
            let mut names = vec![q(&m.carcosa_id)];
            names.extend(key.as_ref().map(|_| q(&m.primary_key.column)));
            names.extend(columns.iter().map(|(c, _)| q(c)));
            query.push(format!("INSERT INTO {} ({}) VALUES (", q(&m.table), names.join(", ")));
            query.push_bind(id.clone());
            if let Some(key) = key {
                query.push(", ").push_bind(key);
            }
            for (_, value) in columns {
                query.push(", ");
                bind(&mut query, value);
            }
            query.push(")");
        }
        query.build().execute(&mut **tx).await?;
        self.store_version(tx, &id, Some(tenant.version)).await?;
        let (kind, mut applied) = match (local, deleted) {
            (_, true) => (ChangeKind::Deleted, Applied { deleted: 1, ..Applied::default() }),
            (Some(_), false) => (ChangeKind::Updated, Applied { updated: 1, ..Applied::default() }),
            (None, false) => (ChangeKind::Created, Applied { created: 1, ..Applied::default() }),
        };
        applied.changes.push((kind, tenant.clone()));
        applied.set_aside = set_aside;
        Ok(applied)
    }

    /// Frees the tenant's slug if another linked row still holds it (two tenants swapped slugs,
    /// or a deleted tenant's slug was reused): that row gets `slug~carcosa_id` until its own
    /// newer state arrives. A row the app owns (not linked) is never renamed.
    async fn release_slug(&self, tx: &mut sqlx::Transaction<'_, Db>, tenant: &Tenant) -> Result<Vec<String>, LocalError> {
        let m = &self.mapping;
        let mut set_aside = Vec::new();
        let id = tenant.id.to_string();
        let holders = sqlx::query(&sql(&format!(
            "SELECT {}, {} FROM {} WHERE {} = ? AND ({} IS NULL OR {} <> ?)",
            q(&m.carcosa_id),
            self.status_expression(),
            q(&m.table),
            q(&m.slug),
            q(&m.carcosa_id),
            q(&m.carcosa_id)
        )))
        .bind(tenant.slug.as_str())
        .bind(&id)
        .fetch_all(&mut **tx)
        .await?;
        for holder in holders {
            let Some(other) = holder.try_get::<Option<String>, _>(0)? else {
                return Err(LocalError::SlugHeldLocally { slug: tenant.slug.to_string(), tenant: id });
            };
            // A live tenant's version drops to 0 ("unknown"), so its current snapshot applies
            // whenever it is seen again: the sync fetches it at once (the slug may have been
            // taken by a stale snapshot, and then goes back). A deleted one never needs it back.
            let live = holder.try_get::<String, _>(1)? != "deleted";
            let version = match (&m.version, live) {
                (Some(version), true) => format!(", {} = 0", q(version)),
                _ => String::new(),
            };
            let update = format!("UPDATE {} SET {} = ?{version} WHERE {} = ?", q(&m.table), q(&m.slug), q(&m.carcosa_id));
            sqlx::query(&sql(&update)).bind(format!("{}~{other}", tenant.slug)).bind(&other).execute(&mut **tx).await?;
            if live {
                self.store_version(tx, &other, Some(0)).await?;
                set_aside.push(other);
            }
        }
        Ok(set_aside)
    }

    /// Linked rows of live tenants (by the table's own marks) whose ids are not in `keep`, and
    /// that no tombstone covers.
    pub(crate) async fn orphans(&self, keep: &HashSet<String>) -> Result<Vec<(String, i64)>, LocalError> {
        let m = &self.mapping;
        let live = match (&m.status, &m.deleted_at) {
            (Some(status), _) => format!(" AND r.{} <> 'deleted'", q(status)),
            (None, Some(deleted_at)) => format!(" AND r.{} IS NULL", q(deleted_at)),
            (None, None) => String::new(),
        };
        let version = match &m.version {
            Some(version) => format!("r.{}", q(version)),
            None => format!(
                "(SELECT v.\"version\" FROM carcosa_versions v WHERE v.\"table_name\" = ? AND v.\"carcosa_id\" = r.{})",
                q(&m.carcosa_id)
            ),
        };
        let text = format!(
            "SELECT r.{c}, {version} FROM {t} r WHERE r.{c} IS NOT NULL{live} AND NOT EXISTS (SELECT 1 FROM carcosa_tombstones g WHERE g.\"table_name\" = ? AND g.\"carcosa_id\" = r.{c})",
            c = q(&m.carcosa_id),
            t = q(&m.table),
        );
        let text = sql(&text);
        let mut query = sqlx::query(&text);
        if m.version.is_none() {
            query = query.bind(&m.table);
        }
        let rows = query.bind(&m.table).fetch_all(&self.pool).await?;
        let mut gone = Vec::new();
        for row in rows {
            let id: String = row.try_get(0)?;
            if !keep.contains(&id) {
                gone.push((id, row.try_get::<Option<i64>, _>(1)?.unwrap_or(0)));
            }
        }
        Ok(gone)
    }

    /// Deletes, by the policy, rows whose tenants Carcosa no longer knows at all (no snapshot to
    /// apply). Each `(id, version)` is the row's last known version.
    pub(crate) async fn forget(&self, gone: &[(String, i64)]) -> Result<u64, LocalError> {
        let m = &self.mapping;
        let mut tx = self.pool.begin().await?;
        let now = Utc::now();
        for (id, version) in gone {
            match self.policy {
                DeletionPolicy::Hard | DeletionPolicy::Callback => {
                    if self.policy == DeletionPolicy::Hard {
                        sqlx::query(&sql(&format!("DELETE FROM {} WHERE {} = ?", q(&m.table), q(&m.carcosa_id)))).bind(id).execute(&mut *tx).await?;
                        self.store_version(&mut tx, id, None).await?;
                    }
                    // The deletion's own version is unknown; anything not newer than the row
                    // held is stale.
                    remember_deleted(&mut tx, &m.table, id, version + 1).await?;
                }
                DeletionPolicy::Soft | DeletionPolicy::Archive => {
                    let mut query = QueryBuilder::<Db>::new(format!("UPDATE {} SET ", q(&m.table)));
                    let mut set = query.separated(", ");
                    if let Some(status) = &m.status {
                        set.push(format!("{} = 'deleted'", q(status)));
                    }
                    if let (Some(column), DeletionPolicy::Soft) = (&m.deleted_at, self.policy) {
                        set.push(format!("{} = ", q(column))).push_bind_unseparated(now);
                    }
                    query.push(format!(" WHERE {} = ", q(&m.carcosa_id))).push_bind(id);
                    query.build().execute(&mut *tx).await?;
                }
            }
        }
        tx.commit().await?;
        Ok(gone.len() as u64)
    }

    /// The linked rows matching `by` (at most a few: one per id; for a slug, a live tenant and
    /// deleted ones that kept it).
    /// The row's status as SQL: the status column, or what `deleted_at` says, or `active`.
    fn status_expression(&self) -> String {
        let m = &self.mapping;
        match (&m.status, &m.deleted_at) {
            (Some(status), _) => q(status),
            (None, Some(deleted_at)) => format!("CASE WHEN {} IS NULL THEN 'active' ELSE 'deleted' END", q(deleted_at)),
            (None, None) => "'active'".to_owned(),
        }
    }

    pub(crate) async fn find(&self, by: super::By<'_>) -> Result<Vec<super::LocalTenant>, LocalError> {
        let m = &self.mapping;
        let status = self.status_expression();
        let mut select = format!("SELECT {}, {}, {}, {status}", q(&m.carcosa_id), q(&m.slug), q(&m.name));
        for column in [&m.plan, &m.metadata].into_iter().flatten() {
            select.push_str(", ");
            select.push_str(&if Some(column) == m.metadata.as_ref() { json_text(&q(column)) } else { q(column) });
        }
        let (condition, value) = match by {
            super::By::Id(id) => (format!("{} = ?", q(&m.carcosa_id)), id),
            super::By::Slug(slug) => (format!("{} = ?", q(&m.slug)), slug),
            super::By::Domain(domain) => match &m.metadata {
                Some(metadata) => (domain_match(&q(metadata)), domain),
                None => return Ok(Vec::new()),
            },
        };
        let text = format!("{select} FROM {} WHERE {} IS NOT NULL AND {condition}", q(&m.table), q(&m.carcosa_id));
        let rows = sqlx::query(&sql(&text)).bind(value).fetch_all(&self.pool).await?;
        let mut found = Vec::with_capacity(rows.len());
        for row in rows {
            let mut next = 4;
            let mut take = |present: bool| -> Result<Option<String>, sqlx::Error> {
                if !present {
                    return Ok(None);
                }
                next += 1;
                row.try_get::<Option<String>, _>(next - 1)
            };
            let plan = take(m.plan.is_some())?;
            let metadata = take(m.metadata.is_some())?;
            found.push(super::LocalTenant {
                carcosa_id: row.try_get(0)?,
                slug: row.try_get(1)?,
                name: row.try_get(2)?,
                status: row.try_get(3)?,
                plan,
                metadata,
            });
        }
        Ok(found)
    }

    pub(crate) async fn close(&self) {
        self.pool.close().await;
    }
}

async fn remember_deleted(tx: &mut sqlx::Transaction<'_, Db>, table: &str, id: &str, version: i64) -> Result<(), LocalError> {
    sqlx::query(&sql(&format!(
        "INSERT INTO carcosa_tombstones (\"table_name\", \"carcosa_id\", \"version\", \"deleted_at\") VALUES (?, ?, ?, ?) {}",
        upsert(&["table_name", "carcosa_id"], &["version", "deleted_at"])
    )))
    .bind(table)
    .bind(id)
    .bind(version)
    .bind(Utc::now())
    .execute(&mut **tx)
    .await?;
    Ok(())
}
