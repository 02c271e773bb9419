//! The gauges counted in the store (`carcosa_tenants`, `carcosa_webhook_endpoints`,
//! `carcosa_webhook_queue_depth`): refreshed when `/metrics` is scraped, at most every
//! [`MIN_REFRESH`], so scrapes (however many) cost the database a few grouped counts now and
//! then and requests cost it nothing.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

use crate::store::Store;

/// The shortest time between two refreshes; scrapes in between show the last counts.
const MIN_REFRESH: Duration = Duration::from_secs(5);
/// How long a refresh may take before the scrape goes on with the last counts.
const REFRESH_TIMEOUT: Duration = Duration::from_secs(5);

/// When the gauges were last refreshed, and which label sets they set (a set that disappears,
/// say the last suspended tenant of a project, is set to 0 rather than left at its old value).
#[derive(Debug, Default)]
pub(crate) struct Gauges(Mutex<Refreshed>);

#[derive(Debug, Default)]
struct Refreshed {
    at: Option<Instant>,
    tenants: HashSet<(String, String)>,
    endpoints: HashSet<(String, String)>,
}

impl Gauges {
    /// Counts again from `store`, unless the last count is recent. A failing store leaves the
    /// last values in place (and is logged).
    pub(crate) async fn refresh(&self, store: &Store) {
        let mut last = self.0.lock().await;
        if last.at.is_some_and(|at| at.elapsed() < MIN_REFRESH) {
            return;
        }
        let counts = match tokio::time::timeout(REFRESH_TIMEOUT, store.gauges()).await {
            Ok(Ok(counts)) => counts,
            Ok(Err(err)) => {
                tracing::warn!(error = %err, "cannot count tenants and deliveries for /metrics");
                return;
            }
            Err(_) => {
                tracing::warn!("counting tenants and deliveries for /metrics timed out");
                return;
            }
        };
        last.at = Some(Instant::now());
        last.tenants = publish("carcosa_tenants", "status", counts.tenants, &last.tenants);
        last.endpoints = publish("carcosa_webhook_endpoints", "state", counts.endpoints, &last.endpoints);
        #[expect(clippy::cast_precision_loss, reason = "a gauge; counts stay far below 2^53")]
        metrics::gauge!("carcosa_webhook_queue_depth").set(counts.queue_depth as f64);
    }
}

/// Sets `name{project, <label>}` for each count, and 0 for the label sets `before` had that the
/// counts no longer name; returns the label sets now set.
fn publish(
    name: &'static str,
    label: &'static str,
    counts: Vec<(String, String, i64)>,
    before: &HashSet<(String, String)>,
) -> HashSet<(String, String)> {
    let mut now = HashSet::with_capacity(counts.len());
    for (project, value, count) in counts {
        #[expect(clippy::cast_precision_loss, reason = "a gauge; counts stay far below 2^53")]
        metrics::gauge!(name, "project" => project.clone(), label => value.clone()).set(count as f64);
        now.insert((project, value));
    }
    for (project, value) in before.difference(&now) {
        metrics::gauge!(name, "project" => project.clone(), label => value.clone()).set(0.0);
    }
    now
}
