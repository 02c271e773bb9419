//! The store: every read and write of the registry, on SQLite or PostgreSQL.
//!
//! [`Store`] is picked once, from the database URL, by [`Store::connect`]. Both backends run the
//! same SQL from `sql.rs`, which each backend module includes with its own `Db` type, so the two
//! cannot drift apart; each backend owns its connection setup and its migrations
//! (`migrations/sqlite`, `migrations/postgres`).
//!
//! Invariants kept here:
//! * every tenant write runs in one transaction that first bumps the project's `last_seq`, then
//!   changes the tenant and writes its event with that seq (the transactional outbox). On
//!   PostgreSQL the bump locks the project row until commit, so a project's events commit in seq
//!   order and the feed has no gap a reader could skip; on SQLite writes are serialised anyway;
//! * a tenant's `version` grows by exactly one per event;
//! * slugs are unique among a project's live tenants (a partial unique index backs the check);
//! * every mutation (of a project, key, tenant, endpoint or delivery) takes an [`AuditContext`]
//!   and writes one audit entry in its transaction; a mutation that changes nothing (a no-op
//!   update, an idempotent replay, a second revocation) writes none.

mod postgres;
mod sqlite;

use std::time::Duration;

use carcosa_core::api::{ApiKeyOut, KeyRateLimit, NewTenant, ProjectOut, TenantChanges, TenantPage};
use carcosa_core::audit::{ActorFilter, AuditAction, AuditPage};
use carcosa_core::endpoint::{DeliveryOut, DeliveryPage, DeliveryStatus, EndpointOut};
use carcosa_core::slug::ReservedSlugs;
use carcosa_core::{ApiKey, Event, EventCursor, PageCursor, ProjectId, Scope, Slug, Tenant, TenantStatus};
use carcosa_core::{AuditCursor, DeliveryId, EndpointId};
use chrono::{DateTime, Utc};

use crate::audit::AuditContext;

pub use postgres::PgStore;
pub use sqlite::SqliteStore;

/// Failures of store operations. The domain outcomes (not found, taken slug, …) are variants of
/// their own; everything the database itself reports is [`StoreError::Database`].
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No such project, tenant or key (in this project).
    #[error("not found")]
    NotFound,
    /// Another live tenant of the project has this slug.
    #[error("the slug `{0}` is taken by another tenant of this project")]
    SlugTaken(Slug),
    /// The slug is on the reserved list.
    #[error("the slug `{0}` is reserved")]
    SlugReserved(Slug),
    /// `If-Match` named another version than the current one.
    #[error("the tenant is at version {current}, not {expected}")]
    VersionConflict {
        /// The version the caller expected.
        expected: i64,
        /// The version the tenant is at.
        current: i64,
    },
    /// The tenant is deleted and cannot be changed.
    #[error("the tenant is deleted")]
    TenantDeleted,
    /// The metadata after a merge patch breaks the size rule.
    #[error("{0}")]
    InvalidMetadata(String),
    /// The delivery is being attempted right now.
    #[error("the delivery is being attempted right now")]
    DeliveryInFlight,
    /// Text the database cannot store (the NUL character).
    #[error("text containing the NUL character cannot be stored")]
    UnstorableText,
    /// An idempotency key reused with a different request.
    #[error("the idempotency key was already used with a different request")]
    IdempotencyMismatch,
    /// The feed position is older than the retained events.
    #[error("events after {requested} are no longer retained (the feed starts after {oldest})")]
    CursorExpired {
        /// The position asked for.
        requested: EventCursor,
        /// The oldest position that can still be read from.
        oldest: EventCursor,
    },
    /// The feed position is beyond the newest event (the server's data was reset or restored).
    #[error("the cursor {requested} is ahead of the newest event ({newest})")]
    CursorAhead {
        /// The position asked for.
        requested: EventCursor,
        /// The newest event.
        newest: EventCursor,
    },
    /// Another operator has this email.
    #[error("another operator has this email")]
    EmailTaken,
    /// The database failed or is unreachable.
    #[error(transparent)]
    Database(sqlx::Error),
    /// Applying migrations failed.
    #[error(transparent)]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        if is_unstorable_text(&err) { Self::UnstorableText } else { Self::Database(err) }
    }
}

/// Tuning of the store's connections.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Upper bound of pooled connections (PostgreSQL; SQLite readers).
    pub max_connections: u32,
    /// How long to wait for a connection before failing a request.
    pub acquire_timeout: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self { max_connections: 10, acquire_timeout: Duration::from_secs(10) }
    }
}

/// The rules a tenant write must follow that come from configuration.
#[derive(Debug, Clone)]
pub struct WriteRules {
    /// Slugs refused to callers and skipped by generation.
    pub reserved: ReservedSlugs,
    /// Bound on serialized metadata after a merge patch.
    pub max_metadata_bytes: usize,
}

/// What a tenant listing selects.
#[derive(Debug, Clone, Default)]
pub struct TenantFilter {
    /// Only this status; `None` = live tenants (active and suspended).
    pub status: Option<TenantStatus>,
    /// Case-insensitive substring of the name or slug.
    pub q: Option<String>,
}

/// What an audit-log listing selects; every part optional.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Only this actor's entries.
    pub actor: Option<ActorFilter>,
    /// Only this action.
    pub action: Option<AuditAction>,
    /// Only entries about the object with this id.
    pub target: Option<String>,
    /// Only entries at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Only entries before this time.
    pub until: Option<DateTime<Utc>>,
}

/// How a tenant is named in a request path: by id or by slug.
#[derive(Debug, Clone)]
pub enum TenantRef {
    /// `ten_…`
    Id(carcosa_core::TenantId),
    /// A live tenant's slug.
    Slug(Slug),
}

/// An `Idempotency-Key` with the hash of the request it came with.
#[derive(Debug, Clone)]
pub struct IdempotencyRequest {
    /// The key the client chose.
    pub key: String,
    /// SHA-256 of the canonical request body.
    pub request_hash: Vec<u8>,
}

/// A response recorded for an idempotency key.
#[derive(Debug, Clone)]
pub struct StoredResponse {
    /// HTTP status.
    pub status: u16,
    /// JSON body.
    pub body: String,
}

/// A tenant written together with its event.
#[derive(Debug, Clone)]
pub struct Written {
    /// The tenant after the change.
    pub tenant: Tenant,
    /// The event that records it; `None` when nothing changed.
    pub event: Option<Event>,
}

/// What a create with an idempotency key did.
#[derive(Debug, Clone)]
pub enum CreateOutcome {
    /// A new tenant was written.
    Created(Box<Written>),
    /// The key was used before with the same request: its recorded response.
    Replayed(StoredResponse),
}

/// An API key as stored: its public record and the digest of its secret.
#[derive(Debug, Clone)]
pub struct StoredKey {
    /// The public record.
    pub key: ApiKeyOut,
    /// SHA-256 of the secret.
    pub secret_hash: Vec<u8>,
}

/// What a retention run removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// Events removed.
    pub events: u64,
    /// Idempotency records removed.
    pub idempotency_keys: u64,
    /// Webhook deliveries (with their attempts) removed.
    pub deliveries: u64,
}

/// The registry's storage, on whichever database the URL names.
#[derive(Debug, Clone)]
pub enum Store {
    /// Embedded SQLite (one node).
    Sqlite(SqliteStore),
    /// PostgreSQL (any number of replicas).
    Postgres(PgStore),
}

/// Runs the same call on whichever backend is in use.
macro_rules! on_backend {
    ($self:ident, $s:ident => $call:expr) => {
        match $self {
            Store::Sqlite($s) => $call,
            Store::Postgres($s) => $call,
        }
    };
}

mod accounts;
mod overview;
pub use accounts::{NewOperator, Operator, ProjectRole, SessionRecord, StoredOperator};
pub use overview::{HourlyDeliveries, ProjectOverview};

impl Store {
    /// Opens the database `url` names: `sqlite://path` (created if missing) or
    /// `postgres://…`. Does not migrate; call [`Store::migrate`].
    pub async fn connect(url: &str, options: &StoreOptions) -> Result<Self, ConnectError> {
        if url.starts_with("sqlite:") {
            Ok(Self::Sqlite(SqliteStore::connect(url, options).await?))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Self::Postgres(PgStore::connect(url, options).await?))
        } else {
            Err(ConnectError::UnsupportedUrl)
        }
    }

    /// Which database this is, for logs and the banner: `sqlite` or `postgres`.
    #[must_use]
    pub fn backend_name(&self) -> &'static str {
        match self {
            Self::Sqlite(_) => "sqlite",
            Self::Postgres(_) => "postgres",
        }
    }

    /// Applies the embedded migrations that have not run yet.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        on_backend!(self, s => s.migrate().await)
    }

    /// Whether the database answers and every embedded migration has been applied.
    pub async fn ready(&self) -> Result<bool, StoreError> {
        on_backend!(self, s => s.ready().await)
    }

    /// Closes every pooled connection.
    pub async fn close(&self) {
        on_backend!(self, s => s.close().await);
    }

    /// Creates a project and its first key, which has every scope (audited as `project.create`
    /// and `key.create`).
    pub async fn create_project(
        &self,
        name: &str,
        audit: &AuditContext,
    ) -> Result<(ProjectOut, ApiKeyOut, ApiKey), StoreError> {
        on_backend!(self, s => s.create_project(name, audit).await)
    }

    /// Every project, oldest first.
    pub async fn list_projects(&self) -> Result<Vec<ProjectOut>, StoreError> {
        on_backend!(self, s => s.list_projects().await)
    }

    /// Creates an API key for `project`, limited by the server's default rate limit.
    pub async fn create_key(
        &self,
        project: ProjectId,
        scopes: &[Scope],
        label: Option<&str>,
        audit: &AuditContext,
    ) -> Result<(ApiKeyOut, ApiKey), StoreError> {
        self.create_key_with_limit(project, scopes, label, None, audit).await
    }

    /// Creates an API key for `project` with its own rate limit (`None`: the server's default).
    pub async fn create_key_with_limit(
        &self,
        project: ProjectId,
        scopes: &[Scope],
        label: Option<&str>,
        rate_limit: Option<KeyRateLimit>,
        audit: &AuditContext,
    ) -> Result<(ApiKeyOut, ApiKey), StoreError> {
        on_backend!(self, s => s.create_key(project, scopes, label, rate_limit, audit).await)
    }

    /// The keys of `project`, oldest first (revoked ones included).
    pub async fn list_keys(&self, project: ProjectId) -> Result<Vec<ApiKeyOut>, StoreError> {
        on_backend!(self, s => s.list_keys(project).await)
    }

    /// Revokes a key by id; revoking twice keeps the first revocation time (and records
    /// nothing).
    pub async fn revoke_key(&self, key_id: &str, audit: &AuditContext) -> Result<ApiKeyOut, StoreError> {
        on_backend!(self, s => s.revoke_key(key_id, audit).await)
    }

    /// A key by id, with its secret's digest.
    pub async fn find_key(&self, key_id: &str) -> Result<Option<StoredKey>, StoreError> {
        on_backend!(self, s => s.find_key(key_id).await)
    }

    /// Records that a key was used at `at`.
    pub async fn touch_key(&self, key_id: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        on_backend!(self, s => s.touch_key(key_id, at).await)
    }

    /// Creates a tenant and its `tenant.created` event; records the response under the
    /// idempotency key, if one is given, in the same transaction. A key already recorded with the
    /// same request replays its response; with another request it is
    /// [`StoreError::IdempotencyMismatch`].
    pub async fn create_tenant(
        &self,
        project: ProjectId,
        new: NewTenant,
        rules: &WriteRules,
        idempotency: Option<&IdempotencyRequest>,
        audit: &AuditContext,
    ) -> Result<CreateOutcome, StoreError> {
        let outcome = on_backend!(self, s => s.create_tenant(project, new, rules, idempotency, audit).await)?;
        if let CreateOutcome::Created(written) = &outcome {
            crate::telemetry::tenant_written(project, written);
        }
        Ok(outcome)
    }

    /// Creates many tenants in one transaction, each with its `tenant.created` event (and
    /// deliveries), in order: all of them or none. For imports and for seeding benchmarks.
    pub async fn create_tenants(
        &self,
        project: ProjectId,
        tenants: Vec<NewTenant>,
        rules: &WriteRules,
        audit: &AuditContext,
    ) -> Result<Vec<Tenant>, StoreError> {
        let created = on_backend!(self, s => s.create_tenants(project, tenants, rules, audit).await)?;
        crate::telemetry::tenants_imported(project, created.len());
        Ok(created)
    }

    /// A tenant by id (any status) or by slug (live tenants only).
    pub async fn get_tenant(&self, project: ProjectId, tenant: &TenantRef) -> Result<Tenant, StoreError> {
        on_backend!(self, s => s.get_tenant(project, tenant).await)
    }

    /// Applies `changes`; writes a `tenant.updated` event only if something changed.
    pub async fn update_tenant(
        &self,
        project: ProjectId,
        tenant: &TenantRef,
        changes: TenantChanges,
        if_match: Option<i64>,
        rules: &WriteRules,
        audit: &AuditContext,
    ) -> Result<Written, StoreError> {
        let written =
            on_backend!(self, s => s.update_tenant(project, tenant, changes, if_match, rules, audit).await)?;
        crate::telemetry::tenant_written(project, &written);
        Ok(written)
    }

    /// Deletes a tenant (status `deleted`, slug released, version + 1, `tenant.deleted` event).
    /// Deleting a deleted tenant changes nothing.
    pub async fn delete_tenant(
        &self,
        project: ProjectId,
        tenant: &TenantRef,
        if_match: Option<i64>,
        audit: &AuditContext,
    ) -> Result<Written, StoreError> {
        let written = on_backend!(self, s => s.delete_tenant(project, tenant, if_match, audit).await)?;
        crate::telemetry::tenant_written(project, &written);
        Ok(written)
    }

    /// One page of tenants in id order, and the feed position the listing reflects.
    pub async fn list_tenants(
        &self,
        project: ProjectId,
        filter: &TenantFilter,
        after: Option<PageCursor>,
        limit: u32,
    ) -> Result<TenantPage, StoreError> {
        on_backend!(self, s => s.list_tenants(project, filter, after, limit).await)
    }

    /// Events after `after` (default: the oldest retained), at most `limit`, in seq order.
    pub async fn list_events(
        &self,
        project: ProjectId,
        after: Option<EventCursor>,
        limit: u32,
    ) -> Result<(Vec<Event>, EventCursor, bool), StoreError> {
        on_backend!(self, s => s.list_events(project, after, limit).await)
    }

    /// Wakes whoever waits for new deliveries (the dispatcher) in this process.
    #[must_use]
    pub fn delivery_waker(&self) -> std::sync::Arc<tokio::sync::Notify> {
        on_backend!(self, s => s.waker())
    }

    /// Creates a webhook endpoint.
    pub async fn create_endpoint(
        &self,
        project: ProjectId,
        new: NewEndpoint,
        audit: &AuditContext,
    ) -> Result<EndpointRecord, StoreError> {
        on_backend!(self, s => s.create_endpoint(project, new, audit).await)
    }

    /// The project's endpoints, oldest first.
    pub async fn list_endpoints(&self, project: ProjectId) -> Result<Vec<EndpointRecord>, StoreError> {
        on_backend!(self, s => s.list_endpoints(project).await)
    }

    /// One endpoint of the project.
    pub async fn get_endpoint(
        &self,
        project: ProjectId,
        id: EndpointId,
    ) -> Result<EndpointRecord, StoreError> {
        on_backend!(self, s => s.get_endpoint(project, id).await)
    }

    /// An endpoint by id alone, for the dispatcher.
    pub async fn endpoint_for_delivery(&self, id: EndpointId) -> Result<EndpointRecord, StoreError> {
        on_backend!(self, s => s.endpoint_for_delivery(id).await)
    }

    /// Changes an endpoint; enabling it clears why it was disabled. Changes that change
    /// nothing return the endpoint as it is, without writing.
    pub async fn update_endpoint(
        &self,
        project: ProjectId,
        id: EndpointId,
        changes: EndpointChanges,
        audit: &AuditContext,
    ) -> Result<EndpointRecord, StoreError> {
        on_backend!(self, s => s.update_endpoint(project, id, changes, audit).await)
    }

    /// Deletes an endpoint and its delivery log.
    pub async fn delete_endpoint(
        &self,
        project: ProjectId,
        id: EndpointId,
        audit: &AuditContext,
    ) -> Result<(), StoreError> {
        on_backend!(self, s => s.delete_endpoint(project, id, audit).await)
    }

    /// Replaces the signing key; the old one keeps signing until `previous_expires_at`.
    pub async fn rotate_endpoint_secret(
        &self,
        project: ProjectId,
        id: EndpointId,
        secret: Vec<u8>,
        previous_expires_at: DateTime<Utc>,
        audit: &AuditContext,
    ) -> Result<EndpointRecord, StoreError> {
        on_backend!(self, s => s.rotate_endpoint_secret(project, id, secret, previous_expires_at, audit).await)
    }

    /// Disables an endpoint, recording why.
    pub async fn disable_endpoint(&self, id: EndpointId, reason: &str) -> Result<(), StoreError> {
        on_backend!(self, s => s.disable_endpoint(id, reason).await)
    }

    /// Queues a delivery of `payload` to one endpoint, outside the changes feed (test events,
    /// audited as `webhook_endpoint.send_test`).
    pub async fn enqueue_delivery(
        &self,
        project: ProjectId,
        endpoint: EndpointId,
        event_id: &str,
        event_type: &str,
        payload: &str,
        audit: &AuditContext,
    ) -> Result<DeliveryId, StoreError> {
        on_backend!(self, s => s.enqueue_delivery(project, endpoint, event_id, event_type, payload, audit).await)
    }

    /// Leases up to `limit` due deliveries until `lease_until`, at most `per_endpoint` in flight
    /// to any endpoint counting the ones already `in_flight`.
    pub async fn claim_deliveries(
        &self,
        limit: u32,
        lease_until: DateTime<Utc>,
        in_flight: &std::collections::HashMap<EndpointId, u32>,
        per_endpoint: u32,
    ) -> Result<Vec<ClaimedDelivery>, StoreError> {
        on_backend!(self, s => s.claim_deliveries(limit, lease_until, in_flight, per_endpoint).await)
    }

    /// Records attempts, in one transaction, and moves each delivery (and its endpoint's health)
    /// on. Returns the endpoints that are failing, with when their current run of failures
    /// started.
    pub async fn record_attempts(
        &self,
        attempts: &[(ClaimedDelivery, AttemptRecord)],
    ) -> Result<Vec<(EndpointId, DateTime<Utc>)>, StoreError> {
        on_backend!(self, s => s.record_attempts(attempts).await)
    }

    /// When the earliest pending delivery is due, if any.
    pub async fn next_delivery_due(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        on_backend!(self, s => s.next_delivery_due().await)
    }

    /// One page of an endpoint's deliveries, newest first, with their attempts.
    pub async fn list_deliveries(
        &self,
        project: ProjectId,
        endpoint: EndpointId,
        status: Option<DeliveryStatus>,
        before: Option<DeliveryId>,
        limit: u32,
    ) -> Result<DeliveryPage, StoreError> {
        on_backend!(self, s => s.list_deliveries(project, endpoint, status, before, limit).await)
    }

    /// Sends a delivery again from the start of the retry schedule.
    pub async fn resend_delivery(
        &self,
        project: ProjectId,
        id: DeliveryId,
        audit: &AuditContext,
    ) -> Result<DeliveryOut, StoreError> {
        on_backend!(self, s => s.resend_delivery(project, id, audit).await)
    }

    /// Queues again every failed delivery of an endpoint created at or after `since`; records
    /// nothing when there was none.
    pub async fn recover_deliveries(
        &self,
        project: ProjectId,
        endpoint: EndpointId,
        since: DateTime<Utc>,
        audit: &AuditContext,
    ) -> Result<u64, StoreError> {
        on_backend!(self, s => s.recover_deliveries(project, endpoint, since, audit).await)
    }

    /// Records what an app instance reports about its sync.
    pub async fn report_sync_status(
        &self,
        project: ProjectId,
        status: &carcosa_core::sync_status::SyncStatusIn,
    ) -> Result<(), StoreError> {
        on_backend!(self, s => s.report_sync_status(project, status).await)
    }

    /// Every instance's sync state, with its lag behind the feed's head.
    pub async fn list_sync_status(
        &self,
        project: ProjectId,
    ) -> Result<carcosa_core::sync_status::SyncStatusList, StoreError> {
        on_backend!(self, s => s.list_sync_status(project).await)
    }

    /// One page of the project's audit log, newest first.
    pub async fn list_audit(
        &self,
        project: ProjectId,
        filter: &AuditFilter,
        before: Option<AuditCursor>,
        limit: u32,
    ) -> Result<AuditPage, StoreError> {
        on_backend!(self, s => s.list_audit(project, filter, before, limit).await)
    }

    /// Removes audit entries recorded before `before`; returns how many.
    pub async fn prune_audit(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        on_backend!(self, s => s.prune_audit(before).await)
    }

    /// Removes events that occurred before `events_before` and idempotency records created before
    /// `keys_before`.
    pub async fn prune(
        &self,
        events_before: DateTime<Utc>,
        keys_before: DateTime<Utc>,
    ) -> Result<PruneReport, StoreError> {
        on_backend!(self, s => s.prune(events_before, keys_before).await)
    }

    /// Tenants per project and status, webhook endpoints per project and state, and pending
    /// deliveries: what the store-derived gauges of `/metrics` show.
    pub async fn gauges(&self) -> Result<StoreGauges, StoreError> {
        on_backend!(self, s => s.gauges().await)
    }
}

/// Grouped counts for the store-derived gauges (see [`Store::gauges`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreGauges {
    /// `(project id, tenant status, count)`.
    pub tenants: Vec<(String, String, i64)>,
    /// `(project id, endpoint state, count)`: `enabled`, `failing` (enabled, its last attempts
    /// failed), `disabled` (by someone), `auto_disabled` (by Carcosa: 410 Gone or failing too
    /// long).
    pub endpoints: Vec<(String, String, i64)>,
    /// Deliveries waiting for an attempt (due now or later).
    pub queue_depth: i64,
}

/// A webhook endpoint as stored: its public record and its encrypted signing keys.
#[derive(Debug, Clone)]
pub struct EndpointRecord {
    /// The public record.
    pub endpoint: EndpointOut,
    /// The project it belongs to.
    pub project: ProjectId,
    /// The current signing key, encrypted.
    pub secret: Vec<u8>,
    /// The previous signing key during a rotation's grace period, encrypted.
    pub previous_secret: Option<Vec<u8>>,
}

/// A checked new endpoint, its key already encrypted.
#[derive(Debug, Clone)]
pub struct NewEndpoint {
    /// Where to send.
    pub url: String,
    /// A note for people.
    pub description: Option<String>,
    /// Patterns; `None` = every type.
    pub event_types: Option<Vec<String>>,
    /// Whether to send.
    pub enabled: bool,
    /// The encrypted signing key.
    pub secret: Vec<u8>,
}

/// Checked changes to an endpoint.
#[derive(Debug, Clone, Default)]
pub struct EndpointChanges {
    /// New URL.
    pub url: Option<String>,
    /// New description (`Some(None)` clears).
    pub description: Option<Option<String>>,
    /// New filter (`Some(None)` = every type).
    pub event_types: Option<Option<Vec<String>>>,
    /// Enable or disable.
    pub enabled: Option<bool>,
}

impl EndpointChanges {
    /// Whether applying these changes to `current` would change anything.
    #[must_use]
    pub fn would_change(&self, current: &EndpointOut) -> bool {
        self.url.as_ref().is_some_and(|url| *url != current.url)
            || self.description.as_ref().is_some_and(|d| *d != current.description)
            || self.event_types.as_ref().is_some_and(|t| *t != current.event_types)
            || self.enabled.is_some_and(|enabled| {
                // Enabling also clears why it was disabled and how long it has been failing.
                enabled != current.enabled
                    || (enabled && (current.disabled_reason.is_some() || current.failing_since.is_some()))
            })
    }
}

/// A delivery a dispatcher has claimed (leased) for one attempt.
#[derive(Debug, Clone)]
pub struct ClaimedDelivery {
    /// The delivery.
    pub id: DeliveryId,
    /// Its endpoint.
    pub endpoint_id: EndpointId,
    /// The `webhook-id`.
    pub event_id: String,
    /// The exact body.
    pub payload: String,
    /// Attempts made before this one.
    pub attempt_count: i32,
    /// Position in the retry schedule.
    pub retry_index: i32,
    /// When the event was committed.
    pub created_at: DateTime<Utc>,
}

/// What became of one attempt, and what happens next.
#[derive(Debug, Clone)]
pub struct AttemptRecord {
    /// When it was made.
    pub attempted_at: DateTime<Utc>,
    /// The receiver's status, if it answered.
    pub response_status: Option<u16>,
    /// Milliseconds to the answer or failure.
    pub latency_ms: i64,
    /// What went wrong, if anything.
    pub error: Option<String>,
    /// The first 4 KiB of the answer.
    pub response_body: Option<String>,
    /// The delivery's next state.
    pub next: NextStep,
}

/// A delivery's state after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextStep {
    /// Delivered.
    Succeeded,
    /// Try again at this time.
    RetryAt(DateTime<Utc>),
    /// No attempts left.
    Failed,
    /// The receiver said 410 Gone: fail the delivery and disable the endpoint.
    EndpointGone,
}

/// Why the store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The URL is neither `sqlite:` nor `postgres://`.
    #[error("unsupported database URL: use sqlite://PATH or postgres://USER@HOST/DB")]
    UnsupportedUrl,
    /// The database refused or could not be reached.
    #[error("cannot open the database: {0}")]
    Database(#[from] sqlx::Error),
}

/// A few places per project, taken before a tenant write begins its transaction.
///
/// A project's tenant writes are serialised by the database anyway (the project row's lock on
/// PostgreSQL, the single writer on SQLite). Letting only a few of them wait inside the database
/// — enough to keep the next one ready the moment the current one commits — and queueing the
/// rest here, before they take a pooled connection, keeps a burst of writes to one project from
/// holding every connection while it waits, which would starve reads and the webhook dispatcher.
#[derive(Debug, Clone, Default)]
pub(crate) struct WriteGates {
    gates: std::sync::Arc<
        std::sync::Mutex<std::collections::HashMap<ProjectId, std::sync::Arc<tokio::sync::Semaphore>>>,
    >,
}

/// Tenant writes of one project that may wait in the database at once.
const WRITERS_PER_PROJECT: usize = 4;

impl WriteGates {
    /// Waits for a place to write to the project.
    pub(crate) async fn enter(&self, project: ProjectId) -> tokio::sync::OwnedSemaphorePermit {
        let gate = {
            let mut gates = self.gates.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            gates
                .entry(project)
                .or_insert_with(|| std::sync::Arc::new(tokio::sync::Semaphore::new(WRITERS_PER_PROJECT)))
                .clone()
        };
        gate.acquire_owned().await.expect("the gate is never closed")
    }
}

/// Now, truncated to microseconds (what PostgreSQL keeps), so a tenant read back equals the one
/// written and the snapshot in its event.
pub(crate) fn now() -> DateTime<Utc> {
    use chrono::SubsecRound;
    Utc::now().trunc_subsecs(6)
}

/// A new audit entry id. Ids made by this process grow strictly, even within a millisecond, so
/// the entries of one transaction (a project and its first key) list in the order they were
/// written.
pub(crate) fn next_audit_id() -> carcosa_core::AuditId {
    static GENERATOR: std::sync::Mutex<ulid::Generator> = std::sync::Mutex::new(ulid::Generator::new());
    let mut generator = GENERATOR.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    // The random part overflows only after 2^80 ids in one millisecond.
    let ulid = generator.generate().unwrap_or_else(|_| ulid::Ulid::new());
    carcosa_core::AuditId::from_ulid(ulid)
}

/// Escapes `%`, `_` and `\` for a `LIKE … ESCAPE '\'` pattern.
pub(crate) fn like_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Whether a database error says text could not be stored (PostgreSQL refuses the NUL character
/// in `TEXT` and `JSONB`).
pub(crate) fn is_unstorable_text(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if matches!(db.code().as_deref(), Some("22021" | "22P05")))
}

/// Whether a database error is a unique-constraint violation.
pub(crate) fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.is_unique_violation())
}

#[cfg(test)]
mod tests {
    use super::like_escape;

    #[test]
    fn like_patterns_are_escaped() {
        assert_eq!(like_escape("a%b_c\\d"), "a\\%b\\_c\\\\d");
        assert_eq!(like_escape("acme"), "acme");
    }
}
