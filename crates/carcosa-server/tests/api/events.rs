//! The changes feed: order, paging, retention.

use std::time::Duration;

use serde_json::json;

use crate::helpers::{Backend, spawn, spawn_with};
use crate::on_both_backends;

async fn the_feed_pages_in_seq_order(backend: Backend) {
    let app = spawn(backend).await;
    for i in 0..7 {
        app.create_named(&format!("Feed {i}")).await;
    }
    let first = app.get("/v1/events?limit=3").await.json();
    assert_eq!(
        first["data"].as_array().unwrap().iter().map(|e| e["seq"].as_i64().unwrap()).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    assert_eq!(first["next_cursor"], "3");
    assert_eq!(first["has_more"], true);
    let second = app.get("/v1/events?after=3&limit=3").await.json();
    assert_eq!(second["data"][0]["seq"], 4);
    let last = app.get("/v1/events?after=6&limit=3").await.json();
    assert_eq!(last["data"].as_array().unwrap().len(), 1);
    assert_eq!(last["has_more"], false);
    assert_eq!(last["next_cursor"], "7");
    // At the head: an empty page that keeps the cursor.
    let head = app.get("/v1/events?after=7").await.json();
    assert_eq!(head, json!({"data": [], "next_cursor": "7", "has_more": false}));
    // The event body: id, seq, type, time, full snapshot.
    let event = &first["data"][0];
    assert!(event["id"].as_str().unwrap().starts_with("evt_"));
    assert_eq!(event["type"], "tenant.created");
    assert_eq!(event["tenant"]["version"], 1);
    assert_eq!(event["tenant"]["name"], "Feed 0");
    app.get("/v1/events?after=abc").await.expect_problem(400, "invalid_cursor");
    app.get("/v1/events?after=-1").await.expect_problem(400, "invalid_cursor");
    app.get("/v1/events?limit=0").await.expect_problem(400, "invalid_query");
    // A cursor past the newest event means the server's data was reset: full sync.
    app.get("/v1/events?after=99").await.expect_problem(410, "cursor_expired");
    app.finish().await;
}

async fn cursors_older_than_retention_get_410(backend: Backend) {
    let app = spawn(backend).await;
    for i in 0..5 {
        app.create_named(&format!("Old {i}")).await;
    }
    // Prune everything that exists now, as if 30 days had passed.
    let future = chrono::Utc::now() + chrono::TimeDelta::seconds(1);
    let report = app.store.prune(future, future).await.unwrap();
    assert_eq!(report.events, 5);
    let expired = app.get("/v1/events?after=2").await.expect_problem(410, "cursor_expired");
    assert!(expired["detail"].as_str().unwrap().contains("full sync"));
    app.get("/v1/events?after=0").await.expect_problem(410, "cursor_expired");
    // A reader that had everything goes on; one with no cursor starts at the oldest retained.
    assert_eq!(app.get("/v1/events?after=5").await.json()["data"], json!([]));
    assert_eq!(app.get("/v1/events").await.json()["next_cursor"], "5");
    app.create_named("New").await;
    let fresh = app.get("/v1/events").await.json();
    assert_eq!(fresh["data"][0]["seq"], 6);
    // A full sync's listing still reports where to continue from.
    assert_eq!(app.get("/v1/tenants").await.json()["as_of"], "6");
    app.finish().await;
}

async fn the_server_prunes_on_its_own(backend: Backend) {
    let app = spawn_with(backend, |c| {
        c.event_retention_days = 0;
        c.prune_interval_secs = 1;
    })
    .await;
    app.create_named("Short-lived").await;
    let mut status = 0;
    for _ in 0..50 {
        status = app.get("/v1/events?after=0").await.status;
        if status == 410 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, 410, "the retention task removed the event");
    app.finish().await;
}

on_both_backends!(
    the_feed_pages_in_seq_order,
    cursors_older_than_retention_get_410,
    the_server_prunes_on_its_own
);
