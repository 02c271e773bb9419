//! The sync engine: keeps a [`LocalStore`] equal to the Carcosa project its [`Client`] reaches.
//!
//! * [`Sync::incremental`] reads the changes feed from the stored cursor and applies each page
//!   together with the cursor after it, in one local transaction. A cursor past the feed's
//!   retention (`410 cursor_expired`) falls back to a full sync by itself.
//! * [`Sync::full`] pages through every live tenant, remembering the first page's `as_of`, then
//!   continues incrementally from `as_of`, then reconciles deletions: linked rows that neither the
//!   listing nor a later event mentioned were deleted in Carcosa, and the deletion policy applies.
//! * [`Sync::apply_event`] applies one event at once (the webhook fast path); the cursor only
//!   moves through the feed, so a lost webhook delays a change but never loses it.
//!
//! Runs never overlap: each takes the engine's lock for its whole length.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use carcosa_core::{Event, EventCursor, Tenant};
use tokio::sync::Mutex;

use crate::client::{Client, Error as ClientError, ListTenants};
use crate::local::{Applied, ChangeKind, DeletionPolicy, LocalError, LocalStore};

/// Tenants and events read per request.
const PAGE: u32 = 1000;

/// How the background loop ([`Sync::run`]) paces itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    /// Between incremental runs (default 5 minutes).
    pub incremental_every: Duration,
    /// Between full runs that reconcile deletions (default a day).
    pub full_every: Duration,
    /// The first wait after a failure; it doubles up to `incremental_every` (default 1 s).
    pub backoff_start: Duration,
}

impl Default for Schedule {
    fn default() -> Self {
        Self {
            incremental_every: Duration::from_secs(300),
            full_every: Duration::from_secs(86_400),
            backoff_start: Duration::from_secs(1),
        }
    }
}

/// What a sync run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// Rows inserted.
    pub created: u64,
    /// Rows changed.
    pub updated: u64,
    /// Tenants deleted locally.
    pub deleted: u64,
    /// Snapshots that were not newer than the table.
    pub unchanged: u64,
    /// Tenants that could not be applied.
    pub failed: u64,
    /// How long the run took.
    pub duration: Duration,
    /// The feed position reached.
    pub cursor: EventCursor,
}

/// Runs a hook with retries; whether it finally succeeded.
async fn run_hook(hook: &Hook, tenant: &Tenant) -> bool {
    let mut wait = HOOK_BACKOFF;
    for attempt in 1..=HOOK_ATTEMPTS {
        match hook(tenant.clone()).await {
            Ok(()) => return true,
            Err(err) if attempt < HOOK_ATTEMPTS => {
                tracing::warn!(tenant_id = %tenant.id, attempt, error = %err, "a sync hook failed; trying again");
                tokio::time::sleep(wait).await;
                wait *= 2;
            }
            Err(err) => {
                tracing::error!(tenant_id = %tenant.id, error = %err, "a sync hook failed for good; the change is applied, the hook is not");
            }
        }
    }
    false
}

impl SyncReport {
    fn add(&mut self, applied: Applied) {
        self.created += applied.created;
        self.updated += applied.updated;
        self.deleted += applied.deleted;
        self.unchanged += applied.unchanged;
    }
}

/// Why a sync run failed.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// Talking to Carcosa failed.
    #[error(transparent)]
    Api(#[from] ClientError),
    /// Writing the local table failed.
    #[error(transparent)]
    Local(#[from] LocalError),
    /// The engine is set up in a way it cannot run (say, the callback deletion policy without
    /// an `on_deleted` hook).
    #[error("the sync is misconfigured: {0}")]
    Misconfigured(String),
}

/// A hook: app code to run after a change is committed locally (provisioning, emails, …).
/// An `Err` is retried; see [`Sync::on_created`].
pub type Hook = std::sync::Arc<
    dyn Fn(Tenant) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>> + Send>>
        + Send
        + std::marker::Sync,
>;

/// How often a failing hook is tried, and the first wait between tries (it doubles).
const HOOK_ATTEMPTS: u32 = 3;
const HOOK_BACKOFF: Duration = Duration::from_millis(100);

#[derive(Default)]
struct Hooks {
    created: Option<Hook>,
    updated: Option<Hook>,
    deleted: Option<Hook>,
    progress: Option<ProgressFn>,
    listeners: Vec<ChangeListener>,
}

/// Code told of every change the moment it is committed locally, before the hooks run (cache
/// invalidation). It is not retried, and must be quick; see [`Sync::on_change`].
pub type ChangeListener = std::sync::Arc<
    dyn Fn(Tenant) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>
        + Send
        + std::marker::Sync,
>;

impl std::fmt::Debug for Hooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hooks")
            .field("created", &self.created.is_some())
            .field("updated", &self.updated.is_some())
            .field("deleted", &self.deleted.is_some())
            .field("progress", &self.progress.is_some())
            .field("listeners", &self.listeners.len())
            .finish()
    }
}

/// Keeps one local table in sync with one Carcosa project.
#[derive(Debug)]
pub struct Sync {
    client: Client,
    store: LocalStore,
    running: Mutex<()>,
    instance: Option<String>,
    hooks: Hooks,
}

/// Where a long full sync is, for progress displays (see [`Sync::on_progress`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Tenants listed and applied so far.
    Listing {
        /// Tenants read.
        tenants: u64,
    },
    /// Events applied from the feed so far (after the listing, or in an incremental run).
    Feed {
        /// Events read.
        events: u64,
    },
}

/// A progress callback; see [`Sync::on_progress`].
pub type ProgressFn = std::sync::Arc<dyn Fn(Progress) + Send + std::marker::Sync>;

/// Which kind of run, for metrics and spans.
#[derive(Debug, Clone, Copy)]
enum RunKind {
    Full,
    Incremental,
}

impl RunKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Full => "full",
            Self::Incremental => "incremental",
        }
    }
}

/// Counts and logs a finished run: `carcosa_sync_runs_total{kind, outcome}`, its duration, the
/// tenants it changed (`carcosa_sync_tenants_total{change}`), the cursor reached, and the lag
/// (none: a run reads the feed to its end).
fn record_run(kind: RunKind, outcome: &Result<SyncReport, SyncError>, elapsed: Duration) {
    let result = if outcome.is_ok() { "ok" } else { "error" };
    metrics::counter!("carcosa_sync_runs_total", "kind" => kind.as_str(), "outcome" => result).increment(1);
    metrics::histogram!("carcosa_sync_duration_seconds", "kind" => kind.as_str())
        .record(elapsed.as_secs_f64());
    match outcome {
        Ok(report) => {
            record_changes(report);
            #[expect(clippy::cast_precision_loss, reason = "a gauge; positions stay far below 2^53")]
            metrics::gauge!("carcosa_sync_cursor").set(report.cursor.seq() as f64);
            metrics::gauge!("carcosa_sync_lag_events").set(0.0);
            tracing::info!(
                kind = kind.as_str(),
                created = report.created,
                updated = report.updated,
                deleted = report.deleted,
                unchanged = report.unchanged,
                failed = report.failed,
                cursor = %report.cursor,
                duration_ms = elapsed.as_millis(),
                "sync run done"
            );
        }
        Err(err) => tracing::warn!(kind = kind.as_str(), error = %err, "sync run failed"),
    }
}

/// `carcosa_sync_lag_events`: how many events past the stored cursor the feed is known to hold,
/// learnt from a webhook carrying event `seq` (the next run brings it back to 0).
fn record_lag(seq: i64, cursor: EventCursor) {
    #[expect(clippy::cast_precision_loss, reason = "a gauge; positions stay far below 2^53")]
    metrics::gauge!("carcosa_sync_lag_events").set((seq - cursor.seq()).max(0) as f64);
}

/// `carcosa_sync_tenants_total{change}` for what a report counts.
fn record_changes(report: &SyncReport) {
    for (change, n) in [
        ("created", report.created),
        ("updated", report.updated),
        ("deleted", report.deleted),
        ("unchanged", report.unchanged),
        ("failed", report.failed),
    ] {
        if n > 0 {
            metrics::counter!("carcosa_sync_tenants_total", "change" => change).increment(n);
        }
    }
}

impl Sync {
    /// An engine writing through `store` what `client` reads.
    #[must_use]
    pub fn new(client: Client, store: LocalStore) -> Self {
        Self { client, store, running: Mutex::new(()), instance: None, hooks: Hooks::default() }
    }

    /// Tells `listener` of every change as soon as it is committed locally (before the hooks),
    /// with the tenant as written.
    #[must_use]
    pub fn on_change(mut self, listener: ChangeListener) -> Self {
        self.hooks.listeners.push(listener);
        self
    }

    /// Keeps a tenant-detection cache fresh: every change this engine applies invalidates the
    /// tenant's entries at once, so the very next request sees a rename, a suspension or a
    /// deletion.
    #[cfg(feature = "axum")]
    #[must_use]
    pub fn invalidating(self, cache: crate::detect::TenantCache) -> Self {
        self.on_change(std::sync::Arc::new(move |tenant| {
            let cache = cache.clone();
            Box::pin(async move { cache.invalidate(&tenant).await })
        }))
    }

    /// Calls `progress` as a full sync pages through the tenants and as the feed is read (after
    /// each page), so a command line can draw a progress display.
    #[must_use]
    pub fn on_progress(mut self, progress: ProgressFn) -> Self {
        self.hooks.progress = Some(progress);
        self
    }

    fn progress(&self, progress: Progress) {
        if let Some(callback) = &self.hooks.progress {
            callback(progress);
        }
    }

    /// Runs `run` under the engine's lock, inside a span, and records its outcome (metrics,
    /// the sync status on the server).
    async fn run_locked<F>(&self, kind: RunKind, run: F) -> Result<SyncReport, SyncError>
    where
        F: std::future::Future<Output = Result<SyncReport, SyncError>>,
    {
        use tracing::Instrument;
        let _running = self.running.lock().await;
        let started = Instant::now();
        let outcome = async {
            if self.store.policy() == DeletionPolicy::Callback && self.hooks.deleted.is_none() {
                return Err(SyncError::Misconfigured(
                    "the callback deletion policy needs an on_deleted hook".into(),
                ));
            }
            run.await
        }
        .instrument(
            tracing::info_span!("carcosa_sync", kind = kind.as_str(), table = %self.store.mapping().table),
        )
        .await;
        record_run(kind, &outcome, started.elapsed());
        self.report(&outcome).await;
        outcome
    }

    /// Runs `hook` after a tenant row is inserted (committed). A hook that fails is tried
    /// again (three tries in all, with backoff); if it still fails, the run's report counts it in
    /// `failed` and the error is logged. It never blocks the cursor or the other tenants.
    #[must_use]
    pub fn on_created(mut self, hook: Hook) -> Self {
        self.hooks.created = Some(hook);
        self
    }

    /// Runs `hook` after a tenant row is changed; see [`Sync::on_created`].
    #[must_use]
    pub fn on_updated(mut self, hook: Hook) -> Self {
        self.hooks.updated = Some(hook);
        self
    }

    /// Runs `hook` after a tenant is deleted locally (by the policy); see [`Sync::on_created`].
    /// With [`DeletionPolicy::Callback`] this hook *is* the deletion: the row is left to it.
    #[must_use]
    pub fn on_deleted(mut self, hook: Hook) -> Self {
        self.hooks.deleted = Some(hook);
        self
    }

    /// Applies snapshots (and the cursor) locally, with what follows from them.
    async fn apply(
        &self,
        tenants: &[Tenant],
        cursor: Option<EventCursor>,
        report: &mut SyncReport,
    ) -> Result<(), SyncError> {
        let mut set_aside = self.apply_once(tenants, cursor, report).await?;
        // Rows that gave up a slug get their current state from Carcosa: if the slug was taken
        // by a stale snapshot, it goes back; if the tenant really changed, the change lands
        // now. Current snapshots agree with each other, so this settles within a round or two.
        for _ in 0..3 {
            if set_aside.is_empty() {
                break;
            }
            let mut current = Vec::new();
            for id in &set_aside {
                match self.client.get_tenant(id).await {
                    Ok(tenant) => current.push(tenant),
                    Err(err) => {
                        tracing::warn!(tenant_id = %id, error = %err, "cannot fetch a tenant whose slug was set aside; the next full sync repairs it");
                    }
                }
            }
            set_aside = self.apply_once(&current, None, report).await?;
        }
        Ok(())
    }

    /// Applies snapshots (and the cursor) locally, tells the listeners, runs the hooks; returns
    /// the tenants whose rows gave up their slug.
    async fn apply_once(
        &self,
        tenants: &[Tenant],
        cursor: Option<EventCursor>,
        report: &mut SyncReport,
    ) -> Result<Vec<String>, SyncError> {
        let mut applied = self.store.apply(tenants, cursor).await?;
        for (_, tenant) in &applied.changes {
            for listener in &self.hooks.listeners {
                listener(tenant.clone()).await;
            }
        }
        for (kind, tenant) in &applied.changes {
            let hook = match kind {
                ChangeKind::Created => &self.hooks.created,
                ChangeKind::Updated => &self.hooks.updated,
                ChangeKind::Deleted => &self.hooks.deleted,
            };
            if let Some(hook) = hook
                && !run_hook(hook, tenant).await
            {
                report.failed += 1;
            }
        }
        let set_aside = std::mem::take(&mut applied.set_aside);
        report.add(applied);
        Ok(set_aside)
    }

    /// Reports each run's outcome to the server under this instance name
    /// (`POST /v1/sync-status`), so operators see this app's lag.
    #[must_use]
    pub fn reporting_as(mut self, instance: impl Into<String>) -> Self {
        self.instance = Some(instance.into());
        self
    }

    /// Tells the server how the last run went (if an instance name is set). A failure to report
    /// is logged, never fatal.
    async fn report(&self, outcome: &Result<SyncReport, SyncError>) {
        let Some(instance) = &self.instance else { return };
        let cursor = match outcome {
            Ok(report) => report.cursor,
            Err(_) => self.store.cursor().await.ok().flatten().unwrap_or_default(),
        };
        let now = chrono::Utc::now();
        let status = carcosa_core::sync_status::SyncStatusIn {
            instance: instance.clone(),
            cursor,
            last_success_at: outcome.is_ok().then_some(now),
            last_error: outcome.as_ref().err().map(ToString::to_string),
            last_error_at: outcome.is_err().then_some(now),
        };
        if let Err(err) = self.client.report_sync_status(&status).await {
            tracing::warn!(error = %err, "cannot report the sync status");
        }
    }

    /// The local store.
    #[must_use]
    pub fn store(&self) -> &LocalStore {
        &self.store
    }

    /// Every live tenant, then the feed from the listing's position, then deletions.
    pub async fn full(&self) -> Result<SyncReport, SyncError> {
        self.run_locked(RunKind::Full, self.full_locked()).await
    }

    /// The feed from the stored cursor (a full sync when there is none, or it expired).
    pub async fn incremental(&self) -> Result<SyncReport, SyncError> {
        self.run_locked(RunKind::Incremental, self.incremental_locked()).await
    }

    async fn incremental_locked(&self) -> Result<SyncReport, SyncError> {
        match self.store.cursor().await? {
            None => self.full_locked().await,
            Some(cursor) => {
                let started = Instant::now();
                let mut report = SyncReport::default();
                match self.follow_feed(cursor, &mut report, &mut HashSet::new()).await {
                    Err(SyncError::Api(err)) if err.is_cursor_expired() => {
                        tracing::warn!("the stored cursor is past the feed's retention: running a full sync");
                        self.full_locked().await
                    }
                    Err(err) => Err(err),
                    Ok(()) => {
                        report.duration = started.elapsed();
                        Ok(report)
                    }
                }
            }
        }
    }

    /// Applies one event's snapshot now (if it is newer than the table's row). The cursor is
    /// left alone: it only moves through the feed.
    pub async fn apply_event(&self, event: &Event) -> Result<SyncReport, SyncError> {
        let started = Instant::now();
        let mut report =
            SyncReport { cursor: self.store.cursor().await?.unwrap_or_default(), ..SyncReport::default() };
        self.apply(std::slice::from_ref(&event.tenant), None, &mut report).await?;
        report.duration = started.elapsed();
        record_changes(&report);
        record_lag(event.seq, report.cursor);
        Ok(report)
    }

    /// Syncs until `shutdown` completes: incrementally at once (a full sync if there is no
    /// cursor) and then every `incremental_every`, a full reconcile every `full_every`, and
    /// while Carcosa is unreachable, retries with exponential backoff. A run under way when
    /// `shutdown` completes is finished first (its page and cursor commit together anyway).
    pub async fn run(&self, schedule: Schedule, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut backoff = schedule.backoff_start;
        let mut last_full = Instant::now();
        loop {
            let full_due = last_full.elapsed() >= schedule.full_every;
            let outcome = if full_due { self.full().await } else { self.incremental().await };
            let wait = match outcome {
                // Each run logs its own outcome (`record_run`).
                Ok(_) => {
                    if full_due {
                        last_full = Instant::now();
                    }
                    backoff = schedule.backoff_start;
                    schedule.incremental_every
                }
                Err(_) => {
                    let wait = backoff;
                    backoff = (backoff * 2).min(schedule.incremental_every.max(schedule.backoff_start));
                    tracing::info!(retry_in_ms = wait.as_millis(), "retrying the sync after its failure");
                    wait
                }
            };
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = &mut shutdown => return,
            }
        }
    }

    async fn full_locked(&self) -> Result<SyncReport, SyncError> {
        let started = Instant::now();
        let mut report = SyncReport::default();
        let mut listed = HashSet::new();
        let mut as_of = None;
        let mut cursor = None;
        loop {
            let page = self
                .client
                .list_tenants(&ListTenants { limit: Some(PAGE), cursor, ..ListTenants::default() })
                .await?;
            // The first page's position: every change after it is in the feed.
            let start = *as_of.get_or_insert(page.as_of);
            listed.extend(page.data.iter().map(|t| t.id.to_string()));
            self.apply(&page.data, None, &mut report).await?;
            self.progress(Progress::Listing { tenants: listed.len() as u64 });
            report.cursor = start;
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        let start = as_of.unwrap_or_default();
        let mut touched = HashSet::new();
        self.follow_feed(start, &mut report, &mut touched).await?;
        if report.cursor == start {
            // Nothing after `as_of`: store the position all the same.
            self.store.apply(&[], Some(start)).await?;
        }
        listed.extend(touched);
        self.reconcile(&listed, &mut report).await?;
        report.duration = started.elapsed();
        tracing::debug!(
            created = report.created,
            updated = report.updated,
            deleted = report.deleted,
            unchanged = report.unchanged,
            cursor = %report.cursor,
            "full sync done"
        );
        Ok(report)
    }

    /// Linked rows the listing and the feed did not mention belong to tenants deleted in Carcosa
    /// meanwhile: their deleted snapshots are fetched and applied like any change (so the policy
    /// and the hooks see the real tenant). A tenant Carcosa does not know at all is forgotten by
    /// the policy without a snapshot.
    async fn reconcile(&self, listed: &HashSet<String>, report: &mut SyncReport) -> Result<(), SyncError> {
        let orphans = self.store.orphans(listed).await?;
        if orphans.is_empty() {
            return Ok(());
        }
        tracing::info!(count = orphans.len(), "reconciling rows of tenants deleted in Carcosa");
        let mut snapshots = Vec::new();
        let mut unknown = Vec::new();
        for (id, version) in orphans {
            match self.client.get_tenant(&id).await {
                Ok(tenant) => snapshots.push(tenant),
                Err(err) if err.status() == Some(404) => unknown.push((id, version)),
                Err(err) => return Err(err.into()),
            }
        }
        for chunk in snapshots.chunks(PAGE as usize) {
            self.apply(chunk, None, report).await?;
        }
        if !unknown.is_empty() {
            tracing::warn!(
                count = unknown.len(),
                "rows link tenants Carcosa does not know; deleting them by the policy"
            );
            report.deleted += self.store.forget(&unknown).await?;
        }
        Ok(())
    }

    /// Applies the feed after `from`, page by page with its cursor; records which tenants the
    /// events touched.
    async fn follow_feed(
        &self,
        from: EventCursor,
        report: &mut SyncReport,
        touched: &mut HashSet<String>,
    ) -> Result<(), SyncError> {
        let mut cursor = from;
        let mut events = 0;
        report.cursor = from;
        loop {
            let page = self.client.list_events(Some(cursor), PAGE).await?;
            events += page.data.len() as u64;
            self.progress(Progress::Feed { events });
            let tenants: Vec<_> = page.data.into_iter().map(|e| e.tenant).collect();
            touched.extend(tenants.iter().map(|t| t.id.to_string()));
            if !tenants.is_empty() {
                self.apply(&tenants, Some(page.next_cursor), report).await?;
            }
            cursor = page.next_cursor;
            report.cursor = cursor;
            if !page.has_more {
                return Ok(());
            }
        }
    }
}
