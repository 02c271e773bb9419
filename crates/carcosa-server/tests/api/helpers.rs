//! The test harness: a server per test, a database per test, and a client that records every
//! response so it can be checked against the OpenAPI document.

use std::sync::Mutex;

use carcosa_core::{ProjectId, Tenant};
use carcosa_server::Config;
use carcosa_server::audit::AuditContext;
use carcosa_server::config::{DatabaseUrl, SecretString};
use carcosa_server::store::Store;
use reqwest::Method;
use serde_json::{Value, json};
use sqlx::Connection;
use tokio::sync::oneshot;

/// Base64 of 32 bytes, for servers on PostgreSQL.
pub const TEST_MASTER_KEY: &str = "Y2FyY29zYS10ZXN0LW1hc3Rlci1rZXktMzItYnl0ZXM=";

/// The actor of changes a test makes through the store directly: a CLI user named `test`.
pub fn test_actor() -> AuditContext {
    AuditContext::cli("test")
}

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Generates, for each named `async fn test(backend: Backend)`, one `#[tokio::test]` per backend:
/// `sqlite::name` and `postgres::name` (ignored unless asked for).
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[ignore = "needs PostgreSQL: set CARCOSA_TEST_POSTGRES_URL"]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Postgres).await;
                }
            )*
        }
    };
}

/// A database that exists for one test.
pub enum TestDb {
    Sqlite { _dir: tempfile::TempDir, url: String },
    Postgres { admin_url: String, name: String, url: String },
}

impl TestDb {
    pub async fn create(backend: Backend) -> Self {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite://{}", dir.path().join("carcosa.db").display());
                Self::Sqlite { _dir: dir, url }
            }
            Backend::Postgres => {
                let admin_url = std::env::var("CARCOSA_TEST_POSTGRES_URL").expect(
                    "set CARCOSA_TEST_POSTGRES_URL, e.g. postgres://postgres@127.0.0.1:5432/postgres",
                );
                let name = format!("carcosa_test_{}", ulid::Ulid::new().to_string().to_lowercase());
                let mut admin = sqlx::PgConnection::connect(&admin_url).await.expect("connect to PostgreSQL");
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&mut admin)
                    .await
                    .expect("create database");
                admin.close().await.ok();
                let base = admin_url.rsplit_once('/').map_or(admin_url.as_str(), |(base, _)| base);
                let url = format!("{base}/{name}");
                Self::Postgres { admin_url, name, url }
            }
        }
    }

    pub fn url(&self) -> &str {
        match self {
            Self::Sqlite { url, .. } | Self::Postgres { url, .. } => url,
        }
    }

    pub async fn drop_database(self) {
        if let Self::Postgres { admin_url, name, .. } = self {
            let mut admin = sqlx::PgConnection::connect(&admin_url).await.expect("connect to PostgreSQL");
            sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&mut admin)
                .await
                .expect("drop database");
        }
    }
}

/// One exchange the test saw, for the OpenAPI check.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: Method,
    pub path: String,
    pub status: u16,
    pub content_type: String,
}

/// A running server with one project and its all-scopes key.
pub struct TestApp {
    pub address: String,
    pub config: Config,
    pub client: reqwest::Client,
    pub store: Store,
    pub project: ProjectId,
    pub key: String,
    db: Option<TestDb>,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    pub seen: Mutex<Vec<Seen>>,
}

/// Starts a server with default settings.
pub async fn spawn(backend: Backend) -> TestApp {
    spawn_with(backend, |_| {}).await
}

/// Starts a server after `adjust` has changed its configuration.
pub async fn spawn_with(backend: Backend, adjust: impl FnOnce(&mut Config)) -> TestApp {
    let db = TestDb::create(backend).await;
    let mut config = Config { database_url: DatabaseUrl(db.url().to_owned()), ..Config::default() };
    if backend == Backend::Postgres {
        // PostgreSQL has no data directory to keep a generated key in: give it one.
        config.master_key = Some(SecretString(TEST_MASTER_KEY.into()));
    }
    adjust(&mut config);
    let store = carcosa_server::open_store(&config).await.expect("open store");
    let (project, _, key) =
        store.create_project("Test project", &test_actor()).await.expect("create project");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = format!("http://{}", listener.local_addr().expect("address"));
    let (shutdown, stop) = oneshot::channel::<()>();
    let server = tokio::spawn(carcosa_server::serve(config.clone(), listener, async move {
        let _ = stop.await;
    }));
    TestApp {
        address,
        config,
        client: reqwest::Client::new(),
        store,
        project: project.id,
        key: key.expose(),
        db: Some(db),
        shutdown: Some(shutdown),
        server: Some(server),
        seen: Mutex::new(Vec::new()),
    }
}

/// A request being built.
pub struct Req<'a> {
    app: &'a TestApp,
    method: Method,
    path: String,
    key: Option<String>,
    builder: reqwest::RequestBuilder,
}

/// A response, read whole.
#[derive(Debug)]
pub struct Res {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
}

impl Res {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts the status and, for errors, the problem+json shape and code.
    #[track_caller]
    pub fn expect(&self, status: u16) -> &Self {
        assert_eq!(self.status, status, "unexpected status; body: {}", self.text);
        self
    }

    /// Asserts a problem+json answer with this status and code.
    #[track_caller]
    pub fn expect_problem(&self, status: u16, code: &str) -> Value {
        assert_eq!(self.status, status, "unexpected status; body: {}", self.text);
        assert_eq!(self.header("content-type"), Some("application/problem+json"), "{}", self.text);
        let body = self.json();
        assert_eq!(body["code"], code, "{body}");
        assert_eq!(body["status"], status);
        assert_eq!(body["type"], format!("urn:carcosa:problem:{code}"));
        assert!(body["title"].as_str().is_some_and(|t| !t.is_empty()));
        assert!(body["detail"].as_str().is_some_and(|t| !t.is_empty()));
        body
    }

    pub fn tenant(&self) -> Tenant {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not a tenant ({e}): {}", self.text))
    }
}

impl<'a> Req<'a> {
    pub fn key(mut self, key: &str) -> Self {
        self.key = Some(key.to_owned());
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.builder = self.builder.header(name, value);
        self
    }

    pub fn json(mut self, body: &Value) -> Self {
        self.builder = self.builder.json(body);
        self
    }

    pub fn raw(mut self, content_type: &str, body: impl Into<reqwest::Body>) -> Self {
        self.builder = self.builder.header("content-type", content_type).body(body);
        self
    }

    pub async fn send(self) -> Res {
        let builder = match &self.key {
            Some(key) => self.builder.bearer_auth(key),
            None => self.builder,
        };
        let response = builder.send().await.expect("request failed");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.expect("body");
        let content_type =
            headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        self.app.seen.lock().unwrap().push(Seen {
            method: self.method,
            path: self.path,
            status,
            content_type,
        });
        Res { status, headers, text }
    }
}

impl TestApp {
    /// A request with the project's all-scopes key.
    pub fn req(&self, method: Method, path: &str) -> Req<'_> {
        self.anonymous(method, path).key(&self.key)
    }

    /// A request without credentials.
    pub fn anonymous(&self, method: Method, path: &str) -> Req<'_> {
        let builder = self.client.request(method.clone(), format!("{}{path}", self.address));
        Req { app: self, method, path: path.to_owned(), key: None, builder }
    }

    pub async fn get(&self, path: &str) -> Res {
        self.req(Method::GET, path).send().await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Res {
        self.req(Method::POST, path).json(body).send().await
    }

    pub async fn patch(&self, path: &str, body: &Value) -> Res {
        self.req(Method::PATCH, path).json(body).send().await
    }

    pub async fn delete(&self, path: &str) -> Res {
        self.req(Method::DELETE, path).send().await
    }

    /// Creates a tenant and asserts it worked.
    pub async fn create_tenant(&self, body: Value) -> Tenant {
        let res = self.post("/v1/tenants", &body).await;
        res.expect(201);
        res.tenant()
    }

    pub async fn create_named(&self, name: &str) -> Tenant {
        self.create_tenant(json!({ "name": name })).await
    }

    /// Every event of the project, read page by page from the start.
    pub async fn all_events(&self) -> Vec<Value> {
        let mut events = Vec::new();
        let mut after = "0".to_owned();
        loop {
            let page = self.get(&format!("/v1/events?after={after}&limit=1000")).await;
            page.expect(200);
            let page = page.json();
            events.extend(page["data"].as_array().unwrap().iter().cloned());
            after = page["next_cursor"].as_str().unwrap().to_owned();
            if !page["has_more"].as_bool().unwrap() {
                return events;
            }
        }
    }

    /// A second project in the same server, with its own all-scopes key.
    pub async fn other_project(&self) -> (ProjectId, String) {
        let (project, _, key) = self.store.create_project("Other project", &test_actor()).await.unwrap();
        (project.id, key.expose())
    }

    /// Stops the server, checks every response against the OpenAPI document, and drops the
    /// database.
    pub async fn finish(mut self) {
        let spec: Value = self
            .client
            .get(format!("{}/openapi.json", self.address))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let seen = std::mem::take(&mut *self.seen.lock().unwrap());
        crate::openapi::assert_documented(&spec, &seen);
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.expect("server task").expect("server stopped cleanly");
        }
        self.store.close().await;
        if let Some(db) = self.db.take() {
            db.drop_database().await;
        }
    }
}
