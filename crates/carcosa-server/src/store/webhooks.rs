// The webhook SQL, shared by both backends (included after `sql.rs`, with the same `Db`,
// `Backend`, `Tx` and helpers in scope): endpoints, the delivery queue and its attempts.
//
// The queue lives in the store: a delivery row is written in the same transaction as the event
// it carries (`fan_out`), so nothing is ever held only in memory. A dispatcher claims due rows by
// setting a lease (`claim_deliveries`); on PostgreSQL `FOR UPDATE SKIP LOCKED` keeps replicas from
// claiming the same rows, and a lease that expires (its dispatcher died) makes the row claimable
// again.

use carcosa_core::endpoint::{AttemptOut, DeliveryOut, DeliveryPage, DeliveryStatus, EndpointOut, EventTypeFilter};
use std::collections::HashMap;

use carcosa_core::{DeliveryId, EndpointId};

use super::{AttemptRecord, ClaimedDelivery, EndpointChanges, EndpointRecord, NewEndpoint, NextStep};

const ENDPOINT_COLUMNS: &str = "id, project_id, url, description, event_types, enabled, disabled_reason, secret, previous_secret, previous_secret_expires_at, failing_since, created_at, updated_at";
const DELIVERY_COLUMNS: &str = "id, endpoint_id, event_id, event_type, status, next_attempt_at, created_at, completed_at";

impl Backend {
    /// The in-process wake-up for the dispatcher.
    pub(crate) fn waker(&self) -> std::sync::Arc<tokio::sync::Notify> {
        self.wake.clone()
    }

    /// Called after a commit that wrote `count` deliveries.
    fn deliveries_written(&self, count: usize) {
        if count > 0 {
            self.wake.notify_one();
        }
    }

    pub(crate) async fn create_endpoint(
        &self,
        project: ProjectId,
        new: NewEndpoint,
        audit: &AuditContext,
    ) -> Result<EndpointRecord, StoreError> {
        let id = EndpointId::generate();
        let at = now();
        let mut tx = self.writer().begin().await?;
        let result = sqlx::query(&format!(
            "INSERT INTO webhook_endpoints (id, project_id, url, description, event_types, enabled, secret, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) RETURNING {ENDPOINT_COLUMNS}"
        ))
        .bind(id.to_string())
        .bind(project.to_string())
        .bind(&new.url)
        .bind(new.description.as_deref())
        .bind(new.event_types.as_ref().map(Json))
        .bind(new.enabled)
        .bind(&new.secret)
        .bind(at)
        .fetch_one(&mut *tx)
        .await;
        let record = match result {
            Err(sqlx::Error::Database(db)) if db.is_foreign_key_violation() => return Err(StoreError::NotFound),
            other => endpoint_from_row(&other?)?,
        };
        // The public record: the secret is never part of an audit entry.
        let change = Change::new(AuditAction::EndpointCreate, AuditTarget::new(TargetType::WebhookEndpoint, id));
        insert_audit(&mut tx, project, audit, change.after(&record.endpoint)?).await?;
        tx.commit().await?;
        Ok(record)
    }

    pub(crate) async fn list_endpoints(&self, project: ProjectId) -> Result<Vec<EndpointRecord>, StoreError> {
        let rows = sqlx::query(&format!("SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE project_id = $1 ORDER BY id"))
            .bind(project.to_string())
            .fetch_all(self.reader())
            .await?;
        rows.iter().map(|r| endpoint_from_row(r).map_err(StoreError::from)).collect()
    }

    pub(crate) async fn get_endpoint(&self, project: ProjectId, id: EndpointId) -> Result<EndpointRecord, StoreError> {
        let row = sqlx::query(&format!("SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE id = $1 AND project_id = $2"))
            .bind(id.to_string())
            .bind(project.to_string())
            .fetch_optional(self.reader())
            .await?;
        Ok(endpoint_from_row(&row.ok_or(StoreError::NotFound)?)?)
    }

    pub(crate) async fn endpoint_for_delivery(&self, id: EndpointId) -> Result<EndpointRecord, StoreError> {
        let row = sqlx::query(&format!("SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE id = $1"))
            .bind(id.to_string())
            .fetch_optional(self.reader())
            .await?;
        Ok(endpoint_from_row(&row.ok_or(StoreError::NotFound)?)?)
    }

    pub(crate) async fn update_endpoint(
        &self,
        project: ProjectId,
        id: EndpointId,
        changes: EndpointChanges,
        audit: &AuditContext,
    ) -> Result<EndpointRecord, StoreError> {
        let mut tx = self.begin_write().await?;
        let current = lock_endpoint(&mut tx, project, id).await?;
        if !changes.would_change(&current.endpoint) {
            return Ok(current);
        }
        let mut query = QueryBuilder::<Db>::new("UPDATE webhook_endpoints SET updated_at = ");
        query.push_bind(now());
        if let Some(url) = changes.url {
            query.push(", url = ").push_bind(url);
        }
        if let Some(description) = changes.description {
            query.push(", description = ").push_bind(description);
        }
        if let Some(event_types) = changes.event_types {
            query.push(", event_types = ").push_bind(event_types.map(Json));
        }
        if let Some(enabled) = changes.enabled {
            query.push(", enabled = ").push_bind(enabled);
            if enabled {
                query.push(", disabled_reason = NULL, failing_since = NULL");
            }
        }
        query.push(" WHERE id = ").push_bind(id.to_string());
        query.push(" AND project_id = ").push_bind(project.to_string());
        query.push(format!(" RETURNING {ENDPOINT_COLUMNS}"));
        let row = query.build().fetch_one(&mut *tx).await?;
        let record = endpoint_from_row(&row)?;
        let change = Change::new(AuditAction::EndpointUpdate, AuditTarget::new(TargetType::WebhookEndpoint, id));
        insert_audit(&mut tx, project, audit, change.before(&current.endpoint)?.after(&record.endpoint)?).await?;
        tx.commit().await?;
        if record.endpoint.enabled {
            // Deliveries held while it was disabled are due now.
            self.wake.notify_one();
        }
        Ok(record)
    }

    pub(crate) async fn delete_endpoint(
        &self,
        project: ProjectId,
        id: EndpointId,
        audit: &AuditContext,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        let current = lock_endpoint(&mut tx, project, id).await?;
        sqlx::query("DELETE FROM webhook_endpoints WHERE id = $1 AND project_id = $2")
            .bind(id.to_string())
            .bind(project.to_string())
            .execute(&mut *tx)
            .await?;
        let change = Change::new(AuditAction::EndpointDelete, AuditTarget::new(TargetType::WebhookEndpoint, id));
        insert_audit(&mut tx, project, audit, change.before(&current.endpoint)?).await?;
        tx.commit().await?;
        Ok(())
    }

    pub(crate) async fn rotate_endpoint_secret(
        &self,
        project: ProjectId,
        id: EndpointId,
        secret: Vec<u8>,
        previous_expires_at: DateTime<Utc>,
        audit: &AuditContext,
    ) -> Result<EndpointRecord, StoreError> {
        let mut tx = self.begin_write().await?;
        let current = lock_endpoint(&mut tx, project, id).await?;
        let row = sqlx::query(&format!(
            "UPDATE webhook_endpoints SET previous_secret = secret, previous_secret_expires_at = $3, secret = $4, updated_at = $5 \
             WHERE id = $1 AND project_id = $2 RETURNING {ENDPOINT_COLUMNS}"
        ))
        .bind(id.to_string())
        .bind(project.to_string())
        .bind(previous_expires_at)
        .bind(secret)
        .bind(now())
        .fetch_one(&mut *tx)
        .await?;
        let record = endpoint_from_row(&row)?;
        // Only the public records: which secret signs is seen in `previous_secret_expires_at`.
        let change =
            Change::new(AuditAction::EndpointRotateSecret, AuditTarget::new(TargetType::WebhookEndpoint, id));
        insert_audit(&mut tx, project, audit, change.before(&current.endpoint)?.after(&record.endpoint)?).await?;
        tx.commit().await?;
        Ok(record)
    }

    pub(crate) async fn disable_endpoint(&self, id: EndpointId, reason: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE webhook_endpoints SET enabled = $2, disabled_reason = $3, updated_at = $4 WHERE id = $1")
            .bind(id.to_string())
            .bind(false)
            .bind(reason)
            .bind(now())
            .execute(self.writer())
            .await?;
        Ok(())
    }

    pub(crate) async fn enqueue_delivery(
        &self,
        project: ProjectId,
        endpoint: EndpointId,
        event_id: &str,
        event_type: &str,
        payload: &str,
        audit: &AuditContext,
    ) -> Result<DeliveryId, StoreError> {
        let at = now();
        let mut tx = self.writer().begin().await?;
        let id = insert_delivery(&mut tx, project, endpoint, event_id, event_type, payload, at).await?;
        let queued = DeliveryOut {
            id,
            endpoint_id: endpoint,
            event_id: event_id.to_owned(),
            event_type: event_type.to_owned(),
            status: DeliveryStatus::Pending,
            next_attempt_at: Some(at),
            created_at: at,
            completed_at: None,
            attempts: Vec::new(),
        };
        let change =
            Change::new(AuditAction::EndpointSendTest, AuditTarget::new(TargetType::WebhookEndpoint, endpoint));
        insert_audit(&mut tx, project, audit, change.after(&queued)?).await?;
        tx.commit().await?;
        self.deliveries_written(1);
        Ok(id)
    }

    pub(crate) async fn claim_deliveries(
        &self,
        limit: u32,
        lease_until: DateTime<Utc>,
        in_flight: &HashMap<EndpointId, u32>,
        per_endpoint: u32,
    ) -> Result<Vec<ClaimedDelivery>, StoreError> {
        // Pick, without locking, due deliveries that fit each endpoint's free capacity…
        let at = now();
        let busy: Vec<&EndpointId> = in_flight.iter().filter(|(_, n)| **n >= per_endpoint).map(|(id, _)| id).collect();
        let mut query = QueryBuilder::<Db>::new(
            "SELECT d.id, d.endpoint_id FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id \
             WHERE d.status = 'pending' AND e.enabled AND d.next_attempt_at <= ",
        );
        query.push_bind(at);
        query.push(" AND (d.lease_expires_at IS NULL OR d.lease_expires_at < ").push_bind(at).push(")");
        if !busy.is_empty() {
            query.push(" AND d.endpoint_id NOT IN (");
            let mut list = query.separated(", ");
            for endpoint in busy {
                list.push_bind(endpoint.to_string());
            }
            query.push(")");
        }
        query.push(" ORDER BY d.next_attempt_at LIMIT ").push_bind(i64::from(limit.saturating_mul(4).min(2000)));
        let candidates = query.build().fetch_all(self.reader()).await?;
        let mut room: HashMap<String, u32> = HashMap::new();
        let mut picked = Vec::new();
        for row in &candidates {
            let endpoint: String = row.try_get("endpoint_id")?;
            let free = room.entry(endpoint.clone()).or_insert_with(|| {
                let used = EndpointId::parse(&endpoint).ok().and_then(|id| in_flight.get(&id).copied()).unwrap_or(0);
                per_endpoint.saturating_sub(used)
            });
            if *free > 0 && picked.len() < limit as usize {
                *free -= 1;
                picked.push(row.try_get::<String, _>("id")?);
            }
        }
        if picked.is_empty() {
            return Ok(Vec::new());
        }
        // …then lease them. The conditions are checked again under the row locks, and on
        // PostgreSQL rows another replica is claiming right now are skipped, not waited for.
        let mut query = QueryBuilder::<Db>::new("UPDATE webhook_deliveries SET lease_expires_at = ");
        query.push_bind(lease_until);
        query.push(" WHERE id IN (SELECT id FROM webhook_deliveries WHERE id IN (");
        let mut list = query.separated(", ");
        for id in &picked {
            list.push_bind(id.as_str());
        }
        query.push(") AND status = 'pending' AND (lease_expires_at IS NULL OR lease_expires_at < ").push_bind(at).push(")");
        query.push(CLAIM_LOCK);
        query.push(") RETURNING id, endpoint_id, event_id, payload, attempt_count, retry_index, created_at");
        let rows = query.build().fetch_all(self.writer()).await?;
        rows.iter()
            .map(|row| {
                Ok(ClaimedDelivery {
                    id: parse_col(row, "id", DeliveryId::parse)?,
                    endpoint_id: parse_col(row, "endpoint_id", EndpointId::parse)?,
                    event_id: row.try_get("event_id")?,
                    payload: row.try_get("payload")?,
                    attempt_count: row.try_get("attempt_count")?,
                    retry_index: row.try_get("retry_index")?,
                    created_at: row.try_get("created_at")?,
                })
            })
            .collect()
    }

    pub(crate) async fn record_attempts(
        &self,
        attempts: &[(ClaimedDelivery, AttemptRecord)],
    ) -> Result<Vec<(EndpointId, DateTime<Utc>)>, StoreError> {
        // Rows are locked in one order (endpoint, then delivery) by every replica, so two
        // recorders never wait on each other in a cycle.
        let mut ordered: Vec<&(ClaimedDelivery, AttemptRecord)> = attempts.iter().collect();
        ordered.sort_by_key(|(delivery, _)| (delivery.endpoint_id, delivery.id));
        let mut tx = self.writer().begin().await?;
        let mut failing = Vec::new();
        for (delivery, attempt) in ordered {
            if let Some(since) = record_one(&mut tx, delivery, attempt).await? {
                failing.retain(|(id, _)| *id != delivery.endpoint_id);
                failing.push((delivery.endpoint_id, since));
            }
        }
        tx.commit().await?;
        Ok(failing)
    }

    pub(crate) async fn next_delivery_due(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        // A leased delivery is not due before its lease ends; a disabled endpoint's never is.
        let row = sqlx::query(
            "SELECT MIN(CASE WHEN d.lease_expires_at > d.next_attempt_at THEN d.lease_expires_at ELSE d.next_attempt_at END) \
             FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id WHERE d.status = 'pending' AND e.enabled",
        )
        .fetch_one(self.reader())
        .await?;
        Ok(row.try_get::<Option<DateTime<Utc>>, _>(0)?)
    }

    pub(crate) async fn list_deliveries(
        &self,
        project: ProjectId,
        endpoint: EndpointId,
        status: Option<DeliveryStatus>,
        before: Option<DeliveryId>,
        limit: u32,
    ) -> Result<DeliveryPage, StoreError> {
        // The endpoint must belong to the project, or its log is "not found".
        self.get_endpoint(project, endpoint).await?;
        let mut query = QueryBuilder::<Db>::new(format!("SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE endpoint_id = "));
        query.push_bind(endpoint.to_string());
        if let Some(status) = status {
            query.push(" AND status = ").push_bind(status.as_str());
        }
        if let Some(before) = before {
            query.push(" AND id < ").push_bind(before.to_string());
        }
        query.push(" ORDER BY id DESC LIMIT ").push_bind(i64::from(limit) + 1);
        let rows = query.build().fetch_all(self.reader()).await?;
        let mut data = rows.iter().map(delivery_from_row).collect::<Result<Vec<_>, _>>()?;
        let next_cursor = if data.len() > limit as usize {
            data.truncate(limit as usize);
            data.last().map(|d| d.id.to_string())
        } else {
            None
        };
        attach_attempts(self.reader(), &mut data).await?;
        Ok(DeliveryPage { data, next_cursor })
    }

    pub(crate) async fn resend_delivery(
        &self,
        project: ProjectId,
        id: DeliveryId,
        audit: &AuditContext,
    ) -> Result<DeliveryOut, StoreError> {
        let at = now();
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(&format!(
            "SELECT {DELIVERY_COLUMNS}, lease_expires_at FROM webhook_deliveries WHERE id = $1 AND project_id = $2{LOCK_ROW}"
        ))
        .bind(id.to_string())
        .bind(project.to_string())
        .fetch_optional(&mut *tx)
        .await?;
        let row = row.ok_or(StoreError::NotFound)?;
        // A delivery whose attempt is under way (leased) is left to finish first.
        if row.try_get::<Option<DateTime<Utc>>, _>("lease_expires_at")?.is_some_and(|lease| lease >= at) {
            return Err(StoreError::DeliveryInFlight);
        }
        let before = delivery_from_row(&row)?;
        let row = sqlx::query(&format!(
            "UPDATE webhook_deliveries SET status = 'pending', retry_index = 0, next_attempt_at = $2, completed_at = NULL \
             WHERE id = $1 RETURNING {DELIVERY_COLUMNS}"
        ))
        .bind(id.to_string())
        .bind(at)
        .fetch_one(&mut *tx)
        .await?;
        let after = delivery_from_row(&row)?;
        let change = Change::new(AuditAction::DeliveryResend, AuditTarget::new(TargetType::WebhookDelivery, id));
        insert_audit(&mut tx, project, audit, change.before(&before)?.after(&after)?).await?;
        tx.commit().await?;
        let mut delivery = vec![after];
        self.wake.notify_one();
        attach_attempts(self.reader(), &mut delivery).await?;
        Ok(delivery.remove(0))
    }

    pub(crate) async fn recover_deliveries(
        &self,
        project: ProjectId,
        endpoint: EndpointId,
        since: DateTime<Utc>,
        audit: &AuditContext,
    ) -> Result<u64, StoreError> {
        let mut tx = self.begin_write().await?;
        lock_endpoint(&mut tx, project, endpoint).await?;
        let done = sqlx::query(
            "UPDATE webhook_deliveries SET status = 'pending', retry_index = 0, next_attempt_at = $3, completed_at = NULL, lease_expires_at = NULL \
             WHERE endpoint_id = $1 AND status = 'failed' AND created_at >= $2",
        )
        .bind(endpoint.to_string())
        .bind(since)
        .bind(now())
        .execute(&mut *tx)
        .await?;
        let requeued = done.rows_affected();
        if requeued == 0 {
            // Nothing to send again: nothing changed, nothing is recorded.
            return Ok(0);
        }
        let change = Change::new(AuditAction::DeliveryRecover, AuditTarget::new(TargetType::WebhookEndpoint, endpoint))
            .after(&serde_json::json!({"since": since, "requeued": requeued}))?;
        insert_audit(&mut tx, project, audit, change).await?;
        tx.commit().await?;
        self.deliveries_written(usize::try_from(requeued).unwrap_or(usize::MAX));
        Ok(requeued)
    }

    /// Removes finished deliveries (and their attempts) created before `before`. Pending ones,
    /// held for a disabled endpoint, stay until they are sent or the endpoint is deleted.
    async fn prune_deliveries(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM webhook_deliveries WHERE created_at < $1 AND status <> 'pending'")
            .bind(before)
            .execute(self.writer())
            .await?;
        Ok(done.rows_affected())
    }
}

/// An endpoint of the project, read in a write transaction and (on PostgreSQL) locked until it
/// ends.
async fn lock_endpoint(tx: &mut Tx, project: ProjectId, id: EndpointId) -> Result<EndpointRecord, StoreError> {
    let row = sqlx::query(&format!(
        "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE id = $1 AND project_id = $2{LOCK_ROW}"
    ))
    .bind(id.to_string())
    .bind(project.to_string())
    .fetch_optional(&mut **tx)
    .await?;
    Ok(endpoint_from_row(&row.ok_or(StoreError::NotFound)?)?)
}

fn endpoint_from_row(row: &DbRow) -> Result<EndpointRecord, sqlx::Error> {
    Ok(EndpointRecord {
        endpoint: EndpointOut {
            id: parse_col(row, "id", EndpointId::parse)?,
            url: row.try_get("url")?,
            description: row.try_get("description")?,
            event_types: row.try_get::<Option<Json<Vec<String>>>, _>("event_types")?.map(|j| j.0),
            enabled: row.try_get("enabled")?,
            disabled_reason: row.try_get("disabled_reason")?,
            failing_since: row.try_get("failing_since")?,
            previous_secret_expires_at: row.try_get("previous_secret_expires_at")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        },
        project: parse_col(row, "project_id", ProjectId::parse)?,
        secret: row.try_get("secret")?,
        previous_secret: row.try_get("previous_secret")?,
    })
}

fn delivery_from_row(row: &DbRow) -> Result<DeliveryOut, sqlx::Error> {
    Ok(DeliveryOut {
        id: parse_col(row, "id", DeliveryId::parse)?,
        endpoint_id: parse_col(row, "endpoint_id", EndpointId::parse)?,
        event_id: row.try_get("event_id")?,
        event_type: row.try_get("event_type")?,
        status: parse_col(row, "status", str::parse::<DeliveryStatus>)?,
        next_attempt_at: row.try_get("next_attempt_at")?,
        created_at: row.try_get("created_at")?,
        completed_at: row.try_get("completed_at")?,
        attempts: Vec::new(),
    })
}

/// Fills in each delivery's attempts with one query.
async fn attach_attempts(pool: &Pool<Db>, deliveries: &mut [DeliveryOut]) -> Result<(), StoreError> {
    if deliveries.is_empty() {
        return Ok(());
    }
    let mut query = QueryBuilder::<Db>::new(
        "SELECT delivery_id, attempt, attempted_at, response_status, latency_ms, error, response_body FROM webhook_attempts WHERE delivery_id IN (",
    );
    let mut list = query.separated(", ");
    for delivery in deliveries.iter() {
        list.push_bind(delivery.id.to_string());
    }
    query.push(") ORDER BY delivery_id, attempt");
    let rows = query.build().fetch_all(pool).await?;
    for row in rows {
        let delivery_id: String = row.try_get("delivery_id")?;
        let status: Option<i32> = row.try_get("response_status")?;
        let attempt = AttemptOut {
            attempt: row.try_get("attempt")?,
            attempted_at: row.try_get("attempted_at")?,
            response_status: status.and_then(|s| u16::try_from(s).ok()),
            latency_ms: row.try_get("latency_ms")?,
            error: row.try_get("error")?,
            response_body: row.try_get("response_body")?,
        };
        if let Some(delivery) = deliveries.iter_mut().find(|d| d.id.to_string() == delivery_id) {
            delivery.attempts.push(attempt);
        }
    }
    Ok(())
}

/// One delivery of `event` per enabled endpoint of the project whose filter matches its type,
/// written in the event's transaction. On PostgreSQL the transaction also sends a notification,
/// delivered at commit, that wakes the dispatchers of every replica.
async fn fan_out(tx: &mut Tx, project: ProjectId, event: &Event) -> Result<usize, StoreError> {
    let rows = sqlx::query("SELECT id, event_types FROM webhook_endpoints WHERE project_id = $1 AND enabled")
        .bind(project.to_string())
        .fetch_all(&mut **tx)
        .await?;
    if rows.is_empty() {
        return Ok(0);
    }
    let event_type = event.event_type.as_str();
    let payload = serde_json::to_string(event).map_err(|e| StoreError::Database(decode_err(e)))?;
    let mut count = 0;
    for row in rows {
        let patterns: Option<Json<Vec<String>>> = row.try_get("event_types")?;
        let wanted = match patterns {
            None => true,
            Some(Json(patterns)) => EventTypeFilter::parse(&patterns).is_ok_and(|f| f.matches(event_type)),
        };
        if wanted {
            let endpoint = parse_col(&row, "id", EndpointId::parse)?;
            insert_delivery(tx, project, endpoint, &event.id.to_string(), event_type, &payload, event.occurred_at).await?;
            count += 1;
        }
    }
    if count > 0
        && let Some(notify) = NOTIFY_DELIVERIES
    {
        sqlx::query(notify).execute(&mut **tx).await?;
    }
    Ok(count)
}

async fn insert_delivery(
    tx: &mut Tx,
    project: ProjectId,
    endpoint: EndpointId,
    event_id: &str,
    event_type: &str,
    payload: &str,
    at: DateTime<Utc>,
) -> Result<DeliveryId, StoreError> {
    let id = DeliveryId::generate();
    sqlx::query(
        "INSERT INTO webhook_deliveries (id, project_id, endpoint_id, event_id, event_type, payload, status, next_attempt_at, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7, $7)",
    )
    .bind(id.to_string())
    .bind(project.to_string())
    .bind(endpoint.to_string())
    .bind(event_id)
    .bind(event_type)
    .bind(payload)
    .bind(at)
    .execute(&mut **tx)
    .await?;
    Ok(id)
}

/// Records one attempt in the caller's transaction. Returns when the endpoint's run of failures
/// started, if this attempt failed.
async fn record_one(
    tx: &mut Tx,
    delivery: &ClaimedDelivery,
    attempt: &AttemptRecord,
) -> Result<Option<DateTime<Utc>>, StoreError> {
    let (status, next_at, completed_at) = match attempt.next {
        NextStep::Succeeded => (DeliveryStatus::Succeeded, None, Some(attempt.attempted_at)),
        NextStep::RetryAt(at) => (DeliveryStatus::Pending, Some(at), None),
        NextStep::Failed | NextStep::EndpointGone => (DeliveryStatus::Failed, None, Some(attempt.attempted_at)),
    };
    // Only a delivery still pending moves on: if this attempt outlived its lease and another
    // dispatcher finished the delivery meanwhile, the later outcome does not overwrite it.
    let row = sqlx::query(
        "UPDATE webhook_deliveries SET attempt_count = attempt_count + 1, retry_index = retry_index + 1, status = $2, \
         next_attempt_at = $3, completed_at = $4, lease_expires_at = NULL WHERE id = $1 AND status = 'pending' RETURNING attempt_count",
    )
    .bind(delivery.id.to_string())
    .bind(status.as_str())
    .bind(next_at)
    .bind(completed_at)
    .fetch_optional(&mut **tx)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let number: i32 = row.try_get(0)?;
    sqlx::query(
        "INSERT INTO webhook_attempts (delivery_id, attempt, attempted_at, response_status, latency_ms, error, response_body) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(delivery.id.to_string())
    .bind(number)
    .bind(attempt.attempted_at)
    .bind(attempt.response_status.map(i32::from))
    .bind(attempt.latency_ms)
    .bind(attempt.error.as_deref())
    .bind(attempt.response_body.as_deref())
    .execute(&mut **tx)
    .await?;
    let endpoint = delivery.endpoint_id.to_string();
    match attempt.next {
        NextStep::Succeeded => {
            sqlx::query("UPDATE webhook_endpoints SET failing_since = NULL WHERE id = $1 AND failing_since IS NOT NULL")
                .bind(&endpoint)
                .execute(&mut **tx)
                .await?;
            Ok(None)
        }
        NextStep::EndpointGone => {
            sqlx::query("UPDATE webhook_endpoints SET enabled = $2, disabled_reason = 'gone', updated_at = $3 WHERE id = $1")
                .bind(&endpoint)
                .bind(false)
                .bind(attempt.attempted_at)
                .execute(&mut **tx)
                .await?;
            Ok(None)
        }
        NextStep::RetryAt(_) | NextStep::Failed => {
            let row = sqlx::query(
                "UPDATE webhook_endpoints SET failing_since = COALESCE(failing_since, $2) WHERE id = $1 RETURNING failing_since",
            )
            .bind(&endpoint)
            .bind(attempt.attempted_at)
            .fetch_optional(&mut **tx)
            .await?;
            Ok(row.map(|r| r.try_get::<DateTime<Utc>, _>(0)).transpose()?)
        }
    }
}
