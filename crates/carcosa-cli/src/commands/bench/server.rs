//! A Carcosa server for one run: a scratch database, a project with its key, seeded tenants,
//! the server on a loopback port of this process, and a webhook receiver that answers 204.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;

use carcosa_core::{ProjectId, TenantId};
use carcosa_server::Config;
use carcosa_server::config::{DatabaseUrl, SecretString};
use carcosa_server::store::{Store, WriteRules};
use tokio::sync::oneshot;

use super::Scratch;

/// A running server and what the scenarios need to address it.
pub(super) struct Running {
    pub backend: &'static str,
    pub addr: SocketAddr,
    pub key: String,
    pub store: Store,
    pub project: ProjectId,
    pub rules: WriteRules,
    /// The seeded tenants, in creation order.
    pub ids: Vec<TenantId>,
    /// The database URL (the raw-insert baseline writes into the same database).
    pub url: String,
    pub max_connections: u32,
    db: Scratch,
    stop: oneshot::Sender<()>,
    server: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Running {
    /// Opens a scratch database (`admin` = a PostgreSQL admin URL, else SQLite), creates a
    /// project, seeds `tenants` tenants and starts the server.
    pub async fn start(backend: &'static str, admin: Option<&str>, tenants: u64) -> anyhow::Result<Self> {
        let db = super::scratch(backend, admin).await?;
        let config = Config {
            database_url: DatabaseUrl(db.url.clone()),
            master_key: Some(SecretString("Y2FyY29zYS1iZW5jaG1hcmstbWFzdGVyLWtleS0zMmI=".into())),
            webhook_allow_private: true,
            // The benchmark drives one key far past the default rate limit on purpose.
            rate_limit_per_second: 0,
            ..Config::default()
        };
        let store = carcosa_server::open_store(&config).await?;
        let (project, _, key) = store.create_project("bench", &crate::commands::audit_context()).await?;
        let rules = WriteRules { reserved: config.reserved(), max_metadata_bytes: config.max_metadata_bytes };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let max_connections = config.database_max_connections;
        let url = db.url.clone();
        let server =
            tokio::spawn(carcosa_server::serve_with_store(store.clone(), config, listener, async move {
                let _ = stopped.await;
            }));
        let mut running = Self {
            backend,
            addr,
            key: key.expose().to_owned(),
            store,
            project: project.id,
            rules,
            ids: Vec::new(),
            url,
            max_connections,
            db,
            stop,
            server,
        };
        running.seed_to(tenants).await?;
        Ok(running)
    }

    /// Seeds tenants until there are `total`, 1,000 per transaction (each with its event).
    pub async fn seed_to(&mut self, total: u64) -> anyhow::Result<()> {
        let have = self.ids.len() as u64;
        if total <= have {
            return Ok(());
        }
        let started = std::time::Instant::now();
        let ids = super::sync::seed(&self.store, self.project, have, total - have, &self.rules).await?;
        self.ids.extend(ids);
        eprintln!(
            "  {}: seeded {} tenants ({total} in all) in {:.1} s",
            self.backend,
            total - have,
            started.elapsed().as_secs_f64()
        );
        Ok(())
    }

    /// Registers a webhook endpoint on a local receiver, so every tenant change also writes a
    /// delivery (as `POST /v1/tenants` does in production); returns its id.
    ///
    /// Register it only after seeding: tenants seeded while it exists get deliveries too, and
    /// the dispatcher working through them would load the scenarios that follow.
    pub async fn add_endpoint(&self) -> anyhow::Result<String> {
        let hook = receiver().await?;
        let client = reqwest::Client::new();
        let response = client
            .post(format!("http://{}/v1/webhook-endpoints", self.addr))
            .bearer_auth(&self.key)
            .json(&serde_json::json!({"url": hook}))
            .send()
            .await?;
        anyhow::ensure!(response.status() == 201, "creating the endpoint failed: {}", response.text().await?);
        let created: serde_json::Value = response.json().await?;
        created["id"].as_str().map(str::to_owned).context("the endpoint has no id")
    }

    /// Deletes an endpoint [`Running::add_endpoint`] registered; its pending deliveries are
    /// not attempted any more.
    pub async fn remove_endpoint(&self, id: &str) -> anyhow::Result<()> {
        let response = reqwest::Client::new()
            .delete(format!("http://{}/v1/webhook-endpoints/{id}", self.addr))
            .bearer_auth(&self.key)
            .send()
            .await?;
        anyhow::ensure!(
            response.status().is_success(),
            "deleting the endpoint failed: {}",
            response.status()
        );
        Ok(())
    }

    /// Stops the server and removes the scratch database.
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        match tokio::time::timeout(Duration::from_secs(30), self.server).await {
            Ok(joined) => joined??,
            Err(_) => eprintln!("  {}: the server did not stop within 30 s", self.backend),
        }
        self.db.remove()
    }
}

/// A webhook receiver that accepts everything.
async fn receiver() -> anyhow::Result<String> {
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(|| async { axum::http::StatusCode::NO_CONTENT }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hook", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(url)
}
