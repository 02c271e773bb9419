// What synced applications report about themselves (included after `sql.rs`, with the same
// `Db`, `Backend` and helpers in scope).

use carcosa_core::sync_status::{SyncStatusIn, SyncStatusList, SyncStatusOut};

impl Backend {
    pub(crate) async fn report_sync_status(&self, project: ProjectId, status: &SyncStatusIn) -> Result<(), StoreError> {
        let result = sqlx::query(
            "INSERT INTO sync_status (project_id, instance, cursor, last_success_at, last_error, last_error_at, reported_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (project_id, instance) DO UPDATE SET cursor = excluded.cursor, last_success_at = excluded.last_success_at, \
             last_error = excluded.last_error, last_error_at = excluded.last_error_at, reported_at = excluded.reported_at",
        )
        .bind(project.to_string())
        .bind(&status.instance)
        .bind(status.cursor.seq())
        .bind(status.last_success_at)
        .bind(status.last_error.as_deref())
        .bind(status.last_error_at)
        .bind(now())
        .execute(self.writer())
        .await;
        match result {
            Err(sqlx::Error::Database(db)) if db.is_foreign_key_violation() => Err(StoreError::NotFound),
            other => other.map(drop).map_err(StoreError::from),
        }
    }

    pub(crate) async fn list_sync_status(&self, project: ProjectId) -> Result<SyncStatusList, StoreError> {
        let head = project_counters(self.reader(), project).await?.0;
        let rows = sqlx::query(
            "SELECT instance, cursor, last_success_at, last_error, last_error_at, reported_at FROM sync_status \
             WHERE project_id = $1 ORDER BY instance",
        )
        .bind(project.to_string())
        .fetch_all(self.reader())
        .await?;
        let data = rows
            .iter()
            .map(|row| {
                let cursor: i64 = row.try_get("cursor")?;
                Ok(SyncStatusOut {
                    instance: row.try_get("instance")?,
                    cursor: EventCursor::after_seq(cursor),
                    lag_events: (head - cursor).max(0),
                    last_success_at: row.try_get("last_success_at")?,
                    last_error: row.try_get("last_error")?,
                    last_error_at: row.try_get("last_error_at")?,
                    reported_at: row.try_get("reported_at")?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
        Ok(SyncStatusList { data, head: EventCursor::after_seq(head) })
    }
}
