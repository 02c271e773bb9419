//! The audit log's vocabulary: who did what to which object, and the filters a listing takes.
//!
//! An [`AuditEntry`] records one mutation: its [`Actor`] (an API key, a CLI user, or later a
//! dashboard operator), its [`AuditAction`] (a stable dotted name such as `tenant.update`), its
//! [`AuditTarget`], the target's public state before and after, and where the request came from.
//! The server writes entries in the same transaction as the change they describe; this module
//! only names things.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::tenant::rfc3339;
use crate::{AuditId, ProjectId};

/// What kind of caller made a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ActorKind {
    /// An API call; the id is the key id.
    Key,
    /// A `carcosa` command run on the server's machine; the id is the OS user name.
    Cli,
    /// A dashboard operator; the id is the operator's id.
    Operator,
}

impl ActorKind {
    /// Every kind, in a stable order.
    pub const ALL: [Self; 3] = [Self::Key, Self::Cli, Self::Operator];

    /// The kind as stored and sent: `key`, `cli`, `operator`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Key => "key",
            Self::Cli => "cli",
            Self::Operator => "operator",
        }
    }
}

impl fmt::Display for ActorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Text that names no actor kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not an actor kind (expected key, cli or operator)")]
pub struct InvalidActorKind(pub String);

impl FromStr for ActorKind {
    type Err = InvalidActorKind;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| InvalidActorKind(s.chars().take(40).collect()))
    }
}

/// Who made a change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Actor {
    /// An API key, a CLI user or a dashboard operator.
    pub kind: ActorKind,
    /// The key id, the OS user name, or the operator id.
    pub id: String,
}

impl Actor {
    /// An API call made with the key `key_id`.
    #[must_use]
    pub fn key(key_id: impl Into<String>) -> Self {
        Self { kind: ActorKind::Key, id: key_id.into() }
    }

    /// A CLI command run by the OS user `user`.
    #[must_use]
    pub fn cli(user: impl Into<String>) -> Self {
        Self { kind: ActorKind::Cli, id: user.into() }
    }

    /// A dashboard operator (`op_…`).
    #[must_use]
    pub fn operator(operator_id: impl ToString) -> Self {
        Self { kind: ActorKind::Operator, id: operator_id.to_string() }
    }
}

/// What was done: a stable dotted name, `<object>.<verb>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum AuditAction {
    /// A project was created (with its first key, recorded as `key.create`).
    #[serde(rename = "project.create")]
    ProjectCreate,
    /// A project was deleted, with its tenants, events, keys and endpoints (its audit log
    /// stays until retention removes it).
    #[serde(rename = "project.delete")]
    ProjectDelete,
    /// An API key was created.
    #[serde(rename = "key.create")]
    KeyCreate,
    /// An API key was revoked.
    #[serde(rename = "key.revoke")]
    KeyRevoke,
    /// A tenant was created.
    #[serde(rename = "tenant.create")]
    TenantCreate,
    /// A tenant's name, slug, status, plan or metadata changed.
    #[serde(rename = "tenant.update")]
    TenantUpdate,
    /// A tenant was deleted.
    #[serde(rename = "tenant.delete")]
    TenantDelete,
    /// A webhook endpoint was created.
    #[serde(rename = "webhook_endpoint.create")]
    EndpointCreate,
    /// A webhook endpoint was changed (URL, description, filter, enabled).
    #[serde(rename = "webhook_endpoint.update")]
    EndpointUpdate,
    /// A webhook endpoint was deleted, with its delivery log.
    #[serde(rename = "webhook_endpoint.delete")]
    EndpointDelete,
    /// A webhook endpoint's signing secret was replaced.
    #[serde(rename = "webhook_endpoint.rotate_secret")]
    EndpointRotateSecret,
    /// A test event was queued for a webhook endpoint.
    #[serde(rename = "webhook_endpoint.send_test")]
    EndpointSendTest,
    /// One delivery was queued again.
    #[serde(rename = "webhook_delivery.resend")]
    DeliveryResend,
    /// An endpoint's failed deliveries were queued again.
    #[serde(rename = "webhook_delivery.recover")]
    DeliveryRecover,
    /// An operator account was created with a role in the project.
    #[serde(rename = "operator.create")]
    OperatorCreate,
    /// An operator was given a role in the project, or their role there changed.
    #[serde(rename = "operator.role_set")]
    OperatorRoleSet,
    /// An operator's role in the project was taken away.
    #[serde(rename = "operator.role_remove")]
    OperatorRoleRemove,
}

impl AuditAction {
    /// Every action, in a stable order.
    pub const ALL: [Self; 17] = [
        Self::ProjectCreate,
        Self::ProjectDelete,
        Self::KeyCreate,
        Self::KeyRevoke,
        Self::TenantCreate,
        Self::TenantUpdate,
        Self::TenantDelete,
        Self::EndpointCreate,
        Self::EndpointUpdate,
        Self::EndpointDelete,
        Self::EndpointRotateSecret,
        Self::EndpointSendTest,
        Self::DeliveryResend,
        Self::DeliveryRecover,
        Self::OperatorCreate,
        Self::OperatorRoleSet,
        Self::OperatorRoleRemove,
    ];

    /// The action as stored and sent: `tenant.create`, …
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ProjectCreate => "project.create",
            Self::ProjectDelete => "project.delete",
            Self::KeyCreate => "key.create",
            Self::KeyRevoke => "key.revoke",
            Self::TenantCreate => "tenant.create",
            Self::TenantUpdate => "tenant.update",
            Self::TenantDelete => "tenant.delete",
            Self::EndpointCreate => "webhook_endpoint.create",
            Self::EndpointUpdate => "webhook_endpoint.update",
            Self::EndpointDelete => "webhook_endpoint.delete",
            Self::EndpointRotateSecret => "webhook_endpoint.rotate_secret",
            Self::EndpointSendTest => "webhook_endpoint.send_test",
            Self::DeliveryResend => "webhook_delivery.resend",
            Self::DeliveryRecover => "webhook_delivery.recover",
            Self::OperatorCreate => "operator.create",
            Self::OperatorRoleSet => "operator.role_set",
            Self::OperatorRoleRemove => "operator.role_remove",
        }
    }
}

impl fmt::Display for AuditAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Text that names no audit action.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not an audit action (e.g. tenant.create, key.revoke, webhook_endpoint.update)")]
pub struct InvalidAction(pub String);

impl FromStr for AuditAction {
    type Err = InvalidAction;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| InvalidAction(s.chars().take(60).collect()))
    }
}

/// What kind of object a change was made to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum TargetType {
    /// A project (`prj_…`).
    Project,
    /// An API key (its key id).
    Key,
    /// A tenant (`ten_…`).
    Tenant,
    /// A webhook endpoint (`ep_…`).
    WebhookEndpoint,
    /// A webhook delivery (`dlv_…`).
    WebhookDelivery,
    /// A dashboard operator (`op_…`).
    Operator,
}

impl TargetType {
    /// Every target type, in a stable order.
    pub const ALL: [Self; 6] = [
        Self::Project,
        Self::Key,
        Self::Tenant,
        Self::WebhookEndpoint,
        Self::WebhookDelivery,
        Self::Operator,
    ];

    /// The type as stored and sent: `tenant`, `webhook_endpoint`, …
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Project => "project",
            Self::Key => "key",
            Self::Tenant => "tenant",
            Self::WebhookEndpoint => "webhook_endpoint",
            Self::WebhookDelivery => "webhook_delivery",
            Self::Operator => "operator",
        }
    }
}

/// Text that names no target type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not an audit target type")]
pub struct InvalidTargetType(pub String);

impl FromStr for TargetType {
    type Err = InvalidTargetType;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| InvalidTargetType(s.chars().take(40).collect()))
    }
}

/// The object a change was made to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditTarget {
    /// What kind of object.
    #[serde(rename = "type")]
    pub target_type: TargetType,
    /// Its id.
    pub id: String,
}

impl AuditTarget {
    /// The object `id` of type `target_type`.
    #[must_use]
    pub fn new(target_type: TargetType, id: impl ToString) -> Self {
        Self { target_type, id: id.to_string() }
    }
}

/// One recorded mutation, as `GET /v1/audit-log` returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditEntry {
    /// `aud_…`; later entries have greater ids.
    pub id: AuditId,
    /// The project the change belongs to.
    pub project_id: ProjectId,
    /// When the change was committed.
    #[serde(with = "rfc3339")]
    pub occurred_at: DateTime<Utc>,
    /// Who made it.
    pub actor: Actor,
    /// What was done.
    pub action: AuditAction,
    /// To which object.
    pub target: AuditTarget,
    /// The object's public state before the change (`null` for a creation). Never holds a
    /// secret or a key's hash.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub before: Option<Value>,
    /// The object's public state after the change (`null` for a hard deletion).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub after: Option<Value>,
    /// The request's `x-request-id` (the caller's, or one the server generated).
    pub request_id: String,
    /// The caller's network address, when known.
    pub address: Option<String>,
    /// The caller's `User-Agent`, when sent.
    pub user_agent: Option<String>,
}

/// One page of the audit log, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditPage {
    /// Entries, newest first.
    pub data: Vec<AuditEntry>,
    /// Pass as `cursor` for the next (older) page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// Whose entries a listing selects: `key:<key id>`, `cli:<user>`, `operator:<id>`, or a bare id
/// of any kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActorFilter {
    /// Only this kind of actor; `None` = any.
    pub kind: Option<ActorKind>,
    /// The actor's id.
    pub id: String,
}

/// An actor filter that cannot select anything sensible.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("actor must be `key:<key id>`, `cli:<user>`, `operator:<id>` or an id (1–200 characters)")]
pub struct InvalidActor;

impl ActorFilter {
    /// Reads `kind:id` (when `kind` names an actor kind) or a bare id.
    pub fn parse(text: &str) -> Result<Self, InvalidActor> {
        let (kind, id) = match text.split_once(':') {
            Some((kind, id)) => match kind.parse::<ActorKind>() {
                Ok(kind) => (Some(kind), id),
                Err(_) => (None, text),
            },
            None => (None, text),
        };
        if id.is_empty() || id.chars().count() > 200 || id.contains('\0') {
            return Err(InvalidActor);
        }
        Ok(Self { kind, id: id.to_owned() })
    }
}

/// A time filter that is not an RFC 3339 timestamp.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not an RFC 3339 time (e.g. 2026-01-31T09:00:00Z)")]
pub struct InvalidTime(pub String);

/// Parses an RFC 3339 time from a query string. A `+` offset that arrived unencoded (and so
/// decoded as a space, `…T09:00:00 01:00`) is read as the `+` it was meant to be.
pub fn parse_time(text: &str) -> Result<DateTime<Utc>, InvalidTime> {
    let trimmed = text.trim();
    DateTime::parse_from_rfc3339(trimmed)
        .or_else(|err| match trimmed.rsplit_once(' ') {
            Some((head, offset)) if !head.is_empty() => {
                DateTime::parse_from_rfc3339(&format!("{head}+{offset}"))
            }
            _ => Err(err),
        })
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| InvalidTime(text.chars().take(60).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back() {
        for action in AuditAction::ALL {
            assert_eq!(action.as_str().parse::<AuditAction>().unwrap(), action);
            let json = serde_json::to_value(action).unwrap();
            assert_eq!(json, action.as_str());
        }
        for kind in ActorKind::ALL {
            assert_eq!(kind.as_str().parse::<ActorKind>().unwrap(), kind);
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.as_str());
        }
        for target in TargetType::ALL {
            assert_eq!(target.as_str().parse::<TargetType>().unwrap(), target);
            assert_eq!(serde_json::to_value(target).unwrap(), target.as_str());
        }
        assert!("tenant.created".parse::<AuditAction>().is_err());
    }

    #[test]
    fn actor_filters_take_a_kind_or_a_bare_id() {
        assert_eq!(
            ActorFilter::parse("key:abc").unwrap(),
            ActorFilter { kind: Some(ActorKind::Key), id: "abc".into() }
        );
        assert_eq!(
            ActorFilter::parse("cli:alice").unwrap(),
            ActorFilter { kind: Some(ActorKind::Cli), id: "alice".into() }
        );
        assert_eq!(ActorFilter::parse("abc").unwrap(), ActorFilter { kind: None, id: "abc".into() });
        assert_eq!(
            ActorFilter::parse("dom:alice").unwrap(),
            ActorFilter { kind: None, id: "dom:alice".into() }
        );
        assert!(ActorFilter::parse("").is_err());
        assert!(ActorFilter::parse("key:").is_err());
        assert!(ActorFilter::parse(&"x".repeat(201)).is_err());
    }

    #[test]
    fn times_are_rfc3339_even_with_an_unencoded_plus() {
        let utc = parse_time("2026-01-31T09:00:00Z").unwrap();
        assert_eq!(parse_time("2026-01-31T10:00:00+01:00").unwrap(), utc);
        assert_eq!(parse_time("2026-01-31T10:00:00 01:00").unwrap(), utc);
        for bad in ["", "yesterday", "2026-01-31", "2026-01-31T09:00:00", " 01:00"] {
            assert!(parse_time(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn entries_serialize_with_a_typed_target() {
        let target = AuditTarget::new(TargetType::WebhookEndpoint, "ep_x");
        assert_eq!(
            serde_json::to_value(&target).unwrap(),
            serde_json::json!({"type": "webhook_endpoint", "id": "ep_x"})
        );
        let actor = Actor::key("abc");
        assert_eq!(serde_json::to_value(&actor).unwrap(), serde_json::json!({"kind": "key", "id": "abc"}));
    }
}
