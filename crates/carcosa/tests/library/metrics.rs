//! The sync's metrics, read through a recorder of the test's own (the app installs its own, say
//! a Prometheus exporter; the library only emits through the `metrics` facade).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use carcosa::Client;
use carcosa::local::{DeletionPolicy, LocalStore, TableMapping};
use carcosa::sync::Sync;
use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};

use crate::client::named;
use crate::support::server;

/// Counters by name and labels (`name{a=b,c=d}`); gauges and histograms are accepted and dropped.
#[derive(Default)]
struct Counters(Mutex<HashMap<String, Arc<AtomicU64>>>);

struct Count(Arc<AtomicU64>);

impl metrics::CounterFn for Count {
    fn increment(&self, value: u64) {
        self.0.fetch_add(value, Ordering::Relaxed);
    }
    fn absolute(&self, value: u64) {
        self.0.fetch_max(value, Ordering::Relaxed);
    }
}

impl Recorder for &'static Counters {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        let cell = self.0.lock().unwrap().entry(render(key)).or_default().clone();
        Counter::from_arc(Arc::new(Count(cell)))
    }
    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::noop()
    }
    fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::noop()
    }
}

fn render(key: &Key) -> String {
    let labels: Vec<String> = key.labels().map(|l| format!("{}={}", l.key(), l.value())).collect();
    format!("{}{{{}}}", key.name(), labels.join(","))
}

fn counters() -> &'static Counters {
    static COUNTERS: OnceLock<&'static Counters> = OnceLock::new();
    COUNTERS.get_or_init(|| {
        let counters: &'static Counters = Box::leak(Box::default());
        metrics::set_global_recorder(counters).expect("one recorder for the test binary");
        counters
    })
}

fn read(name: &str) -> u64 {
    counters().0.lock().unwrap().get(name).map_or(0, |c| c.load(Ordering::Relaxed))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_and_changes_are_counted() {
    counters();
    let server = server().await;
    let client = Client::new(&server.url, &server.key).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("app.db").display());
    let store = LocalStore::connect(&url, TableMapping::default(), DeletionPolicy::Soft).await.unwrap();
    store.migrate().await.unwrap();
    let sync = Sync::new(client.clone(), store);
    // Other tests in this binary may count too: compare increments, each at least ours.
    let full_before = read("carcosa_sync_runs_total{kind=full,outcome=ok}");
    let created_before = read("carcosa_sync_tenants_total{change=created}");
    let failed_before = read("carcosa_sync_runs_total{kind=incremental,outcome=error}");
    for name in ["One", "Two", "Three"] {
        client.create_tenant(&named(name)).await.unwrap();
    }
    sync.full().await.unwrap();
    assert!(read("carcosa_sync_runs_total{kind=full,outcome=ok}") > full_before);
    assert!(read("carcosa_sync_tenants_total{change=created}") >= created_before + 3);

    let broken = Sync::new(Client::new("http://127.0.0.1:9", &server.key).unwrap(), sync.store().clone());
    broken.incremental().await.unwrap_err();
    assert!(read("carcosa_sync_runs_total{kind=incremental,outcome=error}") > failed_before);
    sync.store().close().await;
}
