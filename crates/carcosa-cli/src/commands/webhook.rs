//! `carcosa webhook listen`: a local receiver that verifies and prints webhooks, for development.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use carcosa_core::webhook::{WebhookSecret, verify_delivery};
use clap::Subcommand;
use tokio::sync::mpsc;

/// Webhook subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Receive webhooks on this machine and print one line per event (type, tenant, version)
    /// on stdout, after checking the signature. Answers 2xx to valid deliveries, 401 otherwise.
    Listen {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:9000")]
        listen: SocketAddr,
        /// The endpoint's signing secret (`whsec_…`); without it, signatures are not checked.
        #[arg(long, env = "CARCOSA_WEBHOOK_SECRET")]
        secret: Option<String>,
        /// Exit after this many valid deliveries.
        #[arg(long)]
        count: Option<u64>,
    },
}

struct Listener {
    secret: Option<WebhookSecret>,
    lines: mpsc::UnboundedSender<String>,
}

/// Runs a webhook subcommand.
pub async fn run(command: Command) -> anyhow::Result<()> {
    let Command::Listen { listen, secret, count } = command;
    let secret = secret.as_deref().map(WebhookSecret::parse).transpose().context("--secret")?;
    let (lines, mut printed) = mpsc::unbounded_channel();
    let verified = secret.is_some();
    let state = Arc::new(Listener { secret, lines });
    let app = axum::Router::new().fallback(axum::routing::post(receive)).with_state(state);
    let listener =
        tokio::net::TcpListener::bind(listen).await.with_context(|| format!("cannot listen on {listen}"))?;
    eprintln!(
        "listening for webhooks on http://{}/ ({})",
        listener.local_addr()?,
        if verified { "signatures checked" } else { "signatures NOT checked: pass --secret" }
    );
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let mut seen = 0;
    while let Some(line) = printed.recv().await {
        super::print_line(&line)?;
        seen += 1;
        if count.is_some_and(|n| seen >= n) {
            break;
        }
    }
    server.abort();
    Ok(())
}

async fn receive(State(state): State<Arc<Listener>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let id = header("webhook-id");
    if let Some(secret) = &state.secret {
        let now = chrono::Utc::now().timestamp();
        if let Err(err) = verify_delivery(std::slice::from_ref(secret), header, &body, now) {
            eprintln!("refused a delivery ({id}): {err}");
            return StatusCode::UNAUTHORIZED;
        }
    }
    let Ok(event) = serde_json::from_slice::<serde_json::Value>(&body) else {
        eprintln!("refused a delivery ({id}): the body is not JSON");
        return StatusCode::BAD_REQUEST;
    };
    let text = |v: &serde_json::Value| v.as_str().unwrap_or("-").to_owned();
    let tenant = &event["tenant"];
    let line = match event["type"].as_str() {
        Some("webhook.test") => format!("webhook.test {id}"),
        _ => format!(
            "{} {} {} v{} (seq {})",
            text(&event["type"]),
            text(&tenant["id"]),
            text(&tenant["slug"]),
            tenant["version"],
            event["seq"]
        ),
    };
    let _ = state.lines.send(line);
    StatusCode::NO_CONTENT
}
