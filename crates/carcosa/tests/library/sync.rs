//! The sync engine into a real local table (SQLite; PostgreSQL with `CARCOSA_TEST_POSTGRES_URL`;
//! MariaDB or MySQL with `CARCOSA_TEST_MYSQL_URL`), from a real Carcosa server.

use std::collections::BTreeMap;

use carcosa::Client;
use carcosa::local::{DeletionPolicy, LocalStore, TableMapping};
use carcosa::sync::Sync;
use carcosa_core::api::{TenantIn, TenantPatch};
use carcosa_core::{EventCursor, TenantStatus};
use carcosa_server::audit::AuditContext;
use sqlx::{Connection, Row};

use crate::client::named;
use crate::support::{Server, server};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Local {
    Sqlite,
    Postgres,
    MySql,
}

/// A local database of its own for one test.
pub(crate) struct LocalDb {
    pub(crate) url: String,
    _dir: tempfile::TempDir,
    pub(crate) kind: Local,
    admin: Option<(String, String)>,
}

impl LocalDb {
    pub(crate) async fn create(kind: Local) -> Self {
        let dir = tempfile::tempdir().unwrap();
        if kind == Local::Sqlite {
            let url = format!("sqlite://{}", dir.path().join("app.db").display());
            return Self { url, _dir: dir, kind, admin: None };
        }
        let var =
            if kind == Local::Postgres { "CARCOSA_TEST_POSTGRES_URL" } else { "CARCOSA_TEST_MYSQL_URL" };
        let admin = std::env::var(var).unwrap_or_else(|_| panic!("set {var}"));
        let name = format!("carcosa_test_app_{}", ulid::Ulid::new().to_string().to_lowercase());
        let create = format!("CREATE DATABASE {name}");
        if kind == Local::Postgres {
            let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
            sqlx::query(&create).execute(&mut conn).await.unwrap();
        } else {
            let mut conn = sqlx::MySqlConnection::connect(&admin).await.unwrap();
            sqlx::query(&create).execute(&mut conn).await.unwrap();
        }
        let url = format!("{}/{name}", admin.rsplit_once('/').unwrap().0);
        Self { url, _dir: dir, kind, admin: Some((admin, name)) }
    }

    /// `carcosa_id → (slug, name, status, version)` of every linked row.
    async fn rows(&self) -> BTreeMap<String, (String, String, String, i64)> {
        let sql = "SELECT carcosa_id, slug, name, status, version FROM tenants WHERE carcosa_id IS NOT NULL";
        let mut out = BTreeMap::new();
        macro_rules! collect {
            ($rows:expr) => {
                for r in $rows {
                    out.insert(r.get(0), (r.get(1), r.get(2), r.get(3), r.get(4)));
                }
            };
        }
        match self.kind {
            Local::Postgres => {
                let mut conn = sqlx::PgConnection::connect(&self.url).await.unwrap();
                collect!(sqlx::query(sql).fetch_all(&mut conn).await.unwrap());
            }
            Local::MySql => {
                let mut conn = sqlx::MySqlConnection::connect(&self.url).await.unwrap();
                collect!(sqlx::query(sql).fetch_all(&mut conn).await.unwrap());
            }
            Local::Sqlite => {
                let mut conn = sqlx::SqliteConnection::connect(&self.url).await.unwrap();
                collect!(sqlx::query(sql).fetch_all(&mut conn).await.unwrap());
            }
        }
        out
    }

    /// Every row of `sql`, each column read as text (cast in the query where needed).
    pub(crate) async fn fetch(&self, sql: &str) -> Vec<Vec<Option<String>>> {
        macro_rules! collect {
            ($rows:expr) => {
                $rows.iter().map(|r| (0..r.len()).map(|i| r.get::<Option<String>, _>(i)).collect()).collect()
            };
        }
        match self.kind {
            Local::Postgres => {
                let mut conn = sqlx::PgConnection::connect(&self.url).await.unwrap();
                collect!(sqlx::query(sql).fetch_all(&mut conn).await.unwrap())
            }
            Local::MySql => {
                let mut conn = sqlx::MySqlConnection::connect(&self.url).await.unwrap();
                collect!(sqlx::query(sql).fetch_all(&mut conn).await.unwrap())
            }
            Local::Sqlite => {
                let mut conn = sqlx::SqliteConnection::connect(&self.url).await.unwrap();
                collect!(sqlx::query(sql).fetch_all(&mut conn).await.unwrap())
            }
        }
    }

    pub(crate) async fn execute(&self, sql: &str) {
        match self.kind {
            Local::Postgres => {
                let mut conn = sqlx::PgConnection::connect(&self.url).await.unwrap();
                sqlx::query(sql).execute(&mut conn).await.unwrap();
            }
            Local::MySql => {
                let mut conn = sqlx::MySqlConnection::connect(&self.url).await.unwrap();
                sqlx::query(sql).execute(&mut conn).await.unwrap();
            }
            Local::Sqlite => {
                let mut conn = sqlx::SqliteConnection::connect(&self.url).await.unwrap();
                sqlx::query(sql).execute(&mut conn).await.unwrap();
            }
        }
    }

    pub(crate) async fn finish(self) {
        match (self.kind, self.admin) {
            (Local::Postgres, Some((admin, name))) => {
                let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
                let drop = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                sqlx::query(&drop).execute(&mut conn).await.unwrap();
            }
            (Local::MySql, Some((admin, name))) => {
                let mut conn = sqlx::MySqlConnection::connect(&admin).await.unwrap();
                sqlx::query(&format!("DROP DATABASE IF EXISTS {name}")).execute(&mut conn).await.unwrap();
            }
            _ => {}
        }
    }
}

/// The server's state of every tenant, live and deleted, in the same shape as `LocalDb::rows`.
async fn server_rows(client: &Client) -> BTreeMap<String, (String, String, String, i64)> {
    let mut out = BTreeMap::new();
    for status in [None, Some(TenantStatus::Deleted)] {
        let mut cursor = None;
        loop {
            let options = carcosa::ListTenants { limit: Some(1000), cursor, status, ..Default::default() };
            let page = client.list_tenants(&options).await.unwrap();
            for t in &page.data {
                out.insert(
                    t.id.to_string(),
                    (t.slug.to_string(), t.name.clone(), t.status.as_str().to_owned(), t.version),
                );
            }
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
    }
    out
}

/// Runs `sync`'s background loop until the returned sender fires.
fn spawn_loop(
    sync: std::sync::Arc<Sync>,
    schedule: carcosa::sync::Schedule,
) -> (tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let background = tokio::spawn(async move {
        sync.run(schedule, async move {
            let _ = stopped.await;
        })
        .await;
    });
    (stop, background)
}

async fn engine(server: &Server, db: &LocalDb, policy: DeletionPolicy) -> Sync {
    let client = Client::new(&server.url, &server.key).unwrap();
    let store = LocalStore::connect(&db.url, TableMapping::default(), policy).await.unwrap();
    store.migrate().await.unwrap();
    Sync::new(client, store)
}

async fn full_then_incremental_keeps_the_table_exact(kind: Local) {
    let server = server().await;
    let client = Client::new(&server.url, &server.key).unwrap();
    let db = LocalDb::create(kind).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(client.create_tenant(&named(&format!("Tenant {i}"))).await.unwrap().id.to_string());
    }
    client
        .update_tenant(
            &ids[1],
            &TenantPatch { status: Some(TenantStatus::Suspended), ..Default::default() },
            None,
        )
        .await
        .unwrap();
    client.delete_tenant(&ids[4], None).await.unwrap();
    // The app already has a row of its own, not linked to Carcosa.
    let sync = engine(&server, &db, DeletionPolicy::Soft).await;
    db.execute(
        "INSERT INTO tenants (slug, name, status, version) VALUES ('local-only', 'Mine', 'active', 1)",
    )
    .await;

    let report = sync.full().await.unwrap();
    assert_eq!((report.created, report.updated, report.deleted), (4, 0, 0), "{report:?}");
    assert_eq!(report.cursor, EventCursor::after_seq(7));
    let live: BTreeMap<_, _> =
        server_rows(&client).await.into_iter().filter(|(_, r)| r.2 != "deleted").collect();
    assert_eq!(db.rows().await, live);

    // Changes on the server flow in incrementally.
    let new = client.create_tenant(&named("Newcomer")).await.unwrap();
    client
        .update_tenant(&ids[0], &TenantPatch { name: Some("Renamed".into()), ..Default::default() }, None)
        .await
        .unwrap();
    client.delete_tenant(&ids[2], None).await.unwrap();
    let report = sync.incremental().await.unwrap();
    assert_eq!((report.created, report.updated, report.deleted), (1, 1, 1), "{report:?}");
    let rows = db.rows().await;
    assert_eq!(rows[&new.id.to_string()].0, "newcomer");
    assert_eq!(rows[&ids[0]].1, "Renamed");
    assert_eq!(rows[&ids[2]].2, "deleted", "soft delete keeps the row");
    let mut expected = server_rows(&client).await;
    expected.remove(&ids[4]); // deleted before the first sync: never local
    assert_eq!(rows, expected);

    // Running again changes nothing; the app's own row was never touched.
    let again = sync.incremental().await.unwrap();
    assert_eq!((again.created, again.updated, again.deleted, again.unchanged), (0, 0, 0, 0));
    db.execute("UPDATE tenants SET name = name WHERE slug = 'local-only'").await;
    let full_again = sync.full().await.unwrap();
    assert_eq!((full_again.created, full_again.updated, full_again.deleted), (0, 0, 0), "{full_again:?}");
    sync.store().close().await;
    db.finish().await;
}

async fn each_run_reports_its_status(kind: Local) {
    let server = server().await;
    let client = Client::new(&server.url, &server.key).unwrap();
    let db = LocalDb::create(kind).await;
    let store = LocalStore::connect(&db.url, TableMapping::default(), DeletionPolicy::Soft).await.unwrap();
    store.migrate().await.unwrap();
    let sync = Sync::new(client.clone(), store).reporting_as("app.test");
    client.create_tenant(&named("Reported")).await.unwrap();
    sync.full().await.unwrap();
    client.create_tenant(&named("Later")).await.unwrap();
    let status = client.list_sync_status().await.unwrap();
    assert_eq!(status.data[0].instance, "app.test");
    assert_eq!(status.data[0].lag_events, 1, "one event came after the sync");
    assert!(status.data[0].last_success_at.is_some());
    sync.incremental().await.unwrap();
    assert_eq!(client.list_sync_status().await.unwrap().data[0].lag_events, 0);
    sync.store().close().await;
    db.finish().await;
}

async fn hard_deletes_leave_tombstones_and_stale_events_do_nothing(kind: Local) {
    let server = server().await;
    let client = Client::new(&server.url, &server.key).unwrap();
    let db = LocalDb::create(kind).await;
    let sync = engine(&server, &db, DeletionPolicy::Hard).await;
    let tenant = client.create_tenant(&named("Doomed")).await.unwrap();
    sync.incremental().await.unwrap();
    client
        .update_tenant(
            &tenant.id.to_string(),
            &TenantPatch { plan: Some(Some("pro".into())), ..Default::default() },
            None,
        )
        .await
        .unwrap();
    let events = client.list_events(None, 100).await.unwrap().data;
    // Out of order and twice: the newer version wins, the older is ignored.
    sync.apply_event(&events[1]).await.unwrap();
    let stale = sync.apply_event(&events[0]).await.unwrap();
    assert_eq!(stale.unchanged, 1);
    assert_eq!(db.rows().await[&tenant.id.to_string()].3, 2);
    client.delete_tenant(&tenant.id.to_string(), None).await.unwrap();
    let report = sync.incremental().await.unwrap();
    assert_eq!(report.deleted, 1);
    assert!(db.rows().await.is_empty(), "hard delete removes the row");
    // A stale event arriving after the deletion does not bring the tenant back.
    sync.apply_event(&events[1]).await.unwrap();
    assert!(db.rows().await.is_empty());
    sync.store().close().await;
    db.finish().await;
}

async fn an_expired_cursor_falls_back_to_a_full_sync(kind: Local) {
    let server = server().await;
    let client = Client::new(&server.url, &server.key).unwrap();
    let db = LocalDb::create(kind).await;
    let told = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = told.clone();
    let sync = engine(&server, &db, DeletionPolicy::Soft).await.on_deleted(std::sync::Arc::new(move |t| {
        seen.lock().unwrap().push(t);
        Box::pin(async { Ok(()) })
    }));
    let a = client.create_tenant(&named("Alpha")).await.unwrap();
    let b = client.create_tenant(&named("Beta")).await.unwrap();
    sync.full().await.unwrap();
    // Changes the app never sees in the feed: the events are pruned before it comes back.
    client.delete_tenant(&a.id.to_string(), None).await.unwrap();
    client
        .update_tenant(
            &b.id.to_string(),
            &TenantPatch { name: Some("Beta Two".into()), ..Default::default() },
            None,
        )
        .await
        .unwrap();
    let c = client.create_tenant(&named("Gamma")).await.unwrap();
    let future = chrono::Utc::now() + chrono::TimeDelta::seconds(1);
    server.store.prune(future, future).await.unwrap();
    let report = sync.incremental().await.unwrap();
    assert_eq!(report.deleted, 1, "the listing lacks Alpha: reconciled as deleted");
    let rows = db.rows().await;
    assert_eq!(rows[&a.id.to_string()].2, "deleted");
    assert_eq!(rows[&a.id.to_string()].3, 2, "the server's deleted snapshot was applied, version and all");
    let told = told.lock().unwrap().clone();
    assert_eq!(told.len(), 1, "the on_deleted hook ran for the reconciled deletion");
    assert_eq!((told[0].id, told[0].status), (a.id, TenantStatus::Deleted));
    assert_eq!(rows[&b.id.to_string()].1, "Beta Two");
    assert!(rows.contains_key(&c.id.to_string()));
    assert_eq!(sync.store().cursor().await.unwrap(), Some(EventCursor::after_seq(5)));
    sync.store().close().await;
    db.finish().await;
}

async fn swapped_slugs_do_not_wedge_the_sync(kind: Local) {
    let server = server().await;
    let client = Client::new(&server.url, &server.key).unwrap();
    let db = LocalDb::create(kind).await;
    let sync = engine(&server, &db, DeletionPolicy::Soft).await;
    db.execute("CREATE UNIQUE INDEX tenants_slug_key ON tenants (slug)").await;
    let a = client
        .create_tenant(&TenantIn { slug: Some("one".into()), ..named("A") })
        .await
        .unwrap()
        .id
        .to_string();
    let b = client
        .create_tenant(&TenantIn { slug: Some("two".into()), ..named("B") })
        .await
        .unwrap()
        .id
        .to_string();
    sync.full().await.unwrap();
    let slug = |s: &str| TenantPatch { slug: Some(s.into()), ..Default::default() };
    client.update_tenant(&a, &slug("swap"), None).await.unwrap();
    client.update_tenant(&b, &slug("one"), None).await.unwrap();
    client.update_tenant(&a, &slug("two"), None).await.unwrap();
    // A full sync sees only the end state, where each slug's old holder is the other tenant.
    server.store.prune(chrono::Utc::now() + chrono::TimeDelta::seconds(1), chrono::Utc::now()).await.unwrap();
    sync.incremental().await.unwrap();
    let rows = db.rows().await;
    assert_eq!(rows[&a].0, "two");
    assert_eq!(rows[&b].0, "one");
    sync.store().close().await;
    db.finish().await;
}

async fn the_background_loop_follows_the_server(kind: Local) {
    let server = server().await;
    let client = Client::new(&server.url, &server.key).unwrap();
    let db = LocalDb::create(kind).await;
    let sync = std::sync::Arc::new(engine(&server, &db, DeletionPolicy::Soft).await);
    let schedule = carcosa::sync::Schedule {
        incremental_every: std::time::Duration::from_millis(100),
        full_every: std::time::Duration::from_secs(3600),
        backoff_start: std::time::Duration::from_millis(50),
    };
    let (stop, background) = spawn_loop(sync.clone(), schedule);
    let tenant = client.create_tenant(&named("Followed")).await.unwrap();
    let mut rows = BTreeMap::new();
    for _ in 0..100 {
        rows = db.rows().await;
        if rows.contains_key(&tenant.id.to_string()) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(rows.contains_key(&tenant.id.to_string()), "the loop picked up the new tenant");
    stop.send(()).unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(5), background)
        .await
        .expect("the loop stops")
        .unwrap();
    sync.store().close().await;
    db.finish().await;
}

async fn hooks_run_after_changes_and_failures_are_reported(kind: Local) {
    use std::sync::{Arc, Mutex};
    let server = server().await;
    let client = Client::new(&server.url, &server.key).unwrap();
    let db = LocalDb::create(kind).await;
    let store = LocalStore::connect(&db.url, TableMapping::default(), DeletionPolicy::Soft).await.unwrap();
    store.migrate().await.unwrap();
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let record = |label: &'static str| -> carcosa::sync::Hook {
        let seen = seen.clone();
        Arc::new(move |tenant| {
            let seen = seen.clone();
            Box::pin(async move {
                seen.lock().unwrap().push(format!("{label} {}", tenant.slug));
                Ok(())
            })
        })
    };
    let always_fails: carcosa::sync::Hook =
        Arc::new(|_| Box::pin(async { Err("mail server down".to_owned()) }));
    let sync = Sync::new(client.clone(), store)
        .on_created(record("created"))
        .on_updated(always_fails)
        .on_deleted(record("deleted"));
    let a = client.create_tenant(&named("Hooked")).await.unwrap().id.to_string();
    let b = client.create_tenant(&named("Other")).await.unwrap().id.to_string();
    sync.incremental().await.unwrap();
    client
        .update_tenant(&a, &TenantPatch { name: Some("Hooked Again".into()), ..Default::default() }, None)
        .await
        .unwrap();
    client.delete_tenant(&b, None).await.unwrap();
    let report = sync.incremental().await.unwrap();
    assert_eq!(report.failed, 1, "the failing update hook is reported: {report:?}");
    assert_eq!(report.deleted, 1, "and does not stop the other tenant's change");
    assert_eq!(db.rows().await[&a].1, "Hooked Again", "the change itself is applied");
    assert_eq!(*seen.lock().unwrap(), ["created hooked", "created other", "deleted other"]);
    sync.store().close().await;
    db.finish().await;
}

async fn a_full_sync_converges_while_writers_change_the_server(kind: Local) {
    let server = server().await;
    let client = Client::new(&server.url, &server.key).unwrap();
    let db = LocalDb::create(kind).await;
    let sync = engine(&server, &db, DeletionPolicy::Soft).await;
    let mut ids = Vec::new();
    for i in 0..1500 {
        ids.push(client.create_tenant(&named(&format!("Seed {i}"))).await.unwrap().id.to_string());
    }
    // Writers create, rename and delete while the full sync pages through (1,000 per page).
    let writers = {
        let client = client.clone();
        let ids = ids.clone();
        tokio::spawn(async move {
            for (i, id) in ids.iter().enumerate().step_by(7).take(120) {
                match i % 3 {
                    0 => drop(client.delete_tenant(id, None).await.unwrap()),
                    1 => drop(
                        client
                            .update_tenant(
                                id,
                                &TenantPatch { name: Some(format!("Renamed {i}")), ..Default::default() },
                                None,
                            )
                            .await
                            .unwrap(),
                    ),
                    _ => drop(client.create_tenant(&named(&format!("Late {i}"))).await.unwrap()),
                }
            }
        })
    };
    sync.full().await.unwrap();
    writers.await.unwrap();
    // After the writers stop, one more incremental run brings the rest; then the table is exact.
    sync.incremental().await.unwrap();
    // Every live tenant is there, exactly; every deleted one the table saw is marked deleted, at
    // the server's version. (A tenant deleted before the sync ever listed it is never written.)
    let local = db.rows().await;
    let server_state = server_rows(&client).await;
    let live = |rows: &BTreeMap<String, (String, String, String, i64)>| -> BTreeMap<String, (String, String, String, i64)> {
        rows.iter().filter(|(_, r)| r.2 != "deleted").map(|(k, v)| (k.clone(), v.clone())).collect()
    };
    assert_eq!(live(&local), live(&server_state));
    for (id, row) in local.iter().filter(|(_, r)| r.2 == "deleted") {
        assert_eq!(server_state.get(id), Some(row), "{id}");
    }
    sync.store().close().await;
    db.finish().await;
}

async fn the_loop_recovers_after_the_server_was_down_and_loses_nothing(kind: Local) {
    let mut server = server().await;
    let client = Client::new(&server.url, &server.key).unwrap();
    let db = LocalDb::create(kind).await;
    let store = LocalStore::connect(&db.url, TableMapping::default(), DeletionPolicy::Soft).await.unwrap();
    store.migrate().await.unwrap();
    let quick = Client::builder(&server.url, &server.key).max_retries(0).build().unwrap();
    let sync = std::sync::Arc::new(Sync::new(quick, store));
    let before = client.create_tenant(&named("Before")).await.unwrap().id.to_string();
    let schedule = carcosa::sync::Schedule {
        incremental_every: std::time::Duration::from_millis(200),
        full_every: std::time::Duration::from_secs(3600),
        backoff_start: std::time::Duration::from_millis(50),
    };
    let (stop, background) = spawn_loop(sync.clone(), schedule);
    let wait_for = |id: String| {
        let db = &db;
        async move {
            for _ in 0..200 {
                if db.rows().await.contains_key(&id) {
                    return true;
                }
                tokio::time::sleep(std::time::Duration::from_millis(25)).await;
            }
            false
        }
    };
    assert!(wait_for(before).await);
    // Down for a while: runs fail and back off. Changes made meanwhile (straight into the
    // server's store) are in the feed when it comes back.
    server.go_down().await;
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    let new =
        carcosa_core::api::TenantIn { name: "During".into(), ..Default::default() }.validate(16_384).unwrap();
    let rules =
        carcosa_server::store::WriteRules { reserved: Default::default(), max_metadata_bytes: 16_384 };
    let project = server.store.list_projects().await.unwrap()[0].id;
    let during = match server
        .store
        .create_tenant(project, new, &rules, None, &AuditContext::cli("test"))
        .await
        .unwrap()
    {
        carcosa_server::store::CreateOutcome::Created(written) => written.tenant.id.to_string(),
        carcosa_server::store::CreateOutcome::Replayed(_) => unreachable!(),
    };
    server.come_back().await;
    assert!(wait_for(during).await, "the change made while the server was down arrived after recovery");
    stop.send(()).unwrap();
    background.await.unwrap();
    sync.store().close().await;
    db.finish().await;
}

/// A snapshot as the feed would carry it.
fn snapshot(
    id: carcosa_core::TenantId,
    slug: &str,
    name: &str,
    version: i64,
    deleted: bool,
) -> carcosa_core::Tenant {
    let at = chrono::Utc::now();
    carcosa_core::Tenant {
        id,
        slug: carcosa_core::Slug::parse(slug).unwrap(),
        name: name.into(),
        status: if deleted { TenantStatus::Deleted } else { TenantStatus::Active },
        plan: None,
        metadata: serde_json::Map::new(),
        version,
        created_at: at,
        updated_at: at,
        deleted_at: deleted.then_some(at),
    }
}

/// One page holding a tenant's whole life, a duplicate, and a slug freed and taken again: the
/// batched writes give the same result as applying each snapshot alone, in order.
async fn a_page_with_repeats_and_a_reused_slug_applies_in_order(kind: Local) {
    use carcosa_core::TenantId;
    for policy in [DeletionPolicy::Soft, DeletionPolicy::Hard] {
        let db = LocalDb::create(kind).await;
        let store = LocalStore::connect(&db.url, TableMapping::default(), policy).await.unwrap();
        store.migrate().await.unwrap();
        let (a, b, c) = (TenantId::generate(), TenantId::generate(), TenantId::generate());
        let page = [
            snapshot(a, "x", "A", 1, false),
            snapshot(c, "y", "C", 1, false),
            snapshot(a, "x", "A two", 2, false),
            snapshot(a, "x", "A two", 3, true),
            snapshot(b, "x", "B", 1, false),
            snapshot(c, "y", "C", 1, false),
        ];
        let applied = store.apply(&page, Some(EventCursor::after_seq(6))).await.unwrap();
        assert_eq!(
            (applied.created, applied.updated, applied.deleted, applied.unchanged),
            (3, 1, 1, 1),
            "{policy:?}: {applied:?}"
        );
        let rows = db.rows().await;
        assert_eq!(rows[&b.to_string()].0, "x", "{policy:?}: B has the slug");
        assert_eq!(rows[&c.to_string()].1, "C");
        match policy {
            DeletionPolicy::Hard => assert!(!rows.contains_key(&a.to_string()), "hard delete removes A"),
            _ => assert_eq!(
                rows[&a.to_string()],
                (format!("x~{a}"), "A two".to_owned(), "deleted".to_owned(), 3),
                "A keeps its row, its slug set aside for B"
            ),
        }
        // The same page again changes nothing.
        let again = store.apply(&page, None).await.unwrap();
        assert_eq!(
            (again.created, again.updated, again.deleted, again.unchanged),
            (0, 0, 0, 6),
            "{policy:?}"
        );
        store.close().await;
        db.finish().await;
    }
}

/// A late webhook carries a tenant's old slug, which another tenant has since taken: the row that
/// legitimately holds it gets it back, and both rows end as the server has them.
async fn a_stale_snapshot_cannot_keep_a_slug_it_lost(kind: Local) {
    let server = server().await;
    let client = Client::new(&server.url, &server.key).unwrap();
    let db = LocalDb::create(kind).await;
    let sync = engine(&server, &db, DeletionPolicy::Soft).await;
    let shared =
        |name: &str| TenantIn { name: name.into(), slug: Some("shared".into()), ..TenantIn::default() };
    let a = client.create_tenant(&shared("Alpha")).await.unwrap();
    let moved = TenantPatch { slug: Some("alpha".into()), ..TenantPatch::default() };
    client.update_tenant(&a.id.to_string(), &moved, None).await.unwrap();
    client.create_tenant(&shared("Beta")).await.unwrap();
    let events = client.list_events(None, 10).await.unwrap().data;
    assert_eq!(events.len(), 3);
    // Beta's creation arrives first, Alpha's (stale: it still says "shared") after it.
    sync.apply_event(&events[2]).await.unwrap();
    sync.apply_event(&events[0]).await.unwrap();
    let live: BTreeMap<_, _> = server_rows(&client).await;
    assert_eq!(db.rows().await, live, "each row as the server has it");
    sync.store().close().await;
    db.finish().await;
}

macro_rules! on_both_locals {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Local::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[ignore = "needs PostgreSQL: set CARCOSA_TEST_POSTGRES_URL"]
                async fn $name() {
                    super::$name(super::Local::Postgres).await;
                }
            )*
        }
        mod mysql {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[ignore = "needs MySQL or MariaDB: set CARCOSA_TEST_MYSQL_URL"]
                async fn $name() {
                    super::$name(super::Local::MySql).await;
                }
            )*
        }
    };
}

on_both_locals!(
    a_stale_snapshot_cannot_keep_a_slug_it_lost,
    a_page_with_repeats_and_a_reused_slug_applies_in_order,
    full_then_incremental_keeps_the_table_exact,
    the_loop_recovers_after_the_server_was_down_and_loses_nothing,
    a_full_sync_converges_while_writers_change_the_server,
    hooks_run_after_changes_and_failures_are_reported,
    the_background_loop_follows_the_server,
    each_run_reports_its_status,
    hard_deletes_leave_tombstones_and_stale_events_do_nothing,
    an_expired_cursor_falls_back_to_a_full_sync,
    swapped_slugs_do_not_wedge_the_sync,
);
