//! Metrics: what the server counts and measures, and `GET /metrics` in the Prometheus text
//! format.
//!
//! Everything is emitted through the `metrics` facade into one process-wide Prometheus recorder
//! ([`install`], idempotent), which the `/metrics` route renders; the exporter has no listener of
//! its own. The library (`carcosa`) emits through the same facade, so a process that runs both
//! (the tests, an app embedding the server) shows both.
//!
//! | metric | kind | labels |
//! |---|---|---|
//! | `carcosa_http_requests_total` | counter | `route` (the route template, or `unmatched`), `method`, `status` |
//! | `carcosa_http_request_duration_seconds` | histogram | `route` |
//! | `carcosa_api_requests_total` | counter | `project`, `key` (the key id, never the secret) |
//! | `carcosa_events_total` | counter | `project`, `type` |
//! | `carcosa_tenants` | gauge | `project`, `status` |
//! | `carcosa_webhook_attempts_total` | counter | `outcome`: `success`, `error_status`, `unreachable` |
//! | `carcosa_webhook_delivery_seconds` | histogram | — (event commit to the 2xx answer) |
//! | `carcosa_webhook_queue_depth` | gauge | — (deliveries waiting) |
//! | `carcosa_webhook_endpoints` | gauge | `project`, `state`: `enabled`, `failing`, `disabled`, `auto_disabled` |
//!
//! The gauges are counted in the store when `/metrics` is scraped ([`gauges`]), not per request.
//! Labels only take bounded values: route templates, never raw paths; project and key ids.
//! `docs/observability.md` is the reader's version of this table.

mod gauges;
mod http;
mod scrape;

use std::sync::OnceLock;
use std::time::Duration;

use carcosa_core::ProjectId;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::sync::watch;

pub(crate) use gauges::Gauges;
pub use http::track;
pub(crate) use scrape::render;

use crate::store::Written;

/// Upper bounds of the HTTP latency buckets, in seconds: fine below the 200 ms alert line.
const HTTP_BUCKETS: &[f64] = &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1.0, 2.5, 5.0, 10.0];
/// Upper bounds of the delivery latency buckets: milliseconds for the first attempt, hours for
/// deliveries that waited for retries.
const DELIVERY_BUCKETS: &[f64] =
    &[0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0, 60.0, 300.0, 1800.0, 7200.0, 36000.0, 86400.0];
/// Upper bounds of the library's sync-duration buckets.
const SYNC_BUCKETS: &[f64] = &[0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0];
/// How often buffered histogram samples are folded in when nobody scrapes.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process-wide Prometheus recorder, once; later calls return the same handle.
/// `None` when another recorder was installed first (an app that embeds the server with its own
/// exporter): the server's metrics then go to that recorder, and `/metrics` answers 404.
pub fn install() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            // Histograms, never summaries: buckets add up across replicas.
            let builder = PrometheusBuilder::new()
                .set_buckets(HTTP_BUCKETS)
                .and_then(|b| b.set_buckets_for_metric(full("carcosa_sync_duration_seconds"), SYNC_BUCKETS))
                .and_then(|b| {
                    b.set_buckets_for_metric(full("carcosa_webhook_delivery_seconds"), DELIVERY_BUCKETS)
                })
                .expect("the bucket lists are not empty");
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            match metrics::set_global_recorder(recorder) {
                Ok(()) => {
                    describe();
                    Some(handle)
                }
                Err(_) => {
                    tracing::warn!("another metrics recorder is installed; /metrics is off");
                    None
                }
            }
        })
        .as_ref()
}

fn full(name: &str) -> Matcher {
    Matcher::Full(name.to_owned())
}

/// The installed recorder's handle, if [`install`] succeeded.
pub(crate) fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE.get().and_then(Option::as_ref)
}

/// Folds buffered histogram samples into their buckets every few seconds until `stop`, so
/// memory stays bounded between scrapes.
pub(crate) async fn upkeep(mut stop: watch::Receiver<bool>) {
    let Some(handle) = handle() else { return };
    loop {
        tokio::select! {
            () = tokio::time::sleep(UPKEEP_EVERY) => handle.run_upkeep(),
            _ = stop.changed() => return,
        }
    }
}

/// Help texts for `# HELP` lines.
fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        "carcosa_http_requests_total",
        "HTTP requests answered, by route template, method and status"
    );
    describe_histogram!(
        "carcosa_http_request_duration_seconds",
        metrics::Unit::Seconds,
        "Time to answer an HTTP request, by route template"
    );
    describe_counter!("carcosa_api_requests_total", "Authenticated API requests, by project and API key id");
    describe_counter!("carcosa_events_total", "Tenant change events written, by project and type");
    describe_gauge!("carcosa_tenants", "Tenants, by project and status (counted at scrape time)");
    describe_counter!("carcosa_webhook_attempts_total", "Webhook delivery attempts, by outcome");
    describe_histogram!(
        "carcosa_webhook_delivery_seconds",
        metrics::Unit::Seconds,
        "Time from an event's commit to its receiver's 2xx answer, retries included"
    );
    describe_gauge!("carcosa_webhook_queue_depth", "Webhook deliveries waiting for an attempt");
    describe_gauge!("carcosa_webhook_endpoints", "Webhook endpoints, by project and state");
}

/// Counts the event of a tenant write and logs it (no metadata, only ids): the one place every
/// tenant change passes through, whoever made it.
pub(crate) fn tenant_written(project: ProjectId, written: &Written) {
    let Some(event) = &written.event else { return };
    let kind = event.event_type.as_str();
    metrics::counter!("carcosa_events_total", "project" => project.to_string(), "type" => kind).increment(1);
    let tenant = &written.tenant;
    match kind {
        "tenant.created" => {
            tracing::info!(project = %project, tenant_id = %tenant.id, slug = %tenant.slug, seq = event.seq, "tenant created")
        }
        "tenant.deleted" => {
            tracing::info!(project = %project, tenant_id = %tenant.id, version = tenant.version, seq = event.seq, "tenant deleted")
        }
        _ => {
            tracing::info!(project = %project, tenant_id = %tenant.id, version = tenant.version, seq = event.seq, "tenant updated")
        }
    }
}

/// Counts the events of a bulk creation (an import, a benchmark's seed) and logs it once.
pub(crate) fn tenants_imported(project: ProjectId, count: usize) {
    if count == 0 {
        return;
    }
    metrics::counter!("carcosa_events_total", "project" => project.to_string(), "type" => "tenant.created")
        .increment(count as u64);
    tracing::info!(project = %project, count, "tenants created in bulk");
}
