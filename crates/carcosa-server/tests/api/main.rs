//! Integration tests of the Carcosa server through its real HTTP stack.
//!
//! Each test starts the server on port 0 with a database of its own: a fresh SQLite file, or a
//! freshly created PostgreSQL database when `CARCOSA_TEST_POSTGRES_URL` is set (those variants are
//! `#[ignore]`d otherwise; run them with `--include-ignored`). Every response a test receives is
//! checked against `/openapi.json`: its status must be documented for its route.

mod helpers;
mod receiver;

mod audit;
mod browser;
mod concurrency;
mod dashboard;
mod dashboard_pages;
mod errors;
mod events;
mod keys;
mod metrics;
mod openapi;
mod ratelimit;
mod sync_status;
mod tenants;
mod webhooks;
