//! The vocabulary Carcosa's server and its clients share.
//!
//! Everything here is pure data and parsing: identifiers ([`TenantId`], [`ProjectId`], [`EventId`]),
//! the [`Slug`] rules, the [`Tenant`] snapshot and the [`Event`] that carries it, pagination
//! cursors, JSON merge patch, API keys and scopes, audit entries, and the request/response types
//! of REST API v1.
//! There is no I/O in this crate: no HTTP framework, no database driver, no async runtime. The
//! server (`carcosa-server`) and the application library (`carcosa`) both build on it, so a value
//! parsed here means the same thing on both sides of the wire.
//!
//! Types at the boundary are built by a `parse` that returns an error; once you hold a [`Slug`]
//! or a [`TenantName`], it is valid, and nothing downstream checks it again.

#![warn(missing_docs)]

pub mod api;
pub mod api_key;
pub mod audit;
pub mod cursor;
pub mod endpoint;
pub mod event;
pub mod id;
pub mod merge_patch;
pub mod operator;
pub mod problem;
pub mod slug;
pub mod sync_status;
pub mod tenant;
pub mod webhook;

pub use api_key::{ApiKey, Scope};
pub use cursor::{AuditCursor, EventCursor, PageCursor};
pub use event::{Event, EventType};
pub use id::{AuditId, DeliveryId, EndpointId, EventId, OperatorId, ProjectId, TenantId};
pub use operator::{Action, Email, Role};
pub use problem::Problem;
pub use slug::Slug;
pub use tenant::{Metadata, Plan, Tenant, TenantName, TenantStatus};
