//! The logs of a whole run at `debug`, as JSON: no secret anywhere in them, and every line a
//! request writes carries its request id.
//!
//! A project and a second key, a server, a webhook endpoint whose deliveries go to a sidecar,
//! tenants created, updated and deleted, a dashboard login: every process runs with
//! `CARCOSA_LOG=debug CARCOSA_LOG_FORMAT=json`, and everything they wrote on stderr is searched
//! for every secret the run used.

use std::io::BufRead;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use sqlx::{Connection, Row};

use crate::support::{Server, carcosa, run, stderr, stdout};

const LOG: [(&str, &str); 2] = [("CARCOSA_LOG", "debug"), ("CARCOSA_LOG_FORMAT", "json")];
const ADMIN_PASSWORD: &str = "obs-admin-password-4f2a91";

/// The request span's fields on a JSON log line, if the line was written inside a request.
fn request_span(line: &Value) -> Option<&Value> {
    line["spans"].as_array()?.iter().find(|span| span["name"] == "request")
}

/// The value of a cookie set by a response.
fn set_cookie(response: &reqwest::Response, name: &str) -> Option<String> {
    response.headers().get_all("set-cookie").iter().filter_map(|v| v.to_str().ok()).find_map(|cookie| {
        let value = cookie.strip_prefix(name)?.strip_prefix('=')?;
        Some(value.split(';').next().unwrap_or_default().to_owned())
    })
}

/// The CSRF token of a dashboard form.
fn csrf(html: &str) -> String {
    let start = html.find(r#"name="csrf" value=""#).expect("a csrf field") + r#"name="csrf" value=""#.len();
    html[start..].split('"').next().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_run_logs_no_secret_and_every_request_line_carries_its_id() {
    let dir = tempfile::tempdir().unwrap();
    let mut logs = String::new();
    let created = run(carcosa(dir.path()).args(["project", "create", "--name", "Logged"]).envs(LOG));
    assert!(created.status.success(), "{}", stderr(&created));
    logs.push_str(&stderr(&created));
    let created: Value = serde_json::from_str(&stdout(&created)).unwrap();
    let key = created["api_key"].as_str().unwrap().to_owned();
    let project = created["project"]["id"].as_str().unwrap().to_owned();
    let reader = run(carcosa(dir.path())
        .args(["key", "create", "--project", &project, "--scope", "tenants:read"])
        .envs(LOG));
    assert!(reader.status.success(), "{}", stderr(&reader));
    logs.push_str(&stderr(&reader));
    let reader_key =
        serde_json::from_str::<Value>(&stdout(&reader)).unwrap()["api_key"].as_str().unwrap().to_owned();

    let mut env = LOG.to_vec();
    env.extend([
        ("CARCOSA_WEBHOOK_ALLOW_PRIVATE", "true"),
        ("CARCOSA_ADMIN_EMAIL", "ops@example.com"),
        ("CARCOSA_ADMIN_PASSWORD", ADMIN_PASSWORD),
    ]);
    let server = Server::start_with(dir.path(), "127.0.0.1:0", &env);
    let base = format!("http://{}", server.address);
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();

    // A webhook endpoint, delivering to a sidecar that syncs an app table.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let endpoint: Value = client
        .post(format!("{base}/v1/webhook-endpoints"))
        .bearer_auth(&key)
        .json(&json!({ "url": format!("http://127.0.0.1:{port}/") }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let webhook_secret = endpoint["secret"].as_str().expect("the endpoint's secret").to_owned();
    let app_db = format!("sqlite://{}", dir.path().join("app.db").display());
    let mut sidecar = carcosa(dir.path())
        .args(["sync", "--watch", "--interval", "3600", "--listen", &format!("127.0.0.1:{port}")])
        .args(["--api-url", &base, "--api-key", &key, "--database-url", &app_db])
        .args(["--webhook-secret", &webhook_secret])
        .envs(LOG)
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(sidecar.stderr.take().unwrap()).lines();
    let mut sidecar_log = String::new();
    for line in lines.by_ref().map_while(Result::ok) {
        sidecar_log.push_str(&line);
        sidecar_log.push('\n');
        if line.contains("receiving webhooks on") {
            break;
        }
    }
    let sidecar_rest =
        std::thread::spawn(move || lines.map_while(Result::ok).map(|l| l + "\n").collect::<String>());

    // Tenants: one request with our own id, one with a generated id; an update; a deletion.
    let named = client
        .post(format!("{base}/v1/tenants"))
        .bearer_auth(&key)
        .header("x-request-id", "obs-log-test-create")
        .json(&json!({ "name": "Logged One", "metadata": { "note": "metadata-value-never-logged" } }))
        .send()
        .await
        .unwrap();
    assert_eq!(named.status(), 201);
    assert_eq!(named.headers()["x-request-id"], "obs-log-test-create");
    let anonymous = client
        .post(format!("{base}/v1/tenants"))
        .bearer_auth(&key)
        .json(&json!({ "name": "Logged Two" }))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 201);
    let generated_id = anonymous.headers()["x-request-id"].to_str().unwrap().to_owned();
    let two: Value = anonymous.json().await.unwrap();
    let updated = client
        .patch(format!("{base}/v1/tenants/logged-one"))
        .bearer_auth(&key)
        .header("x-request-id", "obs-log-test-update")
        .json(&json!({ "plan": "pro" }))
        .send()
        .await
        .unwrap();
    assert_eq!(updated.status(), 200);
    let deleted = client
        .delete(format!("{base}/v1/tenants/{}", two["id"].as_str().unwrap()))
        .bearer_auth(&key)
        .header("x-request-id", "obs-log-test-delete")
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 200);
    let listed = client.get(format!("{base}/v1/tenants")).bearer_auth(&reader_key).send().await.unwrap();
    assert_eq!(listed.status(), 200);

    // The sidecar got them by webhook (its interval is an hour).
    let mut names = Vec::new();
    for _ in 0..200 {
        if let Ok(mut conn) = sqlx::SqliteConnection::connect(&app_db).await {
            names = sqlx::query("SELECT name FROM tenants WHERE name LIKE 'Logged%' AND status = 'active'")
                .fetch_all(&mut conn)
                .await
                .map(|rows| rows.iter().map(|r| r.get::<String, _>(0)).collect())
                .unwrap_or_default();
        }
        if names == ["Logged One"] {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(names, ["Logged One"], "webhooks reached the sidecar");

    // A dashboard login: the login token, its CSRF value, the password, the session cookie.
    let form = client.get(format!("{base}/ui/login")).send().await.unwrap();
    let login_token = set_cookie(&form, "carcosa_login").expect("a login cookie");
    let form_csrf = csrf(&form.text().await.unwrap());
    let signed_in = client
        .post(format!("{base}/ui/login"))
        .header("cookie", format!("carcosa_login={login_token}"))
        .form(&[("email", "ops@example.com"), ("password", ADMIN_PASSWORD), ("csrf", &form_csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), 303, "signed in");
    let session = set_cookie(&signed_in, "carcosa_session").expect("a session cookie");
    let home = client
        .get(format!("{base}/ui/"))
        .header("cookie", format!("carcosa_session={session}"))
        .send()
        .await
        .unwrap();
    assert_eq!(home.status(), 200);

    std::process::Command::new("kill").args(["-TERM", &sidecar.id().to_string()]).status().unwrap();
    assert!(sidecar.wait().unwrap().success());
    sidecar_log.push_str(&sidecar_rest.join().unwrap());
    let stopped = server.stop();
    assert!(stopped.status.success());
    logs.push_str(&stopped.log);
    logs.push_str(&sidecar_log);

    // No secret, in any form, anywhere.
    let key_secret = |key: &str| key.rsplit('_').next().unwrap().to_owned();
    let secrets = [
        ("the API key", key.clone()),
        ("the API key's secret", key_secret(&key)),
        ("the second API key", reader_key.clone()),
        ("the second key's secret", key_secret(&reader_key)),
        ("the webhook secret", webhook_secret.clone()),
        ("the webhook secret's key", webhook_secret.trim_start_matches("whsec_").to_owned()),
        ("the operator password", ADMIN_PASSWORD.to_owned()),
        ("the session cookie", session.clone()),
        ("the login token", login_token.clone()),
        ("the login form's CSRF value", form_csrf.clone()),
        ("a metadata value", "metadata-value-never-logged".to_owned()),
    ];
    for (what, secret) in &secrets {
        assert!(secret.len() >= 12, "{what} is too short to search for: {secret}");
        assert!(!logs.contains(secret.as_str()), "{what} is in the logs");
    }

    // Every JSON line written in a request carries its id; the ids are the ones the caller saw.
    let json_lines: Vec<Value> =
        logs.lines().filter(|l| l.starts_with('{')).map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(json_lines.len() > 50, "JSON logs expected:\n{logs}");
    let in_requests: Vec<&Value> = json_lines.iter().filter(|l| request_span(l).is_some()).collect();
    for line in &in_requests {
        let id = request_span(line).unwrap()["request_id"].as_str().unwrap_or_default();
        assert!(!id.is_empty(), "a request line without its id: {line}");
    }
    let message = |line: &Value| line["fields"]["message"].as_str().unwrap_or_default().to_owned();
    let lines_of = |id: &str| -> Vec<String> {
        in_requests
            .iter()
            .filter(|l| request_span(l).unwrap()["request_id"] == id)
            .map(|l| message(l))
            .collect()
    };
    for (id, lifecycle) in [
        ("obs-log-test-create", "tenant created"),
        (generated_id.as_str(), "tenant created"),
        ("obs-log-test-update", "tenant updated"),
        ("obs-log-test-delete", "tenant deleted"),
    ] {
        let messages = lines_of(id);
        assert!(messages.iter().any(|m| m == lifecycle), "{id}: {messages:?}");
        assert!(messages.iter().any(|m| m == "finished processing request"), "{id}: {messages:?}");
    }
    let created_line = in_requests
        .iter()
        .find(|l| {
            message(l) == "tenant created" && request_span(l).unwrap()["request_id"] == "obs-log-test-create"
        })
        .unwrap();
    assert_eq!(created_line["level"], "INFO");
    assert_eq!(created_line["fields"]["project"], project);
    assert!(created_line["fields"]["tenant_id"].as_str().is_some_and(|id| id.starts_with("ten_")));
    // The sidecar's runs are logged at info.
    assert!(
        json_lines.iter().any(|l| message(l) == "sync run done" && l["level"] == "INFO"),
        "no sync run logged:\n{sidecar_log}"
    );
}
