//! The webhook receiver: an axum [`Router`] that takes Carcosa's deliveries, checks their
//! Standard Webhooks signature over the raw body, applies the event to the local table, and only
//! then answers 2xx.
//!
//! * A bad or missing signature, or a timestamp more than five minutes off, gets 401; a body that
//!   is not an event gets 400; a local failure gets 500, so Carcosa retries.
//! * Test deliveries (`webhook.test`) are acknowledged and ignored.
//! * An event whose `seq` is beyond the stored cursor + 1 shows that earlier events have not
//!   been applied through the feed yet: an incremental sync is started in the background. The
//!   cursor itself only moves through the feed, so a lost webhook can delay a change, never lose
//!   it.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use carcosa_core::Event;
use carcosa_core::webhook::{WebhookSecret, verify_delivery};

use crate::sync::Sync;

struct Receiver {
    sync: Arc<Sync>,
    secrets: Vec<WebhookSecret>,
}

/// A router answering `POST /` with the receiver; nest it at the path the endpoint's URL names
/// (`Router::new().nest("/carcosa/webhooks", webhook_router(sync, secrets))` for a URL ending in
/// `/carcosa/webhooks`, without a trailing slash). Pass every secret
/// that may sign (the new and the old one during a rotation).
pub fn webhook_router(sync: Arc<Sync>, secrets: Vec<WebhookSecret>) -> Router {
    Router::new().route("/", axum::routing::post(receive)).with_state(Arc::new(Receiver { sync, secrets }))
}

async fn receive(
    State(receiver): State<Arc<Receiver>>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, &'static str) {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let now = chrono::Utc::now().timestamp();
    if let Err(err) = verify_delivery(&receiver.secrets, header, &body, now) {
        tracing::warn!(error = %err, webhook_id = header("webhook-id"), "refused a webhook");
        metrics::counter!("carcosa_sync_webhooks_total", "outcome" => "refused").increment(1);
        return (StatusCode::UNAUTHORIZED, "invalid signature");
    }
    let kind: Option<String> = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["type"].as_str().map(str::to_owned));
    if kind.as_deref() == Some(carcosa_core::endpoint::TEST_EVENT_TYPE) {
        return (StatusCode::NO_CONTENT, "");
    }
    let Ok(event) = serde_json::from_slice::<Event>(&body) else {
        metrics::counter!("carcosa_sync_webhooks_total", "outcome" => "malformed").increment(1);
        return (StatusCode::BAD_REQUEST, "not a Carcosa event");
    };
    match receiver.sync.apply_event(&event).await {
        Ok(report) => {
            metrics::counter!("carcosa_sync_webhooks_total", "outcome" => "applied").increment(1);
            if event.seq > report.cursor.seq() + 1 {
                // Earlier events are not in the table yet: catch up through the feed.
                let sync = receiver.sync.clone();
                tokio::spawn(async move {
                    if let Err(err) = sync.incremental().await {
                        tracing::warn!(error = %err, "catch-up after a webhook failed; the next run will retry");
                    }
                });
            }
            (StatusCode::NO_CONTENT, "")
        }
        Err(err) => {
            tracing::error!(error = %err, event_id = %event.id, "cannot apply a webhook event; Carcosa will retry it");
            metrics::counter!("carcosa_sync_webhooks_total", "outcome" => "failed").increment(1);
            (StatusCode::INTERNAL_SERVER_ERROR, "cannot apply the event")
        }
    }
}
