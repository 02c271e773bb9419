//! `carcosa bench sync`: how fast the sync engine fills and follows an app's own tenant table.
//!
//! A server on SQLite is seeded through the store in bulk (one transaction per 1,000 tenants,
//! each with its event, as an import would), then the library syncs into a scratch local
//! database (PostgreSQL with `--postgres-url`, else SQLite): a full sync of every tenant, then
//! incremental syncs of `--events` creations and of `--events` renames. Beside each number, the
//! same run measures its physical floor: paging through the listing without writing anything,
//! and inserting the same rows straight into the local database, 1,000 per transaction.

use std::time::{Duration, Instant};

use anyhow::Context;
use carcosa::local::{DeletionPolicy, LocalStore, TableMapping};
use carcosa_core::api::{TenantChanges, TenantIn};
use carcosa_core::{ProjectId, TenantName};
use carcosa_server::Config;
use carcosa_server::config::DatabaseUrl;
use carcosa_server::store::{Store, TenantRef, WriteRules};
use serde::Serialize;
use tokio::sync::oneshot;

/// The numbers of one run.
#[derive(Debug, Serialize)]
pub(super) struct SyncResult {
    local: &'static str,
    tenants: u64,
    events: u64,
    /// Full sync: list every tenant, apply, follow the feed, reconcile.
    full_s: f64,
    full_per_s: f64,
    /// Floor: paging through the listing only.
    list_only_s: f64,
    /// Floor: inserting the same number of rows straight into the local database.
    raw_insert_s: f64,
    /// Incremental sync of `events` creations.
    incremental_created_s: f64,
    /// Incremental sync of `events` renames of existing tenants.
    incremental_updated_s: f64,
}

pub(super) async fn sync_throughput(
    tenants: u64,
    events: u64,
    admin: Option<&str>,
) -> anyhow::Result<SyncResult> {
    let local = if admin.is_some() { "postgres" } else { "sqlite" };
    eprintln!("sync into local {local}: {tenants} tenants, then {events} events twice");
    let server_db = super::scratch("sqlite", None).await?;
    // Pages are read as fast as the server answers: no rate limit.
    let config = Config {
        database_url: DatabaseUrl(server_db.url.clone()),
        rate_limit_per_second: 0,
        ..Config::default()
    };
    let store = carcosa_server::open_store(&config).await?;
    let audit = crate::commands::audit_context();
    let (project, _, key) = store.create_project("bench", &audit).await?;
    let rules = WriteRules { reserved: config.reserved(), max_metadata_bytes: config.max_metadata_bytes };
    let started = Instant::now();
    let mut ids = seed(&store, project.id, 0, tenants, &rules).await?;
    eprintln!("  seeded {tenants} tenants in {:.1} s", started.elapsed().as_secs_f64());

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let (stop, stopped) = oneshot::channel::<()>();
    let server =
        tokio::spawn(carcosa_server::serve_with_store(store.clone(), config, listener, async move {
            let _ = stopped.await;
        }));
    let client = carcosa::Client::builder(&base, key.expose()).timeout(Duration::from_secs(60)).build()?;
    while client.list_events(None, 1).await.is_err() {
        anyhow::ensure!(!server.is_finished(), "the server stopped before it was ready");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let started = Instant::now();
    let mut listed = 0;
    let mut cursor = None;
    loop {
        let options = carcosa::ListTenants { limit: Some(1000), cursor, ..Default::default() };
        let page = client.list_tenants(&options).await?;
        listed += page.data.len() as u64;
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let list_only_s = started.elapsed().as_secs_f64();
    anyhow::ensure!(listed == tenants, "listed {listed} of {tenants} tenants");

    let local_db = super::scratch(local, admin).await?;
    let local_url = match admin {
        Some(_) => local_db.url.clone(),
        None => format!("sqlite://{}", local_db.path().join("app.db").display()),
    };
    let raw_insert_s = raw_insert(&local_url, tenants).await?;

    let store_local = LocalStore::connect(&local_url, TableMapping::default(), DeletionPolicy::Soft).await?;
    store_local.migrate().await?;
    let sync = carcosa::sync::Sync::new(client.clone(), store_local);
    let started = Instant::now();
    let report = sync.full().await?;
    let full_s = started.elapsed().as_secs_f64();
    anyhow::ensure!(report.created == tenants, "the full sync created {} of {tenants}", report.created);
    eprintln!("  full sync: {full_s:.2} s");

    ids.extend(seed(&store, project.id, tenants, events, &rules).await?);
    let started = Instant::now();
    let report = sync.incremental().await?;
    let incremental_created_s = started.elapsed().as_secs_f64();
    anyhow::ensure!(report.created == events, "the incremental sync created {} of {events}", report.created);

    for id in ids.iter().take(usize::try_from(events)?) {
        let changes = TenantChanges {
            name: Some(TenantName::parse(&format!("Renamed {id}"))?),
            ..TenantChanges::default()
        };
        store.update_tenant(project.id, &TenantRef::Id(*id), changes, None, &rules, &audit).await?;
    }
    let started = Instant::now();
    let report = sync.incremental().await?;
    let incremental_updated_s = started.elapsed().as_secs_f64();
    anyhow::ensure!(report.updated == events, "the incremental sync updated {} of {events}", report.updated);

    sync.store().close().await;
    let _ = stop.send(());
    server.await??;
    local_db.remove()?;
    Ok(SyncResult {
        local,
        tenants,
        events,
        full_s,
        full_per_s: tenants as f64 / full_s,
        list_only_s,
        raw_insert_s,
        incremental_created_s,
        incremental_updated_s,
    })
}

/// Creates `count` tenants named from `first` on, 1,000 per transaction; returns their ids.
pub(super) async fn seed(
    store: &Store,
    project: ProjectId,
    first: u64,
    count: u64,
    rules: &WriteRules,
) -> anyhow::Result<Vec<carcosa_core::TenantId>> {
    let mut ids = Vec::new();
    let mut n = first;
    while n < first + count {
        let end = (n + 1000).min(first + count);
        let batch = (n..end)
            .map(|i| {
                TenantIn { name: format!("Tenant {i}"), plan: Some("pro".into()), ..TenantIn::default() }
                    .validate(rules.max_metadata_bytes)
                    .map_err(|e| anyhow::anyhow!("{e:?}"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        ids.extend(
            store
                .create_tenants(project, batch, rules, &crate::commands::audit_context())
                .await?
                .into_iter()
                .map(|t| t.id),
        );
        n = end;
    }
    Ok(ids)
}

/// Inserts `count` rows shaped like the sync's into a fresh table, 1,000 per statement and
/// transaction: the floor under a full sync's writes.
async fn raw_insert(url: &str, count: u64) -> anyhow::Result<f64> {
    const CREATE: &str = "CREATE TABLE raw_tenants (id BIGINT PRIMARY KEY, carcosa_id TEXT UNIQUE, slug TEXT, name TEXT, \
                          status TEXT, plan TEXT, metadata TEXT, version BIGINT, synced_at TEXT)";
    macro_rules! run {
        ($pool:expr, $db:ty) => {{
            let pool = $pool;
            sqlx::query(CREATE).execute(&pool).await?;
            let started = Instant::now();
            let mut n = 0;
            while n < count {
                let end = (n + 1000).min(count);
                let mut tx = pool.begin().await?;
                let mut query = sqlx::QueryBuilder::<$db>::new(
                    "INSERT INTO raw_tenants (id, carcosa_id, slug, name, status, plan, metadata, version, synced_at) ",
                );
                query.push_values(n..end, |mut row, i| {
                    let i = i64::try_from(i).unwrap_or(i64::MAX);
                    row.push_bind(i)
                        .push_bind(format!("ten_{i:026}"))
                        .push_bind(format!("tenant-{i}"))
                        .push_bind(format!("Tenant {i}"))
                        .push_bind("active")
                        .push_bind("pro")
                        .push_bind("{}")
                        .push_bind(1_i64)
                        .push_bind(chrono::Utc::now().to_rfc3339());
                });
                query.build().execute(&mut *tx).await?;
                tx.commit().await?;
                n = end;
            }
            let elapsed = started.elapsed().as_secs_f64();
            sqlx::query("DROP TABLE raw_tenants").execute(&pool).await?;
            pool.close().await;
            elapsed
        }};
    }
    let seconds = if url.starts_with("postgres") {
        run!(sqlx::PgPool::connect(url).await.context("the local database")?, sqlx::Postgres)
    } else {
        let options = url.parse::<sqlx::sqlite::SqliteConnectOptions>()?.create_if_missing(true);
        run!(sqlx::SqlitePool::connect_with(options).await.context("the local database")?, sqlx::Sqlite)
    };
    Ok(seconds)
}

pub(super) fn print_table(results: &[SyncResult]) -> anyhow::Result<()> {
    super::super::print_line(
        "| local db | tenants | full sync s | tenants/s | floor: list only s | floor: raw insert s | events | incremental (created) s | incremental (renamed) s |",
    )?;
    super::super::print_line("|---|---|---|---|---|---|---|---|---|")?;
    for r in results {
        super::super::print_line(&format!(
            "| {} | {} | {:.2} | {:.0} | {:.2} | {:.2} | {} | {:.2} | {:.2} |",
            r.local,
            r.tenants,
            r.full_s,
            r.full_per_s,
            r.list_only_s,
            r.raw_insert_s,
            r.events,
            r.incremental_created_s,
            r.incremental_updated_s
        ))?;
    }
    Ok(())
}
