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
//! * slugs are unique among a project's live tenants (a partial unique index backs the check).

mod postgres;
mod sqlite;

use std::time::Duration;

use carcosa_core::api::{ApiKeyOut, NewTenant, ProjectOut, TenantChanges, TenantPage};
use carcosa_core::slug::ReservedSlugs;
use carcosa_core::{
    ApiKey, Event, EventCursor, PageCursor, ProjectId, Scope, Slug, Tenant, TenantStatus,
};
use chrono::{DateTime, Utc};

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
    /// The database failed or is unreachable.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    /// Applying migrations failed.
    #[error(transparent)]
    Migrate(#[from] sqlx::migrate::MigrateError),
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
        Self {
            max_connections: 10,
            acquire_timeout: Duration::from_secs(10),
        }
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

    /// Creates a project and its first key, which has every scope.
    pub async fn create_project(
        &self,
        name: &str,
    ) -> Result<(ProjectOut, ApiKeyOut, ApiKey), StoreError> {
        on_backend!(self, s => s.create_project(name).await)
    }

    /// Every project, oldest first.
    pub async fn list_projects(&self) -> Result<Vec<ProjectOut>, StoreError> {
        on_backend!(self, s => s.list_projects().await)
    }

    /// Creates an API key for `project`.
    pub async fn create_key(
        &self,
        project: ProjectId,
        scopes: &[Scope],
        label: Option<&str>,
    ) -> Result<(ApiKeyOut, ApiKey), StoreError> {
        on_backend!(self, s => s.create_key(project, scopes, label).await)
    }

    /// The keys of `project`, oldest first (revoked ones included).
    pub async fn list_keys(&self, project: ProjectId) -> Result<Vec<ApiKeyOut>, StoreError> {
        on_backend!(self, s => s.list_keys(project).await)
    }

    /// Revokes a key by id; revoking twice keeps the first revocation time.
    pub async fn revoke_key(&self, key_id: &str) -> Result<ApiKeyOut, StoreError> {
        on_backend!(self, s => s.revoke_key(key_id).await)
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
    ) -> Result<CreateOutcome, StoreError> {
        on_backend!(self, s => s.create_tenant(project, new, rules, idempotency).await)
    }

    /// A tenant by id (any status) or by slug (live tenants only).
    pub async fn get_tenant(
        &self,
        project: ProjectId,
        tenant: &TenantRef,
    ) -> Result<Tenant, StoreError> {
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
    ) -> Result<Written, StoreError> {
        on_backend!(self, s => s.update_tenant(project, tenant, changes, if_match, rules).await)
    }

    /// Deletes a tenant (status `deleted`, slug released, version + 1, `tenant.deleted` event).
    /// Deleting a deleted tenant changes nothing.
    pub async fn delete_tenant(
        &self,
        project: ProjectId,
        tenant: &TenantRef,
        if_match: Option<i64>,
    ) -> Result<Written, StoreError> {
        on_backend!(self, s => s.delete_tenant(project, tenant, if_match).await)
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

    /// The events of one tenant, newest first, at most `limit`.
    pub async fn tenant_events(
        &self,
        project: ProjectId,
        tenant: carcosa_core::TenantId,
        limit: u32,
    ) -> Result<Vec<Event>, StoreError> {
        on_backend!(self, s => s.tenant_events(project, tenant, limit).await)
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

/// Now, truncated to microseconds (what PostgreSQL keeps), so a tenant read back equals the one
/// written and the snapshot in its event.
pub(crate) fn now() -> DateTime<Utc> {
    use chrono::SubsecRound;
    Utc::now().trunc_subsecs(6)
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
