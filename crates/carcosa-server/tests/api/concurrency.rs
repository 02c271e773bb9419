//! The feed stays gap-free and ordered while many writers run at once.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, spawn_with};
use crate::on_both_backends;

const WRITERS: usize = 16;
const WRITES_EACH: usize = 200;

/// Each writer creates a tenant, then updates it again and again (and deletes it at the end):
/// 200 writes, all of them events.
async fn write_many(app: Arc<TestApp>, writer: usize) {
    let tenant = app.create_named(&format!("Writer {writer}")).await;
    let path = format!("/v1/tenants/{}", tenant.id);
    for i in 1..WRITES_EACH - 1 {
        app.patch(&path, &json!({"metadata": {"i": i}})).await.expect(200);
    }
    app.delete(&path).await.expect(200);
}

/// Polls the feed until it has read `total` events, checking as it goes that it never sees a
/// gap: each page starts right after the cursor.
async fn follow_feed(app: Arc<TestApp>, total: usize, done: Arc<AtomicBool>) -> Vec<Value> {
    let mut events: Vec<Value> = Vec::new();
    let mut after = 0_i64;
    while events.len() < total {
        let page = app.get(&format!("/v1/events?after={after}&limit=250")).await.json();
        for event in page["data"].as_array().unwrap() {
            let seq = event["seq"].as_i64().unwrap();
            assert_eq!(seq, after + 1, "the feed skipped or repeated an event");
            after = seq;
            events.push(event.clone());
        }
        if page["data"].as_array().unwrap().is_empty() {
            assert!(
                !done.load(Ordering::SeqCst) || events.len() == total,
                "writers finished but the feed is short"
            );
            tokio::task::yield_now().await;
        }
    }
    events
}

async fn concurrent_writes_make_a_gap_free_feed(backend: Backend) {
    // Sixteen writers and a reader on one key, as fast as they go: past any sensible rate limit.
    let app = Arc::new(spawn_with(backend, |config| config.rate_limit_per_second = 0).await);
    let total = WRITERS * WRITES_EACH;
    let done = Arc::new(AtomicBool::new(false));
    let reader = tokio::spawn(follow_feed(app.clone(), total, done.clone()));
    let writers: Vec<_> = (0..WRITERS).map(|w| tokio::spawn(write_many(app.clone(), w))).collect();
    for writer in writers {
        writer.await.expect("writer");
    }
    done.store(true, Ordering::SeqCst);
    let followed = reader.await.expect("reader");

    // Read afterwards, the feed holds exactly seq 1..=3200.
    let events = app.all_events().await;
    let seqs: Vec<i64> = events.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, (1..=i64::try_from(total).unwrap()).collect::<Vec<_>>());
    // The reader that followed the writes saw the very same events.
    assert_eq!(followed, events);
    // Each tenant's versions are contiguous and in seq order: 1, 2, …, 200.
    let mut versions: HashMap<String, Vec<i64>> = HashMap::new();
    for event in &events {
        versions
            .entry(event["tenant"]["id"].as_str().unwrap().to_owned())
            .or_default()
            .push(event["tenant"]["version"].as_i64().unwrap());
    }
    assert_eq!(versions.len(), WRITERS);
    for (tenant, seen) in versions {
        assert_eq!(seen, (1..=i64::try_from(WRITES_EACH).unwrap()).collect::<Vec<_>>(), "tenant {tenant}");
    }
    // The audit log has exactly one entry per event: the same tenant versions, each once.
    let mut audited = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = app.get(&format!("/v1/audit-log?limit=1000&cursor={cursor}")).await.json();
        for entry in page["data"].as_array().unwrap() {
            if entry["target"]["type"] == "tenant" {
                audited.push((entry["target"]["id"].clone(), entry["after"]["version"].clone()));
            }
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = next.to_owned(),
            None => break,
        }
    }
    let mut changed: Vec<(Value, Value)> =
        events.iter().map(|e| (e["tenant"]["id"].clone(), e["tenant"]["version"].clone())).collect();
    let key = |pair: &(Value, Value)| (pair.0.to_string(), pair.1.as_i64());
    audited.sort_by_key(key);
    changed.sort_by_key(key);
    assert_eq!(audited, changed);
    let app = Arc::into_inner(app).expect("no other handle left");
    app.finish().await;
}

on_both_backends!(concurrent_writes_make_a_gap_free_feed);
