//! `carcosa sync`, the sidecar, end to end: the real binary, a real server, a SQLite app table.

use serde_json::Value;
use sqlx::{Connection, Row};

use crate::support::{Server, carcosa, run, stderr, stdout};

fn project_key(dir: &std::path::Path) -> String {
    let created = run(carcosa(dir).args(["project", "create", "--name", "Sidecar"]));
    assert!(created.status.success(), "{}", stderr(&created));
    serde_json::from_str::<Value>(&stdout(&created)).unwrap()["api_key"].as_str().unwrap().to_owned()
}

async fn create(base: &str, key: &str, name: &str) {
    let response = reqwest::Client::new()
        .post(format!("http://{base}/v1/tenants"))
        .bearer_auth(key)
        .json(&serde_json::json!({ "name": name }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sidecar_syncs_once_into_a_mapped_table() {
    let dir = tempfile::tempdir().unwrap();
    let key = project_key(dir.path());
    let server = Server::start(dir.path());
    for name in ["Acme", "Globex", "Initech"] {
        create(&server.address, &key, name).await;
    }
    let app_db = format!("sqlite://{}", dir.path().join("app.db").display());
    std::fs::write(dir.path().join("mapping.toml"), "table = \"organizations\"\nname = \"display_name\"\n")
        .unwrap();
    let sync = |extra: &[&str]| {
        let mut command = carcosa(dir.path());
        command.args(["sync", "--api-url", &format!("http://{}", server.address), "--api-key", &key]);
        command.args(["--database-url", &app_db, "--mapping", "mapping.toml"]).args(extra);
        run(&mut command)
    };
    let first = sync(&["--once"]);
    assert!(first.status.success(), "{}", stderr(&first));
    let report: Value = serde_json::from_str(&stdout(&first)).unwrap();
    assert_eq!(report["created"], 3, "{report}");
    assert_eq!(report["cursor"], "3");
    let mut conn = sqlx::SqliteConnection::connect(&app_db).await.unwrap();
    let names: Vec<String> = sqlx::query("SELECT display_name FROM organizations ORDER BY display_name")
        .fetch_all(&mut conn)
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(names, ["Acme", "Globex", "Initech"]);

    create(&server.address, &key, "Umbrella").await;
    let second = sync(&["--once"]);
    let report: Value = serde_json::from_str(&stdout(&second)).unwrap();
    assert_eq!((report["created"].as_u64(), report["cursor"].as_str()), (Some(1), Some("4")), "{report}");
    let full = sync(&["--full"]);
    let report: Value = serde_json::from_str(&stdout(&full)).unwrap();
    assert_eq!((report["created"].as_u64(), report["deleted"].as_u64()), (Some(0), Some(0)), "{report}");
    drop(server);
}

#[test]
fn the_sidecar_explains_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let key = project_key(dir.path());
    let server = Server::start(dir.path());
    let api = format!("http://{}", server.address);
    let app_db = format!("sqlite://{}", dir.path().join("app.db").display());
    let closed = format!(
        "http://127.0.0.1:{}",
        std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
    );
    std::fs::write(dir.path().join("bad.toml"), "table = \"t; DROP\"\n").unwrap();
    let cases: [(&[&str], &str); 5] = [
        (&["sync", "--api-url", &api, "--api-key", &key, "--once"], "needs --database-url"),
        (
            &["sync", "--api-url", &api, "--api-key", "ck_wrong", "--database-url", &app_db, "--once"],
            "refused the API key",
        ),
        (
            &["sync", "--api-url", &closed, "--api-key", &key, "--database-url", &app_db, "--once"],
            "cannot reach the Carcosa server",
        ),
        (
            &[
                "sync",
                "--api-url",
                &api,
                "--api-key",
                &key,
                "--database-url",
                &app_db,
                "--mapping",
                "bad.toml",
                "--once",
            ],
            "not a plain SQL identifier",
        ),
        (
            &[
                "sync",
                "--api-url",
                &api,
                "--api-key",
                &key,
                "--database-url",
                &app_db,
                "--deletion",
                "shred",
                "--once",
            ],
            "deletion policy",
        ),
    ];
    for (args, message) in cases {
        let output = run(carcosa(dir.path()).args(args));
        assert!(!output.status.success(), "{args:?} should fail");
        assert!(stderr(&output).contains(message), "{args:?}: {}", stderr(&output));
    }
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sidecar_watches_and_receives_webhooks() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let key = project_key(dir.path());
    let server = Server::start_with(dir.path(), "127.0.0.1:0", &[("CARCOSA_WEBHOOK_ALLOW_PRIVATE", "true")]);
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let endpoint: Value = reqwest::Client::new()
        .post(format!("http://{}/v1/webhook-endpoints", server.address))
        .bearer_auth(&key)
        .json(&serde_json::json!({ "url": format!("http://127.0.0.1:{port}/") }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let app_db = format!("sqlite://{}", dir.path().join("app.db").display());
    let mut sidecar = carcosa(dir.path())
        .args(["sync", "--watch", "--interval", "3600", "--listen", &format!("127.0.0.1:{port}")])
        .args([
            "--api-url",
            &format!("http://{}", server.address),
            "--api-key",
            &key,
            "--database-url",
            &app_db,
        ])
        .args(["--webhook-secret", endpoint["secret"].as_str().unwrap()])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(sidecar.stderr.take().unwrap()).lines();
    assert!(
        lines.any(|l| l.is_ok_and(|l| l.contains("receiving webhooks on"))),
        "the sidecar did not start listening"
    );
    std::thread::spawn(move || for _ in lines {});

    for name in ["Pushed One", "Pushed Two"] {
        create(&server.address, &key, name).await;
    }
    // The interval is an hour: only webhooks can bring these in time.
    let mut count = 0_i64;
    for _ in 0..100 {
        if let Ok(mut conn) = sqlx::SqliteConnection::connect(&app_db).await {
            count = sqlx::query("SELECT COUNT(*) FROM tenants WHERE name LIKE 'Pushed%'")
                .fetch_one(&mut conn)
                .await
                .map(|r| r.get(0))
                .unwrap_or(0);
        }
        if count == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(count, 2);
    let status =
        std::process::Command::new("kill").args(["-TERM", &sidecar.id().to_string()]).status().unwrap();
    assert!(status.success());
    assert!(sidecar.wait().unwrap().success(), "the sidecar stops cleanly on SIGTERM");
    drop(server);
}

/// A Prisma-shaped table mapped by flags alone, and the callback deletion policy: the row stays,
/// the `--on-deleted` command gets the deleted tenant.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sidecar_maps_by_flags_and_runs_commands_as_hooks() {
    let dir = tempfile::tempdir().unwrap();
    let key = project_key(dir.path());
    let server = Server::start(dir.path());
    create(&server.address, &key, "Acme").await;
    let app_db = format!("sqlite://{}", dir.path().join("app.db").display());
    let mut conn = sqlx::SqliteConnection::connect_with(
        &app_db.parse::<sqlx::sqlite::SqliteConnectOptions>().unwrap().create_if_missing(true),
    )
    .await
    .unwrap();
    for statement in [
        r#"CREATE TABLE "Tenant" ("id" TEXT NOT NULL PRIMARY KEY, "carcosaId" TEXT, "name" TEXT NOT NULL,
           "slug" TEXT NOT NULL, "plan" TEXT NOT NULL, "metadata" TEXT, "lastSynced" DATETIME,
           "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP, "updatedAt" DATETIME NOT NULL)"#,
        r#"CREATE UNIQUE INDEX "Tenant_carcosaId_key" ON "Tenant"("carcosaId")"#,
        r#"CREATE UNIQUE INDEX "Tenant_slug_key" ON "Tenant"("slug")"#,
    ] {
        sqlx::query(statement).execute(&mut conn).await.unwrap();
    }
    let api = format!("http://{}", server.address);
    let sync = |extra: &[&str]| {
        let mut command = carcosa(dir.path());
        command.args(["sync", "--api-url", &api, "--api-key", &key, "--database-url", &app_db]);
        if !extra.contains(&"--full") {
            command.arg("--once");
        }
        command.args(["--table", "Tenant", "--column", "carcosa_id=carcosaId", "--column", "status=false"]);
        command.args(["--column", "version=false", "--column", "deleted_at=false"]);
        command.args(["--column", "synced_at=lastSynced", "--touch", "updatedAt", "--default-plan", "free"]);
        command.args(["--key-fill", "uuid_v7", "--deletion", "callback"]).args(extra);
        run(&mut command)
    };
    // The callback policy needs its command.
    let refused = sync(&[]);
    assert!(!refused.status.success());
    assert!(stderr(&refused).contains("--on-deleted"), "{}", stderr(&refused));

    let hooks = [
        "--on-created",
        "printf '%s %s\\n' \"$CARCOSA_CHANGE\" \"$CARCOSA_TENANT_SLUG\" >> changes.log",
        "--on-deleted",
        "cat >> deleted.json",
    ];
    let first = sync(&hooks);
    assert!(first.status.success(), "{}", stderr(&first));
    let row = sqlx::query(r#"SELECT "id", "plan", "updatedAt" IS NOT NULL FROM "Tenant""#)
        .fetch_one(&mut conn)
        .await
        .unwrap();
    let (id, plan, touched): (String, String, bool) = (row.get(0), row.get(1), row.get(2));
    assert_eq!((id.len(), &id[14..15], plan.as_str(), touched), (36, "7", "free", true), "{id}");
    assert_eq!(std::fs::read_to_string(dir.path().join("changes.log")).unwrap(), "created acme\n");

    let deleted = reqwest::Client::new()
        .delete(format!("{api}/v1/tenants/acme"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 200);
    let second = sync(&hooks);
    assert!(second.status.success(), "{}", stderr(&second));
    let report: Value = serde_json::from_str(&stdout(&second)).unwrap();
    assert_eq!((report["deleted"].as_u64(), report["failed"].as_u64()), (Some(1), Some(0)), "{report}");
    let handed: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("deleted.json")).unwrap()).unwrap();
    assert_eq!((handed["slug"].as_str(), handed["status"].as_str()), (Some("acme"), Some("deleted")));
    let left: i64 =
        sqlx::query_scalar(r#"SELECT count(*) FROM "Tenant""#).fetch_one(&mut conn).await.unwrap();
    assert_eq!(left, 1, "the callback policy leaves the row to the command");
    // Running again calls nothing twice.
    let third = sync(&hooks);
    let report: Value = serde_json::from_str(&stdout(&third)).unwrap();
    assert_eq!(report["deleted"].as_u64(), Some(0), "{report}");
    let full = sync(&[&hooks[..], &["--full"]].concat());
    let report: Value = serde_json::from_str(&stdout(&full)).unwrap();
    assert_eq!(report["deleted"].as_u64(), Some(0), "a full sync does not delete it again: {report}");
    drop(server);
}
