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

use super::{Applied, ChangeKind, DeletionPolicy, LocalError};

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

impl Backend {
    pub(crate) async fn migrate(&self) -> Result<(), LocalError> {
        let m = &self.mapping;
        let t = &TYPES;
        let mut tx = self.pool.begin().await?;
        let existing = existing_columns(&mut tx, &m.table).await?;
        let mut wanted = vec![
            (m.carcosa_id.clone(), t.text),
            (m.slug.clone(), t.text),
            (m.name.clone(), t.text),
            (m.status.clone(), t.text),
            (m.plan.clone(), t.text),
            (m.metadata.clone(), t.json),
            (m.version.clone(), t.integer),
            (m.synced_at.clone(), t.timestamp),
        ];
        if let Some(deleted_at) = &m.deleted_at {
            wanted.push((deleted_at.clone(), t.timestamp));
        }
        if existing.is_empty() {
            let columns: Vec<String> = wanted.iter().map(|(name, ty)| format!("{} {ty}", q(name))).collect();
            sqlx::query(&sql(&format!("CREATE TABLE {} (\"id\" {}, {})", q(&m.table), t.key, columns.join(", "))))
                .execute(&mut *tx)
                .await?;
        } else {
            for (name, ty) in wanted.iter().filter(|(name, _)| !existing.contains(name)) {
                sqlx::query(&sql(&format!("ALTER TABLE {} ADD COLUMN {} {ty}", q(&m.table), q(name)))).execute(&mut *tx).await?;
            }
        }
        sqlx::query(&sql(&format!(
            "CREATE UNIQUE INDEX IF NOT EXISTS {} ON {} ({})",
            q(&format!("{}_carcosa_id_key", m.table)),
            q(&m.table),
            q(&m.carcosa_id)
        )))
        .execute(&mut *tx)
        .await?;
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
        tx.commit().await?;
        Ok(())
    }

    pub(crate) async fn cursor(&self) -> Result<Option<EventCursor>, LocalError> {
        let row = sqlx::query(&sql("SELECT \"cursor\" FROM carcosa_sync_state WHERE \"table_name\" = ?"))
            .bind(&self.mapping.table)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get::<i64, _>(0)).transpose()?.map(EventCursor::after_seq))
    }

    pub(crate) async fn apply(&self, tenants: &[Tenant], cursor: Option<EventCursor>) -> Result<Applied, LocalError> {
        let mut conn = self.pool.acquire().await?;
        let mut tx = conn.begin().await?;
        let mut applied = Applied::default();
        for tenant in tenants {
            applied += self.apply_one(&mut tx, tenant).await?;
        }
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

    async fn apply_one(&self, tx: &mut sqlx::Transaction<'_, Db>, tenant: &Tenant) -> Result<Applied, LocalError> {
        let m = &self.mapping;
        let id = tenant.id.to_string();
        let unchanged = Applied { unchanged: 1, ..Applied::default() };
        let tomb = sqlx::query(&sql("SELECT \"version\" FROM carcosa_tombstones WHERE \"table_name\" = ? AND \"carcosa_id\" = ?"))
            .bind(&m.table)
            .bind(&id)
            .fetch_optional(&mut **tx)
            .await?;
        if tomb.map(|r| r.try_get::<i64, _>(0)).transpose()?.is_some_and(|v| v >= tenant.version) {
            return Ok(unchanged);
        }
        let local = sqlx::query(&sql(&format!("SELECT {} FROM {} WHERE {} = ?", q(&m.version), q(&m.table), q(&m.carcosa_id))))
            .bind(&id)
            .fetch_optional(&mut **tx)
            .await?;
        let local_version = local.map(|r| r.try_get::<i64, _>(0)).transpose()?;
        if local_version.is_some_and(|v| v >= tenant.version) {
            return Ok(unchanged);
        }
        if tenant.status == TenantStatus::Deleted && self.policy == DeletionPolicy::Hard {
            sqlx::query(&sql(&format!("DELETE FROM {} WHERE {} = ?", q(&m.table), q(&m.carcosa_id)))).bind(&id).execute(&mut **tx).await?;
            remember_deleted(tx, &m.table, &id, tenant.version).await?;
            return Ok(if local_version.is_some() {
                Applied { deleted: 1, changes: vec![(ChangeKind::Deleted, tenant.clone())], ..Applied::default() }
            } else {
                unchanged
            });
        }
        if tenant.status != TenantStatus::Deleted {
            self.release_slug(tx, tenant).await?;
        }
        let deleted_at = match self.policy {
            DeletionPolicy::Soft => tenant.deleted_at,
            DeletionPolicy::Archive | DeletionPolicy::Hard => None,
        };
        let metadata = serde_json::to_string(&tenant.metadata).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
        let json = metadata_placeholder();
        let mut query = QueryBuilder::<Db>::new("");
        if local_version.is_some() {
            query.push(format!("UPDATE {} SET ", q(&m.table)));
            let mut set = query.separated(", ");
            set.push(format!("{} = ", q(&m.slug))).push_bind_unseparated(tenant.slug.as_str());
            set.push(format!("{} = ", q(&m.name))).push_bind_unseparated(&tenant.name);
            set.push(format!("{} = ", q(&m.status))).push_bind_unseparated(tenant.status.as_str());
            set.push(format!("{} = ", q(&m.plan))).push_bind_unseparated(tenant.plan.as_deref());
            set.push(format!("{} = ", q(&m.metadata))).push_unseparated(json.0).push_bind_unseparated(&metadata).push_unseparated(json.1);
            set.push(format!("{} = ", q(&m.version))).push_bind_unseparated(tenant.version);
            set.push(format!("{} = ", q(&m.synced_at))).push_bind_unseparated(Utc::now());
            if let Some(column) = &m.deleted_at {
                set.push(format!("{} = ", q(column))).push_bind_unseparated(deleted_at);
            }
            query.push(format!(" WHERE {} = ", q(&m.carcosa_id))).push_bind(&id);
        } else {
            let mut columns = vec![&m.carcosa_id, &m.slug, &m.name, &m.status, &m.plan, &m.metadata, &m.version, &m.synced_at];
            columns.extend(m.deleted_at.as_ref());
            let names: Vec<String> = columns.iter().map(|c| q(c)).collect();
            query.push(format!("INSERT INTO {} ({}) VALUES (", q(&m.table), names.join(", ")));
            let mut values = query.separated(", ");
            values.push_bind(&id);
            values.push_bind(tenant.slug.as_str());
            values.push_bind(&tenant.name);
            values.push_bind(tenant.status.as_str());
            values.push_bind(tenant.plan.as_deref());
            values.push(json.0).push_bind_unseparated(&metadata).push_unseparated(json.1);
            values.push_bind(tenant.version);
            values.push_bind(Utc::now());
            if m.deleted_at.is_some() {
                values.push_bind(deleted_at);
            }
            query.push(")");
        }
        query.build().execute(&mut **tx).await?;
        let (kind, mut applied) = match (local_version, tenant.status) {
            (_, TenantStatus::Deleted) => (ChangeKind::Deleted, Applied { deleted: 1, ..Applied::default() }),
            (Some(_), _) => (ChangeKind::Updated, Applied { updated: 1, ..Applied::default() }),
            (None, _) => (ChangeKind::Created, Applied { created: 1, ..Applied::default() }),
        };
        applied.changes.push((kind, tenant.clone()));
        Ok(applied)
    }

    /// Frees the tenant's slug if another linked row still holds it (two tenants swapped slugs,
    /// or a deleted tenant's slug was reused): that row gets `slug~carcosa_id` until its own
    /// newer state arrives. A row the app owns (not linked) is never renamed.
    async fn release_slug(&self, tx: &mut sqlx::Transaction<'_, Db>, tenant: &Tenant) -> Result<(), LocalError> {
        let m = &self.mapping;
        let id = tenant.id.to_string();
        let holders = sqlx::query(&sql(&format!(
            "SELECT {} FROM {} WHERE {} = ? AND ({} IS NULL OR {} <> ?)",
            q(&m.carcosa_id),
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
            sqlx::query(&sql(&format!("UPDATE {} SET {} = ? WHERE {} = ?", q(&m.table), q(&m.slug), q(&m.carcosa_id))))
                .bind(format!("{}~{other}", tenant.slug))
                .bind(&other)
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }

    pub(crate) async fn reconcile(&self, keep: &HashSet<String>) -> Result<u64, LocalError> {
        let m = &self.mapping;
        let rows = sqlx::query(&sql(&format!(
            "SELECT {}, {} FROM {} WHERE {} IS NOT NULL AND {} <> 'deleted'",
            q(&m.carcosa_id),
            q(&m.version),
            q(&m.table),
            q(&m.carcosa_id),
            q(&m.status)
        )))
        .fetch_all(&self.pool)
        .await?;
        let mut gone = Vec::new();
        for row in rows {
            let id: String = row.try_get(0)?;
            if !keep.contains(&id) {
                gone.push((id, row.try_get::<i64, _>(1)?));
            }
        }
        if gone.is_empty() {
            return Ok(0);
        }
        let mut tx = self.pool.begin().await?;
        let now = Utc::now();
        for (id, version) in &gone {
            match self.policy {
                DeletionPolicy::Hard => {
                    sqlx::query(&sql(&format!("DELETE FROM {} WHERE {} = ?", q(&m.table), q(&m.carcosa_id)))).bind(id).execute(&mut *tx).await?;
                    // The deletion's own version is unknown; anything not newer than the row
                    // held is stale.
                    remember_deleted(&mut tx, &m.table, id, version + 1).await?;
                }
                DeletionPolicy::Soft | DeletionPolicy::Archive => {
                    let mut query = QueryBuilder::<Db>::new(format!("UPDATE {} SET {} = 'deleted'", q(&m.table), q(&m.status)));
                    if let (Some(column), DeletionPolicy::Soft) = (&m.deleted_at, self.policy) {
                        query.push(format!(", {} = ", q(column))).push_bind(now);
                    }
                    query.push(format!(" WHERE {} = ", q(&m.carcosa_id))).push_bind(id);
                    query.build().execute(&mut *tx).await?;
                }
            }
        }
        tx.commit().await?;
        Ok(gone.len() as u64)
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
