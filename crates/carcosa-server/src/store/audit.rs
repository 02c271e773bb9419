// The audit log's SQL, shared by both backends (included after `sql.rs`, with the same `Db`,
// `Backend`, `Tx` and helpers in scope).
//
// Every mutating method of the store calls `insert_audit` inside the transaction of its change,
// after the change itself: a rolled-back change leaves no entry, a committed one always has
// one. Nothing updates an entry (a trigger refuses it); retention deletes old ones.

// `AuditAction`, `AuditTarget`, `TargetType` and `AuditContext` are imported by `sql.rs`.
use carcosa_core::audit::{Actor, ActorFilter, ActorKind, AuditEntry, AuditPage};
use carcosa_core::{AuditCursor, AuditId};

use super::AuditFilter;

const AUDIT_COLUMNS: &str = "id, project_id, occurred_at, actor_kind, actor_id, action, target_type, target_id, before_state, after_state, request_id, address, user_agent";
/// How many expired entries one retention statement removes.
const AUDIT_PRUNE_BATCH: i64 = 5000;

impl Backend {
    pub(crate) async fn list_audit(
        &self,
        project: ProjectId,
        filter: &AuditFilter,
        before: Option<AuditCursor>,
        limit: u32,
    ) -> Result<AuditPage, StoreError> {
        let mut query = QueryBuilder::<Db>::new(format!("SELECT {AUDIT_COLUMNS} FROM audit_log WHERE project_id = "));
        query.push_bind(project.to_string());
        if let Some(ActorFilter { kind, id }) = &filter.actor {
            query.push(" AND actor_id = ").push_bind(id.clone());
            if let Some(kind) = kind {
                query.push(" AND actor_kind = ").push_bind(kind.as_str());
            }
        }
        if let Some(action) = filter.action {
            query.push(" AND action = ").push_bind(action.as_str());
        }
        if let Some(target) = &filter.target {
            query.push(" AND target_id = ").push_bind(target.clone());
        }
        if let Some(since) = filter.since {
            query.push(" AND occurred_at >= ").push_bind(since);
        }
        if let Some(until) = filter.until {
            query.push(" AND occurred_at < ").push_bind(until);
        }
        if let Some(cursor) = before {
            query.push(" AND id < ").push_bind(cursor.before.to_string());
        }
        query.push(" ORDER BY id DESC LIMIT ").push_bind(i64::from(limit) + 1);
        let rows = query.build().fetch_all(self.reader()).await?;
        let mut data = rows.iter().map(audit_from_row).collect::<Result<Vec<_>, _>>()?;
        let next_cursor = if data.len() > limit as usize {
            data.truncate(limit as usize);
            data.last().map(|e| AuditCursor { before: e.id }.encode())
        } else {
            None
        };
        Ok(AuditPage { data, next_cursor })
    }

    pub(crate) async fn prune_audit(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        // In batches, so a large backlog never holds the write lock (SQLite) for long.
        let mut removed = 0;
        loop {
            let done = sqlx::query(
                "DELETE FROM audit_log WHERE id IN (SELECT id FROM audit_log WHERE occurred_at < $1 LIMIT $2)",
            )
            .bind(before)
            .bind(AUDIT_PRUNE_BATCH)
            .execute(self.writer())
            .await?;
            removed += done.rows_affected();
            if done.rows_affected() < AUDIT_PRUNE_BATCH.unsigned_abs() {
                return Ok(removed);
            }
        }
    }
}

/// What changed, for [`insert_audit`]: the action, its target, and the target's public state
/// before and after (`None` before a creation, after a hard deletion).
struct Change {
    action: AuditAction,
    target: AuditTarget,
    before: Option<Value>,
    after: Option<Value>,
}

impl Change {
    fn new(action: AuditAction, target: AuditTarget) -> Self {
        Self { action, target, before: None, after: None }
    }

    fn before(mut self, state: &impl serde::Serialize) -> Result<Self, StoreError> {
        self.before = Some(snapshot(state)?);
        Ok(self)
    }

    fn after(mut self, state: &impl serde::Serialize) -> Result<Self, StoreError> {
        self.after = Some(snapshot(state)?);
        Ok(self)
    }
}

/// A public record as JSON. Deliveries drop their attempts: a change never touches them.
fn snapshot(state: &impl serde::Serialize) -> Result<Value, StoreError> {
    let mut value = serde_json::to_value(state).map_err(|e| StoreError::Database(decode_err(e)))?;
    if let Value::Object(map) = &mut value {
        map.remove("attempts");
    }
    Ok(value)
}

/// Records `change`, made by `audit`'s actor, in the caller's transaction.
async fn insert_audit(
    tx: &mut Tx,
    project: ProjectId,
    audit: &AuditContext,
    change: Change,
) -> Result<AuditId, StoreError> {
    let id = super::next_audit_id();
    sqlx::query(&format!(
        "INSERT INTO audit_log ({AUDIT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
    ))
    .bind(id.to_string())
    .bind(project.to_string())
    .bind(now())
    .bind(audit.actor.kind.as_str())
    .bind(&audit.actor.id)
    .bind(change.action.as_str())
    .bind(change.target.target_type.as_str())
    .bind(&change.target.id)
    .bind(change.before.map(Json))
    .bind(change.after.map(Json))
    .bind(&audit.request_id)
    .bind(audit.address.as_deref())
    .bind(audit.user_agent.as_deref())
    .execute(&mut **tx)
    .await?;
    Ok(id)
}

fn audit_from_row(row: &DbRow) -> Result<AuditEntry, sqlx::Error> {
    Ok(AuditEntry {
        id: parse_col(row, "id", AuditId::parse)?,
        project_id: parse_col(row, "project_id", ProjectId::parse)?,
        occurred_at: row.try_get("occurred_at")?,
        actor: Actor {
            kind: parse_col(row, "actor_kind", str::parse::<ActorKind>)?,
            id: row.try_get("actor_id")?,
        },
        action: parse_col(row, "action", str::parse::<AuditAction>)?,
        target: AuditTarget {
            target_type: parse_col(row, "target_type", str::parse::<TargetType>)?,
            id: row.try_get("target_id")?,
        },
        before: row.try_get::<Option<Json<Value>>, _>("before_state")?.map(|j| j.0),
        after: row.try_get::<Option<Json<Value>>, _>("after_state")?.map(|j| j.0),
        request_id: row.try_get("request_id")?,
        address: row.try_get("address")?,
        user_agent: row.try_get("user_agent")?,
    })
}
