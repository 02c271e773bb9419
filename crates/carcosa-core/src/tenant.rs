//! The tenant: its fields, their rules, and the snapshot every event carries.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::{Slug, TenantId};

/// The longest tenant name, in characters.
pub const MAX_NAME_CHARS: usize = 200;
/// The longest plan, in characters.
pub const MAX_PLAN_CHARS: usize = 64;
/// The default bound on a tenant's serialized metadata, in bytes.
pub const DEFAULT_MAX_METADATA_BYTES: usize = 16 * 1024;

/// Where a tenant is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum TenantStatus {
    /// In service.
    Active,
    /// Kept, but its apps should refuse it (unpaid, abusive, paused).
    Suspended,
    /// Deleted: its slug is released, its id and history remain.
    Deleted,
}

impl TenantStatus {
    /// The status as stored and sent: `active`, `suspended`, `deleted`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Suspended => "suspended",
            Self::Deleted => "deleted",
        }
    }
}

impl fmt::Display for TenantStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Text that is not one of the three statuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a tenant status (expected active, suspended or deleted)")]
pub struct InvalidStatus(pub String);

impl FromStr for TenantStatus {
    type Err = InvalidStatus;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "active" => Ok(Self::Active),
            "suspended" => Ok(Self::Suspended),
            "deleted" => Ok(Self::Deleted),
            other => Err(InvalidStatus(other.chars().take(40).collect())),
        }
    }
}

/// A field value that breaks its rule, with a message meant for the API caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidField(pub String);

/// A tenant's display name: 1–200 characters, not blank, no control characters.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct TenantName(String);

impl TenantName {
    /// Trims surrounding white space and checks the rules.
    pub fn parse(value: &str) -> Result<Self, InvalidField> {
        short_text("name", value, MAX_NAME_CHARS, "name cannot be empty").map(Self)
    }

    /// The name as text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Trims `value` and checks that it is non-empty, at most `max` characters, and free of control
/// characters.
fn short_text(field: &str, value: &str, max: usize, empty: &str) -> Result<String, InvalidField> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(InvalidField(empty.into()));
    }
    let chars = trimmed.chars().count();
    if chars > max {
        return Err(InvalidField(format!("{field} is at most {max} characters long (got {chars})")));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(InvalidField(format!("{field} cannot contain control characters")));
    }
    Ok(trimmed.to_owned())
}

impl fmt::Debug for TenantName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

/// A tenant's plan: a short label such as `pro` (1–64 printable characters).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Plan(String);

impl Plan {
    /// Checks the rules; surrounding white space is trimmed.
    pub fn parse(value: &str) -> Result<Self, InvalidField> {
        short_text("plan", value, MAX_PLAN_CHARS, "plan cannot be empty (send null to clear it)").map(Self)
    }

    /// The plan as text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

/// A tenant's metadata: a JSON object whose serialized form fits the configured bound.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Metadata(Map<String, Value>);

impl Metadata {
    /// Accepts a JSON object of at most `max_bytes` serialized bytes.
    pub fn parse(value: Value, max_bytes: usize) -> Result<Self, InvalidField> {
        let Value::Object(map) = value else {
            return Err(InvalidField("metadata must be a JSON object".into()));
        };
        Self::from_map(map, max_bytes)
    }

    /// Accepts an object of at most `max_bytes` serialized bytes.
    pub fn from_map(map: Map<String, Value>, max_bytes: usize) -> Result<Self, InvalidField> {
        if map.iter().any(|(k, v)| k.contains('\0') || contains_nul(v)) {
            return Err(InvalidField("metadata cannot contain the NUL character (\\u0000)".into()));
        }
        let size = serde_json::to_vec(&map).map_or(usize::MAX, |v| v.len());
        if size > max_bytes {
            return Err(InvalidField(format!(
                "metadata is at most {max_bytes} bytes serialized (got {size})"
            )));
        }
        Ok(Self(map))
    }

    /// The object.
    #[must_use]
    pub fn as_map(&self) -> &Map<String, Value> {
        &self.0
    }

    /// The object, owned.
    #[must_use]
    pub fn into_map(self) -> Map<String, Value> {
        self.0
    }
}

/// Whether a JSON value holds the NUL character in any string or key.
fn contains_nul(value: &Value) -> bool {
    match value {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(contains_nul),
        Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || contains_nul(v)),
        _ => false,
    }
}

/// A tenant as the API returns it and as every event carries it: the full state at one version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Tenant {
    /// Generated by the server, immutable.
    pub id: TenantId,
    /// Unique among the project's live tenants.
    pub slug: Slug,
    /// Display name.
    pub name: String,
    /// `active`, `suspended` or `deleted`.
    pub status: TenantStatus,
    /// Optional plan label.
    pub plan: Option<String>,
    /// Free-form JSON object.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub metadata: Map<String, Value>,
    /// Starts at 1; +1 on every change, including deletion. Apply a snapshot only if its version
    /// is newer than the one you hold.
    pub version: i64,
    /// When the tenant was created (RFC 3339, UTC).
    #[serde(with = "rfc3339")]
    pub created_at: DateTime<Utc>,
    /// When the tenant last changed.
    #[serde(with = "rfc3339")]
    pub updated_at: DateTime<Utc>,
    /// When the tenant was deleted, if it was.
    #[serde(with = "rfc3339_opt", default)]
    pub deleted_at: Option<DateTime<Utc>>,
}

/// Timestamps on the wire: RFC 3339 in UTC with microseconds and a `Z`.
pub mod rfc3339 {
    use super::{DateTime, Deserialize, Deserializer, Serializer, Utc};
    use chrono::SecondsFormat;

    /// Serializes as `2026-11-27T13:54:38.123456Z`.
    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::Micros, true))
    }

    /// Accepts any RFC 3339 timestamp and converts it to UTC.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let text = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(&text).map(|t| t.with_timezone(&Utc)).map_err(serde::de::Error::custom)
    }
}

/// Optional timestamps on the wire; `null` when absent.
pub mod rfc3339_opt {
    use super::{DateTime, Deserialize, Deserializer, Serializer, Utc};

    /// Serializes `Some` like [`super::rfc3339`], `None` as `null`.
    pub fn serialize<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => super::rfc3339::serialize(t, s),
            None => s.serialize_none(),
        }
    }

    /// Accepts `null` or an RFC 3339 timestamp.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|text| {
                DateTime::parse_from_rfc3339(&text)
                    .map(|t| t.with_timezone(&Utc))
                    .map_err(serde::de::Error::custom)
            })
            .transpose()
    }
}

impl Serialize for TenantName {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for TenantName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(TenantName::parse("  Acme ").unwrap().as_str(), "Acme");
        assert!(TenantName::parse("   ").is_err());
        assert!(TenantName::parse(&"é".repeat(200)).is_ok());
        assert!(TenantName::parse(&"é".repeat(201)).is_err());
        assert!(TenantName::parse("a\u{7}b").is_err());
    }

    #[test]
    fn plans_are_short_labels() {
        assert_eq!(Plan::parse("pro").unwrap().as_str(), "pro");
        assert!(Plan::parse("").is_err());
        assert!(Plan::parse(&"p".repeat(65)).is_err());
    }

    #[test]
    fn metadata_must_be_an_object_within_the_bound() {
        assert!(Metadata::parse(json!({"a": 1}), 100).is_ok());
        assert!(Metadata::parse(json!([1, 2]), 100).is_err());
        assert!(Metadata::parse(json!("x"), 100).is_err());
        assert!(Metadata::parse(json!({"a": "x".repeat(200)}), 100).is_err());
        assert!(Metadata::parse(json!({"a": ["ok", {"b": "nul\u{0}"}]}), 100).is_err());
        assert!(Metadata::parse(json!({"k\u{0}": 1}), 100).is_err());
    }

    #[test]
    fn statuses_round_trip() {
        for s in [TenantStatus::Active, TenantStatus::Suspended, TenantStatus::Deleted] {
            assert_eq!(s.as_str().parse::<TenantStatus>().unwrap(), s);
            assert_eq!(serde_json::to_value(s).unwrap(), json!(s.as_str()));
        }
        assert!("gone".parse::<TenantStatus>().is_err());
    }
}
