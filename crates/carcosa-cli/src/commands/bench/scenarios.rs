//! The HTTP scenarios and their baselines, on one running server.

use std::sync::Arc;

use axum::body::Bytes;
use carcosa_core::cursor::PageCursor;
use serde::Serialize;

use super::baseline::{RawInsert, RawPool, hello_server};
use super::load::{self, HttpOp, Load, MakeRequest, mix};
use super::memory::{Peak, Watch};
use super::server::Running;
use super::stats::{Summary, ratio};

/// One scenario's numbers.
#[derive(Debug, Clone, Serialize)]
pub(super) struct ScenarioResult {
    pub backend: &'static str,
    pub scenario: &'static str,
    /// Tenants on the server when the scenario ran.
    pub tenants: u64,
    pub concurrency: usize,
    #[serde(flatten)]
    pub summary: Summary,
    /// The baseline this scenario's throughput is compared with.
    pub baseline: Option<&'static str>,
    /// Throughput as a fraction of the baseline's, same run.
    pub ratio: Option<f64>,
    pub peak_rss: Peak,
    /// Growth runs: p50 latency as a multiple of the same scenario's at the smallest size.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p50_vs_smallest: Option<f64>,
    /// Growth runs: the same for p99.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p99_vs_smallest: Option<f64>,
    /// The first failure, when there were any.
    pub first_error: Option<String>,
}

/// The names of the scenarios, as printed and in the JSON.
pub(super) const HELLO: &str = "baseline: bare axum GET /hello";
pub(super) const RAW_INSERT: &str = "baseline: raw INSERT + COMMIT";
pub(super) const GET_TENANT: &str = "GET /v1/tenants/{id}";
pub(super) const LIST_PAGE: &str = "GET /v1/tenants?limit=100 (random cursor)";
pub(super) const EVENTS_PAGE: &str = "GET /v1/events?limit=100 (random cursor)";
pub(super) const CREATE_TENANT: &str = "POST /v1/tenants (+ event, delivery)";

/// The two baselines, measured beside the scenarios.
pub(super) async fn baselines(running: &Running, load: Load) -> anyhow::Result<Vec<ScenarioResult>> {
    let (addr, stop_hello) = hello_server().await?;
    let make: MakeRequest = Arc::new(|_, _| load::get("/hello", None));
    let hello = http(running, HELLO, addr, &make, load).await?;
    drop(stop_hello);

    let pool = RawPool::open(&running.url, running.max_connections).await?;
    let ops = (0..load.concurrency as u64).map(|worker| RawInsert { pool: pool.clone(), worker }).collect();
    let watch = Watch::start();
    let (summary, first_error) = load::drive(ops, load).await?;
    let raw = result(running, RAW_INSERT, load, summary, watch.finish(), first_error);
    pool.close().await?;
    Ok(vec![hello, raw])
}

/// Reads: one tenant, a page of tenants, a page of the feed, each at a random place.
pub(super) async fn reads(running: &Running, load: Load) -> anyhow::Result<Vec<ScenarioResult>> {
    let ids = Arc::new(running.ids.clone());
    let key: Arc<str> = running.key.as_str().into();
    anyhow::ensure!(!ids.is_empty(), "no tenants to read");
    let n = ids.len() as u64;
    let pick = move |worker: u64, i: u64, span: u64| mix((worker << 32) | i) % span.max(1);

    let get: MakeRequest = {
        let (ids, key) = (ids.clone(), key.clone());
        Arc::new(move |w, i| {
            let id = ids[usize::try_from(pick(w, i, n)).unwrap_or(0)];
            load::get(&format!("/v1/tenants/{id}"), Some(&key))
        })
    };
    let list: MakeRequest = {
        let (ids, key) = (ids.clone(), key.clone());
        Arc::new(move |w, i| {
            let after = ids[usize::try_from(pick(w, i, n.saturating_sub(100))).unwrap_or(0)];
            let cursor = PageCursor { after }.encode();
            load::get(&format!("/v1/tenants?limit=100&cursor={cursor}"), Some(&key))
        })
    };
    let events: MakeRequest = {
        let key = key.clone();
        Arc::new(move |w, i| {
            let after = pick(w, i, n.saturating_sub(100));
            load::get(&format!("/v1/events?limit=100&after={after}"), Some(&key))
        })
    };
    let mut results = Vec::new();
    for (name, make) in [(GET_TENANT, get), (LIST_PAGE, list), (EVENTS_PAGE, events)] {
        results.push(http(running, name, running.addr, &make, load).await?);
    }
    Ok(results)
}

/// Tenant creation: a tenant, its event and a delivery for the one endpoint, committed.
pub(super) async fn create(running: &Running, load: Load, run: u64) -> anyhow::Result<ScenarioResult> {
    let key: Arc<str> = running.key.as_str().into();
    let make: MakeRequest = Arc::new(move |w, i| {
        let body = format!(r#"{{"name":"Load {run} {w} {i}"}}"#);
        load::request("POST", "/v1/tenants", Some(&key), Bytes::from(body))
    });
    http(running, CREATE_TENANT, running.addr, &make, load).await
}

/// Adds the ratios to the baselines (reads to the bare handler, writes to the raw insert).
pub(super) fn compare(results: &mut [ScenarioResult]) {
    let rate = |name: &str, results: &[ScenarioResult]| {
        results
            .iter()
            .find(|r| r.scenario == name && r.backend == results[0].backend)
            .map(|r| r.summary.per_second)
    };
    let hello = rate(HELLO, results);
    let raw = rate(RAW_INSERT, results);
    for result in results.iter_mut() {
        let baseline = match result.scenario {
            GET_TENANT | LIST_PAGE | EVENTS_PAGE => Some((HELLO, hello)),
            CREATE_TENANT => Some((RAW_INSERT, raw)),
            _ => None,
        };
        if let Some((name, Some(per_second))) = baseline {
            result.baseline = Some(name);
            result.ratio = ratio(result.summary.per_second, per_second);
        }
    }
}

async fn http(
    running: &Running,
    scenario: &'static str,
    addr: std::net::SocketAddr,
    make: &MakeRequest,
    load: Load,
) -> anyhow::Result<ScenarioResult> {
    eprintln!("  {}: {scenario}", running.backend);
    let ops = HttpOp::connect_all(addr, load.concurrency, make).await?;
    let watch = Watch::start();
    let (summary, first_error) = load::drive(ops, load).await?;
    Ok(result(running, scenario, load, summary, watch.finish(), first_error))
}

fn result(
    running: &Running,
    scenario: &'static str,
    load: Load,
    summary: Summary,
    peak_rss: Peak,
    first_error: Option<String>,
) -> ScenarioResult {
    ScenarioResult {
        backend: running.backend,
        scenario,
        tenants: running.ids.len() as u64,
        concurrency: load.concurrency,
        summary,
        baseline: None,
        ratio: None,
        peak_rss,
        p50_vs_smallest: None,
        p99_vs_smallest: None,
        first_error,
    }
}
