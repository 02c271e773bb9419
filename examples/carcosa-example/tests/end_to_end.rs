//! The example app against a real Carcosa server, both in this process on port 0, each on its
//! own SQLite database: tenants changed in Carcosa reach the app's requests through webhooks
//! alone, within a second.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use carcosa_example::Settings;
use carcosa_server::Config;
use carcosa_server::config::DatabaseUrl;
use reqwest::RequestBuilder;
use serde_json::{Value, json};

const JWT_SECRET: &str = "the example app's HS256 secret, 32+ bytes";

/// A Carcosa server with one project, allowed to deliver webhooks to loopback.
struct Carcosa {
    url: String,
    key: String,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Carcosa {
    async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            database_url: DatabaseUrl(format!("sqlite://{}", dir.path().join("carcosa.db").display())),
            webhook_allow_private: true,
            ..Config::default()
        };
        let store = carcosa_server::open_store(&config).await.unwrap();
        let audit = carcosa_server::audit::AuditContext::cli("test");
        let (_, _, key) = store.create_project("Example app tests", &audit).await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(carcosa_server::serve(config, listener, async move {
            let _ = stopped.await;
        }));
        Self { url, key: key.expose(), http: reqwest::Client::new(), _dir: dir, _stop: stop }
    }

    /// Sends an API request and returns the JSON answer, which must be a success.
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self.http.request(method, format!("{}{path}", self.url)).bearer_auth(&self.key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        assert!(status.is_success(), "{path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    async fn create_tenant(&self, name: &str) -> Value {
        self.call(reqwest::Method::POST, "/v1/tenants", Some(json!({ "name": name }))).await
    }
}

/// The example app, served by [`carcosa_example::run`] until dropped or [`App::stop`]ped.
struct App {
    url: String,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl App {
    /// Starts the app on `listener` with the settings a deployment would put in its environment.
    async fn start(
        carcosa: &Carcosa,
        listener: tokio::net::TcpListener,
        webhook_secret: Option<&str>,
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut vars = HashMap::from([
            ("CARCOSA_API_URL", carcosa.url.clone()),
            ("CARCOSA_API_KEY", carcosa.key.clone()),
            ("DATABASE_URL", format!("sqlite://{}", dir.path().join("app.db").display())),
            ("APP_JWT_SECRET", JWT_SECRET.to_owned()),
        ]);
        if let Some(secret) = webhook_secret {
            vars.insert("CARCOSA_WEBHOOK_SECRET", secret.to_owned());
        }
        let settings = Settings::from_vars(|name| vars.get(name).cloned()).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(carcosa_example::run(settings, listener, async move {
            let _ = stopped.await;
        }));
        let app = Self { url, http: reqwest::Client::new(), _dir: dir, stop: Some(stop), task: Some(task) };
        // `run` serves once its start-up sync is done.
        let started = Instant::now();
        while app.http.get(format!("{}/healthz", app.url)).send().await.is_err() {
            assert!(started.elapsed() < Duration::from_secs(10), "the app did not start");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        app
    }

    fn get(&self, path: &str) -> RequestBuilder {
        self.http.get(format!("{}{path}", self.url))
    }

    /// Shuts the app down and checks that it stopped cleanly.
    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        let task = self.task.take().unwrap();
        tokio::time::timeout(Duration::from_secs(10), task).await.unwrap().unwrap().unwrap();
    }
}

/// `(status, JSON body)` of a request.
async fn send(request: RequestBuilder) -> (u16, Value) {
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Sends `request` every 20 ms until its status is `expected`, for at most a second; returns the
/// body. No sync is ever started by hand: only webhooks can bring the change in time.
async fn within_a_second(request: impl Fn() -> RequestBuilder, expected: u16) -> Value {
    let started = Instant::now();
    loop {
        let (status, body) = send(request()).await;
        if status == expected {
            return body;
        }
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "still {status} after a second, expected {expected}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// An HS256 token whose `tenant` claim is `tenant`.
fn token(tenant: &str) -> String {
    let exp = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() + 600;
    jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &json!({ "sub": "user_1", "tenant": tenant, "exp": exp }),
        &jsonwebtoken::EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .unwrap()
}

/// The tenant `/whoami` named, or the problem's code.
fn named(body: &Value) -> &str {
    body["tenant"]["name"].as_str().or_else(|| body["code"].as_str()).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_changed_in_carcosa_reach_the_apps_requests_through_webhooks_within_a_second() {
    let carcosa = Carcosa::start().await;
    // The endpoint is registered first, on the address the app will listen on, so the app can
    // start with its secret.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!("http://{}/carcosa/webhooks", listener.local_addr().unwrap());
    let endpoint =
        carcosa.call(reqwest::Method::POST, "/v1/webhook-endpoints", Some(json!({ "url": hook }))).await;
    let app = App::start(&carcosa, listener, endpoint["secret"].as_str()).await;
    let by_host = |host: &str| app.get("/whoami").header("host", host.to_owned());

    // Unknown for now, and remembered as unknown by the cache.
    let (status, body) = send(by_host("acme.localhost:3000")).await;
    assert_eq!((status, named(&body)), (404, "tenant_not_found"));

    let acme = carcosa.create_tenant("Acme").await;
    let id = acme["id"].as_str().unwrap().to_owned();
    assert_eq!(acme["slug"], "acme");
    let body = within_a_second(|| by_host("acme.localhost:3000"), 200).await;
    assert_eq!(body, json!({"tenant": {"id": id, "slug": "acme", "name": "Acme", "status": "active"}}));

    // Every other way of naming it.
    for request in [
        app.get("/whoami").header("x-tenant-slug", "acme"),
        app.get("/whoami?tenant=acme"),
        app.get(&format!("/whoami?tenant={id}")),
        app.get("/t/acme/whoami"),
        app.get("/whoami").bearer_auth(token("acme")),
        app.get("/whoami").bearer_auth(token(&id)),
    ] {
        let (status, body) = send(request).await;
        assert_eq!((status, body["tenant"]["id"].as_str()), (200, Some(id.as_str())), "{body}");
    }

    // Sources that name different tenants are refused, so a token for one tenant cannot reach
    // another's path. A forged token is refused outright.
    carcosa.create_tenant("Globex").await;
    within_a_second(|| app.get("/t/globex/whoami"), 200).await;
    let (status, body) = send(app.get("/t/globex/whoami").bearer_auth(token("acme"))).await;
    assert_eq!((status, named(&body)), (400, "tenant_conflict"));
    let forged = format!("{}x", token("acme"));
    let (status, body) = send(app.get("/whoami").bearer_auth(forged)).await;
    assert_eq!((status, named(&body)), (401, "tenant_token_invalid"));

    // No tenant, or one nobody has.
    let (status, body) = send(app.get("/whoami")).await;
    assert_eq!((status, named(&body)), (400, "tenant_required"));
    let (status, body) = send(by_host("initech.localhost:3000")).await;
    assert_eq!((status, named(&body)), (404, "tenant_not_found"));
    let (status, body) = send(app.get("/t/initech/whoami")).await;
    assert_eq!((status, named(&body)), (404, "tenant_not_found"));

    // The health check and the receiver are routed before detection: a host naming an unknown
    // tenant does not get in their way.
    let health = app.get("/healthz").header("host", "initech.localhost").send().await.unwrap();
    assert_eq!(health.status(), 200);
    let unsigned = app.http.post(&hook).header("host", "initech.localhost").body("{}").send().await.unwrap();
    assert_eq!(unsigned.status(), 401, "the receiver itself refused the unsigned delivery");

    // Suspended, then deleted in Carcosa: the very next requests see it, cache or not.
    let suspend = json!({"status": "suspended"});
    carcosa.call(reqwest::Method::PATCH, &format!("/v1/tenants/{id}"), Some(suspend)).await;
    let body = within_a_second(|| by_host("acme.localhost:3000"), 403).await;
    assert_eq!(named(&body), "tenant_suspended");
    carcosa.call(reqwest::Method::DELETE, &format!("/v1/tenants/{id}"), None).await;
    let body = within_a_second(|| by_host("acme.localhost:3000"), 404).await;
    assert_eq!(named(&body), "tenant_not_found");
    let (status, _) = send(app.get("/whoami").bearer_auth(token(&id))).await;
    assert_eq!(status, 404, "deleted, by id too");

    // The app reports its sync under its own name.
    let statuses = carcosa.call(reqwest::Method::GET, "/v1/sync-status", None).await;
    let listed = statuses["data"].as_array().unwrap();
    assert!(listed.iter().any(|s| s["instance"] == carcosa_example::INSTANCE), "{statuses}");

    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_webhook_secret_the_app_serves_what_its_start_up_sync_brought() {
    let carcosa = Carcosa::start().await;
    let acme = carcosa.create_tenant("Acme").await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let app = App::start(&carcosa, listener, None).await;

    let (status, body) = send(app.get("/whoami").header("host", "acme.localhost")).await;
    assert_eq!((status, &body["tenant"]["id"]), (200, &acme["id"]), "{body}");
    let receiver = app.http.post(format!("{}/carcosa/webhooks", app.url)).body("{}").send().await.unwrap();
    assert_eq!(receiver.status(), 404, "no receiver is mounted");

    app.stop().await;
}
