//! A Prisma-managed tenant table (`fixtures/prisma-*.sql`, copied from the project's shared
//! fixtures: the SQL `prisma migrate` generates) kept in sync, on PostgreSQL and MariaDB/MySQL.
//!
//! The traps: `id` is a primary key with no database default (Prisma's client fills a cuid),
//! `updatedAt` is `NOT NULL` with no default (Prisma's client sets it), `plan` is `NOT NULL`
//! while Carcosa tenants may have none, there is no status, version or deleted-at column, and
//! Prisma reports drift if anything in its database differs from its migrations.

use carcosa::Client;
use carcosa::local::{DeletionPolicy, KeyFill, LocalStore, PrimaryKey, TableMapping};
use carcosa::sync::Sync;
use carcosa_core::api::{TenantIn, TenantPatch};

use crate::support::server;
use crate::sync::{Local, LocalDb};

/// The mapping `docs/sync.md` gives for the Prisma model.
fn prisma_mapping() -> TableMapping {
    TableMapping {
        table: "Tenant".into(),
        carcosa_id: "carcosaId".into(),
        status: None,
        version: None,
        deleted_at: None,
        synced_at: Some("lastSynced".into()),
        touch: vec!["updatedAt".into()],
        default_plan: Some("free".into()),
        primary_key: PrimaryKey { column: "id".into(), fill: KeyFill::Cuid },
        ..TableMapping::default()
    }
}

fn fixture(kind: Local, name: &str) -> String {
    let dialect = if kind == Local::Postgres { "postgresql" } else { "mysql" };
    let path = format!("{}/tests/library/fixtures/{name}-{dialect}.sql", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(path).unwrap()
}

/// Every column and index of the database, as text, to compare before and after.
async fn schema(db: &LocalDb) -> Vec<Vec<Option<String>>> {
    let queries: &[&str] = if db.kind == Local::Postgres {
        &[
            "SELECT table_name::text, column_name::text, data_type::text, is_nullable::text, column_default::text, \
             datetime_precision::text FROM information_schema.columns WHERE table_schema = 'public' ORDER BY 1, 2",
            "SELECT tablename::text, indexname::text, indexdef::text FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1, 2",
        ]
    } else {
        &[
            "SELECT CAST(table_name AS CHAR), CAST(column_name AS CHAR), CAST(column_type AS CHAR), \
             CAST(is_nullable AS CHAR), CAST(column_default AS CHAR), CAST(extra AS CHAR) \
             FROM information_schema.columns WHERE table_schema = DATABASE() ORDER BY 1, 2",
            "SELECT CAST(table_name AS CHAR), CAST(index_name AS CHAR), CAST(non_unique AS CHAR), \
             CAST(seq_in_index AS CHAR), CAST(column_name AS CHAR) \
             FROM information_schema.statistics WHERE table_schema = DATABASE() ORDER BY 1, 2, 4",
        ]
    };
    let mut out = Vec::new();
    for query in queries {
        out.extend(db.fetch(query).await);
    }
    out
}

async fn a_prisma_table_syncs_and_prisma_sees_no_drift(kind: Local) {
    let server = server().await;
    let client = Client::new(&server.url, &server.key).unwrap();
    let db = LocalDb::create(kind).await;
    // What `prisma migrate` created: the app's model and the bookkeeping models from the docs.
    for statement in [fixture(kind, "prisma"), fixture(kind, "prisma-bookkeeping")].join("\n").split(';') {
        let statement: String =
            statement.lines().filter(|l| !l.trim_start().starts_with("--")).collect::<Vec<_>>().join("\n");
        if !statement.trim().is_empty() {
            db.execute(&statement).await;
        }
    }
    let quote =
        |name: &str| if kind == Local::Postgres { format!("\"{name}\"") } else { format!("`{name}`") };
    let table = quote("Tenant");
    db.execute(&format!(
        "INSERT INTO {table} ({}, {}, {}, {}, {}) VALUES ('clocal0000000000000000000', 'Our own', 'ours', 'pro', CURRENT_TIMESTAMP)",
        quote("id"),
        quote("name"),
        quote("slug"),
        quote("plan"),
        quote("updatedAt")
    ))
    .await;
    let before = schema(&db).await;

    // A mapping that leaves the key to the database is refused with the reason.
    let wrong = TableMapping { primary_key: PrimaryKey::default(), ..prisma_mapping() };
    let store = LocalStore::connect(&db.url, wrong, DeletionPolicy::Hard).await.unwrap();
    let err = store.migrate().await.unwrap_err().to_string();
    assert!(err.contains("primary_key.fill"), "{err}");
    store.close().await;
    let no_plan = TableMapping { default_plan: None, ..prisma_mapping() };
    let store = LocalStore::connect(&db.url, no_plan, DeletionPolicy::Hard).await.unwrap();
    let err = store.migrate().await.unwrap_err().to_string();
    assert!(err.contains("default_plan"), "{err}");
    store.close().await;
    // Soft delete has nothing to mark a deleted tenant with here.
    let err = LocalStore::connect(&db.url, prisma_mapping(), DeletionPolicy::Soft).await.unwrap_err();
    assert!(err.to_string().contains("soft delete needs"), "{err}");

    let store = LocalStore::connect(&db.url, prisma_mapping(), DeletionPolicy::Hard).await.unwrap();
    store.migrate().await.unwrap();
    let sync = Sync::new(client.clone(), store);
    let acme = client
        .create_tenant(&TenantIn {
            name: "Acme".into(),
            plan: Some("enterprise".into()),
            metadata: Some(serde_json::json!({"region": "eu"})),
            ..TenantIn::default()
        })
        .await
        .unwrap();
    let globex =
        client.create_tenant(&TenantIn { name: "Globex".into(), ..TenantIn::default() }).await.unwrap();
    let report = sync.full().await.unwrap();
    assert_eq!((report.created, report.failed), (2, 0), "{report:?}");

    let select = format!(
        "SELECT {}, {}, {}, {}, {}, CAST({} AS CHAR(200)), CAST({} AS CHAR(40)), CAST({} AS CHAR(40)), CAST({} AS CHAR(40)) \
         FROM {table} WHERE {} IS NOT NULL ORDER BY {}",
        quote("id"),
        quote("carcosaId"),
        quote("name"),
        quote("slug"),
        quote("plan"),
        quote("metadata"),
        quote("lastSynced"),
        quote("createdAt"),
        quote("updatedAt"),
        quote("carcosaId"),
        quote("name"),
    );
    let select = if kind == Local::Postgres {
        select.replace("CHAR(200)", "TEXT").replace("CHAR(40)", "TEXT")
    } else {
        select
    };
    let rows = db.fetch(&select).await;
    assert_eq!(rows.len(), 2);
    let text = |row: &Vec<Option<String>>, i: usize| row[i].clone().unwrap_or_default();
    let (a, g) = (&rows[0], &rows[1]);
    for row in [a, g] {
        let id = text(row, 0);
        assert!(id.len() == 25 && id.starts_with('c'), "a cuid key: {id}");
        for i in 6..9 {
            assert!(row[i].is_some(), "lastSynced, createdAt and updatedAt are filled: {row:?}");
        }
    }
    assert_eq!(
        (text(a, 1), text(a, 2), text(a, 3), text(a, 4)),
        (acme.id.to_string(), "Acme".into(), "acme".into(), "enterprise".into())
    );
    let metadata: serde_json::Value = serde_json::from_str(&text(a, 5)).unwrap();
    assert_eq!(metadata, serde_json::json!({"region": "eu"}));
    assert_eq!(text(g, 4), "free", "a tenant without a plan gets the default plan");
    let first_key = text(a, 0);
    let first_updated = text(a, 8);

    // Updates keep the local key and move updatedAt; deletions (hard) remove the row.
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    client
        .update_tenant(
            &acme.id.to_string(),
            &TenantPatch { name: Some("Acme Inc".into()), ..TenantPatch::default() },
            None,
        )
        .await
        .unwrap();
    client.delete_tenant(&globex.id.to_string(), None).await.unwrap();
    let report = sync.incremental().await.unwrap();
    assert_eq!((report.updated, report.deleted), (1, 1), "{report:?}");
    let rows = db.fetch(&select).await;
    assert_eq!(rows.len(), 1);
    assert_eq!((text(&rows[0], 0), text(&rows[0], 2)), (first_key, "Acme Inc".into()));
    assert!(
        text(&rows[0], 8) > first_updated,
        "updatedAt moves: {} then {}",
        first_updated,
        text(&rows[0], 8)
    );
    // A stale event for the deleted tenant does nothing; re-running is a no-op.
    let again = sync.full().await.unwrap();
    assert_eq!((again.created, again.updated, again.deleted), (0, 0, 0), "{again:?}");
    let own = db
        .fetch(&format!("SELECT {} FROM {table} WHERE {} IS NULL", quote("name"), quote("carcosaId")))
        .await;
    assert_eq!(own, vec![vec![Some("Our own".to_owned())]], "the app's own row is untouched");

    assert_eq!(schema(&db).await, before, "the schema is exactly what Prisma's migrations made");
    sync.store().close().await;
    db.finish().await;
}

#[test]
fn the_fixtures_are_the_shared_ones() {
    let shared = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/fixtures/prisma");
    for (ours, theirs) in [
        ("prisma-postgresql.sql", "postgresql.sql"),
        ("prisma-mysql.sql", "mysql.sql"),
        ("prisma-schema.prisma", "schema.prisma"),
    ] {
        let Ok(expected) = std::fs::read_to_string(format!("{shared}/{theirs}")) else {
            // The shared fixtures live beside the repository in the project's workspace; a
            // clone on its own has only these copies.
            return;
        };
        let copy =
            std::fs::read_to_string(format!("{}/tests/library/fixtures/{ours}", env!("CARGO_MANIFEST_DIR")))
                .unwrap();
        assert_eq!(copy, expected, "{ours} differs from the shared {theirs}");
    }
}

mod postgres {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "needs PostgreSQL: set CARCOSA_TEST_POSTGRES_URL"]
    async fn a_prisma_table_syncs_and_prisma_sees_no_drift() {
        super::a_prisma_table_syncs_and_prisma_sees_no_drift(super::Local::Postgres).await;
    }
}

mod mysql {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "needs MySQL or MariaDB: set CARCOSA_TEST_MYSQL_URL"]
    async fn a_prisma_table_syncs_and_prisma_sees_no_drift() {
        super::a_prisma_table_syncs_and_prisma_sees_no_drift(super::Local::MySql).await;
    }
}
