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
