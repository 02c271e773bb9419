//! Crash safety: SIGKILL the real server again and again while tenants are being created, and
//! check that every event still reaches the webhook receiver and no delivery is left stuck.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{Server, carcosa, run, stderr, stdout};

const TENANTS: usize = 1000;
const WRITERS: usize = 4;
const CRASHES: usize = 4;

/// A receiver that records the `webhook-id` of everything it is sent and answers 200.
async fn start_receiver() -> (String, Arc<Mutex<HashSet<String>>>) {
    let seen = Arc::new(Mutex::new(HashSet::new()));
    let record = seen.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: axum::http::HeaderMap| {
            let record = record.clone();
            async move {
                if let Some(id) = headers.get("webhook-id").and_then(|v| v.to_str().ok()) {
                    record.lock().unwrap().insert(id.to_owned());
                }
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

/// Sends a request until the server answers (it may be down, or restarting).
async fn until_answered(
    client: &reqwest::Client,
    build: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
) -> reqwest::Response {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        match build(client).send().await {
            Ok(response) if response.status().as_u16() < 500 => return response,
            Ok(_) | Err(_) => {
                assert!(Instant::now() < deadline, "the server did not come back");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

async fn crash_while_writing(mut env: Vec<(String, String)>) {
    // The writers go as fast as the server lets them, far past the default rate limit.
    env.push(("CARCOSA_RATE_LIMIT_PER_SECOND".into(), "0".into()));
    let dir = tempfile::tempdir().unwrap();
    let env_refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let created = run(carcosa(dir.path())
        .args(["project", "create", "--name", "Crash"])
        .envs(env_refs.iter().copied()));
    assert!(created.status.success(), "{}", stderr(&created));
    let key =
        serde_json::from_str::<Value>(&stdout(&created)).unwrap()["api_key"].as_str().unwrap().to_owned();

    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let listen = format!("127.0.0.1:{port}");
    let base = format!("http://{listen}");
    let mut server = Some(Server::start_with(dir.path(), &listen, &env_refs));
    let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
    let (hook, received) = start_receiver().await;
    let endpoint = until_answered(&client, |c| {
        c.post(format!("{base}/v1/webhook-endpoints")).bearer_auth(&key).json(&json!({"url": hook}))
    })
    .await;
    assert_eq!(endpoint.status(), 201);
    let endpoint: Value = endpoint.json().await.unwrap();
    let endpoint_id = endpoint["id"].as_str().unwrap().to_owned();

    // Writers create tenants (with idempotency keys, so a retry after a crash never creates twice)
    // while the server is killed and restarted under them.
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let client = client.clone();
            let base = base.clone();
            let key = key.clone();
            tokio::spawn(async move {
                for i in (w..TENANTS).step_by(WRITERS) {
                    let response = until_answered(&client, |c| {
                        c.post(format!("{base}/v1/tenants"))
                            .bearer_auth(&key)
                            .header("idempotency-key", format!("crash-{i}"))
                            .json(&json!({"name": format!("Crash {i}")}))
                    })
                    .await;
                    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap_or_default());
                }
            })
        })
        .collect();
    for _ in 0..CRASHES {
        tokio::time::sleep(Duration::from_millis(700)).await;
        server.take().unwrap().crash();
        tokio::time::sleep(Duration::from_millis(100)).await;
        server = Some(Server::start_with(dir.path(), &listen, &env_refs));
    }
    for writer in writers {
        writer.await.unwrap();
    }

    // Every event of the feed reaches the receiver (at least once).
    let mut events = Vec::new();
    let mut after = "0".to_owned();
    loop {
        let page: Value = until_answered(&client, |c| {
            c.get(format!("{base}/v1/events?after={after}&limit=1000")).bearer_auth(&key)
        })
        .await
        .json()
        .await
        .unwrap();
        events.extend(page["data"].as_array().unwrap().iter().map(|e| e["id"].as_str().unwrap().to_owned()));
        after = page["next_cursor"].as_str().unwrap().to_owned();
        if page["has_more"] == false {
            break;
        }
    }
    assert_eq!(events.len(), TENANTS, "one tenant per idempotency key, one event per tenant");
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let missing = events.iter().filter(|id| !received.lock().unwrap().contains(*id)).count();
        if missing == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "{missing} events never reached the receiver");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // And the delivery log settles: a delivery sent just before a crash but not yet recorded is
    // sent again once its lease expires; in the end nothing is pending and nothing failed.
    let deliveries = |status: &'static str| {
        let client = client.clone();
        let url = format!("{base}/v1/webhook-endpoints/{endpoint_id}/deliveries?status={status}");
        let key = key.clone();
        async move {
            let page: Value =
                until_answered(&client, |c| c.get(&url).bearer_auth(&key)).await.json().await.unwrap();
            page["data"].as_array().unwrap().len()
        }
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while deliveries("pending").await > 0 {
        assert!(Instant::now() < deadline, "deliveries stuck in pending");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(deliveries("failed").await, 0, "no delivery failed");
    let stopped = server.take().unwrap().stop();
    assert!(stopped.status.success(), "{}", stopped.log);
}

fn webhook_env() -> Vec<(String, String)> {
    [
        ("CARCOSA_WEBHOOK_ALLOW_PRIVATE", "true"),
        ("CARCOSA_WEBHOOK_RETRY_SCHEDULE", "0s,200ms,500ms,1s,1s,1s,1s,1s,1s,1s"),
        ("CARCOSA_WEBHOOK_TIMEOUT_SECS", "1"),
        ("CARCOSA_WEBHOOK_POLL_INTERVAL_MS", "200"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_loses_no_webhook_on_sqlite() {
    crash_while_writing(webhook_env()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: set CARCOSA_TEST_POSTGRES_URL"]
async fn sigkill_loses_no_webhook_on_postgres() {
    let admin = std::env::var("CARCOSA_TEST_POSTGRES_URL").expect("CARCOSA_TEST_POSTGRES_URL");
    let name = format!("carcosa_cli_crash_{}", std::process::id());
    let psql = |sql: String| {
        let status =
            std::process::Command::new("psql").args([admin.as_str(), "-qc", &sql]).status().expect("psql");
        assert!(status.success(), "{sql}");
    };
    psql(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
    psql(format!("CREATE DATABASE {name}"));
    let url = format!("{}/{name}", admin.rsplit_once('/').unwrap().0);
    let mut env = webhook_env();
    env.push(("CARCOSA_DATABASE_URL".into(), url));
    env.push(("CARCOSA_MASTER_KEY".into(), "Y2FyY29zYS10ZXN0LW1hc3Rlci1rZXktMzItYnl0ZXM=".into()));
    crash_while_writing(env).await;
    psql(format!("DROP DATABASE {name} WITH (FORCE)"));
}
