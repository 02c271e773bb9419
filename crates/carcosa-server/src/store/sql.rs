// The registry's SQL, shared by both backends.
//
// This file is not a module: `sqlite.rs` and `postgres.rs` each `include!` it after defining
// `Db` (the sqlx database), `Backend` (their store type, with `writer()` and `reader()` pools and
// `begin_write()`), `LIKE_CI` (the case-insensitive LIKE operator), `LOCK_ROW` and `MIGRATOR`.
// Placeholders are written `$N`, which both SQLite and PostgreSQL accept. Every write transaction
// begins with a write, or with `begin_write()` (`BEGIN IMMEDIATE` on SQLite) when it must read
// first, so on SQLite it takes the write lock at once instead of failing to upgrade a read lock
// later; on PostgreSQL such reads lock the row they will change (`LOCK_ROW`).
//
// Every mutation also records an audit entry in its transaction (`insert_audit`, in `audit.rs`).

use std::collections::HashSet;

use carcosa_core::api::{ApiKeyOut, KeyRateLimit, NewTenant, ProjectOut, TenantChanges, TenantPage};
use carcosa_core::audit::{AuditAction, AuditTarget, TargetType};
use carcosa_core::slug::ReservedSlugs;
use carcosa_core::tenant::Metadata;
use carcosa_core::{
    ApiKey, Event, EventCursor, EventId, EventType, PageCursor, ProjectId, Scope, Slug, Tenant,
    TenantId, TenantStatus, merge_patch,
};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use sqlx::types::Json;
use sqlx::{QueryBuilder, Row, Transaction};

use super::{
    CreateOutcome, IdempotencyRequest, PruneReport, StoreError, StoredKey, StoredResponse, TenantFilter,
    TenantRef, WriteRules, Written, is_unique_violation, like_escape, now,
};
use crate::audit::AuditContext;

type DbRow = <Db as sqlx::Database>::Row;
type Tx = Transaction<'static, Db>;

const MIGRATE_ATTEMPTS: u64 = 5;
const TENANT_COLUMNS: &str =
    "id, slug, name, status, plan, metadata, version, created_at, updated_at, deleted_at";
const EVENT_COLUMNS: &str = "seq, id, event_type, occurred_at, tenant";
const KEY_COLUMNS: &str = "id, project_id, secret_hash, scopes, label, created_at, last_used_at, revoked_at, \
     rate_limit_per_second, rate_limit_burst";

impl Backend {
    /// Applies the embedded migrations that have not run yet.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        // Two processes starting on a fresh database (a server and a CLI command) may race to
        // apply the same migration; PostgreSQL serialises them with an advisory lock, SQLite
        // cannot. The loser's transaction rolls back, and on the next attempt it finds the
        // migration recorded and skips it. A genuine failure fails every attempt.
        let mut attempt = 1;
        loop {
            match MIGRATOR.run(self.writer()).await {
                Ok(()) => return Ok(()),
                Err(_) if attempt < MIGRATE_ATTEMPTS => {
                    attempt += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(100 * attempt)).await;
                }
                Err(err) => return Err(err.into()),
            }
        }
    }

    /// Whether the database answers and every embedded migration has been applied.
    pub async fn ready(&self) -> Result<bool, StoreError> {
        let applied = sqlx::query("SELECT version FROM _sqlx_migrations WHERE success = $1")
            .bind(true)
            .fetch_all(self.reader())
            .await;
        let applied: HashSet<i64> = match applied {
            Ok(rows) => rows.iter().map(|r| r.try_get::<i64, _>(0)).collect::<Result<_, _>>()?,
            // No migrations table yet: reachable, but not migrated.
            Err(sqlx::Error::Database(_)) => return Ok(false),
            Err(other) => return Err(other.into()),
        };
        Ok(MIGRATOR.iter().all(|m| applied.contains(&m.version)))
    }

    /// Closes every pooled connection.
    pub async fn close(&self) {
        self.writer().close().await;
        self.reader().close().await;
    }

    // ----- projects and keys -------------------------------------------------------------

    pub(crate) async fn create_project(
        &self,
        name: &str,
        audit: &AuditContext,
    ) -> Result<(ProjectOut, ApiKeyOut, ApiKey), StoreError> {
        let project = ProjectOut { id: ProjectId::generate(), name: name.to_owned(), created_at: now() };
        let mut tx = self.writer().begin().await?;
        sqlx::query("INSERT INTO projects (id, name, last_seq, pruned_seq, created_at) VALUES ($1, $2, 0, 0, $3)")
            .bind(project.id.to_string())
            .bind(&project.name)
            .bind(project.created_at)
            .execute(&mut *tx)
            .await?;
        let created = Change::new(AuditAction::ProjectCreate, AuditTarget::new(TargetType::Project, project.id));
        insert_audit(&mut tx, project.id, audit, created.after(&project)?).await?;
        let (out, key) = insert_key(&mut tx, project.id, &Scope::ALL, Some("default"), None, audit).await?;
        tx.commit().await?;
        Ok((project, out, key))
    }

    pub(crate) async fn list_projects(&self) -> Result<Vec<ProjectOut>, StoreError> {
        let rows = sqlx::query("SELECT id, name, created_at FROM projects ORDER BY created_at, id")
            .fetch_all(self.reader())
            .await?;
        rows.iter()
            .map(|row| {
                Ok(ProjectOut {
                    id: parse_col(row, "id", ProjectId::parse)?,
                    name: row.try_get("name")?,
                    created_at: row.try_get("created_at")?,
                })
            })
            .collect()
    }

    pub(crate) async fn create_key(
        &self,
        project: ProjectId,
        scopes: &[Scope],
        label: Option<&str>,
        rate_limit: Option<KeyRateLimit>,
        audit: &AuditContext,
    ) -> Result<(ApiKeyOut, ApiKey), StoreError> {
        let mut tx = self.writer().begin().await?;
        let inserted = insert_key(&mut tx, project, scopes, label, rate_limit, audit).await;
        let inserted = match inserted {
            // The foreign key refuses keys for projects that do not exist.
            Err(StoreError::Database(sqlx::Error::Database(db))) if db.is_foreign_key_violation() => {
                return Err(StoreError::NotFound);
            }
            other => other?,
        };
        tx.commit().await?;
        Ok(inserted)
    }

    pub(crate) async fn list_keys(&self, project: ProjectId) -> Result<Vec<ApiKeyOut>, StoreError> {
        let exists = sqlx::query("SELECT 1 FROM projects WHERE id = $1")
            .bind(project.to_string())
            .fetch_optional(self.reader())
            .await?;
        if exists.is_none() {
            return Err(StoreError::NotFound);
        }
        let rows = sqlx::query(&format!(
            "SELECT {KEY_COLUMNS} FROM api_keys WHERE project_id = $1 ORDER BY created_at, id"
        ))
        .bind(project.to_string())
        .fetch_all(self.reader())
        .await?;
        rows.iter().map(|row| Ok(key_from_row(row)?.key)).collect()
    }

    pub(crate) async fn revoke_key(&self, key_id: &str, audit: &AuditContext) -> Result<ApiKeyOut, StoreError> {
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(&format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE id = $1{LOCK_ROW}"))
            .bind(key_id)
            .fetch_optional(&mut *tx)
            .await?;
        let before = key_from_row(&row.ok_or(StoreError::NotFound)?)?.key;
        if before.revoked_at.is_some() {
            // Revoked already: nothing changes, nothing is recorded.
            return Ok(before);
        }
        let row = sqlx::query(&format!("UPDATE api_keys SET revoked_at = $2 WHERE id = $1 RETURNING {KEY_COLUMNS}"))
            .bind(key_id)
            .bind(now())
            .fetch_one(&mut *tx)
            .await?;
        let after = key_from_row(&row)?.key;
        let change = Change::new(AuditAction::KeyRevoke, AuditTarget::new(TargetType::Key, &after.id));
        insert_audit(&mut tx, after.project_id, audit, change.before(&before)?.after(&after)?).await?;
        tx.commit().await?;
        Ok(after)
    }

    pub(crate) async fn find_key(&self, key_id: &str) -> Result<Option<StoredKey>, StoreError> {
        let row = sqlx::query(&format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE id = $1"))
            .bind(key_id)
            .fetch_optional(self.reader())
            .await?;
        Ok(row.as_ref().map(key_from_row).transpose()?)
    }

    pub(crate) async fn touch_key(&self, key_id: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        sqlx::query("UPDATE api_keys SET last_used_at = $2 WHERE id = $1")
            .bind(key_id)
            .bind(at)
            .execute(self.writer())
            .await?;
        Ok(())
    }

    // ----- tenants -----------------------------------------------------------------------

    pub(crate) async fn create_tenant(
        &self,
        project: ProjectId,
        new: NewTenant,
        rules: &WriteRules,
        idempotency: Option<&IdempotencyRequest>,
        audit: &AuditContext,
    ) -> Result<CreateOutcome, StoreError> {
        let _turn = self.gates.enter(project).await;
        let mut tx = self.writer().begin().await?;
        let seq = next_seq(&mut tx, project).await?;
        // Checked under the project lock, so two requests with one key never both create.
        if let Some(request) = idempotency
            && let Some(recorded) = find_idempotent_in(&mut tx, project, request).await?
        {
            return Ok(CreateOutcome::Replayed(recorded));
        }
        let (tenant, event, deliveries, at) = insert_new_tenant(&mut tx, project, seq, new, rules, audit).await?;
        if let Some(request) = idempotency {
            let body = serde_json::to_string(&tenant).map_err(|e| StoreError::Database(decode_err(e)))?;
            sqlx::query("INSERT INTO idempotency_keys (project_id, key, request_hash, status, response, created_at) VALUES ($1, $2, $3, $4, $5, $6)")
                .bind(project.to_string())
                .bind(&request.key)
                .bind(&request.request_hash)
                .bind(201_i32)
                .bind(body)
                .bind(at)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        self.deliveries_written(deliveries);
        Ok(CreateOutcome::Created(Box::new(Written { tenant, event: Some(event) })))
    }

    pub(crate) async fn create_tenants(
        &self,
        project: ProjectId,
        tenants: Vec<NewTenant>,
        rules: &WriteRules,
        audit: &AuditContext,
    ) -> Result<Vec<Tenant>, StoreError> {
        let _turn = self.gates.enter(project).await;
        let mut tx = self.writer().begin().await?;
        let mut created = Vec::with_capacity(tenants.len());
        let mut all_deliveries = 0;
        for new in tenants {
            let seq = next_seq(&mut tx, project).await?;
            let (tenant, _, deliveries, _) = insert_new_tenant(&mut tx, project, seq, new, rules, audit).await?;
            created.push(tenant);
            all_deliveries += deliveries;
        }
        tx.commit().await?;
        self.deliveries_written(all_deliveries);
        Ok(created)
    }

    pub(crate) async fn get_tenant(
        &self,
        project: ProjectId,
        tenant: &TenantRef,
    ) -> Result<Tenant, StoreError> {
        let mut conn = self.reader().acquire().await?;
        load_tenant(&mut conn, project, tenant).await
    }

    pub(crate) async fn update_tenant(
        &self,
        project: ProjectId,
        tenant: &TenantRef,
        changes: TenantChanges,
        if_match: Option<i64>,
        rules: &WriteRules,
        audit: &AuditContext,
    ) -> Result<Written, StoreError> {
        let _turn = self.gates.enter(project).await;
        let mut tx = self.writer().begin().await?;
        let seq = next_seq(&mut tx, project).await?;
        let current = load_tenant(&mut tx, project, tenant).await?;
        check_version(&current, if_match)?;
        if current.status == TenantStatus::Deleted {
            return Err(StoreError::TenantDeleted);
        }
        let mut next = current.clone();
        if let Some(name) = changes.name {
            next.name = name.as_str().to_owned();
        }
        if let Some(slug) = changes.slug
            && slug != current.slug
        {
            if rules.reserved.contains(&slug) {
                return Err(StoreError::SlugReserved(slug));
            }
            if slug_owner(&mut tx, project, &slug).await?.is_some() {
                return Err(StoreError::SlugTaken(slug));
            }
            next.slug = slug;
        }
        if let Some(status) = changes.status {
            next.status = status;
        }
        if let Some(plan) = changes.plan {
            next.plan = plan.map(|p| p.as_str().to_owned());
        }
        if let Some(patch) = changes.metadata_patch {
            let mut doc = Value::Object(std::mem::take(&mut next.metadata));
            merge_patch::apply(&mut doc, &patch);
            let doc = if doc.is_null() { Value::Object(Map::new()) } else { doc };
            next.metadata = Metadata::parse(doc, rules.max_metadata_bytes)
                .map_err(|e| StoreError::InvalidMetadata(e.0))?
                .into_map();
        }
        if next == current {
            return Ok(Written { tenant: current, event: None });
        }
        self.commit_change(tx, project, seq, current, next, audit).await
    }

    pub(crate) async fn delete_tenant(
        &self,
        project: ProjectId,
        tenant: &TenantRef,
        if_match: Option<i64>,
        audit: &AuditContext,
    ) -> Result<Written, StoreError> {
        let _turn = self.gates.enter(project).await;
        let mut tx = self.writer().begin().await?;
        let seq = next_seq(&mut tx, project).await?;
        let current = load_tenant(&mut tx, project, tenant).await?;
        check_version(&current, if_match)?;
        if current.status == TenantStatus::Deleted {
            return Ok(Written { tenant: current, event: None });
        }
        let mut next = current.clone();
        next.status = TenantStatus::Deleted;
        self.commit_change(tx, project, seq, current, next, audit).await
    }

    /// Stamps `next` as the tenant's next version, saves it with its event (and deliveries) and
    /// its audit entry, and commits. A `next` with status `deleted` is a deletion, anything else
    /// an update.
    async fn commit_change(
        &self,
        mut tx: Tx,
        project: ProjectId,
        seq: i64,
        current: Tenant,
        mut next: Tenant,
        audit: &AuditContext,
    ) -> Result<Written, StoreError> {
        let at = now();
        next.version += 1;
        next.updated_at = at;
        let (event_type, action) = if next.status == TenantStatus::Deleted {
            next.deleted_at = Some(at);
            (EventType::TenantDeleted, AuditAction::TenantDelete)
        } else {
            (EventType::TenantUpdated, AuditAction::TenantUpdate)
        };
        save_tenant(&mut tx, project, &next).await?;
        let (event, deliveries) = insert_event(&mut tx, project, seq, event_type, &next, at).await?;
        let change = Change::new(action, AuditTarget::new(TargetType::Tenant, next.id));
        insert_audit(&mut tx, project, audit, change.before(&current)?.after(&next)?).await?;
        tx.commit().await?;
        self.deliveries_written(deliveries);
        Ok(Written { tenant: next, event: Some(event) })
    }

    pub(crate) async fn list_tenants(
        &self,
        project: ProjectId,
        filter: &TenantFilter,
        after: Option<PageCursor>,
        limit: u32,
    ) -> Result<TenantPage, StoreError> {
        // The feed position is read before the tenants: every event up to it is reflected in
        // the rows read next (or superseded by a newer version), so continuing the feed from
        // `as_of` misses nothing.
        let as_of = project_counters(self.reader(), project).await?.0;
        let mut query = QueryBuilder::<Db>::new(format!("SELECT {TENANT_COLUMNS} FROM tenants WHERE project_id = "));
        query.push_bind(project.to_string());
        match filter.status {
            Some(status) => {
                query.push(" AND status = ").push_bind(status.as_str());
            }
            None => {
                query.push(" AND status <> 'deleted'");
            }
        }
        if let Some(cursor) = after {
            query.push(" AND id > ").push_bind(cursor.after.to_string());
        }
        if let Some(q) = filter.q.as_deref().filter(|q| !q.is_empty()) {
            let pattern = format!("%{}%", like_escape(q));
            query.push(format!(" AND (name {LIKE_CI} ")).push_bind(pattern.clone());
            query.push(format!(" ESCAPE '\\' OR slug {LIKE_CI} ")).push_bind(pattern);
            query.push(" ESCAPE '\\')");
        }
        query.push(" ORDER BY id LIMIT ").push_bind(i64::from(limit) + 1);
        let rows = query.build().fetch_all(self.reader()).await?;
        let mut data = rows.iter().map(tenant_from_row).collect::<Result<Vec<_>, _>>()?;
        let next_cursor = if data.len() > limit as usize {
            data.truncate(limit as usize);
            data.last().map(|t| PageCursor { after: t.id }.encode())
        } else {
            None
        };
        Ok(TenantPage { data, next_cursor, as_of: EventCursor::after_seq(as_of) })
    }

    // ----- events ------------------------------------------------------------------------

    pub(crate) async fn list_events(
        &self,
        project: ProjectId,
        after: Option<EventCursor>,
        limit: u32,
    ) -> Result<(Vec<Event>, EventCursor, bool), StoreError> {
        let (last_seq, pruned_seq) = project_counters(self.reader(), project).await?;
        let oldest = EventCursor::after_seq(pruned_seq);
        let newest = EventCursor::after_seq(last_seq);
        let requested = after.unwrap_or(oldest);
        if requested < oldest {
            return Err(StoreError::CursorExpired { requested, oldest });
        }
        if requested > newest {
            return Err(StoreError::CursorAhead { requested, newest });
        }
        let rows = sqlx::query(&format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE project_id = $1 AND seq > $2 ORDER BY seq LIMIT $3"
        ))
        .bind(project.to_string())
        .bind(requested.seq())
        .bind(i64::from(limit) + 1)
        .fetch_all(self.reader())
        .await?;
        let mut events = rows.iter().map(event_from_row).collect::<Result<Vec<_>, _>>()?;
        // Retention may have run between reading the counters and the events: a page that does
        // not start right after the cursor has lost events the caller needs.
        let continuous = match events.first() {
            Some(first) => first.seq == requested.seq() + 1,
            None => requested >= newest,
        };
        if !continuous {
            let (_, pruned_seq) = project_counters(self.reader(), project).await?;
            return Err(StoreError::CursorExpired { requested, oldest: EventCursor::after_seq(pruned_seq) });
        }
        let has_more = events.len() > limit as usize;
        events.truncate(limit as usize);
        let next = events.last().map_or(requested, |e| EventCursor::after_seq(e.seq));
        Ok((events, next, has_more))
    }

    pub(crate) async fn prune(
        &self,
        events_before: DateTime<Utc>,
        keys_before: DateTime<Utc>,
    ) -> Result<PruneReport, StoreError> {
        let mut report = PruneReport::default();
        let expired = sqlx::query("SELECT project_id, MAX(seq) FROM events WHERE occurred_at < $1 GROUP BY project_id")
            .bind(events_before)
            .fetch_all(self.reader())
            .await?;
        for row in expired {
            let project: String = row.try_get(0)?;
            let through: i64 = row.try_get(1)?;
            let mut tx = self.writer().begin().await?;
            // Raise the low-water mark first (and in the same transaction), so no reader ever
            // sees the events gone while the mark still promises them.
            sqlx::query("UPDATE projects SET pruned_seq = CASE WHEN pruned_seq < $2 THEN $2 ELSE pruned_seq END WHERE id = $1")
                .bind(&project)
                .bind(through)
                .execute(&mut *tx)
                .await?;
            let deleted = sqlx::query("DELETE FROM events WHERE project_id = $1 AND seq <= $2")
                .bind(&project)
                .bind(through)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            report.events += deleted.rows_affected();
        }
        let keys = sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1")
            .bind(keys_before)
            .execute(self.writer())
            .await?;
        report.idempotency_keys = keys.rows_affected();
        report.deliveries = self.prune_deliveries(events_before).await?;
        Ok(report)
    }
}

// ----- helpers (one copy per backend) ------------------------------------------------------

fn decode_err(err: impl std::error::Error + Send + Sync + 'static) -> sqlx::Error {
    sqlx::Error::Decode(Box::new(err))
}

fn parse_col<T, E>(row: &DbRow, column: &str, parse: impl Fn(&str) -> Result<T, E>) -> Result<T, sqlx::Error>
where
    E: std::error::Error + Send + Sync + 'static,
{
    let text: String = row.try_get(column)?;
    parse(&text).map_err(decode_err)
}

fn tenant_from_row(row: &DbRow) -> Result<Tenant, sqlx::Error> {
    Ok(Tenant {
        id: parse_col(row, "id", TenantId::parse)?,
        slug: parse_col(row, "slug", Slug::parse)?,
        name: row.try_get("name")?,
        status: parse_col(row, "status", str::parse::<TenantStatus>)?,
        plan: row.try_get("plan")?,
        metadata: row.try_get::<Json<Map<String, Value>>, _>("metadata")?.0,
        version: row.try_get("version")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        deleted_at: row.try_get("deleted_at")?,
    })
}

fn event_from_row(row: &DbRow) -> Result<Event, sqlx::Error> {
    Ok(Event {
        id: parse_col(row, "id", EventId::parse)?,
        seq: row.try_get("seq")?,
        event_type: parse_col(row, "event_type", str::parse::<EventType>)?,
        occurred_at: row.try_get("occurred_at")?,
        tenant: row.try_get::<Json<Tenant>, _>("tenant")?.0,
    })
}

fn key_from_row(row: &DbRow) -> Result<StoredKey, sqlx::Error> {
    let scopes: String = row.try_get("scopes")?;
    let scopes = scopes
        .split_whitespace()
        .map(str::parse::<Scope>)
        .collect::<Result<Vec<_>, _>>()
        .map_err(decode_err)?;
    Ok(StoredKey {
        key: ApiKeyOut {
            id: row.try_get("id")?,
            project_id: parse_col(row, "project_id", ProjectId::parse)?,
            label: row.try_get("label")?,
            scopes,
            created_at: row.try_get("created_at")?,
            last_used_at: row.try_get("last_used_at")?,
            revoked_at: row.try_get("revoked_at")?,
            rate_limit: key_rate_limit(row)?,
        },
        secret_hash: row.try_get("secret_hash")?,
    })
}

/// The key's own rate limit: both columns set, or neither.
fn key_rate_limit(row: &DbRow) -> Result<Option<KeyRateLimit>, sqlx::Error> {
    let per_second: Option<i64> = row.try_get("rate_limit_per_second")?;
    let burst: Option<i64> = row.try_get("rate_limit_burst")?;
    let Some(per_second) = per_second else { return Ok(None) };
    let per_second = u32::try_from(per_second).map_err(decode_err)?;
    let burst = burst.map(u32::try_from).transpose().map_err(decode_err)?;
    Ok(Some(KeyRateLimit::new(per_second, burst)))
}

async fn insert_key(
    tx: &mut Tx,
    project: ProjectId,
    scopes: &[Scope],
    label: Option<&str>,
    rate_limit: Option<KeyRateLimit>,
    audit: &AuditContext,
) -> Result<(ApiKeyOut, ApiKey), StoreError> {
    let key = ApiKey::generate();
    let mut scopes = scopes.to_vec();
    scopes.sort();
    scopes.dedup();
    let out = ApiKeyOut {
        id: key.key_id().to_owned(),
        project_id: project,
        label: label.map(str::to_owned),
        scopes,
        created_at: now(),
        last_used_at: None,
        revoked_at: None,
        rate_limit,
    };
    let scope_text = out.scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" ");
    sqlx::query(
        "INSERT INTO api_keys (id, project_id, secret_hash, scopes, label, created_at, rate_limit_per_second, rate_limit_burst) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
        .bind(&out.id)
        .bind(project.to_string())
        .bind(key.secret_hash())
        .bind(scope_text)
        .bind(out.label.as_deref())
        .bind(out.created_at)
        .bind(rate_limit.map(|r| i64::from(r.per_second)))
        .bind(rate_limit.map(|r| i64::from(r.burst)))
        .execute(&mut **tx)
        .await?;
    // The public record only: never the secret or its hash.
    let created = Change::new(AuditAction::KeyCreate, AuditTarget::new(TargetType::Key, &out.id));
    insert_audit(tx, project, audit, created.after(&out)?).await?;
    Ok((out, key))
}

/// `(last_seq, pruned_seq)` of a project; `NotFound` when it does not exist.
async fn project_counters(pool: &Pool<Db>, project: ProjectId) -> Result<(i64, i64), StoreError> {
    let row = sqlx::query("SELECT last_seq, pruned_seq FROM projects WHERE id = $1")
        .bind(project.to_string())
        .fetch_optional(pool)
        .await?
        .ok_or(StoreError::NotFound)?;
    Ok((row.try_get(0)?, row.try_get(1)?))
}

/// Takes the project's next event number. The `UPDATE` holds the project row's lock until the
/// transaction ends, which serialises every tenant write of the project.
async fn next_seq(tx: &mut Tx, project: ProjectId) -> Result<i64, StoreError> {
    let row = sqlx::query("UPDATE projects SET last_seq = last_seq + 1 WHERE id = $1 RETURNING last_seq")
        .bind(project.to_string())
        .fetch_optional(&mut **tx)
        .await?
        .ok_or(StoreError::NotFound)?;
    Ok(row.try_get(0)?)
}

async fn find_idempotent_in(
    conn: &mut <Db as sqlx::Database>::Connection,
    project: ProjectId,
    request: &IdempotencyRequest,
) -> Result<Option<StoredResponse>, StoreError> {
    let row = sqlx::query("SELECT request_hash, status, response FROM idempotency_keys WHERE project_id = $1 AND key = $2")
        .bind(project.to_string())
        .bind(&request.key)
        .fetch_optional(&mut *conn)
        .await?;
    let Some(row) = row else { return Ok(None) };
    let hash: Vec<u8> = row.try_get(0)?;
    if hash != request.request_hash {
        return Err(StoreError::IdempotencyMismatch);
    }
    let status: i32 = row.try_get(1)?;
    Ok(Some(StoredResponse {
        status: u16::try_from(status).map_err(decode_err)?,
        body: row.try_get(2)?,
    }))
}

async fn load_tenant(
    conn: &mut <Db as sqlx::Database>::Connection,
    project: ProjectId,
    tenant: &TenantRef,
) -> Result<Tenant, StoreError> {
    let row = match tenant {
        TenantRef::Id(id) => {
            sqlx::query(&format!("SELECT {TENANT_COLUMNS} FROM tenants WHERE id = $1 AND project_id = $2"))
                .bind(id.to_string())
                .bind(project.to_string())
                .fetch_optional(&mut *conn)
                .await?
        }
        TenantRef::Slug(slug) => {
            sqlx::query(&format!(
                "SELECT {TENANT_COLUMNS} FROM tenants WHERE project_id = $1 AND slug = $2 AND status <> 'deleted'"
            ))
            .bind(project.to_string())
            .bind(slug.as_str())
            .fetch_optional(&mut *conn)
            .await?
        }
    };
    Ok(tenant_from_row(&row.ok_or(StoreError::NotFound)?)?)
}

async fn save_tenant(tx: &mut Tx, project: ProjectId, tenant: &Tenant) -> Result<(), StoreError> {
    let result = sqlx::query(
        "UPDATE tenants SET slug = $3, name = $4, status = $5, plan = $6, metadata = $7, version = $8, updated_at = $9, deleted_at = $10 WHERE id = $1 AND project_id = $2",
    )
    .bind(tenant.id.to_string())
    .bind(project.to_string())
    .bind(tenant.slug.as_str())
    .bind(&tenant.name)
    .bind(tenant.status.as_str())
    .bind(tenant.plan.as_deref())
    .bind(Json(&tenant.metadata))
    .bind(tenant.version)
    .bind(tenant.updated_at)
    .bind(tenant.deleted_at)
    .execute(&mut **tx)
    .await;
    match result {
        Err(err) if is_unique_violation(&err) => Err(StoreError::SlugTaken(tenant.slug.clone())),
        other => other.map(drop).map_err(StoreError::from),
    }
}

/// Writes the event, and one delivery per enabled webhook endpoint of the project whose filter
/// matches it, in the caller's transaction. Returns the event and how many deliveries it made.
async fn insert_event(
    tx: &mut Tx,
    project: ProjectId,
    seq: i64,
    event_type: EventType,
    tenant: &Tenant,
    at: DateTime<Utc>,
) -> Result<(Event, usize), StoreError> {
    let event = Event { id: EventId::generate(), seq, event_type, occurred_at: at, tenant: tenant.clone() };
    sqlx::query("INSERT INTO events (project_id, seq, id, event_type, tenant_id, occurred_at, tenant) VALUES ($1, $2, $3, $4, $5, $6, $7)")
        .bind(project.to_string())
        .bind(seq)
        .bind(event.id.to_string())
        .bind(event_type.as_str())
        .bind(tenant.id.to_string())
        .bind(at)
        .bind(Json(tenant))
        .execute(&mut **tx)
        .await?;
    let deliveries = fan_out(tx, project, &event).await?;
    Ok((event, deliveries))
}

fn check_version(current: &Tenant, if_match: Option<i64>) -> Result<(), StoreError> {
    match if_match {
        Some(expected) if expected != current.version => {
            Err(StoreError::VersionConflict { expected, current: current.version })
        }
        _ => Ok(()),
    }
}

/// The id of the live tenant holding `slug`, if any.
async fn slug_owner(tx: &mut Tx, project: ProjectId, slug: &Slug) -> Result<Option<String>, StoreError> {
    let row = sqlx::query("SELECT id FROM tenants WHERE project_id = $1 AND slug = $2 AND status <> 'deleted'")
        .bind(project.to_string())
        .bind(slug.as_str())
        .fetch_optional(&mut **tx)
        .await?;
    Ok(row.map(|r| r.try_get(0)).transpose()?)
}

/// `base`, or the first of `base-2`, `base-3`, … that is neither taken nor reserved.
async fn free_slug(
    tx: &mut Tx,
    project: ProjectId,
    base: Slug,
    reserved: &ReservedSlugs,
) -> Result<Slug, StoreError> {
    if !reserved.contains(&base) && slug_owner(tx, project, &base).await?.is_none() {
        return Ok(base);
    }
    // Every live slug that starts with `base-` (ids and slugs compare byte-wise: `.` follows `-`).
    let rows = sqlx::query("SELECT slug FROM tenants WHERE project_id = $1 AND status <> 'deleted' AND slug > $2 AND slug < $3")
        .bind(project.to_string())
        .bind(format!("{base}-"))
        .bind(format!("{base}."))
        .fetch_all(&mut **tx)
        .await?;
    let taken: HashSet<String> = rows.iter().map(|r| r.try_get(0)).collect::<Result<_, _>>()?;
    let prefix = format!("{base}-");
    for n in 2.. {
        let candidate = base.with_suffix(n);
        if reserved.contains(&candidate) || taken.contains(candidate.as_str()) {
            continue;
        }
        // A long base is shortened to make room for the suffix, so the prefix scan did not
        // cover it: check that candidate on its own.
        if candidate.as_str().starts_with(&prefix) || slug_owner(tx, project, &candidate).await?.is_none() {
            return Ok(candidate);
        }
    }
    unreachable!("the suffix loop only ends by returning")
}

/// Inserts a new tenant, its `tenant.created` event at `seq` and its audit entry, inside the
/// caller's transaction (which holds the project's write turn).
async fn insert_new_tenant(
    tx: &mut Tx,
    project: ProjectId,
    seq: i64,
    new: NewTenant,
    rules: &WriteRules,
    audit: &AuditContext,
) -> Result<(Tenant, Event, usize, DateTime<Utc>), StoreError> {
        let slug = match new.slug {
            Some(slug) => {
                if rules.reserved.contains(&slug) {
                    return Err(StoreError::SlugReserved(slug));
                }
                if slug_owner(&mut *tx, project, &slug).await?.is_some() {
                    return Err(StoreError::SlugTaken(slug));
                }
                slug
            }
            None => free_slug(&mut *tx, project, Slug::from_name(new.name.as_str()), &rules.reserved).await?,
        };
        let at = now();
        let tenant = Tenant {
            id: TenantId::generate(),
            slug,
            name: new.name.as_str().to_owned(),
            status: new.status,
            plan: new.plan.map(|p| p.as_str().to_owned()),
            metadata: new.metadata.into_map(),
            version: 1,
            created_at: at,
            updated_at: at,
            deleted_at: None,
        };
        let insert = sqlx::query(&format!(
            "INSERT INTO tenants (project_id, {TENANT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
        ))
        .bind(project.to_string())
        .bind(tenant.id.to_string())
        .bind(tenant.slug.as_str())
        .bind(&tenant.name)
        .bind(tenant.status.as_str())
        .bind(tenant.plan.as_deref())
        .bind(Json(&tenant.metadata))
        .bind(tenant.version)
        .bind(tenant.created_at)
        .bind(tenant.updated_at)
        .bind(tenant.deleted_at)
        .execute(&mut **tx)
        .await;
        match insert {
            Err(err) if is_unique_violation(&err) => return Err(StoreError::SlugTaken(tenant.slug)),
            other => other?,
        };
        let (event, deliveries) = insert_event(tx, project, seq, EventType::TenantCreated, &tenant, at).await?;
        let created = Change::new(AuditAction::TenantCreate, AuditTarget::new(TargetType::Tenant, tenant.id));
        insert_audit(tx, project, audit, created.after(&tenant)?).await?;
    Ok((tenant, event, deliveries, at))
}
