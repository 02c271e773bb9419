//! `carcosa bench webhooks`: commit → received latency of webhook deliveries at a steady rate
//! of tenant changes.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use carcosa_server::Config;
use carcosa_server::config::{DatabaseUrl, SecretString};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;
use tokio::sync::{Semaphore, oneshot};

use super::stats::percentile_sorted;

/// Each delivery's event time and arrival time.
type Arrivals = Arc<Mutex<Vec<(DateTime<Utc>, DateTime<Utc>)>>>;

/// The numbers of one run.
#[derive(Debug, Serialize)]
pub(super) struct WebhookResult {
    backend: &'static str,
    target_rate: u32,
    achieved_rate: f64,
    events: usize,
    p50_ms: f64,
    p90_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    create_p50_ms: f64,
    create_p99_ms: f64,
}

pub(super) async fn webhook_latency(
    backend: &'static str,
    admin: Option<&str>,
    rate: u32,
    warmup: u64,
    seconds: u64,
) -> anyhow::Result<WebhookResult> {
    eprintln!("webhooks on {backend}: {rate} changes/s, {warmup} s warm-up, {seconds} s measured");
    let db = super::scratch(backend, admin).await?;
    let config = Config {
        database_url: DatabaseUrl(db.url.clone()),
        master_key: Some(SecretString("Y2FyY29zYS1iZW5jaG1hcmstbWFzdGVyLWtleS0zMmI=".into())),
        webhook_allow_private: true,
        database_max_connections: 20,
        // The benchmark drives one key far past the default rate limit on purpose.
        rate_limit_per_second: 0,
        ..Config::default()
    };
    let store = carcosa_server::open_store(&config).await?;
    let (_, _, key) = store.create_project("bench", &crate::commands::audit_context()).await?;
    let key = key.expose();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(carcosa_server::serve_with_store(store, config, listener, async move {
        let _ = stopped.await;
    }));

    let client = reqwest::Client::builder().pool_max_idle_per_host(256).build()?;
    while client.get(format!("{base}/healthz")).send().await.is_err() {
        if server.is_finished() {
            server.await??;
            anyhow::bail!("the server stopped before it was ready");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let received: Arrivals = Arc::default();
    let hook = start_receiver(received.clone()).await?;
    let endpoint = client
        .post(format!("{base}/v1/webhook-endpoints"))
        .bearer_auth(&key)
        .json(&json!({"url": hook}))
        .send()
        .await?;
    anyhow::ensure!(endpoint.status() == 201, "creating the endpoint failed: {}", endpoint.text().await?);

    // Steady arrivals: one create every 1/rate s, at most 256 in flight.
    let interval = Duration::from_secs_f64(1.0 / f64::from(rate.max(1)));
    let total = Duration::from_secs(warmup + seconds);
    let in_flight = Arc::new(Semaphore::new(256));
    let create_times: Arc<Mutex<Vec<f64>>> = Arc::default();
    let started = Instant::now();
    let measure_from = Utc::now() + chrono::TimeDelta::seconds(i64::try_from(warmup)?);
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut sent = 0_u64;
    let mut tasks = tokio::task::JoinSet::new();
    while started.elapsed() < total {
        ticker.tick().await;
        let permit = in_flight.clone().acquire_owned().await?;
        let (client, base, key, times) = (client.clone(), base.clone(), key.clone(), create_times.clone());
        sent += 1;
        let n = sent;
        tasks.spawn(async move {
            let t = Instant::now();
            let ok = client
                .post(format!("{base}/v1/tenants"))
                .bearer_auth(&key)
                .json(&json!({"name": format!("Bench {n}")}))
                .send()
                .await
                .is_ok_and(|r| r.status() == 201);
            if ok {
                times.lock().unwrap().push(t.elapsed().as_secs_f64() * 1000.0);
            }
            drop(permit);
        });
    }
    while tasks.join_next().await.is_some() {}
    let elapsed = started.elapsed();
    // Let the last deliveries arrive.
    let deadline = Instant::now() + Duration::from_secs(30);
    while received.lock().unwrap().len() < usize::try_from(sent)? && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = stop.send(());
    server.await??;
    if let Some((admin, name)) = &db.drop_pg {
        super::sqlx_free::drop_database(admin, name)?;
    }

    let mut latencies: Vec<f64> = received
        .lock()
        .unwrap()
        .iter()
        .filter(|(occurred, _)| *occurred >= measure_from)
        .map(|(occurred, at)| (*at - *occurred).num_microseconds().unwrap_or(i64::MAX) as f64 / 1000.0)
        .collect();
    latencies.sort_by(f64::total_cmp);
    let mut creates = create_times.lock().unwrap().clone();
    creates.sort_by(f64::total_cmp);
    Ok(WebhookResult {
        backend,
        target_rate: rate,
        achieved_rate: sent as f64 / elapsed.as_secs_f64(),
        events: latencies.len(),
        p50_ms: percentile(&latencies, 50.0),
        p90_ms: percentile(&latencies, 90.0),
        p99_ms: percentile(&latencies, 99.0),
        max_ms: latencies.last().copied().unwrap_or(f64::NAN),
        create_p50_ms: percentile(&creates, 50.0),
        create_p99_ms: percentile(&creates, 99.0),
    })
}

/// A receiver that records, for each delivery, the event's `occurred_at` and the arrival time.
async fn start_receiver(received: Arrivals) -> anyhow::Result<String> {
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: axum::body::Bytes| {
            let received = received.clone();
            async move {
                let at = Utc::now();
                let occurred = serde_json::from_slice::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|e| {
                        e["occurred_at"].as_str().and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                    })
                    .map(|t| t.with_timezone(&Utc));
                if let Some(occurred) = occurred {
                    received.lock().unwrap().push((occurred, at));
                }
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hook", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(url)
}

/// The `p`-th percentile of sorted milliseconds (NaN for none).
fn percentile(sorted: &[f64], p: f64) -> f64 {
    percentile_sorted(sorted, p).unwrap_or(f64::NAN)
}

pub(super) fn print_table(results: &[WebhookResult]) -> anyhow::Result<()> {
    super::super::print_line(
        "| backend | target/s | achieved/s | events | p50 ms | p90 ms | p99 ms | max ms | create p50 ms | create p99 ms |",
    )?;
    super::super::print_line("|---|---|---|---|---|---|---|---|---|---|")?;
    for r in results {
        super::super::print_line(&format!(
            "| {} | {} | {:.0} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} |",
            r.backend,
            r.target_rate,
            r.achieved_rate,
            r.events,
            r.p50_ms,
            r.p90_ms,
            r.p99_ms,
            r.max_ms,
            r.create_p50_ms,
            r.create_p99_ms
        ))?;
    }
    Ok(())
}
