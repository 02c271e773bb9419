// Operators, their roles, sessions and failed logins, shared by both backends (included after
// `sql.rs`, with the same `Db`, `Backend` and helpers in scope). The rules (hashing, expiry,
// throttling) live in `crate::operators` and `crate::session`; this is storage only.

use carcosa_core::{Email, OperatorId, Role};

use super::accounts::{NewOperator, Operator, ProjectRole, SessionRecord, StoredOperator};

const OPERATOR_COLUMNS: &str = "id, email, name, password_hash, global_role, created_at, updated_at";

impl Backend {
    pub(crate) async fn create_operator(
        &self,
        new: &NewOperator,
        only_if_none: bool,
        audit: Option<&AuditContext>,
    ) -> Result<Option<Operator>, StoreError> {
        let id = OperatorId::generate();
        let at = now();
        let mut tx = self.writer().begin().await?;
        let guard = if only_if_none { " WHERE NOT EXISTS (SELECT 1 FROM operators)" } else { "" };
        let inserted = sqlx::query(&format!(
            "INSERT INTO operators (id, email, name, password_hash, global_role, created_at, updated_at) \
             SELECT $1, $2, $3, $4, $5, $6, $6{guard}"
        ))
        .bind(id.to_string())
        .bind(new.email.as_str())
        .bind(&new.name)
        .bind(&new.password_hash)
        .bind(new.global_role.map(Role::as_str))
        .bind(at)
        .execute(&mut *tx)
        .await;
        match inserted {
            Err(sqlx::Error::Database(db)) if db.is_unique_violation() => return Err(StoreError::EmailTaken),
            Err(other) => return Err(other.into()),
            Ok(done) if done.rows_affected() == 0 => return Ok(None),
            Ok(_) => {}
        }
        if let Some(grant) = &new.project_role {
            let granted = sqlx::query("INSERT INTO operator_roles (operator_id, project_id, role) VALUES ($1, $2, $3)")
                .bind(id.to_string())
                .bind(grant.project.to_string())
                .bind(grant.role.as_str())
                .execute(&mut *tx)
                .await;
            match granted {
                Err(sqlx::Error::Database(db)) if db.is_foreign_key_violation() => return Err(StoreError::NotFound),
                other => other?,
            };
            if let Some(audit) = audit {
                let after = serde_json::json!({
                    "operator_id": id.to_string(),
                    "email": new.email.as_str(),
                    "name": &new.name,
                    "role": grant.role,
                });
                let change = Change::new(AuditAction::OperatorCreate, AuditTarget::new(TargetType::Operator, id)).after(&after)?;
                insert_audit(&mut tx, grant.project, audit, change).await?;
            }
        }
        tx.commit().await?;
        Ok(Some(Operator {
            id,
            email: new.email.clone(),
            name: new.name.clone(),
            global_role: new.global_role,
            roles: new.project_role.iter().cloned().collect(),
            created_at: at,
            updated_at: at,
        }))
    }

    pub(crate) async fn operator_by_email(&self, email: &Email) -> Result<Option<StoredOperator>, StoreError> {
        let row = sqlx::query(&format!("SELECT {OPERATOR_COLUMNS} FROM operators WHERE email = $1"))
            .bind(email.as_str())
            .fetch_optional(self.reader())
            .await?;
        let Some(row) = row else { return Ok(None) };
        let mut stored = stored_operator_from_row(&row)?;
        stored.operator.roles = self.operator_roles(Some(stored.operator.id)).await?;
        Ok(Some(stored))
    }

    pub(crate) async fn get_operator(&self, id: OperatorId) -> Result<Option<Operator>, StoreError> {
        let row = sqlx::query(&format!("SELECT {OPERATOR_COLUMNS} FROM operators WHERE id = $1"))
            .bind(id.to_string())
            .fetch_optional(self.reader())
            .await?;
        let Some(row) = row else { return Ok(None) };
        let mut operator = stored_operator_from_row(&row)?.operator;
        operator.roles = self.operator_roles(Some(id)).await?;
        Ok(Some(operator))
    }

    pub(crate) async fn list_operators(&self) -> Result<Vec<Operator>, StoreError> {
        let rows = sqlx::query(&format!("SELECT {OPERATOR_COLUMNS} FROM operators ORDER BY created_at, id"))
            .fetch_all(self.reader())
            .await?;
        let roles: Vec<(OperatorId, ProjectRole)> = self.operator_roles(None).await?;
        let mut operators = Vec::with_capacity(rows.len());
        for row in &rows {
            let mut operator = stored_operator_from_row(row)?.operator;
            // `operator_roles(None)` returns (operator, role) pairs in the order below.
            operator.roles = roles.iter().filter(|(op, _)| *op == operator.id).map(|(_, r)| r.clone()).collect();
            operators.push(operator);
        }
        Ok(operators)
    }

    /// The roles of one operator (`Some`) or of everyone (`None`), by project.
    async fn operator_roles<T: FromRoleRow>(&self, operator: Option<OperatorId>) -> Result<Vec<T>, StoreError> {
        let rows = match operator {
            Some(id) => {
                sqlx::query("SELECT operator_id, project_id, role FROM operator_roles WHERE operator_id = $1 ORDER BY project_id")
                    .bind(id.to_string())
                    .fetch_all(self.reader())
                    .await?
            }
            None => {
                sqlx::query("SELECT operator_id, project_id, role FROM operator_roles ORDER BY operator_id, project_id")
                    .fetch_all(self.reader())
                    .await?
            }
        };
        rows.iter().map(|row| T::from_role_row(row).map_err(StoreError::from)).collect()
    }

    pub(crate) async fn set_operator_password(&self, email: &Email, password_hash: &str) -> Result<OperatorId, StoreError> {
        let mut tx = self.writer().begin().await?;
        let row = sqlx::query("UPDATE operators SET password_hash = $1, updated_at = $2 WHERE email = $3 RETURNING id")
            .bind(password_hash)
            .bind(now())
            .bind(email.as_str())
            .fetch_optional(&mut *tx)
            .await?;
        let id = parse_col(&row.ok_or(StoreError::NotFound)?, "id", OperatorId::parse)?;
        // A new password signs the operator out everywhere.
        sqlx::query("DELETE FROM operator_sessions WHERE operator_id = $1").bind(id.to_string()).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(id)
    }

    pub(crate) async fn create_session(
        &self,
        token_hash: &[u8],
        operator: OperatorId,
        address: Option<&str>,
        user_agent: Option<&str>,
        replaces: Option<&[u8]>,
    ) -> Result<(), StoreError> {
        let at = now();
        let mut tx = self.writer().begin().await?;
        if let Some(old) = replaces {
            sqlx::query("DELETE FROM operator_sessions WHERE token_hash = $1").bind(old).execute(&mut *tx).await?;
        }
        sqlx::query(
            "INSERT INTO operator_sessions (token_hash, operator_id, created_at, last_seen_at, address, user_agent) \
             VALUES ($1, $2, $3, $3, $4, $5)",
        )
        .bind(token_hash)
        .bind(operator.to_string())
        .bind(at)
        .bind(address)
        .bind(user_agent)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub(crate) async fn session(&self, token_hash: &[u8]) -> Result<Option<SessionRecord>, StoreError> {
        let row = sqlx::query("SELECT operator_id, created_at, last_seen_at FROM operator_sessions WHERE token_hash = $1")
            .bind(token_hash)
            .fetch_optional(self.reader())
            .await?;
        row.map(|row| -> Result<SessionRecord, sqlx::Error> {
            Ok(SessionRecord {
                operator: parse_col(&row, "operator_id", OperatorId::parse)?,
                created_at: row.try_get("created_at")?,
                last_seen_at: row.try_get("last_seen_at")?,
            })
        })
        .transpose()
        .map_err(StoreError::from)
    }

    pub(crate) async fn touch_session(&self, token_hash: &[u8], at: DateTime<Utc>) -> Result<(), StoreError> {
        sqlx::query("UPDATE operator_sessions SET last_seen_at = $1 WHERE token_hash = $2")
            .bind(at)
            .bind(token_hash)
            .execute(self.writer())
            .await?;
        Ok(())
    }

    pub(crate) async fn delete_session(&self, token_hash: &[u8]) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM operator_sessions WHERE token_hash = $1").bind(token_hash).execute(self.writer()).await?;
        Ok(())
    }

    pub(crate) async fn prune_sessions(
        &self,
        idle_before: DateTime<Utc>,
        created_before: DateTime<Utc>,
        failures_before: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut tx = self.writer().begin().await?;
        sqlx::query("DELETE FROM operator_sessions WHERE last_seen_at < $1 OR created_at < $2")
            .bind(idle_before)
            .bind(created_before)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM login_failures WHERE failed_at < $1").bind(failures_before).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }

    pub(crate) async fn record_login_failure(&self, subjects: &[String], at: DateTime<Utc>) -> Result<(), StoreError> {
        let mut tx = self.writer().begin().await?;
        for subject in subjects {
            sqlx::query("INSERT INTO login_failures (subject, failed_at) VALUES ($1, $2)")
                .bind(subject)
                .bind(at)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub(crate) async fn login_failures_since(&self, subject: &str, since: DateTime<Utc>) -> Result<Vec<DateTime<Utc>>, StoreError> {
        let rows = sqlx::query("SELECT failed_at FROM login_failures WHERE subject = $1 AND failed_at >= $2 ORDER BY failed_at")
            .bind(subject)
            .bind(since)
            .fetch_all(self.reader())
            .await?;
        Ok(rows.iter().map(|row| row.try_get("failed_at")).collect::<Result<_, _>>()?)
    }

    pub(crate) async fn clear_login_failures(&self, subject: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM login_failures WHERE subject = $1").bind(subject).execute(self.writer()).await?;
        Ok(())
    }
}

/// A row of `operator_roles`, read either as a role alone or with its operator.
trait FromRoleRow: Sized {
    fn from_role_row(row: &DbRow) -> Result<Self, sqlx::Error>;
}

impl FromRoleRow for ProjectRole {
    fn from_role_row(row: &DbRow) -> Result<Self, sqlx::Error> {
        Ok(ProjectRole {
            project: parse_col(row, "project_id", ProjectId::parse)?,
            role: parse_col(row, "role", str::parse::<Role>)?,
        })
    }
}

impl FromRoleRow for (OperatorId, ProjectRole) {
    fn from_role_row(row: &DbRow) -> Result<Self, sqlx::Error> {
        Ok((parse_col(row, "operator_id", OperatorId::parse)?, ProjectRole::from_role_row(row)?))
    }
}

fn stored_operator_from_row(row: &DbRow) -> Result<StoredOperator, sqlx::Error> {
    let global_role: Option<String> = row.try_get("global_role")?;
    Ok(StoredOperator {
        operator: Operator {
            id: parse_col(row, "id", OperatorId::parse)?,
            email: parse_col(row, "email", Email::parse)?,
            name: row.try_get("name")?,
            global_role: global_role.as_deref().map(str::parse::<Role>).transpose().map_err(decode_err)?,
            roles: Vec::new(),
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        },
        password_hash: row.try_get("password_hash")?,
    })
}
