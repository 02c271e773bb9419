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
