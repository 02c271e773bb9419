//! `carcosa`: what an application links to follow a Carcosa tenant registry.
//!
//! * [`Client`]: every tenant, changes-feed and sync-status call of API v1, with timeouts, retries
//!   (exponential backoff with jitter on network errors, 5xx and 429, honouring `Retry-After`)
//!   and errors that carry the server's problem details.
//! * [`local`]: the app's own tenant table (SQLite, PostgreSQL), mapped column by column.
//! * [`sync`]: the engine that keeps that table equal to Carcosa (full, incremental, per event),
//!   and [`receiver`] (feature `axum`): the webhook endpoint that feeds it.
//! * [`detect`] (feature `axum`): which tenant is this request? Resolvers (subdomain, custom
//!   domain, header, path prefix, query, JWT claim), a lookup cache the sync engine invalidates,
//!   a tower layer and the `CurrentTenant` extractor; [`tenancy`]: the task-local that carries the
//!   tenant into background jobs.
//!
//! ```no_run
//! # async fn demo() -> Result<(), carcosa::Error> {
//! use carcosa::Client;
//! use carcosa_core::api::TenantIn;
//!
//! let client = Client::new("http://127.0.0.1:8700", "ck_…")?;
//! let tenant = client.create_tenant(&TenantIn { name: "Acme".into(), ..TenantIn::default() }).await?;
//! let page = client.list_events(None, 100).await?;
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

pub mod client;
#[cfg(feature = "axum")]
pub mod detect;
pub mod local;
#[cfg(feature = "axum")]
pub mod receiver;
pub mod sync;
pub mod tenancy;

pub use carcosa_core as core;
pub use client::{Client, ClientBuilder, Error, ListTenants};
