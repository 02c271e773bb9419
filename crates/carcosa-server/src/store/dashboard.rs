// What the dashboard reads and changes beyond the API's own operations: a project's overview
// figures and charts, one tenant's event history, and operators' roles in a project (shared by
// both backends; included after `sql.rs`, with the same `Db`, `Backend` and helpers in scope,
// and `hour_of` from the backend file).

use super::overview::{HourlyDeliveries, ProjectOverview};

impl Backend {
    pub(crate) async fn project_overview(
        &self,
        project: ProjectId,
        at: DateTime<Utc>,
        days: u32,
    ) -> Result<ProjectOverview, StoreError> {
        let pool = self.reader();
        let project_id = project.to_string();
        let mut overview = ProjectOverview::default();
        let rows = sqlx::query("SELECT status, COUNT(*) AS n FROM tenants WHERE project_id = $1 GROUP BY status")
            .bind(&project_id)
            .fetch_all(pool)
            .await?;
        for row in &rows {
            let status = parse_col(row, "status", str::parse::<TenantStatus>)?;
            overview.tenants.insert(status, row.try_get("n")?);
        }
        let day_ago = at - chrono::TimeDelta::hours(24);
        overview.events_24h = sqlx::query("SELECT COUNT(*) FROM events WHERE project_id = $1 AND occurred_at >= $2")
            .bind(&project_id)
            .bind(day_ago)
            .fetch_one(pool)
            .await?
            .try_get(0)?;

        // Deliveries made in the last 24 hours, by hour and outcome.
        let hour = hour_of("created_at");
        let rows = sqlx::query(&format!(
            "SELECT {hour} AS bucket, status, COUNT(*) AS n FROM webhook_deliveries \
             WHERE project_id = $1 AND created_at >= $2 GROUP BY {hour}, status"
        ))
        .bind(&project_id)
        .bind(day_ago)
        .fetch_all(pool)
        .await?;
        for row in &rows {
            let bucket: String = row.try_get("bucket")?;
            let status: String = row.try_get("status")?;
            let n: i64 = row.try_get("n")?;
            let entry = overview.deliveries.entry(bucket).or_insert_with(HourlyDeliveries::default);
            match status.as_str() {
                "succeeded" => entry.succeeded += n,
                "failed" => entry.failed += n,
                _ => entry.pending += n,
            }
        }

        // Tenants created and deleted per day in the window, to draw the live count back in time.
        let since = at - chrono::TimeDelta::days(i64::from(days));
        for (column, into) in [("created_at", &mut overview.created_per_day), ("deleted_at", &mut overview.deleted_per_day)] {
            let day = day_of(column);
            let rows = sqlx::query(&format!(
                "SELECT {day} AS bucket, COUNT(*) AS n FROM tenants WHERE project_id = $1 AND {column} >= $2 GROUP BY {day}"
            ))
            .bind(&project_id)
            .bind(since)
            .fetch_all(pool)
            .await?;
            for row in &rows {
                into.insert(row.try_get("bucket")?, row.try_get("n")?);
            }
        }
        Ok(overview)
    }

    pub(crate) async fn delete_project(&self, project: ProjectId, audit: &AuditContext) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(&format!("SELECT id, name, created_at FROM projects WHERE id = $1{LOCK_ROW}"))
            .bind(project.to_string())
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NotFound)?;
        let before = ProjectOut { id: project, name: row.try_get("name")?, created_at: row.try_get("created_at")? };
        // Tenants, events, keys, endpoints, deliveries, sync reports and roles go with it.
        sqlx::query("DELETE FROM projects WHERE id = $1").bind(project.to_string()).execute(&mut *tx).await?;
        let change = Change::new(AuditAction::ProjectDelete, AuditTarget::new(TargetType::Project, project)).before(&before)?;
        insert_audit(&mut tx, project, audit, change).await?;
        tx.commit().await?;
        Ok(())
    }

    pub(crate) async fn tenant_events(&self, project: ProjectId, tenant: TenantId, limit: u32) -> Result<Vec<Event>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE project_id = $1 AND tenant_id = $2 ORDER BY seq DESC LIMIT $3"
        ))
        .bind(project.to_string())
        .bind(tenant.to_string())
        .bind(i64::from(limit))
        .fetch_all(self.reader())
        .await?;
        Ok(rows.iter().map(event_from_row).collect::<Result<Vec<_>, _>>()?)
    }

    pub(crate) async fn set_operator_role(
        &self,
        project: ProjectId,
        operator: OperatorId,
        role: Option<Role>,
        audit: &AuditContext,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let exists = sqlx::query("SELECT 1 FROM operators WHERE id = $1")
            .bind(operator.to_string())
            .fetch_optional(&mut *tx)
            .await?;
        if exists.is_none() {
            return Err(StoreError::NotFound);
        }
        let current: Option<String> = sqlx::query(&format!(
            "SELECT role FROM operator_roles WHERE operator_id = $1 AND project_id = $2{LOCK_ROW}"
        ))
        .bind(operator.to_string())
        .bind(project.to_string())
        .fetch_optional(&mut *tx)
        .await?
        .map(|row| row.try_get("role"))
        .transpose()?;
        let current = current.as_deref().map(str::parse::<Role>).transpose().map_err(decode_err)?;
        if current == role {
            return Ok(false);
        }
        let state = |role: Option<Role>| serde_json::json!({ "operator_id": operator.to_string(), "role": role });
        let target = AuditTarget::new(TargetType::Operator, operator);
        let change = match role {
            Some(role) => {
                let done = sqlx::query(
                    "INSERT INTO operator_roles (operator_id, project_id, role) VALUES ($1, $2, $3) \
                     ON CONFLICT (operator_id, project_id) DO UPDATE SET role = excluded.role",
                )
                .bind(operator.to_string())
                .bind(project.to_string())
                .bind(role.as_str())
                .execute(&mut *tx)
                .await;
                match done {
                    Err(sqlx::Error::Database(db)) if db.is_foreign_key_violation() => return Err(StoreError::NotFound),
                    other => other?,
                };
                Change::new(AuditAction::OperatorRoleSet, target).after(&state(Some(role)))?
            }
            None => {
                sqlx::query("DELETE FROM operator_roles WHERE operator_id = $1 AND project_id = $2")
                    .bind(operator.to_string())
                    .bind(project.to_string())
                    .execute(&mut *tx)
                    .await?;
                Change::new(AuditAction::OperatorRoleRemove, target)
            }
        };
        let change = change.before(&state(current))?;
        insert_audit(&mut tx, project, audit, change).await?;
        tx.commit().await?;
        Ok(true)
    }
}
