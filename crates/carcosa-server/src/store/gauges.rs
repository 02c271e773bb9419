// The counts behind the server's store-derived gauges (included after `sql.rs`, with the same
// `Db`, `Backend` and helpers in scope). Three grouped counts over indexed columns, run when
// `/metrics` is scraped (at most every few seconds), never per request.

impl Backend {
    pub(crate) async fn gauges(&self) -> Result<super::StoreGauges, StoreError> {
        let tenants = sqlx::query(
            "SELECT project_id, status, COUNT(*) AS n FROM tenants GROUP BY project_id, status",
        )
        .fetch_all(self.reader())
        .await?
        .iter()
        .map(|row| Ok((row.try_get("project_id")?, row.try_get("status")?, row.try_get("n")?)))
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
        let endpoints = sqlx::query(
            "SELECT project_id, \
                CASE WHEN enabled AND failing_since IS NULL THEN 'enabled' \
                     WHEN enabled THEN 'failing' \
                     WHEN disabled_reason IS NOT NULL THEN 'auto_disabled' \
                     ELSE 'disabled' END AS state, \
                COUNT(*) AS n \
             FROM webhook_endpoints GROUP BY 1, 2",
        )
        .fetch_all(self.reader())
        .await?
        .iter()
        .map(|row| Ok((row.try_get("project_id")?, row.try_get("state")?, row.try_get("n")?)))
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
        let queue_depth: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM webhook_deliveries WHERE status = 'pending'")
                .fetch_one(self.reader())
                .await?;
        Ok(super::StoreGauges { tenants, endpoints, queue_depth })
    }
}
