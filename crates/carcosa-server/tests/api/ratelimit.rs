//! Rate limits: a token bucket per API key (the server's default or the key's own), 429
//! `rate_limited` with `Retry-After` and the `RateLimit-*` headers, limits shared through Redis,
//! and the login limit per address.
//!
//! The Redis tests are ignored unless `CARCOSA_TEST_REDIS_URL` is set; each uses a prefix of its
//! own, so they run side by side on one Redis.

use std::time::{Duration, Instant};

use carcosa_core::Scope;
use carcosa_core::api::KeyRateLimit;
use carcosa_server::Config;
use reqwest::Method;

use crate::helpers::{Backend, Res, TestApp, spawn_with, test_actor};
use crate::on_both_backends;

/// One request a second, three at once: the limit the tests run into.
fn tiny(config: &mut Config) {
    config.rate_limit_per_second = 1;
    config.rate_limit_burst = 3;
}

/// A Redis of its own for one test: the URL, and a prefix nobody else uses.
fn with_redis(config: &mut Config) {
    let url = std::env::var("CARCOSA_TEST_REDIS_URL")
        .expect("set CARCOSA_TEST_REDIS_URL, e.g. redis://127.0.0.1:6379");
    config.rate_limit_redis_url = Some(carcosa_server::config::DatabaseUrl(url));
    config.rate_limit_redis_prefix = format!("carcosa:test:{}:", ulid::Ulid::new());
}

fn number(res: &Res, name: &str) -> Option<u64> {
    res.header(name).map(|v| v.parse().unwrap_or_else(|_| panic!("{name}: {v:?} is not a number")))
}

/// `(RateLimit-Limit, RateLimit-Remaining)`, asserting `RateLimit-Reset` is there too.
#[track_caller]
fn limits(res: &Res) -> (u64, u64) {
    let limit = number(res, "ratelimit-limit").unwrap_or_else(|| panic!("no RateLimit-Limit: {res:?}"));
    let remaining = number(res, "ratelimit-remaining").expect("RateLimit-Remaining");
    number(res, "ratelimit-reset").expect("RateLimit-Reset");
    (limit, remaining)
}

#[track_caller]
fn assert_no_limit_headers(res: &Res) {
    for name in ["ratelimit-limit", "ratelimit-remaining", "ratelimit-reset", "retry-after"] {
        assert!(res.header(name).is_none(), "{name} on an unlimited answer: {res:?}");
    }
}

/// Sends `count` requests with `key`. A bucket refills while requests are made: when they took
/// a second or more (a very slow machine), they are sent again with `next_key`'s fresh key, so
/// that the answers reflect one burst.
async fn burst(app: &TestApp, mut key: String, count: usize, next_key: impl AsyncFn() -> String) -> Vec<Res> {
    for _ in 0..5 {
        let started = Instant::now();
        let mut answers = Vec::new();
        for _ in 0..count {
            answers.push(app.req(Method::GET, "/v1/tenants").key(&key).send().await);
        }
        if started.elapsed() < Duration::from_millis(900) {
            return answers;
        }
        key = next_key().await;
    }
    panic!("requests kept taking a second or more");
}

async fn new_key(app: &TestApp, rate_limit: Option<KeyRateLimit>) -> String {
    let (_, key) = app
        .store
        .create_key_with_limit(app.project, &Scope::ALL, None, rate_limit, &test_actor())
        .await
        .unwrap();
    key.expose()
}

/// Waits as long as `Retry-After` says, then checks the key works again.
async fn passes_after_waiting(app: &TestApp, key: &str, refused: &Res) {
    let wait = number(refused, "retry-after").unwrap();
    tokio::time::sleep(Duration::from_secs(wait)).await;
    let again = app.req(Method::GET, "/v1/tenants").key(key).send().await;
    again.expect(200);
}

async fn a_key_past_its_burst_gets_429_with_headers(app: &TestApp) {
    let answers = burst(app, new_key(app, None).await, 4, || new_key(app, None)).await;
    let seen: Vec<(u16, (u64, u64))> = answers.iter().map(|res| (res.status, limits(res))).collect();
    assert_eq!(seen, [(200, (3, 2)), (200, (3, 1)), (200, (3, 0)), (429, (3, 0))]);
    let refused = &answers[3];
    let problem = refused.expect_problem(429, "rate_limited");
    assert!(problem["detail"].as_str().unwrap().contains("retry"), "{problem}");
    let retry = number(refused, "retry-after").expect("Retry-After");
    assert!(retry >= 1, "{retry}");
    assert!(number(refused, "ratelimit-reset").unwrap() >= 1);
    assert!(answers[..3].iter().all(|res| res.header("retry-after").is_none()));

    // Other keys have buckets of their own, in this project and in another.
    let fresh = app.req(Method::GET, "/v1/tenants").key(&new_key(app, None).await).send().await;
    assert_eq!((fresh.status, limits(&fresh)), (200, (3, 2)));
    let (_, other) = app.other_project().await;
    let theirs = app.req(Method::GET, "/v1/tenants").key(&other).send().await;
    assert_eq!(theirs.status, 200);
    // Without a known key there is no bucket, and no headers.
    let anonymous = app.anonymous(Method::GET, "/v1/tenants").send().await;
    anonymous.expect_problem(401, "unauthorized");
    assert_no_limit_headers(&anonymous);

    // Tokens come back: after Retry-After seconds, the key passes again.
    let key = new_key(app, None).await;
    let mut refused = None;
    for _ in 0..10 {
        let res = app.req(Method::GET, "/v1/tenants").key(&key).send().await;
        if res.status == 429 {
            refused = Some(res);
            break;
        }
    }
    passes_after_waiting(app, &key, &refused.expect("the bucket ran dry")).await;
}

async fn requests_past_the_limit_are_refused(backend: Backend) {
    let app = spawn_with(backend, tiny).await;
    a_key_past_its_burst_gets_429_with_headers(&app).await;
    app.finish().await;
}

async fn a_refused_scope_still_takes_a_token(backend: Backend) {
    let app = spawn_with(backend, tiny).await;
    let (_, reader) =
        app.store.create_key(app.project, &[Scope::TenantsRead], None, &test_actor()).await.unwrap();
    let denied = app.req(Method::GET, "/v1/events").key(&reader.expose()).send().await;
    denied.expect_problem(403, "insufficient_scope");
    assert_eq!(limits(&denied), (3, 2));
    app.finish().await;
}

async fn a_key_with_its_own_limit_uses_it(backend: Backend) {
    let app = spawn_with(backend, tiny).await;
    let own = Some(KeyRateLimit::new(1, Some(1)));
    let answers = burst(&app, new_key(&app, own).await, 2, || new_key(&app, own)).await;
    assert_eq!((answers[0].status, limits(&answers[0])), (200, (1, 0)));
    answers[1].expect_problem(429, "rate_limited");
    assert_eq!(limits(&answers[1]), (1, 0));
    // A bigger one: more than the default's three at once.
    let roomy = new_key(&app, Some(KeyRateLimit::new(5, None))).await;
    let first = app.req(Method::GET, "/v1/tenants").key(&roomy).send().await;
    assert_eq!((first.status, limits(&first)), (200, (10, 9)));
    // 0: this key is not limited at all.
    let unlimited = new_key(&app, Some(KeyRateLimit::new(0, None))).await;
    for _ in 0..6 {
        let res = app.req(Method::GET, "/v1/tenants").key(&unlimited).send().await;
        res.expect(200);
        assert_no_limit_headers(&res);
    }
    app.finish().await;
}

async fn without_a_default_limit_there_are_no_headers(backend: Backend) {
    let app = spawn_with(backend, |config| config.rate_limit_per_second = 0).await;
    for _ in 0..10 {
        let res = app.get("/v1/tenants").await;
        res.expect(200);
        assert_no_limit_headers(&res);
    }
    // A key's own limit still applies.
    let limited = new_key(&app, Some(KeyRateLimit::new(1, Some(2)))).await;
    let res = app.req(Method::GET, "/v1/tenants").key(&limited).send().await;
    assert_eq!((res.status, limits(&res)), (200, (2, 1)));
    app.finish().await;
}

on_both_backends!(
    requests_past_the_limit_are_refused,
    a_refused_scope_still_takes_a_token,
    a_key_with_its_own_limit_uses_it,
    without_a_default_limit_there_are_no_headers,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_redis_falls_back_to_local_buckets() {
    let app = spawn_with(Backend::Sqlite, |config| {
        tiny(config);
        // Nothing listens on port 1.
        config.rate_limit_redis_url = Some(carcosa_server::config::DatabaseUrl("redis://127.0.0.1:1".into()));
    })
    .await;
    let key = new_key(&app, None).await;
    let mut statuses = Vec::new();
    for _ in 0..10 {
        let res = app.req(Method::GET, "/v1/tenants").key(&key).send().await;
        statuses.push(res.status);
        if res.status == 429 {
            assert_eq!(limits(&res).1, 0);
            break;
        }
    }
    assert!(statuses.iter().all(|s| *s == 200 || *s == 429), "{statuses:?}");
    assert_eq!(statuses.last(), Some(&429), "still limited, per replica: {statuses:?}");
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Redis: set CARCOSA_TEST_REDIS_URL"]
async fn redis_buckets_limit_like_local_ones() {
    let app = spawn_with(Backend::Sqlite, |config| {
        tiny(config);
        with_redis(config);
    })
    .await;
    a_key_past_its_burst_gets_429_with_headers(&app).await;
    app.finish().await;
}

/// A second server on the first one's database and configuration.
struct Replica {
    address: String,
    shutdown: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Replica {
    async fn start(app: &TestApp) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = format!("http://{}", listener.local_addr().unwrap());
        let (shutdown, stop) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(carcosa_server::serve(app.config.clone(), listener, async move {
            let _ = stop.await;
        }));
        Self { address, shutdown, server }
    }

    async fn get(&self, app: &TestApp, key: &str) -> Res {
        let response =
            app.client.get(format!("{}/v1/tenants", self.address)).bearer_auth(key).send().await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        Res { status, headers, text: response.text().await.unwrap() }
    }

    async fn stop(self) {
        let _ = self.shutdown.send(());
        self.server.await.unwrap().unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Redis: set CARCOSA_TEST_REDIS_URL"]
async fn replicas_sharing_redis_share_a_bucket() {
    let app = spawn_with(Backend::Sqlite, |config| {
        tiny(config);
        with_redis(config);
    })
    .await;
    let replica = Replica::start(&app).await;
    for _ in 0..5 {
        let key = new_key(&app, None).await;
        let started = Instant::now();
        let here = app.req(Method::GET, "/v1/tenants").key(&key).send().await;
        let there = replica.get(&app, &key).await;
        let there_again = replica.get(&app, &key).await;
        let refused_here = app.req(Method::GET, "/v1/tenants").key(&key).send().await;
        if started.elapsed() >= Duration::from_millis(900) {
            continue; // A token may have come back meanwhile: again, with a new key.
        }
        assert_eq!((here.status, limits(&here)), (200, (3, 2)));
        assert_eq!((there.status, limits(&there)), (200, (3, 1)), "the replica sees the same bucket");
        assert_eq!((there_again.status, limits(&there_again)), (200, (3, 0)));
        refused_here.expect_problem(429, "rate_limited");
        replica.stop().await;
        app.finish().await;
        return;
    }
    panic!("requests kept taking a second or more");
}
