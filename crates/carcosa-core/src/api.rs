//! Request and response bodies of REST API v1, and the checks that turn a request into values
//! the server can trust.
//!
//! Naming follows the `XIn` / `XPatch` / `XOut` habit: `TenantIn` is what a client sends to create
//! a tenant, `TenantPatch` what it sends to change one; the [`Tenant`] snapshot is what it gets
//! back. Requests carry raw strings so that a bad slug is answered with `invalid_slug` (and a bad
//! name with `invalid_name`) rather than a generic body error; [`TenantIn::validate`] and
//! [`TenantPatch::validate`] produce the checked forms.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::slug::InvalidSlug;
use crate::tenant::{InvalidField, rfc3339, rfc3339_opt};
use crate::{Event, EventCursor, Metadata, Plan, ProjectId, Scope, Slug, Tenant, TenantName, TenantStatus};

/// The body of `POST /v1/tenants`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TenantIn {
    /// Display name, 1–200 characters.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 200))]
    pub name: String,
    /// Optional slug; generated from the name when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(pattern = "^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"))]
    pub slug: Option<String>,
    /// `active` (default) or `suspended`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<TenantStatus>,
    /// Optional plan label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 64))]
    pub plan: Option<String>,
    /// Optional JSON object (at most 16 KiB serialized by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub metadata: Option<Value>,
}

/// The body of `PATCH /v1/tenants/{id}`: every field optional; absent fields are unchanged.
/// `null` is only meaningful for `plan` (clear it) and `metadata` (clear it); for the other
/// fields it is refused rather than silently ignored.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TenantPatch {
    /// New display name.
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false, min_length = 1, max_length = 200))]
    pub name: Option<String>,
    /// New slug (must be free among the project's live tenants).
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(nullable = false, pattern = "^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
    )]
    pub slug: Option<String>,
    /// `active` or `suspended` (use `DELETE` to delete).
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(nullable = false))]
    pub status: Option<TenantStatus>,
    /// New plan; `null` clears it.
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, nullable, min_length = 1, max_length = 64))]
    pub plan: Option<Option<String>>,
    /// A JSON merge patch (RFC 7396) applied to the metadata: keys set to `null` are removed.
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub metadata: Option<Value>,
}

/// Deserializes a field that is present (even as `null`) into `Some`.
fn present<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

/// A request field that breaks its rule: which field, the stable error code, and a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct FieldError {
    /// The stable code: `invalid_name`, `invalid_slug`, `invalid_status`, `invalid_plan`,
    /// `invalid_metadata`.
    pub code: &'static str,
    /// The field's name in the request.
    pub field: &'static str,
    /// What is wrong, for the caller.
    pub message: String,
}

impl FieldError {
    fn new(code: &'static str, field: &'static str, message: impl ToString) -> Self {
        Self { code, field, message: message.to_string() }
    }

    fn slug(err: &InvalidSlug) -> Self {
        Self::new("invalid_slug", "slug", err)
    }

    fn field(code: &'static str, field: &'static str) -> impl Fn(InvalidField) -> Self {
        move |err| Self::new(code, field, err)
    }
}

/// A checked `POST /v1/tenants` request.
#[derive(Debug, Clone, PartialEq)]
pub struct NewTenant {
    /// The name.
    pub name: TenantName,
    /// The requested slug, if any.
    pub slug: Option<Slug>,
    /// `active` or `suspended`.
    pub status: TenantStatus,
    /// The plan.
    pub plan: Option<Plan>,
    /// The metadata.
    pub metadata: Metadata,
}

impl TenantIn {
    /// Checks every field; `max_metadata_bytes` bounds the serialized metadata.
    pub fn validate(self, max_metadata_bytes: usize) -> Result<NewTenant, FieldError> {
        let name = TenantName::parse(&self.name).map_err(FieldError::field("invalid_name", "name"))?;
        let slug = self.slug.as_deref().map(Slug::parse).transpose().map_err(|e| FieldError::slug(&e))?;
        let status = match self.status.unwrap_or(TenantStatus::Active) {
            TenantStatus::Deleted => {
                return Err(FieldError::new(
                    "invalid_status",
                    "status",
                    "a tenant cannot be created deleted (use active or suspended)",
                ));
            }
            other => other,
        };
        let plan = self
            .plan
            .as_deref()
            .map(Plan::parse)
            .transpose()
            .map_err(FieldError::field("invalid_plan", "plan"))?;
        let metadata = match self.metadata {
            None => Metadata::default(),
            Some(value) => Metadata::parse(value, max_metadata_bytes)
                .map_err(FieldError::field("invalid_metadata", "metadata"))?,
        };
        Ok(NewTenant { name, slug, status, plan, metadata })
    }
}

/// A checked `PATCH /v1/tenants/{id}` request. Metadata stays a merge patch until it is applied
/// to the stored object (and the result checked against the size bound).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TenantChanges {
    /// New name.
    pub name: Option<TenantName>,
    /// New slug.
    pub slug: Option<Slug>,
    /// New status (`active` or `suspended`).
    pub status: Option<TenantStatus>,
    /// New plan; `Some(None)` clears it.
    pub plan: Option<Option<Plan>>,
    /// Merge patch for the metadata.
    pub metadata_patch: Option<Value>,
}

impl TenantPatch {
    /// Checks every present field.
    pub fn validate(self) -> Result<TenantChanges, FieldError> {
        let name = self
            .name
            .as_deref()
            .map(TenantName::parse)
            .transpose()
            .map_err(FieldError::field("invalid_name", "name"))?;
        let slug = self.slug.as_deref().map(Slug::parse).transpose().map_err(|e| FieldError::slug(&e))?;
        if self.status == Some(TenantStatus::Deleted) {
            return Err(FieldError::new(
                "invalid_status",
                "status",
                "use DELETE /v1/tenants/{id} to delete a tenant",
            ));
        }
        let plan = match self.plan {
            None => None,
            Some(None) => Some(None),
            Some(Some(text)) => {
                Some(Some(Plan::parse(&text).map_err(FieldError::field("invalid_plan", "plan"))?))
            }
        };
        if let Some(patch) = &self.metadata
            && !(patch.is_object() || patch.is_null())
        {
            return Err(FieldError::new(
                "invalid_metadata",
                "metadata",
                "metadata must be a JSON object (a merge patch) or null",
            ));
        }
        Ok(TenantChanges { name, slug, status: self.status, plan, metadata_patch: self.metadata })
    }
}

/// One page of `GET /v1/tenants`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TenantPage {
    /// Tenants in id order (which is creation order).
    pub data: Vec<Tenant>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    pub next_cursor: Option<String>,
    /// The changes-feed position this listing reflects: a full sync reads every page, then
    /// continues with `GET /v1/events?after=<as_of>` using the **first** page's `as_of`.
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "1042"))]
    pub as_of: EventCursor,
}

/// One page of `GET /v1/events`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EventPage {
    /// Events in `seq` order.
    pub data: Vec<Event>,
    /// Pass as `after` to continue; equal to the request's position when the page is empty.
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "1042"))]
    pub next_cursor: EventCursor,
    /// Whether more events are waiting after this page.
    pub has_more: bool,
}

/// A project, as the CLI prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProjectOut {
    /// `prj_…`
    pub id: ProjectId,
    /// Display name.
    pub name: String,
    /// When it was created.
    #[serde(with = "rfc3339")]
    pub created_at: DateTime<Utc>,
}

/// An API key's public record (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApiKeyOut {
    /// The key id (the part after `ck_`).
    pub id: String,
    /// The project the key acts for.
    pub project_id: ProjectId,
    /// A label to recognise it by.
    pub label: Option<String>,
    /// What it may do.
    pub scopes: Vec<Scope>,
    /// When it was created.
    #[serde(with = "rfc3339")]
    pub created_at: DateTime<Utc>,
    /// When it was last used (updated at most once a minute).
    #[serde(with = "rfc3339_opt")]
    pub last_used_at: Option<DateTime<Utc>>,
    /// When it was revoked; a revoked key is refused.
    #[serde(with = "rfc3339_opt")]
    pub revoked_at: Option<DateTime<Utc>>,
    /// The key's own rate limit; `null` when the server's default applies.
    #[serde(default)]
    pub rate_limit: Option<KeyRateLimit>,
}

/// A key's own rate limit (a token bucket), in place of the server's default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KeyRateLimit {
    /// Requests a second, sustained; `0` means no limit for this key.
    pub per_second: u32,
    /// Requests that may arrive at once (the bucket's size).
    pub burst: u32,
}

impl KeyRateLimit {
    /// `per_second` requests a second with bursts of `burst`, or twice `per_second` when no
    /// burst is given (at least 1).
    #[must_use]
    pub fn new(per_second: u32, burst: Option<u32>) -> Self {
        Self { per_second, burst: burst.unwrap_or(per_second.saturating_mul(2)).max(1) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tenant_in(body: Value) -> Result<TenantIn, serde_json::Error> {
        serde_json::from_value(body)
    }

    #[test]
    fn a_minimal_create_request_validates() {
        let checked = tenant_in(json!({"name": "Acme"})).unwrap().validate(1024).unwrap();
        assert_eq!(checked.name.as_str(), "Acme");
        assert_eq!(checked.slug, None);
        assert_eq!(checked.status, TenantStatus::Active);
        assert!(checked.metadata.as_map().is_empty());
    }

    #[test]
    fn unknown_fields_are_refused() {
        assert!(tenant_in(json!({"name": "Acme", "colour": "red"})).is_err());
    }

    #[test]
    fn each_bad_field_has_its_own_code() {
        let cases = [
            (json!({"name": ""}), "invalid_name"),
            (json!({"name": "A", "slug": "Bad Slug"}), "invalid_slug"),
            (json!({"name": "A", "status": "deleted"}), "invalid_status"),
            (json!({"name": "A", "plan": ""}), "invalid_plan"),
            (json!({"name": "A", "metadata": [1]}), "invalid_metadata"),
            (json!({"name": "A", "metadata": {"k": "x".repeat(2000)}}), "invalid_metadata"),
        ];
        for (body, code) in cases {
            let err = tenant_in(body.clone()).unwrap().validate(1024).unwrap_err();
            assert_eq!(err.code, code, "{body}");
        }
    }

    #[test]
    fn patch_distinguishes_absent_from_null() {
        let absent: TenantPatch = serde_json::from_value(json!({})).unwrap();
        assert_eq!(absent.plan, None);
        assert_eq!(absent.metadata, None);
        let null: TenantPatch = serde_json::from_value(json!({"plan": null, "metadata": null})).unwrap();
        assert_eq!(null.plan, Some(None));
        assert_eq!(null.metadata, Some(Value::Null));
        let checked = null.validate().unwrap();
        assert_eq!(checked.plan, Some(None));
    }

    #[test]
    fn patch_refuses_deletion_and_non_object_metadata() {
        let delete: TenantPatch = serde_json::from_value(json!({"status": "deleted"})).unwrap();
        assert_eq!(delete.validate().unwrap_err().code, "invalid_status");
        let list: TenantPatch = serde_json::from_value(json!({"metadata": [1]})).unwrap();
        assert_eq!(list.validate().unwrap_err().code, "invalid_metadata");
    }
}
