//! Events: one per tenant change, numbered gap-free per project, carrying the full snapshot.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::tenant::rfc3339;
use crate::{EventId, Tenant};

/// What happened to the tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum EventType {
    /// A tenant was created (version 1).
    #[serde(rename = "tenant.created")]
    TenantCreated,
    /// A tenant's name, slug, status, plan or metadata changed.
    #[serde(rename = "tenant.updated")]
    TenantUpdated,
    /// A tenant was deleted (its snapshot has status `deleted`).
    #[serde(rename = "tenant.deleted")]
    TenantDeleted,
}

impl EventType {
    /// Every event type, in a stable order.
    pub const ALL: [Self; 3] = [Self::TenantCreated, Self::TenantUpdated, Self::TenantDeleted];

    /// The type as stored and sent: `tenant.created`, …
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TenantCreated => "tenant.created",
            Self::TenantUpdated => "tenant.updated",
            Self::TenantDeleted => "tenant.deleted",
        }
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Text that names no event type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not an event type")]
pub struct InvalidEventType(pub String);

impl FromStr for EventType {
    type Err = InvalidEventType;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| InvalidEventType(s.chars().take(40).collect()))
    }
}

/// One change to one tenant, as the changes feed and webhooks deliver it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Event {
    /// Unique id; the `webhook-id` of every delivery of this event.
    pub id: EventId,
    /// Position in the project's feed: 1, 2, 3, … with no gap, in commit order.
    pub seq: i64,
    /// What happened.
    #[serde(rename = "type")]
    pub event_type: EventType,
    /// When the change was committed.
    #[serde(with = "rfc3339")]
    pub occurred_at: DateTime<Utc>,
    /// The tenant's full state after the change.
    pub tenant: Tenant,
}
