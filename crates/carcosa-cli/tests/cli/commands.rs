//! `carcosa project`, `carcosa key`, `carcosa migrate`, `carcosa serve` options and errors.

use serde_json::Value;

use crate::support::{Server, carcosa, run, stderr, stdout};

fn create_project(dir: &std::path::Path, name: &str) -> Value {
    let output = run(carcosa(dir).args(["project", "create", "--name", name]));
    assert!(output.status.success(), "{}", stderr(&output));
    serde_json::from_str(&stdout(&output)).expect("stdout is one JSON object")
}

#[test]
fn project_create_prints_exactly_one_json_object() {
    let dir = tempfile::tempdir().unwrap();
    let output = run(carcosa(dir.path()).args(["project", "create", "--name", "My SaaS"]));
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert_eq!(text.lines().count(), 1, "one line on stdout: {text}");
    let value: Value = serde_json::from_str(&text).unwrap();
    let object = value.as_object().unwrap();
    assert_eq!(object.keys().collect::<Vec<_>>(), ["api_key", "project"]);
    assert!(value["project"]["id"].as_str().unwrap().starts_with("prj_"));
    assert_eq!(value["project"]["name"], "My SaaS");
    assert!(carcosa_core::ApiKey::parse(value["api_key"].as_str().unwrap()).is_ok());
    assert!(
        dir.path().join("carcosa.db").exists(),
        "the default database is created in the working directory"
    );
    let listed = run(carcosa(dir.path()).args(["project", "list"]));
    assert!(stdout(&listed).contains(value["project"]["id"].as_str().unwrap()));
}

#[test]
fn keys_are_created_listed_and_revoked() {
    let dir = tempfile::tempdir().unwrap();
    let project = create_project(dir.path(), "Keys");
    let id = project["project"]["id"].as_str().unwrap();
    let created = run(carcosa(dir.path()).args([
        "key",
        "create",
        "--project",
        id,
        "--scope",
        "tenants:read",
        "--scope",
        "events:read",
        "--label",
        "reader",
    ]));
    assert!(created.status.success(), "{}", stderr(&created));
    let created: Value = serde_json::from_str(&stdout(&created)).unwrap();
    assert_eq!(created["key"]["scopes"], serde_json::json!(["tenants:read", "events:read"]));
    let key_id = created["key"]["id"].as_str().unwrap();
    assert!(created["api_key"].as_str().unwrap().starts_with(&format!("ck_{key_id}_")));

    let listed = run(carcosa(dir.path()).args(["key", "list", "--project", id]));
    let keys: Vec<Value> = stdout(&listed).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(keys.len(), 2, "the project's first key and the new one");
    assert!(!stdout(&listed).contains(created["api_key"].as_str().unwrap()), "secrets are never listed");

    let revoked = run(carcosa(dir.path()).args(["key", "revoke", key_id]));
    assert!(revoked.status.success(), "{}", stderr(&revoked));
    let listed = run(carcosa(dir.path()).args(["key", "list", "--project", id]));
    let revoked_key = stdout(&listed)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|k| k["id"] == key_id)
        .unwrap();
    assert!(revoked_key["revoked_at"].is_string());
}

#[test]
fn a_key_can_have_its_own_rate_limit() {
    let dir = tempfile::tempdir().unwrap();
    let project = create_project(dir.path(), "Limits");
    let id = project["project"]["id"].as_str().unwrap();
    assert!(project["project"].get("rate_limit").is_none());
    let create = |extra: &[&str]| {
        let mut args = vec!["key", "create", "--project", id, "--scope", "tenants:read"];
        args.extend_from_slice(extra);
        let output = run(carcosa(dir.path()).args(&args));
        assert!(output.status.success(), "{}", stderr(&output));
        serde_json::from_str::<Value>(&stdout(&output)).unwrap()["key"].clone()
    };
    assert_eq!(create(&[])["rate_limit"], Value::Null, "the server's default applies");
    assert_eq!(
        create(&["--rate-limit", "5"])["rate_limit"],
        serde_json::json!({"per_second": 5, "burst": 10})
    );
    let own = create(&["--rate-limit", "0", "--rate-limit-burst", "3"]);
    assert_eq!(own["rate_limit"], serde_json::json!({"per_second": 0, "burst": 3}));
    let listed = run(carcosa(dir.path()).args(["key", "list", "--project", id]));
    let listed: Vec<Value> = stdout(&listed).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let found = listed.iter().find(|k| k["id"] == own["id"]).unwrap();
    assert_eq!(found["rate_limit"], own["rate_limit"], "the limit is stored");
    let refused = run(carcosa(dir.path()).args([
        "key",
        "create",
        "--project",
        id,
        "--scope",
        "tenants:read",
        "--rate-limit-burst",
        "3",
    ]));
    assert!(!refused.status.success(), "a burst needs a rate");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_changes_are_audited_as_the_os_user() {
    let dir = tempfile::tempdir().unwrap();
    let as_alice = |args: &[&str]| -> Value {
        let output = run(carcosa(dir.path()).args(args).env("USER", "alice"));
        assert!(output.status.success(), "{args:?}: {}", stderr(&output));
        serde_json::from_str(&stdout(&output)).unwrap()
    };
    let created = as_alice(&["project", "create", "--name", "Audited"]);
    let project = created["project"]["id"].as_str().unwrap().to_owned();
    let auditor = as_alice(&["key", "create", "--project", &project, "--scope", "audit:read"]);
    assert_eq!(auditor["key"]["scopes"], serde_json::json!(["audit:read"]));
    let temp = as_alice(&["key", "create", "--project", &project, "--scope", "tenants:read"]);
    let temp_id = temp["key"]["id"].as_str().unwrap().to_owned();
    as_alice(&["key", "revoke", &temp_id]);
    as_alice(&["key", "revoke", &temp_id]);

    let server = Server::start(dir.path());
    let client = reqwest::Client::new();
    let read = |key: String| {
        let request = client.get(format!("http://{}/v1/audit-log", server.address)).bearer_auth(key);
        async move {
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 200);
            response.json::<Value>().await.unwrap()["data"].as_array().unwrap().clone()
        }
    };
    // A key with only `audit:read` reads the log.
    let log = read(auditor["api_key"].as_str().unwrap().to_owned()).await;
    let actions: Vec<&str> = log.iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(
        actions,
        ["key.revoke", "key.create", "key.create", "key.create", "project.create"],
        "one entry per change; the second revocation changed nothing"
    );
    for entry in &log {
        assert_eq!(entry["actor"], serde_json::json!({"kind": "cli", "id": "alice"}), "{entry}");
        assert!(entry["user_agent"].as_str().unwrap().starts_with("carcosa-cli/"), "{entry}");
        assert_eq!(entry["address"], Value::Null);
        assert_eq!(entry["project_id"], project);
    }
    assert_eq!(log[0]["target"], serde_json::json!({"type": "key", "id": temp_id}));
    assert_eq!(log[1]["after"]["scopes"], serde_json::json!(["tenants:read"]));
    assert_eq!(log[4]["after"]["name"], "Audited");
    assert_eq!(log[3]["request_id"], log[4]["request_id"], "the project and its first key: one command");
    assert_ne!(log[2]["request_id"], log[3]["request_id"]);
    let text = serde_json::to_string(&log).unwrap();
    for key in [&created["api_key"], &auditor["api_key"], &temp["api_key"]] {
        let secret = key.as_str().unwrap().rsplit('_').next().unwrap();
        assert!(!text.contains(secret), "a key's secret is in the audit log");
    }
    drop(server);
}

#[test]
fn mistakes_get_readable_errors_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let project = create_project(dir.path(), "Mistakes");
    let id = project["project"]["id"].as_str().unwrap();
    let cases: [(&[&str], &str); 6] = [
        (&["key", "create", "--project", id, "--scope", "tenants:admin"], "not a scope"),
        (&["key", "create", "--project", "acme", "--scope", "tenants:read"], "not a valid project id"),
        (
            &["key", "create", "--project", "prj_01JDQ3V6Z8K4M2N7P9R1S3T5W7", "--scope", "tenants:read"],
            "no project",
        ),
        (&["key", "list", "--project", "prj_01JDQ3V6Z8K4M2N7P9R1S3T5W7"], "no project"),
        (&["key", "revoke", "nosuchkey"], "no key"),
        (&["project", "create", "--name", "  "], "--name"),
    ];
    for (args, message) in cases {
        let output = run(carcosa(dir.path()).args(args));
        assert!(!output.status.success(), "{args:?} should fail");
        let err = stderr(&output);
        assert!(err.contains(message), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    let listed = run(carcosa(dir.path()).args(["key", "list", "--project", id]));
    assert_eq!(stdout(&listed).lines().count(), 1, "no key was created by the failed commands");

    let bad_url = run(carcosa(dir.path()).args(["--database-url", "mysql://nope", "migrate"]));
    assert!(!bad_url.status.success());
    assert!(stderr(&bad_url).contains("unsupported database URL"), "{}", stderr(&bad_url));
    let bad_env = run(carcosa(dir.path()).args(["migrate"]).env("CARCOSA_EVENT_RETENTION_DAYS", "soon"));
    assert!(stderr(&bad_env).contains("CARCOSA_EVENT_RETENTION_DAYS"), "{}", stderr(&bad_env));
}

#[test]
fn print_config_shows_the_effective_config_without_secrets() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("carcosa.toml"), "event_retention_days = 7\n").unwrap();
    let output = run(carcosa(dir.path())
        .args(["serve", "--print-config", "--config", "carcosa.toml"])
        .env("CARCOSA_DATABASE_URL", "postgres://carcosa:hunter2@db/carcosa")
        .env("CARCOSA_LISTEN", "0.0.0.0:9999"));
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.contains("event_retention_days = 7"), "{text}");
    assert!(text.contains("listen = \"0.0.0.0:9999\""), "{text}");
    assert!(text.contains("postgres://carcosa:***@db/carcosa"), "{text}");
    assert!(!text.contains("hunter2"));
}

#[test]
fn serve_reports_a_busy_port_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path());
    let busy = run(carcosa(dir.path()).arg("serve").env("CARCOSA_LISTEN", &server.address));
    assert!(!busy.status.success());
    assert!(stderr(&busy).contains("cannot listen on"), "{}", stderr(&busy));
    let stopped = server.stop();
    let log = stopped.log;
    assert!(stopped.status.success(), "exit: {:?}\n{log}", stopped.status);
    assert!(log.contains("is listening on http://"), "{log}");
    assert!(log.contains("carcosa project create"), "the banner says how to start: {log}");
    assert!(log.contains("carcosa stopped"), "{log}");
}

#[test]
#[ignore = "needs PostgreSQL: set CARCOSA_TEST_POSTGRES_URL"]
fn migrate_and_projects_work_on_postgres() {
    let admin = std::env::var("CARCOSA_TEST_POSTGRES_URL").expect("CARCOSA_TEST_POSTGRES_URL");
    let name = format!("carcosa_cli_{}", std::process::id());
    let psql = |sql: &str| {
        let status =
            std::process::Command::new("psql").args([admin.as_str(), "-qc", sql]).status().expect("psql");
        assert!(status.success(), "{sql}");
    };
    psql(&format!("DROP DATABASE IF EXISTS {name}"));
    psql(&format!("CREATE DATABASE {name}"));
    let url = format!("{}/{name}", admin.rsplit_once('/').unwrap().0);
    let dir = tempfile::tempdir().unwrap();
    let migrated = run(carcosa(dir.path()).args(["migrate", "--database-url", &url]));
    assert!(migrated.status.success(), "{}", stderr(&migrated));
    assert!(stderr(&migrated).contains("(postgres)"));
    let created = run(carcosa(dir.path())
        .args(["project", "create", "--name", "On PG"])
        .env("CARCOSA_DATABASE_URL", &url));
    assert!(created.status.success(), "{}", stderr(&created));
    assert!(!dir.path().join("carcosa.db").exists(), "no SQLite file when PostgreSQL is configured");
    psql(&format!("DROP DATABASE {name} WITH (FORCE)"));
}
